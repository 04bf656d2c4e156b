#include "common.hpp"

#include <basinvol/error.hpp>
#include <basinvol/version.hpp>

#include <ctime>
#include <iostream>

namespace cli {

void add_core_options(CLI::App* app, CommonOptions& o) {
    app->add_option("-f,--format", o.format, "Output format: table, tsv, csv, json, jsonl")
        ->check(CLI::IsMember({"table", "tsv", "csv", "json", "jsonl"}))
        ->capture_default_str();
    app->add_option("--cut", o.cut, "Where flat directions end: auto, dtype or gap (docs/method.md)")
        ->check(CLI::IsMember({"auto", "dtype", "gap"}))
        ->capture_default_str();
    app->add_option("--rtol", o.rtol, "Explicit cut: tol = RTOL * max|lambda| (overrides --cut)");
    app->add_option("--atol", o.atol, "Explicit cut: tol = ATOL (with --rtol, the larger)");
    app->add_option("--method", o.method, "Eigen-solver: auto, dense, cholesky, sketch or lanczos (docs/method.md)")
        ->check(CLI::IsMember({"auto", "dense", "cholesky", "sketch", "lanczos"}))
        ->capture_default_str();
}

void add_common(CLI::App* app, CommonOptions& o, bool ranking, bool regularized) {
    add_core_options(app, o);
    app->add_option("--min-gap", o.min_gap, "Decades between kept and dropped |lambda| below which the rank is ambiguous")
        ->capture_default_str();
    app->add_option("-T,--threshold", o.threshold,
                    "Loss threshold T of the basin {u : u'Hu/2 <= T} (default: the dataset's loss_threshold, else 1)");
    app->add_option("--negatives", o.negatives, "Negative eigenvalues: abs, drop or last (docs/method.md)")
        ->check(CLI::IsMember({"abs", "drop", "last"}))
        ->capture_default_str();
    app->add_option("--hessian-error", o.hessian_error,
                    "Known error of the stored Hessian (absolute, eigenvalue units); raises the noise floor "
                    "(default: the dataset's hessian_error attribute, else the measured asymmetry)");
    app->add_option("--max-asymmetry", o.max_asymmetry,
                    "Largest ||H - H'||_F / ||H||_F accepted (smaller asymmetry is symmetrized)")
        ->capture_default_str();
    app->add_option("--max-memory", o.max_memory,
                    "Memory budget for the Hessians analyzed at once, e.g. 8G or 500M (default: half the "
                    "usable memory, the cgroup limit counted)");
    if (ranking)
        app->add_option("--tie-tol", o.tie_tol,
                        "Log-volumes are compared on a grid of this many nats; equal grid steps share a place")
            ->capture_default_str();
    if (regularized)
        app->add_option("--regularized", o.regularized,
                        "Also report the regularized det(H + LAMBDA I) log-volume over all n directions");
}

bv::AnalyzeOptions to_analyze(const CommonOptions& o) {
    bv::AnalyzeOptions a;
    a.cut.rule = bv::parse_cut_rule(o.cut);
    a.cut.rtol = o.rtol;
    a.cut.atol = o.atol;
    a.cut.min_gap = o.min_gap;
    a.threshold = o.threshold;
    a.regularized = o.regularized;
    a.hessian_error = o.hessian_error;
    a.negatives = bv::parse_negatives(o.negatives);
    a.method = bv::parse_method(o.method);
    a.read.max_asymmetry = o.max_asymmetry;
    a.read.max_bytes = bv::parse_memory_size(o.max_memory);
    bv::validate(a);
    return a;
}

namespace {

nlohmann::ordered_json context(const std::string& command, const CommonOptions& o) {
    char date[32];
    std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    nlohmann::ordered_json opts = {{"cut", o.cut},         {"min_gap", o.min_gap},     {"negatives", o.negatives},
                           {"method", o.method},   {"tie_tol", o.tie_tol},     {"max_asymmetry", o.max_asymmetry}};
    opts["hessian_error"] = o.hessian_error ? nlohmann::ordered_json(*o.hessian_error) : nlohmann::ordered_json(nullptr);
    opts["rtol"] = o.rtol ? nlohmann::ordered_json(*o.rtol) : nlohmann::ordered_json(nullptr);
    opts["atol"] = o.atol ? nlohmann::ordered_json(*o.atol) : nlohmann::ordered_json(nullptr);
    opts["threshold"] = o.threshold ? nlohmann::ordered_json(*o.threshold) : nlohmann::ordered_json(nullptr);
    opts["regularized"] = o.regularized ? nlohmann::ordered_json(*o.regularized) : nlohmann::ordered_json(nullptr);
    return {{"tool", "basinvol"},
            {"version", bv::version()},
            {"command", command},
            {"options", opts},
            {"libraries", bv::library_versions()},
            {"date", date}};
}

}  // namespace

bv::ReportSpec spec_for(const std::string& command, const CommonOptions& o, bool with_place) {
    bv::ReportSpec s;
    s.format = bv::parse_format(o.format);
    s.with_place = with_place;
    s.with_regularized = o.regularized.has_value();
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
