#include "batch.hpp"

#include <basinvol/error.hpp>
#include <basinvol/rank/ranking.hpp>

#include <iostream>

namespace cli {

namespace {

// The single Hessian a `compare` argument names (or the error row of one
// that cannot be listed); throws UsageError when it names several.
bv::WorkItem one_item(const std::string& text, const BatchCli& b, const char* label) {
    if (text == "-") throw bv::UsageError(std::string(label) + " must name one Hessian (FILE:PATH), not '-'");
    auto items = work_for({text}, b);
    if (items.size() != 1) {
        // Which ones, so that the FILE:PATH to give is in the message.
        std::string names;
        for (std::size_t i = 0; i < items.size() && i < 4; ++i) names += (i ? ", " : "") + items[i].label();
        if (items.size() > 4) names += ", ...";
        throw bv::UsageError(std::string(label) + " ('" + text + "') names " + std::to_string(items.size()) +
                             " Hessians (" + names + "); compare takes one each: give FILE:PATH of one");
    }
    return items.front();
}

}  // namespace

// A and B are analyzed through the batch runner (both at once when -j and
// the memory budget allow). Exit 0 when A ranks strictly above B, 1 when it
// does not, 2 when either cannot be analyzed, 3 with --strict when noise, or
// the rows' different cut levels (mixed_level), may decide the order.
int cmd_compare(const std::string& a_text, const std::string& b_text, const CommonOptions& o, const BatchCli& batch) {
    bv::BatchOptions bo;
    bo.analyze = to_analyze(o);
    const auto spec = spec_for("compare", o, false);
    const std::vector<bv::WorkItem> items = {one_item(a_text, batch, "A"), one_item(b_text, batch, "B")};
    Progress progress(!batch.no_progress);
    std::vector<bv::Row> rows;
    run_items(items, bo, o, batch, progress, [&](std::size_t, const bv::Row& r) { rows.push_back(r); });
    if (rows.size() != 2) return finish_output(batch_status(true));  // interrupted
    // Interrupted once both were done: the answer is written, the status
    // still says the run was interrupted.
    const bool interrupted = interrupt_signal();
    if (!rows[0].ok || !rows[1].ok) {
        // Written with result "error" (each message is on stderr already).
        bv::Comparison none;
        none.reason = !rows[0].ok ? "A cannot be analyzed" : "B cannot be analyzed";
        if (!rows[0].ok && !rows[1].ok) none.reason = "A and B cannot be analyzed";
        bv::write_comparison(std::cout, rows[0], rows[1], none, spec);
        finish_output(exit_usage);
        return interrupted ? batch_status(true) : exit_usage;
    }
    bv::RankOptions ro;
    ro.tie_tol = o.tie_tol;
    ro.saddles_last = bo.analyze.negatives == bv::NegativePolicy::last;
    bv::Comparison cmp = bv::compare_rows(rows[0], rows[1], ro);
    cmp.reason = cli_words(cmp.reason);
    rows[0].warnings.add(cmp.warnings_a);  // as `rank` of the two would mark them
    rows[1].warnings.add(cmp.warnings_b);
    bv::write_comparison(std::cout, rows[0], rows[1], cmp, spec);
    std::cerr << "basinvol: " << one_line(cmp.reason) << '\n';
    // Rows cut at different levels against their largest values (a float32
    // copy beside a float64 one): the order may be the precision's, which
    // --strict does not take as certain.
    const bool level_may_decide = cmp.warnings_a.has(bv::Warning::mixed_level) ||
                                  cmp.warnings_b.has(bv::Warning::mixed_level);
    // A failed write is an error (2), never "A does not rank above B" (1).
    const int status = finish_output(interrupted ? batch_status(true)
                                     : o.strict && (cmp.noise_decides || level_may_decide) ? exit_noise_decides
                                     : cmp.sign > 0                  ? exit_ok
                                                                     : exit_failed);
    return std::cout ? status : exit_usage;
}

}  // namespace cli
