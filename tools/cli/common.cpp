#include "common.hpp"

#include <basinvol/error.hpp>
#include <basinvol/version.hpp>

#include <ctime>
#include <iostream>

namespace cli {

bv::AnalyzeOptions to_analyze(const CommonOptions& o) {
    bv::AnalyzeOptions a;
    a.cut.rule = o.cut;
    a.cut.rtol = o.rtol;
    a.cut.atol = o.atol;
    a.cut.min_gap = o.min_gap;
    a.threshold = o.threshold;
    a.regularized = o.regularized;
    a.hessian_error = o.hessian_error;
    a.negatives = o.negatives;
    a.method = o.method;
    a.read.max_asymmetry = o.max_asymmetry;
    a.read.max_bytes = bv::parse_memory_size(o.max_memory);
    a.read.detect_float32_data = !o.trust_stored_type;
    if (o.read_timeout) {  // reading in a child process, stopped at the limit
        a.read.isolate = bv::ReadOptions::Isolation::always;
        a.read.time_limit = *o.read_timeout;
    }
    bv::validate(a);
    return a;
}

nlohmann::ordered_json options_json(const CommonOptions& o) {
    nlohmann::ordered_json opts = {{"cut", bv::name_of(bv::cut_rule_names(), o.cut)},
                                   {"min_gap", o.min_gap},
                                   {"negatives", bv::name_of(bv::negatives_names(), o.negatives)},
                                   {"method", bv::name_of(bv::method_names(), o.method)},
                                   {"tie_tol", o.tie_tol},
                                   {"max_asymmetry", o.max_asymmetry},
                                   {"trust_stored_type", o.trust_stored_type}};
    opts["hessian_error"] = o.hessian_error ? nlohmann::ordered_json(*o.hessian_error) : nlohmann::ordered_json(nullptr);
    opts["rtol"] = o.rtol ? nlohmann::ordered_json(*o.rtol) : nlohmann::ordered_json(nullptr);
    opts["atol"] = o.atol ? nlohmann::ordered_json(*o.atol) : nlohmann::ordered_json(nullptr);
    opts["threshold"] = o.threshold ? nlohmann::ordered_json(*o.threshold) : nlohmann::ordered_json(nullptr);
    opts["regularized"] = o.regularized ? nlohmann::ordered_json(*o.regularized) : nlohmann::ordered_json(nullptr);
    return opts;
}

namespace {

nlohmann::ordered_json context(const std::string& command, const CommonOptions& o) {
    return run_context(command, options_json(o));
}

}  // namespace

nlohmann::ordered_json run_context(const std::string& command, nlohmann::ordered_json options) {
    char date[32];
    std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    return {{"tool", "basinvol"},
            {"version", bv::version()},
            {"command", command},
            {"options", std::move(options)},
            {"libraries", bv::library_versions()},
            {"date", date}};
}

bv::ReportSpec spec_for(const std::string& command, const CommonOptions& o, bool with_place) {
    bv::ReportSpec s;
    s.format = o.format;
    s.with_place = with_place;
    s.with_regularized = o.regularized.has_value();
    s.keeps_negatives = o.negatives != bv::NegativePolicy::drop;
    s.context = context(command, o);
    return s;
}

int finish_output(int status) {
    std::cout.flush();
    if (!std::cout) {
        std::cerr << "basinvol: error: cannot write the results to standard output\n";
        return exit_failed;
    }
    return status;
}

}  // namespace cli
