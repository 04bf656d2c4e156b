#pragma once
// A contiguous dataset's values mapped from its file rather than copied
// (internal).
//
// Reading a Hessian into fresh memory costs the kernel a zeroed page for
// every 4 KB it fills before the copy out of the page cache: on the
// virtual machines basinvol is measured on, half the CPU of a 128 MB
// low-rank Hessian's run, and a fifth of its time (docs/performance.md). A private mapping of the page cache
// costs neither. It has two hazards a copy has not, and this class owns
// both:
//
// - Another process may truncate the file while the values are in use
//   (h5py's "w" rewrites a checkpoint in place): the next read of a page
//   past the new end raises SIGBUS, in whichever thread touches it (a
//   solver's, OpenBLAS's). A process-wide handler finds the fault inside a
//   live mapping, puts zero pages over the rest of it, marks it, and lets
//   the thread go on; a fault anywhere else goes to the handler that was
//   there before (the default kills the process, as without basinvol).
// - Another process may write the file in place: the mapping shows the new
//   values. The file's size and times are recorded when it is mapped, and
//   a file some process has open for writing then is not mapped (a writer
//   through a shared mapping changes pages it dirtied before without
//   moving the times).
//
// changed() says, after the values were used, whether either happened: the
// answer computed from them is then not the file's, and the caller reports
// the file as changed while it was read (io/reader.hpp, file_changed).
//
// The handler is checked to be the installed one when values are mapped,
// not after: one installed over it while they are in use (Python's
// faulthandler, signal.signal) meets a truncation as it would without
// basinvol.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace basinvol::detail {

class MappedValues {
public:
    // Maps `bytes` bytes at `offset` of the file `path` copy-on-write and
    // reads them in (MAP_POPULATE), through a descriptor of its own, kept
    // for the checks: not HDF5's (`opened`, which must be the same file),
    // whose file lock a mapping would keep, so that a writer (h5py) could
    // not open the file until the solve ends. Empty, having changed
    // nothing, when the file cannot be mapped: not `opened`'s file any more,
    // not a regular file, shorter than offset + bytes, an offset not a
    // multiple of `align` bytes past a page, not on a local file system with
    // nanosecond times (see local_file_system), open for writing in some
    // process, or not this user's (see no_writer), the SIGBUS handler not in
    // place (replaced since it was installed), no room in the process's
    // table of live mappings, or mmap refused.
    static std::shared_ptr<MappedValues> map(const std::string& path, int opened, std::uint64_t offset,
                                             std::size_t bytes, std::size_t align = sizeof(double));

    MappedValues(const MappedValues&) = delete;
    MappedValues& operator=(const MappedValues&) = delete;
    ~MappedValues();

    void* data() const { return data_; }
    // Lets the values be written (copy-on-write, page by page: the file is
    // never written): symmetrizing a matrix stored slightly asymmetric.
    // False when the kernel refused.
    bool make_writable();
    // Lets go of the whole pages inside [from, from + bytes) of the values,
    // once copied out: they leave this process's resident set (the file's
    // page cache keeps them), and must not be read again.
    void let_go(const void* from, std::size_t bytes);
    std::size_t bytes() const { return bytes_; }

    // How the file changed since it was mapped: "" when it did not;
    // "it was truncated" after a fault the handler caught; "its size
    // changed" or "it was modified" when its size or times moved.
    std::string changed() const;

private:
    MappedValues() = default;
    void* base_ = nullptr;  // the mapping, from the page the values start in
    std::size_t length_ = 0;
    void* data_ = nullptr;
    std::size_t bytes_ = 0;
    int fd_ = -1;
    int slot_ = -1;  // in the handler's table
    unsigned long long size_ = 0;
    long long mtime_ns_ = 0, ctime_ns_ = 0;
};

}  // namespace basinvol::detail
