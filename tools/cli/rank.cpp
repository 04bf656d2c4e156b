#include "common.hpp"

#include <basinvol/rank/ranking.hpp>

#include <iostream>

namespace cli {

int cmd_rank(const std::vector<std::string>& sources, const CommonOptions& o) {
    auto a = to_analyze(o);
    auto spec = spec_for("rank", o, true);
    Work w = expand(sources);
    std::vector<bv::Row> rows;
    bool ok = run_all(w, a, [&](const bv::Row& r) {
        if (!r.ok) std::cerr << "basinvol: error: " << r.error << '\n';
        rows.push_back(r);
    });
    bv::RankOptions ro;
    ro.tie_tol = o.tie_tol;
    ro.saddles_last = a.negatives == bv::NegativePolicy::last;
    auto ranking = bv::rank_rows(rows, ro);
    if (a.regularized && !bv::rank_regularized(rows, o.tie_tol))
        std::cerr << "basinvol: note: the Hessians have different n: place_regularized is left empty "
                     "(regularized volumes of different n are in different units)\n";
    if (ranking.mixed_n)
        std::cerr << "basinvol: note: the Hessians have different n: they are ranked by dimension only "
                     "(log-volumes of different n are in different units)\n";
    bv::RowWriter out(std::cout, spec);
    for (const auto& r : rows) out.write(r);
    out.finish();
    return finish_output(ok ? exit_ok : exit_failed);
}

}  // namespace cli
