#include "blas_room.hpp"
#include "blas.hpp"
#include "../threads.hpp"

#include <basinvol/batch/scheduler.hpp>
#include <basinvol/error.hpp>

#include <malloc.h>

#include <cstdint>
#include <sstream>
#include <vector>

namespace basinvol::detail {

namespace {

std::mutex& state_mutex() {
    static std::mutex m;
    return m;
}
bool& mapped() {
    static bool b = false;
    return b;
}
// Solves alongside each other hold it shared; one that must run alone, exclusive.
std::shared_mutex& room_mutex() {
    static std::shared_mutex m;
    return m;
}
// Mapping the buffer needs its own bytes and a little more; a solve beside
// another needs a buffer and a thread's stack and workspace.
constexpr std::size_t map_slack_bytes = std::size_t(4) << 20, slack_bytes = std::size_t(32) << 20;

std::string gigabytes(std::size_t bytes) {
    std::ostringstream s;
    s.precision(3);
    s << double(bytes) / 1e9 << " GB";
    return s.str();
}

}  // namespace

bool blas_buffer_mapped() {
    std::lock_guard<std::mutex> lock(state_mutex());
    return mapped();
}

void map_blas_buffer() {
    // One mapping at a time: two callers at once would map a buffer each.
    static std::mutex mapping;
    std::lock_guard<std::mutex> one(mapping);
    if (blas_buffer_mapped()) return;
    constexpr int k = 256;
    std::vector<double> a(static_cast<std::size_t>(k) * k, 0.0), c(a.size(), 0.0);
    blas::gemm('N', 'N', k, k, k, 1.0, a.data(), k, a.data(), k, 0.0, c.data(), k);
    std::lock_guard<std::mutex> lock(state_mutex());
    mapped() = true;
}

void prepare_for_address_limit() {
    if (address_room() == SIZE_MAX) return;
    ::mallopt(M_MMAP_THRESHOLD, 1 << 20);
    ::mallopt(M_TRIM_THRESHOLD, 1 << 20);
    // Every thread allocates from the main heap, which grows as it needs: a
    // thread's own arena reserves its address space 64 MB at a time, and
    // HDF5 fails (or crashes) on the reservation, not on what it asked for.
    ::mallopt(M_ARENA_MAX, 1);
    if (address_room() >= blas_buffer_bytes + map_slack_bytes) {
        BlasSection section(fork_gate());  // no fork across a BLAS call (threads.hpp)
        map_blas_buffer();
    }
}

// The rooms this thread holds: one inside another takes nothing more.
thread_local int held_here = 0;

BlasRoom::~BlasRoom() { --held_here; }

BlasRoom::BlasRoom() {
    // Counted once the constructor returns: one that throws runs no destructor.
    struct Count {
        bool kept = false;
        Count() { ++held_here; }
        ~Count() {
            if (!kept) --held_here;
        }
    } count;
    if (held_here > 1 || address_room() == SIZE_MAX) {
        count.kept = true;
        return;
    }
    // Room for a buffer of its own beside the one mapped: run alongside.
    if (blas_buffer_mapped()) {
        alongside_ = std::shared_lock<std::shared_mutex>(room_mutex());
        if (address_room() >= 2 * (blas_buffer_bytes + slack_bytes)) {
            count.kept = true;
            return;
        }
        alongside_.unlock();
    }
    alone_ = std::unique_lock<std::shared_mutex>(room_mutex());
    if (!blas_buffer_mapped()) {
        const std::size_t left = address_room();
        if (left < blas_buffer_bytes + map_slack_bytes)
            throw Error("out of address space under the address-space limit (ulimit -v): beside what reading the "
                        "Hessian mapped it leaves " + gigabytes(left) + ", under the " + gigabytes(blas_buffer_bytes) +
                        " of OpenBLAS's work buffer: raise the limit");
        map_blas_buffer();  // the one buffer, free while no other solve runs
    }
    count.kept = true;
}

}  // namespace basinvol::detail
