#pragma once
// Room left under an address-space limit (ulimit -v). Under such a limit a
// failed allocation inside a library is not always an error it reports:
// OpenBLAS retries a buffer it cannot map forever (solve/blas_room.hpp),
// and HDF5 1.10 can crash freeing a B-tree node it could not finish reading
// (io/chunk_reader.cpp checks the room a chunked read needs first).
#include <sys/resource.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>

namespace basinvol::detail {

// Bytes of address space left under RLIMIT_AS beyond what this process has
// mapped; SIZE_MAX when there is no such limit.
inline std::size_t address_room() {
    struct rlimit rl {};
    if (::getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return SIZE_MAX;
    std::ifstream in("/proc/self/statm");
    std::size_t pages = 0;
    if (!(in >> pages)) return SIZE_MAX;
    const long page = ::sysconf(_SC_PAGESIZE);
    const std::size_t used = pages * static_cast<std::size_t>(page > 0 ? page : 4096);
    const std::size_t limit = static_cast<std::size_t>(rl.rlim_cur);
    return limit > used ? limit - used : 0;
}

}  // namespace basinvol::detail
