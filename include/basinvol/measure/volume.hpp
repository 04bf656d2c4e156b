#pragma once
// The basin's dimension and log-volume inside its curved subspace.
//
//   log V = log ω_r + (r/2)·log(2T) − ½ Σ_{|λ|>tol} log|λ|,   ω_k = π^(k/2) / Γ(k/2 + 1)
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace basinvol {

// What the eigenvalues with |λ| > tol add up to, by sign ([0]: λ > tol,
// [1]: λ < −tol), for a value error e.
struct KeptSums {
    std::size_t count[2] = {0, 0};
    long double log_sum[2] = {0, 0};    // Σ log|λ|
    long double error_sum[2] = {0, 0};  // ≥ Σ −log(1 − e/|λ|): each log's error when λ is within e of the truth
    bool unbounded[2] = {false, false}; // some kept |λ| ≤ e
};

// Eigenvalues visited one at a time, in no set order: a stored list, or a
// structure's values that are never all in memory at once (a Kronecker
// part's products).
class Eigenvalues {
public:
    virtual ~Eigenvalues() = default;
    virtual std::size_t size() const = 0;
    // Visits the values a span at a time, in no set order; a span is valid
    // only during its call. Loops over millions of values (a Kronecker
    // part's products) run inside `visit`, not one call per value.
    virtual void for_each_span(const std::function<void(const double*, std::size_t)>& visit) const = 0;
    // The same, one value at a time.
    void for_each(const std::function<void(double)>& visit) const {
        for_each_span([&](const double* v, std::size_t k) {
            for (std::size_t i = 0; i < k; ++i) visit(v[i]);
        });
    }
    // ‖values‖₂ (a Hessian's ‖H‖_F from its eigenvalues): the squares summed
    // in double, and taken again scaled by the largest magnitude where it
    // lies outside [1e-150, 1e150] (squares overflow or lose their digits) or
    // the sum overflowed; +inf when a value is not finite.
    double norm() const;
    // The sums over the kept values; by default each value in turn, the error
    // sum exactly. A structure may sum in closed form (and bound the error sum).
    virtual KeptSums kept(double tol, double error) const;
};

// A stored list, [values, values + count).
class EigenvalueList final : public Eigenvalues {
public:
    EigenvalueList(const double* values, std::size_t count) : v_(values), k_(count) {}
    explicit EigenvalueList(const std::vector<double>& values) : v_(values.data()), k_(values.size()) {}
    explicit EigenvalueList(std::vector<double>&&) = delete;  // a view: the list must outlive it
    std::size_t size() const override { return k_; }
    void for_each_span(const std::function<void(const double*, std::size_t)>& visit) const override {
        visit(v_, k_);
    }

private:
    const double* v_;
    std::size_t k_;
};

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
Measurement measure(const Eigenvalues& values, std::size_t n, double tol, double threshold, NegativePolicy policy);
Measurement measure(const std::vector<double>& values, std::size_t n, double tol, double threshold,
                    NegativePolicy policy);

// A bound on the error of log V when each value in `values` is within `error`
// of the true eigenvalue it stands for and the kept set is right:
//   ½ Σ_kept −log(1 − error/|λ|)
// (infinite when a kept |λ| ≤ error).
double log_volume_error(const Eigenvalues& values, double tol, double error, NegativePolicy policy);
double log_volume_error(const std::vector<double>& values, double tol, double error, NegativePolicy policy);

// The regularized volume the method replaces, over all n directions:
//   log V_λ = log ω_n + (n/2)·log(2T) − ½ Σ log(|λ_i| + λ)
// Eigenvalues not in `values` count as 0.
double regularized_log_volume(const Eigenvalues& values, std::size_t n, double threshold, double lambda);
double regularized_log_volume(const std::vector<double>& values, std::size_t n, double threshold, double lambda);

// A bound on how far the computed values' errors (each within `error` of
// the true one; the n − size unlisted ones within it of 0) move
// regularized_log_volume: ½·Σ log(1 + error/(|λ_i| + λ − error)) over all n,
// infinite when an |λ_i| + λ lies within `error` of 0.
double regularized_log_volume_error(const Eigenvalues& values, std::size_t n, double lambda, double error);

}  // namespace basinvol
