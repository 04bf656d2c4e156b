#pragma once
// Work shared by a few threads, for the passes over one large matrix that
// would otherwise leave cores idle (inflating chunks, checking values), and
// for a structure's square parts solved two at a time.
#include <exception>
#include <thread>
#include <vector>

namespace basinvol::detail {

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
