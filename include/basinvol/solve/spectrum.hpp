#pragma once
// Spectra of Hessians: the full spectrum (dense LAPACK) or the part of it
// that matters (largest magnitudes, with a certificate for the rest).
#include <basinvol/hessian.hpp>
#include <basinvol/solver_stats.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace basinvol {

// automatic: dense for n < 500; else pivoted Cholesky when the diagonal is
// non-negative, the sketch when that does not certify, dense last.
enum class Method { automatic, dense, cholesky, sketch, lanczos };

// "auto", "dense", "cholesky", "sketch", "lanczos".
const char* method_name(Method m);

// A pairing of eig(H) with listed values: each listed value within
// value_error of its own eigenvalue, every other eigenvalue within
// rest_bound of zero.
struct Pairing {
    std::vector<double> values;  // ascending
    double value_error = 0;
    double rest_bound = 0;
};

// The eigenvalues a solver found, and what is proven about the others.
struct Spectrum {
    std::size_t n = 0;
    std::vector<double> values;  // eigenvalues found, ascending
    bool complete = false;       // values holds all n eigenvalues
    // Every eigenvalue not in `values` has |λ| ≤ rest_bound (Weyl bound from
    // ‖H − VΛVᵀ‖_F); 0 when complete.
    double rest_bound = 0;
    // The found values can be paired one to one with true eigenvalues, each
    // within value_error (Weyl on H − VΘVᵀ, its Cholesky form, or the
    // Cholesky Ritz values' quadratic block bound); the unseen ones are
    // those within rest_bound of zero. 0 when complete.
    double value_error = 0;
    // A second pairing that holds beside the first (sketch, Lanczos): the
    // values clear of the noise-level Ritz values the list also holds, with
    // the quadratic bound, and a rest bound that takes in the values it
    // leaves out (detail::split_pairing). Tried first where it decides the cut.
    std::optional<Pairing> narrower;
    bool partial = false;        // from a partial solver (its bounds get a rounding allowance)
    std::string method;          // what ran: "dense", "lanczos", ...
    std::string note;            // why a fallback happened, if one did
    bool too_large = false;      // a partial method gave up: the rank is above its budget
    std::size_t rank_budget = 0; // that budget, when too_large
    bool rank_estimated = false; // too_large from an estimate of the rank (its trace and ‖H‖_F), not a count
    SolverStats stats;
};

// The workspace the two-stage reduction takes beside an n×n matrix (the
// band, and the larger of the first stage's work array, by LAPACK's own
// sizes, and the second stage's band with room for its bulge: about 100·n
// doubles with OpenBLAS's pthread build, more with its OpenMP build's wider
// band) where it may run, from n = 750 (on some CPUs and thread counts,
// src/solve/dense.cpp); 0 below, where dsyevd's is within the O(n) vectors
// every estimate carries.
std::size_t two_stage_workspace_bytes(std::size_t n) noexcept;

// All n eigenvalues through LAPACK (dsyevd, or the two-stage reduction,
// its second stage basinvol's, where that runs faster; eigenvalues only).
// Consumes the matrix: the Hessian's storage is released or overwritten.
Spectrum dense_spectrum(Hessian& h);

}  // namespace basinvol

namespace basinvol {

struct PartialOptions {
    // Give up (return nullopt) rather than use more than this many Ritz pairs;
    // past about n/4 the dense solver is cheaper.
    std::size_t max_k = 0;      // 0: n/4
    std::size_t oversample = 8; // slack a sketch must show before it is trusted to hold the range
    std::uint64_t seed = 20261129;
};

// Blocked randomized range finder with Rayleigh–Ritz ("sketch"): Y = H·Ω
// (Gaussian Ω, k columns), Q = orth(Y), θ = eig(QᵀHQ), grown until the sketch
// has slack; then the certificate ‖H − VΘVᵀ‖_F becomes rest_bound. All BLAS-3,
// three passes over H when the first size suffices. Sets too_large when the
// range does not fit max_k (the caller goes dense).
std::optional<Spectrum> sketch_spectrum(const Hessian& h, const PartialOptions& options = {});

// Pivoted Cholesky for matrices that look positive semi-definite (non-negative
// diagonal): H ≈ LLᵀ with r pivots, the Rayleigh–Ritz values of H on range(L),
// and the certificate ‖H − LLᵀ‖_F (Weyl: the n − r other eigenvalues lie
// within it of zero). Two forms, chosen by the likely rank:
// - columns (likely rank ≤ n/8, float64 storage, or max_k set): reads only
//   the r pivot columns of H, then passes over H: float32 storage forms the
//   Ritz values and the certificate in one; float64 forms the certificate
//   first and lists the values of LLᵀ (within it of H's) when it is at
//   rounding and they are far enough from zero for it not to move the
//   log-volume, else makes a second pass for the Ritz values; gives up past
//   max_k pivots;
// - factored (likely rank > n/8, float32-like storage): LAPACK dpstrf on a
//   float64 copy of H, the Schur complement S = H₂₂ − L₂L₂ᵀ from the stored
//   values, and the Ritz values as eig(RRᵀ + Q₂ᵀSQ₂) with L = QR (the
//   correction Q₂ᵀSQ₂, of norm ≤ ρ, in single precision, its error bound
//   added to value_error, as the float32 column form does), all BLAS-3
//   and all inside the copy (the dense solver's working set); gives up past
//   0.75·n pivots, where dense LAPACK is as fast.
// Empty when the diagonal has a negative entry; too_large when the rank passes
// the budget; an indefinite matrix shows as a large certificate.
std::optional<Spectrum> cholesky_spectrum(const Hessian& h, const PartialOptions& options = {});

// Spectra's SymEigsSolver (Lanczos, largest magnitude) on the Hessian
// operator, with the same certificate. The number of wanted eigenvalues
// doubles until the rest bound is under the dtype cut (n·ε·max|λ|), stops
// shrinking, or reaches max_k; the caller decides whether it certifies.
// Empty when n is too small for Lanczos.
std::optional<Spectrum> lanczos_spectrum(const Hessian& h, const PartialOptions& options = {});

}  // namespace basinvol
