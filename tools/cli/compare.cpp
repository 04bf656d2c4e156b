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
    const int c = cmp.sign;
    const std::string& reason = cmp.reason;
    const char* result = c > 0 ? "above" : c < 0 ? "below" : "tie";
    if (spec.format == bv::Format::json || spec.format == bv::Format::jsonl) {
        nlohmann::ordered_json j = {{"result", result}, {"reason", reason}, {"noise_decides", cmp.noise_decides},
                            {"a", bv::row_to_json(ra, spec)}, {"b", bv::row_to_json(rb, spec)}};
        if (spec.format == bv::Format::json) {
            j["schema_version"] = bv::schema_version;
            j["context"] = spec.context;
            std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace /* names from files need not be UTF-8 */) << '\n';
        } else {
            std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
        }
    } else if (spec.format == bv::Format::table) {
        std::cout << "A " << (c > 0 ? "ranks above" : c < 0 ? "ranks below" : "ties with") << " B — " << reason
                  << '\n'
                  << "  A  " << ra.source << "  dim " << ra.dim << " (band " << ra.dim_low << ".." << ra.dim_high << ")  log_volume " << ra.log_volume << '\n'
                  << "  B  " << rb.source << "  dim " << rb.dim << " (band " << rb.dim_low << ".." << rb.dim_high << ")  log_volume " << rb.log_volume << '\n';
    } else {
        const char* sep = spec.format == bv::Format::csv ? "," : "\t";
        auto q = [&](const std::string& s) {
            return spec.format == bv::Format::csv ? "\"" + s + "\"" : s;
        };
        std::cout << "result" << sep << "noise_decides" << sep << "reason" << sep << "a" << sep << "a_dim" << sep << "a_log_volume" << sep << "b"
                  << sep << "b_dim" << sep << "b_log_volume\n"
                  << result << sep << (cmp.noise_decides ? "true" : "false") << sep << q(reason) << sep << q(ra.source) << sep << ra.dim << sep << ra.log_volume << sep
                  << q(rb.source) << sep << rb.dim << sep << rb.log_volume << '\n';
    }
    std::cerr << "basinvol: " << reason << '\n';
    if (o.strict && cmp.noise_decides) return finish_output(exit_noise_decides);
    return finish_output(c > 0 ? exit_ok : exit_failed);
}

}  // namespace cli
