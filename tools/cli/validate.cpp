#include "batch.hpp"

#include <basinvol/toy/report.hpp>
#include <basinvol/toy/validate.hpp>

#include <iostream>

namespace cli {

namespace {

// The report's context: the tool, the options that shape the checks, the libraries.
nlohmann::ordered_json validate_context(const CommonOptions& o, const bv::toy::ValidateOptions& opt) {
    nlohmann::ordered_json options = options_json(o);  // the analysis's (method, cut, atol, ...), then the checks'
    options.erase("tie_tol");
    options["logv_tol"] = opt.logv_tol ? nlohmann::ordered_json(*opt.logv_tol) : nlohmann::ordered_json(nullptr);
    options["samples"] = opt.samples;
    options["seed"] = opt.seed;
    options["sigmas"] = opt.sigmas;
    options["mc_max_rank"] = opt.mc_max_rank;
    options["scan_max_n"] = opt.scan_max_n;
    options["radial_directions"] = opt.radial_directions;
    return run_context("validate", options);
}

// The check that stands for a Hessian that could not be analyzed.
bv::toy::Check error_check(const bv::Row& r) {
    bv::toy::Check c;
    c.source = r.source;
    c.check = "analyze";
    c.verdict = bv::toy::Verdict::error;
    c.note = r.error;
    return c;
}

}  // namespace

// Each toy with expectations is checked through the batch runner (its row
// says whether every check agreed); the checks are written in input order.
int cmd_validate(const std::vector<std::string>& sources, const CommonOptions& o, const BatchCli& b,
                 const ValidateCli& v) {
    bv::toy::ValidateOptions opt = v;
    opt.analyze = to_analyze(o);
    bv::toy::check_options(opt);
    const bv::Format format = o.format;

    // Toys without expectations are skipped; a source that cannot be listed is an error check.
    std::vector<bv::WorkItem> items;
    std::size_t skipped = 0;
    for (auto& w : work_for(sources, b)) {
        if (!w.error && !bv::toy::has_expectations(w.info.attrs)) ++skipped;
        else items.push_back(std::move(w));
    }
    std::vector<std::vector<bv::toy::Check>> found(items.size());
    bv::BatchOptions bo;
    bo.analyze = opt.analyze;
    // Beside the analysis, the checks hold a float64 copy of the matrix and
    // its eigenvectors (Monte Carlo, the float32 log-volume bound).
    bo.estimate = [](const bv::HessianInfo& h) { return bv::bytes_of(3.0 * double(bv::working_set_bytes(h))); };
    // A toy's row is an error row when a check could not be made (a check
    // that disagrees is a verdict, reported in the checks).
    bo.analyze_one = [&](std::size_t i, const bv::HessianInfo& h) {
        found[i] = bv::toy::validate_hessian(h, opt);
        for (const auto& c : found[i])
            if (c.verdict == bv::toy::Verdict::error) return bv::error_row(h, c.note);
        bv::Row r = bv::error_row(h, "");
        r.ok = true;
        r.error.clear();
        return r;
    };
    Progress progress(!b.no_progress);
    std::vector<bv::toy::Check> checks;
    run_items(items, bo, o, b, progress, [&](std::size_t i, const bv::Row& r) {
        if (found[i].empty()) checks.push_back(error_check(r));  // not listed, or over the memory budget
        for (auto& c : found[i]) {
            c.note = cli_words(c.note);
            checks.push_back(std::move(c));
        }
    });
    bv::write_checks(std::cout, checks, format, validate_context(o, opt));

    bool ok = true;
    std::size_t failed = 0;
    for (const auto& c : checks)
        if (c.verdict == bv::toy::Verdict::fail || c.verdict == bv::toy::Verdict::error) {
            ok = false;
            ++failed;
        }
    if (skipped) std::cerr << "basinvol: note: " << skipped << " dataset(s) without expected_* attributes skipped\n";
    // An empty shard of several is normal (more shards than toys); one of one
    // is the whole run, which must have something to validate.
    if (items.empty() && !b.shard.empty() && bv::parse_shard(b.shard).count > 1) {
        std::cerr << "basinvol: note: shard " << b.shard << " holds no toy to validate\n";
    } else if (items.empty()) {
        std::cerr << "basinvol: error: nothing to validate (no dataset has expected_* or toy_loss attributes)\n";
        ok = false;
    }
    if (failed) std::cerr << "basinvol: " << failed << " check(s) failed\n";
    if (interrupt_signal()) return finish_output(batch_status(true));
    return finish_output(ok ? exit_ok : exit_failed);
}

}  // namespace cli
