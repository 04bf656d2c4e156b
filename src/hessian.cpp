// The Hessian's invariants: its matrix is finite, symmetric (symmetrized
// within the asymmetry limit) and its norms are measured, whatever produced
// it (an HDF5 reader, an array in memory). The value rules and their
// messages are the ones every reader shares (io/reader.hpp).
#include "huge_pages.hpp"
#include "io/mapped_values.hpp"
#include "threads.hpp"

#include <basinvol/error.hpp>
#include <basinvol/hessian.hpp>
#include <basinvol/io/reader.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <limits>
#include <iomanip>
#include <sstream>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace basinvol {
namespace {

// A large matrix's checks run as `slices` column ranges on up to as many
// threads (the reader's inflate uses every core the same way). The slices
// depend on n alone and their sums are added in slice order, so the result
// does not depend on the machine.
constexpr Eigen::Index sliced_from = 2048;
constexpr unsigned slices = 4;

template <class Body>
void for_each_slice(Body body) {
    std::atomic<unsigned> next{0};
    auto work = [&] {
        for (unsigned s = next++; s < slices; s = next++) body(s);
    };
    detail::run_on_threads(std::max(1u, std::min(slices, std::thread::hardware_concurrency())), work);
}

// The value rules: every entry finite, 64-bit integers exact in float64.
// Returns max|H| (0 for a zero matrix).
template <class Matrix>
double check_values(const Matrix& m, const HessianInfo& info) {
    const Eigen::Index n = m.rows();
    // Contiguous, vectorized passes: finiteness, then the largest magnitude.
    bool finite = true;
    double largest = 0;
    if (n < sliced_from) {
        finite = m.allFinite();
        largest = m.size() && finite ? static_cast<double>(m.cwiseAbs().maxCoeff()) : 0.0;
    } else {
        std::array<bool, slices> ok{};
        std::array<double, slices> top{};
        for_each_slice([&](unsigned s) {
            const Eigen::Index c0 = n * s / slices, c1 = n * (s + 1) / slices;
            const auto cols = m.middleCols(c0, c1 - c0);
            ok[s] = cols.allFinite();
            top[s] = ok[s] ? static_cast<double>(cols.cwiseAbs().maxCoeff()) : 0.0;
        });
        for (unsigned s = 0; s < slices; ++s) {
            finite = finite && ok[s];
            largest = std::max(largest, top[s]);
        }
    }
    if (!finite) {
        for (Eigen::Index c = 0; c < n; ++c)
            for (Eigen::Index r = 0; r < n; ++r)
                if (!std::isfinite(m(r, c)))  // the buffer holds the file's rows as columns: m(r, c) is [c, r]
                    reject_value(info, static_cast<double>(m(r, c)), static_cast<std::size_t>(c),
                                     static_cast<std::size_t>(r));
    }
    // 64-bit integers at or past 2^53 may have been rounded on conversion: refuse, never guess.
    if (info.stored_type == "int64" || info.stored_type == "uint64") {
        for (Eigen::Index c = 0; c < n; ++c)
            for (Eigen::Index r = 0; r < n; ++r)
                if (unreadable_value(info.stored_type, static_cast<double>(m(r, c))))
                    reject_value(info, static_cast<double>(m(r, c)), static_cast<std::size_t>(c),
                                 static_cast<std::size_t>(r));
    }
    return largest;
}

// Entries in units of unit_scale(max|H|) so that 1e±300 entries stay
// finite in squares, exactly (dividing where its inverse overflows: max|H|
// subnormal, under 2^-1022).
struct Unit {
    double scale, inv;
    bool divide;
    explicit Unit(double largest)
        : scale(unit_scale(largest)), inv(1 / scale), divide(!std::isfinite(1 / scale)) {}
    double operator()(double x) const { return divide ? x / scale : x * inv; }
};

constexpr Eigen::Index tile = 64;

// Sums over the tiles of the lower triangle and their mirrors
// (cache-friendly): `tiles(c_begin, c_end, sums)` adds the tiles of columns
// [c_begin, c_end) to `sums`; a large matrix's columns go in slices of equal
// triangle area (column c carries n − c entries, so slice s starts at
// n·(1 − √(1 − s/slices)), rounded to a tile), added in slice order.
template <class Sums, class Tiles>
Sums triangle_sums(Eigen::Index n, Tiles tiles) {
    Sums total{};
    if (n < sliced_from) {
        tiles(0, n, total);
        return total;
    }
    std::array<Eigen::Index, slices + 1> start{};
    for (unsigned s = 0; s <= slices; ++s) {
        const double at = static_cast<double>(n) * (1 - std::sqrt(1 - static_cast<double>(s) / slices));
        start[s] = std::min(n, static_cast<Eigen::Index>(at) / tile * tile);
    }
    start[slices] = n;
    std::array<Sums, slices> part{};
    for_each_slice([&](unsigned s) {
        Sums local{};  // accumulated apart from the neighbouring slices' slots (one cache line)
        tiles(start[s], start[s + 1], local);
        part[s] = local;
    });
    for (unsigned s = 0; s < slices; ++s) total += part[s];
    return total;
}

struct NormSums {
    double asym2 = 0, norm2 = 0;  // ‖H − Hᵀ‖_F², ‖H‖_F²
    double largest = 0;           // max|H| (one pass only)
    bool asymmetric = false;      // some entry differs from its mirror (one pass only)
    Float32Evidence f32;          // float64 values (one pass only): whether they are float32 data
    NormSums& operator+=(const NormSums& o) {
        asym2 += o.asym2;
        norm2 += o.norm2;
        largest = std::max(largest, o.largest);
        asymmetric = asymmetric || o.asymmetric;
        f32 += o.f32;
        return *this;
    }
};

// ‖H − Hᵀ‖_F² and ‖H‖_F² in units of max|H|².
template <class Matrix>
NormSums asymmetry_and_norm2(const Matrix& m, const Unit& unit) {
    using Tile = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, tile, tile>;
    auto unit_tile = [&](const auto& block) -> Tile {
        return unit.divide ? Tile(block.template cast<double>() / unit.scale)
                           : Tile(block.template cast<double>() * unit.inv);
    };
    const Eigen::Index n = m.rows();
    return triangle_sums<NormSums>(n, [&](Eigen::Index c_begin, Eigen::Index c_end, NormSums& sum) {
        for (Eigen::Index c0 = c_begin; c0 < c_end; c0 += tile)
            for (Eigen::Index r0 = c0; r0 < n; r0 += tile) {
                const Eigen::Index w = std::min(tile, n - c0), ht = std::min(tile, n - r0);
                if (r0 == c0) {  // a diagonal tile: its lower triangle against its upper
                    for (Eigen::Index c = c0; c < c0 + w; ++c)
                        for (Eigen::Index r = c; r < r0 + ht; ++r) {
                            const double a = unit(static_cast<double>(m(r, c))), b = unit(static_cast<double>(m(c, r)));
                            if (r == c) {
                                sum.norm2 += a * a;
                            } else {
                                sum.asym2 += 2 * (a - b) * (a - b);
                                sum.norm2 += a * a + b * b;
                            }
                        }
                    continue;
                }
                const Tile lower = unit_tile(m.block(r0, c0, ht, w));
                const Tile upper = unit_tile(m.block(c0, r0, w, ht).transpose());
                sum.asym2 += 2 * (lower - upper).squaredNorm();
                sum.norm2 += lower.squaredNorm() + upper.squaredNorm();
            }
    });
}

// One pass for what check_values and asymmetry_and_norm2 find in two, in
// absolute units. For float32 storage always: a float's square (≤ 1.2e77;
// when not 0, ≥ (2⁻¹⁴⁹)² ≈ 1.96e-90) and any sum of n² of them stay normal
// and finite in double, so no scaling is needed. Every entry finite ⇔
// norm2 finite (an infinity or NaN reaches the sum; finite squares cannot
// overflow it); `largest` is meaningful only then. For float64, the sums
// hold only while max|H| lies in [1e-100, 1e100] (squares of 1e100 summed
// over n² < 2^62 entries stay under 1e217; squares that underflow, of
// entries under 1e-154, are under 1e-108 of max|H|²): outside it, or with a
// non-finite sum, the caller takes the two scaled passes. So it does for an
// asymmetry whose sum is under 2^-900, where differences under 1e-154 may
// have underflowed in their squares (their sum is under 2^-960): entries of
// 1e-163 whose only asymmetry that is would read as symmetric. Each entry is
// read once: the upper tile is transposed into a buffer, and the sums run
// down contiguous columns widened to double. Float64 values are also
// weighed as float32 data (Float32Evidence), until one is finer than that.
template <class Matrix>
NormSums one_pass_norms(const Matrix& m) {
    using Scalar = typename Matrix::Scalar;
    const Eigen::Index n = m.rows();
    return triangle_sums<NormSums>(n, [&](Eigen::Index c_begin, Eigen::Index c_end, NormSums& sum) {
        Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, 0, tile, tile> upper;
        Eigen::Matrix<double, Eigen::Dynamic, 1, 0, tile, 1> x, y;
        Scalar largest = 0;
        for (Eigen::Index c0 = c_begin; c0 < c_end; c0 += tile)
            for (Eigen::Index r0 = c0; r0 < n; r0 += tile) {
                const Eigen::Index w = std::min(tile, n - c0), ht = std::min(tile, n - r0);
                const auto lower = m.block(r0, c0, ht, w);
                upper = m.block(c0, r0, w, ht).transpose();
                largest = std::max({largest, lower.cwiseAbs().maxCoeff(), upper.cwiseAbs().maxCoeff()});
                for (Eigen::Index j = 0; j < w; ++j) {
                    // A diagonal tile pairs the entries below its diagonal with
                    // their mirrors; the diagonal counts once.
                    const Eigen::Index skip = r0 == c0 ? j + 1 : 0;
                    x = lower.col(j).tail(ht - skip).template cast<double>();
                    y = upper.col(j).tail(ht - skip).template cast<double>();
                    sum.asym2 += 2 * (x - y).squaredNorm();
                    sum.norm2 += x.squaredNorm() + y.squaredNorm();
                    sum.asymmetric = sum.asymmetric || (x.array() != y.array()).any();
                    if (r0 == c0) sum.norm2 += static_cast<double>(lower(j, j)) * lower(j, j);
                    if constexpr (std::is_same_v<Scalar, double>) {
                        if (sum.f32.too_precise == 0) {
                            for (Eigen::Index k = 0; k < x.size(); ++k) {
                                sum.f32.add(x[k]);
                                sum.f32.add(y[k]);
                            }
                            if (r0 == c0) sum.f32.add(lower(j, j));
                        }
                    }
                }
            }
        sum.largest = std::max(sum.largest, static_cast<double>(largest));
    });
}

// out ← (m + mᵀ)/2 (out may be m itself; a float m into a double out is
// exact); returns its ‖·‖_F² in units of max|H|².
template <class Matrix, class Out>
double symmetrize(const Matrix& m, Out& out, const Unit& unit) {
    using S = typename Out::Scalar;
    const Eigen::Index n = m.rows();
    double sym2 = 0;
    for (Eigen::Index c0 = 0; c0 < n; c0 += tile)
        for (Eigen::Index r0 = c0; r0 < n; r0 += tile) {
            const Eigen::Index c1 = std::min(n, c0 + tile), r1 = std::min(n, r0 + tile);
            for (Eigen::Index c = c0; c < c1; ++c)
                for (Eigen::Index r = std::max(r0, c); r < r1; ++r) {
                    const S v = r == c ? static_cast<S>(m(r, c))
                                       : static_cast<S>(symmetric_mean(static_cast<double>(m(r, c)), static_cast<double>(m(c, r))));
                    out(r, c) = v;
                    out(c, r) = v;
                    const double vs = unit(static_cast<double>(v));
                    sym2 += (r == c ? 1 : 2) * vs * vs;
                }
        }
    return sym2;
}

// Checks, symmetrizes and measures m: its asymmetry (relative and absolute)
// and ‖H‖_F after symmetrizing; `before_writing` runs before m is written.
// A float matrix that is not symmetric is symmetrized into `widened` (and m
// freed): (a + b)/2 of two floats is exact in double, where rounding it back
// to float moves an entry by up to half a float ulp, which moves eigenvalues
// far past the error bars the rows report (a float32 Hessian from autograd
// is asymmetric at rounding level). Its working set, float32 and float64 side
// by side while widening, is what working_set_bytes counts for float32.
template <class Matrix, class BeforeWriting>
Hessian::Norms check_and_symmetrize(Matrix& m, const HessianInfo& info, const ReadOptions& opt,
                                    Eigen::MatrixXd& widened, BeforeWriting before_writing) {
    constexpr bool is_float = std::is_same_v<typename Matrix::Scalar, float>;
    const auto symmetrized = [&](const Unit& unit) {
        if constexpr (is_float) {
            widened.resize(m.rows(), m.cols());
            detail::advise_huge_pages(widened);
            const double sym2 = symmetrize(m, widened, unit);
            if constexpr (std::is_same_v<Matrix, Eigen::MatrixXf>) m.resize(0, 0);
            return sym2;
        } else {
            before_writing();
            return symmetrize(m, m, unit);
        }
    };
    // Values stored as floats take one pass (one_pass_norms), float64 ones
    // too while max|H| is in its range; integers held in floats, and 64-bit
    // integers, keep check_values, whose rules apply to them.
    const bool one_pass = is_float ? held_as_float32(info.stored_type)
                                   : info.stored_type != "int64" && info.stored_type != "uint64";
    if (one_pass) {
        const NormSums f = one_pass_norms(m);
        const bool in_range = is_float ||
                              ((f.largest == 0 || (f.largest >= 1e-100 && f.largest <= 1e100)) &&
                               !(f.asymmetric && f.asym2 < 0x1p-900));
        if (std::isfinite(f.norm2) && in_range) {
            if (f.largest == 0) return {};
            const double asymmetry = std::sqrt(f.asym2 / f.norm2);
            check_symmetry(info, asymmetry, opt);
            const bool float32_held = !is_float && opt.detect_float32_data && may_hold_float32_data(info) && f.f32.holds();
            if (f.asym2 == 0) return {asymmetry, 0.0, std::sqrt(f.norm2), float32_held};
            const Unit unit(f.largest);
            return {asymmetry, std::sqrt(f.asym2), unit.scale * std::sqrt(symmetrized(unit)), float32_held};
        }
        // A non-finite entry (check_values names the first), or float64
        // values outside the range: the scaled passes.
    }
    const double scale = check_values(m, info);
    if (scale == 0) return {};
    const Unit unit(scale);
    const NormSums sums = asymmetry_and_norm2(m, unit);
    const double asymmetry = std::sqrt(sums.asym2 / sums.norm2);
    check_symmetry(info, asymmetry, opt);
    return {asymmetry, unit.scale * std::sqrt(sums.asym2),
            unit.scale * std::sqrt(sums.asym2 == 0 ? sums.norm2 : symmetrized(unit))};
}

template <class Matrix>
Hessian from_memory(Matrix m, const std::string& label, const ReadOptions& opt) {
    if (m.rows() != m.cols()) {
        std::ostringstream s;
        s << label << ": matrix is not square: shape " << m.rows() << "x" << m.cols();
        throw InputError(s.str());
    }
    if (m.rows() == 0) throw InputError(label + ": matrix is empty: shape 0x0");
    const bool f32 = std::is_same_v<typename Matrix::Scalar, float>;
    HessianInfo info;
    info.file = label;
    info.dataset = "/";
    info.n = static_cast<std::size_t>(m.rows());
    info.stored_type = f32 ? "float32" : "float64";
    info.stored_eps = f32 ? std::ldexp(1.0, -23) : std::ldexp(1.0, -52);
    return Hessian::validated(std::move(info), std::move(m), opt);
}

}  // namespace

Hessian::Hessian(HessianInfo i, Norms norms) : info(std::move(i)), norms_(norms) {
    if (norms.float32_values) mark_float32_values(info);
}

Hessian::Hessian(Hessian&& other) noexcept { *this = std::move(other); }

Hessian& Hessian::operator=(Hessian&& other) noexcept {
    info = std::move(other.info);
    storage_ = std::exchange(other.storage_, Storage::none);
    n_ = std::exchange(other.n_, 0);
    f32_ = std::move(other.f32_);
    f64_ = std::move(other.f64_);
    mapped_ = std::move(other.mapped_);
    released_changed_ = std::move(other.released_changed_);
    norms_ = other.norms_;
    return *this;
}

void Hessian::hold(Eigen::MatrixXf m) {
    n_ = m.rows();
    storage_ = m.size() ? Storage::float32 : Storage::none;
    f32_ = std::move(m);
}

void Hessian::hold(Eigen::MatrixXd m) {
    n_ = m.rows();
    storage_ = m.size() ? Storage::float64 : Storage::none;
    f64_ = std::move(m);
}

Hessian Hessian::validated(HessianInfo info, Eigen::MatrixXf m, const ReadOptions& options) {
    Eigen::MatrixXd widened;
    Hessian h(info, check_and_symmetrize(m, info, options, widened, [] {}));
    if (widened.size())
        h.hold(std::move(widened));
    else
        h.hold(std::move(m));
    return h;
}

Hessian Hessian::validated(HessianInfo info, Eigen::MatrixXd m, const ReadOptions& options) {
    Eigen::MatrixXd unused;
    Hessian h(info, check_and_symmetrize(m, info, options, unused, [] {}));
    h.hold(std::move(m));
    return h;
}

Hessian Hessian::validated(HessianInfo info, std::shared_ptr<detail::MappedValues> values, bool f32,
                           const ReadOptions& options) {
    const auto n = static_cast<Eigen::Index>(info.n);
    const std::size_t bytes = info.n * info.n * (f32 ? sizeof(float) : sizeof(double));
    if (!values || values->bytes() != bytes)
        throw NumericError(info.source() + ": mapped values of " + std::to_string(values ? values->bytes() : 0) +
                           " bytes for a matrix of " + std::to_string(bytes));
    Eigen::MatrixXd widened;
    auto writable = [&] {
        if (!values->make_writable())
            throw NumericError(info.source() + ": cannot symmetrize the mapped values (mprotect refused)");
    };
    // A fault or a write while the values are checked is the file's change,
    // not what the changed values break.
    auto checked = [&](auto body) {
        try {
            return body();
        } catch (const InputError&) {
            if (const std::string how = values->changed(); !how.empty()) throw file_changed(info, how);
            throw;
        }
    };
    Hessian::Norms norms;
    if (f32) {
        Eigen::Map<Eigen::MatrixXf> m(static_cast<float*>(values->data()), n, n);
        norms = checked([&] { return check_and_symmetrize(m, info, options, widened, writable); });
    } else {
        Eigen::Map<Eigen::MatrixXd> m(static_cast<double*>(values->data()), n, n);
        norms = checked([&] { return check_and_symmetrize(m, info, options, widened, writable); });
    }
    Hessian h(info, norms);
    if (widened.size()) {
        // Float32 values widened to their exact symmetric part: the mapping
        // is no longer needed, once it is known they were the file's.
        if (const std::string how = values->changed(); !how.empty()) throw file_changed(h.info, how);
        h.hold(std::move(widened));
        return h;
    }
    h.n_ = n;
    h.storage_ = f32 ? Storage::float32 : Storage::float64;
    h.mapped_ = std::move(values);
    return h;
}

Eigen::Map<const Eigen::MatrixXf> Hessian::f32() const {
    if (!is_f32()) throw NumericError(info.source() + ": the Hessian is not stored as float32");
    const float* data = mapped_ ? static_cast<const float*>(mapped_->data()) : f32_.data();
    return {data, n_, n_};
}

Eigen::Map<const Eigen::MatrixXd> Hessian::f64() const {
    if (is_f32() || empty()) throw NumericError(info.source() + ": the Hessian is not stored as float64");
    const double* data = mapped_ ? static_cast<const double*>(mapped_->data()) : f64_.data();
    return {data, n_, n_};
}

void Hessian::check_unchanged() const {
    if (const std::string how = changes(); !how.empty()) throw file_changed(info, how);
}

std::string Hessian::changes() const { return mapped_ ? mapped_->changed() : released_changed_; }

namespace {

// A float64 copy of a matrix, in memory that asks for huge pages.
template <class M>
Eigen::MatrixXd copy_f64(const M& m) {
    Eigen::MatrixXd out(m.rows(), m.cols());
    detail::advise_huge_pages(out);
    out = m.template cast<double>();
    return out;
}

}  // namespace

Eigen::MatrixXd Hessian::to_f64() const {
    if (empty()) return {};
    return is_f32() ? copy_f64(f32()) : copy_f64(f64());
}

Eigen::MatrixXd Hessian::release_f64() {
    Eigen::MatrixXd out;
    if (mapped_) {
        // About 4 MB of columns at a time, each let go of once copied: the
        // peak stays near one copy, as when the values were read.
        out.resize(n_, n_);
        detail::advise_huge_pages(out);
        const std::size_t elem = is_f32() ? sizeof(float) : sizeof(double);
        const Eigen::Index step = std::max<Eigen::Index>(1, (Eigen::Index(4) << 20) / (n_ * static_cast<Eigen::Index>(elem)));
        for (Eigen::Index c = 0; c < n_; c += step) {
            const Eigen::Index k = std::min(step, n_ - c);
            if (is_f32()) out.middleCols(c, k) = f32().middleCols(c, k).cast<double>();
            else out.middleCols(c, k) = f64().middleCols(c, k);
            if (mapped_.use_count() == 1)  // no copy of this Hessian reads them still
                mapped_->let_go(static_cast<const char*>(mapped_->data()) + static_cast<std::size_t>(c * n_) * elem,
                                static_cast<std::size_t>(k * n_) * elem);
        }
    } else {
        out = is_f32() ? copy_f64(f32_) : std::move(f64_);
    }
    const std::string how = changes();
    released_changed_ = how;
    f32_.resize(0, 0);
    f64_.resize(0, 0);
    mapped_.reset();
    n_ = 0;
    storage_ = Storage::none;
    if (!how.empty()) throw file_changed(info, how);
    return out;
}

double exact_limit(const std::string& stored_type) {
    return stored_type == "int64" || stored_type == "uint64" ? std::ldexp(1.0, 53)
                                                               : std::numeric_limits<double>::infinity();
}

bool unreadable_value(const std::string& stored_type, double value) {
    return !(std::abs(value) < exact_limit(stored_type));
}

void reject_value(const std::string& where, const std::string& stored_type, double value, const std::string& at) {
    std::ostringstream s;
    if (std::isfinite(value))
        // `value` is the stored one rounded to float64 (2^53 + 1 reads as
        // 2^53): near it, not it.
        s << std::fixed << std::setprecision(0) << stored_type << " value of about " << value << " at " << at
          << " is at or beyond 2^53 and cannot be read exactly as float64";
    else
        s << "non-finite value " << value << " at " << at;
    throw InputError(where + ": " + s.str());
}

void reject_norm_overflow(const std::string& source, const char* norm) {
    throw NumericError(source + ": " + norm + " overflows float64, which the solvers' scaling and error bounds need; "
                                              "rescale the Hessian");
}

void reject_value(const HessianInfo& info, double value, std::size_t row, std::size_t col) {
    reject_value(info.source(), info.stored_type, value, "[" + std::to_string(row) + ", " + std::to_string(col) + "]");
}

void check_symmetry(const HessianInfo& info, double relative_asymmetry, const ReadOptions& opt) {
    if (!(relative_asymmetry > opt.max_asymmetry)) return;
    const auto [seen, limit] = texts_apart(relative_asymmetry, opt.max_asymmetry);
    // Chunks never written (read as the fill value) are the likelier cause.
    const std::string unwritten =
        info.unwritten_chunks ? "; " + std::to_string(info.unwritten_chunks) +
                                    " of its chunks were never written (read as the fill value): a writer that did "
                                    "not finish?"
                              : "";
    throw InputError(info.source() + ": matrix is not symmetric: ‖H − Hᵀ‖_F / ‖H‖_F = " + seen + " exceeds " + limit +
                     " (option max_asymmetry)" + unwritten);
}

std::pair<std::string, std::string> texts_apart(double a, double b) {
    auto text = [](double v, int digits) {
        std::ostringstream t;
        t.precision(digits);
        t << v;
        return t.str();
    };
    int digits = 3;
    while (digits < 17 && text(a, digits) == text(b, digits)) ++digits;
    return {text(a, digits), text(b, digits)};
}

Hessian make_hessian(Eigen::MatrixXd m, const std::string& label, const ReadOptions& opt) {
    return from_memory(std::move(m), label, opt);
}

Hessian make_hessian(Eigen::MatrixXf m, const std::string& label, const ReadOptions& opt) {
    return from_memory(std::move(m), label, opt);
}

}  // namespace basinvol
