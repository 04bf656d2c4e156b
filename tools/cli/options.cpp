// Every flag of the basinvol command line, bound to the option structs
// (common.hpp, batch.hpp): the only code besides main.cpp that sees CLI11.
#include "options.hpp"

#include "choice.hpp"
#include "values.hpp"

#include <basinvol/io/source.hpp>

#include <cctype>
#include <sys/stat.h>

#include <cstdint>
#include <limits>

namespace cli {

void add_trust_stored_type(CLI::App* app, CommonOptions& o) {
    app->add_flag("--trust-stored-type", o.trust_stored_type,
                  "Measure float64 values at float64's rounding even where they look like float32 data (the warning "
                  "float32_values): exact data of that form (docs/method.md, \"The noise floor\")");
}

void add_core_options(CLI::App* app, CommonOptions& o) {
    add_choice(app, "-f,--format", o.format, bv::format_names(), "Output format");
    add_choice(app, "--cut", o.cut, bv::cut_rule_names(), "Where flat directions end (docs/method.md)");
    app->add_option("--rtol", o.rtol, "Explicit cut: tol = RTOL * max|lambda| (overrides --cut)")->transform(decimal());
    app->add_option("--atol", o.atol, "Explicit cut: tol = ATOL (with --rtol, the larger)")->transform(decimal());
    add_choice(app, "--method", o.method, bv::method_names(), "Eigen-solver (docs/method.md)");
}

void format_from_output(const CLI::App& app, const std::string& output, bv::Format& format) {
    const CLI::Option* given = app.get_option_no_throw("--format");
    if (given == nullptr || given->count() > 0) return;
    const auto dot = output.rfind('.');
    if (dot == std::string::npos || output.find('/', dot) != std::string::npos) return;
    // In any letter case (RESULTS.JSONL); .ndjson is JSON Lines' other name.
    std::string extension = output.substr(dot + 1);
    for (char& c : extension) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (extension == "ndjson") extension = "jsonl";
    for (const auto& [name, value] : bv::format_names())
        if (value != bv::Format::table && extension == name) format = value;
}

void add_common(CLI::App* app, CommonOptions& o, bool ranking, bool regularized) {
    add_core_options(app, o);
    app->add_option("--min-gap", o.min_gap, "Decades between kept and dropped |lambda| below which the rank is ambiguous")
        ->transform(decimal())
        ->capture_default_str();
    app->add_option("-T,--threshold", o.threshold,
                    "Loss threshold T of the basin {u : u'Hu/2 <= T} (default: the dataset's loss_threshold, else 1)")
        ->transform(decimal());
    add_choice(app, "--negatives", o.negatives, bv::negatives_names(), "Negative eigenvalues (docs/method.md)");
    app->add_option("--hessian-error", o.hessian_error,
                    "Known error of the stored Hessian (absolute, eigenvalue units); raises the noise floor "
                    "beside the measured asymmetry, which always counts (default: the dataset's hessian_error "
                    "attribute, else none)")
        ->transform(decimal());
    app->add_option("--max-asymmetry", o.max_asymmetry,
                    "Largest ||H - H'||_F / ||H||_F accepted (smaller asymmetry is symmetrized)")
        ->transform(decimal())
        ->capture_default_str();
    add_trust_stored_type(app, o);
    app->add_option("--read-timeout", o.read_timeout,
                    "Read each Hessian's values in a child process, stopped after this many seconds (an error row); "
                    "a crash while reading is an error row too. For untrusted files: a fork per Hessian")
        ->transform(positive_seconds());
    app->add_option("--max-memory", o.max_memory,
                    "Memory budget for the Hessians analyzed at once, e.g. 8G or 500M (default: half the "
                    "usable memory, the cgroup limit counted)")
        ->check(memory_size());
    if (ranking)
        app->add_option("--tie-tol", o.tie_tol,
                        "Log-volumes are compared on a grid of this many nats; equal grid steps share a place")
            ->capture_default_str()
            ->transform(CLI::Validator(
                [](std::string& text) {
                    text = detail::trimmed(text);
                    const auto v = bv::parse_finite(text);
                    return v && *v >= 0 ? std::string() : "must be a finite number >= 0, got '" + text + "'";
                },
                "FLOAT >= 0"));
    if (regularized)
        app->add_option("--regularized", o.regularized,
                        "Also report the regularized det(H + LAMBDA I) log-volume over all n directions")
            ->transform(decimal());
}

void add_input_options(CLI::App* app, BatchCli& b, bool lists) {
    if (lists) {
        // One FILE per --files-from (it may be repeated): a SOURCE after it stays a SOURCE.
        app->add_option("--files-from", b.files_from, "Read more SOURCEs from FILE, one a line or NUL-separated ('-': standard input)")
            ->allow_extra_args(false)
            ->check(non_empty("a FILE"));
        app->add_option("--shard", b.shard,
                        "Only shard I of N (I/N, 1 <= I <= N), chosen by a hash of FILE:/dataset")
            ->check(non_empty("I/N"));
    }
    app->add_option("-j,--jobs", b.jobs, "Hessians analyzed at once (default: the CPUs this process may use)")
        ->transform(whole(1, 4096));
    app->add_option("--list-timeout", b.list_timeout,
                    "Seconds a SOURCE's structure walk may take before it is stopped and is an error row")
        ->transform(positive_seconds())
        ->capture_default_str();
    app->add_flag("--no-progress", b.no_progress, "No progress bar (it is only ever shown when stderr is a terminal)");
}

void add_batch(CLI::App* app, BatchCli& b, bool streaming, bool ranking) {
    add_input_options(app, b);
    if (streaming) {
        add_choice(app, "--order", b.order, bv::row_order_names(),
                   "Rows in input order, or as they finish (streamed either way)");
        app->add_flag("--per-block", b.per_block,
                      "After a blocks structure's row, a row for each of its top-level blocks; after a dense "
                      "dataset carrying the exporter's param_offsets, a row for each parameter block's "
                      "diagonal block: each analyzed on its own (docs/structured.md)");
    }
    app->add_option("-o,--output", b.output,
                    "Write results to FILE (rows kept in FILE.journal as they finish, FILE renamed into place at "
                    "the end; FILE.lock keeps out a second run; '-': standard output)")
        ->check(non_empty("a FILE"));
    app->add_flag("--resume", b.resume,
                  "With -o: keep the ok rows already in FILE and in FILE.journal (a killed run's) and analyze "
                  "only the rest");
    if (ranking)
        app->add_flag("--from-results", b.from_results,
                      "The arguments are saved rows (jsonl/json/tsv/csv, '-': standard input) to merge and rank "
                      "without recomputing");
}

void add_validate_options(CLI::App* app, CommonOptions& o, BatchCli& b, ValidateCli& v) {
    add_core_options(app, o);
    add_input_options(app, b);
    add_trust_stored_type(app, o);
    app->add_option("--max-memory", o.max_memory,
                    "Memory budget for the Hessians checked at once, e.g. 8G or 500M (default: half the usable "
                    "memory, the cgroup limit counted)")
        ->check(memory_size());
    app->add_option("--logv-tol", v.logv_tol,
                    "Allowed |log V - expected_log_volume| in nats (default: the stored-type bound, docs/toys.md)")
        ->transform(decimal());
    app->add_option("--samples", v.samples, "Monte Carlo points per estimate")
        ->transform(whole(2, 1000000000))
        ->capture_default_str();
    app->add_option("--seed", v.seed, "Seed of every Monte Carlo estimate")
        ->transform(whole(0, std::numeric_limits<std::int64_t>::max()))
        ->capture_default_str();
    app->add_option("--sigmas", v.sigmas, "Monte Carlo agreement: within this many standard errors")
        ->transform(decimal())
        ->capture_default_str();
    app->add_option("--mc-max-rank", v.mc_max_rank, "Monte Carlo volume only for curved rank <= this")
        ->transform(whole(0, 1000))
        ->capture_default_str();
    app->add_option("--scan-max-n", v.scan_max_n, "Threshold scan of the true loss only for n <= this")
        ->transform(whole(0, 1000000))
        ->capture_default_str();
    app->add_option("--radial-directions", v.radial_directions, "Directions of the radial estimator")
        ->transform(whole(2, 100000000))
        ->capture_default_str();
}

std::string option_like_source(const CLI::App& app, int argc, const char* const* argv) {
    const CLI::App* command = nullptr;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--") break;  // SOURCEs from here on
        if (!command) {
            if (arg.empty() || arg[0] == '-') continue;  // --help, --version
            const auto named = app.get_subcommands([&](const CLI::App* c) { return c->get_name() == arg; });
            if (named.empty()) return "";  // an unknown command: the parser says so
            command = named.front();
            continue;
        }
        // What the parser takes for an option (CLI11's own classifiers: "-1.h5"
        // or "- a.h5" is a SOURCE to it).
        std::string name, rest;
        const bool is_long = CLI::detail::split_long(arg, name, rest);
        const bool is_short = !is_long && CLI::detail::split_short(arg, name, rest) &&
                              !(name[0] >= '0' && name[0] <= '9' && !command->get_option_no_throw("-" + name));
        if (!is_long && !is_short) continue;
        // A file there, or FILE:PATH of one (a glob's `-o` too: the next name
        // would be its value, the file written over).
        struct stat st;
        const std::string file = arg.find(':') == std::string::npos ? arg : bv::parse_source(arg).file;
        if (::stat(file.c_str(), &st) == 0)
            return "'" + arg + "' names a file here, but reads as an option" +
                   (is_short && name == "o" && !rest.empty() && command->get_option_no_throw("-o")
                        ? " (-o " + rest + ")"
                        : std::string()) +
                   ": to read it, write ./" + arg + " (or give it after --)";
        // An option that takes a value takes the next argument, whatever it is
        // (-o -ojunk.txt, --files-from -olist.txt).
        if (arg.find('=') == std::string::npos && (is_long || rest.empty())) {
            const CLI::Option* opt = command->get_option_no_throw(arg);
            if (opt && opt->get_items_expected_max() > 0) ++i;
        }
    }
    return "";
}

}  // namespace cli
