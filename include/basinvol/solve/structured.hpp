#pragma once
// Spectra of structured Hessians (docs/structured.md), computed from the
// structure without forming the n×n matrix:
//   blocks    the union of the members' spectra;
//   factor    H = s·GᵀG: the eigenvalues of the smaller Gram matrix s·GGᵀ
//             (m×m) or s·GᵀG (n×n), the other |n − m| exactly zero;
//   kron      H = s·(A ⊗ B): s·α_i·β_j over the eigenvalues of A and B,
//             kept as α and β: the a·b products are never stored;
//   diagonal  the values themselves.
// Dense members and Kronecker factors go through LAPACK like a dense Hessian.
#include <basinvol/hessian.hpp>
#include <basinvol/io/reader.hpp>
#include <basinvol/io/structure.hpp>
#include <basinvol/measure/cut.hpp>
#include <basinvol/measure/volume.hpp>
#include <basinvol/solve/spectrum.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace basinvol {

// One part's eigenvalues: a list, or a Kronecker part's products
// fl(fl(s·α_i)·β_j) (the order the listed products were rounded in), held
// as α and β. When s·α_i or β_j would leave double's normal range while the
// products need not (s = 1e-300, α = 1e-20, β = 1e300), s is folded into α
// and powers of two moved from one factor to the other: the products are
// the same roundings of the same numbers, and the scale is then 1.
struct SpectrumPart {
    bool kron = false;
    std::vector<double> values;       // listed
    std::vector<double> alpha, beta;  // kron
    double scale = 1;                 // kron
    // What its own noise floor is made of, as if it were a Hessian alone:
    std::size_t n = 0;       // its parameters (its values and exact zeros)
    // The ε its values were stored to: its own type's (a Kronecker part's
    // coarser factor's), float32's for float32 data held in float64.
    double eps = 0;
    double value_error = 0;  // each value's computed error bound (StructuredSpectrum::value_error, this part's)
    double noise = 0;        // its own asymmetry ‖·−·ᵀ‖_F and subnormal rounding (the larger)
    std::size_t size() const { return kron ? alpha.size() * beta.size() : values.size(); }
};

// The eigenvalues of parts [begin, end), visited a span at a time.
class PartValues final : public Eigenvalues {
public:
    PartValues(const SpectrumPart* begin, const SpectrumPart* end) : begin_(begin), end_(end) {}
    std::size_t size() const override;
    // A listed part is one span; a Kronecker part one span per α_i, its products formed in a buffer.
    void for_each_span(const std::function<void(const double*, std::size_t)>& visit) const override;
    // A Kronecker part in O(a·log b): each α_i keeps a prefix of β sorted by
    // magnitude, whose sums are prefix sums (the error sum bounded).
    KeptSums kept(double tol, double error) const override;
    // The same magnitudes, sorted descending, as the cut reads them; a
    // Kronecker part costs O(a + b) memory, not O(a·b).
    std::shared_ptr<const SortedMagnitudes> magnitudes() const;

private:
    const SpectrumPart* begin_;
    const SpectrumPart* end_;
};

// Where one top-level block's eigenvalues sit among the spectrum's parts.
struct BlockSpan {
    std::string name;                // the member's name (its last path component)
    std::size_t n = 0;               // its parameters
    std::size_t begin = 0, end = 0;  // parts[begin, end); its n − (their size) others are exactly 0
};

struct StructuredSpectrum {
    Spectrum spectrum;               // n, method, stats; its values are in `parts`, not listed
    std::vector<SpectrumPart> parts; // in block order; the n − k values not in them are exactly 0
    std::vector<BlockSpan> blocks;   // one per top-level block (one in all for other structures)
    PartValues values() const { return {parts.data(), parts.data() + parts.size()}; }
    PartValues values(const BlockSpan& b) const { return {parts.data() + b.begin, parts.data() + b.end}; }
    double frobenius = 0;            // ‖H‖_F, from the eigenvalues
    double asymmetry = 0;            // ‖H − Hᵀ‖_F of the stored parts (absolute), before symmetrizing
    // ‖(H + Hᵀ)/2‖_F of the dense twin: frobenius, and the Kronecker terms
    // s·A_k ⊗ B_k of skew factor parts, symmetric yet not in the values.
    double symmetric_frobenius = 0;
    double value_error = 0;          // each eigenvalue's computed error bound (Gram rounding, LAPACK)
    // How far H can lie from what its parts' stored values stood for where
    // they are subnormal in their type, in H's own units (‖ΔH‖₂): n·step/2
    // for dense and diagonal parts, as for their dense twin; through G's or
    // A's and B's rounding for a factor or a Kronecker part, whose scale and
    // products are formed in double; each part in its own stored type. The
    // floor's subnormal term.
    double stored_underflow = 0;
    bool side_by_side = false;       // square parts were solved two at a time
    // A float64 part holds float32 data (Float32Evidence): the whole is
    // measured at float32's ε at least (mark_float32_values).
    bool float32_values = false;
};

// How a factor's Gram matrix is formed: in this process (no builder), or by
// a caller that spreads G over processes (basinvol-mpi: each rank reads a
// slab of G's longer dimension, the Gram is summed across ranks).
struct Gram {
    Eigen::MatrixXd K;  // the Gram matrix of 2^-shift·G
    int shift = 0;
    bool float32_values = false;  // a float64 G holding float32 data (Float32Evidence)
};

// The power of two G is divided by before its Gram matrix is formed: 0
// while its largest |g| lies in [2^-400, 2^400], where no sum of products
// overflows and what underflows lies far under the Gram's rounding bound;
// else the exponent that brings it into [1/2, 1). (G = 1e-162·G₀ has a Gram
// of subnormals, G = 1e160·G₀ one of infinities, where s·GᵀG, with s =
// 1e308 or 1e-300, is an ordinary matrix.)
int gram_shift(double largest);

struct GramBuilder {
    virtual ~GramBuilder() = default;
    // K in double, k×k with k = min(m, n), its upper triangle filled: s·GGᵀ's
    // Gram GGᵀ when m ≤ n, else GᵀG, of G scaled by gram_shift of its largest
    // |g|. Throws InputError (values, memory) naming FILE:/path/G as
    // read_factor does.
    virtual Gram gram(const HessianInfo& info, const StructurePart& part, const ReadOptions& options) const = 0;
};

// What a row may spend on solving a structure's square parts two at a time:
// `allowed` only when it is the process's only BLAS user (OpenBLAS's thread
// count is changed while they run), and within `memory` bytes in all (its
// working set, info.working_bytes, and a second square part).
struct SideBySide {
    bool allowed = false;
    std::size_t memory = 0;
};

// Reads a listed structured Hessian one part at a time and computes its
// spectrum (factors' Grams through `gram` when given). Square parts (dense
// members, Kronecker factors) are solved after the walk, two at a time when
// `side_by_side` allows and the conditions of docs/structured.md hold.
// Throws InputError (layout, values, memory budget) or NumericError; when
// several parts are broken, the first in the structure's order.
StructuredSpectrum structured_spectrum(const HessianInfo& info, const ReadOptions& options,
                                       SideBySide side_by_side = {}, const GramBuilder* gram = nullptr);

}  // namespace basinvol
