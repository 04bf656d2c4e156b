#pragma once
// Parallel reading of chunked, deflate-compressed datasets (internal).
#include <hdf5.h>

#include <cstddef>
#include <string>

namespace basinvol::detail {

// Reads a chunked n×n dataset whose filters are deflate (optionally after
// shuffle) and whose type is the native float (f32) or double, into `buf`
// (row-major, n·n elements): raw chunks are read in order through HDF5 and
// decompressed on several threads. Returns false, having read nothing, when
// the dataset is laid out in a way this does not handle (the caller then uses
// H5Dread). Throws InputError naming `where` when a chunk is corrupt.
// The caller holds the HDF5 lock.
bool read_chunks_parallel(hid_t dataset, std::size_t n, bool f32, void* buf, const std::string& where);

// For a dataset read_chunks_parallel would take: checks that chunks first,
// first + step, ... inflate to exactly their plain size, as it does (HDF5's
// own deflate filter keeps the head of a chunk that inflates to more, and
// leaves the tail of one that inflates to less unwritten). Throws
// InputError naming `where` and the chunk. The caller holds the HDF5 lock.
void check_chunks(hid_t dataset, std::size_t n, bool f32, std::size_t first, std::size_t step,
                  const std::string& where);

}  // namespace basinvol::detail
