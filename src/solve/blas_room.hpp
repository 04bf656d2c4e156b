#pragma once
// OpenBLAS under an address-space limit (ulimit -v). OpenBLAS maps a work
// buffer (128 MiB) the first time a call needs one and keeps it for later
// calls from any thread; a call that finds every mapped buffer in use maps
// another. When the limit leaves no room for it, OpenBLAS retries the
// mapping forever: a hang no signal but SIGKILL ends. The budget counts a
// buffer per job (batch/scheduler.cpp), but what reading leaves mapped
// beyond its count (HDF5's caches for a dataset of very many chunks, the
// allocator's) can take that room before the first solve. BlasRoom, taken
// around every solve, turns that into an error row: under a limit that
// leaves too little room for a second buffer, solves run one at a time on
// the one buffer, mapped up front while room remains.
#include "../address_room.hpp"

#include <cstddef>
#include <mutex>
#include <shared_mutex>

namespace basinvol::detail {

// Whether a BLAS call of this process has mapped OpenBLAS's buffer, and a
// call that maps it (once per process, one caller at a time; a product
// large enough to take OpenBLAS's general path: small ones skip the
// buffer). The caller holds a BlasSection (threads.hpp).
bool blas_buffer_mapped();
void map_blas_buffer();

// Under an address-space limit, before a batch reads anything: blocks the
// allocator frees go back to the kernel (its own threshold would keep
// blocks of up to 32 MB in its heap, address space no budget sees again),
// threads share its main heap (an arena of their own reserves 64 MB at a
// time), and OpenBLAS's buffer, which the batch's reserve counts, is
// mapped while that room is there. Nothing without a limit.
void prepare_for_address_limit();

// Held around a solve. Throws Error (with no source: the row's is added)
// when the limit leaves no room for the buffer the solve may need.
class BlasRoom {
public:
    BlasRoom();
    ~BlasRoom();
    BlasRoom(const BlasRoom&) = delete;
    BlasRoom& operator=(const BlasRoom&) = delete;

private:
    // Solves with room for a buffer of their own run alongside (shared);
    // one without it runs alone (exclusive), on the buffer mapped.
    std::shared_lock<std::shared_mutex> alongside_;
    std::unique_lock<std::shared_mutex> alone_;
};

}  // namespace basinvol::detail
