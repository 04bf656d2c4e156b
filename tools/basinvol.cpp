// The basinvol command line. Only this file chooses exit statuses and touches
// stdout/stderr. Exit status: 0 every source succeeded, 1 at least one failed
// (the others are still reported), 2 usage error. `compare` exits 0 when A
// ranks strictly above B, 1 when it does not, 2 on error.
#include <basinvol/analyze.hpp>
#include <basinvol/error.hpp>
#include <basinvol/rank/ranking.hpp>
#include <basinvol/report/format.hpp>
#include <basinvol/version.hpp>

#include <CLI/CLI.hpp>

#include <cctype>
#include <ctime>
#include <iostream>
#include <map>
#include <string>
#include <vector>

namespace bv = basinvol;

namespace {

constexpr int exit_ok = 0, exit_failed = 1, exit_usage = 2;

// Options shared by every subcommand, as the user gave them.
struct CommonOptions {
    std::string format = "table";
    std::string cut = "auto";
    std::string negatives = "abs";
    std::string method = "auto";
    std::string max_memory;
    double min_gap = 1.0;
    double max_asymmetry = 1e-3;
    double tie_tol = 1e-6;
    std::optional<double> rtol, atol, threshold, regularized;
};

void add_common(CLI::App* app, CommonOptions& o, bool ranking, bool regularized) {
    app->add_option("-f,--format", o.format, "Output format: table, tsv, csv, json, jsonl")
        ->check(CLI::IsMember({"table", "tsv", "csv", "json", "jsonl"}))
        ->capture_default_str();
    app->add_option("--cut", o.cut, "Where flat directions end: auto, dtype or gap (docs/method.md)")
        ->check(CLI::IsMember({"auto", "dtype", "gap"}))
        ->capture_default_str();
    app->add_option("--rtol", o.rtol, "Explicit cut: tol = RTOL * max|lambda| (overrides --cut)");
    app->add_option("--atol", o.atol, "Explicit cut: tol = ATOL (with --rtol, the larger)");
    app->add_option("--min-gap", o.min_gap, "Decades between kept and dropped |lambda| below which the rank is ambiguous")
        ->capture_default_str();
    app->add_option("-T,--threshold", o.threshold,
                    "Loss threshold T of the basin {u : u'Hu/2 <= T} (default: the dataset's loss_threshold, else 1)");
    app->add_option("--negatives", o.negatives, "Negative eigenvalues: abs, drop or last (docs/method.md)")
        ->check(CLI::IsMember({"abs", "drop", "last"}))
        ->capture_default_str();
    app->add_option("--method", o.method, "Eigen-solver: auto, dense, sketch or lanczos (docs/method.md)")
        ->check(CLI::IsMember({"auto", "dense", "sketch", "lanczos"}))
        ->capture_default_str();
    app->add_option("--max-asymmetry", o.max_asymmetry,
                    "Largest ||H - H'||_F / ||H||_F accepted (smaller asymmetry is symmetrized)")
        ->capture_default_str();
    app->add_option("--max-memory", o.max_memory,
                    "Largest matrix held in memory, e.g. 8G or 500M (default: half the physical memory)");
    if (ranking)
        app->add_option("--tie-tol", o.tie_tol, "Log-volumes (nats) within this share a place")->capture_default_str();
    if (regularized)
        app->add_option("--regularized", o.regularized,
                        "Also report the regularized det(H + LAMBDA I) log-volume over all n directions");
}

std::size_t parse_bytes(const std::string& text) {
    if (text.empty()) return 0;
    std::size_t pos = 0;
    double v = 0;
    try {
        v = std::stod(text, &pos);
    } catch (...) {
        throw bv::UsageError("--max-memory must be a size such as 8G or 500M, got '" + text + "'");
    }
    std::string unit = text.substr(pos);
    for (auto& ch : unit) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (!unit.empty() && unit.back() == 'B') unit.pop_back();
    if (!unit.empty() && unit.back() == 'I') unit.pop_back();
    double mult = unit.empty() ? 1 : unit == "K" ? 1024.0 : unit == "M" ? 1024.0 * 1024 : unit == "G" ? 1024.0 * 1024 * 1024 : unit == "T" ? 1024.0 * 1024 * 1024 * 1024 : -1;
    if (mult < 0 || !(v > 0))
        throw bv::UsageError("--max-memory must be a size such as 8G or 500M, got '" + text + "'");
    return static_cast<std::size_t>(v * mult);
}

bv::AnalyzeOptions to_analyze(const CommonOptions& o) {
    bv::AnalyzeOptions a;
    a.cut.rule = o.cut == "dtype" ? bv::CutRule::dtype : o.cut == "gap" ? bv::CutRule::gap : bv::CutRule::automatic;
    a.cut.rtol = o.rtol;
    a.cut.atol = o.atol;
    a.cut.min_gap = o.min_gap;
    a.threshold = o.threshold;
    a.regularized = o.regularized;
    a.negatives = o.negatives == "drop" ? bv::NegativePolicy::drop
                  : o.negatives == "last" ? bv::NegativePolicy::last
                                          : bv::NegativePolicy::abs;
    a.method = o.method == "dense"     ? bv::Method::dense
               : o.method == "sketch"  ? bv::Method::sketch
               : o.method == "lanczos" ? bv::Method::lanczos
                                       : bv::Method::automatic;
    a.read.max_asymmetry = o.max_asymmetry;
    a.read.max_bytes = parse_bytes(o.max_memory);
    bv::validate(a);
    return a;
}

nlohmann::ordered_json context(const std::string& command, const CommonOptions& o) {
    char date[32];
    std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    nlohmann::ordered_json opts = {{"cut", o.cut},         {"min_gap", o.min_gap},     {"negatives", o.negatives},
                           {"method", o.method},   {"tie_tol", o.tie_tol},     {"max_asymmetry", o.max_asymmetry}};
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

bv::ReportSpec spec_for(const std::string& command, const CommonOptions& o, bool with_place) {
    bv::ReportSpec s;
    s.format = bv::parse_format(o.format);
    s.with_place = with_place;
    s.with_regularized = o.regularized.has_value();
    s.context = context(command, o);
    return s;
}

// Every Hessian of every source, with an error row for each source that cannot be listed.
struct Work {
    std::vector<bv::HessianInfo> hessians;
    std::vector<std::pair<std::size_t, bv::Row>> errors;  // (position in `hessians`, row)
};

Work expand(const std::vector<std::string>& sources) {
    Work w;
    for (const auto& text : sources) {
        bv::Source src = bv::parse_source(text);
        bv::Row err;
        auto list = bv::expand_source(src, &err);
        if (list.empty()) w.errors.emplace_back(w.hessians.size(), err);
        for (auto& h : list) w.hessians.push_back(std::move(h));
    }
    return w;
}

// Analyzes everything, handing each row to `sink` in input order.
template <class Sink>
bool run_all(const Work& w, const bv::AnalyzeOptions& a, Sink sink) {
    bool all_ok = true;
    std::size_t e = 0;
    for (std::size_t i = 0; i <= w.hessians.size(); ++i) {
        while (e < w.errors.size() && w.errors[e].first == i) {
            sink(w.errors[e].second);
            all_ok = false;
            ++e;
        }
        if (i == w.hessians.size()) break;
        bv::Row r = bv::analyze(w.hessians[i], a);
        all_ok = all_ok && r.ok;
        sink(r);
    }
    return all_ok;
}

int finish_output(int status) {
    std::cout.flush();
    if (!std::cout) {
        std::cerr << "basinvol: error: cannot write the results to standard output\n";
        return exit_failed;
    }
    return status;
}

int cmd_volume(const std::vector<std::string>& sources, const CommonOptions& o) {
    auto a = to_analyze(o);
    auto spec = spec_for("volume", o, false);
    Work w = expand(sources);
    bv::RowWriter out(std::cout, spec);
    bool ok = run_all(w, a, [&](const bv::Row& r) {
        if (!r.ok) std::cerr << "basinvol: error: " << r.error << '\n';
        out.write(r);
    });
    out.finish();
    return finish_output(ok ? exit_ok : exit_failed);
}

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
    if (a.regularized) bv::rank_regularized(rows, o.tie_tol);
    if (ranking.mixed_n)
        std::cerr << "basinvol: note: the Hessians have different n: they are ranked by dimension only "
                     "(log-volumes of different n are in different units)\n";
    bv::RowWriter out(std::cout, spec);
    for (const auto& r : rows) out.write(r);
    out.finish();
    return finish_output(ok ? exit_ok : exit_failed);
}

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

int cmd_compare(const std::string& a_text, const std::string& b_text, const CommonOptions& o) {
    auto a = to_analyze(o);
    auto spec = spec_for("compare", o, false);
    bv::Row ra = one_row(a_text, a, "A"), rb = one_row(b_text, a, "B");
    bv::RankOptions ro;
    ro.tie_tol = o.tie_tol;
    ro.saddles_last = a.negatives == bv::NegativePolicy::last;
    std::string reason;
    int c = bv::compare_rows(ra, rb, ro, reason);
    const char* result = c > 0 ? "above" : c < 0 ? "below" : "tie";
    if (spec.format == bv::Format::json || spec.format == bv::Format::jsonl) {
        nlohmann::ordered_json j = {{"result", result}, {"reason", reason},
                            {"a", bv::row_to_json(ra, spec)}, {"b", bv::row_to_json(rb, spec)}};
        if (spec.format == bv::Format::json) {
            j["schema_version"] = bv::schema_version;
            j["context"] = spec.context;
            std::cout << j.dump(2) << '\n';
        } else {
            std::cout << j.dump() << '\n';
        }
    } else if (spec.format == bv::Format::table) {
        std::cout << "A " << (c > 0 ? "ranks above" : c < 0 ? "ranks below" : "ties with") << " B — " << reason
                  << '\n'
                  << "  A  " << ra.source << "  dim " << ra.dim << "  log_volume " << ra.log_volume << '\n'
                  << "  B  " << rb.source << "  dim " << rb.dim << "  log_volume " << rb.log_volume << '\n';
    } else {
        const char* sep = spec.format == bv::Format::csv ? "," : "\t";
        auto q = [&](const std::string& s) {
            return spec.format == bv::Format::csv ? "\"" + s + "\"" : s;
        };
        std::cout << "result" << sep << "reason" << sep << "a" << sep << "a_dim" << sep << "a_log_volume" << sep << "b"
                  << sep << "b_dim" << sep << "b_log_volume\n"
                  << result << sep << q(reason) << sep << q(ra.source) << sep << ra.dim << sep << ra.log_volume << sep
                  << q(rb.source) << sep << rb.dim << sep << rb.log_volume << '\n';
    }
    std::cerr << "basinvol: " << reason << '\n';
    return finish_output(c > 0 ? exit_ok : exit_failed);
}

int cmd_spectrum(const std::vector<std::string>& sources, const CommonOptions& o) {
    auto a = to_analyze(o);
    a.keep_eigenvalues = true;
    auto spec = spec_for("spectrum", o, false);
    Work w = expand(sources);
    std::vector<bv::Row> rows;
    bool ok = run_all(w, a, [&](const bv::Row& r) {
        if (!r.ok) std::cerr << "basinvol: error: " << r.error << '\n';
        rows.push_back(r);
    });
    bv::write_spectra(std::cout, rows, spec);
    return finish_output(ok ? exit_ok : exit_failed);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"basinvol: basin dimension and log-volume from loss Hessians in HDF5.\n"
                 "Flat directions (|lambda| <= tol) are counted, not regularized; basins rank by\n"
                 "dimension first, then by log-volume.",
                 "basinvol"};
    app.set_version_flag("--version", "basinvol " + bv::version());
    app.require_subcommand(1);
    app.footer("Example: basinvol rank checkpoints.h5\nRun 'basinvol COMMAND --help' for a command's options.");

    CommonOptions o;
    std::vector<std::string> sources;
    std::string a_src, b_src;

    auto* volume = app.add_subcommand("volume", "Dimension and log-volume of each Hessian");
    volume->add_option("SOURCE", sources, "FILE or FILE:PATH (a dataset, or a group: every Hessian below it)")
        ->required();
    add_common(volume, o, false, true);
    volume->footer("Example: basinvol volume run.h5:/checkpoints --format tsv");

    auto* rank = app.add_subcommand("rank", "Rank basins: dimension first, then log-volume (place 1 = largest)");
    rank->add_option("SOURCE", sources, "FILE or FILE:PATH (a dataset, or a group: every Hessian below it)")
        ->required();
    add_common(rank, o, true, true);
    rank->footer("Example: basinvol rank run.h5 other.h5:/final --format json");

    auto* compare = app.add_subcommand("compare", "Exit 0 when basin A ranks strictly above basin B, else 1");
    compare->add_option("A", a_src, "FILE:PATH of one Hessian")->required();
    compare->add_option("B", b_src, "FILE:PATH of one Hessian")->required();
    add_common(compare, o, true, false);
    compare->footer("Example: basinvol compare run.h5:/checkpoints/step_0100 run.h5:/checkpoints/step_0900");

    auto* spectrum = app.add_subcommand("spectrum", "Every eigenvalue, marked kept or dropped by the cut");
    spectrum->add_option("SOURCE", sources, "FILE or FILE:PATH")->required();
    add_common(spectrum, o, false, false);
    spectrum->footer("Example: basinvol spectrum run.h5:/checkpoints/step_0100 --format tsv");

    if (argc > 1 && argv[1][0] != '-') {
        const std::string word = argv[1];
        if (word != "volume" && word != "rank" && word != "compare" && word != "spectrum") {
            std::cerr << "basinvol: unknown command '" << word
                      << "' (expected volume, rank, compare or spectrum)\nRun 'basinvol --help' for usage.\n";
            return exit_usage;
        }
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version: stdout, exit 0
        std::cerr << "basinvol: " << e.what() << "\nRun 'basinvol --help' for usage.\n";
        return exit_usage;
    }

    try {
        if (*volume) return cmd_volume(sources, o);
        if (*rank) return cmd_rank(sources, o);
        if (*spectrum) return cmd_spectrum(sources, o);
        if (*compare) return cmd_compare(a_src, b_src, o);
    } catch (const bv::UsageError& e) {
        std::cerr << "basinvol: " << e.what() << "\nRun 'basinvol --help' for usage.\n";
        return exit_usage;
    } catch (const bv::Error& e) {
        std::cerr << "basinvol: error: " << e.what() << '\n';
        return *compare ? exit_usage : exit_failed;
    } catch (const std::exception& e) {
        std::cerr << "basinvol: error: " << e.what() << '\n';
        return *compare ? exit_usage : exit_failed;
    }
    return exit_usage;
}
