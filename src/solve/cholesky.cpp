// Pivoted Cholesky with a certificate, in two forms (see spectrum.hpp):
// "columns" reads only the pivot columns and suits ranks far below n;
// "factored" runs LAPACK's blocked dpstrf on a float64 copy and suits ranks
// up to about 0.75·n, where it stays ahead of dense dsyevd.
#include "blas.hpp"
#include "detail.hpp"
#include "single.hpp"
#include "../huge_pages.hpp"

#include <basinvol/error.hpp>
#include <basinvol/solve/operator.hpp>
#include <basinvol/solve/spectrum.hpp>

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>
#include <string>

namespace basinvol {

using namespace detail;

namespace {

constexpr double eps64 = std::numeric_limits<double>::epsilon();

// The factored form gives up past this share of n pivots, where dense LAPACK
// is as fast: at n = 1000 with OpenBLAS's AVX-512 kernels, one thread, it took
// 25 ms at rank 300, 41 ms at 500, 65 ms at 700 and 90 ms at 850 against
// 76–80 ms for dsyevd (and ~95 ms for dsyevd beside a second job).
constexpr double factored_share = 0.75;

// Stop pivoting where the remaining diagonal is rounding of the stored type
// (or of double arithmetic over n terms) relative to the largest pivot.
double pivot_stop(const Hessian& h, double dmax) {
    return 4 * std::max(h.info.stored_eps, eps64 * std::sqrt(double(h.info.n))) * dmax;
}

// The factored form does not recompute H − LLᵀ in the pivot rows and columns;
// it bounds them by Cholesky's backward error, |ΔH| ≤ γ_{r+1}·|L||L|ᵀ, and the
// rounding of S by γ_{r+1}·(|H| + |L||L|ᵀ). Worth starting only when that
// allowance, ≤ γ_{n+1}·(trace H + ‖H‖_F) for a PSD H, is far under the
// smallest dtype cut √n·ε_stored·‖H‖_F: true for float32 storage, not for
// float64 (whose cut sits at the rounding of the factorization itself).
bool rounding_fits(const HessianOperator& op, const Hessian& h) {
    const double n = static_cast<double>(h.info.n);
    return gamma(n + 1) * (op.trace() + h.frobenius()) <= 1e-3 * std::sqrt(n) * h.info.stored_eps * h.frobenius();
}

// How the listed values pair with eig(H), ρ = s.rest_bound ≥ ‖H − LLᵀ‖_F.
// By Weyl, eig(H) pairs with eig(LLᵀ) = μ ∪ {0} within ρ, the n − r paired
// with zero being the unseen ones: μ itself is listed within ρ. The Ritz
// values θ = eig(QᵀHQ) lie within ‖Qᵀ(H − LLᵀ)Q‖ ≤ ρ of μ = eig(QᵀLLᵀQ), so
// each is within 2ρ of its partner, or within the quadratic bound of
// pair_ritz_values (the batch workload's rows: 1e-9 against ρ = 1e-5).
// `formed` bounds the error of how the Ritz matrix was formed beyond
// rounding (its single-precision correction), `basis` ‖QᵀQ − I‖; with
// `formed`, even n values are not exact.
void pair_values(Spectrum& s, bool ritz, const Hessian& h, double formed = 0, double basis = 0) {
    if (ritz) pair_ritz_values(s, rounding_allowance(h.info.n, h.frobenius()), formed, basis);
    else s.value_error = s.rest_bound;
    s.complete = s.values.size() == s.n && formed == 0;
    if (s.complete) s.rest_bound = s.value_error = 0;
}

// Whether listing μ = eig(LLᵀ) (within ρ of H's) instead of the Ritz values
// moves the log-volume by at most 1e-12 of its size: ½·Σ log(1 + ρ/(μᵢ − ρ))
// ≤ ½·Σ ρ/(μᵢ − ρ) against ½·Σ |log μᵢ| (a size that, like the log-volume
// itself, moves with H's units: the test is relative, as the comparison with
// dense is). Never when a value lies within 2ρ of zero or is not finite. A
// float64 Hessian whose values run down to 1e-11 of the largest fails this
// and gets its Ritz values (equal to dense's to ~1e-9, where μ was 6e-8 off).
bool settled_by_weyl(const std::vector<double>& mu, double rho) {
    double move = 0, size = 0;
    for (double m : mu) {
        if (!std::isfinite(m) || !(m > 2 * rho)) return false;
        move += rho / (m - rho);
        size += std::abs(std::log(m));
    }
    return move <= 1e-12 * std::max(2.0, size);
}

// The Ritz values eig(QᵀW + RRᵀ): W = H·Q with R empty, or W = (H − LLᵀ)·Q
// with L = QR.
std::vector<double> ritz_values(const Eigen::MatrixXd& Q, const Eigen::MatrixXd& W, const Eigen::MatrixXd& R) {
    const int n = static_cast<int>(Q.rows()), r = static_cast<int>(Q.cols());
    Eigen::MatrixXd B(r, r);
    if (R.size() > 0) B.noalias() = R * R.transpose();
    blas::gemm('T', 'N', r, r, n, 1.0, Q.data(), n, W.data(), n, R.size() > 0 ? 1.0 : 0.0, B.data(), r);
    B = (B + B.transpose()).eval() / 2;
    return symmetric_eigenvalues(B.data(), r, r, 'L');
}

std::optional<Spectrum> column_cholesky(const Hessian& h, const PartialOptions& o, const HessianOperator& op,
                                        Clock::time_point t0) {
    const auto n = static_cast<Eigen::Index>(h.info.n);
    const std::size_t max_k = max_pairs(h, o);
    Spectrum s = named(h, "cholesky");
    Eigen::VectorXd d = op.diagonal();
    const double stop = pivot_stop(h, d.maxCoeff());
    Eigen::MatrixXd L(n, std::min<Eigen::Index>(64, Eigen::Index(max_k)));
    advise_huge_pages(L);
    Eigen::VectorXd col(n);
    Eigen::Index r = 0;
    for (;;) {
        Eigen::Index p = 0;
        const double dp = d.maxCoeff(&p);
        if (!(dp > stop)) break;
        // More than max_k pivots above the stop: a PSD matrix of rank > max_k.
        if (r >= Eigen::Index(max_k)) return too_large(s, max_k, op, t0);
        if (r == L.cols()) L.conservativeResize(Eigen::NoChange, std::min<Eigen::Index>(2 * r, Eigen::Index(max_k)));
        // L(:, r) = (H(:, p) − L(:, :r)·L(p, :r)ᵀ) / √d_p
        op.column(p, col.data());
        // (OpenBLAS's dgemv, on every core: this product reads all of L once
        // per pivot, the column form's one memory-bound step.)
        if (r > 0)
            blas::gemv('N', static_cast<int>(n), static_cast<int>(r), -1.0, L.data(), static_cast<int>(n), &L(p, 0),
                       static_cast<int>(n), 1.0, col.data(), 1);
        L.col(r) = col / std::sqrt(dp);
        d -= L.col(r).cwiseAbs2();
        d(p) = 0;
        ++r;
    }
    L.conservativeResize(Eigen::NoChange, r);
    s.stats.matvecs = static_cast<std::size_t>(r);
    // L = QR. The certificate ρ ≥ ‖H − LLᵀ‖_F, and Rayleigh–Ritz on range(L).
    Eigen::MatrixXd Q(n, r);
    advise_huge_pages(Q);
    Q = L;
    Eigen::VectorXd tau;
    const Eigen::MatrixXd R = r > 0 ? householder_qr(Q, tau) : Eigen::MatrixXd();
    double formed = 0;  // the single-precision correction's error (float32)
    if (r == 0) {
        s.rest_bound = op.residual_frobenius(L, L);
    } else if (!h.is_f32()) {
        // Float64: the certificate alone first (a third of the products of the
        // fused pass). μ = eig(QᵀLLᵀQ) = eig(RRᵀ), the values of LLᵀ, are
        // within ρ = ‖H − LLᵀ‖_F of H's (Weyl), and the Ritz values within ρ
        // of μ. When ρ is under ε·√n·‖H‖_F, a quarter of the rounding
        // allowance every partial row carries (analyze.cpp: the rounding of
        // these products, which float64's cut at n·ε·‖H‖ leaves no room to
        // bound term by term), refining μ cannot gain what that allowance
        // does not already cover: μ is listed with error ρ, and H·Q is not formed.
        // The values of LLᵀ are also kept only while ρ cannot move the
        // log-volume visibly (settled_by_weyl): small values that ρ would
        // blur get their Ritz values.
        s.rest_bound = op.residual_frobenius(L, L);
        if (r < n && s.rest_bound <= eps64 * std::sqrt(static_cast<double>(n)) * h.frobenius()) {
            Eigen::MatrixXd B = R * R.transpose();
            std::vector<double> mu = symmetric_eigenvalues(B.data(), static_cast<int>(r), static_cast<int>(r), 'L');
            if (settled_by_weyl(mu, s.rest_bound)) {
                s.values = std::move(mu);
                pair_values(s, false, h);
                finish(s, op, t0);
                return s;
            }
        }
        form_q(Q, tau);
        s.values = ritz_values(Q, op.apply(Q), Eigen::MatrixXd());  // a second pass, for the Ritz values
    } else {
        // Float32: one pass for the certificate and QᵀHQ = RRᵀ + Qᵀ(H − LLᵀ)Q,
        // the correction in single precision (single.hpp).
        form_q(Q, tau);
        const HessianOperator::Residual e = op.residual_product(L, L, Q);
        s.rest_bound = e.frobenius;
        s.values = ritz_values(Q, e.EQ, R);
        formed = e.eq_error;
    }
    pair_values(s, true, h, formed);
    finish(s, op, t0);
    return s;
}

// The factored form works in one float64 copy A of H (the working set the
// dense solver needs too) and leaves h untouched:
// - dpstrf('L') puts L₁ (r×r, lower) and L₂ (m×r, m = n − r) in A's first r
//   columns; S = H₂₂ − L₂L₂ᵀ goes to the lower triangle of the trailing block;
// - the r×r Rayleigh–Ritz matrix lives in A's strict upper triangle, as the
//   upper triangle of the view V = A(0:r, 1:r+1) (lda n), which no lower
//   or diagonal element of A touches;
// - L₂, overwritten by Q₂ = L₂R⁻¹, and S end as floats (add_correction,
//   single.hpp), once the correction Q₂ᵀSQ₂ is all that is left to form.
// Gives up (too_large) past `budget` pivots.
std::optional<Spectrum> factored_cholesky(const Hessian& h, std::size_t budget, const HessianOperator& op,
                                          Clock::time_point t0) {
    Spectrum s = named(h, "cholesky");
    const int n = static_cast<int>(h.info.n);
    const double scale = h.frobenius();
    Eigen::MatrixXd a = h.to_f64();
    double* A = a.data();
    auto at = [&](int i, int j) -> double& { return A[i + static_cast<std::size_t>(j) * n]; };
    const double stop = pivot_stop(h, a.diagonal().maxCoeff());
    std::vector<int> piv(static_cast<std::size_t>(n));
    std::vector<double> work(2 * static_cast<std::size_t>(n));
    int r = 0, info = 0;
    dpstrf_("L", &n, A, &n, piv.data(), &r, &stop, work.data(), &info, 1);
    if (info < 0) throw NumericError("LAPACK dpstrf: argument " + std::to_string(-info) + " is invalid");
    work = {};
    s.stats.passes = 1;
    if (static_cast<std::size_t>(r) > budget) return too_large(s, budget, op, t0);

    const int rest = n - r;
    double* L2 = A + r;
    double* S = &at(r, r);
    for (int b = 0; b < rest; ++b) {  // S = H₂₂ from the stored values (a column of h at a time)
        const Eigen::Index pb = piv[static_cast<std::size_t>(r + b)] - 1;
        double* column = S + static_cast<std::size_t>(b) * n;
        if (h.is_f32()) {
            const float* hb = h.f32().data() + pb * h.f32().rows();
            for (int i = b; i < rest; ++i) column[i] = hb[piv[static_cast<std::size_t>(r + i)] - 1];
        } else {
            const double* hb = h.f64().data() + pb * h.f64().rows();
            for (int i = b; i < rest; ++i) column[i] = hb[piv[static_cast<std::size_t>(r + i)] - 1];
        }
    }
    if (rest > 0 && r > 0) blas::syrk('L', 'N', rest, r, -1.0, L2, n, 1.0, S, n);

    // The certificate: ‖S‖_F plus the rounding allowance γ_{r+1}·(‖L‖_F² + ‖H‖_F)
    // for the entries not recomputed (see rounding_fits). Scaled by ‖H‖_F so
    // that squares of entries near 1e±300 stay finite; summed in double
    // (relative rounding n·ε, far under the allowance).
    double s2 = 0, l2 = 0;
    for (int b = 0; b < rest; ++b) {
        const Eigen::Map<const Eigen::VectorXd> column(&at(r + b, r + b), rest - b);
        s2 += 2 * (column / scale).squaredNorm() - (column(0) / scale) * (column(0) / scale);
    }
    const double root = std::sqrt(scale);  // L's entries scale as √H
    for (int j = 0; j < r; ++j) l2 += (Eigen::Map<const Eigen::VectorXd>(&at(j, j), n - j) / root).squaredNorm();
    const double norm_s = scale * std::sqrt(std::max(s2, 0.0));
    // The entries not recomputed are also absent from the Ritz matrix below
    // (it holds S alone): it is QᵀHQ up to them, which counts as `formed`.
    const double unrecomputed = gamma(r + 1) * (scale * l2 + scale);
    s.rest_bound = norm_s * (1 + gamma(n)) + unrecomputed;

    double formed = 0;  // the single-precision correction's error
    double basis = 0;  // ‖QᵀQ − I‖ for Q = LR⁻¹
    // Rayleigh–Ritz on range(L) with L = QR: QᵀHQ = RRᵀ + Q₂ᵀSQ₂, R from the
    // Cholesky factor of M = LᵀL = RᵀR, Q₂ = L₂R⁻¹ written over L₂.
    if (r > 0) {
        double* V = A + n;  // V(j, i) = A(j, i + 1); its upper triangle is A's strict upper
        const int m = rest;  // ≥ 1: r is within the budget, under n
        blas::syrk('U', 'T', r, m, 1.0, L2, n, 0.0, V, n);  // L₂ᵀL₂
        dlauum_("L", &r, A, &n, &info, 1);  // L₁ᵀL₁ over L₁ (lower), then added across
        if (info != 0) throw NumericError("LAPACK dlauum failed: info = " + std::to_string(info));
        for (int i = 0; i < r; ++i)
            for (int j = 0; j <= i; ++j) V[j + static_cast<std::size_t>(i) * n] += at(i, j);
        dpotrf_("U", &r, V, &n, &info, 1);
        if (info != 0) throw NumericError("Rayleigh–Ritz: LᵀL is not positive definite (LAPACK dpotrf info = " +
                                          std::to_string(info) + ")");
        blas::trsm('R', 'U', 'N', 'N', m, r, 1.0, V, n, L2, n);  // Q₂ = L₂R⁻¹
        dlauum_("U", &r, V, &n, &info, 1);                    // RRᵀ
        if (info != 0) throw NumericError("LAPACK dlauum failed: info = " + std::to_string(info));
        formed = add_correction(A, n, r, norm_s);
        s.values = symmetric_eigenvalues(V, r, n, 'U');
        // RᵀR = LᵀL + ΔM with ‖ΔM‖ ≈ γ·‖LᵀL‖ (dpotrf's backward error, γ
        // taken as r·ε, the trsm's as much again): ‖QᵀQ − I‖ = ‖R⁻ᵀΔMR⁻¹‖ ≲
        // 2·r·ε·κ(LᵀL). LᵀL's eigenvalues are within ρ of the Ritz values, so
        // its smallest is at least the smallest Ritz value less 2ρ. When no
        // Ritz value stands that clear (a pivot at the rounding of the stored
        // type), η ≤ ρ and only Weyl's 2ρ applies, which leaves the term out.
        // An estimate, as the rounding allowance is: measured ‖QᵀQ − I‖ was
        // 1e-7 to 1e-4 of it for κ from 9e2 to 9e5.
        const auto [bottom, top] = magnitude_range(s.values);
        basis = bottom > 2 * s.rest_bound ? 2 * r * eps64 * top / (bottom - 2 * s.rest_bound) : INFINITY;
    }
    pair_values(s, true, h, formed + unrecomputed, basis);
    finish(s, op, t0);
    return s;
}

}  // namespace

std::optional<Spectrum> cholesky_spectrum(const Hessian& h, const PartialOptions& o) {
    const auto t0 = Clock::now();
    HessianOperator op(h);
    Spectrum s = named(h, "cholesky");
    if (h.frobenius() == 0) {
        finish(s, op, t0);
        return s;
    }
    // A positive semi-definite matrix has a non-negative diagonal.
    if (op.diagonal().minCoeff() < 0) return std::nullopt;
    const std::size_t n = h.info.n, likely = likely_rank(op, h);
    if (o.max_k == 0 && likely > n / 8 && n <= static_cast<std::size_t>(INT_MAX) && rounding_fits(op, h)) {
        const auto budget = static_cast<std::size_t>(factored_share * static_cast<double>(n));
        // Past it, skip dpstrf: a rank the estimate puts just over the budget
        // costs about as much either way (70–80% of n: docs/performance.md),
        // and one truly over it would pay for dpstrf and then dsyevd.
        if (likely > budget) {
            s.rank_estimated = true;
            return too_large(s, budget, op, t0);
        }
        return factored_cholesky(h, budget, op, t0);
    }
    // Rank at least trace²/‖H‖_F² for a PSD H: past max_k the pivots cannot win.
    if (likely > max_pairs(h, o)) {
        s.rank_estimated = true;
        return too_large(s, max_pairs(h, o), op, t0);
    }
    return column_cholesky(h, o, op, t0);
}

}  // namespace basinvol
