#pragma once
// Helpers shared by the unit tests: matrices with prescribed spectra. The
// Eigen decompositions live in support.cpp, compiled once for every test file.
#include <Eigen/Dense>

#include <cmath>
#include <cstdint>
#include <vector>

namespace testing_support {

// A random orthogonal matrix (Haar, via QR with sign fix), from a local seed.
Eigen::MatrixXd random_orthogonal(Eigen::Index n, std::uint32_t seed);

// Q diag(eigs) Qᵀ, symmetrized, Q = random_orthogonal(eigs.size(), seed).
Eigen::MatrixXd with_spectrum(const std::vector<double>& eigs, std::uint32_t seed);

// The eigenvalues of a symmetric matrix, ascending (Eigen's own solver, not
// the library's LAPACK path).
Eigen::VectorXd eigenvalues_of(const Eigen::MatrixXd& symmetric);

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
