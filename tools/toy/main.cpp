// basinvol-toy: writes toy Hessians with their exact answers to HDF5.
// Exit status: 0 written, 1 the file could not be written, 2 usage error
// (including spectra whose rank the stored type cannot resolve), 128 + the
// signal when SIGINT, SIGTERM or SIGHUP stopped it (OUT as it was).
#include "../cli/choice.hpp"
#include "../cli/descriptors.hpp"
#include "../cli/journal.hpp"
#include "../cli/stack.hpp"
#include "../cli/signals.hpp"
#include "../cli/values.hpp"
#include "../cli/words.hpp"

#include <basinvol/batch/scheduler.hpp>
#include <basinvol/error.hpp>
#include <basinvol/io/writer.hpp>
#include <basinvol/toy/generate.hpp>
#include <basinvol/version.hpp>

#include <CLI/CLI.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace bv = basinvol;
namespace toy = basinvol::toy;

namespace {

// ---------------------------------------------------------------- interrupts
// SIGINT (Ctrl-C), SIGTERM or SIGHUP. Without --append the toys go to a file beside
// OUT: the handler removes it and exits 128 + the signal at once (unlink and
// _exit are safe in a handler), and OUT is as it was. With --append the run
// stops after the toy it is writing and removes what it added, as a failed
// run does; a second signal exits at once.
volatile std::sig_atomic_t g_signal = 0;
std::atomic<long long> g_signal_ns{0};  // when g_signal came (CLOCK_MONOTONIC)
char g_beside[PATH_MAX + 64] = {0};  // the file beside OUT while it is being written

extern "C" void on_signal(int sig) {
    if (sig == SIGHUP && g_signal != 0) return;  // a closed terminal's second SIGHUP (see basinvol's)
    if (sig == g_signal && cli::monotonic_ns() - g_signal_ns.load() < cli::same_stop_ns) return;  // one stop, twice
    if (g_beside[0] != '\0') ::unlink(g_beside);
    if (g_beside[0] != '\0' || g_signal != 0) ::_exit(128 + sig);
    g_signal_ns.store(cli::monotonic_ns());
    g_signal = sig;
}

// Thrown between toys when a signal arrived during an --append run.
struct Interrupted : std::runtime_error {
    explicit Interrupted(int sig)
        : std::runtime_error(sig == SIGINT ? "SIGINT" : sig == SIGHUP ? "SIGHUP" : "SIGTERM"), signal(sig) {}
    int signal;
};

std::string recipe_text(const toy::Recipe& r) {
    const std::string& dist = bv::name_of(toy::distribution_names(), r.distribution);
    char buf[256];
    std::snprintf(buf, sizeof buf, "flat=%zu curved=%zu negative=%zu spectrum=%s lo=%g hi=%g clusters=%zu spread=%g seed=%llu",
                  r.flat, r.curved, r.negative, dist.c_str(), r.lo, r.hi, r.clusters, r.spread,
                  static_cast<unsigned long long>(r.seed));
    return buf;
}

// KEY=VALUE: a number, else a string.
void apply_override(bv::Attributes& a, const std::string& kv) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) throw bv::UsageError("--set must be KEY=VALUE, got '" + kv + "'");
    const std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
    a.numbers.erase(key);
    a.strings.erase(key);
    if (key == "name") {  // always text: --set name=42 names the toy "42"
        a.name = value;
        return;
    }
    // The attributes the reader knows by name have their own slots; a
    // deliberately unreadable value (loss_threshold=abc) replaces the slot.
    std::optional<double>* slot = key == "loss_threshold" ? &a.loss_threshold
                                  : key == "step"         ? &a.step
                                  : key == "loss"         ? &a.loss
                                  : key == "hessian_error" ? &a.hessian_error
                                                           : nullptr;
    const std::optional<double> x = bv::parse_finite(value);
    if (slot) *slot = x;
    if (x && !slot) a.numbers[key] = *x;
    if (!x) a.strings[key] = value;
}

// The command line, parsed.
struct ToyArgs {
    std::string out, dataset, eigenvalues, preset, loss_text;
    toy::StoredType dtype = toy::StoredType::float64;
    std::optional<std::uint64_t> rotate;
    std::size_t n = 0, count = 0;
    double threshold = 1;
    std::string name;
    bool append = false, list = false;
    std::vector<std::string> overrides;
    toy::Recipe recipe;
    CLI::Option* eigs = nullptr;
    CLI::Option* preset_given = nullptr;
    CLI::Option* loss = nullptr;
    CLI::Option* flat = nullptr;
    CLI::Option* curved = nullptr;
    CLI::Option* count_given = nullptr;
    CLI::Option* n_given = nullptr;
    CLI::Option* dataset_given = nullptr;
    CLI::Option* clusters = nullptr;
    CLI::Option* spread = nullptr;
};

// Counts are read as decimal whole numbers ("08" is 8; "-1" and "0x3" are
// refused, not wrapped or read as hex). n's own bound is the memory budget
// (check_size); seeds stay below 2^53, where SEED + i is written exactly.
constexpr std::uint64_t kMaxN = std::uint64_t(1) << 32, kMaxCount = 1000000,
                        kMaxSeed = (std::uint64_t(1) << 53) - kMaxCount;

void add_options(CLI::App& app, ToyArgs& a) {
    app.add_option("OUT", a.out, "HDF5 file to write");
    a.dataset_given =
        app.add_option("-d,--dataset", a.dataset, "Dataset path (default /toy; with --count, the group, default /toys)");
    a.eigs = app.add_option("--eigenvalues", a.eigenvalues, "The spectrum as a list, e.g. 2,2,0");
    a.preset_given = app.add_option("--preset", a.preset, "A named toy (--list-presets)");
    a.loss = app.add_option("--loss", a.loss_text, "A toy loss, e.g. 'x^2 + y^4' (format: docs/toys.md)");
    a.n_given = app.add_option("--n", a.n, "Dimension of a --loss or --preset toy (default: the coordinates it uses)")
                    ->transform(cli::whole(1, kMaxN));
    a.flat = app.add_option("--flat", a.recipe.flat, "Recipe: number of flat (exactly zero) directions")
        ->transform(cli::whole(0, kMaxN));
    a.curved = app.add_option("--curved", a.recipe.curved, "Recipe: number of nonzero eigenvalues")
        ->transform(cli::whole(0, kMaxN));
    std::vector<CLI::Option*> recipe_only;  // the recipe's own knobs, meaningless beside another spectrum
    recipe_only.push_back(a.flat);
    recipe_only.push_back(a.curved);
    recipe_only.push_back(app.add_option("--negative", a.recipe.negative, "Recipe: how many of the curved eigenvalues are negative")
                              ->transform(cli::whole(0, kMaxN)));
    recipe_only.push_back(cli::add_choice(&app, "--spectrum", a.recipe.distribution, toy::distribution_names(),
                                          "Recipe: how the curved |lambda| spread between --lo and --hi"));
    recipe_only.push_back(app.add_option("--lo", a.recipe.lo, "Recipe: smallest |lambda|")
                              ->transform(cli::decimal())
                              ->capture_default_str());
    recipe_only.push_back(app.add_option("--hi", a.recipe.hi, "Recipe: largest |lambda|")
                              ->transform(cli::decimal())
                              ->capture_default_str());
    a.clusters = app.add_option("--clusters", a.recipe.clusters, "Recipe (clustered): number of clusters")
                     ->transform(cli::whole(1, kMaxN))
                     ->capture_default_str();
    recipe_only.push_back(a.clusters);
    a.spread = app.add_option("--spread", a.recipe.spread, "Recipe (clustered): relative half-width of a cluster")
                   ->transform(cli::decimal())
                   ->capture_default_str();
    recipe_only.push_back(a.spread);
    recipe_only.push_back(
        app.add_option("--seed", a.recipe.seed, "Recipe: seed of the spectrum (toy i of --count uses SEED+i)")
            ->transform(cli::whole(0, kMaxSeed))
            ->capture_default_str());
    app.add_option("--rotate", a.rotate, "Rotate by a random orthogonal matrix from this seed (toy i: SEED+i)")
        ->transform(cli::whole(0, kMaxSeed));
    cli::add_choice(&app, "--dtype", a.dtype, toy::stored_type_names(), "Stored type");
    app.add_option("-T,--threshold", a.threshold, "Loss threshold written as loss_threshold")->transform(cli::decimal())->capture_default_str();
    a.count_given =
        app.add_option("--count", a.count, "Write this many toys into the group --dataset (toy_000, toy_001, ...)")
            ->transform(cli::whole(1, kMaxCount));
    app.add_option("--name", a.name, "The name attribute");
    app.add_flag("--append", a.append, "Add to the toys in OUT (default: replace OUT)");
    app.add_option("--set", a.overrides,
                   "Override an attribute, KEY=VALUE (e.g. a deliberately wrong expected_rank=3 for testing)");
    app.add_flag("--list-presets", a.list, "List the presets and exit");
    a.eigs->excludes(a.preset_given)->excludes(a.loss);
    a.preset_given->excludes(a.loss);
    for (CLI::Option* r : recipe_only) r->excludes(a.eigs)->excludes(a.preset_given)->excludes(a.loss);
    a.n_given->excludes(a.eigs)->excludes(a.flat)->excludes(a.curved);  // their n is the spectrum's length
    app.footer("Examples:\n"
               "  basinvol-toy toys.h5 --preset parabola              # x^2 + y^2 in R^3, log V = log(pi T)\n"
               "  basinvol-toy toys.h5 --append -d /lu --flat 10 --curved 40 --lo 1e-4 --hi 1e2 --rotate 7\n"
               "  basinvol-toy toys.h5 --append -d /q --loss 'x^2 + y^4'\n"
               "Exit status: 0 written, 1 write failed, 2 usage error, 130/143/129 stopped by SIGINT/SIGTERM/SIGHUP\n"
               "(OUT as it was).");
}

// Toy i of the ones asked for.
toy::ToySpec toy_spec(const ToyArgs& a, std::size_t i) {
    toy::ToySpec spec;
    spec.type = a.dtype;
    spec.threshold = a.threshold;
    spec.name = a.name;
    if (a.rotate) spec.rotation = *a.rotate + i;
    if (!a.eigs->empty()) {
        spec.eigenvalues = toy::parse_list(a.eigenvalues);
        spec.recipe = "eigenvalues=" + a.eigenvalues;
    } else if (!a.preset_given->empty()) {
        const toy::Preset* p = toy::find_preset(a.preset);
        if (!p) throw bv::UsageError("unknown preset '" + a.preset + "' (see --list-presets)");
        spec.loss = toy::PolyLoss::parse(p->loss, a.n ? a.n : p->n);
        spec.preset = p->name;
        if (spec.name.empty()) spec.name = p->name;
    } else if (!a.loss->empty()) {
        spec.loss = toy::PolyLoss::parse(a.loss_text, a.n);
    } else {
        toy::Recipe r = a.recipe;
        r.seed = a.recipe.seed + i;
        spec.eigenvalues = toy::recipe_spectrum(r);
        spec.recipe = recipe_text(r);
    }
    return spec;
}

// The toy is a dense n×n matrix, rotated: about three n×n float64 arrays,
// which must fit the memory budget.
void check_size(double n, const std::string& what) {
    const double need = 3 * 8 * n * n, budget = static_cast<double>(bv::default_memory_budget());
    if (need > budget)
        throw bv::UsageError(what + " is n = " + bv::value_text(n) + ", a toy that needs about " +
                             bv::value_text(std::ceil(need / 1e8) / 10) + " GB, over the memory budget of " +
                             bv::value_text(std::floor(budget / 1e8) / 10) + " GB");
}

void write_toys(ToyArgs a) {
    if (a.out.empty()) throw bv::UsageError("OUT is required");
    const bool from_recipe = a.eigs->empty() && (!a.flat->empty() || !a.curved->empty());
    if (a.eigs->empty() && a.preset_given->empty() && a.loss->empty() && !from_recipe)
        throw bv::UsageError("give a spectrum: --eigenvalues, --preset, --loss or --flat/--curved");
    if (!(a.threshold > 0 && std::isfinite(a.threshold)))
        throw bv::UsageError("-T/--threshold must be a positive finite number, got " + bv::value_text(a.threshold));
    if (!a.dataset.empty() && a.dataset.front() != '/')
        throw bv::UsageError("-d/--dataset must be an absolute path such as /toy, got '" + a.dataset + "'");
    if (!a.dataset_given->empty() && a.dataset.empty()) throw bv::UsageError("-d/--dataset needs a path, got ''");
    if (!a.count && !a.dataset.empty() && a.dataset.back() == '/')
        throw bv::UsageError("-d/--dataset must name a dataset, not a group, got '" + a.dataset + "'");
    // The clustered spectrum's knobs change nothing in another: a run that
    // gives them meant a clustered toy, and must not get a log-uniform one.
    for (const CLI::Option* knob : {a.clusters, a.spread})
        if (!knob->empty() && a.recipe.distribution != toy::Distribution::clustered)
            throw bv::UsageError(knob->get_name() + " shapes a clustered spectrum; add --spectrum clustered "
                                 "(the recipe's spectrum is " +
                                 bv::name_of(toy::distribution_names(), a.recipe.distribution) + ")");
    if (from_recipe)
        check_size(static_cast<double>(a.recipe.flat) + static_cast<double>(a.recipe.curved), "--flat plus --curved");
    if (a.dataset.empty()) a.dataset = a.count ? "/toys" : "/toy";
    // Without --append the toys go to a file beside OUT, renamed over it
    // once all are written; with it, into OUT, and what this run added is
    // removed again when a later toy fails. Either way a run that fails
    // part-way leaves OUT holding the toys it held before (or absent), never
    // some of the new ones.
    // OUT is an HDF5 file: a link is followed to the file it names (which
    // is replaced; the link stays), and a device or FIFO is refused, never
    // renamed over (as root, OUT=/dev/null would replace the machine's).
    const std::string toys_go = "; toys are written to an HDF5 file (a regular file, created or replaced)";
    struct stat st;
    if (::stat(a.out.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
        throw bv::UsageError("OUT " + a.out + " is " +
                             (S_ISDIR(st.st_mode)   ? "a directory"
                              : S_ISCHR(st.st_mode) ? "a character device"
                              : S_ISFIFO(st.st_mode) ? "a FIFO"
                              : S_ISBLK(st.st_mode)  ? "a block device"
                                                     : "a socket") +
                             toys_go);
    const cli::OutputTarget out = cli::output_target(a.out, "OUT");
    // /dev/stdout and its kin name a descriptor (a pipe, a terminal, a file
    // a shell redirect appends to), not a file this run may replace.
    if (out.descriptor >= 0)
        throw bv::UsageError("OUT " + a.out + " is descriptor " + std::to_string(out.descriptor) + " of this process" +
                             toys_go);
    const std::string target = a.append ? out.path : out.path + ".tmp-" + std::to_string(::getpid());
    std::vector<std::string> added;  // with --append: the links this run made, in order
    if (!a.append && target.size() < sizeof g_beside) {
        sigset_t all, old;  // the handler never sees a half-copied name
        sigfillset(&all);
        sigprocmask(SIG_BLOCK, &all, &old);
        std::memcpy(g_beside, target.c_str(), target.size() + 1);
        sigprocmask(SIG_SETMASK, &old, nullptr);
    }
    try {
        for (std::size_t i = 0; i < (a.count ? a.count : 1); ++i) {
            // Names as wide as the last one's (at least 3 digits): name order is toy order.
            char leaf[48];
            std::snprintf(leaf, sizeof leaf, "/toy_%0*zu", a.count > 1000 ? static_cast<int>(std::to_string(a.count - 1).size()) : 3, i);
            toy::ToySpec spec;
            toy::Toy t;
            try {
                spec = toy_spec(a, i);
                if (spec.loss) check_size(static_cast<double>(spec.loss->n()), "the loss's dimension (--n)");
                t = toy::make_toy(spec);
            } catch (const bv::UsageError& refused) {
                if (!a.count) throw;
                // Which of the toys, and the seed that draws it again alone.
                const bool recipe = a.eigs->empty() && a.preset_given->empty() && a.loss->empty();
                throw bv::UsageError(std::string(leaf + 1) +
                                     (recipe ? " (--seed " + std::to_string(a.recipe.seed + i) + ")" : "") + ": " +
                                     refused.what());
            }
            for (const auto& kv : a.overrides) apply_override(t.attrs, kv);
            const std::string path = a.count ? (a.dataset == "/" ? std::string(leaf) : a.dataset + leaf) : a.dataset;
            const std::string adds = a.append ? bv::missing_prefix(target, path) : "";
            bv::write_hessian(target, path, t.matrix, spec.type == toy::StoredType::float32, t.attrs,
                              a.append || i > 0 ? bv::WriteMode::append : bv::WriteMode::create);
            if (!adds.empty()) added.push_back(adds);
            if (g_signal != 0) throw Interrupted(g_signal);
        }
        if (!a.append && std::rename(target.c_str(), out.path.c_str()) != 0)
            throw std::runtime_error(a.out + ": Unable to move the written toys into place: " + std::strerror(errno));
        g_beside[0] = '\0';
    } catch (const std::exception& e) {
        g_beside[0] = '\0';
        if (!a.append) std::remove(target.c_str());
        for (auto it = added.rbegin(); it != added.rend(); ++it) try {
                bv::remove_link(target, *it);
            } catch (const std::exception& x) {  // the first failure is the one to report
                std::cerr << "basinvol-toy: warning: " << x.what() << " (a toy this run added)\n";
            }
        if (a.append || dynamic_cast<const bv::UsageError*>(&e) || dynamic_cast<const Interrupted*>(&e)) throw;
        std::string m = e.what();  // the message names OUT, not the file beside it
        for (std::size_t at = m.find(target); at != std::string::npos; at = m.find(target, at + a.out.size()))
            m.replace(at, target.size(), a.out);
        throw std::runtime_error(m);
    }
}

}  // namespace

int main(int argc, char** argv) {
    cli::hold_standard_descriptors();
    cli::ensure_stack();
    CLI::App app{"basinvol-toy: write toy Hessians with known answers (expected_rank, expected_dim,\n"
                 "expected_negative, expected_log_volume) to HDF5, for `basinvol validate`.",
                 "basinvol-toy"};
    app.set_version_flag("--version", "basinvol-toy " + bv::version());
    ToyArgs args;
    add_options(app, args);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return cli::written(app.exit(e), "basinvol-toy");
        std::cerr << "basinvol-toy: " << e.what() << "\nRun 'basinvol-toy --help' for usage.\n";
        return 2;
    }
    if (args.list) {
        for (const auto& p : toy::presets())
            std::cout << p.name << "\tn=" << p.n << "\t" << p.loss << "\t" << p.about << '\n';
        return cli::written(0, "basinvol-toy");
    }
    cli::catch_stop_signals(on_signal);
    try {
        write_toys(args);
    } catch (const Interrupted& e) {
        std::cerr << "basinvol-toy: interrupted by " << e.what() << ": " << args.out
                  << " holds the toys it held before\n";
        return 128 + e.signal;
    } catch (const bv::UsageError& e) {
        std::cerr << "basinvol-toy: " << cli::usage_message(e) << "\nRun 'basinvol-toy --help' for usage.\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "basinvol-toy: error: " << cli::cli_words(e.what()) << '\n';
        return 1;
    }
    return 0;
}
