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

}  // namespace basinvol::detail
