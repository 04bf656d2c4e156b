#pragma once
#include <Eigen/Dense>
// Validating basinvol on toys whose answers are known: compare the computed
// rank, dimension, negative count and log-volume with a dataset's expected_*
// attributes, estimate the volume by Monte Carlo, show the radial estimator's
// bias, and, for toys that record their loss (toy_loss), sample the true loss.
#include <basinvol/analyze.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace basinvol::toy {

enum class Verdict {
    pass,   // a check that agreed
    fail,   // a check that disagreed
    info,   // a measurement shown for comparison, not a check
    error,  // a check that could not be made (counts as a failure)
};
const char* verdict_name(Verdict v);

// One row of the validator's output. `tolerance` is the allowed |measured −
// expected| where it applies; `se` the standard error of a sampled value.
struct Check {
    std::string source;
    std::string check;
    Verdict verdict = Verdict::info;
    std::optional<double> expected, measured, se, tolerance;
    std::string note;
};

struct ValidateOptions {
    AnalyzeOptions analyze;
    // Allowed |log V − expected_log_volume| in nats; empty: the stored-type
    // bound 1e-12·max(1, |log V|) + 2·ε·‖H‖_F·Σ_curved 1/|λ| (docs/toys.md).
    std::optional<double> logv_tol;
    std::size_t samples = 200000;        // Monte Carlo points per estimate
    std::uint64_t seed = 20240611;       // every estimate's generator derives from it
    double sigmas = 4;                   // agreement: within this many standard errors
    std::size_t mc_max_rank = 8;         // Monte Carlo only for curved rank ≤ this
    std::size_t mc_max_n = 2000;         // ... and n ≤ this (it needs the eigenvectors)
    std::size_t scan_max_n = 8;          // the all-direction threshold scan only for n ≤ this
    std::vector<double> scan_factors = {1, 1e-1, 1e-2, 1e-3, 1e-4};  // T_k = T · factor
    std::size_t radial_directions = 4000;
};

// Whether a dataset carries anything to validate (an expected_* number or toy_loss).
bool has_expectations(const Attributes& attrs);

// Throws UsageError when an option is out of its range.
void check_options(const ValidateOptions& options);

// Every check for one dataset. Never throws for problems of the input: they
// become `error` rows. Throws UsageError for bad options.
std::vector<Check> validate_hessian(const HessianInfo& info, const ValidateOptions& options);

// The tolerance on log V that rounding to the stored type allows: each
// eigenvalue moves by at most about δ = max(ε·‖H‖_F, n·η/2) (Weyl; η the
// subnormal step 2^-1074, for an n×n matrix of subnormal entries), so log V
// moves by at most ½ Σ δ/|λ|; twice that (the rotation's own rounding), plus
// summation error.
double logv_tolerance(const std::vector<double>& curved_abs, long double frobenius, double eps, std::size_t n,
                      double log_volume);

// The tolerance for a matrix stored in a coarser type (float32) than it was
// computed in: each stored entry is within u·|H_jk| of the exact one
// (round to nearest, u = ε/2) or, among the type's subnormal numbers, of
// half its step (`half_step`), and the generation in double adds at most
// about n·ε₆₄·‖H‖_F in norm. To first order log V moves by
// ½·Σ_jk E_jk·M_jk with M = Σ_curved v vᵀ/λ, so by at most
// ½·Σ|M_jk|·(u·|H_jk| + half_step) (plus ½·n·ε₆₄·‖H‖_F·Σ 1/|λ|); the
// tolerance is twice that, plus summation error. Far tighter than the Weyl
// bound of logv_tolerance, which charges every eigenvalue the whole ε·‖H‖_F.
double entrywise_logv_tolerance(const Eigen::MatrixXd& H, double tol, bool drop_negative, double u, double log_volume,
                                double half_step = 0);

}  // namespace basinvol::toy
