#pragma once
// Running analyze() over many Hessians at once: a pool of jobs under a memory
// budget, rows handed back on the calling thread in input or finish order.
//
// The scheduler never starts a Hessian whose working set (working_set_bytes)
// would push the sum of running working sets past the budget; a Hessian that
// could never fit becomes an error row. Reading is serialized inside the
// reader (HDF5 is not thread-safe); solving runs in parallel.
#include <basinvol/names.hpp>
#include <basinvol/analyze.hpp>
#include <basinvol/result.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace basinvol {

// One unit of work: a Hessian to analyze, or a source that could not be
// listed (its error row is the result).
struct WorkItem {
    HessianInfo info;
    std::optional<Row> error;
    // What the progress display calls it: FILE:/dataset, or the SOURCE text.
    std::string label() const { return error ? error->source : info.source(); }
};

// Bytes the analysis of one Hessian holds at its peak: the matrix in float64
// (float data is widened when it is not symmetric) plus the float64 copy the
// dense solver and the factored Cholesky work on (or room for the sketch's
// blocks, which are smaller), plus O(n) vectors. An upper bound for every
// method the default analysis runs; `--method lanczos` holds more
// (analysis_bytes).
std::size_t working_set_bytes(const HessianInfo& info);

// What the scheduler holds against the budget for one Hessian: its working
// set (under `--method lanczos`, the larger of it and the matrix beside
// Spectra's Krylov basis and Ritz blocks), plus its eigenvalues when a
// structure's row keeps them.
std::size_t analysis_bytes(const HessianInfo& info, const AnalyzeOptions& options);

// For a Hessian analysed alone (one job, as the Python package runs each):
// the error row when its analysis needs more than `need` bytes (SIZE_MAX:
// more than can be counted) allows, by run_batch's rule and message: over
// `budget` bytes (0: default_memory_budget()), or, under an address-space
// limit (ulimit -v), over what the limit leaves less a BLAS buffer, a thread
// stack and a malloc arena. nullopt when it fits.
std::optional<Row> over_budget_alone(const HessianInfo& info, std::size_t need, std::size_t budget);

// An item whose working set could never fit: an error row, not an
// out-of-memory kill. "SOURCE: n = N needs about X GB to analyze (its
// largest part: P), " and `why` (what it is over).
Row over_budget_row(const HessianInfo& info, std::size_t need, const std::string& why);

namespace detail {
class ReserveClaim;  // scheduler.cpp
}
// over_budget_alone for a caller that then analyses the Hessian itself, on
// its own thread (the Python package): held while it does. Under `ulimit -v`
// a process counts once the job reserve (OpenBLAS's buffer, a malloc arena,
// a stack) its earlier analyses mapped and left for reuse, for an analysis
// or batch that runs while no other one does (scheduler.cpp, ReserveClaim):
// holding this while analysing keeps a second one at the same time from
// counting the same reserve.
class AloneJob {
public:
    AloneJob();
    ~AloneJob();
    AloneJob(const AloneJob&) = delete;
    AloneJob& operator=(const AloneJob&) = delete;
    std::optional<Row> over_budget(const HessianInfo& info, std::size_t need, std::size_t budget);

private:
    std::unique_ptr<detail::ReserveClaim> claim_;
};

// min(physical memory, the cgroup memory limit if one is set); 0 if unknown.
std::size_t usable_memory_bytes();

// The memory limit of the cgroup this process is in: the smallest cgroup v2
// memory.max or v1 memory.limit_in_bytes on the path from its own cgroup
// (named in `proc_cgroup`, the text of /proc/self/cgroup) up to the root of
// the cgroup file system mounted at `root` (/sys/fs/cgroup); 0 when none is
// set. A batch system's limit sits on the job's cgroup, not on the root.
std::size_t cgroup_memory_limit(const std::string& proc_cgroup, const std::string& root);

// The default budget: half of usable_memory_bytes() (8 GiB when unknown).
std::size_t default_memory_budget();

// Bytes of address space left under RLIMIT_AS (ulimit -v) beyond what this
// process has mapped; SIZE_MAX when there is no such limit. Under a limit,
// run_batch runs fewer jobs if their fixed needs would take over half of it,
// lowers its budget to it less a BLAS buffer, a thread stack and a malloc
// arena per job, and runs BLAS on one thread per job.
std::size_t address_space_left();

// The work buffer OpenBLAS maps for each thread that calls it (128 MiB on
// x86-64 builds); it retries forever when it cannot map one.
constexpr std::size_t blas_buffer_bytes = std::size_t(128) << 20;

// CPUs this process may run on (sched affinity, as Slurm's --cpus-per-task sets it).
std::size_t available_cpus();

enum class RowOrder { input, finish };
const Names<RowOrder>& row_order_names();  // input, finish

struct BatchOptions {
    AnalyzeOptions analyze;
    std::size_t jobs = 0;           // 0: available_cpus()
    std::size_t memory_budget = 0;  // bytes; 0: default_memory_budget()
    RowOrder order = RowOrder::input;
    // Set (by a signal handler, say) to start nothing new: running Hessians
    // finish, their rows are delivered, run_batch returns.
    const std::atomic<bool>* stop = nullptr;
    // Split the cores between jobs and OpenBLAS (jobs × BLAS threads ≈ cores);
    // the previous BLAS thread count is restored at the end. With it, the
    // default analysis gets analyze.side_by_side from the plan (allowed for
    // one job, within the memory budget); without it, the caller's stands.
    bool split_blas_threads = true;
    // How often on_progress is called while nothing finishes.
    std::chrono::milliseconds tick{250};
    // The analysis of item `index` (default: analyze(info, analyze), with
    // side_by_side as above); an exception it throws becomes the item's error row.
    std::function<Row(std::size_t index, const HessianInfo&)> analyze_one;
    // The working set of one Hessian (default: working_set_bytes).
    std::function<std::size_t(const HessianInfo&)> estimate;
};

struct BatchProgress {
    std::size_t done = 0;      // rows delivered
    std::size_t total = 0;     // rows the batch will deliver unless stopped
    std::size_t running = 0;   // Hessians being analyzed now
    std::string current;       // the Hessian started last
    double elapsed = 0;        // seconds since run_batch began
};

struct BatchCallbacks {
    // Each row once, on the calling thread; `index` is the item's position.
    std::function<void(std::size_t index, const Row& row)> on_row;
    // After every row and every tick, on the calling thread.
    std::function<void(const BatchProgress&)> on_progress;
    // Each row once, on the calling thread, as soon as it is finished: before
    // on_row, which in input order waits for the rows before it (where a
    // record that must survive a kill is kept: the CLI's journal).
    std::function<void(std::size_t index, const Row& row)> on_finished = {};
};

struct BatchSummary {
    std::size_t delivered = 0;   // rows handed to on_row
    std::size_t failed = 0;      // of which error rows
    std::size_t not_started = 0; // items left undone because `stop` was set
    bool stopped = false;        // `stop` was set before every item was started
    std::size_t jobs = 0;        // jobs actually used
    int blas_threads = 0;        // BLAS threads per job (0: left alone)
};

// Analyzes every item. Throws UsageError for a zero budget; otherwise never
// throws for problems of the input (they are error rows).
BatchSummary run_batch(const std::vector<WorkItem>& items, const BatchOptions& options,
                       const BatchCallbacks& callbacks);

// OpenBLAS's thread count (process-global); set_blas_threads(n ≥ 1).
int blas_threads();
void set_blas_threads(int n);

// The kernel family OpenBLAS chose at load time ("Prescott", "Haswell", ...).
std::string blas_core();

// When OpenBLAS fell back to its generic kernels on a CPU that has AVX2 or
// AVX-512 (older OpenBLAS does not know newer CPU models), the
// OPENBLAS_CORETYPE value that selects the right ones; else empty.
std::string better_blas_core();

// OpenBLAS's idle threads spin (sched_yield) for 2^28 clock cycles, about
// 0.1 s, after it loads and after each threaded call before they sleep: on
// two cores that spin takes a core from the solver threads that need it
// (the first two Kronecker factors solved side by side took 113–121 ms
// where the rest took 64). Unless OPENBLAS_THREAD_TIMEOUT is set, this sets
// OpenBLAS's setting to 2^20 cycles (under a millisecond; consecutive calls
// inside a solve come closer) and restarts its threads so that they take
// it; the environment is left as it was, for the programs basinvol starts.
// Call before any other thread starts. A no-op on an OpenBLAS without these
// entry points; its OpenMP build, which has no such spin, only restarts its
// threads. True when the setting took.
bool quiet_idle_blas_threads();

}  // namespace basinvol
