#include "common.hpp"

#include <basinvol/toy/report.hpp>
#include <basinvol/toy/validate.hpp>
#include <basinvol/version.hpp>

#include <ctime>
#include <iostream>

namespace cli {

void add_validate_options(CLI::App* app, CommonOptions& o, ValidateCli& v) {
    add_core_options(app, o);
    app->add_option("--max-memory", o.max_memory, "Largest matrix held in memory, e.g. 8G or 500M");
    app->add_option("--logv-tol", v.logv_tol,
                    "Allowed |log V - expected_log_volume| in nats (default: the stored-type bound, docs/toys.md)");
    app->add_option("--samples", v.samples, "Monte Carlo points per estimate")->capture_default_str();
    app->add_option("--seed", v.seed, "Seed of every Monte Carlo estimate")->capture_default_str();
    app->add_option("--sigmas", v.sigmas, "Monte Carlo agreement: within this many standard errors")
        ->capture_default_str();
    app->add_option("--mc-max-rank", v.mc_max_rank, "Monte Carlo volume only for curved rank <= this")
        ->capture_default_str();
    app->add_option("--scan-max-n", v.scan_max_n, "Threshold scan of the true loss only for n <= this")
        ->capture_default_str();
    app->add_option("--radial-directions", v.radial_directions, "Directions of the radial estimator")
        ->capture_default_str();
}

int cmd_validate(const std::vector<std::string>& sources, const CommonOptions& o, const ValidateCli& v) {
    bv::toy::ValidateOptions opt;
    opt.analyze = to_analyze(o);
    opt.logv_tol = v.logv_tol;
    opt.samples = v.samples;
    opt.seed = v.seed;
    opt.sigmas = v.sigmas;
    opt.mc_max_rank = v.mc_max_rank;
    opt.scan_max_n = v.scan_max_n;
    opt.radial_directions = v.radial_directions;
    const bv::Format format = bv::parse_format(o.format);

    Work w = expand(sources);
    std::vector<bv::toy::Check> checks;
    std::size_t e = 0, validated = 0, skipped = 0;
    auto source_errors = [&](std::size_t i) {
        for (; e < w.errors.size() && w.errors[e].first == i; ++e) {
            const bv::Row& r = w.errors[e].second;
            std::cerr << "basinvol: error: " << r.error << '\n';
            bv::toy::Check c;
            c.source = r.source;
            c.check = "analyze";
            c.verdict = bv::toy::Verdict::error;
            c.note = r.error;
            checks.push_back(c);
        }
    };
    for (std::size_t i = 0; i < w.hessians.size(); ++i) {
        source_errors(i);
        if (!bv::toy::has_expectations(w.hessians[i].attrs)) {
            ++skipped;
            continue;
        }
        ++validated;
        for (auto& c : bv::toy::validate_hessian(w.hessians[i], opt)) checks.push_back(std::move(c));
    }
    source_errors(w.hessians.size());

    char date[32];
    std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    nlohmann::ordered_json context = {{"tool", "basinvol"},
                                      {"version", bv::version()},
                                      {"command", "validate"},
                                      {"options",
                                       {{"cut", o.cut},
                                        {"logv_tol", opt.logv_tol ? nlohmann::ordered_json(*opt.logv_tol)
                                                                  : nlohmann::ordered_json(nullptr)},
                                        {"samples", opt.samples},
                                        {"seed", opt.seed},
                                        {"sigmas", opt.sigmas},
                                        {"mc_max_rank", opt.mc_max_rank},
                                        {"scan_max_n", opt.scan_max_n},
                                        {"radial_directions", opt.radial_directions}}},
                                      {"libraries", bv::library_versions()},
                                      {"date", date}};
    bv::write_checks(std::cout, checks, format, context);

    bool ok = true;
    std::size_t failed = 0;
    for (const auto& c : checks)
        if (c.verdict == bv::toy::Verdict::fail || c.verdict == bv::toy::Verdict::error) {
            ok = false;
            ++failed;
        }
    if (skipped) std::cerr << "basinvol: note: " << skipped << " dataset(s) without expected_* attributes skipped\n";
    if (validated == 0 && w.errors.empty()) {
        std::cerr << "basinvol: error: nothing to validate (no dataset has expected_* or toy_loss attributes)\n";
        ok = false;
    }
    if (failed) std::cerr << "basinvol: " << failed << " check(s) failed\n";
    return finish_output(ok ? exit_ok : exit_failed);
}

}  // namespace cli
