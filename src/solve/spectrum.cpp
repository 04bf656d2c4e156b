// Partial spectra with certificates: the blocked sketch (Spectra's Lanczos is
// in lanczos.cpp), and the helpers all solvers share.
#include "blas.hpp"
#include "detail.hpp"

#include <basinvol/error.hpp>
#include <basinvol/solve/operator.hpp>
#include <basinvol/solve/rounding.hpp>
#include <basinvol/solve/spectrum.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <random>

namespace basinvol {

using detail::Clock;
using detail::since;

namespace {
constexpr double eps64 = std::numeric_limits<double>::epsilon();

Eigen::MatrixXd gaussian(Eigen::Index rows, Eigen::Index cols, std::mt19937_64& rng) {
    std::normal_distribution<double> normal;
    Eigen::MatrixXd m(rows, cols);
    for (Eigen::Index j = 0; j < cols; ++j)
        for (Eigen::Index i = 0; i < rows; ++i) m(i, j) = normal(rng);
    return m;
}
}  // namespace

const char* method_name(Method m) {
    switch (m) {
        case Method::automatic: return "auto";
        case Method::dense: return "dense";
        case Method::cholesky: return "cholesky";
        case Method::sketch: return "sketch";
        case Method::lanczos: return "lanczos";
    }
    return "unknown";
}

double detail::since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::size_t detail::max_pairs(const Hessian& h, const PartialOptions& o) {
    return o.max_k ? std::min(o.max_k, h.info.n) : h.info.n / 4;
}

// Cauchy–Schwarz over the eigenvalues of a positive semi-definite H.
std::size_t detail::rank_guess(double trace, double frobenius) {
    // No guess from a trace that is not positive, or that overflowed (a
    // diagonal near 1e308: trace²/‖H‖_F² would read as a rank of 1e9).
    if (!(trace > 0) || !std::isfinite(trace) || !(frobenius > 0)) return 0;
    const double g = (trace / frobenius) * (trace / frobenius);
    return static_cast<std::size_t>(std::min(g, 1e9));
}

std::size_t detail::rank_guess(const HessianOperator& op, double frobenius) {
    return rank_guess(op.trace(), frobenius);
}

// For a Wishart-like spectrum (Marchenko–Pastur) of rank r,
// trace²/‖H‖_F² ≈ r·n/(n + r), so r ≈ g·n/(n − g).
std::size_t detail::likely_rank(double trace, double frobenius, std::size_t n) {
    const double g = static_cast<double>(rank_guess(trace, frobenius)), nd = static_cast<double>(n);
    return g >= nd ? n : static_cast<std::size_t>(g * nd / (nd - g));
}

std::size_t detail::likely_rank(const HessianOperator& op, const Hessian& h) {
    return likely_rank(op.trace(), h.frobenius(), h.info.n);
}

Eigen::MatrixXd detail::householder_qr(Eigen::MatrixXd& A, Eigen::VectorXd& tau) {
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

void detail::form_q(Eigen::MatrixXd& A, const Eigen::VectorXd& tau) {
    const int m = static_cast<int>(A.rows()), k = static_cast<int>(A.cols());
    int lwork = -1, info = 0;
    double q = 0;
    dorgqr_(&m, &k, &k, A.data(), &m, tau.data(), &q, &lwork, &info);
    lwork = std::max(1, static_cast<int>(q));
    std::vector<double> work(static_cast<std::size_t>(lwork));
    dorgqr_(&m, &k, &k, A.data(), &m, tau.data(), work.data(), &lwork, &info);
    if (info != 0) throw NumericError("LAPACK dorgqr failed: info = " + std::to_string(info));
}

void detail::finish(Spectrum& s, const HessianOperator& op, Clock::time_point t0) {
    std::sort(s.values.begin(), s.values.end());
    s.stats.matvecs += op.matvecs();
    s.stats.passes += op.passes();
    s.stats.seconds = since(t0);
}

detail::MagnitudeRange detail::magnitude_range(const std::vector<double>& values) {
    MagnitudeRange m;
    for (double v : values) m.largest = std::max(m.largest, std::abs(v)), m.smallest = std::min(m.smallest, std::abs(v));
    return m;
}

void detail::pair_ritz_values(Spectrum& s, double rounding, double formed, double basis) {
    const double rho = s.rest_bound;
    const auto [smallest, largest] = magnitude_range(s.values);
    const double skew = 3 * basis * largest;
    // Weyl's 2ρ leaves the basis estimate out: measured at 1e-7 to 1e-4 of
    // it, the basis' effect stays far inside ρ (rows with a pivot at the
    // stored type's rounding, where the estimate reaches ρ, included).
    s.value_error = 2 * rho + formed;
    if (s.values.empty() || !std::isfinite(skew)) return;
    const double eta = smallest - formed - skew - rounding - rho;
    if (!(eta > 0)) return;
    // δ = 2ρ²/(η + √(η² + 4ρ²)) through t = ρ/η, so that no square under- or
    // overflows at entries near 1e±300. At t ≥ 1, δ ≥ ρ/2: Weyl's stays.
    const double t = rho / eta;
    if (!(t < 1)) return;
    const double delta = 2 * rho * t / (1 + std::sqrt(1 + 4 * t * t));
    if (delta <= rho / 8) {
        s.value_error = delta + formed + skew;
        s.rest_bound = rho + delta;
    }
}

std::optional<Pairing> detail::split_pairing(const Spectrum& s, double rounding, double basis) {
    const double rho = s.rest_bound;
    if (s.complete || s.values.empty() || !(rho > 0) || !std::isfinite(rho)) return std::nullopt;
    std::vector<double> a(s.values.size());
    std::transform(s.values.begin(), s.values.end(), a.begin(), [](double v) { return std::abs(v); });
    std::sort(a.begin(), a.end(), std::greater<double>());
    const double skew = 3 * basis * a.front();
    if (!std::isfinite(skew)) return std::nullopt;
    for (std::size_t j = a.size(); j >= 1; --j) {
        const double m2 = j < a.size() ? a[j] : 0.0;
        const double eta = a[j - 1] - m2 - rho - rounding - skew;
        if (!(eta > 0)) continue;
        const double t = rho / eta;  // as in pair_ritz_values: no square under- or overflows
        if (!(t < 1)) continue;
        const double delta = 2 * rho * t / (1 + std::sqrt(1 + 4 * t * t));
        if (!(delta + skew <= rho / 8)) continue;  // else Weyl's ρ is as good
        Pairing p;
        for (double v : s.values)
            if (std::abs(v) > m2) p.values.push_back(v);  // a[j − 1] > m2 + ρ: exactly the j largest
        p.value_error = delta + skew;
        p.rest_bound = m2 + rho + delta + skew;
        return p;
    }
    return std::nullopt;
}

Spectrum detail::named(const Hessian& h, const char* method) {
    Spectrum s;
    s.n = h.info.n;
    s.method = method;
    s.partial = true;
    return s;
}

Spectrum detail::too_large(Spectrum& s, std::size_t budget, const HessianOperator& op, Clock::time_point t0) {
    s.too_large = true;
    s.rank_budget = budget;
    s.values.clear();
    s.rest_bound = INFINITY;
    finish(s, op, t0);
    return s;
}

using namespace detail;

std::optional<Spectrum> detail::sketch(const SketchTarget& t, std::size_t max_k, const PartialOptions& o,
                                       Spectrum s) {
    const auto n = static_cast<Eigen::Index>(t.n);
    auto too_large = [&] {
        s.too_large = true;
        s.rank_budget = max_k;
        s.values.clear();
        s.rest_bound = INFINITY;
        return s;
    };
    if (t.frobenius == 0) return s;  // the zero matrix: nothing is curved
    if (max_k < 2 * o.oversample) return std::nullopt;

    // What a sketch column can tell from zero: the stored type's rounding of H
    // (ε_stored·‖H‖_F) or double rounding in the product (~ε·√n·‖H‖_F).
    const double signal = std::max(t.stored_eps, 10 * eps64 * std::sqrt(double(n))) * t.frobenius;
    // For a positive semi-definite H the guess is a lower bound on the rank:
    // past max_k the sketch cannot win, so do not start it.
    const std::size_t guess = rank_guess(t.trace, t.frobenius) * 5 / 4 + 2 * o.oversample;
    if (guess > max_k || likely_rank(t.trace, t.frobenius, t.n) > max_k) {
        s.rank_estimated = true;
        return too_large();
    }
    std::size_t k = std::max<std::size_t>(guess, std::min<std::size_t>(32, max_k));
    std::mt19937_64 rng(o.seed);
    Eigen::MatrixXd Y = t.apply(gaussian(n, static_cast<Eigen::Index>(k), rng));
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
        if (t.agree(found + o.oversample <= k)) break;  // the sketch has slack: it holds the range
        if (k >= max_k) return too_large();
        const std::size_t more = std::min(k, max_k - k);
        ++s.stats.restarts;
        Y.conservativeResize(Eigen::NoChange, static_cast<Eigen::Index>(k + more));
        Y.rightCols(static_cast<Eigen::Index>(more)) = t.apply(gaussian(n, static_cast<Eigen::Index>(more), rng));
        k += more;
    }
    Y.resize(0, 0);
    form_q(Q, tau);

    // Rayleigh–Ritz: B = QᵀHQ, θ = eig(B), V = QU.
    const int ni = static_cast<int>(n), ki = static_cast<int>(k);
    Eigen::MatrixXd W = t.apply(Q);
    Eigen::MatrixXd B(ki, ki);
    blas::gemm('T', 'N', ki, ki, ni, 1.0, Q.data(), ni, W.data(), ni, 0.0, B.data(), ki);
    B = (B + B.transpose()).eval() / 2;
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(B);
    if (es.info() != Eigen::Success) throw NumericError("Rayleigh–Ritz eigen-solver did not converge");
    blas::gemm('N', 'N', ni, ki, ki, 1.0, Q.data(), ni, es.eigenvectors().data(), ki, 0.0, W.data(), ni);
    Q.resize(0, 0);
    const Eigen::VectorXd theta = es.eigenvalues();
    s.rest_bound = t.residual(W, theta);
    s.values.assign(theta.data(), theta.data() + theta.size());
    // Weyl on H = VΘVᵀ + R: eig(H) pairs with Θ ∪ {0} within ‖R‖₂ ≤ ‖R‖_F;
    // the quadratic bound over the values clear of the oversampling's
    // noise-level ones is the second pairing.
    s.value_error = s.rest_bound;
    s.complete = s.values.size() == s.n;
    if (s.complete) s.rest_bound = s.value_error = 0;
    else {
        // V = QU is orthonormal to rounding; measured all the same (k²n).
        Eigen::MatrixXd G(ki, ki);
        blas::gemm('T', 'N', ki, ki, ni, 1.0, W.data(), ni, W.data(), ni, 0.0, G.data(), ki);
        const double basis = (G - Eigen::MatrixXd::Identity(ki, ki)).norm();
        s.narrower = split_pairing(s, rounding_allowance(t.n, t.frobenius), basis);
    }
    return s;
}

std::optional<Spectrum> sketch_spectrum(const Hessian& h, const PartialOptions& o) {
    const auto t0 = Clock::now();
    HessianOperator op(h);
    SketchTarget t;
    t.n = h.info.n;
    t.frobenius = h.frobenius();
    t.stored_eps = h.info.stored_eps;
    t.trace = t.frobenius == 0 ? 0.0 : op.trace();
    t.apply = [&](const Eigen::MatrixXd& X) { return op.apply(X); };
    t.residual = [&](const Eigen::MatrixXd& V, const Eigen::VectorXd& theta) { return op.residual_frobenius(V, theta); };
    std::optional<Spectrum> s = detail::sketch(t, max_pairs(h, o), o, named(h, "sketch"));
    if (s) finish(*s, op, t0);
    return s;
}

}  // namespace basinvol
