#pragma once
// Large buffers ask for transparent huge pages. Each first touch of a 4 KB
// page is a fault; on the virtual machines basinvol is measured on a fault
// costs about 3 µs, so filling a 576 MB matrix (n = 12000, float32) spent
// 1.6 s in the kernel, more than inflating it. With 2 MB pages the same
// fill faults 288 times (docs/performance.md).
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

namespace basinvol::detail {

// Advises the kernel to back [p, p + bytes) with huge pages where it can.
// Only the whole pages inside the range are advised; the advice is a
// hint, so a kernel without transparent huge pages (or with them set to
// "never") changes nothing, and that is not an error.
inline void advise_huge_pages(void* p, std::size_t bytes) {
    constexpr std::size_t worth = std::size_t(4) << 20;  // below this, few faults to save
    if (p == nullptr || bytes < worth) return;
    const long size = ::sysconf(_SC_PAGESIZE);
    const std::uintptr_t page = size > 0 ? static_cast<std::uintptr_t>(size) : 4096;
    const std::uintptr_t begin = (reinterpret_cast<std::uintptr_t>(p) + page - 1) & ~(page - 1);
    const std::uintptr_t end = (reinterpret_cast<std::uintptr_t>(p) + bytes) & ~(page - 1);
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

// The same for the storage of a dense Eigen matrix.
template <class Matrix>
void advise_huge_pages(Matrix& m) {
    advise_huge_pages(m.data(), static_cast<std::size_t>(m.size()) * sizeof(typename Matrix::Scalar));
}

}  // namespace basinvol::detail
