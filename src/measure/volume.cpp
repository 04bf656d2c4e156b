#include <basinvol/error.hpp>
#include <basinvol/measure/volume.hpp>

#include <algorithm>
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

double Eigenvalues::norm() const {
    double f2 = 0, largest = 0;
    bool finite = true;
    for_each_span([&](const double* v, std::size_t k) {
        for (std::size_t i = 0; i < k; ++i) {
            f2 += v[i] * v[i];
            largest = std::max(largest, std::abs(v[i]));
            finite = finite && std::isfinite(v[i]);
        }
    });
    if (!finite) return INFINITY;
    if (largest == 0 || (std::isfinite(f2) && largest >= 1e-150 && largest <= 1e150)) return std::sqrt(f2);
    double scaled = 0;
    for_each_span([&](const double* v, std::size_t k) {
        for (std::size_t i = 0; i < k; ++i) scaled += (v[i] / largest) * (v[i] / largest);
    });
    return largest * std::sqrt(scaled);
}

KeptSums Eigenvalues::kept(double tol, double error) const {
    KeptSums k;
    for_each([&](double v) {
        const double a = std::abs(v);
        if (!(a > tol)) return;
        const int sign = v < 0;
        ++k.count[sign];
        k.log_sum[sign] += std::log(static_cast<long double>(a));
        if (error == 0) return;
        if (!(a > error)) k.unbounded[sign] = true;
        // |log|λ| − log|θ|| ≤ −log(1 − e/|θ|) for |λ − θ| ≤ e < |θ|
        else k.error_sum[sign] -= std::log1p(-error / a);
    });
    return k;
}

Measurement measure(const Eigenvalues& values, std::size_t n, double tol, double threshold, NegativePolicy policy) {
    if (!(threshold > 0) || !std::isfinite(threshold))
        throw UsageError("the loss threshold T must be a positive number, got " + value_text(threshold));
    const KeptSums k = values.kept(tol, 0.0);
    const bool with_negative = policy != NegativePolicy::drop;
    Measurement m;
    m.n = n;
    m.negative = k.count[1];
    m.dim = n - k.count[0] - k.count[1];
    m.rank = k.count[0] + (with_negative ? k.count[1] : 0);
    const long double sum_log = k.log_sum[0] + (with_negative ? k.log_sum[1] : 0.0L);
    m.sum_log = static_cast<double>(sum_log);
    const double r = static_cast<double>(m.rank);
    // log V = log ω_r + (r/2)·log(2T) − ½ Σ log|λ|
    m.log_volume = log_unit_ball(m.rank) + r / 2 * log_2T(threshold) - static_cast<double>(sum_log / 2);
    m.log10_volume = m.log_volume / std::log(10.0);
    return m;
}

Measurement measure(const std::vector<double>& values, std::size_t n, double tol, double threshold,
                    NegativePolicy policy) {
    return measure(EigenvalueList(values), n, tol, threshold, policy);
}

double regularized_log_volume(const Eigenvalues& values, std::size_t n, double threshold, double lambda) {
    if (!(lambda > 0) || !std::isfinite(lambda))
        throw UsageError("regularized", "must be a positive number, got " + value_text(lambda));
    long double sum_log = 0;
    values.for_each([&](double v) { sum_log += std::log(static_cast<long double>(std::abs(v)) + lambda); });
    sum_log += static_cast<long double>(n - values.size()) * std::log(static_cast<long double>(lambda));
    const double nn = static_cast<double>(n);
    return log_unit_ball(n) + nn / 2 * log_2T(threshold) - static_cast<double>(sum_log / 2);
}

double regularized_log_volume_error(const Eigenvalues& values, std::size_t n, double lambda, double error) {
    if (!(error > 0)) return 0;
    auto term = [&](double v) {
        const double room = std::abs(v) + lambda - error;
        return room > 0 ? std::log1p(error / room) / 2 : INFINITY;
    };
    long double sum = 0;
    values.for_each([&](double v) { sum += term(v); });
    if (n > values.size()) sum += static_cast<long double>(n - values.size()) * term(0.0);
    return static_cast<double>(sum);
}

double regularized_log_volume(const std::vector<double>& values, std::size_t n, double threshold, double lambda) {
    return regularized_log_volume(EigenvalueList(values), n, threshold, lambda);
}

double log_volume_error(const Eigenvalues& values, double tol, double error, NegativePolicy policy) {
    const KeptSums k = values.kept(tol, error);
    const bool with_negative = policy != NegativePolicy::drop;
    if (k.unbounded[0] || (with_negative && k.unbounded[1])) return INFINITY;
    return static_cast<double>((k.error_sum[0] + (with_negative ? k.error_sum[1] : 0.0L)) / 2);
}

double log_volume_error(const std::vector<double>& values, double tol, double error, NegativePolicy policy) {
    return log_volume_error(EigenvalueList(values), tol, error, policy);
}

}  // namespace basinvol
