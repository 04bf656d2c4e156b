// The basinvol command line. Only the CLI chooses exit statuses and touches
// stdout/stderr. Exit status: 0 every source succeeded, 1 at least one failed
// (the others are still reported), 2 usage error. `compare` exits 0 when A
// ranks strictly above B, 1 when it does not, 2 on error. `validate` exits 0
// when every check agrees, 1 when any disagrees or cannot be made. A batch
// stopped by SIGINT, SIGTERM or SIGHUP exits 128 + the signal.
#include "descriptors.hpp"
#include "journal.hpp"
#include "stack.hpp"
#include "options.hpp"

#include <basinvol/error.hpp>
#include <basinvol/version.hpp>

#include <basinvol/batch/scheduler.hpp>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

using namespace cli;

namespace {

// Older OpenBLAS (Debian 12 ships 0.3.21) does not know newer CPU models and
// falls back to its generic SSE3 kernels, which run the dense solver at half
// speed. OpenBLAS reads OPENBLAS_CORETYPE only while loading, so the process
// restarts itself once with the kernels the CPU supports. A user's own
// OPENBLAS_CORETYPE is always left alone.
//
// Under an address-space limit (ulimit -v) OpenBLAS's own threads, started
// when it loads, each map a 128 MiB buffer and retry forever when they
// cannot; the process then hangs at its first fork or at exit. So a process
// under such a limit restarts with OPENBLAS_NUM_THREADS=1 (one BLAS thread
// per job; the scheduler keeps room for their buffers), unless the user set
// OPENBLAS_NUM_THREADS.
void choose_blas_kernels(char** argv) {
    bool restart = false;
    if (!std::getenv("OPENBLAS_CORETYPE")) {
        const std::string core = bv::better_blas_core();
        if (!core.empty() && ::setenv("OPENBLAS_CORETYPE", core.c_str(), 1) == 0) restart = true;
    }
    struct rlimit rl {};
    if (!std::getenv("OPENBLAS_NUM_THREADS") && ::getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        ::setenv("OPENBLAS_NUM_THREADS", "1", 1) == 0)
        restart = true;
    if (!restart) return;
    ::execv("/proc/self/exe", argv);
    // exec failed: carry on as loaded
}

// What the command line holds once parsed: the options of every command and
// which command was chosen.
struct Args {
    CommonOptions o;
    BatchCli batch;
    ValidateCli validate_options;
    std::vector<std::string> sources;
    std::string a_src, b_src;
    CLI::App* volume = nullptr;
    CLI::App* rank = nullptr;
    CLI::App* compare = nullptr;
    CLI::App* spectrum = nullptr;
    CLI::App* validate = nullptr;
};

void add_commands(CLI::App& app, Args& a) {
    a.volume = app.add_subcommand("volume", "Dimension and log-volume of each Hessian");
    a.volume->add_option("SOURCE", a.sources, "FILE or FILE:PATH (a dataset, or a group: every Hessian below it)");
    add_common(a.volume, a.o, false, true);
    add_batch(a.volume, a.batch, true, false);
    a.volume->footer("Example: basinvol volume run.h5:/checkpoints --format tsv\n"
                     "         basinvol volume ckpt/*.h5 -j 4 -f jsonl -o rows.jsonl --resume");

    a.rank = app.add_subcommand("rank", "Rank basins: dimension first, then log-volume (place 1 = largest)");
    a.rank->add_option("SOURCE", a.sources,
                       "FILE or FILE:PATH (a dataset, or a group: every Hessian below it); with --from-results, "
                       "files of saved rows");
    add_common(a.rank, a.o, true, true);
    add_batch(a.rank, a.batch, false, true);
    a.rank->footer("Example: basinvol rank run.h5 other.h5:/final --format json\n"
                   "         basinvol rank --from-results shard1.jsonl shard2.jsonl");

    a.compare = app.add_subcommand("compare", "Exit 0 when basin A ranks strictly above basin B, 1 when it does not, 2 on error, 3 with --strict when noise may decide");
    a.compare->add_option("A", a.a_src, "FILE:PATH of one Hessian")->required();
    a.compare->add_option("B", a.b_src, "FILE:PATH of one Hessian")->required();
    add_common(a.compare, a.o, true, false);
    add_input_options(a.compare, a.batch, false);
    a.compare->add_flag("--strict", a.o.strict,
                        "Exit 3 when the deciding quantity is within noise (dims whose tolerance bands overlap; "
                        "at equal dims, a band, a flat value another draw of the input may keep, an ambiguous "
                        "rank, or log-volumes within their reach, log_volume_error + log_volume_noise; "
                        "with --negatives last, a saddle that may be a minimum or a minimum a saddle: "
                        "docs/method.md), or when A and B are cut at different levels against their largest "
                        "eigenvalues (mixed_level: a float32 copy beside a float64 one)");
    a.compare->footer("Example: basinvol compare run.h5:/checkpoints/step_0100 run.h5:/checkpoints/step_0900");

    a.spectrum = app.add_subcommand("spectrum", "The eigenvalues, marked kept or dropped by the cut (a partial method computes those "
                                           "above its certified bound; --method dense every one)");
    a.spectrum->add_option("SOURCE", a.sources, "FILE or FILE:PATH (a dataset, or a group: every Hessian below it)");
    add_common(a.spectrum, a.o, false, false);
    add_input_options(a.spectrum, a.batch);
    a.spectrum->footer("Example: basinvol spectrum run.h5:/checkpoints/step_0100 --format tsv");

    a.validate = app.add_subcommand(
        "validate", "Check toys with known answers (expected_* attributes): exit 0 when every check agrees");
    a.validate->add_option("SOURCE", a.sources, "FILE or FILE:PATH of toys written by basinvol-toy");
    add_validate_options(a.validate, a.o, a.batch, a.validate_options);
    a.validate->footer("Example: basinvol validate testdata/toys/suite.h5\n"
                       "Checks rank, dim, negative and log_volume against expected_*; estimates the volume by\n"
                       "Monte Carlo (curved rank <= 8); shows the radial estimator's bias; samples the true loss\n"
                       "of toys that record it (toy_loss). See docs/toys.md.");
}

// `rank --from-results` ranks rows as they were computed: an option that
// would have changed how is refused, not ignored.
void refuse_analysis_options(const CLI::App& rank, bool negatives_last) {
    for (const char* name : {"--cut", "--rtol", "--atol", "--min-gap", "--method", "--threshold", "--hessian-error",
                             "--max-asymmetry", "--read-timeout", "--max-memory", "--regularized", "--per-block"})
        if (const CLI::Option* given = rank.get_option_no_throw(name); given && given->count() > 0)
            throw bv::UsageError(std::string("--from-results ranks saved rows as they were computed: ") + name +
                                 " does not apply (rank the Hessians themselves to change it)");
    if (rank.get_option("--negatives")->count() > 0 && !negatives_last)
        throw bv::UsageError("--from-results ranks saved rows as they were computed: only --negatives last (an "
                             "order) applies to them");
}

// SIGPIPE when standard output, which carries the results, has lost its
// reader ends basinvol as it ends any Unix filter (exit 141, quietly).
// Otherwise (standard error's reader gone: a log reader, a closed session's
// tee; or the results go to -o FILE) the diagnostics are lost and the run
// goes on: -o FILE is still finished and renamed into place.
volatile std::sig_atomic_t g_results_on_stdout = 1;
extern "C" void on_broken_pipe(int) {
    const int saved = errno;  // the interrupted write's EPIPE is what its caller reads
    struct pollfd out {STDOUT_FILENO, POLLOUT, 0};
    if (g_results_on_stdout && ::poll(&out, 1, 0) == 1 && (out.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) {
        struct sigaction fall {};
        fall.sa_handler = SIG_DFL;
        ::sigaction(SIGPIPE, &fall, nullptr);
        ::raise(SIGPIPE);
    }
    errno = saved;
}

// Runs the chosen command; its errors become a message and an exit status.
int run(const Args& a) {
    try {
        if (*a.rank && a.batch.from_results)
            refuse_analysis_options(*a.rank, a.o.negatives == bv::NegativePolicy::last);
        // Every command runs its Hessians through the batch runner, which
        // turns a tight ulimit -v into error rows (it keeps room for OpenBLAS).
        if (*a.volume) return cmd_volume(a.sources, a.o, a.batch);
        if (*a.rank) return cmd_rank(a.sources, a.o, a.batch);
        if (*a.spectrum) return cmd_spectrum(a.sources, a.o, a.batch);
        if (*a.compare) return cmd_compare(a.a_src, a.b_src, a.o, a.batch);
        if (*a.validate) return cmd_validate(a.sources, a.o, a.batch, a.validate_options);
    } catch (const bv::UsageError& e) {
        std::cerr << "basinvol: " << one_line(usage_message(e)) << "\nRun 'basinvol --help' for usage.\n";
        return exit_usage;
    } catch (const std::exception& e) {
        std::cerr << "basinvol: error: " << one_line(cli_words(e.what())) << '\n';
        return *a.compare ? exit_usage : exit_failed;
    }
    return exit_usage;
}

}  // namespace

int main(int argc, char** argv) {
    cli::hold_standard_descriptors();
    cli::ensure_stack();
    choose_blas_kernels(argv);
    bv::quiet_idle_blas_threads();
    // A script's background job (`basinvol ... &`) starts with SIGINT
    // ignored; a stop signal stops basinvol all the same (docs/batch.md):
    // its default first (a signal while listing ends the process, -o FILE
    // untouched), the batch's handler once work starts.
    for (const int sig : {SIGINT, SIGTERM}) {
        struct sigaction now;
        if (::sigaction(sig, nullptr, &now) == 0 && now.sa_handler == SIG_IGN) std::signal(sig, SIG_DFL);
    }
    // (SIGPIPE ignored by the caller stays ignored: every failed write is then an error.)
    if (struct sigaction now; ::sigaction(SIGPIPE, nullptr, &now) == 0 && now.sa_handler == SIG_DFL) {
        struct sigaction broken {};
        broken.sa_handler = on_broken_pipe;
        sigemptyset(&broken.sa_mask);
        ::sigaction(SIGPIPE, &broken, nullptr);
    }
    CLI::App app{"basinvol: basin dimension and log-volume from loss Hessians in HDF5.\n"
                 "Flat directions (|lambda| <= tol) are counted, not regularized; basins rank by\n"
                 "dimension first, then by log-volume.",
                 "basinvol"};
    app.set_version_flag("--version", "basinvol " + bv::version());
    app.require_subcommand(1);
    app.footer("Example: basinvol rank checkpoints.h5\nRun 'basinvol COMMAND --help' for a command's options.");
    Args args;
    add_commands(app, args);
    if (argc > 1 && argv[1][0] != '-') {
        const std::string word = argv[1];
        if (word != "volume" && word != "rank" && word != "compare" && word != "spectrum" && word != "validate") {
            std::cerr << "basinvol: unknown command '" << word
                      << "' (expected volume, rank, compare, spectrum or validate)\nRun 'basinvol --help' for usage.\n";
            return exit_usage;
        }
    }
    if (const std::string option_like = cli::option_like_source(app, argc, argv); !option_like.empty()) {
        std::cerr << "basinvol: " << option_like << "\n";
        return exit_usage;
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return cli::written(app.exit(e), "basinvol");  // --help, --version: stdout, exit 0
        std::cerr << "basinvol: " << e.what() << "\nRun 'basinvol --help' for usage.\n";
        return exit_usage;
    }
    // -o - or a name of descriptor 1 (/dev/stdout): standard output, as with
    // no -o (kept for --resume, which refuses it by its name).
    if (cli::names_standard_output(args.batch.output) && !(args.batch.resume && args.batch.output != "-"))
        args.batch.output.clear();
    for (const CLI::App* sub : {args.volume, args.rank})
        if (sub->parsed()) cli::format_from_output(*sub, args.batch.output, args.o.format);
    g_results_on_stdout = args.batch.output.empty() ? 1 : 0;
    return run(args);
}
