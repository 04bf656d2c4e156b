#pragma once
// Monte Carlo volumes of sublevel sets, the radial (random-direction)
// estimator, and the volume-scaling exponent fit. Seeded, deterministic.
#include <Eigen/Dense>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace basinvol::toy {

// A hit-or-miss estimate over a box B = Π [−a_i, a_i]:
//   V̂ = |B|·h/N,   SE = |B|·sqrt(p̂(1 − p̂)/N),   p̂ = h/N.
struct Estimate {
    std::size_t samples = 0;
    std::size_t hits = 0;
    double log_box = 0;    // log |B|
    double log_value = 0;  // log V̂ (−inf when no sample hit)
    double se_log = 0;     // SE / V̂: the standard error of log V̂ (delta method)
    double value_over(double log_reference) const;  // V̂ / exp(log_reference)
    double se_over(double log_reference) const;     // SE / exp(log_reference)
};

// Volume of {z ∈ B : inside(z)}; z has half_widths.size() coordinates.
Estimate box_volume(const std::vector<double>& half_widths, const std::function<bool(const double*)>& inside,
                    std::size_t samples, std::uint64_t seed);

// Volume of the ellipsoid {z : ½ zᵀ M z ≤ T} (M r×r, positive definite),
// sampled in its bounding box in M's eigenbasis-aligned coordinates: the box
// half-widths are sqrt(2T/M_ii) for a diagonal-dominant M, which is what the
// validator passes (M is the Hessian restricted to its own curved eigenvectors).
Estimate ellipsoid_volume(const Eigen::MatrixXd& M, double T, std::size_t samples, std::uint64_t seed);

// The naive random-direction estimator: for unit directions v uniform on the
// sphere of the curved subspace, the sublevel boundary sits at radius
// R(v) = sqrt(2T / Σ|λ_i| v_i²), and
//   log V_radial = log ω_r + r · mean_v log R(v).
// For large r, vᵀHv concentrates at the arithmetic mean of |λ|, so the
// estimate falls below the exact log V by about ½(ln AM − ln GM) per dimension.
struct Radial {
    std::size_t directions = 0;
    double log_volume = 0;   // the radial estimate
    double se = 0;           // its standard error (nats)
    double exact = 0;        // log V from the same |λ|
    double gap_per_dim = 0;  // (exact − radial) / r
    double amgm_per_dim = 0; // ½(ln AM − ln GM) of |λ|, the large-r limit of the gap
};
Radial radial_estimate(const std::vector<double>& curved_abs, double T, std::size_t directions, std::uint64_t seed);

// log V at several thresholds, and the fitted exponent of V ∝ T^slope
// (weighted least squares of log V̂ on log T with weights 1/se_log²).
struct ScalingPoint {
    double T = 0;
    Estimate estimate;
};
struct ScalingFit {
    std::vector<ScalingPoint> points;
    double slope = 0;
    double se = 0;
    bool ok = false;  // at least two points with hits
};
ScalingFit fit_scaling(std::vector<ScalingPoint> points);

}  // namespace basinvol::toy
