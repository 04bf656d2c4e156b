#pragma once
// Where the spectrum is cut into flat (|λ| ≤ tol) and curved (|λ| > tol)
// directions, and how sure that cut is. The long form is in docs/method.md.
//
// The cut is decided from what is *known* of the spectrum: exact values
// (dense), or Ritz values known to within `value_error` plus n − k unseen
// eigenvalues within `rest_bound` of zero (partial solvers). choose_cut
// applies the rule to the known values and says whether every full spectrum
// consistent with that knowledge would give the same cut (`decided`): the
// same kept set, the same signs, the same ambiguity flag and the same band.
// Only a decided cut may stand for the full spectrum's answer.
#include <algorithm>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace basinvol {

enum class CutRule {
    automatic,  // dtype where a clear gap straddles it, else the largest clear gap between the floor and dtype
    dtype,      // tol = max(max|λ| · n · ε(stored type), noise floor), as numpy.linalg.matrix_rank
    gap,        // the largest log-gap of the spectrum above the floor
};

struct CutOptions {
    CutRule rule = CutRule::automatic;
    std::optional<double> rtol;  // explicit: tol = rtol · max|λ|
    std::optional<double> atol;  // explicit: tol = atol (with rtol: the larger)
    double min_gap = 1.0;        // decades; a smaller gap makes the rank ambiguous
};

// Magnitudes sorted descending, held by something other than a list (a
// structure's values, never all in memory at once). Every query answers as
// the sorted list would.
class SortedMagnitudes {
public:
    virtual ~SortedMagnitudes() = default;
    virtual std::size_t size() const = 0;
    virtual double at(std::size_t i) const = 0;  // the i-th largest, 0-based
    // The from-th to the (to − 1)-th largest, in that order (to ≤ size()):
    // at() of each, which a structure answers for a run of positions at once.
    virtual std::vector<double> range(std::size_t from, std::size_t to) const {
        std::vector<double> out;
        for (std::size_t i = from; i < to; ++i) out.push_back(at(i));
        return out;
    }
    // The length of the longest prefix whose values all satisfy `holds`,
    // which must be monotone: true for a value, true for every larger one.
    virtual std::size_t prefix_where(const std::function<bool(double)>& holds) const = 0;
    // Visits the values largest first until `visit` returns false.
    virtual void scan(const std::function<bool(double)>& visit) const = 0;
    // Visits every value in no set order (cheaper than scan), a span at a
    // time; a span is valid only during its call.
    virtual void visit_spans(const std::function<void(const double*, std::size_t)>& visit) const = 0;
};

// The magnitudes as a list sorted descending (held by reference: the list
// must outlive it).
class ListMagnitudes final : public SortedMagnitudes {
public:
    explicit ListMagnitudes(const std::vector<double>& a) : a_(a) {}
    std::size_t size() const override { return a_.size(); }
    double at(std::size_t i) const override { return a_[i]; }
    std::vector<double> range(std::size_t from, std::size_t to) const override {
        return {a_.begin() + static_cast<std::ptrdiff_t>(from), a_.begin() + static_cast<std::ptrdiff_t>(to)};
    }
    std::size_t prefix_where(const std::function<bool(double)>& holds) const override {
        return static_cast<std::size_t>(std::partition_point(a_.begin(), a_.end(), holds) - a_.begin());
    }
    void scan(const std::function<bool(double)>& visit) const override {
        for (double x : a_)
            if (!visit(x)) return;
    }
    void visit_spans(const std::function<void(const double*, std::size_t)>& visit) const override {
        visit(a_.data(), a_.size());
    }

private:
    const std::vector<double>& a_;
};

// What is known of a spectrum's magnitudes.
struct Magnitudes {
    std::vector<double> known;  // |λ| found, sorted descending
    std::shared_ptr<const SortedMagnitudes> sorted;  // when set, the known values instead of `known`
    std::size_t n = 0;          // size of the matrix
    // The true eigenvalues can be paired one to one with known ∪ {0}ⁿ⁻ᵏ so
    // that each known value is within value_error of its partner and each
    // unseen one has |λ| ≤ rest_bound. Both 0 for an exact (dense) spectrum.
    double value_error = 0;
    double rest_bound = 0;
    double stored_eps = 0;  // ε of the stored type
    double frobenius = 0;   // ‖H‖_F
    double input_noise = 0; // error of the input itself (absolute): measured asymmetry or stated,
                            // or of how a structure's values were computed
    double input_error = 0; // the input's alone: what another draw of it may change
};

// The tolerance band reported with every cut: the dims at max(tol·10, floor)
// and at min(tol, max(tol/10, floor − reach)), widened to tol ± floor (the
// lower edge never under floor − reach) when a value over the floor lies
// within the floor of an explicit or dtype cut (or one under it within the
// reach), and to the dims of tied
// gaps; reach is twin_reach(), how far apart two solves of the same Hessian
// relabelled put a value (one that close under the floor may be over it in
// the other, and a cut at the floor keep it). Where
// they differ, a cut within a decade of the chosen one (or, for a cut
// under the floor, one at the floor) gives another dimension. An explicit
// cut under the floor has dim_low 0: noise may lift every value over it.
constexpr double band_factor = 10.0;

struct Cut {
    double tol = 0;              // |λ| ≤ tol is flat
    std::optional<double> gap;   // log10(smallest kept / max(largest dropped, floor)); empty = unbounded;
                                 // a partial spectrum's: the least its knowledge allows (dropped up to rest_bound)
    double floor = 0;            // noise_floor(): below it eigenvalues are noise
    double top = 0;              // max|λ| (a partial spectrum's: its estimate of the largest)
    std::string rule;            // "dtype", "gap", "atol", "rtol"
    bool ambiguous = false;      // gap under min_gap, nothing kept above the floor, tied gaps, or a value near a rule's tol
    bool below_floor = false;    // an explicit tol under the floor
    bool decided = true;         // the full spectrum gives this same cut (always true when exact)
    std::size_t kept = 0;        // |λ| > tol (count)
    std::size_t dim_low = 0;     // flat directions at band_tol_low: min(tol, max(tol/10, floor − reach)), or lower (above)
    std::size_t dim_high = 0;    // flat directions at band_tol_high: max(tol·10, floor), or higher (above)
    // Cuts that keep what dim_low's and dim_high's keep (|λ| > band_tol_low
    // keeps n − dim_low values; tied gaps included): where the band's counts
    // of other kinds (negative values) are read.
    double band_tol_low = 0;
    double band_tol_high = 0;
    // The input's part of the floor, max(ε(stored)·‖H‖_F, input error): how
    // far another draw of the input may move each eigenvalue (Weyl).
    double input_floor = 0;
    // The fewest flat directions another draw of the input may show: each
    // flat value moves by up to input_floor, and a relabelled solve's by
    // the twins' reach more, so one over lift_tol = tol − both may come out
    // kept (a value under the band's lower end included, which the band
    // does not count). At most dim_low; 0, and lift_tol −1, where tol lies
    // within both of zero (every flat value, exact zeros included, of
    // either sign) or a partial spectrum cannot say.
    std::size_t dim_lifted = 0;
    double lift_tol = 0;
    // Every value lies within the noise (a stated or measured error past all
    // of H's eigenvalues), or a dtype cut keeps nothing while values lie over
    // the floor: the band is every dim, and any value under the floor may be
    // negative, whatever sign a solver happened to compute or list.
    bool all_noise = false;
};

// The noise floor of a spectrum: max(ε(stored)·‖H‖_F, 8·√n·ε(float64)·‖H‖_F,
// input noise): the stored type's rounding, what a double-precision solver
// resolves, and the input's own error.
double noise_floor(const Magnitudes& m);

// Chooses the cut. Throws UsageError on negative rtol/atol/min_gap.
Cut choose_cut(const Magnitudes& m, const CutOptions& options);

}  // namespace basinvol
