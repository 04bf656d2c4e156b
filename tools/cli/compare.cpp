#include "common.hpp"

#include <basinvol/error.hpp>
#include <basinvol/rank/ranking.hpp>

#include <iostream>

namespace cli {

namespace {

// The single Hessian a `compare` argument names, analyzed; throws UsageError otherwise.
bv::Row one_row(const std::string& text, const bv::AnalyzeOptions& a, const char* label) {
    bv::Source src = bv::parse_source(text);
    bv::Row err;
    auto list = bv::expand_source(src, &err);
    if (list.empty()) throw bv::InputError(err.error);
    if (list.size() != 1)
        throw bv::UsageError(std::string(label) + " names " + std::to_string(list.size()) +
                             " Hessians; compare takes one each (give FILE:PATH of a dataset)");
    bv::Row r = bv::analyze(list.front(), a);
    if (!r.ok) throw bv::InputError(r.error);
    return r;
}

}  // namespace

int cmd_compare(const std::string& a_text, const std::string& b_text, const CommonOptions& o) {
    auto a = to_analyze(o);
    auto spec = spec_for("compare", o, false);
    bv::Row ra = one_row(a_text, a, "A"), rb = one_row(b_text, a, "B");
    bv::RankOptions ro;
    ro.tie_tol = o.tie_tol;
    ro.saddles_last = a.negatives == bv::NegativePolicy::last;
    const bv::Comparison cmp = bv::compare_rows(ra, rb, ro);
    bv::write_comparison(std::cout, ra, rb, cmp, spec);
    std::cerr << "basinvol: " << cmp.reason << '\n';
    if (o.strict && cmp.noise_decides) return finish_output(exit_noise_decides);
    return finish_output(cmp.sign > 0 ? exit_ok : exit_failed);
}

}  // namespace cli
