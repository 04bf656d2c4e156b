#pragma once
// Helpers shared by the solvers in src/solve (not installed).
#include <basinvol/hessian.hpp>
#include <basinvol/solve/operator.hpp>
#include <basinvol/solve/rounding.hpp>
#include <basinvol/solve/spectrum.hpp>

#include <Eigen/Dense>

#include <chrono>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <optional>
#include <vector>

namespace basinvol::detail {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0);

// γ_k = k·u/(1 − k·u), u = ε/2: the relative rounding of a k-term dot product.
inline double gamma(double k) {
    const double ku = k * std::numeric_limits<double>::epsilon() / 2;
    return ku / (1 - ku);
}

// The Ritz-pair budget of the partial methods: options.max_k, else n/4.
std::size_t max_pairs(const Hessian& h, const PartialOptions& o);

// trace²/‖H‖_F²: a lower bound on the rank of a positive semi-definite H.
std::size_t rank_guess(double trace, double frobenius);
std::size_t rank_guess(const HessianOperator& op, double frobenius);

// A rank estimate (not a bound) for choosing a method: the rank r of a
// Marchenko–Pastur spectrum with the same trace²/‖H‖_F².
std::size_t likely_rank(double trace, double frobenius, std::size_t n);
std::size_t likely_rank(const HessianOperator& op, const Hessian& h);

// What the sketch needs of a symmetric matrix: its size, ‖H‖_F, stored
// rounding and trace, the products H·X, and the certificate ‖H − VΘVᵀ‖_F;
// from one process (sketch_spectrum's HessianOperator) or from many
// (basinvol-mpi's tiles, src/mpi). `agree` makes a decision taken from
// computed values the same on every process running the sketch together
// (one process: the identity).
struct SketchTarget {
    std::size_t n = 0;
    double frobenius = 0, stored_eps = 0, trace = 0;
    std::function<Eigen::MatrixXd(const Eigen::MatrixXd&)> apply;
    std::function<double(const Eigen::MatrixXd& V, const Eigen::VectorXd& theta)> residual;
    std::function<bool(bool)> agree = [](bool b) { return b; };
};

// The blocked randomized range finder with Rayleigh–Ritz of sketch_spectrum
// on `t`, with at most max_k columns, filling `s` (values unsorted; the
// caller adds the work counts and sorts). nullopt when max_k leaves no room
// for the oversampling; too_large when the range does not fit max_k.
std::optional<Spectrum> sketch(const SketchTarget& t, std::size_t max_k, const PartialOptions& o, Spectrum s);

// In-place Householder QR of A (m×k, m ≥ k): returns R and leaves the
// reflectors in A with their scalars in tau; form_q turns them into Q.
Eigen::MatrixXd householder_qr(Eigen::MatrixXd& A, Eigen::VectorXd& tau);
void form_q(Eigen::MatrixXd& A, const Eigen::VectorXd& tau);

// The smallest and largest |v| of `values` (∞ and 0 when empty).
struct MagnitudeRange {
    double smallest = INFINITY, largest = 0;
};
MagnitudeRange magnitude_range(const std::vector<double>& values);

// Sets s.value_error and s.rest_bound for the Ritz values θ = s.values of
// the Cholesky forms, eig(VᵀHV) for a basis V of range(L), given
// ρ = s.rest_bound ≥ ‖H − LLᵀ‖_F. Two pairings of eig(H), each a proof;
// the tighter is kept.
// - Weyl: each θ within 2ρ of its partner (ρ of eig(LLᵀ), which lies
//   within ρ of eig(H)), the unseen within ρ of zero.
// - The block split: in the basis [V V⊥], H = [A Cᵀ; C B] with A = VᵀHV
//   (diag(θ) up to `formed`, `basis` and rounding) and, as V⊥ᵀG = 0,
//   C = V⊥ᵀ(H − G)V and B = V⊥ᵀ(H − G)V⊥, both of norm ≤ ρ. The sorted
//   eigenvalues of H pair with those of diag(A, B) within
//   δ = 2ρ²/(η + √(η² + 4ρ²)) ≤ ρ²/η, η the distance between eig(A) and
//   eig(B) ⊂ [−ρ, ρ] (C.-K. Li and R.-C. Li, "A note on eigenvalues of
//   perturbed Hermitian matrices", Linear Algebra Appl. 395, 2005): each θ
//   within δ, the unseen within ρ + δ of zero. Kept when δ ≤ ρ/8 (its rest
//   bound is then at most an eighth wider).
// `formed` bounds how far the Ritz matrix lies from VᵀHV beyond rounding
// (the Cholesky forms' single-precision correction); `basis` bounds
// ‖VᵀV − I‖ where V is not orthonormal to rounding (the factored form's
// Q = LR⁻¹), which moves eig(VᵀHV) by up to 3·basis·max|θ|: counted with
// the quadratic bound (Weyl's 2ρ dwarfs it). These and `rounding` count
// against η, measured from the computed θ.
void pair_ritz_values(Spectrum& s, double rounding, double formed = 0, double basis = 0);

// The sketch's and Lanczos' second pairing (Spectrum::narrower), for Ritz
// values θ = s.values of an orthonormal V (to `basis`, ‖VᵀV − I‖) with
// ρ = s.rest_bound ≥ ‖R‖_F, R = H − VΘVᵀ. Their lists hold noise-level
// values (the sketch's oversampling, Lanczos past the rank), so the block
// split of pair_ritz_values has η ≤ 0 over the whole list; over its j
// largest |θ| it does not. In the basis [V₁ W], V₁ those j Ritz vectors and
// W an orthonormal basis of the rest, H = [Θ₁ Eᵀ; E H₂₂] (V₁ᵀRV₁ = 0 up to
// rounding), E = WᵀRV₁ of norm ≤ ρ, and H₂₂ = Wᵀ(V₂Θ₂V₂ᵀ + R)W of norm at
// most m₂ + ρ, m₂ the largest |θ| left out. Li–Li, η the distance from Θ₁ to
// [−m₂ − ρ, m₂ + ρ]: each of the j values within δ of its eigenvalue, the
// others within m₂ + ρ + δ of zero, each widened by the basis' skew as in
// pair_ritz_values. The largest j whose value error is at most ρ/8 is chosen
// (the most values, the smallest rest bound); none may qualify.
std::optional<Pairing> split_pairing(const Spectrum& s, double rounding, double basis);

// An empty spectrum of h, named for the method that will fill it.
Spectrum named(const Hessian& h, const char* method);

// Sorts the values and records the operator's work and the time since t0.
void finish(Spectrum& s, const HessianOperator& op, Clock::time_point t0);

// The method gave up: the rank is (very likely) above `budget`.
Spectrum too_large(Spectrum& s, std::size_t budget, const HessianOperator& op, Clock::time_point t0);

// How a symmetric matrix is reduced to tridiagonal form: dsyevd's one
// stage, half of it matrix–vector products bound by memory, or two, as
// dsyevd_2stage runs them: to a band by matrix products (LAPACK's
// dsytrd_sy2sb, on the caller's BLAS threads), then the band to tridiagonal
// form (band_to_tridiagonal, on the calling thread).
enum class Reduction { one_stage, two_stage };

// The smallest n from which two stages measured faster than dsyevd with
// `threads` BLAS threads on the CPUs OpenBLAS names `core`
// (docs/performance.md).
long two_stage_from(const char* core, int threads);

// The second stage: the symmetric band of kd sub- or superdiagonals (uplo
// 'L' or 'U', LAPACK's band storage at ab, leading dimension ldab) reduced
// to tridiagonal form by bulge chasing, as dsytrd_sb2st without vectors
// does: its diagonal in d (n) and off-diagonal in e (n − 1). ab is read
// only. band_workspace_doubles is the memory it takes.
void band_to_tridiagonal(char uplo, int n, int kd, const double* ab, int ldab, double* d, double* e);
std::size_t band_workspace_doubles(int n, int kd);

// The reduction for an n×n matrix solved with `threads` BLAS threads on
// this process's OpenBLAS core.
Reduction reduction_for(int n, int threads);

// All eigenvalues (ascending) of the symmetric n×n matrix whose `uplo`
// triangle is stored at a (leading dimension lda), through LAPACK dsyevd or
// the two stages, dsterf and the scaling dsyevd_2stage applies (eigenvalues
// only), as reduction_for picks with OpenBLAS's thread count now; the
// triangle is overwritten.
std::vector<double> symmetric_eigenvalues(double* a, int n, int lda, char uplo);
std::vector<double> symmetric_eigenvalues(double* a, int n, int lda, char uplo, Reduction how);

}  // namespace basinvol::detail
