#pragma once
// Reading Hessians from HDF5 files.
//
// Every failure is an InputError whose message starts with FILE or
// FILE:DATASET and names the rule that was broken and the value that broke it.
// HDF5's own error stack is never printed; its innermost message is folded
// into ours.
#include <basinvol/error.hpp>
#include <basinvol/hessian.hpp>
#include <basinvol/io/source.hpp>

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace basinvol {

// A lock the caller keeps HDF5 under (BasicLockable: lock, unlock).
struct ReadLock {
    virtual ~ReadLock() = default;
    virtual void lock() = 0;
    virtual void unlock() = 0;
};

struct ReadOptions {
    // Relative asymmetry ‖H − Hᵀ‖_F / ‖H‖_F above which a matrix is refused.
    // Below it the matrix is symmetrized, (H + Hᵀ)/2.
    double max_asymmetry = 1e-3;
    // Largest matrix (in bytes, as held in memory) that may be allocated;
    // 0 means half of the physical memory.
    std::size_t max_bytes = 0;
    // The bytes of the HDF5 file `file` names, when it was listed from an
    // in-memory image (image_source): read from them, not the file system.
    // analyze_listed sets it from the listing.
    std::shared_ptr<const std::string> image;
    // Where the values are read. In a child process (always, --read-timeout),
    // HDF5 crashing or hanging on corrupt data (or a hung file system behind
    // it) is an error for this Hessian, at the cost of a fork per Hessian
    // (with other jobs running, their pages copied on write: about 15 ms a
    // Hessian here). By default (never) they are read here, after the
    // listing refused every layout and type HDF5 was seen to crash or hang
    // on (docs/errors.md).
    enum class Isolation { never, always };
    Isolation isolate = Isolation::never;
    // Seconds an isolated read may take; 0: default_read_time_limit plus one
    // second per default_read_bytes_per_second of values.
    double time_limit = 0;
    // Held around each read of a Hessian's values, and around the whole of
    // a structured Hessian (its parts are read as it is solved); none by
    // default. The Python package passes h5py's lock: h5py calls in other
    // threads wait for basinvol's reads, not for its solves.
    std::shared_ptr<ReadLock> hold;
    // Map a contiguous float32 or float64 dataset's values from the file
    // (copy-on-write) rather than copy them into memory: no zeroed pages
    // to fill, a fifth of a large low-rank Hessian's run. The Hessian then
    // depends on the file until it is dropped, and whoever uses its values
    // calls Hessian::check_unchanged() on the answer (analyze does). Not
    // for windows (parameter blocks), images or isolated reads; the values
    // are read as usual where mapping is refused.
    bool map = false;
    // Weigh float64 values as float32 data (Float32Evidence, in
    // hessian.hpp) and measure them at float32's rounding when they are;
    // false measures them at float64's, as stored (exact data that look
    // like float32 data: --trust-stored-type).
    bool detect_float32_data = true;
};
constexpr double default_read_time_limit = 120;
constexpr double default_read_bytes_per_second = 10e6;

// The Hessians a SOURCE names, in name order, with their shape, stored type
// and attributes (no matrix data is read). A dataset path must name a square
// 2-D numeric dataset; a group or a bare file means every square 2-D dataset
// below it. Throws InputError.
//
// HDF5 1.10 can crash on corrupt metadata, so the walk runs in a forked child
// process: a child that dies is an InputError naming the file ("the HDF5
// library failed while reading this file's structure"), never the caller's
// death.
constexpr double default_listing_time_limit = 120;
struct ListOptions {
    // Walk in a child process (default). Off lists in this process: for
    // fuzzing, where the walk's coverage must be seen.
    bool isolate = true;
    // Seconds the child may take before it is killed and the SOURCE is an
    // InputError ("took longer than the listing limit of S s"); must be > 0
    // (UsageError otherwise).
    double time_limit = default_listing_time_limit;
    // Asked about every 0.1 s while a child lists (the Python module: a
    // Ctrl-C): true kills the child and list_hessians throws ListingStopped.
    std::function<bool()> stop;
};
// A listing its caller stopped (ListOptions::stop): not an error of the
// file, so not an Error (no error row is made of it).
struct ListingStopped : std::exception {
    const char* what() const noexcept override { return "the listing was stopped by its caller"; }
};
// One dataset a listing found: a Hessian to read, or (`problem` not empty)
// why the dataset cannot be one, `info` then holding what could be read of
// it (shape, type, attributes) for its error row.
struct ListedHessian {
    HessianInfo info;
    std::string problem;
    std::shared_ptr<const std::string> image;  // the source's in-memory image, if it was one
};
std::vector<ListedHessian> list_hessians(const Source& source, const ListOptions& options = {});

// Each of `sources` listed as list_hessians lists it, several in one child
// process (a fork per SOURCE costs ~10 ms); a SOURCE that cannot be listed
// has the message list_hessians throws for it as `error`, the others
// their Hessians. Throws UsageError (a bad time limit) and ListingStopped.
struct SourceListing {
    std::vector<ListedHessian> hessians;
    std::string error;  // empty when listed
};
std::vector<SourceListing> list_each(const std::vector<Source>& sources, const ListOptions& options = {});

// Drops from each listing the Hessians an earlier SOURCE listed (their
// HessianInfo::identity: a.h5 and a.h5:/H, a soft link, a symlinked file),
// so that each is one row, under the name listed first; returns a warning
// for each SOURCE that lost some.
std::vector<std::string> drop_listed_twice(const std::vector<Source>& sources, std::vector<SourceListing>& listings);

// The top-level members of a `blocks` structure list_hessians listed, each
// listed as a Hessian of its own (as list_each lists FILE:MEMBER); the
// whole's step, loss and loss_threshold hold for a member that states none.
// A member that cannot be listed is listed with its problem. Throws
// InputError when the structure's layout cannot be read.
std::vector<ListedHessian> list_blocks(const ListedHessian& whole, const ListOptions& options = {});

// The message of a listing that ran out of memory (under an address-space
// limit, it names the limit: the listing of a file of 100,000 Hessians takes
// about 2 kB each).
std::string listing_out_of_memory(const std::string& file);

// The parameter blocks of a dense dataset written by the exporter (its
// attributes param_offsets, param_sizes and param_names), each listed as a
// Hessian of its own: the diagonal block of its parameters (HessianInfo::
// window), with the whole's stored type and attributes. Empty when the
// dataset has no param_offsets. Throws InputError naming the attribute and
// the rule broken (offsets and sizes: 1-D integer arrays of one length, each
// block non-empty, inside the matrix and after the one before; names, if
// given, one non-empty string a block, no two alike).
std::vector<ListedHessian> list_parameter_blocks(const HessianInfo& whole, const ReadOptions& options = {});

// Reads one Hessian listed by list_hessians, checks it (finite, symmetric to
// within max_asymmetry) and symmetrizes it. Throws InputError.
Hessian read_hessian(const HessianInfo& info, const ReadOptions& options = {});

// A Hessian from a matrix already in memory, checked and symmetrized like a
// read one (stored type float64 / float32). `label` stands in for the file.
Hessian make_hessian(Eigen::MatrixXd m, const std::string& label = "memory", const ReadOptions& options = {});
Hessian make_hessian(Eigen::MatrixXf m, const std::string& label = "memory", const ReadOptions& options = {});

// Whether the regular file at `path` carries HDF5's signature where HDF5
// looks for it (byte 0, 512, 1024, 2048, ..., past a user block), as
// H5Fis_hdf5 tests, without asking HDF5 (a FIFO is never opened: false).
bool has_hdf5_signature(const std::string& path);

// The value rules every reader applies, with the same messages from each: an
// entry that is not finite or, stored as a 64-bit integer, lies at or past
// 2^53 (float64 may have rounded it: 2^53 + 1 reads as 2^53), at the file's
// [row, col]; and the asymmetry limit (relative ‖H − Hᵀ‖_F / ‖H‖_F against
// options.max_asymmetry). Throw InputError.
// Magnitudes from `exact_limit` up are unreadable: 2^53 for 64-bit
// integers, +∞ for the rest (so !(|v| < limit) also catches NaN).
double exact_limit(const std::string& stored_type);
bool unreadable_value(const std::string& stored_type, double value);
[[noreturn]] void reject_value(const HessianInfo& info, double value, std::size_t row, std::size_t col);
// The same for any dataset: `where` names it, `at` places the value ("[i]").
[[noreturn]] void reject_value(const std::string& where, const std::string& stored_type, double value,
                               const std::string& at);
// ‖H‖_F (or a bound on it) past DBL_MAX: a NumericError naming the source.
[[noreturn]] void reject_norm_overflow(const std::string& source, const char* norm = "‖H‖_F");
void check_symmetry(const HessianInfo& info, double relative_asymmetry, const ReadOptions& options);
// a and b in three significant digits, or as many as tell them apart
// (0.001001 over 0.0010005), for a message that says one exceeds the other.
std::pair<std::string, std::string> texts_apart(double a, double b);
// The n×n matrix of info's stored type fits options.max_bytes (else half the
// physical memory); throws InputError naming both, before anything is allocated.
void check_memory_budget(const HessianInfo& info, const ReadOptions& options);
// The bytes a Hessian may hold in memory: options.max_bytes, else half the
// physical memory (8 GiB when that cannot be read).
std::size_t memory_budget(const ReadOptions& options);

// info's file's stamp now: taken before its values are read (invalid for an
// in-memory image, or a file that cannot be stat'ed).
FileStamp stamp_file(const HessianInfo& info);
// Throws InputError when info's file no longer has the stamp `before` taken
// before its values were read (rewritten, replaced or removed meanwhile):
// the values may mix two versions. Nothing to check when `before` is invalid.
void check_unchanged(const HessianInfo& info, const FileStamp& before);
// The clock the file system stamps mtime and ctime with (coarse real time,
// one tick of a few milliseconds), in nanoseconds.
long long file_clock_ns();
// The error for a file that changed while it was read; `how` says what changed.
InputError file_changed(const HessianInfo& info, const std::string& how);
// A stamp whose mtime or ctime is not before `clock_ns` (taken before the
// stamp) was written in that tick or later: a write there may fall during a
// read that started then without changing the stamp, so the stamp cannot
// tell the values were from one version. A stamp more than a second ahead
// of the clock is a clock skew (a file copied from a machine whose clock is
// ahead), not a write: a write now would change it.
bool written_since(const FileStamp& stamp, long long clock_ns);
// Sleeps until the file system clock is past the stamp (at most about a
// second): a read that starts then tells "before" from "during".
void wait_past(const FileStamp& stamp);
// Runs `read` (which reads info's values and may throw InputError for what
// it found in them) until one pass reads a settled file: the stamp the same
// after as before, and not written in the tick the pass started (then the
// pass is repeated once the clock is past the write, up to `passes` in all).
// A file that changed during a pass is the error, ahead of what its values
// broke; before a settled file's broken rule is reported, the stamp is
// compared once more 50 ms later (a writer paused mid-rewrite leaves a file
// that looks settled). With passes = 1 only the stamps before and after are compared (the
// distributed tool, whose ranks must not decide to read again one by one).
void read_consistently(const HessianInfo& info, const std::function<void()>& read, int passes = 3);

// Bytes of physical memory on this machine (0 if unknown).
std::size_t physical_memory_bytes();

}  // namespace basinvol
