#pragma once
// Helpers shared by the solvers in src/solve (not installed).
#include <basinvol/hessian.hpp>
#include <basinvol/solve/operator.hpp>
#include <basinvol/solve/spectrum.hpp>

#include <Eigen/Dense>

#include <chrono>
#include <cstddef>
#include <vector>

namespace basinvol::detail {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0);

// The Ritz-pair budget of the partial methods: options.max_k, else n/4.
std::size_t max_pairs(const Hessian& h, const PartialOptions& o);

// trace²/‖H‖_F²: a lower bound on the rank of a positive semi-definite H.
std::size_t rank_guess(const HessianOperator& op, double frobenius);

// A rank estimate (not a bound) for choosing a method: the rank r of a
// Marchenko–Pastur spectrum with the same trace²/‖H‖_F².
std::size_t likely_rank(const HessianOperator& op, const Hessian& h);

// In-place Householder QR of A (m×k, m ≥ k): returns R and leaves the
// reflectors in A with their scalars in tau; form_q turns them into Q.
Eigen::MatrixXd householder_qr(Eigen::MatrixXd& A, Eigen::VectorXd& tau);
void form_q(Eigen::MatrixXd& A, const Eigen::VectorXd& tau);

// An empty spectrum of h, named for the method that will fill it.
Spectrum named(const Hessian& h, const char* method);

// Sorts the values and records the operator's work and the time since t0.
void finish(Spectrum& s, const HessianOperator& op, Clock::time_point t0);

// The method gave up: the rank is (very likely) above `budget`.
Spectrum too_large(Spectrum& s, std::size_t budget, const HessianOperator& op, Clock::time_point t0);

// All eigenvalues (ascending) of the symmetric n×n matrix whose `uplo`
// triangle is stored at a (leading dimension lda), through LAPACK dsyevd;
// the triangle is overwritten.
std::vector<double> symmetric_eigenvalues(double* a, int n, int lda, char uplo);

}  // namespace basinvol::detail
