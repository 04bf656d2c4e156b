#include <basinvol/error.hpp>
#include <basinvol/measure/cut.hpp>

#include <algorithm>
#include <cmath>

namespace basinvol {
namespace {

// log10(smallest kept / largest dropped) for a given tol; empty when nothing
// is kept, nothing is dropped, or everything dropped is exactly zero.
std::optional<double> gap_at(const Magnitudes& m, double tol) {
    double smallest_kept = 0, largest_dropped = 0;
    bool kept = false, dropped = false;
    for (double a : m.known) {
        if (a > tol) {
            smallest_kept = a;  // descending: the last one kept is the smallest
            kept = true;
        } else if (!dropped) {
            largest_dropped = a;
            dropped = true;
        }
    }
    if (m.known.size() < m.n) {  // the unknown rest is dropped, up to rest_bound
        dropped = true;
        largest_dropped = std::max(largest_dropped, m.rest_bound);
    }
    if (!kept || !dropped || largest_dropped == 0) return std::nullopt;
    return std::log10(smallest_kept) - std::log10(largest_dropped);
}

struct Candidate {
    double tol = 0;
    double gap = -1;  // decades; +inf where the next value is exactly 0
    bool found = false;
};

// The largest log-gap between consecutive magnitudes whose upper side is
// above the floor and whose cut lies at or under `ceiling`. Past the last
// magnitude of a complete spectrum the floor itself stands in for the next
// value ("nothing dropped"), when the whole spectrum is above the floor.
Candidate largest_gap(const Magnitudes& m, double floor, double ceiling) {
    Candidate best;
    const std::size_t k = m.known.size();
    for (std::size_t i = 0; i < k; ++i) {
        double upper = m.known[i];
        if (!(upper > floor)) break;
        double lower;
        if (i + 1 < k) lower = m.known[i + 1];
        else if (k < m.n) lower = m.rest_bound;
        else lower = floor;  // complete spectrum, all above the floor
        double tol = std::max(floor, std::sqrt(upper * lower));
        if (lower == 0) tol = std::max(floor, upper * 1e-3);
        if (tol >= upper) continue;
        if (tol > ceiling) continue;
        double g = lower == 0 ? INFINITY : std::log10(upper) - std::log10(lower);
        if (g > best.gap) {
            best.gap = g;
            best.tol = tol;
            best.found = true;
        }
    }
    return best;
}

}  // namespace

Cut choose_cut(const Magnitudes& m, const CutOptions& opt) {
    if (opt.rtol && !(*opt.rtol >= 0)) throw UsageError("--rtol must be >= 0, got " + std::to_string(*opt.rtol));
    if (opt.atol && !(*opt.atol >= 0)) throw UsageError("--atol must be >= 0, got " + std::to_string(*opt.atol));
    if (!(opt.min_gap >= 0)) throw UsageError("--min-gap must be >= 0, got " + std::to_string(opt.min_gap));

    Cut c;
    const double amax = m.known.empty() ? m.rest_bound : std::max(m.known.front(), m.rest_bound);
    // Rounding H to its stored type moves each eigenvalue by up to about ε·‖H‖_F (Weyl).
    c.floor = m.stored_eps * m.frobenius;
    // numpy.linalg.matrix_rank's default: max|λ| · n · ε; always above the floor.
    const double dtype_tol = amax * static_cast<double>(m.n) * m.stored_eps;

    if (opt.rtol || opt.atol) {
        c.tol = std::max(opt.atol.value_or(0.0), opt.rtol.value_or(0.0) * amax);
        c.rule = opt.atol && (!opt.rtol || c.tol == *opt.atol) ? "atol" : "rtol";
        c.below_floor = c.tol < c.floor;
    } else if (opt.rule == CutRule::dtype) {
        c.tol = dtype_tol;
        c.rule = "dtype";
    } else if (opt.rule == CutRule::gap) {
        Candidate g = largest_gap(m, c.floor, INFINITY);
        c.tol = g.found ? g.tol : dtype_tol;
        c.rule = g.found ? "gap" : "dtype";
    } else {
        // auto: dtype where a clear gap straddles it; else the largest clear gap
        // between the floor and the dtype cut (never above dtype: auto never
        // drops an eigenvalue the dtype rule keeps).
        c.tol = dtype_tol;
        c.rule = "dtype";
        auto g = gap_at(m, dtype_tol);
        if (g && *g < opt.min_gap) {
            Candidate best = largest_gap(m, c.floor, dtype_tol);
            if (best.found && best.gap >= opt.min_gap) {
                c.tol = best.tol;
                c.rule = "gap";
            }
        }
    }
    c.gap = gap_at(m, c.tol);
    c.ambiguous = c.gap && *c.gap < opt.min_gap;
    c.certified = m.known.size() == m.n || m.rest_bound <= c.tol;
    return c;
}

}  // namespace basinvol
