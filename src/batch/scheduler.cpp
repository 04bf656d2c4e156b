// The batch scheduler: worker threads take items in input order, each after
// reserving its working set against the memory budget; the calling thread
// delivers rows (in input or finish order) and progress.
#include "../solve/blas.hpp"
#include "../solve/blas_room.hpp"
#include "../threads.hpp"

#include <basinvol/batch/scheduler.hpp>
#include <basinvol/error.hpp>
#include <basinvol/io/reader.hpp>
#include <basinvol/solve/spectrum.hpp>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <dlfcn.h>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <sched.h>
#include <sstream>
#include <sys/resource.h>
#include <system_error>
#include <thread>
#include <unistd.h>

namespace basinvol {

std::size_t working_set_bytes(const HessianInfo& info) {
    if (!info.structure.empty()) return info.working_bytes;
    const std::size_t n = info.n;
    // Matrix in memory + float64 copy for dsyevd and the factored Cholesky
    // (float64 data is solved in place by dsyevd, but the sketch's Y, Q, W
    // blocks, 3·n·(n/4) doubles, sit beside it) + O(n) vectors and the
    // two-stage reduction's workspace. The matrix is
    // counted as float64 for float data too: one that is not symmetric is
    // held as its exact symmetric part in float64 (Hessian::validated).
    return add_bytes(bytes_of(double(n) * double(n) * double(2 * sizeof(double)) + 64.0 * double(n) * sizeof(double)),
                     two_stage_workspace_bytes(n));
}

namespace {

// Lanczos (src/solve/lanczos.cpp) at its largest, nev = k = n/4 pairs in a
// basis of ncv vectors, beside the matrix: Spectra's basis V (n·ncv), its
// tridiagonal and that one's eigenvectors (2·ncv²), the Ritz vectors in the
// basis (ncv·k), and the Ritz vectors, their scaled copy and Spectra's
// restart block (3·n·k). Measured: 332 MB at n = 4000, where this counts 368.
double lanczos_peak_bytes(std::size_t n) {
    const double k = double(std::min(n / 4, n - 1));
    const double ncv = std::min(double(n), std::max(2 * k + 1, k + 20));
    const double N = double(n);
    return double(sizeof(double)) * (N * N + N * ncv + 2 * ncv * ncv + ncv * k + 3 * N * k + 64 * N);
}

}  // namespace

std::size_t analysis_bytes(const HessianInfo& info, const AnalyzeOptions& options) {
    if (!info.structure.empty())
        return add_bytes(info.working_bytes, options.keep_eigenvalues ? info.n * sizeof(double) : 0);
    const std::size_t need = working_set_bytes(info);
    if (options.method != Method::lanczos || info.n < 2) return need;
    return std::max(need, bytes_of(lanczos_peak_bytes(info.n)));
}

namespace {

std::size_t read_number_file(const char* path) {
    std::ifstream in(path);
    std::string s;
    if (!(in >> s) || s == "max") return 0;
    try {
        return static_cast<std::size_t>(std::stoull(s));
    } catch (...) {
        return 0;
    }
}

}  // namespace

std::size_t cgroup_memory_limit(const std::string& proc_cgroup, const std::string& root) {
    // v1's "no limit" is a page-rounded 2^63 - 1: anything this large is none.
    constexpr std::size_t unlimited = std::size_t(1) << 62;
    std::size_t best = 0;
    auto consider = [&](const std::string& file) {
        const std::size_t v = read_number_file(file.c_str());
        if (v > 0 && v < unlimited && (best == 0 || v < best)) best = v;
    };
    // From the process's own cgroup up to the root: the smallest limit on the
    // way binds (Slurm sets it on the job's cgroup, a container on its own).
    auto walk = [&](const std::string& mount, std::string path, const char* name) {
        while (!path.empty() && path.back() == '/') path.pop_back();
        for (;;) {
            consider(mount + path + "/" + name);
            if (path.empty()) break;
            path.erase(path.rfind('/'));
        }
    };
    std::istringstream lines(proc_cgroup);
    std::string line;
    while (std::getline(lines, line)) {
        // "hierarchy-id:controllers:path"; cgroup v2 is "0::path".
        const auto a = line.find(':');
        const auto b = a == std::string::npos ? a : line.find(':', a + 1);
        if (b == std::string::npos) continue;
        const std::string controllers = line.substr(a + 1, b - a - 1);
        const std::string path = line.substr(b + 1);
        if (path.empty() || path[0] != '/') continue;
        if (controllers.empty()) {
            walk(root, path, "memory.max");
            continue;
        }
        std::istringstream list(controllers);
        std::string c;
        while (std::getline(list, c, ','))
            if (c == "memory") walk(root + "/memory", path, "memory.limit_in_bytes");
    }
    // No /proc/self/cgroup (or paths this mount namespace does not show): the mount's own root.
    consider(root + "/memory.max");
    consider(root + "/memory/memory.limit_in_bytes");
    return best;
}

std::size_t usable_memory_bytes() {
    std::size_t m = physical_memory_bytes();
    std::ifstream in("/proc/self/cgroup");
    const std::string text(std::istreambuf_iterator<char>(in), {});
    const std::size_t limit = cgroup_memory_limit(text, "/sys/fs/cgroup");
    if (limit > 0 && (m == 0 || limit < m)) m = limit;
    return m;
}

std::size_t default_memory_budget() {
    std::size_t m = usable_memory_bytes();
    return m ? m / 2 : std::size_t(8) << 30;
}

std::size_t available_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int c = CPU_COUNT(&set);
        if (c > 0) return static_cast<std::size_t>(c);
    }
    unsigned h = std::thread::hardware_concurrency();
    return h ? h : 1;
}

std::size_t address_space_left() { return detail::address_room(); }

int blas_threads() { return openblas_get_num_threads(); }

void set_blas_threads(int n) {
    if (n < 1) throw UsageError("BLAS threads must be >= 1, got " + std::to_string(n));
    openblas_set_num_threads(n);
}

std::string blas_core() {
    const char* c = openblas_get_corename();
    return c ? c : "";
}

std::string better_blas_core() {
    std::string core = blas_core();
    for (auto& ch : core) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    // Only the generic fallbacks are second-guessed; a recognized CPU is left alone.
    if (core != "prescott" && core != "core2" && core != "nehalem" && core != "katmai") return "";
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
    return "";
}

bool quiet_idle_blas_threads() {
    if (std::getenv("OPENBLAS_THREAD_TIMEOUT")) return false;
    // OpenBLAS's own entry points for its environment and its thread pool
    // (driver/others/openblas_env.c, blas_server.c), looked up rather than
    // linked: not every OpenBLAS build has them.
    using ReadEnv = void (*)();
    using Timeout = unsigned (*)();
    using Shutdown = int (*)();
    const auto read_env = reinterpret_cast<ReadEnv>(::dlsym(RTLD_DEFAULT, "openblas_read_env"));
    const auto timeout = reinterpret_cast<Timeout>(::dlsym(RTLD_DEFAULT, "openblas_thread_timeout"));
    const auto shutdown = reinterpret_cast<Shutdown>(::dlsym(RTLD_DEFAULT, "blas_thread_shutdown_"));
    if (!read_env || !timeout || !shutdown || ::setenv("OPENBLAS_THREAD_TIMEOUT", "20", 1) != 0) return false;
    read_env();  // OpenBLAS keeps what it read; the variable can go
    ::unsetenv("OPENBLAS_THREAD_TIMEOUT");
    if (timeout() != 20) return false;
    shutdown();  // its next threaded call starts the threads again, with the new timeout
    return true;
}

namespace {

std::string gigabytes(std::size_t bytes) {
    std::ostringstream s;
    s.precision(3);
    s << double(bytes) / 1e9 << " GB";
    return s.str();
}

using Clock = std::chrono::steady_clock;

// How much may run at once.
struct Budget {
    std::size_t bytes = 0;
    bool address_limited = false;  // cut to what `ulimit -v` leaves
};

// What each job keeps out of an address-space limit: OpenBLAS's buffer, a
// thread stack and a malloc arena.
constexpr std::size_t job_reserve_bytes = blas_buffer_bytes + (std::size_t(72) << 20);


}  // namespace

// One job's reserve that this process has mapped already and keeps for the
// next analysis: OpenBLAS keeps the buffer it maps for later calls from any
// thread, and a thread that starts after another ended takes over its
// malloc arena and cached stack (measured: repeated analyses of n = 2000
// in one Python process, each from a new thread, map nothing more after the
// first). Without it, a long-lived process (a notebook) under `ulimit -v`
// refused on its second call the Hessian its first had analysed, counting
// that reserve twice. Granted only once a BLAS call of this process is
// known to have mapped a buffer (warm_up), one reserve at most, and only to
// a batch or lone analysis that starts while no other one runs: two at once
// need a buffer each. (BLAS called by the caller's own threads at the same
// time, numpy's for one, is not counted, here or before.)
namespace detail {
class ReserveClaim {
public:
    ReserveClaim() = default;
    ReserveClaim(const ReserveClaim&) = delete;
    ReserveClaim& operator=(const ReserveClaim&) = delete;
    // The bytes of reserve this batch need not count.
    std::size_t credit() {
        std::lock_guard<std::mutex> lock(mutex());
        State& s = state();
        const bool alone = s.running++ == 0;
        claimed_ = true;
        return alone && detail::blas_buffer_mapped() ? job_reserve_bytes : 0;
    }
    // Maps OpenBLAS's buffer, once per process, for an analysis that fits
    // with the reserve counted.
    static void warm_up() {
        detail::BlasSection section(detail::fork_gate());
        detail::map_blas_buffer();
    }
    ~ReserveClaim() {
        if (!claimed_) return;
        std::lock_guard<std::mutex> lock(mutex());
        --state().running;
    }

private:
    struct State {
        std::size_t running = 0;     // batches and lone analyses under way
    };
    static std::mutex& mutex() {
        static std::mutex m;
        return m;
    }
    static State& state() {
        static State s;
        return s;
    }
    bool claimed_ = false;
};
}  // namespace detail

namespace {

// Sets sum.jobs (and sum.blas_threads) and returns the memory budget. Under
// an address-space limit (ulimit -v) the budget is also what the limit
// leaves, less per job a BLAS buffer, a thread stack and a malloc arena:
// OpenBLAS maps a buffer for each thread that calls it and retries forever
// when it cannot, so running out there would be a hang, not an error row.
// Jobs are cut until they take at most half of what is left (never below
// one); OpenBLAS's own threads would need a buffer each too, so BLAS runs one
// thread per job.
Budget plan_jobs(const BatchOptions& opt, std::size_t solvable, BatchSummary& sum, detail::ReserveClaim& claim) {
    Budget b;
    b.bytes = opt.memory_budget ? opt.memory_budget : default_memory_budget();
    if (b.bytes == 0) throw UsageError("max_memory", "must be positive");
    const std::size_t cpus = available_cpus();
    sum.jobs = std::max<std::size_t>(1, std::min(opt.jobs ? opt.jobs : cpus, std::max<std::size_t>(1, solvable)));
    const std::size_t left = address_space_left();
    if (left != SIZE_MAX) {
        const std::size_t per_job = job_reserve_bytes, mapped = claim.credit();
        const auto unmapped = [&](std::size_t jobs) { return per_job * jobs - std::min(per_job * jobs, mapped); };
        while (sum.jobs > 1 && unmapped(sum.jobs) > left / 2) --sum.jobs;
        const std::size_t reserve = unmapped(sum.jobs);
        const std::size_t room = left > reserve ? left - reserve : 0;
        if (room < b.bytes) {
            b.bytes = room;
            b.address_limited = true;
        }
    }
    if (opt.split_blas_threads)
        sum.blas_threads = left != SIZE_MAX ? 1 : static_cast<int>(std::max<std::size_t>(1, cpus / sum.jobs));
    return b;
}

}  // namespace

Row over_budget_row(const HessianInfo& info, std::size_t need, const std::string& why) {
    // The part, unless it is the whole (a diagonal Hessian is its own part).
    const bool named = !info.working_part.empty() && info.working_part.rfind(info.dataset + ",", 0) != 0;
    const std::string part = named ? " (its largest part: " + info.working_part + ")" : "";
    return error_row(info, info.source() + ": n = " + std::to_string(info.n) + " needs " +
                               (need == SIZE_MAX ? "more than " : "about ") + gigabytes(need) + " to analyze" + part +
                               ", " + why);
}

namespace {

Row over_budget_row(const HessianInfo& info, std::size_t need, const Budget& b) {
    if (!b.address_limited)
        return over_budget_row(info, need, "over the memory budget of " + gigabytes(b.bytes) + " (option max_memory)");
    return over_budget_row(info, need,
                           "out of memory under the address-space limit (ulimit -v), which leaves " + gigabytes(b.bytes) +
                               " beside what each job's BLAS needs (" + gigabytes(job_reserve_bytes) +
                               "): raise the limit");
}

// Finished rows, as the delivering thread takes them.
struct Delivery {
    std::deque<std::pair<std::size_t, Row>> rows;
    bool finished = false;  // every worker has stopped and nothing is left
    std::size_t running = 0;
    std::string current;
};

// The workers: each starts the next item in input order once its working set
// fits the budget. The destructor stops and joins them, so an exception on
// the delivering thread (a row callback that throws) unwinds cleanly.
class Pool {
public:
    Pool(const std::vector<WorkItem>& items, const std::vector<std::size_t>& need, const Budget& budget,
         const BatchOptions& opt, std::function<Row(std::size_t, const HessianInfo&)> run_one, std::size_t jobs)
        : items_(items), need_(need), budget_(budget), opt_(opt), run_one_(std::move(run_one)), left_(jobs) {
        threads_.reserve(jobs);
        // A thread that cannot start (a process limit, ulimit -u, or a pids
        // cgroup) leaves its share to those that did; with none, the items
        // run here, on the delivering thread, before the first take().
        std::size_t started = 0;
        try {
            for (; started < jobs; ++started) threads_.emplace_back([this] { work(); });
        } catch (const std::system_error&) {
            std::unique_lock<std::mutex> lock(m_);
            left_ -= jobs - started;  // those started may have finished already
        } catch (...) {               // no memory for a thread's state: join those that did start
            stop_and_join();
            throw;
        }
        if (started == 0) {
            left_ = 1;
            work();
        }
    }
    ~Pool() { stop_and_join(); }
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;

    // The rows finished since the last call, waiting at most one tick for one.
    Delivery take() {
        std::unique_lock<std::mutex> lock(m_);
        if (ready_.empty() && left_ > 0) done_.wait_for(lock, opt_.tick);
        if (stopping()) work_.notify_all();
        Delivery d;
        d.rows.swap(ready_);
        d.finished = left_ == 0 && d.rows.empty();
        d.running = running_;
        d.current = current_;
        return d;
    }

private:
    bool stopping() const { return abort_ || (opt_.stop && opt_.stop->load()); }

    void stop_and_join() {
        {
            std::lock_guard<std::mutex> lock(m_);
            abort_ = true;
        }
        work_.notify_all();
        for (auto& t : threads_) t.join();
        threads_.clear();
    }

    void finish(std::size_t i, Row r) {  // under the lock
        ready_.emplace_back(i, std::move(r));
        done_.notify_one();
    }

    void work() {
        std::unique_lock<std::mutex> lock(m_);
        while (next_ < items_.size() && !stopping()) {
            const std::size_t i = next_;
            const WorkItem& item = items_[i];
            if (item.error) {  // nothing to compute
                ++next_;
                finish(i, *item.error);
            } else if (need_[i] > budget_.bytes) {
                ++next_;
                finish(i, over_budget_row(item.info, need_[i], budget_));
            } else if (reserved_ + need_[i] > budget_.bytes) {  // wait for room; items start in input order
                work_.wait_for(lock, opt_.tick);
            } else {
                ++next_;
                reserved_ += need_[i];
                ++running_;
                current_ = item.label();
                lock.unlock();
                Row r = run_one_(i, item.info);
                lock.lock();
                reserved_ -= need_[i];
                --running_;
                finish(i, std::move(r));
                work_.notify_all();
            }
        }
        --left_;
        done_.notify_one();
    }

    const std::vector<WorkItem>& items_;
    const std::vector<std::size_t>& need_;
    const Budget budget_;
    const BatchOptions& opt_;
    const std::function<Row(std::size_t, const HessianInfo&)> run_one_;
    std::mutex m_;
    std::condition_variable work_;  // a reservation was released, or stop
    std::condition_variable done_;  // a row is ready
    std::size_t next_ = 0;          // next item to start
    std::size_t reserved_ = 0;      // bytes of the running working sets
    std::size_t running_ = 0;
    std::size_t left_;              // workers still running
    bool abort_ = false;
    std::string current_;
    std::deque<std::pair<std::size_t, Row>> ready_;
    std::vector<std::thread> threads_;  // last: started after every member above exists
};

}  // namespace

AloneJob::AloneJob() : claim_(std::make_unique<detail::ReserveClaim>()) {}
AloneJob::~AloneJob() = default;

std::optional<Row> AloneJob::over_budget(const HessianInfo& info, std::size_t need, std::size_t budget) {
    BatchOptions opt;
    opt.memory_budget = budget;
    opt.jobs = 1;
    BatchSummary sum;
    claim_ = std::make_unique<detail::ReserveClaim>();  // a second check: the first one's claim ends
    const Budget b = plan_jobs(opt, 1, sum, *claim_);
    if (need > b.bytes) return over_budget_row(info, need, b);
    if (address_space_left() != SIZE_MAX) detail::ReserveClaim::warm_up();  // the reserve for its buffer was counted
    return std::nullopt;
}

std::optional<Row> over_budget_alone(const HessianInfo& info, std::size_t need, std::size_t budget) {
    return AloneJob().over_budget(info, need, budget);
}

const Names<RowOrder>& row_order_names() {
    static const Names<RowOrder> names = {{"input", RowOrder::input}, {"finish", RowOrder::finish}};
    return names;
}

BatchSummary run_batch(const std::vector<WorkItem>& items, const BatchOptions& opt, const BatchCallbacks& cb) {
    const auto t0 = Clock::now();
    AnalyzeOptions analyze_opt = opt.analyze;  // side_by_side set below, once the jobs are known
    auto analyze_one = opt.analyze_one ? opt.analyze_one
                                       : std::function<Row(std::size_t, const HessianInfo&)>(
                                             [&](std::size_t, const HessianInfo& h) { return analyze(h, analyze_opt); });
    // analyze() turns every failure of the input into a row; anything else
    // escaping a worker would end the process, so it becomes a row as well.
    auto run_one = [analyze_one](std::size_t i, const HessianInfo& h) {
        try {
            return analyze_one(i, h);
        } catch (const std::exception& e) {
            return error_row(h, e.what());  // names the source
        }
    };
    // A structure's values are not all in memory unless the row keeps them.
    auto estimate = opt.estimate ? opt.estimate : std::function<std::size_t(const HessianInfo&)>([&](const HessianInfo& h) {
        return analysis_bytes(h, opt.analyze);
    });
    std::vector<std::size_t> need(items.size(), 0);
    std::size_t solvable = 0;
    for (std::size_t i = 0; i < items.size(); ++i)
        if (!items[i].error) {
            need[i] = estimate(items[i].info);
            ++solvable;
        }
    BatchSummary sum;
    detail::ReserveClaim claim;  // released once the pool below has joined its threads
    const Budget budget = plan_jobs(opt, solvable, sum, claim);
    if (solvable > 0) detail::prepare_for_address_limit();
    std::optional<blas::ThreadCount> blas;  // the count as it was, on every way out of run_batch
    if (opt.split_blas_threads) blas.emplace(sum.blas_threads);
    // One job alone may spend its BLAS threads and the memory budget as it
    // likes (a structure's square parts side by side); when the caller keeps
    // the thread count, its own setting stands.
    if (opt.split_blas_threads) analyze_opt.side_by_side = {sum.jobs == 1, budget.bytes};

    std::map<std::size_t, Row> held;  // input order: rows waiting for an earlier one
    std::size_t next_out = 0;
    auto deliver = [&](std::size_t i, const Row& r) {
        ++sum.delivered;
        if (!r.ok) ++sum.failed;
        if (cb.on_row) cb.on_row(i, r);
    };
    {
        Pool pool(items, need, budget, opt, run_one, sum.jobs);
        for (Delivery d = pool.take();; d = pool.take()) {
            for (auto& [i, r] : d.rows) {
                if (cb.on_finished) cb.on_finished(i, r);
                if (opt.order == RowOrder::finish) {
                    deliver(i, r);
                    continue;
                }
                held.emplace(i, std::move(r));
                for (; !held.empty() && held.begin()->first == next_out; ++next_out) {
                    deliver(next_out, held.begin()->second);
                    held.erase(held.begin());
                }
            }
            if (cb.on_progress)
                cb.on_progress({sum.delivered, items.size(), d.running, d.current,
                                std::chrono::duration<double>(Clock::now() - t0).count()});
            if (d.finished) break;
        }
    }
    // Stopped early: rows that finished after a gap in input order still go out, in order.
    for (auto& [i, r] : held) deliver(i, r);
    sum.not_started = items.size() - sum.delivered;
    sum.stopped = sum.not_started > 0;
    return sum;
}

}  // namespace basinvol
