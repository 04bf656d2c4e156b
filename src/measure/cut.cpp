#include <basinvol/error.hpp>
#include <basinvol/measure/cut.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

namespace basinvol {
namespace {

// A closed range of possible values of one quantity.
struct Range {
    double lo = 0, hi = 0;
};

// What is known of the true magnitudes m_0 ≥ m_1 ≥ … ≥ m_{n−1} (and m_n = 0,
// "past the end"): each lies in [lo(i), hi(i)]. With values x_j each in its
// own interval [l_j, u_j], the i-th largest x lies between the i-th largest l
// and the i-th largest u. Known value a_i gives [a_i − e, a_i + e], an unseen
// one [0, ρ]; the i-th largest upper end is at most max(a_i + e, ρ) for i < k
// and at most ρ after (at most k upper ends exceed ρ). A complete, exact
// spectrum has lo = hi = mid.
struct Knowledge {
    const std::vector<double>& a;
    std::size_t k, n;
    double e, rho, floor;

    double mid(std::size_t i) const { return i < k ? a[i] : 0.0; }
    double lo(std::size_t i) const { return i < k ? std::max(0.0, a[i] - e) : 0.0; }
    double hi(std::size_t i) const { return i < k ? std::max(a[i] + e, rho) : i < n ? rho : 0.0; }
    double clamp(double v) const { return std::max(v, floor); }  // below the floor a value is noise
    bool exact() const { return e == 0 && rho == 0; }

    // Candidate gap below position i (between m_i and m_{i+1}), in decades,
    // with its lower side clamped to the floor.
    double gap_mid(std::size_t i) const { return std::log10(mid(i)) - std::log10(clamp(mid(i + 1))); }
    Range gap_range(std::size_t i) const {
        return {std::log10(lo(i)) - std::log10(clamp(hi(i + 1))), std::log10(hi(i)) - std::log10(clamp(lo(i + 1)))};
    }
    // The cut a gap places: the geometric mean of its sides.
    double cut_mid(std::size_t i) const { return std::sqrt(mid(i) * clamp(mid(i + 1))); }
    Range cut_range(std::size_t i) const {
        return {std::sqrt(lo(i) * clamp(lo(i + 1))), std::sqrt(hi(i) * clamp(hi(i + 1)))};
    }
};

// How many magnitudes exceed a tol known to lie in `t`, nominally (at t_mid
// over the known values) and whether every consistent spectrum agrees.
struct Count {
    std::size_t value = 0;
    bool decided = true;
};

Count count_above(const Knowledge& K, double t_mid, Range t) {
    Count c;
    for (std::size_t i = 0; i < K.k; ++i)
        if (K.mid(i) > t_mid) ++c.value;
    if (K.exact()) return c;
    std::size_t surely = 0, maybe = 0;
    for (std::size_t i = 0; i < K.k; ++i) {
        if (K.lo(i) > t.hi) ++surely;
        if (K.hi(i) > t.lo) ++maybe;
    }
    if (K.k < K.n && K.rho > t.lo) maybe += K.n - K.k;
    c.decided = surely == maybe && surely == c.value;
    return c;
}

// Tri-state comparison of a ranged quantity with a threshold: decided when
// the whole range lies on one side.
bool decided_ge(Range r, double threshold) { return r.lo >= threshold || r.hi < threshold; }

// The largest clear gap whose upper side is above the floor, whose cut is at
// or under `ceiling` and which spans at least `min_gap` decades (and more
// than 0); the first of equal gaps. Positions past the known values hold
// nothing above the floor nominally; all unseen positions share one range,
// so position k stands for them when checking that no other gap could win.
struct Choice {
    bool found = false;
    std::size_t at = 0;
    bool decided = true;
};

Choice largest_gap(const Knowledge& K, double ceiling_mid, Range ceiling, double min_gap) {
    Choice best;
    double best_gap = -INFINITY;
    const std::size_t last = std::min(K.k, K.n - 1);
    for (std::size_t i = 0; i <= last; ++i) {
        if (!(K.mid(i) > K.floor)) break;
        const double g = K.gap_mid(i);
        if (!(g > 0) || g < min_gap || K.cut_mid(i) > ceiling_mid) continue;
        if (g > best_gap) {
            best_gap = g;
            best.at = i;
            best.found = true;
        }
    }
    if (K.exact()) return best;
    // Could gap j be eligible for some consistent spectrum?
    auto maybe_eligible = [&](std::size_t j) {
        const Range g = K.gap_range(j);
        return K.hi(j) > K.floor && g.hi > 0 && g.hi >= min_gap && K.cut_range(j).lo <= ceiling.hi;
    };
    if (!best.found) {
        for (std::size_t j = 0; j <= last; ++j)
            if (maybe_eligible(j)) best.decided = false;
        return best;
    }
    const std::size_t c = best.at;
    const Range gc = K.gap_range(c);
    // The chosen gap is eligible in every consistent spectrum ...
    if (!(K.lo(c) > K.floor && gc.lo > 0 && gc.lo >= min_gap && K.cut_range(c).hi <= ceiling.lo))
        best.decided = false;
    // ... and no other gap can beat it (an earlier one would win a tie).
    for (std::size_t j = 0; j <= last && best.decided; ++j) {
        if (j == c || !maybe_eligible(j)) continue;
        const double gj = K.gap_range(j).hi;
        if (j < c ? gj >= gc.lo : gj > gc.lo) best.decided = false;
    }
    return best;
}

}  // namespace

double noise_floor(const Magnitudes& m) {
    // Double-precision eigen-solvers resolve eigenvalues to about p(n)·ε·‖H‖
    // (LAPACK's bound, and the rounding of every partial solver's products
    // and certificate, ~√n·ε·‖H‖_F); under 8·√n·ε·‖H‖_F no solver's value is
    // information either. For float32 storage the stored rounding dominates.
    const double solver = 8 * std::sqrt(static_cast<double>(m.n)) * std::numeric_limits<double>::epsilon() * m.frobenius;
    return std::max({m.stored_eps * m.frobenius, solver, m.input_noise});
}

Cut choose_cut(const Magnitudes& m, const CutOptions& opt) {
    if (opt.rtol && !(*opt.rtol >= 0)) throw UsageError("rtol", "must be >= 0, got " + std::to_string(*opt.rtol));
    if (opt.atol && !(*opt.atol >= 0)) throw UsageError("atol", "must be >= 0, got " + std::to_string(*opt.atol));
    if (!(opt.min_gap >= 0)) throw UsageError("min_gap", "must be >= 0, got " + std::to_string(opt.min_gap));

    Cut c;
    // Rounding H to its stored type moves each eigenvalue by up to about
    // ε·‖H‖_F (Weyl); an error of the input itself moves them by its norm.
    c.floor = noise_floor(m);
    c.dim_low = c.dim_high = m.n;
    if (m.n == 0 || (c.floor == 0 && m.frobenius == 0)) {  // the zero matrix: everything is flat
        c.rule = "dtype";
        return c;
    }
    const Knowledge K{m.known, std::min(m.known.size(), m.n), m.n, m.value_error, m.rest_bound, c.floor};
    const double n_eps = static_cast<double>(m.n) * m.stored_eps;
    const Range amax{K.lo(0), K.hi(0)};
    // numpy.linalg.matrix_rank's default, max|λ|·n·ε, never under the floor.
    const double dtype_mid = std::max(K.mid(0) * n_eps, c.floor);
    const Range dtype{std::max(amax.lo * n_eps, c.floor), std::max(amax.hi * n_eps, c.floor)};
    bool decided = true;

    Range tol{dtype};
    c.tol = dtype_mid;
    c.rule = "dtype";
    auto take_gap = [&](const Choice& g) {
        decided = decided && g.decided;
        if (!g.found) return;
        c.tol = K.cut_mid(g.at);
        tol = K.cut_range(g.at);
        c.rule = "gap";
    };
    if (opt.rtol || opt.atol) {
        const double r = opt.rtol.value_or(0.0), a = opt.atol.value_or(0.0);
        c.tol = std::max(a, r * K.mid(0));
        tol = {std::max(a, r * amax.lo), std::max(a, r * amax.hi)};
        c.rule = opt.atol && (!opt.rtol || c.tol == a) ? "atol" : "rtol";
        c.below_floor = c.tol < c.floor;
        decided = decided && (tol.hi < c.floor) == (tol.lo < c.floor);
    } else if (opt.rule == CutRule::gap) {
        take_gap(largest_gap(K, INFINITY, {INFINITY, INFINITY}, 0.0));
    } else if (opt.rule == CutRule::automatic) {
        // dtype where a clear gap straddles it (or nothing is dropped, or
        // nothing is above the floor); else the largest clear gap between the
        // floor and the dtype cut: auto never drops what dtype keeps.
        const Count p = count_above(K, dtype_mid, dtype);
        decided = decided && p.decided;
        bool search = false;
        if (p.value == 0) {
            search = K.mid(0) > c.floor;
            decided = decided && (K.exact() || amax.lo > c.floor || amax.hi <= c.floor);
        } else if (p.value < m.n) {
            search = K.gap_mid(p.value - 1) < opt.min_gap;
            decided = decided && (K.exact() || decided_ge(K.gap_range(p.value - 1), opt.min_gap));
        }
        if (search) take_gap(largest_gap(K, dtype_mid, dtype, opt.min_gap));
    }

    // What the chosen tol keeps, the gap at it, and the band around it.
    const Count kept = count_above(K, c.tol, tol);
    decided = decided && (c.rule == "gap" || kept.decided);
    c.kept = kept.value;
    if (c.kept == 0) {
        // Nothing kept: unbounded, but ambiguous when something lies above the floor.
        c.ambiguous = K.mid(0) > c.floor;
        decided = decided && (K.exact() || amax.lo > c.floor || amax.hi <= c.floor);
    } else if (c.kept < m.n) {
        c.gap = K.gap_mid(c.kept - 1);
        c.ambiguous = *c.gap < opt.min_gap;
        decided = decided && (K.exact() || decided_ge(K.gap_range(c.kept - 1), opt.min_gap));
    }
    const Count high = count_above(K, c.tol * band_factor, {tol.lo * band_factor, tol.hi * band_factor});
    const Count low = count_above(K, std::max(c.tol / band_factor, c.floor),
                                  {std::max(tol.lo / band_factor, c.floor), std::max(tol.hi / band_factor, c.floor)});
    c.dim_high = m.n - high.value;
    c.dim_low = m.n - low.value;
    c.decided = decided && high.decided && low.decided;
    return c;
}

}  // namespace basinvol
