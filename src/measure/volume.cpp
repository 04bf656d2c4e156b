#include <basinvol/error.hpp>
#include <basinvol/measure/volume.hpp>

#include <cmath>
#include <string>

namespace basinvol {

namespace {
// log(2T) without forming 2T, which overflows for T > DBL_MAX/2.
double log_2T(double threshold) { return M_LN2 + std::log(threshold); }
}  // namespace

double log_unit_ball(std::size_t k) {
    const double h = static_cast<double>(k) / 2;
    // log ω_k = (k/2)·log π − log Γ(k/2 + 1); lgamma, never tgamma (k can be 10^5).
    return h * std::log(M_PI) - std::lgamma(h + 1);
}

Measurement measure(const double* values, std::size_t count, std::size_t n, double tol, double threshold,
                    NegativePolicy policy) {
    if (!(threshold > 0) || !std::isfinite(threshold))
        throw UsageError("the loss threshold T must be a positive number, got " + std::to_string(threshold));
    Measurement m;
    m.n = n;
    long double sum_log = 0;
    std::size_t curved = 0;
    for (std::size_t i = 0; i < count; ++i) {
        const double v = values[i], a = std::abs(v);
        if (!(a > tol)) continue;
        ++curved;
        if (v < 0) ++m.negative;
        if (v < 0 && policy == NegativePolicy::drop) continue;
        ++m.rank;
        sum_log += std::log(static_cast<long double>(a));
    }
    m.dim = n - curved;
    m.sum_log = static_cast<double>(sum_log);
    const double r = static_cast<double>(m.rank);
    // log V = log ω_r + (r/2)·log(2T) − ½ Σ log|λ|
    m.log_volume = log_unit_ball(m.rank) + r / 2 * log_2T(threshold) - static_cast<double>(sum_log / 2);
    m.log10_volume = m.log_volume / std::log(10.0);
    return m;
}

Measurement measure(const std::vector<double>& values, std::size_t n, double tol, double threshold,
                    NegativePolicy policy) {
    return measure(values.data(), values.size(), n, tol, threshold, policy);
}

double regularized_log_volume(const std::vector<double>& values, std::size_t n, double threshold, double lambda) {
    if (!(lambda > 0) || !std::isfinite(lambda))
        throw UsageError("regularized", "must be a positive number, got " + std::to_string(lambda));
    long double sum_log = 0;
    for (double v : values) sum_log += std::log(static_cast<long double>(std::abs(v)) + lambda);
    sum_log += static_cast<long double>(n - values.size()) * std::log(static_cast<long double>(lambda));
    const double nn = static_cast<double>(n);
    return log_unit_ball(n) + nn / 2 * log_2T(threshold) - static_cast<double>(sum_log / 2);
}

double log_volume_error(const std::vector<double>& values, double tol, double error, NegativePolicy policy) {
    long double sum = 0;
    for (double v : values) {
        const double a = std::abs(v);
        if (!(a > tol) || (v < 0 && policy == NegativePolicy::drop)) continue;
        if (!(a > error)) return INFINITY;
        // |log|λ| − log|θ|| ≤ −log(1 − e/|θ|) for |λ − θ| ≤ e < |θ|
        sum -= std::log1p(-error / a);
    }
    return static_cast<double>(sum / 2);
}

}  // namespace basinvol
