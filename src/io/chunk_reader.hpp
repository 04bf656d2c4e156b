#pragma once
// Parallel reading of chunked, deflate-compressed datasets (internal).
#include <hdf5.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace basinvol::detail {

// Reads a chunked n×n dataset whose filters are deflate (optionally after
// shuffle) and whose type is the native float (f32) or double, into `buf`
// (row-major, n·n elements): raw chunks are mapped from the file (a batch
// at a time; a truncation meanwhile is an InputError) or read through HDF5,
// in order, and decompressed on several threads. Returns false, having read nothing, when
// the dataset is laid out in a way this does not handle (the caller then uses
// H5Dread). Throws InputError naming `where` when a chunk is corrupt.
// The caller holds the HDF5 lock.
bool read_chunks_parallel(hid_t dataset, std::size_t n, bool f32, void* buf, const std::string& where);

// Chunks one banded read touches at most (or one chunk row, when a row
// holds more): HDF5 keeps about 6.5 KB for each chunk a read touches (a
// 700 x 700 matrix of 1 x 1 chunks: 135 MB a read at 16384 chunks, 17 MB at
// 2048, and faster: 2.0 s against 3.3 s for all of it).
constexpr hsize_t chunks_per_read = 2048;

// Reads a contiguous n×n dataset whose stored type is the native float (f32)
// or double, in a file HDF5 reads through its POSIX (sec2) driver and no
// part of this process has open for writing, into
// `buf`: its values are one run of bytes at H5Dget_offset, read by
// preads of row bands on several threads (the copy out of the page cache
// and the first touch of buf's pages shared by the cores). Returns false,
// having read nothing, for any other dataset (external storage, another
// driver or type) or one small enough for one read. Throws InputError
// naming `where` when a read fails or ends short. The caller holds the HDF5
// lock, and has checked the bytes lie inside the file (storage_problem).
bool read_contiguous_parallel(hid_t dataset, std::size_t n, bool f32, void* buf, const std::string& where);

// Where the values read_contiguous_parallel reads lie: HDF5's descriptor
// of the file (valid while the file is open) and their offset in it; empty
// for the datasets it does not take (whatever their size).
struct ContiguousValues {
    int fd;
    std::uint64_t offset;
};
std::optional<ContiguousValues> contiguous_values(hid_t dataset, std::size_t n, bool f32);

// HDF5's descriptor of the file holding `dataset` when HDF5 reads it through
// its POSIX (sec2) driver and this process has it open read-only (a file it
// also writes may hold values in HDF5's buffers the file has not yet): -1
// otherwise. Valid while the file is open.
int readonly_descriptor(hid_t dataset);
// The name the file holding `dataset` was opened by ("" when HDF5 fails).
std::string file_name(hid_t dataset);

// For a chunked dataset of any rank and stored type whose filters are
// shuffle, deflate and Fletcher-32 (each at most once, in any order):
// checks that the chunks at positions first, first + step, ... of its grid
// (row-major) come out of their filters in exactly their plain size, as
// read_chunks_parallel does: a deflated one inflates to it, a checksummed
// one holds it and its 4-byte checksum, one stored unfiltered holds it
// (HDF5's own deflate filter keeps the head of a chunk that inflates to
// more, and leaves the tail of one that inflates to less unwritten; it
// copies a whole chunk out of a short one, and checksums a Fletcher-32
// chunk of under 4 bytes past the end of memory). HDF5 checks the
// checksums. Under other filters, a pipeline ending in Fletcher-32 has
// each chunk hold the checksum's 4 bytes; without filters, the chunk
// index's sizes must add up to its chunks' plain size (the whole
// dataset, `box` or not: one pass over the index). Unallocated chunks
// (the fill value) pass, and so do chunks outside `box` (a 2-D
// selection) when one is given. Does nothing for other layouts and
// pipelines. Throws InputError naming `where` and the chunk. The caller
// holds the HDF5 lock.
struct Box {
    hsize_t start[2], count[2];
};
void check_chunks(hid_t dataset, std::size_t first, std::size_t step, const std::string& where,
                  const Box* box = nullptr);

// Reads the box [start, start + count) of a 1-D or 2-D dataset (for 1-D,
// start[1] = 0 and count[1] = 1) into `buf` as `type`, row-major. A chunked
// dataset is read in bands of whole chunk rows, each touching at most about
// 2^14 chunks (or one chunk row, when a row holds more): HDF5 1.10 keeps a few kilobytes of state for every chunk one
// read touches (1.1 GB for the 250,000 chunks of 8×8 in n = 4000), which
// no memory budget counts. Throws InputError naming `where` and what HDF5
// found (fail_to_read) when a read fails.
void read_box(hid_t dataset, hid_t type, const hsize_t start[2], const hsize_t count[2], void* buf,
              const std::string& where);

// The memory reading a compressed chunked dataset takes beside its values:
// each reading thread holds a chunk read raw and one inflated. 0 for other
// layouts and for chunks stored without filters.
std::size_t chunk_working_bytes(hid_t dataset);
// Throws InputError (naming `where`) when `bytes` of values and
// chunk_working_bytes(dataset) together pass `budget`, or the latter what
// an address-space limit leaves beside the values' buffer: a chunk may be
// far larger than its dataset (HDF5 allows 4 GB), and is inflated whole.
void check_chunk_memory(hid_t dataset, std::size_t bytes, std::size_t budget, const std::string& where);

// How many chunks of a chunked dataset (of those a 2-D `box` overlaps, when
// one is given) were never written: HDF5 reads them as the fill value. 0 for
// other layouts, and when HDF5 cannot tell. A box is looked up chunk by
// chunk, each lookup taken from `lookups`; a box of more chunks than are
// left there gets the whole dataset's count.
std::uint64_t unwritten_chunks(hid_t dataset, const Box* box = nullptr, std::uint64_t* lookups = nullptr);

}  // namespace basinvol::detail
