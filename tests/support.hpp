#pragma once
// Helpers shared by the unit tests: matrices with prescribed spectra.
#include <Eigen/Dense>

#include <cstdint>
#include <random>
#include <vector>

namespace testing_support {

// A random orthogonal matrix (Haar, via QR with sign fix), from a local seed.
inline Eigen::MatrixXd random_orthogonal(Eigen::Index n, std::uint32_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    Eigen::MatrixXd a(n, n);
    for (Eigen::Index j = 0; j < n; ++j)
        for (Eigen::Index i = 0; i < n; ++i) a(i, j) = normal(rng);
    Eigen::HouseholderQR<Eigen::MatrixXd> qr(a);
    Eigen::MatrixXd q = qr.householderQ();
    Eigen::MatrixXd r = qr.matrixQR().triangularView<Eigen::Upper>();
    for (Eigen::Index j = 0; j < n; ++j)
        if (r(j, j) < 0) q.col(j) *= -1;
    return q;
}

// Q diag(eigs) Qᵀ, symmetrized.
inline Eigen::MatrixXd with_spectrum(const std::vector<double>& eigs, std::uint32_t seed) {
    const auto n = static_cast<Eigen::Index>(eigs.size());
    Eigen::MatrixXd q = random_orthogonal(n, seed);
    Eigen::VectorXd d = Eigen::Map<const Eigen::VectorXd>(eigs.data(), n);
    Eigen::MatrixXd h = q * d.asDiagonal() * q.transpose();
    return (h + h.transpose()) / 2;
}

// n values log-uniform between lo and hi (descending), deterministic.
inline std::vector<double> geometric(std::size_t n, double hi, double lo) {
    std::vector<double> v(n);
    for (std::size_t i = 0; i < n; ++i)
        v[i] = n == 1 ? hi : hi * std::pow(lo / hi, static_cast<double>(i) / static_cast<double>(n - 1));
    return v;
}

// log ω_k computed independently of the library: ω_k = π^(k/2) / Γ(k/2 + 1).
inline double log_ball(std::size_t k) {
    return 0.5 * static_cast<double>(k) * std::log(3.14159265358979323846) - std::lgamma(0.5 * static_cast<double>(k) + 1);
}

}  // namespace testing_support
