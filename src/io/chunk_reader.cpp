// Chunk decompression is the slow part of reading a gzip-compressed Hessian
// (h5py alone takes 3.3 s for n = 12000 float32); HDF5 1.10 decompresses on
// one thread, through zlib. Here raw chunks are mapped from the page cache
// (or, where they cannot be, read through HDF5 with H5Dread_chunk) in
// batches, and libdeflate inflates each batch on all cores: on the
// n = 12000 float32 benchmark libdeflate took 1.38 s of CPU where zlib took
// 2.26 s (docs/performance.md).
#include "chunk_reader.hpp"
#include "hdf5_detail.hpp"
#include "mapped_values.hpp"
#include "../huge_pages.hpp"
#include "../threads.hpp"
#include "../address_room.hpp"

#include <basinvol/error.hpp>

#include <libdeflate.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace basinvol::detail {
namespace {

struct Chunk {
    hsize_t row = 0, col = 0;      // offset in the dataset
    uint32_t mask = 0;             // filters skipped for this chunk
    std::size_t at = 0, size = 0;  // its compressed bytes in the batch's RawBytes
    libdeflate_result failure = LIBDEFLATE_SUCCESS;
    std::size_t inflated = 0;      // with failure LIBDEFLATE_SHORT_OUTPUT: the bytes it inflated to
    bool read = false;             // already in place (read through HDF5)
};

// The compressed bytes of one batch of chunks, kept from batch to batch: a
// fresh zeroed buffer per chunk cost more in page faults and memset than
// HDF5's read itself (0.05 s for 510 MB at n = 12000).
class Arena {
public:
    unsigned char* reserve(std::size_t bytes) {
        if (bytes > capacity_) {
            bytes_.reset();
            capacity_ = 0;
            bytes_.reset(new unsigned char[bytes]);  // uninitialized: every byte is read into
            advise_huge_pages(bytes_.get(), bytes);
            capacity_ = bytes;
        }
        return bytes_.get();
    }
    const unsigned char* data() const { return bytes_.get(); }

private:
    std::unique_ptr<unsigned char[]> bytes_;
    std::size_t capacity_ = 0;
};

// Where a batch's raw chunks are: chunk ch's bytes at base + ch.at, in the
// arena, or in the file's pages mapped (`mapped`) for the batch.
struct RawBytes {
    const unsigned char* base = nullptr;
    std::shared_ptr<MappedValues> mapped;
};

// The file a dataset is read from, when its raw chunks may be mapped
// rather than read: HDF5's descriptor of it (sec2, opened read-only) and
// the name it was opened by. `fd` is -1 once mapping failed or proved wrong.
struct ChunkFile {
    int fd = -1;
    std::string path;
};

// Undoes HDF5's shuffle filter: bytes were grouped by significance.
void unshuffle(const unsigned char* in, unsigned char* out, std::size_t bytes, std::size_t elem) {
    const std::size_t count = bytes / elem;
    for (std::size_t b = 0; b < elem; ++b)
        for (std::size_t i = 0; i < count; ++i) out[i * elem + b] = in[b * count + i];
    std::memcpy(out + count * elem, in + count * elem, bytes - count * elem);
}

// A dataset this reader takes: chunked, deflate (after an optional shuffle),
// every chunk of the grid allocated.
struct Layout {
    hsize_t chunk[2] = {0, 0};
    hsize_t chunks = 0;     // in the grid
    hsize_t grid_cols = 0;  // chunks per row of the grid
    bool shuffle = false;
    bool raw_edges = false;  // partial edge chunks stored unfiltered (raw_partial_chunks)
    std::size_t elem = 0;   // bytes per value
    std::size_t chunk_bytes() const { return chunk[0] * chunk[1] * elem; }
};

// Whether the dataset was written with H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS:
// then a chunk that reaches past the dataset's current extent is stored
// without its filters while its filter mask still says none was skipped
// (HDF5 tells such chunks by the extent alone, as this reader does).
bool raw_partial_chunks(hid_t dcpl) {
    unsigned opts = 0;
    return H5Pget_chunk_opts(dcpl, &opts) >= 0 && (opts & H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS) != 0;
}

// The IDs of a chunked dataset's filters, in the order they were applied
// when written (a negative ID where HDF5 cannot read one).
std::vector<H5Z_filter_t> filter_ids(hid_t dcpl) {
    std::vector<H5Z_filter_t> ids;
    const int nfilters = H5Pget_nfilters(dcpl);
    for (int i = 0; i < nfilters; ++i) {
        unsigned flags = 0, values[8], config = 0;
        std::size_t nelem = 8;
        char name[64];
        ids.push_back(H5Pget_filter2(dcpl, static_cast<unsigned>(i), &flags, &nelem, values, sizeof name, name, &config));
    }
    return ids;
}

// Whether a chunked dataset's filters are deflate after an optional shuffle:
// then whether the shuffle is there; nullopt for any other pipeline.
std::optional<bool> deflate_pipeline(hid_t dcpl) {
    const std::vector<H5Z_filter_t> ids = filter_ids(dcpl);
    if (ids == std::vector<H5Z_filter_t>{H5Z_FILTER_DEFLATE}) return false;
    if (ids == std::vector<H5Z_filter_t>{H5Z_FILTER_SHUFFLE, H5Z_FILTER_DEFLATE}) return true;
    return std::nullopt;
}

std::optional<Layout> deflate_layout(hid_t dataset, std::size_t n, bool f32) {
    Handle dcpl(H5Dget_create_plist(dataset), H5Pclose);
    if (!dcpl.valid() || H5Pget_layout(dcpl.get()) != H5D_CHUNKED) return std::nullopt;
    Handle type(H5Dget_type(dataset), H5Tclose);
    if (!type.valid() || H5Tequal(type.get(), f32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE) <= 0) return std::nullopt;
    Layout l;
    l.elem = f32 ? sizeof(float) : sizeof(double);
    const std::optional<bool> shuffle = deflate_pipeline(dcpl.get());
    if (!shuffle) return std::nullopt;
    l.shuffle = *shuffle;
    l.raw_edges = raw_partial_chunks(dcpl.get());
    if (H5Pget_chunk(dcpl.get(), 2, l.chunk) != 2 || l.chunk[0] == 0 || l.chunk[1] == 0) return std::nullopt;
    Handle space(H5Dget_space(dataset), H5Sclose);
    if (!space.valid() || H5Dget_num_chunks(dataset, space.get(), &l.chunks) < 0) return std::nullopt;
    l.grid_cols = (n + l.chunk[1] - 1) / l.chunk[1];
    // Unallocated chunks hold the fill value: let HDF5 fill them.
    if (l.chunks != ((n + l.chunk[0] - 1) / l.chunk[0]) * l.grid_cols) return std::nullopt;
    return l;
}

using Inflater = std::unique_ptr<libdeflate_decompressor, void (*)(libdeflate_decompressor*)>;

Inflater new_inflater() {
    Inflater inflater(libdeflate_alloc_decompressor(), libdeflate_free_decompressor);
    if (!inflater) throw std::bad_alloc();
    return inflater;
}

// The errors a corrupt chunk gets, from either reader of chunks (read_raw
// and ChunkCheck): one text each, since basinvol-mpi's rows must equal the
// serial tool's. `at` is chunk_at's.
std::string chunk_at(const std::vector<hsize_t>& offset) {
    std::string at = "chunk at [";
    for (std::size_t i = 0; i < offset.size(); ++i) at += (i ? ", " : "") + std::to_string(offset[i]);
    return at + "]";
}
InputError chunk_missing(const std::string& where, const std::string& at) {
    return InputError(where + ": cannot find " + at + " (truncated or corrupt data?)");
}
InputError chunk_unreadable(const std::string& where, const std::string& at) {
    const std::string hdf5 = hdf5_message();
    return InputError(where + ": cannot read " + at + " (truncated or corrupt data?)" +
                      (hdf5.empty() ? std::string() : " (HDF5: " + hdf5 + ")"));
}
// Deflate expands data by a few bytes per block at most (zlib-ng's fastest
// level by up to an eighth): a chunk of more than twice its plain size is a
// corrupt index, not a buffer to allocate.
bool oversized(hsize_t size, std::size_t plain) { return size > 2 * plain + 4096; }
InputError chunk_oversized(const std::string& where, const std::string& at, hsize_t size, std::size_t plain) {
    return InputError(where + ": the " + at + " claims " + std::to_string(size) + " compressed bytes, over twice its " +
                      std::to_string(plain) + " plain bytes (corrupt data)");
}
InputError chunk_short(const std::string& where, const std::string& at, hsize_t size, std::size_t plain) {
    return InputError(where + ": the " + at + " is stored uncompressed in " + std::to_string(size) +
                      " bytes; it holds " + std::to_string(plain) + " (corrupt data)");
}
// A chunk that does not inflate to exactly its plain size (`inflated`: the
// size it came to, for LIBDEFLATE_SHORT_OUTPUT).
InputError chunk_undecodable(const std::string& where, const std::string& at, libdeflate_result failure,
                             std::size_t inflated, std::size_t plain) {
    const std::string holds = std::to_string(plain);
    const std::string why = failure == LIBDEFLATE_BAD_DATA   ? "data error"
                            : failure == LIBDEFLATE_SHORT_OUTPUT ? "it inflates to " + std::to_string(inflated) +
                                                                       " bytes; it holds " + holds
                                                                 : "it inflates to more than the " + holds +
                                                                       " bytes it holds";
    return InputError(where + ": cannot decompress " + at + ": " + why + " (corrupt data)");
}
InputError undecodable(const Chunk& ch, const std::string& where, std::size_t plain) {
    return chunk_undecodable(where, chunk_at({ch.row, ch.col}), ch.failure, ch.inflated, plain);
}

// Inflates a zlib stream into exactly `plain` bytes at `out`; a stream that
// ends short is LIBDEFLATE_SHORT_OUTPUT with its size in `inflated`.
libdeflate_result inflate_exactly(libdeflate_decompressor* inflater, const unsigned char* raw, std::size_t size,
                                  unsigned char* out, std::size_t plain, std::size_t& inflated) {
    std::size_t got = 0;
    const libdeflate_result rc = libdeflate_zlib_decompress(inflater, raw, size, out, plain, &got);
    if (rc != LIBDEFLATE_SUCCESS || got == plain) return rc;
    inflated = got;
    return LIBDEFLATE_SHORT_OUTPUT;
}

// Whether the chunk at row, col of an n x n dataset reaches past its edge.
bool partial(const Layout& l, hsize_t row, hsize_t col, std::size_t n) {
    return row + l.chunk[0] > n || col + l.chunk[1] > n;
}

// Checks a chunk whose filter mask says a filter was skipped, or that is
// stored unfiltered as a partial edge chunk, from its raw bytes, before HDF5
// reads it: stored without deflate it must hold exactly its plain size (HDF5
// would take a short one for whole); deflated (only the shuffle skipped), it
// must inflate to it.
void check_masked(const Layout& l, Chunk& ch, bool raw_edge, const unsigned char* raw, Inflater& inflater,
                  std::vector<unsigned char>& plain, const std::string& where) {
    const uint32_t deflate_bit = 1u << (l.shuffle ? 1 : 0);
    if (raw_edge || (ch.mask & deflate_bit)) {
        if (ch.size == l.chunk_bytes()) return;
        throw chunk_short(where, chunk_at({ch.row, ch.col}), ch.size, l.chunk_bytes());
    }
    plain.resize(l.chunk_bytes());
    ch.failure = inflate_exactly(inflater.get(), raw, ch.size, plain.data(), plain.size(), ch.inflated);
    if (ch.failure != LIBDEFLATE_SUCCESS) throw undecodable(ch, where, l.chunk_bytes());
}

// Reads one chunk's values through HDF5 (its filters as the chunk's mask
// says) into its place in the n×n row-major buffer.
bool read_chunk_through_hdf5(hid_t dataset, const Layout& l, const Chunk& ch, std::size_t n, void* buf) {
    const hsize_t start[2] = {ch.row, ch.col};
    const hsize_t count[2] = {std::min<hsize_t>(l.chunk[0], n - ch.row), std::min<hsize_t>(l.chunk[1], n - ch.col)};
    const hsize_t whole[2] = {n, n};
    Handle file_space(H5Dget_space(dataset), H5Sclose);
    Handle mem_space(H5Screate_simple(2, whole, nullptr), H5Sclose);
    return file_space.valid() && mem_space.valid() &&
           H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr) >= 0 &&
           H5Sselect_hyperslab(mem_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr) >= 0 &&
           H5Dread(dataset, l.elem == sizeof(float) ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE, mem_space.get(),
                   file_space.get(), H5P_DEFAULT, buf) >= 0;
}

// The most chunks a dataset may have for its chunks to be mapped (read_raw).
constexpr hsize_t mapped_chunks_at_most = 1024;

// Raw bytes a batch of chunks holds at most, past its first `threads` chunks.
constexpr std::size_t batch_bytes = std::size_t(64) << 20;

// The size of the user block before HDF5's data in the file holding
// `dataset` (0 without one).
hsize_t user_block(hid_t dataset) {
    Handle file(H5Iget_file_id(dataset), H5Fclose);
    Handle fcpl(file.valid() ? H5Fget_create_plist(file.get()) : H5I_INVALID_HID, H5Pclose);
    hsize_t size = 0;
    if (!fcpl.valid() || H5Pget_userblock(fcpl.get(), &size) < 0) size = 0;
    H5Eclear2(H5E_DEFAULT);
    return size;
}

// Maps the chunks' stored bytes (their file addresses spanning at most
// twice their sizes, beside a megabyte) for the batch: their offsets from
// the mapping's start go to ch.at and their masks to ch.mask. HDF5 1.10
// gives a chunk's address past the user block, not from the file's start
// (where H5Dget_offset counts from): the two are told apart by HDF5's own
// read of the first chunk, which one of them must match. On any doubt,
// nothing is mapped, and `file` is not tried again.
bool map_raw(hid_t dataset, std::vector<Chunk>& chunks, std::size_t total, ChunkFile& file, RawBytes& raw) {
    if (file.fd < 0 || chunks.empty()) return false;
    std::vector<haddr_t> addr(chunks.size());
    std::vector<unsigned> mask(chunks.size());
    haddr_t lo = HADDR_MAX, hi = 0;
    for (std::size_t i = 0; i < chunks.size(); ++i) {
        const hsize_t offset[2] = {chunks[i].row, chunks[i].col};
        hsize_t size = 0;
        // A corrupt index's address may wrap round past the end of the
        // address space: no such chunk is mapped (HDF5 refuses to read it).
        if (H5Dget_chunk_info_by_coord(dataset, offset, &mask[i], &addr[i], &size) < 0 || addr[i] == HADDR_UNDEF ||
            size != chunks[i].size || addr[i] > HADDR_MAX - size) {
            H5Eclear2(H5E_DEFAULT);
            file.fd = -1;
            return false;
        }
        lo = std::min(lo, addr[i]);
        hi = std::max<haddr_t>(hi, addr[i] + size);
    }
    if (hi - lo > 2 * total + (std::size_t(1) << 20)) return false;  // scattered: read this batch
    std::vector<unsigned char> first(chunks[0].size);
    const hsize_t offset[2] = {chunks[0].row, chunks[0].col};
    uint32_t first_mask = 0;
    if (H5Dread_chunk(dataset, H5P_DEFAULT, offset, &first_mask, first.data()) < 0 || first_mask != mask[0]) {
        H5Eclear2(H5E_DEFAULT);
        file.fd = -1;
        return false;
    }
    std::shared_ptr<MappedValues> mapped;
    for (const hsize_t shift : {user_block(dataset), hsize_t(0)}) {
        mapped = MappedValues::map(file.path, file.fd, lo + shift, hi - lo, 1);
        if (mapped && std::memcmp(first.data(), static_cast<const unsigned char*>(mapped->data()) + (addr[0] - lo),
                                  first.size()) == 0)
            break;
        mapped.reset();
    }
    if (!mapped) {
        file.fd = -1;
        return false;
    }
    const auto* base = static_cast<const unsigned char*>(mapped->data());
    for (std::size_t i = 0; i < chunks.size(); ++i) {
        chunks[i].at = addr[i] - lo;
        chunks[i].mask = mask[i];
    }
    raw.base = base;
    raw.mapped = std::move(mapped);
    return true;
}

// Chunks [start, end) of the grid, raw, in file order: mapped (map_raw),
// or through HDF5 (one thread: the caller holds the lock) into `arena`;
// `raw` says where they are. `end` is moved back
// where the chunks' stored sizes pass batch_bytes after the first `least`
// (an index may claim up to twice a chunk's plain size for each). False
// when the very first chunk is not for this reader (then HDF5 reads the
// dataset); InputError for a later one.
bool read_raw(hid_t dataset, const Layout& l, hsize_t start, hsize_t& end, hsize_t least, std::vector<Chunk>& chunks,
              Arena& arena, ChunkFile& file, RawBytes& raw, std::size_t n, void* buf, const std::string& where) {
    chunks.assign(end - start, Chunk{});
    std::size_t total = 0;
    for (hsize_t c = start; c < end; ++c) {
        Chunk& ch = chunks[c - start];
        // The chunk grid in row-major order (a B-tree lookup each, not a scan).
        ch.row = (c / l.grid_cols) * l.chunk[0];
        ch.col = (c % l.grid_cols) * l.chunk[1];
        hsize_t offset[2] = {ch.row, ch.col}, size = 0;
        if (H5Dget_chunk_storage_size(dataset, offset, &size) < 0 || size == 0) {
            if (c == 0) return false;
            throw chunk_missing(where, chunk_at({ch.row, ch.col}));
        }
        if (oversized(size, l.chunk_bytes())) {
            if (c == 0) return false;
            throw chunk_oversized(where, chunk_at({ch.row, ch.col}), size, l.chunk_bytes());
        }
        if (c - start >= least && total + size > batch_bytes) {
            end = c;
            chunks.resize(end - start);
            break;
        }
        ch.at = total;
        ch.size = size;
        total += size;
    }
    raw = RawBytes{};
    // HDF5 1.10 finds a chunk's address by walking every chunk of the
    // dataset (H5Dget_chunk_info_by_coord iterates its index): mapping
    // costs (chunks in the batch) x (chunks in all), which for 90,000 1x1
    // chunks was a minute. Past mapped_chunks_at_most they are read.
    const bool mapped = l.chunks <= mapped_chunks_at_most && map_raw(dataset, chunks, total, file, raw);
    unsigned char* bytes = nullptr;  // the arena, when the chunks are read into it
    if (!mapped) raw.base = bytes = arena.reserve(total);
    Inflater inflater(nullptr, libdeflate_free_decompressor);  // for chunks a filter skipped, when there are some
    std::vector<unsigned char> plain;
    for (hsize_t c = start; c < end; ++c) {
        Chunk& ch = chunks[c - start];
        hsize_t offset[2] = {ch.row, ch.col};
        const bool first = c == 0;
        if (!mapped && H5Dread_chunk(dataset, H5P_DEFAULT, offset, &ch.mask, bytes + ch.at) < 0) {
            if (first) return false;
            throw chunk_unreadable(where, chunk_at({ch.row, ch.col}));
        }
        const bool raw_edge = l.raw_edges && partial(l, ch.row, ch.col, n);
        if (ch.mask != 0 || raw_edge) {
            // A chunk a filter skipped (HDF5 stores it so when the filter
            // fails on it, or when written so), or a partial edge chunk
            // stored unfiltered: checked, then HDF5 reads it into place.
            if (!inflater) inflater = new_inflater();
            check_masked(l, ch, raw_edge, raw.base + ch.at, inflater, plain, where);
            if (!read_chunk_through_hdf5(dataset, l, ch, n, buf))
                throw chunk_unreadable(where, chunk_at({ch.row, ch.col}));
            ch.read = true;
        }
    }
    return true;
}


// Inflates (and unshuffles) chunks into the n×n row-major buffer on `threads` cores.
void inflate(std::vector<Chunk>& chunks, const RawBytes& raw, const Layout& l, std::size_t n, unsigned char* out,
             unsigned threads, const std::string& where) {
    const std::size_t chunk_bytes = l.chunk_bytes();
    std::atomic<std::size_t> next{0};
    // A thread that cannot get its buffers takes no chunk and leaves its
    // share to the others (an exception must not leave a thread).
    auto work = [&]() noexcept {
        std::unique_ptr<libdeflate_decompressor, void (*)(libdeflate_decompressor*)> inflater(
            libdeflate_alloc_decompressor(), libdeflate_free_decompressor);
        std::vector<unsigned char> plain, unshuffled;
        try {
            plain.resize(chunk_bytes);
            unshuffled.resize(l.shuffle ? chunk_bytes : 0);
        } catch (const std::bad_alloc&) {
            return;
        }
        if (!inflater) return;
        for (std::size_t i = next++; i < chunks.size(); i = next++) {
            Chunk& ch = chunks[i];
            if (ch.read) continue;
            // HDF5's deflate filter writes zlib streams; the chunk must fill exactly chunk_bytes.
            const libdeflate_result rc =
                inflate_exactly(inflater.get(), raw.base + ch.at, ch.size, plain.data(), chunk_bytes, ch.inflated);
            if (rc != LIBDEFLATE_SUCCESS) {
                ch.failure = rc;
                continue;
            }
            const unsigned char* src = plain.data();
            if (l.shuffle) {
                unshuffle(plain.data(), unshuffled.data(), chunk_bytes, l.elem);
                src = unshuffled.data();
            }
            const std::size_t rows = std::min<std::size_t>(l.chunk[0], n - ch.row);
            const std::size_t cols = std::min<std::size_t>(l.chunk[1], n - ch.col);
            for (std::size_t a = 0; a < rows; ++a)
                std::memcpy(out + ((ch.row + a) * n + ch.col) * l.elem, src + a * l.chunk[1] * l.elem, cols * l.elem);
        }
    };
    run_on_threads(threads, work);
    if (next.load() < chunks.size()) throw std::bad_alloc();  // no thread could get its buffers
    for (const auto& ch : chunks)
        if (ch.failure != LIBDEFLATE_SUCCESS) throw undecodable(ch, where, chunk_bytes);
}

// A pipeline check_chunks follows a chunk through: shuffle, deflate and
// fletcher32, each at most once, in the order they were applied when
// written; nullopt for any other filter.
std::optional<std::vector<H5Z_filter_t>> checkable_pipeline(hid_t dcpl) {
    std::vector<H5Z_filter_t> ids = filter_ids(dcpl);
    if (ids.empty() || ids.size() > 3) return std::nullopt;
    for (std::size_t i = 0; i < ids.size(); ++i)
        if ((ids[i] != H5Z_FILTER_SHUFFLE && ids[i] != H5Z_FILTER_DEFLATE && ids[i] != H5Z_FILTER_FLETCHER32) ||
            std::find(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(i), ids[i]) != ids.begin() + static_cast<std::ptrdiff_t>(i))
            return std::nullopt;
    return ids;
}

InputError chunk_short_of_checksum(const std::string& where, const std::string& at, std::size_t size) {
    return InputError(where + ": the " + at + " is stored in " + std::to_string(size) +
                      " bytes, fewer than its 4-byte Fletcher-32 checksum (corrupt data)");
}
InputError chunk_filtered_short(const std::string& where, const std::string& at, hsize_t size, std::size_t left,
                                std::size_t plain) {
    return InputError(where + ": the " + at + " is stored in " + std::to_string(size) + " bytes, " +
                      std::to_string(left) + " without its checksum; it holds " + std::to_string(plain) +
                      " (corrupt data)");
}

// What check_chunks knows of a dataset's chunks.
struct ChunkCheck {
    std::size_t bytes = 0;      // plain bytes of a chunk
    bool every = false;         // every chunk allocated (else the rest hold the fill value)
    std::vector<H5Z_filter_t> filters;  // checkable_pipeline's, or one ending in Fletcher-32
    // For a pipeline it cannot follow that ends in Fletcher-32: only that a
    // chunk holds the checksum's 4 bytes (HDF5 1.10 checksums a shorter one
    // past the end of memory).
    bool checksum_room_only = false;
    bool raw_edges = false;     // partial edge chunks stored unfiltered (raw_partial_chunks)
    std::vector<hsize_t> dims, chunk;  // the dataset's extent and chunk shape
    Inflater inflater = new_inflater();
    std::vector<unsigned char> raw, plain;

    // The chunk at `offset`: found, of a plausible size, and undone by its
    // filters (those its mask does not skip) into exactly its plain size.
    // HDF5 1.10 takes a filtered chunk's size on trust: it copies a whole
    // chunk out of a short one, and a Fletcher-32 chunk of under 4 bytes
    // has its checksum computed past the end of memory (found by fuzzing).
    void check(hid_t dataset, const std::vector<hsize_t>& offset, const std::string& where) {
        const std::string at = chunk_at(offset);
        hsize_t size = 0;
        if (H5Dget_chunk_storage_size(dataset, offset.data(), &size) < 0 || size == 0) {
            if (!every) return;
            throw chunk_missing(where, at);
        }
        bool raw_edge = false;
        for (std::size_t i = 0; raw_edges && i < dims.size(); ++i) raw_edge |= offset[i] + chunk[i] > dims[i];
        if (checksum_room_only) {
            if (size >= 4 || raw_edge) return;
            unsigned char head[4];
            uint32_t mask = 0;
            if (H5Dread_chunk(dataset, H5P_DEFAULT, offset.data(), &mask, head) < 0) throw chunk_unreadable(where, at);
            if (mask & (1u << (filters.size() - 1))) return;  // the checksum skipped for this chunk
            throw chunk_short_of_checksum(where, at, size);
        }
        if (oversized(size, bytes)) throw chunk_oversized(where, at, size, bytes);
        raw.resize(size);
        uint32_t mask = 0;
        if (H5Dread_chunk(dataset, H5P_DEFAULT, offset.data(), &mask, raw.data()) < 0)
            throw chunk_unreadable(where, at);
        // Through the filters as a read undoes them (the last applied
        // first), by the bytes each hands on: a checksum's 4 bytes off, a
        // deflate stream inflated to what the filters before it made.
        std::size_t left = size;
        bool checksum = false;
        for (std::size_t k = filters.size(); !raw_edge && k-- > 0;) {
            if (mask & (1u << k)) continue;  // skipped for this chunk
            if (filters[k] == H5Z_FILTER_FLETCHER32) {
                if (left < 4) throw chunk_short_of_checksum(where, at, left);
                left -= 4;
                checksum = true;
            } else if (filters[k] == H5Z_FILTER_DEFLATE) {
                std::size_t out = bytes;
                for (std::size_t j = 0; j < k; ++j)
                    if (filters[j] == H5Z_FILTER_FLETCHER32 && !(mask & (1u << j))) out += 4;
                plain.resize(out);
                std::size_t inflated = 0;
                const libdeflate_result rc = inflate_exactly(inflater.get(), raw.data(), left, plain.data(), out, inflated);
                if (rc != LIBDEFLATE_SUCCESS) throw chunk_undecodable(where, at, rc, inflated, out);
                left = out;
            }
        }
        if (left == bytes) return;
        if (checksum) throw chunk_filtered_short(where, at, size, left, bytes);
        throw chunk_short(where, at, size, bytes);  // stored as it is: it must hold its plain size
    }
};

}  // namespace

void check_chunks(hid_t dataset, std::size_t first, std::size_t step, const std::string& where, const Box* box) {
    Handle dcpl(H5Dget_create_plist(dataset), H5Pclose);
    if (!dcpl.valid() || H5Pget_layout(dcpl.get()) != H5D_CHUNKED || step == 0) return;
    std::optional<std::vector<H5Z_filter_t>> filters = checkable_pipeline(dcpl.get());
    const bool checksum_room_only = !filters;
    bool unfiltered = false;
    if (!filters) {  // another filter (scale-offset, n-bit, a plugin's) before a checksum, or none
        std::vector<H5Z_filter_t> ids = filter_ids(dcpl.get());
        unfiltered = ids.empty();
        if (!unfiltered && ids.back() != H5Z_FILTER_FLETCHER32) return;
        filters = std::move(ids);
    }
    Handle type(H5Dget_type(dataset), H5Tclose), space(H5Dget_space(dataset), H5Sclose);
    if (!type.valid() || !space.valid()) return;
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 1 || rank > H5S_MAX_RANK) return;
    std::vector<hsize_t> dims(static_cast<std::size_t>(rank)), chunk(dims.size()), offset(dims.size());
    if (H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr) != rank ||
        H5Pget_chunk(dcpl.get(), rank, chunk.data()) != rank)
        return;
    // The plain bytes of a chunk (HDF5 caps a chunk at 4 GB) and the grid's size.
    double plain_bytes = static_cast<double>(H5Tget_size(type.get())), grid = 1;
    for (int i = 0; i < rank; ++i) {
        if (chunk[i] == 0) return;
        plain_bytes *= static_cast<double>(chunk[i]);
        grid *= std::ceil(static_cast<double>(dims[i]) / static_cast<double>(chunk[i]));
    }
    hsize_t allocated = 0;
    if (!(plain_bytes > 0 && plain_bytes <= 4294967295.0) || !(grid <= 9e18) ||
        H5Dget_num_chunks(dataset, space.get(), &allocated) < 0)
        return;
    if (unfiltered) {
        // Each chunk is stored whole, and HDF5 reads a chunk's plain size
        // from where it starts, past a short one's end. Its index's sizes
        // are read in one pass, summed (H5Dget_storage_size; HDF5 1.10
        // looks one chunk up by its layout's size, not its index's).
        const double stored = static_cast<double>(H5Dget_storage_size(dataset));
        if (stored == static_cast<double>(allocated) * plain_bytes) return;
        std::ostringstream s;
        s << where << ": its chunk index gives its " << allocated << " chunks " << H5Dget_storage_size(dataset)
          << " bytes in all, where each holds " << static_cast<std::size_t>(plain_bytes)
          << " stored as it is (corrupt data)";
        throw InputError(s.str());
    }
    ChunkCheck checker;
    checker.bytes = static_cast<std::size_t>(plain_bytes);
    checker.every = static_cast<double>(allocated) == grid;
    checker.filters = std::move(*filters);
    checker.checksum_room_only = checksum_room_only;
    checker.raw_edges = raw_partial_chunks(dcpl.get());
    checker.dims = dims;
    checker.chunk = chunk;
    if (box && rank == 2) {  // the chunks the box overlaps only
        if (box->count[0] == 0 || box->count[1] == 0) return;
        for (hsize_t r = box->start[0] / chunk[0]; r <= (box->start[0] + box->count[0] - 1) / chunk[0]; ++r)
            for (hsize_t c = box->start[1] / chunk[1]; c <= (box->start[1] + box->count[1] - 1) / chunk[1]; ++c) {
                offset = {r * chunk[0], c * chunk[1]};
                checker.check(dataset, offset, where);
            }
        return;
    }
    for (auto c = static_cast<std::uint64_t>(first); static_cast<double>(c) < grid; c += step) {
        // Grid position c in row-major order (a B-tree lookup each, not a scan).
        std::uint64_t q = c;
        for (int i = rank - 1; i >= 0; --i) {
            const std::uint64_t per = (dims[i] + chunk[i] - 1) / chunk[i];
            offset[i] = (q % per) * chunk[i];
            q /= per;
        }
        checker.check(dataset, offset, where);
    }
}

namespace {

// Under an address-space limit, the room HDF5 needs of its own to read a
// chunked dataset in bands: about 6.5 KB for each chunk one read touches
// (counted as 8 KB, a band's at most) and the chunk index's nodes in its
// metadata cache (counted as 64 bytes a chunk, up to the cache's 32 MB).
// Measured on a 700 x 700 matrix of 1 x 1 chunks: 17 MB a read, 21 MB of
// index. HDF5 1.10 can crash when an allocation fails there (freeing a
// B-tree node it did not finish reading), so the read is refused first.
void check_read_room(hsize_t chunks, hsize_t per_read, const std::string& where) {
    const std::size_t room = address_room();
    if (room == SIZE_MAX) return;
    const double need = 8192.0 * double(std::min(chunks, per_read)) +
                        std::min(double(std::size_t(32) << 20), 64.0 * double(chunks)) + double(std::size_t(8) << 20);
    if (double(room) >= need) return;
    std::ostringstream s;
    s.precision(3);
    s << where << ": reading its " << chunks << " chunks needs about " << need / 1e9
      << " GB of HDF5's own memory, over what the address-space limit (ulimit -v) leaves (" << double(room) / 1e9
      << " GB): raise the limit, or rechunk the dataset (h5repack -l CHUNK=...)";
    throw InputError(s.str());
}

}  // namespace

void read_box(hid_t dataset, hid_t type, const hsize_t start[2], const hsize_t count[2], void* buf,
              const std::string& where) {
    // HDF5's error stack names what failed (a checksum, a missing filter);
    // fail_to_read reads it before any other HDF5 call clears it.
    Handle space(H5Dget_space(dataset), H5Sclose);
    if (!space.valid()) fail_to_read(dataset, where);
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank != 1 && rank != 2) fail_to_read(dataset, where);
    // Rows of the box: the first dimension's (a 1-D dataset: one row of
    // count[0] values, banded along it).
    const bool one_d = rank == 1;
    hsize_t band = count[0];
    hsize_t step = 1;  // band edges fall on multiples of the chunk's first dimension
    Handle dcpl(H5Dget_create_plist(dataset), H5Pclose);
    if (dcpl.valid() && H5Pget_layout(dcpl.get()) == H5D_CHUNKED) {
        hsize_t chunk[2] = {1, 1};
        if (H5Pget_chunk(dcpl.get(), rank, chunk) != rank || chunk[0] == 0 || (!one_d && chunk[1] == 0))
            fail_to_read(dataset, where);
        const hsize_t across = one_d ? 1 : (start[1] + count[1] - 1) / chunk[1] - start[1] / chunk[1] + 1;
        const hsize_t chunk_rows = std::max<hsize_t>(1, chunks_per_read / across);  // a band's chunk rows
        step = chunk[0];
        band = std::min<hsize_t>(count[0], chunk_rows * chunk[0]);
        if (count[0] > 0) {
            const hsize_t down = (start[0] + count[0] - 1) / chunk[0] - start[0] / chunk[0] + 1;
            check_read_room(down * across, chunk_rows * across, where);
        }
    }
    const std::size_t elem = H5Tget_size(type);
    const std::size_t row_bytes = (one_d ? 1 : count[1]) * elem;
    for (hsize_t r = start[0]; r < start[0] + count[0];) {
        // To the next band edge past r + band (a band starts where a chunk row does, but the first).
        hsize_t end = std::min<hsize_t>(start[0] + count[0], (r + band) / step * step);
        if (end <= r) end = std::min<hsize_t>(start[0] + count[0], r + band);
        const hsize_t at[2] = {r, one_d ? 0 : start[1]}, size[2] = {end - r, one_d ? 1 : count[1]};
        Handle file_space(H5Scopy(space.get()), H5Sclose);
        Handle mem(H5Screate_simple(rank, size, nullptr), H5Sclose);
        if (!file_space.valid() || !mem.valid() ||
            H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, at, nullptr, size, nullptr) < 0 ||
            H5Dread(dataset, type, mem.get(), file_space.get(), H5P_DEFAULT,
                    static_cast<unsigned char*>(buf) + (r - start[0]) * row_bytes) < 0)
            fail_to_read(dataset, where);
        r = end;
    }
}

std::uint64_t unwritten_chunks(hid_t dataset, const Box* box, std::uint64_t* lookups) {
    Handle dcpl(H5Dget_create_plist(dataset), H5Pclose);
    if (!dcpl.valid() || H5Pget_layout(dcpl.get()) != H5D_CHUNKED) return 0;
    Handle space(H5Dget_space(dataset), H5Sclose);
    if (!space.valid()) return 0;
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 1 || rank > H5S_MAX_RANK) return 0;
    std::vector<hsize_t> dims(static_cast<std::size_t>(rank)), chunk(dims.size());
    if (H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr) != rank ||
        H5Pget_chunk(dcpl.get(), rank, chunk.data()) != rank)
        return 0;
    double grid = 1;
    for (int i = 0; i < rank; ++i) {
        if (chunk[i] == 0) return 0;
        grid *= std::ceil(static_cast<double>(dims[i]) / static_cast<double>(chunk[i]));
    }
    hsize_t allocated = 0;
    if (!(grid <= 9e18) || H5Dget_num_chunks(dataset, space.get(), &allocated) < 0) return 0;  // NaN: inf x 0
    const auto all = static_cast<std::uint64_t>(grid);
    const std::uint64_t whole = all - std::min<std::uint64_t>(allocated, all);
    if (!box || whole == 0 || rank != 2) return whole;
    // The box's chunks one by one (a B-tree lookup each), only when some
    // chunk of the dataset is missing; past the lookups left (a declared
    // shape no read would take), the dataset's count stands for the box's.
    if (box->count[0] == 0 || box->count[1] == 0) return 0;
    const hsize_t r0 = box->start[0] / chunk[0], r1 = (box->start[0] + box->count[0] - 1) / chunk[0];
    const hsize_t c0 = box->start[1] / chunk[1], c1 = (box->start[1] + box->count[1] - 1) / chunk[1];
    const double needed = double(r1 - r0 + 1) * double(c1 - c0 + 1);
    if (lookups) {
        if (needed > double(*lookups)) return whole;
        *lookups -= static_cast<std::uint64_t>(needed);
    }
    std::uint64_t missing = 0;
    for (hsize_t r = r0; r <= r1; ++r)
        for (hsize_t c = c0; c <= c1; ++c) {
            const hsize_t offset[2] = {r * chunk[0], c * chunk[1]};
            hsize_t size = 0;
            if (H5Dget_chunk_storage_size(dataset, offset, &size) < 0 || size == 0) ++missing;
        }
    H5Eclear2(H5E_DEFAULT);
    return missing;
}

namespace {

unsigned reading_threads() { return std::max(1u, std::min(8u, std::thread::hardware_concurrency())); }

}  // namespace

std::size_t chunk_working_bytes(hid_t dataset) {
    // A chunk without filters is read in place (HDF5 reads the selected part
    // of one larger than its chunk cache straight into the values).
    Handle dcpl(H5Dget_create_plist(dataset), H5Pclose);
    if (!dcpl.valid() || H5Pget_layout(dcpl.get()) != H5D_CHUNKED || H5Pget_nfilters(dcpl.get()) <= 0) return 0;
    hsize_t chunk[H5S_MAX_RANK] = {};
    const int rank = H5Pget_chunk(dcpl.get(), H5S_MAX_RANK, chunk);
    Handle type(H5Dget_type(dataset), H5Tclose);
    if (rank <= 0 || !type.valid()) return 0;
    // A chunk in the stored type as read (raw, at most its plain size) and
    // as inflated, as many at once as there are threads, or chunks when fewer.
    double bytes = 2.0 * static_cast<double>(H5Tget_size(type.get()));
    for (int i = 0; i < rank; ++i) bytes *= static_cast<double>(chunk[i]);
    double chunks = 1;
    Handle space(H5Dget_space(dataset), H5Sclose);
    hsize_t dims[H5S_MAX_RANK] = {};
    if (space.valid() && H5Sget_simple_extent_dims(space.get(), dims, nullptr) == rank)
        for (int i = 0; i < rank; ++i) chunks *= std::ceil(static_cast<double>(dims[i]) / static_cast<double>(chunk[i]));
    return bytes_of(std::min<double>(reading_threads(), std::max(chunks, 1.0)) * bytes);
}

void check_chunk_memory(hid_t dataset, std::size_t bytes, std::size_t budget, const std::string& where) {
    const std::size_t chunks = chunk_working_bytes(dataset);
    // Under `ulimit -v` the room left (the values' buffer taken already)
    // may be the tighter bound: say which.
    const std::size_t room = address_room();
    const bool over_budget = add_bytes(bytes, chunks) > budget, over_room = chunks > room;
    if (chunks <= (std::size_t(64) << 20) || (!over_budget && !over_room)) return;
    const bool by_limit = !over_budget;
    Handle dcpl(H5Dget_create_plist(dataset), H5Pclose);
    hsize_t chunk[2] = {0, 0};
    const int rank = dcpl.valid() ? H5Pget_chunk(dcpl.get(), 2, chunk) : 0;
    std::ostringstream s;
    s.precision(3);
    s << where << ": its chunks of " << chunk[0];
    if (rank == 2) s << "x" << chunk[1];
    s << " values are inflated whole: reading them needs " << double(chunks) / 1e9 << " GB beside the "
      << double(bytes) / 1e9 << " GB of values, over ";
    if (by_limit)
        s << "what the address-space limit (ulimit -v) leaves (" << double(room) / 1e9 << " GB)";
    else
        s << "the budget of " << double(budget) / 1e9 << " GB (option max_memory)";
    s << "; rechunk the dataset (h5repack -l CHUNK=...)";
    throw InputError(s.str());
}

bool read_chunks_parallel(hid_t dataset, std::size_t n, bool f32, void* buf, const std::string& where) {
    const auto layout = deflate_layout(dataset, n, f32);
    if (!layout) return false;
    const unsigned threads = reading_threads();
    // Raw chunks in batches of about 64 MB of plain values, at least one
    // per thread, cut where their stored bytes pass 64 MB.
    const std::size_t batch = std::max<std::size_t>(threads, batch_bytes / std::max<std::size_t>(layout->chunk_bytes(), 1));
    std::vector<Chunk> chunks;
    Arena arena;
    // The raw chunks are mapped from the file's page cache where they can
    // be (no copy through HDF5, one thread, of every compressed byte).
    ChunkFile file;
    file.fd = readonly_descriptor(dataset);
    if (file.fd >= 0) file.path = file_name(dataset);
    RawBytes raw;
    for (hsize_t start = 0; start < layout->chunks;) {
        hsize_t end = std::min<hsize_t>(layout->chunks, start + batch);
        if (!read_raw(dataset, *layout, start, end, threads, chunks, arena, file, raw, n, buf, where)) return false;
        // A truncation under the mapping left zeros where chunks were: that,
        // not the corrupt data it makes of them, is the error.
        const auto changed = [&] {
            if (const std::string how = raw.mapped ? raw.mapped->changed() : ""; !how.empty())
                throw InputError(where + ": the file changed while it was read (" + how + ")");
        };
        try {
            inflate(chunks, raw, *layout, n, static_cast<unsigned char*>(buf), threads, where);
        } catch (const InputError&) {
            changed();
            throw;
        }
        changed();
        raw = RawBytes{};
        start = end;
    }
    return true;
}

int readonly_descriptor(hid_t dataset) {
    // HDF5 shares one open file per process: one this process also writes
    // (a notebook's h5py, behind an external link) may hold values in
    // HDF5's buffers that the file does not have yet. H5Dread sees them.
    Handle file(H5Iget_file_id(dataset), H5Fclose);
    unsigned intent = 0;
    const int fd = file.valid() && H5Fget_intent(file.get(), &intent) >= 0 && !(intent & H5F_ACC_RDWR)
                       ? sec2_descriptor(file.get())
                       : -1;
    H5Eclear2(H5E_DEFAULT);
    return fd;
}

std::string file_name(hid_t dataset) {
    const ssize_t length = H5Fget_name(dataset, nullptr, 0);
    if (length <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return "";
    }
    std::string name(static_cast<std::size_t>(length) + 1, '\0');
    H5Fget_name(dataset, name.data(), name.size());
    name.resize(static_cast<std::size_t>(length));
    return name;
}

std::optional<ContiguousValues> contiguous_values(hid_t dataset, std::size_t n, bool f32) {
    const std::size_t bytes = n * n * (f32 ? sizeof(float) : sizeof(double));
    Handle dcpl(H5Dget_create_plist(dataset), H5Pclose);
    if (!dcpl.valid() || H5Pget_layout(dcpl.get()) != H5D_CONTIGUOUS || H5Pget_external_count(dcpl.get()) != 0)
        return std::nullopt;
    Handle type(H5Dget_type(dataset), H5Tclose);
    if (!type.valid() || H5Tequal(type.get(), f32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE) <= 0) return std::nullopt;
    const haddr_t offset = H5Dget_offset(dataset);  // from the start of the file, past any user block
    if (offset == HADDR_UNDEF || H5Dget_storage_size(dataset) < bytes) return std::nullopt;
    const int fd = readonly_descriptor(dataset);
    if (fd < 0) return std::nullopt;
    return ContiguousValues{fd, static_cast<std::uint64_t>(offset)};
}

bool read_contiguous_parallel(hid_t dataset, std::size_t n, bool f32, void* buf, const std::string& where) {
    const unsigned threads = reading_threads();
    const std::size_t elem = f32 ? sizeof(float) : sizeof(double), row = n * elem, bytes = n * row;
    if (threads < 2 || bytes < (std::size_t(32) << 20)) return false;  // one read is as fast
    const auto at_values = contiguous_values(dataset, n, f32);
    if (!at_values) return false;
    const int fd = at_values->fd;
    const std::uint64_t offset = at_values->offset;
    // Bands of rows, a few per thread, taken in turn.
    const std::size_t band = std::max<std::size_t>(1, (std::size_t(8) << 20) / row), bands = (n + band - 1) / band;
    std::atomic<std::size_t> next{0};
    std::atomic<int> failure{0};  // errno of the first failed read, or -1 for one that ended short
    char* out = static_cast<char*>(buf);
    run_on_threads(threads, [&] {
        for (std::size_t b; failure.load() == 0 && (b = next++) < bands;) {
            std::size_t at = b * band * row;
            const std::size_t end = std::min(n, (b + 1) * band) * row;
            while (at < end) {
                const ssize_t got = ::pread(fd, out + at, end - at, static_cast<off_t>(offset + at));
                if (got > 0) {
                    at += static_cast<std::size_t>(got);
                } else if (got < 0 && errno == EINTR) {
                    continue;
                } else {
                    int none = 0;
                    failure.compare_exchange_strong(none, got < 0 ? errno : -1);
                    return;
                }
            }
        }
    });
    if (const int e = failure.load())
        throw InputError(where + ": cannot read the values: " +
                         (e > 0 ? std::string(std::strerror(e)) : std::string("the file ends inside them (truncated?)")));
    return true;
}

}  // namespace basinvol::detail
