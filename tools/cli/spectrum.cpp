#include "batch.hpp"

#include <iostream>

namespace cli {

// Every eigenvalue of each Hessian, through the batch runner; the listing is
// written when every row is in.
int cmd_spectrum(const std::vector<std::string>& sources, const CommonOptions& o, const BatchCli& b) {
    bv::BatchOptions bo;
    bo.analyze = to_analyze(o);
    bo.analyze.keep_eigenvalues = true;
    const auto spec = spec_for("spectrum", o, false);
    const auto items = work_for(sources, b);
    Progress progress(!b.no_progress);
    std::vector<bv::Row> rows;
    const auto sum = run_items(items, bo, o, b, progress, [&](std::size_t, const bv::Row& r) { rows.push_back(r); });
    bv::write_spectra(std::cout, rows, spec);
    // JSON says so in eigenvalues_complete and the table in a comment line;
    // TSV and CSV have one line per value computed and no place for it.
    if (o.format == bv::Format::tsv || o.format == bv::Format::csv)
        for (const auto& r : rows)
            if (r.ok && r.eigenvalues.size() < r.n)
                std::cerr << "basinvol: note: " << one_line(r.source) << ": " << r.n - r.eigenvalues.size()
                          << " eigenvalues not computed (method " << r.method << ": every one has |λ| <= "
                          << r.residual_bound << ", certified); --method dense lists them all\n";
    return finish_output(batch_status(sum.failed > 0));
}

}  // namespace cli
