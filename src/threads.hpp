#pragma once
// Work shared by a few threads, for the passes over one large matrix that
// would otherwise leave cores idle (inflating chunks, checking values), and
// for a structure's square parts solved two at a time.
#include <exception>
#include <shared_mutex>
#include <thread>
#include <vector>

namespace basinvol::detail {

// fork(2) runs OpenBLAS's fork handler, which stops its worker threads: a
// fork while another thread is inside a threaded BLAS call leaves that call
// summing partial work (wrong eigenvalues) or waiting on threads that are
// gone (a hang). Every BLAS section holds this gate shared, and the one
// fork (io/child.cpp, listing and isolated reads) holds it exclusively, so a
// fork waits for the solves under way and no solve starts during it. A BLAS
// section never takes the HDF5 mutex, which a fork holds first. The slot
// lets the forked child start from a fresh gate.
inline std::shared_mutex*& fork_gate_slot() {
    static std::shared_mutex* gate = new std::shared_mutex;
    return gate;
}
inline std::shared_mutex& fork_gate() { return *fork_gate_slot(); }
using BlasSection = std::shared_lock<std::shared_mutex>;  // BlasSection section(fork_gate());

// Seconds this thread has waited for a lock another thread held while
// reading (HDF5's, io/hdf5_detail.hpp): a row's `seconds` leaves them out,
// as they are another Hessian's read.
inline double& waited_seconds() {
    thread_local double seconds = 0;
    return seconds;
}

// Runs `work` on the calling thread and on up to threads − 1 more, joined
// before it returns. `work` takes its items from a shared counter, so a
// thread that cannot be started (a process or memory limit) only leaves its
// share to the others.
template <class Work>
void run_on_threads(unsigned threads, Work work) {
    std::vector<std::thread> pool;
    try {
        pool.reserve(threads);
        for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work);
    } catch (const std::exception&) {
        // fewer threads (no thread or no memory for one): the ones running take the rest
    }
    work();
    for (auto& th : pool) th.join();
}

}  // namespace basinvol::detail
