#pragma once
// A Hessian as listed (HessianInfo: where it is and what its file says) and
// as read (Hessian: the checked matrix in its stored precision).
#include <Eigen/Dense>
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace basinvol {

namespace detail {
class MappedValues;  // io/mapped_values.hpp
}

// What the file said about a dataset (optional HDF5 attributes).
struct Attributes {
    std::optional<double> step;
    std::optional<double> loss;
    std::optional<double> loss_threshold;
    std::optional<double> hessian_error;  // the exporter's bound on the matrix's own error (absolute)
    // A structure's own hessian_error, before its parts' stated errors are
    // folded into hessian_error: what its --per-block rows inherit.
    std::optional<double> own_hessian_error;
    // A --per-block row's whole's own hessian_error, when the block states
    // none itself (its parts' may be folded into hessian_error): it bounds
    // the block's error too. Never read from the block's object.
    std::optional<double> whole_error;
    // Which of step, loss and loss_threshold a --per-block row took from its
    // whole (it states none of its own): a reread of the row's object
    // accepts their absence, and only theirs.
    std::vector<std::string> inherited;
    std::optional<std::string> name;
    // Other numeric scalar attributes (e.g. expected_rank), by name.
    std::map<std::string, double> numbers;
    // Other string attributes, by name.
    std::map<std::string, std::string> strings;
};

// The reader keeps an attribute that must be one number where it applies
// (expected_* for `validate`, a structure's scale) but is not, as the text
// unreadable_prefix + why. Why `key` is not one number ("must be one number,
// got …"), or nothing when it is one or is absent.
inline constexpr const char* unreadable_prefix = "unreadable: ";

// The error a Hessian's attributes state: its own (with its parts'), or its
// whole's when larger (Attributes::whole_error); empty when none is stated.
inline std::optional<double> stated_error(const Attributes& a) {
    if (!a.whole_error) return a.hessian_error;
    return a.hessian_error ? std::max(*a.hessian_error, *a.whole_error) : a.whole_error;
}
inline std::optional<std::string> not_a_number(const Attributes& a, const std::string& key) {
    const auto it = a.strings.find(key);
    if (it == a.strings.end()) return std::nullopt;
    const std::string prefix = unreadable_prefix;
    if (it->second.rfind(prefix, 0) == 0) return it->second.substr(prefix.size());
    return "must be one number, got '" + it->second + "'";
}

// What the file system says of a file (stamp_file): a read that starts and
// ends with different stamps read a file that was being rewritten.
struct FileStamp {
    bool valid = false;  // false for in-memory images and files that could not be stat'ed
    unsigned long long device = 0, inode = 0, size = 0;
    long long mtime_ns = 0, ctime_ns = 0;
    bool operator==(const FileStamp& o) const {
        return valid == o.valid && device == o.device && inode == o.inode && size == o.size &&
               mtime_ns == o.mtime_ns && ctime_ns == o.ctime_ns;
    }
    bool operator!=(const FileStamp& o) const { return !(*this == o); }
};

// Byte counts of declared shapes can be absurd (a never-written 2^60 x 2^60
// dataset): they saturate at SIZE_MAX instead of wrapping round to small.
// Whether values of this stored type are held as float32 exactly (float32,
// float16, bfloat16), and read so.
inline bool held_as_float32(const std::string& stored_type) {
    return stored_type == "float32" || stored_type == "float16" || stored_type == "bfloat16";
}

// Whether float64 values are float32 data (torch's float32 Hessian through
// `.double()` or `astype(np.float64)`, symmetrized before or after that, a
// mean of two such): three tests, each a property exact float64 data of
// float32 precision lack.
//   - Every value is the mean of two float32 values, exactly: 2v = s + e
//     with s = fl32(2v) and e a float32 (Knuth's TwoSum). A float32 value
//     is one; so is (a + b)/2 in float64 of any two, as (H + Hᵀ)/2 of
//     widened float32 data leaves them, even a and b float32 noise binades
//     apart (a bias before a batch norm). A float64 value of full width
//     passes with probability 0.19: genuine float64 data fail within their
//     first values.
//   - Of its non-integer values, at least a third, and at least 16, have 24
//     or 25 significant bits: a float32 rounding of a real uses all 24 with
//     probability 1/2, whatever its size, and a mean of two in one binade
//     25 (torch Hessians in float32: 44–50%; symmetrized in float64:
//     54–75%). Integers say nothing either way. Values left by cancellation
//     (finite differences: 27–48 bits) or exact binary fractions of another
//     width are few among them.
//   - They do not all lie on one fixed-point grid of 27 bits or fewer: the
//     largest value's leading bit lies 27 bits or more over the smallest
//     set bit of any value.
//     Float32 data keep 24 bits at every magnitude, so a Hessian's small
//     entries reach far under its large ones' grid; exact fixed-point data
//     (integers, XᵀX/N of 8-bit features for N = 2^k ≤ 1024) lie on one.
// Exact data that pass all three (binary fractions of 24–25 bits spread
// over many magnitudes) cannot be told from float32 data by their values:
// ReadOptions::detect_float32_data turns the test off. Float32 data that
// fail one keep float64's rounding: means of three or more float32 values
// in float64, float64 arithmetic after widening (scaling by 1/3), and
// float32 data whose values all lie within a few binades of each other.
// Values found to be float32 data carry float32's rounding, 2⁻²⁴ of each
// entry (of (|a| + |b|)/2 for a mean), so their noise floor is float32's:
// the rule a float32 dataset of the same values gets.
struct Float32Evidence {
    std::uint64_t too_precise = 0;  // values that are not a mean of two float32 values, or not finite
    std::uint64_t fractional = 0;   // non-integer values
    std::uint64_t full = 0;         // of those, the ones of 24 or 25 significant bits
    int highest = INT_MIN;          // the largest exponent of a value's leading bit
    int lowest = INT_MAX;           // the smallest exponent of a value's lowest set bit
    void add(double v) {
        if (v == 0) return;
        const double twice = 2 * v;
        if (!(std::abs(twice) <= 0x1.fffffep127)) {  // past float32's range, or not finite
            ++too_precise;
            return;
        }
        const double head = static_cast<float>(twice), tail = twice - head;  // exact (Sterbenz)
        if (static_cast<double>(static_cast<float>(tail)) != tail) {
            ++too_precise;
            return;
        }
        // v is a normal double here: a double subnormal's 2v rounds to a
        // float32 0, leaving a tail no float32 holds.
        const double a = std::abs(v);
        std::uint64_t bits;
        std::memcpy(&bits, &a, sizeof bits);
        const int leading = static_cast<int>(bits >> 52) - 1023;
        const std::uint64_t significand = (bits & ((std::uint64_t(1) << 52) - 1)) | (std::uint64_t(1) << 52);
        const int zeros = __builtin_ctzll(significand);
        const int low = leading - 52 + zeros;  // the exponent of a's lowest set bit
        highest = std::max(highest, leading);
        lowest = std::min(lowest, low);
        if (low >= 0) return;  // an integer
        ++fractional;
        full += 53 - zeros == 24 || 53 - zeros == 25;
    }
    Float32Evidence& operator+=(const Float32Evidence& o) {
        too_precise += o.too_precise;
        fractional += o.fractional;
        full += o.full;
        highest = std::max(highest, o.highest);
        lowest = std::min(lowest, o.lowest);
        return *this;
    }
    bool holds() const {
        return too_precise == 0 && full >= 16 && 3 * full >= fractional && highest - lowest >= 27;
    }
};

// The spacing of the subnormal numbers of the IEEE type whose ε is `eps`
// (binary16, bfloat16, binary32; float64's for any other), where a value is
// kept to a fixed step, not to ε relative.
inline double subnormal_step(double eps) {
    return eps == 0x1p-10 ? 0x1p-24 : eps == 0x1p-7 ? 0x1p-133 : eps == 0x1p-23 ? 0x1p-149 : 0x1p-1074;
}

// (a + b)/2 as the symmetrized entry: exact for a float's pair, and for
// finite a and b whose sum overflows (1.5e308 twice) a/2 + b/2.
inline double symmetric_mean(double a, double b) {
    const double sum = a + b;
    return std::isfinite(sum) ? sum / 2 : a / 2 + b / 2;
}

// The unit the norms measure entries in, for max|H| = `largest` > 0: the
// power of two at or over it (at most 2^1023, so every entry is within 2 of
// it): dividing by it is exact, so two nearby entries keep their exact
// difference (an asymmetry at rounding level is measured, not the
// rounding of 1/max|H|), and squares neither overflow nor lose range.
inline double unit_scale(double largest) {
    int e = 0;
    std::frexp(largest, &e);  // largest = m·2^e, m in [0.5, 1)
    return std::ldexp(1.0, std::min(e, 1023));
}

inline std::size_t bytes_of(double bytes) {
    return bytes < 1.8e19 ? static_cast<std::size_t>(bytes) : static_cast<std::size_t>(-1);
}
inline std::size_t add_bytes(std::size_t a, std::size_t b) {
    return a > static_cast<std::size_t>(-1) - b ? static_cast<std::size_t>(-1) : a + b;
}

// An attribute the listing could not read: HDF5 failed on it, or a
// variable-length string's stored length was not its text's (a corrupt
// heap ID: HDF5 1.10 allocates and clears the length it states, gigabytes).
// The listing walks a file in a child process whose memory is capped, so
// only it meets such an attribute; the reads that check a file is unchanged
// skip it (io/hdf5_detail.hpp, AttributeScope) and take the listing's word.
struct UnreadAttribute {
    std::string object;  // the object that has it: its file's name and its address there
    std::string name;
    std::string why;     // as the listing refused it ("" when it was not refused: an attribute no answer needs)
    bool operator==(const UnreadAttribute& o) const { return object == o.object && name == o.name && why == o.why; }
};

struct HessianInfo {
    std::string file;
    std::string dataset;         // absolute HDF5 path
    std::size_t n = 0;
    std::string stored_type;     // "float32", "float64", "int32", ... (structured: the coarsest part's)
    // "" for a dense dataset; else the structure (docs/structured.md):
    // "blocks", "factor", "kron" or "diagonal".
    std::string structure;
    // Structured: the memory its analysis needs at most one part at a time
    // (the largest part with its solver's workspace, and the eigenvalues it
    // keeps; two square parts run side by side only when they fit the
    // budget together); 0 for dense.
    std::size_t working_bytes = 0;
    std::string working_part;  // structured: the part that sets it ("/m/G, 1000000000 x 3")
    double stored_eps = 0;       // unit roundoff of the stored type (machine epsilon)
    // A float64 dataset holding float32 data (Float32Evidence, weighed when
    // its values are checked): stored_eps is then float32's, as the values'
    // rounding is.
    bool float32_values = false;
    // The step a lossy filter rounded the stored values to (HDF5's
    // scale-offset filter with D decimal digits: 10^-D), 0 when stored exactly.
    double quantum = 0;
    // Chunks of its datasets (a structure: of all its parts; a parameter
    // block: those its rows and columns lie in) that were never written, so
    // read as the fill value: counted when listed.
    std::uint64_t unwritten_chunks = 0;
    Attributes attrs;
    // A diagonal block of a dense dataset read as a Hessian of its own
    // (list_parameter_blocks): rows and columns [offset, offset + n) of the
    // of_n×of_n dataset `dataset`; this info's `dataset` is then the block's
    // label, "<dataset>[<parameter name>]".
    struct Window {
        std::string dataset;
        std::size_t offset = 0;
        std::size_t of_n = 0;
    };
    std::optional<Window> window;
    // Files other than `file` its values are read from (an external link's
    // target, external raw-data files, a virtual dataset's sources): -o must
    // not replace them either.
    std::vector<std::string> reads_also;
    // Attributes of the dataset (a structure: of its parts too) the listing
    // could not read.
    std::vector<UnreadAttribute> unread_attributes;
    // The object on disk, "device:inode:size:mtime:address" ("" when unknown): one
    // dataset or structure named by two SOURCEs (a.h5 and a.h5:/H, a soft
    // link, a symlinked file) is one Hessian.
    std::string identity;
    std::string source() const { return file + ":" + dataset; }
};

// Whether values are weighed as float32 data (Float32Evidence): float64
// values as such, not ones whose stored_eps is already coarser (a virtual
// dataset's float32 sources) or that a lossy filter rounded.
inline bool may_hold_float32_data(const std::string& stored_type, double stored_eps) {
    return stored_type == "float64" && stored_eps == 0x1p-52;
}
inline bool may_hold_float32_data(const HessianInfo& info) {
    return may_hold_float32_data(info.stored_type, info.stored_eps) && info.quantum == 0;
}
// Float32 data saved as float64: measured at float32's rounding (a
// structure whose parts include a coarser type keeps that type's).
inline void mark_float32_values(HessianInfo& info) {
    info.float32_values = true;
    info.stored_eps = std::max(info.stored_eps, 0x1p-23);
}
// Whether a float64 array of a structure's part holds float32 data.
template <class Values>
bool float32_data(const Values& v, const std::string& stored_type, double stored_eps) {
    if (!may_hold_float32_data(stored_type, stored_eps)) return false;
    Float32Evidence e;
    for (Eigen::Index i = 0; i < v.size() && e.too_precise == 0; ++i) e.add(v.data()[i]);
    return e.holds();
}

struct ReadOptions;  // io/reader.hpp

// A dense Hessian whose invariants hold by construction: its matrix (n×n, in
// the precision it was stored in: float32 data stays float32, products
// accumulate in double but for a bounded correction term, solve/single.hpp;
// float32 data that was not symmetric is held as its exact symmetric part in
// float64) is finite and symmetric, and its norms are measured.
// The only ways in are validated() (the readers and make_hessian use it) and
// an empty default. Solvers reach the matrix through HessianOperator
// (solve/operator.hpp) or take a float64 copy; the dense solver takes the
// matrix itself (release_f64).
//
// The matrix is held in memory, or mapped from its file (a contiguous
// dataset read by analyze: io/mapped_values.hpp). Mapped values are the
// file's until another process truncates or writes it; check_unchanged()
// says whether that happened, and an answer computed from them counts only
// after it passed.
//
// A structured Hessian (blocks, factor, Kronecker, diagonal) never becomes
// one of these: its parts are read and solved as a StructurePart
// (io/structure.hpp, solve/structured.hpp).
class Hessian {
public:
    enum class Storage { none, float32, float64 };
    HessianInfo info;

    Hessian() = default;
    Hessian(const Hessian&) = default;
    Hessian& operator=(const Hessian&) = default;
    Hessian(Hessian&& other) noexcept;  // leaves `other` empty
    Hessian& operator=(Hessian&& other) noexcept;
    // Checks m (every entry finite, 64-bit integers exact in float64, the
    // relative asymmetry within options.max_asymmetry), symmetrizes it, and
    // measures ‖H − Hᵀ‖_F / ‖H‖_F and ‖H‖_F. m holds the file's rows as
    // columns. Throws InputError naming info's source.
    static Hessian validated(HessianInfo info, Eigen::MatrixXf m, const ReadOptions& options);
    static Hessian validated(HessianInfo info, Eigen::MatrixXd m, const ReadOptions& options);
    // The same for n×n values of float32 (f32) or float64 mapped from a file.
    static Hessian validated(HessianInfo info, std::shared_ptr<detail::MappedValues> values, bool f32,
                             const ReadOptions& options);

    Storage storage() const { return storage_; }
    bool is_f32() const { return storage() == Storage::float32; }
    bool empty() const { return storage() == Storage::none; }
    Eigen::Index n() const { return n_; }
    // The matrix in its stored precision; NumericError when it is stored in the other.
    Eigen::Map<const Eigen::MatrixXf> f32() const;
    Eigen::Map<const Eigen::MatrixXd> f64() const;
    // A float64 copy.
    Eigen::MatrixXd to_f64() const;
    // The matrix as float64, leaving this Hessian empty (for a solver that
    // overwrites its input). Mapped values are copied, and checked as
    // check_unchanged() checks them once copied.
    Eigen::MatrixXd release_f64();
    // Mapped values: throws InputError (io/reader.hpp, file_changed) when
    // their file was truncated or written since they were mapped, so that
    // an answer computed from them may not be the file's. Nothing for values
    // held in memory.
    void check_unchanged() const;
    // How the file of mapped values changed ("it was truncated", "it was
    // modified", ...), also once release_f64 found it changed; "" when it
    // did not, and for values held in memory.
    std::string changes() const;
    bool mapped() const { return mapped_ != nullptr; }

    double asymmetry() const { return norms_.asymmetry; }            // ‖H − Hᵀ‖_F / ‖H‖_F before symmetrizing
    double asymmetry_norm() const { return norms_.asymmetry_norm; }  // ‖H − Hᵀ‖_F before symmetrizing
    double frobenius() const { return norms_.frobenius; }            // ‖H‖_F after symmetrizing

    struct Norms {
        double asymmetry = 0, asymmetry_norm = 0, frobenius = 0;
        bool float32_values = false;  // float64 values that are all float32's rounding (Float32Evidence)
    };

private:
    Hessian(HessianInfo info, Norms norms);
    void hold(Eigen::MatrixXf m);
    void hold(Eigen::MatrixXd m);
    Storage storage_ = Storage::none;
    Eigen::Index n_ = 0;
    Eigen::MatrixXf f32_;
    Eigen::MatrixXd f64_;
    std::shared_ptr<detail::MappedValues> mapped_;
    std::string released_changed_;  // what release_f64 found
    Norms norms_;
};

// ‖H − Hᵀ‖_F / ‖H‖_F from ‖H − Hᵀ‖_F and the symmetric part's ‖(H + Hᵀ)/2‖_F:
// the two parts are orthogonal, so ‖H‖_F² = ‖sym‖_F² + ‖H − Hᵀ‖_F²/4 (a
// skew-symmetric H has relative asymmetry 2 and a zero symmetric part).
inline double relative_asymmetry(double asymmetry_norm, double symmetric_frobenius) {
    return asymmetry_norm > 0 ? asymmetry_norm / std::hypot(symmetric_frobenius, asymmetry_norm / 2) : 0.0;
}

}  // namespace basinvol
