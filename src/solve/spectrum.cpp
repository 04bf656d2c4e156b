// Partial spectra with certificates: the blocked sketch and Spectra's Lanczos.
#include "blas.hpp"

#include <basinvol/error.hpp>
#include <basinvol/solve/operator.hpp>
#include <basinvol/solve/spectrum.hpp>

#include <Spectra/SymEigsSolver.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>

namespace basinvol {
namespace {

using Clock = std::chrono::steady_clock;
constexpr double eps64 = std::numeric_limits<double>::epsilon();

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::size_t max_pairs(const Hessian& h, const PartialOptions& o) {
    return o.max_k ? std::min(o.max_k, h.info.n) : h.info.n / 4;
}

// A lower bound on the rank of a positive semi-definite H: trace² / ‖H‖_F²
// (Cauchy–Schwarz over the eigenvalues). A first guess for the block size.
std::size_t rank_guess(const HessianOperator& op, double frobenius) {
    const double t = op.trace();
    if (!(t > 0) || !(frobenius > 0)) return 0;
    const double g = (t / frobenius) * (t / frobenius);
    return static_cast<std::size_t>(std::min(g, 1e9));
}

// A rank estimate for deciding whether a partial method is worth starting
// (not a bound): for a Wishart-like spectrum (Marchenko–Pastur) with rank r,
// trace²/‖H‖_F² ≈ r·n/(n + r), so r ≈ g·n/(n − g).
std::size_t likely_rank(const HessianOperator& op, const Hessian& h) {
    const double g = static_cast<double>(rank_guess(op, h.frobenius)), n = static_cast<double>(h.info.n);
    return g >= n ? h.info.n : static_cast<std::size_t>(g * n / (n - g));
}

Eigen::MatrixXd gaussian(Eigen::Index rows, Eigen::Index cols, std::mt19937_64& rng) {
    std::normal_distribution<double> normal;
    Eigen::MatrixXd m(rows, cols);
    for (Eigen::Index j = 0; j < cols; ++j)
        for (Eigen::Index i = 0; i < rows; ++i) m(i, j) = normal(rng);
    return m;
}

// In-place Householder QR of A (m×k, m ≥ k): returns R's diagonal block and
// leaves the reflectors in A with their scalars in tau.
Eigen::MatrixXd householder_qr(Eigen::MatrixXd& A, Eigen::VectorXd& tau) {
    const int m = static_cast<int>(A.rows()), k = static_cast<int>(A.cols());
    tau.resize(k);
    int lwork = -1, info = 0;
    double q = 0;
    dgeqrf_(&m, &k, A.data(), &m, tau.data(), &q, &lwork, &info);
    lwork = std::max(1, static_cast<int>(q));
    std::vector<double> work(static_cast<std::size_t>(lwork));
    dgeqrf_(&m, &k, A.data(), &m, tau.data(), work.data(), &lwork, &info);
    if (info != 0) throw NumericError("LAPACK dgeqrf failed: info = " + std::to_string(info));
    return A.topRows(k).triangularView<Eigen::Upper>();
}

void form_q(Eigen::MatrixXd& A, const Eigen::VectorXd& tau) {
    const int m = static_cast<int>(A.rows()), k = static_cast<int>(A.cols());
    int lwork = -1, info = 0;
    double q = 0;
    dorgqr_(&m, &k, &k, A.data(), &m, tau.data(), &q, &lwork, &info);
    lwork = std::max(1, static_cast<int>(q));
    std::vector<double> work(static_cast<std::size_t>(lwork));
    dorgqr_(&m, &k, &k, A.data(), &m, tau.data(), work.data(), &lwork, &info);
    if (info != 0) throw NumericError("LAPACK dorgqr failed: info = " + std::to_string(info));
}

void finish(Spectrum& s, const HessianOperator& op, Clock::time_point t0) {
    std::sort(s.values.begin(), s.values.end());
    s.stats.matvecs = op.matvecs();
    s.stats.passes = op.passes();
    s.stats.seconds = since(t0);
}

// An empty spectrum of h, named for the method that will fill it.
Spectrum named(const Hessian& h, const char* method) {
    Spectrum s;
    s.n = h.info.n;
    s.method = method;
    return s;
}

// The method gave up: the rank is (very likely) above its budget.
Spectrum too_large(Spectrum& s, const HessianOperator& op, Clock::time_point t0) {
    s.too_large = true;
    s.values.clear();
    s.rest_bound = INFINITY;
    finish(s, op, t0);
    return s;
}

}  // namespace

std::optional<Spectrum> sketch_spectrum(const Hessian& h, const PartialOptions& o) {
    const auto t0 = Clock::now();
    HessianOperator op(h);
    const auto n = static_cast<Eigen::Index>(h.info.n);
    const std::size_t max_k = max_pairs(h, o);
    Spectrum s = named(h, "sketch");
    if (h.frobenius == 0) {  // the zero matrix: nothing is curved
        finish(s, op, t0);
        return s;
    }
    if (max_k < 2 * o.oversample) return std::nullopt;

    // What a sketch column can tell from zero: the stored type's rounding of H
    // (ε_stored·‖H‖_F) or double rounding in the product (~ε·√n·‖H‖_F).
    const double signal = std::max(h.info.stored_eps, 10 * eps64 * std::sqrt(double(n))) * h.frobenius;
    // For a positive semi-definite H the guess is a lower bound on the rank:
    // past max_k the sketch cannot win, so do not start it.
    const std::size_t guess = rank_guess(op, h.frobenius) * 5 / 4 + 2 * o.oversample;
    if (guess > max_k || likely_rank(op, h) > max_k) return too_large(s, op, t0);
    std::size_t k = std::max<std::size_t>(guess, std::min<std::size_t>(32, max_k));
    std::mt19937_64 rng(o.seed);
    Eigen::MatrixXd Y = op.apply(gaussian(n, static_cast<Eigen::Index>(k), rng));
    Eigen::MatrixXd Q;
    Eigen::VectorXd tau;
    for (;;) {
        Q = Y;
        Eigen::MatrixXd R = householder_qr(Q, tau);
        // σ_j(Y)/√k estimates |λ_j| for a Gaussian Ω; columns under `signal` are noise.
        Eigen::VectorXd sigma = Eigen::BDCSVD<Eigen::MatrixXd>(R).singularValues();
        std::size_t found = 0;
        for (Eigen::Index j = 0; j < sigma.size(); ++j)
            if (sigma(j) / std::sqrt(double(k)) > signal) ++found;
        if (found + o.oversample <= k) break;  // the sketch has slack: it holds the range
        if (k >= max_k) return too_large(s, op, t0);
        const std::size_t more = std::min(k, max_k - k);
        ++s.stats.restarts;
        Y.conservativeResize(Eigen::NoChange, static_cast<Eigen::Index>(k + more));
        Y.rightCols(static_cast<Eigen::Index>(more)) = op.apply(gaussian(n, static_cast<Eigen::Index>(more), rng));
        k += more;
    }
    Y.resize(0, 0);
    form_q(Q, tau);

    // Rayleigh–Ritz: B = QᵀHQ, θ = eig(B), V = QU.
    const int ni = static_cast<int>(n), ki = static_cast<int>(k);
    Eigen::MatrixXd W = op.apply(Q);
    Eigen::MatrixXd B(ki, ki);
    blas::gemm('T', 'N', ki, ki, ni, 1.0, Q.data(), ni, W.data(), ni, 0.0, B.data(), ki);
    B = (B + B.transpose()).eval() / 2;
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(B);
    if (es.info() != Eigen::Success) throw NumericError("Rayleigh–Ritz eigen-solver did not converge");
    blas::gemm('N', 'N', ni, ki, ki, 1.0, Q.data(), ni, es.eigenvectors().data(), ki, 0.0, W.data(), ni);
    Q.resize(0, 0);
    const Eigen::VectorXd theta = es.eigenvalues();
    s.rest_bound = op.residual_frobenius(W, theta);
    s.values.assign(theta.data(), theta.data() + theta.size());
    s.complete = s.values.size() == s.n;
    if (s.complete) s.rest_bound = 0;
    finish(s, op, t0);
    return s;
}

std::optional<Spectrum> cholesky_spectrum(const Hessian& h, const PartialOptions& o) {
    const auto t0 = Clock::now();
    HessianOperator op(h);
    const auto n = static_cast<Eigen::Index>(h.info.n);
    const std::size_t max_k = max_pairs(h, o);
    Spectrum s = named(h, "cholesky");
    if (h.frobenius == 0) {
        finish(s, op, t0);
        return s;
    }
    Eigen::VectorXd d = op.diagonal();
    // A positive semi-definite matrix has a non-negative diagonal, and rank at
    // least trace²/‖H‖_F²: past max_k the pivots cannot win.
    if (d.minCoeff() < 0) return std::nullopt;
    if (likely_rank(op, h) > max_k) return too_large(s, op, t0);
    // Stop pivoting where the remaining diagonal is rounding of the stored
    // type (or of double arithmetic over n terms) relative to the largest pivot.
    const double stop = 4 * std::max(h.info.stored_eps, eps64 * std::sqrt(double(n))) * d.maxCoeff();
    Eigen::MatrixXd L(n, std::min<Eigen::Index>(64, Eigen::Index(max_k)));
    Eigen::VectorXd col(n);
    Eigen::Index r = 0;
    for (;;) {
        Eigen::Index p = 0;
        const double dp = d.maxCoeff(&p);
        if (!(dp > stop)) break;
        // More than max_k pivots above the stop: a PSD matrix of rank > max_k.
        if (r >= Eigen::Index(max_k)) return too_large(s, op, t0);
        if (r == L.cols()) L.conservativeResize(Eigen::NoChange, std::min<Eigen::Index>(2 * r, Eigen::Index(max_k)));
        // L(:, r) = (H(:, p) − L(:, :r)·L(p, :r)ᵀ) / √d_p
        op.column(p, col.data());
        if (r > 0) col.noalias() -= L.leftCols(r) * L.row(p).head(r).transpose();
        L.col(r) = col / std::sqrt(dp);
        d -= L.col(r).cwiseAbs2();
        d(p) = 0;
        ++r;
    }
    L.conservativeResize(Eigen::NoChange, r);
    s.stats.matvecs = static_cast<std::size_t>(r);
    // Rayleigh–Ritz on range(L), and the certificate ‖H − LLᵀ‖_F, in one pass.
    Eigen::MatrixXd Q = L;
    Eigen::VectorXd tau;
    if (r > 0) {
        householder_qr(Q, tau);
        form_q(Q, tau);
    }
    Eigen::MatrixXd W;
    s.rest_bound = op.residual_frobenius(L, L, &Q, &W);
    if (r > 0) {
        const int ni = static_cast<int>(n), ri = static_cast<int>(r);
        Eigen::MatrixXd B(ri, ri);
        blas::gemm('T', 'N', ri, ri, ni, 1.0, Q.data(), ni, W.data(), ni, 0.0, B.data(), ri);
        B = (B + B.transpose()).eval() / 2;
        Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(B, Eigen::EigenvaluesOnly);
        if (es.info() != Eigen::Success) throw NumericError("Rayleigh–Ritz eigen-solver did not converge");
        s.values.assign(es.eigenvalues().data(), es.eigenvalues().data() + ri);
    }
    // By Weyl, the n − r eigenvalues of H that LLᵀ maps to zero lie within
    // ‖H − LLᵀ‖_F of zero; the Ritz values stand for the other r.
    s.complete = s.values.size() == s.n;
    if (s.complete) s.rest_bound = 0;
    s.stats.matvecs += op.matvecs();
    s.stats.passes = op.passes();
    std::sort(s.values.begin(), s.values.end());
    s.stats.seconds = since(t0);
    return s;
}

std::optional<Spectrum> lanczos_spectrum(const Hessian& h, const PartialOptions& o) {
    const auto t0 = Clock::now();
    HessianOperator op(h);
    const auto n = static_cast<Eigen::Index>(h.info.n);
    const std::size_t max_k = std::min<std::size_t>(max_pairs(h, o), h.info.n - 1);
    Spectrum s = named(h, "lanczos");
    if (h.frobenius == 0) {
        finish(s, op, t0);
        return s;
    }
    if (max_k < 1) return std::nullopt;
    std::size_t nev = std::clamp<std::size_t>(rank_guess(op, h.frobenius) + o.oversample, 1, max_k);
    double previous = INFINITY;
    for (;;) {
        const auto ncv = std::min<Eigen::Index>(n, std::max<Eigen::Index>(2 * Eigen::Index(nev) + 1, Eigen::Index(nev) + 20));
        Spectra::SymEigsSolver<HessianOperator> eigs(op, static_cast<Eigen::Index>(nev), ncv);
        eigs.init();
        // Largest magnitude: saddles have large negative eigenvalues too.
        eigs.compute(Spectra::SortRule::LargestMagn, 1000, 1e-10, Spectra::SortRule::LargestMagn);
        const Eigen::VectorXd theta = eigs.eigenvalues();
        const Eigen::MatrixXd V = eigs.eigenvectors();
        s.rest_bound = op.residual_frobenius(V, theta);
        s.values.assign(theta.data(), theta.data() + theta.size());
        // Done when the rest is under the dtype cut, n·ε·max|λ|, or stopped shrinking.
        const double amax = theta.size() ? theta.cwiseAbs().maxCoeff() : 0.0;
        const double target = amax * static_cast<double>(n) * h.info.stored_eps;
        if (s.rest_bound <= target || nev >= max_k || !(s.rest_bound < previous / 2)) break;
        previous = s.rest_bound;
        ++s.stats.restarts;
        nev = std::min(2 * nev, max_k);
    }
    finish(s, op, t0);
    return s;
}

}  // namespace basinvol
