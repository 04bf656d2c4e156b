#pragma once
// HDF5 helpers shared by the reader and the writer (internal): every call is
// checked by its caller; handles close themselves; HDF5's automatic error
// printing is off while we work, and its innermost message is folded into ours.
#include <basinvol/hessian.hpp>
#include <basinvol/io/source.hpp>
#include <basinvol/io/reader.hpp>

#include "../threads.hpp"

#include <hdf5.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace basinvol::detail {

// HDF5 is built without thread safety on Debian: one caller at a time. The
// slot lets a forked child (single-threaded, see listing.cpp) start from a
// fresh mutex instead of the copy its parent holds.
inline std::recursive_mutex*& hdf5_mutex_slot() {
    static std::recursive_mutex* m = new std::recursive_mutex;
    return m;
}
inline std::recursive_mutex& hdf5_mutex() { return *hdf5_mutex_slot(); }

// HDF5's mutex, held for a scope; the time spent waiting while another
// thread held it (its read) is added to waited_seconds().
class Hdf5Lock {
public:
    Hdf5Lock() : lock_(hdf5_mutex(), std::try_to_lock) {
        if (lock_.owns_lock()) return;
        const auto t0 = std::chrono::steady_clock::now();
        lock_.lock();
        waited_seconds() += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }

private:
    std::unique_lock<std::recursive_mutex> lock_;
};

// The file HDF5 1.10 opens for an external link's target (`prefix_variable`
// "HDF5_EXT_PREFIX") or a virtual dataset's source ("HDF5_VDS_PREFIX") named
// `name` in `file`, trying in HDF5's order (H5F_prefix_open_file): an
// absolute name as it is, then its last part under each folder the variable
// lists (as written), for a source under the whole variable (a leading
// ${ORIGIN}: `file`'s folder), beside `file`, from the current directory,
// and beside the file a symbolic link `file` names. HDF5 passes over a name
// that is missing, a folder, not an HDF5 file or not to be opened (a
// socket); the first file with HDF5's signature is `hdf5`. A FIFO or device
// on the way is `blocking`: HDF5's open of it may never return. `other`:
// only files without the signature were found (the first is named).
struct TargetFile {
    enum Kind { none, hdf5, other, blocking };
    std::string path;
    Kind kind = none;
};
TargetFile target_file(const std::string& name, const std::string& file, const char* prefix_variable);
// Why a `blocking` target is not opened.
inline constexpr const char* blocking_open = "a FIFO or a device: HDF5's open of it may never return";
// Why the link `name` of `group` is not followed: an external link whose
// target_file is `blocking` (a message naming it); "" for any other link.
std::string blocked_link(hid_t group, const std::string& name);
// Makes every link traversal on HDF5's default link access list fail on an
// external link whose target_file is `blocking`, instead of waiting in its
// open (once per process; the reader calls it before it opens a file).
void guard_external_links();

// list_hessians in this process (listing.cpp wraps it in a child process).
std::vector<ListedHessian> list_hessians_here(const Source& source);

// What work run in a child process gave (child.cpp).
struct ChildResult {
    std::string bytes;       // what the child sent (whole when `clean`)
    bool clean = false;      // it exited 0 within the limit
    bool timed_out = false;  // killed at the limit
    bool stopped = false;    // killed when `stop` said so
    int signal = 0;          // the signal that ended it, if one did
};
// Runs `work` in a forked child (a fresh HDF5 mutex; it dies with this
// process) and returns what it returned, killing it after `limit` seconds;
// nullopt when no child can be started (the caller then works in-process).
// `stop`, when given, is asked about every 0.1 s; true kills the child.
// `room`, when nonzero, caps the address space the child may add to what
// it inherits (RLIMIT_AS; not under AddressSanitizer, whose shadow maps
// terabytes): an allocation past it fails in the child. Holds the HDF5
// mutex throughout. `progress`, when given, is shown the bytes received so
// far as they come (the work may send parts early with send_to_parent);
// true starts the `limit` again.
std::optional<ChildResult> run_in_child(const std::function<std::string()>& work, double limit,
                                        const std::function<bool()>& stop = {}, std::size_t room = 0,
                                        const std::function<bool(const std::string&)>& progress = {});
// In run_in_child's work: sends `bytes` to the parent now, ahead of what
// the work returns (the child exits when it cannot).
void send_to_parent(const std::string& bytes);
// The seconds a child may take to read `bytes` of values (ReadOptions::time_limit).
double read_time_limit(const ReadOptions& options, std::size_t bytes);
// `read(buf)` fills `bytes` bytes of values; run in a child (through shared
// memory, then moved into `out`) when options.isolate says so, else here. A
// child that dies or overruns its limit is an InputError naming `where`; so
// is an error the read throws, with its message.
void read_isolated(const std::string& where, std::size_t bytes, const ReadOptions& options,
                   const std::function<void(void*)>& read, void* out);

// A file this process's HDF5 holds open for writing (h5py in the same Python
// process, or a C++ caller) is shared by every H5Fopen of it here: a read
// sees its unflushed writes, and closing the read's handle writes them out.
// flush_writers_of writes them out first (a listing and each read of values
// call it, in this process, before they stamp the file), so the read sees
// the writer's Hessian and changes nothing. writer_descriptors, in the
// parent before a fork, names the descriptors of such files (those of
// HDF5's sec2 driver) and keep_read_only, in the forked child, points them
// at read-only copies: nothing the child does can write the file its parent
// is writing. The child itself asks HDF5 nothing about them: a file on
// another driver may run the driver's code, and h5py's file-object driver
// takes Python's interpreter lock, which a parent thread the child does
// not have may hold (the child would wait for it forever).
void flush_writers_of(const std::string& file);
std::vector<int> writer_descriptors();
void keep_read_only(const std::vector<int>& fds);

// The POSIX descriptor HDF5 reads `file` (an open file's id) through when
// its driver is sec2, the default; -1 for any other driver (a file image,
// family, split).
inline int sec2_descriptor(hid_t file) {
    const hid_t fapl = H5Fget_access_plist(file);
    void* handle = nullptr;
    const bool sec2 = fapl >= 0 && H5Pget_driver(fapl) == H5FD_SEC2 &&
                      H5Fget_vfd_handle(file, fapl, &handle) >= 0 && handle != nullptr;
    if (fapl >= 0) H5Pclose(fapl);
    return sec2 ? *static_cast<const int*>(handle) : -1;
}

// Silences HDF5's error printing for the scope and restores it after.
class ErrorSilencer {
public:
    ErrorSilencer() {
        H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
        H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    }
    ~ErrorSilencer() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
    ErrorSilencer(const ErrorSilencer&) = delete;
    ErrorSilencer& operator=(const ErrorSilencer&) = delete;

private:
    H5E_auto2_t func_ = nullptr;
    void* data_ = nullptr;
};

// The innermost (most specific) message on HDF5's error stack, or "".
inline std::string hdf5_message() {
    std::string msg;
    // Downward walks start at the API call ("can't read data") and end where
    // the error was found ("data error detected by Fletcher32 checksum"): keep the last.
    auto walk = [](unsigned, const H5E_error2_t* err, void* out) -> herr_t {
        auto* s = static_cast<std::string*>(out);
        if (err->desc && *err->desc) *s = err->desc;
        return 0;
    };
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk, &msg);
    H5Eclear2(H5E_DEFAULT);
    // One line: a failed write's message holds ctime()'s newline ("time = … 2026\n, filename = …").
    for (char& c : msg)
        if (c == '\n' || c == '\r') c = ' ';
    return msg;
}

// An HDF5 identifier that closes itself.
class Handle {
public:
    using Closer = herr_t (*)(hid_t);
    Handle() = default;
    Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
    Handle(Handle&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = -1; }
    Handle& operator=(Handle&& o) noexcept {
        if (this != &o) {
            reset();
            id_ = o.id_;
            closer_ = o.closer_;
            o.id_ = -1;
        }
        return *this;
    }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle() { reset(); }
    hid_t get() const { return id_; }
    bool valid() const { return id_ >= 0; }

private:
    void reset() {
        if (id_ >= 0 && closer_) closer_(id_);
        id_ = -1;
    }
    hid_t id_ = -1;
    Closer closer_ = nullptr;
};

// The reader's building blocks, shared with the structured reader
// (structure_reader.cpp). Each throws InputError naming `where`.
[[noreturn]] void fail_at(const std::string& where, const std::string& what, bool with_hdf5 = true);
// A failed H5Dread of dataset d: names the filter this HDF5 lacks when one
// of d's (an optional one, skipped where it failed when written) is the cause.
[[noreturn]] void fail_to_read(hid_t d, const std::string& where);
Handle open_hdf5(const std::string& file, const std::shared_ptr<const std::string>& image = nullptr);
// A dataset as a dense Hessian candidate (problem set when it is not one).
ListedHessian describe_dataset(hid_t d, const std::string& file, const std::string& path);
// Reads obj's attributes into attrs; returns why they cannot be read ("" when they can).
std::string read_object_attributes(hid_t obj, Attributes& attrs);
// Where this thread's attribute reads note the attributes they cannot read
// (a listing: record into a HessianInfo's unread_attributes) or skip those
// a listing noted, refusing them as it did (a read that checks the file is
// unchanged: HDF5 would allocate again what a corrupt attribute states, in
// a process whose memory is not capped). The outermost scope of a thread
// holds: a part described while its structure is listed or read goes with it.
class AttributeScope {
public:
    static AttributeScope record(std::vector<UnreadAttribute>& into) { return AttributeScope(&into, nullptr); }
    static AttributeScope skip(const std::vector<UnreadAttribute>& listed) { return AttributeScope(nullptr, &listed); }
    AttributeScope(AttributeScope&& o) noexcept : owner_(o.owner_) { o.owner_ = false; }
    AttributeScope(const AttributeScope&) = delete;
    AttributeScope& operator=(const AttributeScope&) = delete;
    ~AttributeScope();

private:
    AttributeScope(std::vector<UnreadAttribute>* into, const std::vector<UnreadAttribute>* listed);
    bool owner_ = false;
};
// The listing's word on attribute `name` of `obj` when it noted it as
// unread (under AttributeScope::skip), else null.
const UnreadAttribute* listed_unread(hid_t obj, const std::string& name);
// Notes attribute `name` of `obj` as unread (under AttributeScope::record).
void note_unread(hid_t obj, const std::string& name, const std::string& why);
// Whether this thread is under AttributeScope::record (a listing).
bool recording_attributes();
// Whether the variable-length string `s` HDF5 allocated, whose text has
// `text` bytes, was allocated at a stated length far past it (a corrupt
// heap ID: HDF5 allocated and cleared that length twice to read it).
bool stated_past_text(const char* s, std::size_t text);
// The listing's read of dataset d's param_names (parameter_blocks.cpp), an
// array of at most `most` strings, which list_parameter_blocks reads again:
// one that cannot be read is noted as unread.
void read_parameter_names(hid_t d, std::size_t most);
// Whether an object's attributes now are those listed for it (bit for bit;
// but step, loss and threshold a block was listed with from its whole,
// which may be absent).
bool same_attributes_as_listed(const Attributes& now, const Attributes& listed);
std::string hdf5_type_name(hid_t type);
// Why a numeric type's bit layout cannot be a real one ("" when it can, or
// when it is not a number): read no value of it.
std::string numeric_layout_problem(hid_t type);
// Throws InputError unless dataset `d` is still the matrix `info` lists:
// its shape, its stored type and (but for a parameter block's window) its
// attributes; and when it was never written. A file rewritten between listing and reading would otherwise
// be read into a buffer of another size, under another type's ε, or beside
// another checkpoint's step and loss_threshold. `attributes` false: not
// its attributes (a basinvol-mpi rank other than 0 holds only what its
// analysis needs of them; rank 0 checks them).
void check_as_listed(hid_t d, const HessianInfo& info, bool attributes = true);
// Throws InputError (naming `where`) when dataset d was created and never
// written: no storage allocated, every value its fill value.
void check_written(hid_t d, const std::string& where);
// Whether a float type's exponents reach past float64's: its largest
// exponent (the top code is infinity) above 1023, or its smallest normal
// one under −1022 (x87 long double, binary128).
bool wider_range_than_double(hid_t type);
// Throws InputError (naming `where`) when dataset d's float type reaches
// past float64's exponents (x87 long double, binary128) and the values read
// as float64 into `values` (the box of `rows` x `cols` at [start0, start1];
// a 1-D dataset: cols 1) lost it: a finite value beyond float64's range
// (read as ±inf), or a Hessian whose largest value lies under float64's
// normal range (read as zeros and subnormals). Values merely rounded are
// left to the noise floor.
void check_float64_range(hid_t d, const double* values, std::size_t rows, std::size_t cols, std::size_t start0,
                         std::size_t start1, const std::string& where);
// Why dataset d's values cannot be read safely and whole (a corrupt type,
// storage short of its shape, missing external or virtual sources, a
// filter this HDF5 lacks), or "". The files other than `file` the read
// takes are added to `reads`.
std::string values_problem(hid_t d, const std::string& file, std::vector<std::string>* reads);
// What the listing checks of a dense dataset's storage, seen from this
// process (its external raw-data files, filters): "" when it can be read.
// basinvol-mpi asks every rank, whose directories may differ from rank 0's.
std::string storage_problem_here(hid_t d, const std::string& file);

// Why chunks of d never written cannot stand for a Hessian's entries, or "":
// HDF5 reads them as the fill value, which unless 0 (or NaN, refused with
// the values) is no entry (netCDF's default fill, 9.97e36). Call when d has
// unwritten chunks.
std::string unwritten_fill_problem(hid_t d);

// The stored type whose rounding d's values carry, as (machine epsilon,
// name): `own` (d's type), or for a virtual dataset the coarsest of that
// and its sources' (float32 sources read through a float64 one). `file`
// is the file d was reached from.
std::pair<double, std::string> carried_type(hid_t d, const std::string& file, std::pair<double, std::string> own);

// The value of obj's `structure` attribute ("" when it has none), or a
// description in parentheses of a value that is not a string; "(named X)"
// for an attribute X spelled `structure` in other letter case whose value
// is a structure kind (structure_in_other_case).
std::string structure_kind(hid_t obj, const std::string& where);
// The name of obj's attribute spelled `structure` in other letter case
// whose value is blocks, factor, kron or diagonal (in any case), or "".
// (Other values, "Structure = ResNet-18", are a user's own metadata.)
std::string structure_in_other_case(hid_t obj);
// obj's attribute names; none when its attribute list does not decode
// (iterating such a compact list crashes HDF5 1.10: see read_attributes).
std::vector<std::string> attribute_names(hid_t obj);
std::string lower_case(std::string s);
// Whether `name` is one a user writing a factor's scale may have meant
// (Scale, SCALE, scaling, scales, scale_Factor; netCDF's own scale_factor
// only when `netcdf_too`: elsewhere it is netCDF's packing, refused as such).
bool meant_as_scale(const std::string& name, bool netcdf_too = true);
// Why an attribute named `name` is hessian_error or loss_threshold
// misspelled ("attribute Hessian_Error is not read: basinvol reads
// hessian_error, in lower case"), or "": in other letter case, with other
// separators (loss-threshold, "loss_threshold "), or up to two letters off
// (loss_thresold, hessian_errors). Such an attribute is refused: unread, it
// would change the answer without a word.
std::string misspelled_answer_attribute(const std::string& name);
// Why an attribute of a structure's part obj is a read one misspelled
// ("attribute Scale is not read: ..."), or "": `structure` (as
// structure_in_other_case), hessian_error or loss_threshold misspelled (as
// misspelled_answer_attribute), or a name meant as scale (Scale, scaling, scale_factor). `scales`:
// obj is a factor or kron part. "" too when obj's attributes do not decode.
std::string misnamed_attribute(hid_t obj, bool scales);
// Why dataset d, reached at `path`, is a square factor of a structure (G
// of s·GᵀG, A or B of s·(A ⊗ B)) and not a Hessian, or "". Recognized by the
// path, its soft links followed; a hard link to it from another group has
// equal standing and is not recognized.
std::string structure_factor_problem(hid_t d, const std::string& path);
// A structured Hessian (group or 1-D dataset with `structure`) as one
// listing entry: n, the coarsest stored type, the attributes; `problem` set
// when its layout breaks the contract (docs/structured.md).
ListedHessian describe_structured(hid_t obj, const std::string& file, const std::string& path);
// HessianInfo::identity of object `obj`: its file on disk (device, inode,
// size, modification time) and its address there; "" when either is
// unknown (a file image).
std::string object_identity(hid_t obj);

}  // namespace basinvol::detail
