#pragma once
// Where single precision is enough: the Cholesky solvers' correction term.
//
// With H ≈ LLᵀ and L = QR, the Rayleigh–Ritz matrix is QᵀHQ = RRᵀ + QᵀEQ,
// E = H − LLᵀ the part of H the factor missed. ‖E‖_F is the certificate ρ
// and sits at the rounding of the stored type, so QᵀEQ moves each Ritz value
// by at most ρ: it needs a few digits, not sixteen. Formed in single
// precision (sgemm does twice the flops per cycle of dgemm), its error is
// bounded below and added to the values' error, where it is a small share
// of the 2ρ they carry already.
//
// Rounding E and Q to float (relative u = 2⁻²⁴ each) and summing k products
// in float (γ_k, Higham, "Accuracy and Stability", §3.5):
//   |fl(ẼQ̃) − EQ| ≤ (γ_k·(1 + u)² + 2u + u²)·|E||Q|,
// and ‖|E||Q|‖_F ≤ ‖E‖_F·‖Q‖_F. Float's range is narrow (about 1e±38), so
// the operands are first scaled by a power of two (exact) to norms near 1;
// what still falls under float's normal range rounds with an absolute error
// of at most 2⁻¹⁵⁰ instead, at most k·(|e| + |q| + 2) of them per entry.
#include <cmath>
#include <limits>

namespace basinvol::detail {

// The power of two e with norm·2⁻ᵉ in [0.5, 1) (0 for a zero norm): scale
// by 2⁻ᵉ to float, by 2ᵉ back.
inline int single_exponent(double norm) {
    int e = 0;
    std::frexp(norm, &e);
    return e;
}

// A bound on ‖fl(E·Q) − E·Q‖_F for a product of `outputs` entries, each a
// k-term sum, formed in float from double E and Q scaled to Frobenius norms
// norm_e and norm_q near 1 (the bound is in those units). The factor
// 1 + 1e-6 covers the double rounding of the norms and of this formula.
inline double single_product_error(double k, double outputs, double norm_e, double norm_q) {
    const double u = std::numeric_limits<float>::epsilon() / 2;
    if (!(k * u < 0.5)) return std::numeric_limits<double>::infinity();
    const double g = k * u / (1 - k * u);
    const double relative = (g * (1 + u) * (1 + u) + 2 * u + u * u) * norm_e * norm_q;
    const double underflow = k * std::sqrt(outputs) * std::ldexp(1.0, -150) * (norm_e + norm_q + 2);
    return (relative + underflow) * (1 + 1e-6);
}

}  // namespace basinvol::detail
