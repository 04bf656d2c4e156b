#include "common.hpp"

#include <iostream>

namespace cli {

int cmd_spectrum(const std::vector<std::string>& sources, const CommonOptions& o) {
    auto a = to_analyze(o);
    a.keep_eigenvalues = true;
    auto spec = spec_for("spectrum", o, false);
    Work w = expand(sources);
    std::vector<bv::Row> rows;
    bool ok = run_all(w, a, [&](const bv::Row& r) {
        if (!r.ok) std::cerr << "basinvol: error: " << r.error << '\n';
        rows.push_back(r);
    });
    bv::write_spectra(std::cout, rows, spec);
    return finish_output(ok ? exit_ok : exit_failed);
}

}  // namespace cli
