// Mapped values and the SIGBUS handler that keeps a truncated file from
// killing the process (mapped_values.hpp).
#include "mapped_values.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <string>

namespace basinvol::detail {
namespace {

// The live mappings, read by the handler: lock-free atomics only. A slot is
// in use while `begin` is non-zero. `seq` is odd while a slot is claimed
// or freed, and moves on each time: the handler takes a range only when
// `seq` read the same, and even, before and after it (a slot freed and
// claimed by another job between its loads would pair one mapping's start
// with another's end). A slot in change never holds the faulting mapping
// (its values are not read before it is claimed, nor after it is freed),
// so the handler passes it by rather than waiting (which, in a thread
// interrupted inside the change by a SIGBUS sent with kill, never ends).
struct Slot {
    std::atomic<unsigned> seq{0};
    std::atomic<std::uintptr_t> begin{0}, end{0};
    std::atomic<bool> writable{false};
    std::atomic<bool> faulted{false};
};
constexpr int slot_count = 64;
Slot slots[slot_count];
std::mutex slots_mutex;  // claims and frees slots (never taken by the handler)
std::uintptr_t page_size = 4096;
struct sigaction previous {};

void on_sigbus(int sig, siginfo_t* info, void* context) {
    const auto at = reinterpret_cast<std::uintptr_t>(info->si_addr);
    // Only a fault the kernel raised names an address (kill's si_addr is
    // its sender's pid and uid).
    if (info->si_code > 0) {
        for (Slot& s : slots) {
            const unsigned before = s.seq.load();
            const std::uintptr_t b = s.begin.load(), e = s.end.load();
            if (before % 2 != 0 || s.seq.load() != before || b == 0 || at < b || at >= e) continue;
            // The file ends before this page: zero pages over the rest of the
            // mapping (every later page is past the end too), so the thread
            // reads zeros from here on, and the mapping is marked. Read-only
            // unless the values were made writable: no commit charge for them
            // (under vm.overcommit_memory=2 a writable one could be refused).
            const std::uintptr_t page = at & ~(page_size - 1);
            const int prot = s.writable.load() ? PROT_READ | PROT_WRITE : PROT_READ;
            void* p =
                ::mmap(reinterpret_cast<void*>(page), e - page, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
            s.faulted.store(true);
            if (p != MAP_FAILED) return;
            break;  // cannot recover: as if there were no handler
        }
    }
    if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction != nullptr) {
        previous.sa_sigaction(sig, info, context);
        return;
    }
    if (!(previous.sa_flags & SA_SIGINFO) && previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
        return;
    }
    // The default action (a fault cannot be ignored): it is taken as this
    // handler returns, the fault's instruction never run again.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigemptyset(&dfl.sa_mask);
    ::sigaction(SIGBUS, &dfl, nullptr);
    ::raise(sig);
}

bool install_handler() {
    const long size = ::sysconf(_SC_PAGESIZE);
    if (size > 0) page_size = static_cast<std::uintptr_t>(size);
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    ::sigemptyset(&sa.sa_mask);
    return ::sigaction(SIGBUS, &sa, &previous) == 0;
}

// Whether the handler is in place now: installed once, it may have been
// replaced since (Python's faulthandler enabled or disabled after it, a
// signal.signal): then nothing is mapped.
bool handler_in_place() {
    static const bool installed = install_handler();
    struct sigaction now {};
    return installed && ::sigaction(SIGBUS, nullptr, &now) == 0 && (now.sa_flags & SA_SIGINFO) &&
           now.sa_sigaction == on_sigbus;
}

int claim_slot(std::uintptr_t begin, std::uintptr_t end) {
    if (!handler_in_place()) return -1;
    std::lock_guard<std::mutex> lock(slots_mutex);
    for (int i = 0; i < slot_count; ++i)
        if (slots[i].begin.load() == 0) {
            Slot& s = slots[i];
            s.seq.fetch_add(1);
            s.faulted.store(false);
            s.writable.store(false);
            s.end.store(end);
            s.begin.store(begin);
            s.seq.fetch_add(1);
            return i;
        }
    return -1;
}

void free_slot(int i) {
    std::lock_guard<std::mutex> lock(slots_mutex);
    Slot& s = slots[i];
    s.seq.fetch_add(1);
    s.begin.store(0);
    s.end.store(0);
    s.seq.fetch_add(1);
}

// File systems whose times are kept to the nanosecond and whose mappings
// fault only on truncation: local ones. On a network file system a write
// on another machine may not move the times this one sees, and an I/O
// error is a fault too; its values are read into memory instead.
bool local_file_system(int fd) {
    struct statfs fs {};
    if (::fstatfs(fd, &fs) != 0) return false;
    switch (static_cast<unsigned long>(fs.f_type)) {
        case EXT4_SUPER_MAGIC:  // ext2, ext3 and ext4
        case XFS_SUPER_MAGIC:
        case BTRFS_SUPER_MAGIC:
        case TMPFS_MAGIC:
        case OVERLAYFS_SUPER_MAGIC:
        case F2FS_SUPER_MAGIC:
        case 0x2fc12fc1UL:  // ZFS
            return true;
        default:
            return false;
    }
}

// Whether no process has the file open for writing now: the kernel grants
// a read lease only then (and only to its owner, or with CAP_LEASE; leases
// may be off). A writer open before the mapping (an np.memmap of the
// dataset, h5py's "r+") may change values through pages it dirtied earlier
// without moving the file's times again: such a file is read, not mapped.
// A writer that opens it later moves them with its first write.
bool no_writer(int fd) {
    // A writer opening the file while the lease is held has the kernel
    // signal the holder: SIGURG, which nothing here handles and whose
    // default is to ignore it (SIGIO's would end the process).
    if (::fcntl(fd, F_SETSIG, SIGURG) != 0 || ::fcntl(fd, F_SETLEASE, F_RDLCK) != 0) return false;
    ::fcntl(fd, F_SETLEASE, F_UNLCK);
    return true;
}

long long nanoseconds(const timespec& t) { return static_cast<long long>(t.tv_sec) * 1000000000LL + t.tv_nsec; }

}  // namespace

std::shared_ptr<MappedValues> MappedValues::map(const std::string& path, int opened, std::uint64_t offset,
                                                std::size_t bytes, std::size_t align) {
    const long size = ::sysconf(_SC_PAGESIZE);
    const std::uint64_t page = size > 0 ? static_cast<std::uint64_t>(size) : 4096;
    const std::uint64_t skip = offset % page;
    struct stat want {};
    if (opened < 0 || bytes == 0 || align == 0 || skip % align != 0 || ::fstat(opened, &want) != 0) return nullptr;
    std::shared_ptr<MappedValues> m(new MappedValues);
    do m->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    while (m->fd_ < 0 && errno == EINTR);
    struct stat st {};
    if (m->fd_ < 0 || ::fstat(m->fd_, &st) != 0 || st.st_dev != want.st_dev || st.st_ino != want.st_ino ||
        !S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_size) < offset ||
        static_cast<std::uint64_t>(st.st_size) - offset < bytes || !local_file_system(m->fd_) ||
        (st.st_mtim.tv_nsec == 0 && st.st_ctim.tv_nsec == 0) ||  // times kept to the second: a write may not move them
        !no_writer(m->fd_))
        return nullptr;  // the destructor closes fd_
    m->size_ = static_cast<unsigned long long>(st.st_size);
    m->mtime_ns_ = nanoseconds(st.st_mtim);
    m->ctime_ns_ = nanoseconds(st.st_ctim);
    m->length_ = static_cast<std::size_t>(skip) + bytes;
    // Read-only: a writable private mapping would be populated by copying
    // every page (the copy this avoids).
    void* base = ::mmap(nullptr, m->length_, PROT_READ, MAP_PRIVATE | MAP_POPULATE, m->fd_,
                        static_cast<off_t>(offset - skip));
    if (base == MAP_FAILED) return nullptr;  // the destructor closes fd_
    m->base_ = base;
    const auto begin = reinterpret_cast<std::uintptr_t>(base);
    m->slot_ = claim_slot(begin, begin + (m->length_ + page - 1) / page * page);
    if (m->slot_ < 0) return nullptr;  // unmapped by the destructor
    m->data_ = static_cast<char*>(base) + skip;
    m->bytes_ = bytes;
    return m;
}

MappedValues::~MappedValues() {
    if (slot_ >= 0) free_slot(slot_);
    if (base_) ::munmap(base_, length_);
    if (fd_ >= 0) ::close(fd_);
}

void MappedValues::let_go(const void* from, std::size_t bytes) {
    const std::uintptr_t page = page_size;
    const auto at = reinterpret_cast<std::uintptr_t>(from);
    const std::uintptr_t begin = (at + page - 1) & ~(page - 1), end = (at + bytes) & ~(page - 1);
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

bool MappedValues::make_writable() {
    slots[slot_].writable.store(true);
    return ::mprotect(base_, length_, PROT_READ | PROT_WRITE) == 0;
}

std::string MappedValues::changed() const {
    if (slot_ >= 0 && slots[slot_].faulted.load()) return "it was truncated";
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return "it could not be checked";
    if (static_cast<unsigned long long>(st.st_size) != size_) return "its size changed";
    if (nanoseconds(st.st_mtim) != mtime_ns_ || nanoseconds(st.st_ctim) != ctime_ns_) return "it was modified";
    return "";
}

}  // namespace basinvol::detail
