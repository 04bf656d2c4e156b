// Spectra's Lanczos (SymEigsSolver) on the Hessian operator: the largest
// |λ| with a residual certificate. Its own file: Spectra's templates are the
// slowest code of the library to compile.
#include "detail.hpp"

#include <basinvol/error.hpp>
#include <basinvol/solve/operator.hpp>
#include <basinvol/solve/rounding.hpp>
#include <basinvol/solve/spectrum.hpp>

#include <Spectra/SymEigsSolver.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>

namespace basinvol {

using detail::Clock;

std::optional<Spectrum> lanczos_spectrum(const Hessian& h, const PartialOptions& o) {
    const auto t0 = Clock::now();
    HessianOperator op(h);
    const auto n = static_cast<Eigen::Index>(h.info.n);
    const std::size_t max_k = std::min<std::size_t>(detail::max_pairs(h, o), h.info.n - 1);
    Spectrum s = detail::named(h, "lanczos");
    if (h.frobenius() == 0) {
        detail::finish(s, op, t0);
        return s;
    }
    if (max_k < 1) return std::nullopt;
    std::size_t nev = std::clamp<std::size_t>(detail::rank_guess(op, h.frobenius()) + o.oversample, 1, max_k);
    double previous = INFINITY, drift = 0;
    for (;;) {
        const auto ncv = std::min<Eigen::Index>(n, std::max<Eigen::Index>(2 * Eigen::Index(nev) + 1, Eigen::Index(nev) + 20));
        Spectra::SymEigsSolver<HessianOperator> eigs(op, static_cast<Eigen::Index>(nev), ncv);
        eigs.init();
        // Largest magnitude: saddles have large negative eigenvalues too.
        eigs.compute(Spectra::SortRule::LargestMagn, 1000, 1e-10, Spectra::SortRule::LargestMagn);
        const Eigen::VectorXd theta = eigs.eigenvalues();
        const Eigen::MatrixXd V = eigs.eigenvectors();
        // The certificate (Weyl on H = VΘVᵀ + R) needs orthonormal Ritz
        // vectors, and Ritz values then lie within ±‖H‖₂ ≤ ‖H‖_F. A Krylov
        // space that closes early (the all-ones matrix: one curved direction)
        // can leave Spectra with neither; its numbers then mean nothing, and
        // the next method takes over.
        drift = (V.transpose() * V - Eigen::MatrixXd::Identity(V.cols(), V.cols())).norm();
        const double amax_seen = theta.size() ? theta.cwiseAbs().maxCoeff() : 0.0;
        if (!(drift <= 1e-10 * std::sqrt(double(V.cols()) + 1)) || !(amax_seen <= h.frobenius() * (1 + 1e-10))) {
            std::ostringstream why;
            why << "Spectra's Lanczos basis broke down (|VᵀV − I|_F = " << drift << ", largest Ritz value "
                << amax_seen << " against ‖H‖_F = " << h.frobenius() << ")";
            throw NumericError(why.str());
        }
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
    s.value_error = s.rest_bound;  // Weyl, as for the sketch; the quadratic bound past the rank's noise-level values:
    s.narrower = detail::split_pairing(s, rounding_allowance(h.info.n, h.frobenius()), drift);
    detail::finish(s, op, t0);
    return s;
}

}  // namespace basinvol
