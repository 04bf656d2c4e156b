#include "common.hpp"

#include <iostream>

namespace cli {

int cmd_volume(const std::vector<std::string>& sources, const CommonOptions& o) {
    auto a = to_analyze(o);
    auto spec = spec_for("volume", o, false);
    Work w = expand(sources);
    bv::RowWriter out(std::cout, spec);
    bool ok = run_all(w, a, [&](const bv::Row& r) {
        if (!r.ok) std::cerr << "basinvol: error: " << r.error << '\n';
        out.write(r);
    });
    out.finish();
    return finish_output(ok ? exit_ok : exit_failed);
}

}  // namespace cli
