#pragma once
// The command line's side of batch work, the one driver of every command
// that reads SOURCEs: SOURCE lists, shards, the runner (jobs, memory budget),
// the progress bar, Ctrl-C, and output written through a temporary file.
#include "common.hpp"

#include <basinvol/batch/scheduler.hpp>
#include <basinvol/batch/shard.hpp>
#include <basinvol/io/reader.hpp>

#include <atomic>
#include <functional>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace cli {

// Batch options, as the user gave them: those of every command that reads
// SOURCEs (add_input_options) and the output options of `volume` and `rank`.
struct BatchCli {
    std::size_t jobs = 0;
    bv::RowOrder order = bv::RowOrder::input;
    std::vector<std::string> files_from;
    std::string shard;
    std::string output;
    bool resume = false;
    bool no_progress = false;
    bool from_results = false;
    bool per_block = false;  // volume: a row for each top-level block (or parameter block) too
    double list_timeout = bv::default_listing_time_limit;
};

// The SOURCE arguments, then each --files-from list ("-": standard input; one
// SOURCE a line, blank lines skipped). Throws UsageError when there is none.
std::vector<std::string> gather_sources(const std::vector<std::string>& args, const BatchCli& b);

// Every Hessian of every source in this shard, in input order; a source that
// cannot be listed is an error item (in the shard its text hashes to).
// With `per_block`, each top-level member of a `blocks` structure, and each
// parameter block of a dense dataset carrying param_offsets (its diagonal
// block), follows its Hessian as a Hessian of its own (its own cut: the
// block's own curvature).
// `listed`, when given, receives the row source each SOURCE that listed
// would have had as an error row, in every shard: --resume tries such a row
// again though the SOURCE's Hessians now fall in other shards.
// `split`, when given, receives the sources of every shard's Hessians (and
// SOURCEs that cannot be listed) together, --per-block's parts left out:
// what the run without `shard` lists, so that merged shards can tell they
// are whole.
// `once` (a ranking): a Hessian an earlier SOURCE listed too (bv::drop_listed_twice)
// is left out, with a warning (said as `program`); otherwise each SOURCE
// gives its rows, as often as it is given.
std::vector<bv::WorkItem> plan(const std::vector<std::string>& sources, const std::optional<bv::Shard>& shard,
                               bool per_block = false, const bv::ListOptions& listing = {},
                               std::set<std::string>* listed = nullptr, std::set<std::string>* split = nullptr,
                               bool once = false, const char* program = "basinvol");

// The work of a command: its SOURCE arguments and --files-from lists, in
// --shard's shard, listed under --list-timeout. Throws UsageError.
std::vector<bv::WorkItem> work_for(const std::vector<std::string>& args, const BatchCli& b,
                                   std::set<std::string>* listed = nullptr, std::set<std::string>* split = nullptr,
                                   bool once = false);

// The memory budget --max-memory gives (default: default_memory_budget()).
std::size_t memory_budget(const CommonOptions& o);

// Results written to FILE through FILE.tmp-XXXXXX in the same directory and
// a rename at commit(); a run that stops before commit() leaves FILE as it was.
// FILE is output_target(path): a link's target, or a stream (a device, a
// FIFO) written in place.
class AtomicFile {
public:
    explicit AtomicFile(const std::string& path);
    ~AtomicFile();
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;
    std::ostream& stream() { return descriptor_out_ ? *descriptor_out_ : out_; }
    // Flushes, syncs and renames; throws bv::Error on a write failure.
    void commit();

private:
    std::string path_, temp_;  // temp_ is empty for a stream
    std::ofstream out_;
    // A descriptor of this process named as FILE (-o /dev/stderr): written
    // through a copy of it, sharing its file offset, never reopened.
    std::unique_ptr<std::streambuf> descriptor_buf_;
    std::unique_ptr<std::ostream> descriptor_out_;
    bool committed_ = false;
};

// Places rows by the ranking rule (and by regularized volume when
// `regularized`), with the notes `tool` writes on stderr when the Hessians'
// n differ. Returns whether every row got a regularized place.
// `recorded_cuts`, when not empty, names the cut options the ranked results
// files record differently: every row is marked mixed_cut.
bool place_rows(std::vector<bv::Row>& rows, const CommonOptions& o, const bv::AnalyzeOptions& a, bool regularized,
                const char* tool, const std::string& recorded_cuts = "");

// Ctrl-C, SIGTERM and SIGHUP: the first stops new work (running Hessians
// finish and their rows are written); a second SIGINT or SIGTERM abandons
// them at once, removing the temporary output file and exiting 128 + the
// signal (a second SIGHUP, which a closed terminal sends, is ignored). `abandon_at_once`
// makes the first signal abandon (basinvol-mpi: mpirun kills the ranks a
// few seconds after it forwards the signal, too soon to finish a Hessian);
// `abandon_note`, a line with "{signal}" where the signal's name goes, is
// written to stderr by the signal that abandons.
void install_interrupt_handlers(bool abandon_at_once = false, const std::string& abandon_note = "");
const std::atomic<bool>* interrupt_flag();
int interrupt_signal();  // 0 when none arrived
// Stops the batch as a signal would (running Hessians finish), without one:
// the rows' reader is gone (a failed write to standard output).
void request_stop();

// done / total, current source, elapsed and ETA on stderr, only when stderr is
// a terminal; messages printed through it do not tear the bar.
class Progress {
public:
    explicit Progress(bool wanted);
    void update(const bv::BatchProgress& p);
    void message(const std::string& line);
    void finish();

private:
    void draw();
    void clear();
    bool on_ = false;
    bool drawn_ = false;
    bv::BatchProgress last_;
    double last_draw_ = -1;
    bool told_stop_ = false;
};

// Runs `items` through the batch runner with -j, the memory budget, Ctrl-C
// and the progress bar; each row goes to `on_row` with its item's index, in
// input order (--order finish: as it finishes), and first, as soon as it is
// finished, to `on_finished`. Error rows are reported on stderr.
using OnRow = std::function<void(std::size_t index, const bv::Row&)>;
bv::BatchSummary run_items(const std::vector<bv::WorkItem>& items, bv::BatchOptions bo, const CommonOptions& o,
                           const BatchCli& b, Progress& progress, const OnRow& on_row,
                           const std::function<void()>& on_tick = {}, const OnRow& on_finished = {});

// The exit status of a run: 128 + the signal that stopped it, else 1 when a
// row failed, else 0.
int batch_status(bool failed);

// Runs a batch for `volume` or `rank`: sources (or saved rows), resume, shard,
// jobs, progress, interrupts. `rank` collects every row and ranks before
// writing; `volume` streams. Returns the exit status.
int run_batch_command(const std::string& command, const std::vector<std::string>& args, const CommonOptions& o,
                      const BatchCli& b);

}  // namespace cli
