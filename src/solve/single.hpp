#pragma once
// Where single precision is enough: the Cholesky solvers' correction term.
//
// With H ≈ LLᵀ and L = QR, the Rayleigh–Ritz matrix is QᵀHQ = RRᵀ + QᵀEQ,
// E = H − LLᵀ the part of H the factor missed. ‖E‖_F is the certificate ρ
// and sits at the rounding of the stored type, so QᵀEQ moves each Ritz value
// by at most ρ: it needs a few digits, not sixteen. Formed in single
// precision (sgemm does twice the flops per cycle of dgemm), its error is
// bounded below and added to the values' error (under Weyl's 2ρ a small
// share; under the quadratic bound of pair_ritz_values often the most).
//
// Rounding E and Q to float (relative u = 2⁻²⁴ each) and summing k products
// in float (γ_k, Higham, "Accuracy and Stability", §3.5):
//   |fl(ẼQ̃) − EQ| ≤ (γ_k·(1 + u)² + 2u + u²)·|E||Q|,
// and ‖|E||Q|‖_F ≤ ‖E‖_F·‖Q‖_F. Float's range is narrow (about 1e±38), so
// the operands are first scaled by a power of two (exact) to norms of at
// most about 1; what still falls under float's normal range rounds with an
// absolute error instead, at most 2⁻¹²⁶ each (a bound that holds with
// subnormals flushed to zero too), at most k·(|e| + |q| + 2) of them per
// entry. Q is assumed orthonormal to rounding, as the Ritz pairing assumes.
#include <cmath>
#include <limits>

namespace basinvol::detail {

// The power of two e with norm·2⁻ᵉ in [0.5, 1) (0 for a zero norm): scale
// by 2⁻ᵉ to float, by 2ᵉ back (with ScaleBy: 2^±e alone may pass double's
// range).
inline int single_exponent(double norm) {
    int e = 0;
    std::frexp(norm, &e);
    return e;
}

// x·2ᵉ as two multiplications by powers of two that stay inside double's
// range for |e| ≤ 2000 (exact but where the result leaves it); unlike
// std::ldexp on each value, it vectorizes.
class ScaleBy {
public:
    explicit ScaleBy(int e) : a_(std::ldexp(1.0, clamp(e) / 2)), b_(std::ldexp(1.0, clamp(e) - clamp(e) / 2)) {}
    double operator()(double x) const { return x * a_ * b_; }
    // The same on an Eigen array expression, in the same order (vectorized);
    // the result refers to x, so use it within the statement that makes it.
    template <class Array>
    auto array(const Array& x) const -> decltype(x * 1.0 * 1.0) {
        return x * a_ * b_;
    }
    static int clamp(int e) { return e < -2000 ? -2000 : e > 2000 ? 2000 : e; }

private:
    double a_, b_;
};

// A bound on ‖fl(E·Q) − E·Q‖_F for a product of `outputs` entries, each a
// k-term sum, formed in float from double E and Q scaled to Frobenius norms
// norm_e and norm_q of at most about 1 (the bound is in those units). The factor
// 1 + 1e-6 covers the double rounding of the norms and of this formula.
inline double single_product_error(double k, double outputs, double norm_e, double norm_q) {
    const double u = std::numeric_limits<float>::epsilon() / 2;
    if (!(k * u < 0.5)) return std::numeric_limits<double>::infinity();
    const double g = k * u / (1 - k * u);
    const double relative = (g * (1 + u) * (1 + u) + 2 * u + u * u) * norm_e * norm_q;
    const double underflow = k * std::sqrt(outputs) * std::ldexp(1.0, -126) * (norm_e + norm_q + 2);
    return (relative + underflow) * (1 + 1e-6);
}

// V += Q₂ᵀSQ₂ in single precision, in the factored Cholesky's float64 copy A
// (n×n, column-major; see factored_cholesky in cholesky.cpp) with nothing
// more than O(n) beside it. Q₂ is A(r:, 0:r), S the lower triangle of
// A(r:, r:) with Frobenius norm norm_s, V = A(0:r, 1:r+1) whose upper
// triangle and diagonal get the product (what lands under V's diagonal is
// A's spent L₁ᵀL₁; nothing else of A is touched but Q₂ and S).
// - Each column of Q₂, and of S's lower triangle from its diagonal down, is
//   rounded to float over its own storage, which makes them column-major
//   float matrices of leading dimensions 2n and 2n + 1; Q₂ and S are spent.
//   S is scaled by a power of two to norm ~1 for float's range.
// - Then T = S·Q₂ and Q₂ᵀT, a block of columns at a time.
// Returns a bound on the Frobenius norm of the error of the symmetric matrix
// V's upper triangle then holds: ‖T̂ − SQ₂‖ ≤ δ₁ and ‖fl(Q₂ᵀT̂) − Q₂ᵀT̂‖ ≤ δ₂
// (single_product_error, with m-term sums), Q₂ᵀ(T̂ − SQ₂) adds at most
// ‖Q₂‖₂·δ₁ ≤ (1 + 1e-6)·δ₁ with Q orthonormal to rounding, and mirroring an
// upper triangle at most a factor √2.
double add_correction(double* A, int n, int r, double norm_s);

// The columns of Q₂ per block of add_correction: T and F, m×384 and r×384
// floats, stay inside the O(n) share of the working set, and ssymm packs S
// once per block (at 96, its packing took nearly as long as the products at
// r = 136, n = 1000).
constexpr int correction_width = 384;

}  // namespace basinvol::detail
