#include "batch.hpp"

#include <iostream>
#include <sstream>

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
    // Each row is written as it comes (its eigenvalues are counted in its
    // memory budget only while it runs): no listing is held to the end.
    bv::SpectrumWriter writer(std::cout, spec);
    std::vector<std::string> partial;  // TSV and CSV: the rows that list fewer than n values
    const auto sum = run_items(items, bo, o, b, progress, [&](std::size_t, const bv::Row& r) {
        writer.write(r);
        // JSON says so in eigenvalues_complete and the table in a comment line;
        // TSV and CSV have one line per value computed and no place for it.
        if ((o.format == bv::Format::tsv || o.format == bv::Format::csv) && r.ok && r.eigenvalues.size() < r.n) {
            std::ostringstream note;
            note << "basinvol: note: " << one_line(r.source) << ": " << r.n - r.eigenvalues.size()
                 << " eigenvalues not computed (method " << r.method << ": every one has |λ| <= " << r.residual_bound
                 << ", certified); --method dense lists them all";
            partial.push_back(note.str());
        }
    });
    writer.finish();
    for (const auto& note : partial) std::cerr << note << '\n';
    return finish_output(batch_status(sum.failed > 0));
}

}  // namespace cli
