#include <basinvol/error.hpp>
#include <basinvol/measure/volume.hpp>
#include <basinvol/toy/montecarlo.hpp>
#include <basinvol/toy/spectrum.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

namespace basinvol::toy {

double Estimate::value_over(double log_reference) const {
    return static_cast<double>(hits) / static_cast<double>(samples) * std::exp(log_box - log_reference);
}

double Estimate::se_over(double log_reference) const {
    const double p = static_cast<double>(hits) / static_cast<double>(samples);
    return std::sqrt(p * (1 - p) / static_cast<double>(samples)) * std::exp(log_box - log_reference);
}

Estimate box_volume(const std::vector<double>& half_widths, const std::function<bool(const double*)>& inside,
                    std::size_t samples, std::uint64_t seed) {
    if (samples < 2) throw UsageError("Monte Carlo needs at least 2 samples, got " + std::to_string(samples));
    Estimate e;
    e.samples = samples;
    for (double a : half_widths) e.log_box += std::log(2 * a);
    Rng rng(seed);
    std::vector<double> z(half_widths.size());
    for (std::size_t s = 0; s < samples; ++s) {
        for (std::size_t i = 0; i < z.size(); ++i) z[i] = half_widths[i] * (2 * rng.uniform() - 1);
        if (inside(z.data())) ++e.hits;
    }
    const double p = static_cast<double>(e.hits) / static_cast<double>(samples);
    if (e.hits == 0) {
        e.log_value = -std::numeric_limits<double>::infinity();
        e.se_log = std::numeric_limits<double>::infinity();
    } else {
        e.log_value = e.log_box + std::log(p);
        e.se_log = std::sqrt((1 - p) / (p * static_cast<double>(samples)));
    }
    return e;
}

Estimate ellipsoid_volume(const Eigen::MatrixXd& M, double T, std::size_t samples, std::uint64_t seed) {
    const auto r = M.rows();
    if (r == 0) return box_volume({}, [](const double*) { return true; }, samples, seed);
    if (!(M.diagonal().minCoeff() > 0)) throw NumericError("ellipsoid_volume: the quadratic form is not positive definite");
    // Sampled as {y : ½ yᵀmy ≤ 1}, m = D^-½·M·D^-½ with D_ii = 4^k_i the
    // least power of four above M_ii (exact: each m_ij is M_ij·2^-(k_i+k_j),
    // m_ii in [1/4, 1)), and z = sqrt(T)·D^-½·y: the box stays finite for any T and
    // any spread of M's diagonal, and log V = (r/2)·log T − Σ k_i·log 2 plus
    // the log-volume of that set.
    std::vector<int> k(static_cast<std::size_t>(r));
    double log_scale = 0;
    for (Eigen::Index i = 0; i < r; ++i) {
        int e = 0;
        std::frexp(M(i, i), &e);
        k[static_cast<std::size_t>(i)] = (e + (e > 0)) / 2;  // ceil(e / 2)
        log_scale -= k[static_cast<std::size_t>(i)] * M_LN2;
    }
    Eigen::MatrixXd m(r, r);
    for (Eigen::Index j = 0; j < r; ++j)
        for (Eigen::Index i = 0; i < r; ++i)
            m(i, j) = std::ldexp(M(i, j), -k[static_cast<std::size_t>(i)] - k[static_cast<std::size_t>(j)]);
    std::vector<double> half(static_cast<std::size_t>(r));
    for (Eigen::Index i = 0; i < r; ++i)  // ½·m_ii·y_i² ≤ 1 on the axis; off-diagonal entries are rounding-sized here
        half[static_cast<std::size_t>(i)] = std::sqrt(2 / m(i, i));
    Eigen::VectorXd y(r);
    Estimate e = box_volume(
        half,
        [&](const double* x) {
            for (Eigen::Index i = 0; i < r; ++i) y(i) = x[i];
            return 0.5 * y.dot(m * y) <= 1;
        },
        samples, seed);
    const double shift = 0.5 * static_cast<double>(r) * std::log(T) + log_scale;
    e.log_box += shift;
    e.log_value += shift;
    return e;
}

Radial radial_estimate(const std::vector<double>& curved_abs, double T, std::size_t directions, std::uint64_t seed) {
    if (directions < 2) throw UsageError("the radial estimator needs at least 2 directions");
    Radial out;
    out.directions = directions;
    const std::size_t r = curved_abs.size();
    if (r == 0) return out;
    // The values are taken relative to the largest, so that vᵀHv neither
    // underflows (subnormal curvatures) nor overflows; its log adds back.
    const double scale = *std::max_element(curved_abs.begin(), curved_abs.end());
    const double log_scale = std::log(scale);
    Rng rng(seed);
    long double sum = 0, sum2 = 0;
    std::vector<double> v(r);
    for (std::size_t k = 0; k < directions; ++k) {
        double norm2 = 0, quad = 0;
        for (std::size_t i = 0; i < r; ++i) {
            v[i] = rng.normal();
            norm2 += v[i] * v[i];
        }
        for (std::size_t i = 0; i < r; ++i) quad += curved_abs[i] / scale * v[i] * v[i];
        // R(v) = sqrt(2T / vᵀHv) for the unit vector v/|v|.
        const double log_R = 0.5 * (M_LN2 + std::log(T) - log_scale - std::log(quad / norm2));
        sum += log_R;
        sum2 += static_cast<long double>(log_R) * log_R;
    }
    const double m = static_cast<double>(sum / directions);
    const double var = std::max(0.0, static_cast<double>(sum2 / directions) - m * m);
    const double rr = static_cast<double>(r);
    out.log_volume = log_unit_ball(r) + rr * m;
    out.se = rr * std::sqrt(var / static_cast<double>(directions - 1));
    long double sum_log = 0, sum_lin = 0;
    for (double x : curved_abs) {
        sum_log += std::log(static_cast<long double>(x));
        sum_lin += x / scale;
    }
    out.exact = log_unit_ball(r) + rr / 2 * (M_LN2 + std::log(T)) - static_cast<double>(sum_log / 2);
    out.gap_per_dim = (out.exact - out.log_volume) / rr;
    // ½(ln AM − ln GM)
    out.amgm_per_dim = 0.5 * (std::log(static_cast<double>(sum_lin / r)) + log_scale - static_cast<double>(sum_log / r));
    return out;
}

ScalingFit fit_scaling(std::vector<ScalingPoint> points) {
    ScalingFit f;
    f.points = std::move(points);
    double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
    int used = 0;
    for (const auto& p : f.points) {
        if (p.estimate.hits == 0 || !std::isfinite(p.estimate.se_log)) continue;
        // A set that fills its box has se 0; one sample's worth keeps the weight finite.
        const double s = std::max(p.estimate.se_log, 1.0 / static_cast<double>(p.estimate.samples));
        const double w = 1 / (s * s);
        const double x = std::log(p.T), y = p.estimate.log_value;
        sw += w, sx += w * x, sy += w * y, sxx += w * x * x, sxy += w * x * y;
        ++used;
    }
    const double det = sw * sxx - sx * sx;
    if (used < 2 || !(det > 0)) return f;
    f.slope = (sw * sxy - sx * sy) / det;
    f.se = std::sqrt(sw / det);
    f.ok = true;
    return f;
}

}  // namespace basinvol::toy
