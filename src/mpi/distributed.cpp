#include "../io/chunk_reader.hpp"
#include "../io/hdf5_detail.hpp"
#include "../solve/blas.hpp"
#include "../solve/blas_room.hpp"
#include "../solve/detail.hpp"
#include "scalapack.hpp"

#include <basinvol/batch/scheduler.hpp>
#include <basinvol/error.hpp>
#include <basinvol/mpi/distributed.hpp>

#include <hdf5.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <limits>
#include <new>
#include <sstream>

namespace basinvol::mpi {

namespace {

// `root`'s text, on every rank.
std::string broadcast(MPI_Comm comm, std::string text, int root) {
    int me = 0;
    MPI_Comm_rank(comm, &me);
    int len = me == root ? static_cast<int>(text.size()) : 0;
    MPI_Bcast(&len, 1, MPI_INT, root, comm);
    text.resize(static_cast<std::size_t>(len));
    MPI_Bcast(text.data(), len, MPI_CHAR, root, comm);
    return text;
}

}  // namespace

Agreed first_failure(MPI_Comm comm, const std::string& mine) {
    int me = 0, size = 1;
    MPI_Comm_rank(comm, &me);
    MPI_Comm_size(comm, &size);
    int first = mine.empty() ? size : me;
    MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, comm);
    if (first == size) return {};
    return {first, broadcast(comm, mine, first)};
}

namespace {

// A BLACS process grid over `comm`, as square as the rank count allows.
struct Grid {
    int system = -1, context = -1, rows = 1, cols = 1, row = 0, col = 0;
    explicit Grid(MPI_Comm comm) {
        int p = 1;
        MPI_Comm_size(comm, &p);
        rows = static_cast<int>(std::sqrt(static_cast<double>(p)));
        while (rows > 1 && p % rows != 0) --rows;
        cols = p / rows;
        system = Csys2blacs_handle(comm);
        context = system;
        Cblacs_gridinit(&context, "Row", rows, cols);
        Cblacs_gridinfo(context, &rows, &cols, &row, &col);
    }
    ~Grid() {
        Cblacs_gridexit(context);
        Cfree_blacs_system_handle(system);
    }
    Grid(const Grid&) = delete;
    Grid& operator=(const Grid&) = delete;
};

// One dimension's share of a block-cyclic distribution: `full` whole blocks
// of `nb` from `start` every `stride`, then perhaps a shorter last block.
struct Cyclic {
    hsize_t nb = 1, start = 0, stride = 1, full = 0, tail_start = 0, tail = 0;
};

Cyclic cyclic(std::size_t n, std::size_t nb, int me, int procs) {
    Cyclic c;
    const std::size_t blocks = (n + nb - 1) / nb;
    const auto m = static_cast<std::size_t>(me), p = static_cast<std::size_t>(procs);
    const std::size_t mine = blocks > m ? (blocks - 1 - m) / p + 1 : 0;
    c.nb = nb;
    c.start = m * nb;
    c.stride = p * nb;
    c.full = mine;
    if (mine > 0 && (blocks - 1) % p == m && n % nb != 0) {
        c.full = mine - 1;
        c.tail_start = (blocks - 1) * nb;
        c.tail = n % nb;
    }
    return c;
}

// The global index of local index l.
std::size_t global_index(std::size_t l, std::size_t nb, int me, int procs) {
    return ((l / nb) * static_cast<std::size_t>(procs) + static_cast<std::size_t>(me)) * nb + l % nb;
}

constexpr std::uint64_t none = std::numeric_limits<std::uint64_t>::max();

// The message of the lowest rank that failed, on every rank ("" when none did).
std::string agree(MPI_Comm comm, const std::string& mine) { return first_failure(comm, mine).message; }

using detail::ErrorSilencer;
using detail::Handle;

std::string on_rank(MPI_Comm comm) {
    int me = 0, size = 1;
    MPI_Comm_rank(comm, &me);
    MPI_Comm_size(comm, &size);
    return " on MPI rank " + std::to_string(me) + " of " + std::to_string(size);
}

}  // namespace

std::string not_a_file_here(const HessianInfo& info, const std::string& path, const std::string& on) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return info.file + ": cannot open file" + on + ": " + std::strerror(errno);
    struct stat st {};
    const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    ::close(fd);
    return regular ? std::string() : info.file + ": is not a regular file" + on;
}

namespace {

// Why this rank cannot open the dataset of `where` (its file at `path`, and
// the target of an external link on the way, as HDF5 resolves it from this
// rank's working directory) with serial HDF5 ("" when it can).
std::string cannot_open_here(MPI_Comm comm, const HessianInfo& where, const std::string& path) {
    const std::string on = on_rank(comm);
    // A FIFO or a device there would block HDF5's open (the listing refuses them on rank 0).
    if (std::string why = not_a_file_here(where, path, on); !why.empty()) return why;
    ErrorSilencer quiet;
    detail::guard_external_links();  // an external link's FIFO target here fails the open below, not waits
    // HDF5's own reason, as the serial reader gives it: the file may have
    // changed since it was listed (truncated, replaced) on every rank.
    const auto hdf5 = [] {
        const std::string m = detail::hdf5_message();
        return m.empty() ? std::string() : " (HDF5: " + m + ")";
    };
    Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (!file.valid()) return where.file + ": cannot open the file with HDF5" + on + hdf5() + " (changed since it was listed?)";
    Handle d(H5Dopen2(file.get(), where.dataset.c_str(), H5P_DEFAULT), H5Dclose);
    if (!d.valid()) {
        if (std::string why = detail::blocked_link(file.get(), where.dataset); !why.empty())
            return where.source() + ": " + why + on;
        return where.source() + ": cannot open dataset" + on + hdf5() +
               " (the file changed since it was listed, or an external link's target is missing there?)";
    }
    // Its external raw-data files as this rank finds them (a FIFO would block a read).
    if (std::string why = detail::storage_problem_here(d.get(), where.file); !why.empty())
        return where.source() + ": " + why + on;
    return {};
}

// The first unreadable value (reject_value) in the file's row-major order across all ranks
// (each passes its own first: its linear index row·n + col, or `none`), as
// the serial reader reports it: the agreed message on every rank, "" if none.
std::string first_unreadable(MPI_Comm comm, const HessianInfo& where, std::uint64_t first_bad, double bad_value,
                            std::size_t n) {
    std::uint64_t global_bad = first_bad;
    MPI_Allreduce(&first_bad, &global_bad, 1, MPI_UINT64_T, MPI_MIN, comm);
    if (global_bad == none) return {};
    std::string failure;
    if (global_bad == first_bad) {
        try {
            reject_value(where, bad_value, static_cast<std::size_t>(global_bad / n),
                             static_cast<std::size_t>(global_bad % n));
        } catch (const InputError& e) {
            failure = e.what();
        }
    }
    return agree(comm, failure);
}

// A dataset opened through MPI-IO (H5Fopen is collective over comm).
struct ParallelDataset {
    Handle file, dataset;
    ParallelDataset(MPI_Comm comm, const HessianInfo& where) {
        // MPI-IO takes a leading "ufs:" or "nfs:" for a file system's name: a
        // relative name is given as ./NAME, the file the listing saw.
        const std::string name = where.file.rfind('/', 0) == 0 ? where.file : "./" + where.file;
        // A file some rank cannot open (a node-local path, a missing copy)
        // leaves the others inside MPI-IO's collective open: agreed first.
        if (auto e = agree(comm, cannot_open_here(comm, where, name)); !e.empty()) throw InputError(e);
        Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
        H5Pset_fapl_mpio(fapl.get(), comm, MPI_INFO_NULL);
        file = Handle(H5Fopen(name.c_str(), H5F_ACC_RDONLY, fapl.get()), H5Fclose);
        if (!file.valid())
            throw InputError(where.file + ": cannot open the file with parallel HDF5" +
                             (where.file.find(':') != std::string::npos
                                  ? " (MPI-IO may take what comes before a ':' in its name for a file system's "
                                    "name: rename the file, or link it under a name without ':')"
                                  : ""));
        dataset = Handle(H5Dopen2(file.get(), where.dataset.c_str(), H5P_DEFAULT), H5Dclose);
        if (!dataset.valid()) throw InputError(where.source() + ": cannot open dataset");
        Handle dcpl(H5Dget_create_plist(dataset.get()), H5Pclose);
        if (dcpl.valid() && H5Pget_layout(dcpl.get()) == H5D_VIRTUAL)
            throw InputError(where.source() + ": a virtual dataset cannot be read by parallel HDF5 (1.10); analyze "
                                              "it with basinvol, or copy it into a regular dataset");
    }
};

// Read as float64 in tiles or slabs, the values of a type whose range
// reaches past float64's would be inf or zeros where they lie beyond it:
// the serial reader checks them, this one refuses the type.
void refuse_wider_than_double(hid_t d, const std::string& where, const std::string& stored_type) {
    Handle type(H5Dget_type(d), H5Tclose);
    if (type.valid() && detail::wider_range_than_double(type.get()))
        throw InputError(where + ": dataset type is " + stored_type +
                         ", whose range reaches past float64's; basinvol-mpi reads float64 and narrower types: "
                         "store it as float64, or run basinvol");
}

// How a dataset's values are laid out in its file: contiguous, compact, or
// chunked (the chunk's shape, how many filters). Parallel HDF5 opens every
// rank's copy of a file with what rank 0's holds (its superblock), so a
// node-local copy laid out otherwise, chunked where rank 0's is contiguous,
// failed to read as corrupt data.
std::string layout_of(hid_t d) {
    Handle dcpl(H5Dget_create_plist(d), H5Pclose);
    if (!dcpl.valid()) return "unknown";
    std::ostringstream s;
    switch (H5Pget_layout(dcpl.get())) {
        case H5D_CONTIGUOUS: s << "contiguous"; break;
        case H5D_COMPACT: s << "compact"; break;
        case H5D_CHUNKED: {
            hsize_t chunk[2] = {0, 0};
            const int rank = H5Pget_chunk(dcpl.get(), 2, chunk);
            s << "chunked";
            if (rank == 2) s << " in " << chunk[0] << "x" << chunk[1];
            const int filters = H5Pget_nfilters(dcpl.get());
            if (filters > 0) s << " through " << filters << (filters == 1 ? " filter" : " filters");
            break;
        }
        default: s << "another layout";
    }
    return s.str();
}

std::string differing_copy(const std::string& what, int me, int size) {
    return what + " (on MPI rank " + std::to_string(me) + " of " + std::to_string(size) +
           ", where rank 0 reads the listed one: every rank must read the same file, and this rank's copy differs)";
}

// The dataset must still be the one listed (shape, type, attributes, and
// laid out as rank 0's copy), and every deflated chunk of it must inflate
// to exactly its plain size,
// as the serial reader checks (HDF5's filter keeps the head of a longer one
// and leaves the tail of a shorter one unwritten): each rank checks every
// size-th chunk. Why one does not, agreed across ranks ("" when all do).
std::string check_chunks(MPI_Comm comm, const HessianInfo& info) {
    int me = 0, size = 1;
    MPI_Comm_rank(comm, &me);
    MPI_Comm_size(comm, &size);
    std::string failure, layout;
    try {
        ErrorSilencer quiet;
        const ParallelDataset opened(comm, info);
        layout = layout_of(opened.dataset.get());
        try {
            detail::check_as_listed(opened.dataset.get(), info, me == 0);  // as the serial reader checks it
        } catch (const InputError& e) {
            // Rank 0 listed the file: where it still matches there, this
            // rank reads another copy (a node-local file of that name).
            if (me == 0) throw;
            throw InputError(differing_copy(e.what(), me, size));
        }
        refuse_wider_than_double(opened.dataset.get(), info.source(), info.stored_type);
        detail::check_chunks(opened.dataset.get(), static_cast<std::size_t>(me), static_cast<std::size_t>(size),
                             info.source());
    } catch (const std::bad_alloc&) {
        failure = info.source() + ": out of memory for a chunk";
    } catch (const std::exception& e) {
        failure = e.what();
    }
    const std::string listed = broadcast(comm, layout, 0);  // rank 0's, on every rank, whatever failed
    if (failure.empty() && me != 0 && layout != listed)
        failure = differing_copy(info.source() + ": dataset is " + layout + " here, " + listed + " in rank 0's copy",
                                 me, size);
    return agree(comm, failure);
}

// Reads this rank's tiles: local(lr, lc), column-major with leading dimension
// mloc, holds file[gc, gr] — the file's rows as columns, as the serial reader
// holds them — so that the matrix is the serial tool's, bit for bit. The
// selection (file rows = my global columns, file columns = my global rows)
// is iterated by HDF5 in row-major file order: lc-major, lr-minor. Contiguous
// datasets are read collectively; chunked (compressed) ones independently,
// so that a corrupt chunk fails one rank's read without holding the others
// in a collective call.
void read_tiles(MPI_Comm comm, const HessianInfo& info, const Cyclic& file_rows, const Cyclic& file_cols,
                double* local, std::size_t count) {
    const std::string where = info.source();
    ErrorSilencer quiet;
    const ParallelDataset opened(comm, info);
    const Handle& d = opened.dataset;
    Handle space(H5Dget_space(d.get()), H5Sclose);
    Handle dcpl(H5Dget_create_plist(d.get()), H5Pclose);
    // Collective only when every rank's copy is contiguous: a rank whose copy
    // is chunked reads independently, and a collective read the others
    // entered would wait for it forever.
    int chunked_here = H5Pget_layout(dcpl.get()) == H5D_CHUNKED, chunked_any = chunked_here;
    MPI_Allreduce(&chunked_here, &chunked_any, 1, MPI_INT, MPI_MAX, comm);
    const bool chunked = chunked_any != 0;

    bool any = false;
    // A product of a piece of file rows and a piece of file columns.
    auto add = [&](hsize_t r0, hsize_t rstride, hsize_t rcount, hsize_t rblock, hsize_t c0, hsize_t cstride,
                   hsize_t ccount, hsize_t cblock) {
        if (rcount == 0 || ccount == 0 || rblock == 0 || cblock == 0) return;
        const hsize_t start[2] = {r0, c0}, stride[2] = {rstride, cstride}, cnt[2] = {rcount, ccount},
                      block[2] = {rblock, cblock};
        if (H5Sselect_hyperslab(space.get(), any ? H5S_SELECT_OR : H5S_SELECT_SET, start, stride, cnt, block) < 0)
            throw InputError(where + ": cannot select this rank's tiles");
        any = true;
    };
    const Cyclic& r = file_rows;
    const Cyclic& c = file_cols;
    add(r.start, r.stride, r.full, r.nb, c.start, c.stride, c.full, c.nb);
    add(r.start, r.stride, r.full, r.nb, c.tail_start, 1, 1, c.tail);
    add(r.tail_start, 1, 1, r.tail, c.start, c.stride, c.full, c.nb);
    add(r.tail_start, 1, 1, r.tail, c.tail_start, 1, 1, c.tail);
    if (!any) H5Sselect_none(space.get());
    const hsize_t mcount = std::max<hsize_t>(1, count);
    Handle memory(H5Screate_simple(1, &mcount, nullptr), H5Sclose);
    if (count == 0) H5Sselect_none(memory.get());
    Handle dxpl(H5Pcreate(H5P_DATASET_XFER), H5Pclose);
    H5Pset_dxpl_mpio(dxpl.get(), chunked ? H5FD_MPIO_INDEPENDENT : H5FD_MPIO_COLLECTIVE);
    double dummy = 0;
    hsize_t chunk[2] = {0, 0}, dims[2] = {0, 0};
    if (chunked && count > 0 && H5Pget_chunk(dcpl.get(), 2, chunk) == 2 && chunk[0] > 0 && chunk[1] > 0 &&
        H5Sget_simple_extent_dims(space.get(), dims, nullptr) == 2) {
        // In bands of whole chunk rows, each touching at most
        // chunks_per_read chunks, or one row of them (see detail::read_box).
        // The selection is read in row-major file order, so each band's
        // values follow the last band's in `local`.
        const hsize_t across = (dims[1] + chunk[1] - 1) / chunk[1];
        const hsize_t rows = std::max<hsize_t>(1, detail::chunks_per_read / across) * chunk[0];
        std::size_t at = 0;
        for (hsize_t b0 = 0; b0 < dims[0]; b0 += rows) {
            const hsize_t start[2] = {b0, 0}, size[2] = {std::min(rows, dims[0] - b0), dims[1]};
            Handle band(H5Scopy(space.get()), H5Sclose);
            if (!band.valid() || H5Sselect_hyperslab(band.get(), H5S_SELECT_AND, start, nullptr, size, nullptr) < 0)
                throw InputError(where + ": cannot select this rank's tiles");
            const hssize_t points = H5Sget_select_npoints(band.get());
            if (points <= 0) continue;
            const hsize_t m = static_cast<hsize_t>(points);
            Handle part(H5Screate_simple(1, &m, nullptr), H5Sclose);
            if (at + m > count || H5Dread(d.get(), H5T_NATIVE_DOUBLE, part.get(), band.get(), dxpl.get(), local + at) < 0)
                detail::fail_to_read(d.get(), where);
            at += m;
        }
        if (at != count) throw InputError(where + ": this rank's tiles were not all read");
        return;
    }
    if (H5Dread(d.get(), H5T_NATIVE_DOUBLE, memory.get(), space.get(), dxpl.get(), count ? local : &dummy) < 0)
        detail::fail_to_read(d.get(), where);
}

double since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// This rank's share of the n×n matrix on the process grid: ScaLAPACK's
// local column-major array of mloc×nloc values and its descriptor.
struct Tiles {
    const Grid& grid;
    std::size_t n;
    int N, nb, mloc = 0, nloc = 0, lld = 1;
    std::size_t count = 0;  // mloc·nloc
    std::vector<double> a;
    int desc[9] = {};
    Tiles(const Grid& g, std::size_t n_, int nb_) : grid(g), n(n_), N(static_cast<int>(n_)), nb(nb_) {
        const int zero = 0;
        mloc = numroc_(&N, &nb, &grid.row, &zero, &grid.rows);
        nloc = numroc_(&N, &nb, &grid.col, &zero, &grid.cols);
        lld = std::max(1, mloc);
        count = static_cast<std::size_t>(mloc) * static_cast<std::size_t>(nloc);
    }
    // The file's row of local column lc, and the file's column of local row lr
    // (the buffer holds the file's rows as columns).
    std::size_t file_row(int lc) const { return global_index(static_cast<std::size_t>(lc), nb, grid.col, grid.cols); }
    std::size_t file_col(int lr) const { return global_index(static_cast<std::size_t>(lr), nb, grid.row, grid.rows); }
};

// What a budget message adds under an address-space limit.
std::string address_space_note() {
    return address_space_left() == SIZE_MAX
               ? ""
               : "; under the address-space limit (ulimit -v) the budget is at most what it leaves beside "
                 "OpenBLAS's 0.134 GB buffer: raise the limit";
}

// How a refusal names the per-rank budget: what bounds it, and what helps.
// Under a tight address-space limit MPI's and OpenBLAS's own mappings can
// take all of it: more ranks cannot help a matrix of n = 3 then; nor a
// structure's part every rank reads whole (`spread` false).
std::string budget_words(std::size_t budget, bool spread = true) {
    std::ostringstream s;
    s.precision(3);
    s << double(budget) / 1e9 << " GB";
    if (address_space_left() != SIZE_MAX && budget < (std::size_t(1) << 20))
        return s.str() + ": the address-space limit (ulimit -v) leaves no memory beside MPI's and OpenBLAS's own "
                         "mappings; raise the limit";
    return s.str() + (spread ? " (option max_memory; more ranks spread it)" : " (option max_memory)") +
           address_space_note();
}

// A message when `bytes` is over the rank's budget ("" otherwise).
std::string over_budget(MPI_Comm comm, const HessianInfo& info, std::size_t bytes, const Grid& grid,
                        const ReadOptions& opt) {
    const std::size_t budget = rank_budget(comm, opt);
    if (bytes <= budget) return "";
    std::ostringstream s;
    s.precision(3);
    s << info.source() << ": matrix of n = " << info.n << " needs " << double(bytes) / 1e9 << " GB per rank on a "
      << grid.rows << "x" << grid.cols << " grid, over the budget of " << budget_words(budget);
    return s.str();
}

// Whether the values every rank weighed (from `count` values at `values`,
// or none when `weighed` is false: not float64 values) are float32 data, as
// the serial reader weighs them all (Float32Evidence). Collective.
bool float32_data_across(MPI_Comm comm, bool weighed, const double* values, std::size_t count) {
    Float32Evidence f32;
    f32.too_precise = weighed ? 0 : 1;
    for (std::size_t i = 0; i < count && f32.too_precise == 0; ++i) f32.add(values[i]);
    std::uint64_t counts[3] = {f32.too_precise, f32.fractional, f32.full};
    MPI_Allreduce(MPI_IN_PLACE, counts, 3, MPI_UINT64_T, MPI_SUM, comm);
    int extent[2] = {f32.highest, -std::max(f32.lowest, -INT_MAX)};  // the largest leading bit, the smallest low bit
    MPI_Allreduce(MPI_IN_PLACE, extent, 2, MPI_INT, MPI_MAX, comm);
    return Float32Evidence{counts[0], counts[1], counts[2], extent[0], -extent[1]}.holds();
}

// Readable values across ranks (the first entry in the file's row-major order
// that is not finite or is a 64-bit integer past 2^53, as the serial reader
// reports it); sets `scale` to max|H|, and marks float32 data saved as
// float64 in `info` (unless opt says not to), as the serial reader does
// (Float32Evidence).
std::string check_values(MPI_Comm comm, HessianInfo& info, const Tiles& t, const ReadOptions& opt, double& scale) {
    std::uint64_t first_bad = none;
    double bad_value = 0;
    scale = 0;
    const double limit = exact_limit(info.stored_type);
    for (int lc = 0; lc < t.nloc; ++lc)
        for (int lr = 0; lr < t.mloc; ++lr) {
            const double v = t.a[static_cast<std::size_t>(lc) * t.lld + lr];
            if (!(std::abs(v) < limit)) {  // unreadable_value
                const std::uint64_t at = static_cast<std::uint64_t>(t.file_row(lc)) * t.n + t.file_col(lr);
                if (at < first_bad) first_bad = at, bad_value = v;
            } else {
                scale = std::max(scale, std::abs(v));
            }
        }
    std::string error = first_unreadable(comm, info, first_bad, bad_value, t.n);
    MPI_Allreduce(MPI_IN_PLACE, &scale, 1, MPI_DOUBLE, MPI_MAX, comm);
    // This rank's mloc·nloc values lie contiguous (lld = mloc).
    const bool weighed = opt.detect_float32_data && may_hold_float32_data(info);
    if (float32_data_across(comm, weighed, t.a.data(), t.count)) mark_float32_values(info);
    return error;
}

// ‖H − Hᵀ‖_F and ‖H‖_F in units of unit_scale(max|H|), as the serial
// reader measures them (entries near 1e308 stay finite),
// the asymmetry limit, then (H + Hᵀ)/2, exact in double for float data too,
// as the serial reader holds it. An error message agreed on every rank, or "".
std::string symmetrize(MPI_Comm comm, const HessianInfo& info, Tiles& t, double largest, const ReadOptions& opt,
                       DistributedSpectrum& out) {
    const double scale = unit_scale(largest);
    std::vector<double> tr;
    std::string failure;
    try {
        tr.resize(t.a.size());
    } catch (const std::bad_alloc&) {
        failure = info.source() + ": out of memory for the transposed tiles (n = " + std::to_string(info.n) + "); try option max_memory, or more ranks";
    }
    if (auto e = agree(comm, failure); !e.empty()) return e;
    const double alpha = 1, beta = 0;
    const int one = 1;
    pdtran_(&t.N, &t.N, &alpha, t.a.data(), &one, &one, t.desc, &beta, tr.data(), &one, &one, t.desc);
    const double inv = 1 / scale;
    const bool divide = !std::isfinite(inv);
    auto unit = [&](double x) { return divide ? x / scale : x * inv; };
    double sums[3] = {0, 0, 0};  // asym², norm², symmetric part's norm²
    for (std::size_t k = 0; k < t.count; ++k) {
        const double x = unit(t.a[k]), y = unit(tr[k]);
        sums[0] += (x - y) * (x - y);
        sums[1] += x * x;
    }
    MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, comm);
    out.asymmetry = std::sqrt(sums[0] / sums[1]);
    out.asymmetry_norm = scale * std::sqrt(sums[0]);
    try {
        check_symmetry(info, out.asymmetry, opt);
    } catch (const InputError& e) {
        return e.what();  // the same on every rank: the sums were reduced
    }
    if (sums[0] == 0) {
        out.frobenius = scale * std::sqrt(sums[1]);
        return "";
    }
    for (std::size_t k = 0; k < t.count; ++k) {
        t.a[k] = symmetric_mean(t.a[k], tr[k]);
        const double u = unit(t.a[k]);
        sums[2] += u * u;
    }
    MPI_Allreduce(MPI_IN_PLACE, &sums[2], 1, MPI_DOUBLE, MPI_SUM, comm);
    out.frobenius = scale * std::sqrt(sums[2]);
    return "";
}

// Eigenvalues only: pdsyev with JOBZ = 'N' (pdsyevd computes vectors too).
// An error message agreed on every rank, or "".
std::string eigenvalues(MPI_Comm comm, const HessianInfo& info, Tiles& t, std::vector<double>& values) {
    values.assign(t.n, 0.0);
    const int one = 1;
    int lwork = -1, sinfo = 0;
    double query = 0;
    pdsyev_("N", "L", &t.N, t.a.data(), &one, &one, t.desc, values.data(), nullptr, &one, &one, t.desc, &query,
            &lwork, &sinfo);
    std::vector<double> work;
    std::string failure;
    try {
        lwork = static_cast<int>(std::min<double>(query * 1.1 + 64, std::numeric_limits<int>::max()));
        work.resize(static_cast<std::size_t>(lwork));
    } catch (const std::bad_alloc&) {
        failure = info.source() + ": out of memory for ScaLAPACK's workspace (n = " + std::to_string(info.n) + "); try option max_memory, or more ranks";
    }
    if (auto e = agree(comm, failure); !e.empty()) return e;
    pdsyev_("N", "L", &t.N, t.a.data(), &one, &one, t.desc, values.data(), nullptr, &one, &one, t.desc, work.data(),
            &lwork, &sinfo);
    if (sinfo != 0) failure = info.source() + ": ScaLAPACK pdsyev failed (info " + std::to_string(sinfo) + ")";
    return agree(comm, failure);
}

// The sum over ranks of n doubles at x, the same on every rank: reduced on
// rank 0 in one order and broadcast (an all-reduce may round differently on
// different ranks, and the sketch's decisions must not differ).
void sum_everywhere(MPI_Comm comm, double* x, std::size_t n) {
    int me = 0;
    MPI_Comm_rank(comm, &me);
    constexpr std::size_t chunk = std::size_t(1) << 26;
    for (std::size_t at = 0; at < n; at += chunk) {
        const int c = static_cast<int>(std::min(chunk, n - at));
        MPI_Reduce(me == 0 ? MPI_IN_PLACE : x + at, me == 0 ? x + at : nullptr, c, MPI_DOUBLE, MPI_SUM, 0, comm);
        MPI_Bcast(x + at, c, MPI_DOUBLE, 0, comm);
    }
}

// The sketch's view of the distributed matrix: products H·X of a replicated
// n×k block X (one local GEMM over this rank's tiles, rows summed across
// ranks) and the certificate ‖H − VΘVᵀ‖_F (this rank's tiles, in panels).
class TileProducts {
public:
    TileProducts(MPI_Comm comm, const Tiles& t) : comm_(comm), t_(t), rows_(t.mloc), cols_(t.nloc) {
        for (int i = 0; i < t.mloc; ++i) rows_[static_cast<std::size_t>(i)] = static_cast<Eigen::Index>(t.file_col(i));
        for (int j = 0; j < t.nloc; ++j) cols_[static_cast<std::size_t>(j)] = static_cast<Eigen::Index>(t.file_row(j));
    }
    std::size_t matvecs = 0, passes = 0;

    double trace() const {
        // H(g, g) is here when this rank's grid row owns row g's block: local
        // row (g / (nb·rows))·nb + g mod nb.
        const auto nb = static_cast<std::size_t>(t_.nb), rows = static_cast<std::size_t>(t_.grid.rows);
        double sum = 0;
        for (int j = 0; j < t_.nloc; ++j) {
            const auto g = static_cast<std::size_t>(cols_[static_cast<std::size_t>(j)]);
            if ((g / nb) % rows != static_cast<std::size_t>(t_.grid.row)) continue;
            const std::size_t i = (g / (nb * rows)) * nb + g % nb;
            sum += t_.a[static_cast<std::size_t>(j) * static_cast<std::size_t>(t_.lld) + i];
        }
        sum_everywhere(comm_, &sum, 1);
        return sum;
    }

    Eigen::MatrixXd apply(const Eigen::MatrixXd& X) {
        const Eigen::Index k = X.cols();
        Eigen::MatrixXd Y = Eigen::MatrixXd::Zero(X.rows(), k);
        if (t_.mloc > 0 && t_.nloc > 0 && k > 0) {
            Eigen::MatrixXd mine(t_.nloc, k), local(t_.mloc, k);
            for (int j = 0; j < t_.nloc; ++j) mine.row(j) = X.row(cols_[static_cast<std::size_t>(j)]);
            blas::gemm('N', 'N', t_.mloc, static_cast<int>(k), t_.nloc, 1.0, t_.a.data(), t_.lld, mine.data(), t_.nloc,
                       0.0, local.data(), t_.mloc);
            for (int i = 0; i < t_.mloc; ++i) Y.row(rows_[static_cast<std::size_t>(i)]) += local.row(i);
        }
        sum_everywhere(comm_, Y.data(), static_cast<std::size_t>(Y.size()));
        matvecs += static_cast<std::size_t>(k);
        ++passes;
        return Y;
    }

    // Scaled by ‖H‖_F (`scale`) so that squares of entries near 1e±300 stay finite.
    double residual(const Eigen::MatrixXd& V, const Eigen::VectorXd& theta, double scale) {
        const Eigen::Index k = V.cols();
        long double sum = 0;
        if (t_.mloc > 0 && t_.nloc > 0) {
            Eigen::MatrixXd left(t_.mloc, k), right(t_.nloc, k);
            for (int i = 0; i < t_.mloc; ++i) left.row(i) = V.row(rows_[static_cast<std::size_t>(i)]);
            for (int j = 0; j < t_.nloc; ++j) right.row(j) = V.row(cols_[static_cast<std::size_t>(j)]);
            left = left * theta.asDiagonal();
            const int width = std::min(t_.nloc, 256);
            Eigen::MatrixXd panel(t_.mloc, width);
            for (int c0 = 0; c0 < t_.nloc; c0 += width) {
                const int w = std::min(width, t_.nloc - c0);
                for (int j = 0; j < w; ++j)
                    panel.col(j) = Eigen::Map<const Eigen::VectorXd>(
                        t_.a.data() + static_cast<std::size_t>(c0 + j) * static_cast<std::size_t>(t_.lld), t_.mloc);
                if (k > 0)  // panel −= (VΘ)(rows)·V(cols of the panel)ᵀ
                    blas::gemm('N', 'T', t_.mloc, w, static_cast<int>(k), -1.0, left.data(), t_.mloc,
                               right.data() + c0, t_.nloc, 1.0, panel.data(), t_.mloc);
                for (int j = 0; j < w; ++j)
                    for (int i = 0; i < t_.mloc; ++i) {
                        const double e = panel(i, j) / scale;
                        sum += static_cast<long double>(e) * e;
                    }
            }
        }
        double total = static_cast<double>(sum);
        sum_everywhere(comm_, &total, 1);
        ++passes;
        return std::sqrt(total) * scale;
    }

private:
    MPI_Comm comm_;
    const Tiles& t_;
    std::vector<Eigen::Index> rows_, cols_;  // global row of each local row, column of each local column
};

// The serial sketch (detail::sketch) over the tiles; every rank runs it with
// the same replicated blocks, and its decisions are rank 0's. At most five
// replicated n×k blocks live at once (Ω, H·Ω, Y while it grows, Q); with
// k ≤ min(n/4, n/(5P)) they fit the room budgeted for the transpose of the
// tiles, freed by then. An empty optional when it does not apply, gave up or
// failed (the same on every rank). Running out of memory anyway would leave
// the ranks in different collectives: the job is aborted with a message.
std::optional<Spectrum> distributed_sketch(MPI_Comm comm, const HessianInfo& info, const Tiles& t, double frobenius) {
    int me = 0, size = 1;
    MPI_Comm_rank(comm, &me);
    MPI_Comm_size(comm, &size);
    const auto t0 = std::chrono::steady_clock::now();
    TileProducts products(comm, t);
    detail::SketchTarget target;
    target.n = info.n;
    target.frobenius = frobenius;
    MPI_Bcast(&target.frobenius, 1, MPI_DOUBLE, 0, comm);  // rank 0's, for the same decisions everywhere
    target.stored_eps = info.stored_eps;
    target.trace = products.trace();
    target.apply = [&](const Eigen::MatrixXd& X) { return products.apply(X); };
    const double scale = target.frobenius > 0 ? target.frobenius : 1.0;
    target.residual = [&](const Eigen::MatrixXd& V, const Eigen::VectorXd& theta) {
        return products.residual(V, theta, scale);
    };
    target.agree = [&](bool b) {
        int v = b ? 1 : 0;
        MPI_Bcast(&v, 1, MPI_INT, 0, comm);
        return v != 0;
    };
    Spectrum s;
    s.n = info.n;
    s.method = "sketch";
    s.partial = true;
    const std::size_t max_k = std::min(info.n / 4, info.n / (5 * static_cast<std::size_t>(size)));
    std::optional<Spectrum> out;
    std::string failure;
    try {
        out = detail::sketch(target, max_k, PartialOptions{}, std::move(s));
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "basinvol-mpi: rank %d: out of memory in the sketch of %s; ending the job\n", me,
                     info.source().c_str());
        MPI_Abort(comm, 1);
    } catch (const std::exception& e) {
        failure = e.what();  // deterministic (the same blocks everywhere): dense finishes
    }
    // A sketch over its budget still goes to the caller, which declines it
    // and writes why (as the serial tool does).
    if (!agree(comm, failure).empty() || !out) return std::nullopt;
    std::sort(out->values.begin(), out->values.end());
    out->stats.matvecs = products.matvecs;
    out->stats.passes = products.passes;
    out->stats.seconds = since(t0);
    return out;
}

}  // namespace

std::optional<Row> structure_over_budget(const HessianInfo& info, std::size_t need, std::size_t budget) {
    // Under an address-space limit `budget` already leaves OpenBLAS's
    // buffer out: the serial rule would take a job's reserve from it again.
    if (address_space_left() == SIZE_MAX) return over_budget_alone(info, need, budget);
    if (need <= budget) return std::nullopt;
    return over_budget_row(info, need, "over the budget of " + budget_words(budget, false));
}

std::size_t rank_budget(MPI_Comm comm, const ReadOptions& opt) {
    MPI_Comm node;
    MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    int on_node = 1;
    MPI_Comm_size(node, &on_node);
    MPI_Comm_free(&node);
    // The default: half the memory the node gives (its cgroup's limit, as
    // Slurm sets one, when under its physical memory), shared by its ranks.
    std::size_t budget = opt.max_bytes ? opt.max_bytes : default_memory_budget() / static_cast<std::size_t>(on_node);
    if (!budget) budget = std::size_t(1) << 33;
    // Under an address-space limit (ulimit -v), what it leaves less
    // OpenBLAS's buffer (mapped at its first call, retried forever when it
    // cannot be: a hang, not an error) and ScaLAPACK's workspace; BLAS then
    // runs on one thread (main.cpp), the main one, which needs one buffer
    // and no malloc arena of its own.
    // The buffer is mapped at the first budget, where the limit leaves room
    // for it: from then on it is part of what this process has mapped, and
    // counting it again refused a rank's second Hessian what its first had.
    if (address_space_left() != SIZE_MAX) detail::prepare_for_address_limit();
    if (const std::size_t left = address_space_left(); left != SIZE_MAX) {
        const std::size_t reserve = (detail::blas_buffer_mapped() ? 0 : blas_buffer_bytes) + (std::size_t(16) << 20);
        budget = std::min(budget, left > reserve ? left - reserve : 0);
    }
    // The smallest rank's, on every rank: nodes with more ranks or less
    // memory must not decide alone to skip what the others read together.
    unsigned long long agreed = budget;
    MPI_Allreduce(MPI_IN_PLACE, &agreed, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, comm);
    return static_cast<std::size_t>(agreed);
}

DistributedSpectrum distributed_dense(MPI_Comm comm, const HessianInfo& listed, const ReadOptions& opt,
                                      const SketchFirst& sketch_first) {
    const auto t0 = std::chrono::steady_clock::now();
    DistributedSpectrum out;
    HessianInfo& info = out.info = listed;  // its stored_eps once the values are checked
    Grid grid(comm);
    out.grid_rows = grid.rows;
    out.grid_cols = grid.cols;
    const std::size_t n = info.n;
    if (n == 0 || n > static_cast<std::size_t>(std::numeric_limits<int>::max() / 2)) {
        out.error = info.source() + ": n = " + std::to_string(n) + " is outside what ScaLAPACK takes";
        return out;
    }
    // Blocks of 64 (ScaLAPACK's usual), smaller when n is small, so every rank holds some.
    const int most = std::max(grid.rows, grid.cols);
    out.block = static_cast<int>(std::clamp<std::size_t>(n / (2 * static_cast<std::size_t>(most)), 1, 64));
    Tiles t(grid, n, out.block);
    out.local_bytes = 2 * t.count * sizeof(double);  // the tiles and their transpose
    if (!(out.error = agree(comm, over_budget(comm, info, out.local_bytes, grid, opt))).empty()) return out;

    if (!(out.error = check_chunks(comm, info)).empty()) return out;
    std::string failure;
    // Memory first, agreed: a rank out of memory inside the try below would
    // skip the collective open the others wait in.
    try {
        t.a.resize(std::max<std::size_t>(1, t.count));
    } catch (const std::bad_alloc&) {
        failure = info.source() + ": out of memory for this rank's tiles (n = " + std::to_string(info.n) + "); try option max_memory, or more ranks";
    }
    if (!(out.error = agree(comm, failure)).empty()) return out;
    try {
        const auto nb = static_cast<std::size_t>(t.nb);
        read_tiles(comm, info, cyclic(n, nb, grid.col, grid.cols), cyclic(n, nb, grid.row, grid.rows), t.a.data(),
                   t.count);
    } catch (const std::bad_alloc&) {
        failure = info.source() + ": out of memory for this rank's tiles (n = " + std::to_string(info.n) + "); try option max_memory, or more ranks";
    } catch (const std::exception& e) {
        failure = e.what();
    }
    if (!(out.error = agree(comm, failure)).empty()) return out;
    double scale = 0;
    if (!(out.error = check_values(comm, info, t, opt, scale)).empty()) return out;
    const int zero = 0;
    int dinfo = 0;
    descinit_(t.desc, &t.N, &t.N, &t.nb, &t.nb, &zero, &zero, &grid.context, &t.lld, &dinfo);
    if (scale > 0 && !(out.error = symmetrize(comm, info, t, scale, opt, out)).empty()) return out;
    // Past DBL_MAX the eigensolver stops converging: the serial tool's error
    // row (the same on every rank: ‖H‖_F is reduced).
    if (!std::isfinite(out.frobenius)) {
        try {
            reject_norm_overflow(info.source());
        } catch (const NumericError& e) {
            out.error = e.what();
        }
        return out;
    }
    if (sketch_first) {
        int me = 0;
        MPI_Comm_rank(comm, &me);
        std::optional<Spectrum> partial = distributed_sketch(comm, info, t, out.frobenius);
        int kept = 0;
        try {
            kept = partial && me == 0 && sketch_first(info, *partial, out.frobenius, out.asymmetry_norm) ? 1 : 0;
        } catch (const std::exception&) {
            kept = 0;  // the eigensolve below gives the row (and any error it has)
        }
        MPI_Bcast(&kept, 1, MPI_INT, 0, comm);
        if (kept) {
            out.sketched = true;
            out.seconds = since(t0);
            return out;
        }
    }
    if (!(out.error = eigenvalues(comm, info, t, out.eigenvalues)).empty()) return out;
    out.seconds = since(t0);
    return out;
}

namespace {

// One step of the ranks' walks of a structure (DistributedGram): a rank
// leaving it (its analysis over, `why` its failure or "") or about to read
// the factor `part` with the others. Why the step ends the walk, the same
// on every rank: "" when no rank left and every rank reads a factor of the
// same shape, or when every rank left and none failed.
std::string walk_step(MPI_Comm comm, const HessianInfo& info, const StructurePart* part, const std::string& why) {
    int size = 1;
    MPI_Comm_size(comm, &size);
    const bool leaving = part == nullptr;
    constexpr long long no_shape = std::numeric_limits<long long>::min();  // a leaving rank's: no MAX's
    const auto m = leaving ? no_shape : static_cast<long long>(part->m), n = leaving ? no_shape : static_cast<long long>(part->n);
    // MAX of each and of its negation: whether any and every rank left, and
    // the largest and smallest shape of the factors read.
    long long step[6] = {leaving, -static_cast<long long>(leaving), m, leaving ? no_shape : -m, n, leaving ? no_shape : -n};
    MPI_Allreduce(MPI_IN_PLACE, step, 6, MPI_LONG_LONG, MPI_MAX, comm);
    const Agreed failed = first_failure(comm, why);
    const std::string differ = info.source() + ": the ranks' walks of the structure differ (";
    const std::string copies = "): its copies differ between nodes; every rank must read the same file";
    if (!step[0]) {
        if (step[2] == -step[3] && step[4] == -step[5]) return "";
        auto span = [](long long lo, long long hi) {
            return lo == hi ? std::to_string(lo) : "from " + std::to_string(lo) + " to " + std::to_string(hi);
        };
        return differ + "the ranks read factors of different shapes: G's rows " + span(-step[3], step[2]) +
               ", its columns " + span(-step[5], step[4]) + copies;
    }
    if (failed.rank >= 0)
        return failed.message + " (on MPI rank " + std::to_string(failed.rank) + " of " + std::to_string(size) + ")";
    if (step[1] == -1) return "";
    return differ + "some ranks read more factors than others" + copies;
}

}  // namespace

std::string DistributedGram::finish(const HessianInfo& info, const std::string& failure) const {
    if (left_) {
        std::string why = std::move(*left_);
        left_.reset();
        return why;
    }
    return walk_step(comm_, info, nullptr, failure);
}

Gram DistributedGram::gram(const HessianInfo& info, const StructurePart& p, const ReadOptions& opt) const {
    int me = 0, size = 1;
    MPI_Comm_rank(comm_, &me);
    MPI_Comm_size(comm_, &size);
    // A rank that left the walk (its copy failed, or held fewer factors) is
    // met here: its failure is this rank's too, and finish() is agreed.
    if (std::string why = walk_step(comm_, info, &p, ""); !why.empty()) {
        left_ = why;
        throw InputError(why);
    }
    const std::size_t m = p.m, n = p.n;
    const bool small_m = m <= n;  // then K = GGᵀ (m×m) over column slabs, else GᵀG (n×n) over row slabs
    const std::size_t longer = small_m ? n : m, k = small_m ? m : n;
    const std::size_t lo = longer * static_cast<std::size_t>(me) / static_cast<std::size_t>(size);
    const std::size_t hi = longer * static_cast<std::size_t>(me + 1) / static_cast<std::size_t>(size);
    const std::size_t w = hi - lo, count = w * k;
    HessianInfo g = info;  // names G in messages as the serial reader does: FILE:/path/G
    g.dataset = member_of(p.path, "G");
    g.stored_type = p.stored_type;
    std::string failure;
    {
        const double bytes = double(count + k * k) * sizeof(double);
        const std::size_t budget = rank_budget(comm_, opt);
        if (bytes > double(budget)) {
            std::ostringstream s;
            s.precision(3);
            s << g.source() << ": G of " << m << " x " << n << " needs " << bytes / 1e9 << " GB per rank (a slab of "
              << w << " and the " << k << " x " << k << " Gram), over the budget of " << budget_words(budget);
            failure = s.str();
        }
    }
    if (auto e = agree(comm_, failure); !e.empty()) throw InputError(e);

    // The slab, read as stored (row-major G) into a column-major view:
    // small_m: G[:, lo:hi] is Y = (Gᵀ)[lo:hi, :], w×m; else G[lo:hi, :] is
    // Y = Gᵀ[:, lo:hi], n×w.
    std::vector<double> slab;
    try {  // memory first, agreed: a rank out of it below would skip the collective open
        slab.resize(std::max<std::size_t>(1, count));
    } catch (const std::bad_alloc&) {
        failure = g.source() + ": out of memory for this rank's slab of G; try option max_memory, or more ranks";
    }
    if (auto e = agree(comm_, failure); !e.empty()) throw InputError(e);
    try {
        ErrorSilencer quiet;
        const ParallelDataset opened(comm_, g);
        const Handle& d = opened.dataset;
        // Each rank checks its share of G's chunks, as for a dense Hessian
        // (check_chunks above); the failures are agreed below.
        detail::check_written(d.get(), g.source());
        refuse_wider_than_double(d.get(), g.source(), p.stored_type);
        detail::check_chunks(d.get(), static_cast<std::size_t>(me), static_cast<std::size_t>(size), g.source());
        // The slab is a box of G, row-major: read in bands of chunk rows as
        // the serial reader reads G (independent transfers, the default).
        const hsize_t start[2] = {small_m ? 0 : lo, small_m ? lo : 0};
        const hsize_t cnt[2] = {small_m ? m : w, small_m ? w : n};
        if (count) detail::read_box(d.get(), H5T_NATIVE_DOUBLE, start, cnt, slab.data(), g.source());
    } catch (const std::bad_alloc&) {
        failure = g.source() + ": out of memory for this rank's slab of G; try option max_memory, or more ranks";
    } catch (const std::exception& e) {
        failure = e.what();
    }
    if (auto e = agree(comm_, failure); !e.empty()) throw InputError(e);

    // The first unreadable value in G's row-major order, as the serial reader reports it.
    std::uint64_t first_bad = none;
    double bad_value = 0;
    const double limit = exact_limit(p.stored_type);
    for (std::size_t i = 0; i < count; ++i) {
        const double v = slab[i];
        if (std::abs(v) < limit) continue;  // readable (unreadable_value)
        // small_m: slab[r·w + c] = G[r, lo + c]; else slab[r·n + c] = G[lo + r, c].
        const std::uint64_t at = small_m ? (i / w) * n + lo + i % w : (lo + i / n) * n + i % n;
        if (at < first_bad) first_bad = at, bad_value = v;
    }
    if (auto e = first_unreadable(comm_, g, first_bad, bad_value, n); !e.empty()) throw InputError(e);

    // G's scaling (gram_shift), from its largest |g| over every rank's slab.
    double largest = 0;
    for (std::size_t i = 0; i < count; ++i) largest = std::max(largest, std::abs(slab[i]));
    MPI_Allreduce(MPI_IN_PLACE, &largest, 1, MPI_DOUBLE, MPI_MAX, comm_);
    Gram out;
    // Float32 data saved as float64, weighed over every rank's slab as the
    // serial reader weighs the whole of G (Float32Evidence).
    out.float32_values =
        float32_data_across(comm_, opt.detect_float32_data && may_hold_float32_data(p.stored_type, p.stored_eps),
                            slab.data(), count);
    out.shift = gram_shift(largest);
    if (out.shift != 0)
        for (std::size_t i = 0; i < count; ++i) slab[i] = std::ldexp(slab[i], -out.shift);

    const auto K_ = static_cast<Eigen::Index>(k);
    Eigen::MatrixXd& K = out.K;
    K = Eigen::MatrixXd::Zero(K_, K_);
    if (count)
        blas::syrk('U', small_m ? 'T' : 'N', static_cast<int>(k), static_cast<int>(w), 1.0, slab.data(),
                   static_cast<int>(small_m ? w : n), 0.0, K.data(), static_cast<int>(k));
    std::vector<double>().swap(slab);
    MPI_Allreduce(MPI_IN_PLACE, K.data(), static_cast<int>(K.size()), MPI_DOUBLE, MPI_SUM, comm_);
    return out;
}

}  // namespace basinvol::mpi
