#pragma once
// The basin's dimension and log-volume inside its curved subspace.
//
//   log V = log ω_r + (r/2)·log(2T) − ½ Σ_{|λ|>tol} log|λ|,   ω_k = π^(k/2) / Γ(k/2 + 1)
#include <cstddef>
#include <string>
#include <vector>

namespace basinvol {

enum class NegativePolicy {
    abs,   // curved = {|λ| > tol}; the volume uses |λ|; saddles flagged
    drop,  // negative directions are left out of the volume (and counted)
    last,  // as abs, but saddles rank after every true minimum
};

struct Measurement {
    std::size_t n = 0;
    std::size_t rank = 0;      // curved directions used in the volume
    std::size_t dim = 0;       // flat directions, |λ| ≤ tol
    std::size_t negative = 0;  // λ < −tol
    double log_volume = 0;     // natural log
    double log10_volume = 0;
    double sum_log = 0;        // Σ log|λ| over the `rank` values the volume uses
};

// log of the volume of the unit k-ball, ω_k.
double log_unit_ball(std::size_t k);

// Measures a basin from the eigenvalues that are known (those not in
// `values` are flat, |λ| ≤ tol). Throws UsageError for T ≤ 0.
Measurement measure(const std::vector<double>& values, std::size_t n, double tol, double threshold,
                    NegativePolicy policy);
// The same over values[0, count): a part of a longer spectrum.
Measurement measure(const double* values, std::size_t count, std::size_t n, double tol, double threshold,
                    NegativePolicy policy);

// A bound on the error of log V when each value in `values` is within `error`
// of the true eigenvalue it stands for and the kept set is right:
//   ½ Σ_kept −log(1 − error/|λ|)
// (infinite when a kept |λ| ≤ error).
double log_volume_error(const std::vector<double>& values, double tol, double error, NegativePolicy policy);

// The regularized volume the method replaces, over all n directions:
//   log V_λ = log ω_n + (n/2)·log(2T) − ½ Σ log(|λ_i| + λ)
// Eigenvalues not in `values` count as 0.
double regularized_log_volume(const std::vector<double>& values, std::size_t n, double threshold, double lambda);

}  // namespace basinvol
