// Work that may crash or hang inside HDF5 (walking a corrupt file, reading
// values through a FIFO or a hung file system) runs in a forked child under
// a watchdog: a child that dies or overruns its limit is an error for one
// Hessian, never the death or the hang of the caller.
#include "../threads.hpp"
#include "hdf5_detail.hpp"

#include <basinvol/error.hpp>
#include <basinvol/io/forks.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <poll.h>
#include <pthread.h>
#include <sstream>
#include <cstdio>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace basinvol {
namespace {

// Set while this thread forks for run_in_child, which holds the HDF5 mutex
// and the BLAS gate itself: the fork handlers pass that fork through.
thread_local bool own_fork = false;

// What the fork handlers hold across a fork of the program's own.
std::unique_lock<std::recursive_mutex>* held_hdf5 = nullptr;
std::unique_lock<std::shared_mutex>* held_gate = nullptr;

void before_fork() {
    if (own_fork) return;
    held_hdf5 = new std::unique_lock<std::recursive_mutex>(detail::hdf5_mutex());  // reads under way finish
    held_gate = new std::unique_lock<std::shared_mutex>(detail::fork_gate());       // BLAS calls under way finish
}

void after_fork_in_parent() {
    if (own_fork) return;
    delete held_gate;
    delete held_hdf5;
    held_gate = nullptr;
    held_hdf5 = nullptr;
}

void after_fork_in_child() {
    if (own_fork) return;
    // The parent's copies stay locked (and leak, once per fork): fresh ones.
    held_gate->release();
    held_hdf5->release();
    held_gate = nullptr;
    held_hdf5 = nullptr;
    detail::hdf5_mutex_slot() = new std::recursive_mutex;
    detail::fork_gate_slot() = new std::shared_mutex;
}

// The child: run the work, send its answer, exit without running this
// process's exit handlers or flushing its stdio buffers.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool address_sanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool address_sanitizer = true;
#else
constexpr bool address_sanitizer = false;
#endif
#else
constexpr bool address_sanitizer = false;
#endif

// Caps this process's address space at what it maps now plus `room` bytes.
void cap_address_space(std::size_t room) {
    if (room == 0 || address_sanitizer) return;
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    unsigned long long pages = 0;
    const bool read = f && std::fscanf(f, "%llu", &pages) == 1;
    if (f) std::fclose(f);
    rlimit lim{};
    if (!read || ::getrlimit(RLIMIT_AS, &lim) != 0) return;
    const auto page = static_cast<unsigned long long>(::sysconf(_SC_PAGESIZE));
    const unsigned long long want = pages * page + room;
    if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur <= want) return;  // a tighter cap already
    lim.rlim_cur = static_cast<rlim_t>(want);
    ::setrlimit(RLIMIT_AS, &lim);
}

int answer_fd = -1;  // the pipe a child answers through (send_to_parent)

bool write_all(int fd, const std::string& bytes) {
    for (std::size_t done = 0; done < bytes.size();) {
        const ssize_t k = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        done += static_cast<std::size_t>(k);
    }
    return true;
}

[[noreturn]] void child(const std::function<std::string()>& work, int fd, pid_t parent, std::size_t room,
                        const std::vector<int>& writers) {
#ifdef __linux__
    // A child stuck in a hung read must not outlive a parent that was killed.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) _exit(4);
#else
    (void)parent;
#endif
    cap_address_space(room);
    detail::hdf5_mutex_slot() = new std::recursive_mutex;  // the parent's copy stays locked
    detail::fork_gate_slot() = new std::shared_mutex;       // likewise
    detail::keep_read_only(writers);
    answer_fd = fd;
    std::string bytes;
    try {
        bytes = work();
    } catch (...) {
        _exit(5);  // the work encodes its errors; anything else is a failure without an answer
    }
    if (!write_all(fd, bytes)) _exit(3);
    _exit(0);
}

// Reads the child's answer until it closes the pipe or the deadline passes
// (false), or `stop` says so (false, `stopped` set).
bool read_answer(int fd, double limit, std::string& bytes, const std::function<bool()>& stop, bool& stopped,
                 const std::function<bool(const std::string&)>& progress) {
    using Clock = std::chrono::steady_clock;
    limit = std::min(limit, 1e9);  // about 30 years: "no limit", without overflowing the clock
    const auto span = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(limit));
    auto deadline = Clock::now() + span;
    char chunk[65536];
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) return false;
        if (stop && stop()) {
            stopped = true;
            return false;
        }
        struct pollfd p {};
        p.fd = fd;
        p.events = POLLIN;
        const long long slice = stop ? std::min<long long>(left + 1, 100) : std::min<long long>(left + 1, 1 << 30);
        const int ready = ::poll(&p, 1, static_cast<int>(slice));
        if (ready < 0 && errno != EINTR) return true;
        if (ready <= 0) continue;
        const ssize_t k = ::read(fd, chunk, sizeof chunk);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return true;
        bytes.append(chunk, static_cast<std::size_t>(k));
        if (progress && progress(bytes)) deadline = Clock::now() + span;
    }
}

}  // namespace

void detail::send_to_parent(const std::string& bytes) {
    if (answer_fd < 0 || !write_all(answer_fd, bytes)) _exit(3);
}

std::optional<detail::ChildResult> detail::run_in_child(const std::function<std::string()>& work, double limit,
                                                        const std::function<bool()>& stop, std::size_t room,
                                                        const std::function<bool(const std::string&)>& progress) {
    // Held across fork: no other thread is inside HDF5 while its state is copied.
    std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
    int fd[2];
    if (::pipe(fd) != 0) return std::nullopt;
    const std::vector<int> writers = detail::writer_descriptors();
    const pid_t parent = ::getpid();
    std::unique_lock<std::shared_mutex> gate(fork_gate());  // no BLAS call runs across the fork
    own_fork = true;
    const pid_t pid = ::fork();
    own_fork = false;
    if (pid != 0) gate.unlock();
    if (pid < 0) {
        ::close(fd[0]);
        ::close(fd[1]);
        return std::nullopt;
    }
    if (pid == 0) {
        ::close(fd[0]);
        child(work, fd[1], parent, room, writers);
    }
    ::close(fd[1]);
    ChildResult r;
    const bool answered = read_answer(fd[0], limit, r.bytes, stop, r.stopped, progress);
    r.timed_out = !answered && !r.stopped;
    ::close(fd[0]);
    if (!answered) ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    r.clean = answered && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
    return r;
}

void hold_forks_for_work_under_way() {
    static const int registered = ::pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
    (void)registered;
}

double detail::read_time_limit(const ReadOptions& opt, std::size_t bytes) {
    if (opt.time_limit > 0) return opt.time_limit;
    return default_read_time_limit + static_cast<double>(bytes) / default_read_bytes_per_second;
}

void detail::read_isolated(const std::string& where, std::size_t bytes, const ReadOptions& opt,
                           const std::function<void(void*)>& read, void* out) {
    if (opt.isolate == ReadOptions::Isolation::never) return read(out);
    // The child writes the values into memory shared with this process; they
    // are then moved into `out` a slice at a time, each slice of the shared
    // copy released once moved, so the peak stays near one copy.
    const std::size_t length = std::max<std::size_t>(bytes, 1);
    // Mapped under the HDF5 mutex, which every fork takes: no other child
    // process inherits the mapping (and keeps its pages alive).
    std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
    void* shared = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) return read(out);  // cannot isolate: read here
    const double limit = read_time_limit(opt, bytes);
    std::optional<ChildResult> r = run_in_child(
        [&]() -> std::string {
            try {
                read(shared);
                return "K";
            } catch (const Error& e) {
                return std::string("E") + e.what();
            } catch (const std::bad_alloc&) {
                return "E" + where + ": out of memory while reading the values";
            }
        },
        limit);
    if (!r) {
        ::munmap(shared, length);
        return read(out);
    }
    if (!r->clean || r->bytes.empty() || r->bytes[0] != 'K') {
        ::munmap(shared, length);
        if (r->timed_out) {
            std::ostringstream v;
            v << limit;
            throw InputError(where + ": reading the values took longer than the limit of " + v.str() +
                             " s, so it was stopped (a FIFO or a hung file system behind the data, or HDF5 "
                             "looping on corrupt data; option read_timeout)");
        }
        if (r->clean && !r->bytes.empty() && r->bytes[0] == 'E') throw InputError(r->bytes.substr(1));
        if (r->signal == SIGKILL)
            throw InputError(where + ": the process reading the values was killed (SIGKILL: out of memory under a "
                                     "memory limit, or stopped from outside)");
        std::string why = where + ": the HDF5 library failed while reading the values (corrupt data";
        if (r->signal) why += "; it stopped on signal " + std::to_string(r->signal);
        throw InputError(why + ")");
    }
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t slice = std::max<std::size_t>(page, std::size_t(64) << 20) / page * page;
    for (std::size_t at = 0; at < bytes; at += slice) {
        const std::size_t k = std::min(slice, bytes - at);
        std::memcpy(static_cast<char*>(out) + at, static_cast<char*>(shared) + at, k);
        // Shared memory stays until its pages are removed (unmapping keeps
        // them): free each slice once it is copied.
        if (k == slice) ::madvise(static_cast<char*>(shared) + at, k, MADV_REMOVE);
    }
    ::munmap(shared, length);
}

}  // namespace basinvol
