#include "units.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

namespace basinvol::units {
namespace {

bool mixed_cut(const Row& a, const Row& b) {
    if ((explicit_cut(a) && automatic_cut(b)) || (automatic_cut(a) && explicit_cut(b))) return true;
    return a.cut_rule == "atol" && b.cut_rule == "atol" && a.tol != b.tol;
}

// Whether a relative cut lies over another: past the rounding of tol /
// spectral_norm, which puts one rule's cuts (n·ε, one rtol) ulps apart.
bool cut_over(double cut, double other) { return cut > other * (1 + 1e-9); }

// Whether `finer`, cut lower relative to its largest value than `coarser`,
// may count another dim at coarser's relative cut.
bool finer_counts_otherwise(const Row& finer, const Row& coarser) {
    if (!relative_rule(finer) || !relative_rule(coarser) || !cut_over(relative_cut(coarser), relative_cut(finer)))
        return false;
    return may_count_otherwise(finer, relative_cut(coarser) * finer.spectral_norm);
}

// The stored type, and float32 data in a float64 dataset named as such.
std::string values_type(const Row& r) {
    return r.warnings.has(Warning::float32_values) ? r.stored_type + " holding float32 values" : r.stored_type;
}

}  // namespace

std::optional<bool> drops_negatives(const Row& r) {
    if (r.negative == 0) return std::nullopt;
    return r.rank + r.dim < r.n;
}

bool mixed_negatives(const Row& a, const Row& b) {
    const auto da = drops_negatives(a), db = drops_negatives(b);
    return da && db && *da != *db;
}

bool automatic_cut(const Row& r) { return r.cut_rule == "dtype" || r.cut_rule == "gap"; }
bool explicit_cut(const Row& r) { return r.cut_rule == "atol" || r.cut_rule == "rtol"; }
bool relative_rule(const Row& r) { return automatic_cut(r) || r.cut_rule == "rtol"; }

double relative_cut(const Row& r) {
    return r.spectral_norm > 0 && std::isfinite(r.spectral_norm) ? r.tol / r.spectral_norm
                                                                  : std::numeric_limits<double>::quiet_NaN();
}

bool may_count_otherwise(const Row& r, double level) {
    if (r.dim >= r.n) return false;  // nothing kept: a higher cut drops nothing more
    if (!(level > r.tol)) return false;
    double smallest = r.tol;  // the smallest kept value lies over these
    if (r.dim_high == r.dim) smallest = std::max({smallest, 10 * r.tol, r.noise_floor});
    if (r.gap && std::isfinite(r.noise_floor)) smallest = std::max(smallest, r.noise_floor * std::pow(10.0, *r.gap));
    // A gap cut lies at the geometric mean of the gap's sides: the kept side
    // is tol·10^(gap/2) (less its rounding).
    if (r.gap && r.cut_rule == "gap") smallest = std::max(smallest, r.tol * std::pow(10.0, *r.gap / 2) * (1 - 1e-12));
    return !(smallest > level);
}

Mixed mixed(const std::vector<Row>& rows) {
    Mixed m;
    m.level.assign(rows.size(), false);
    m.negatives.assign(rows.size(), false);
    bool drops = false, keeps = false;
    const Row *explicit_row = nullptr, *automatic_row = nullptr, *atol_row = nullptr;
    for (const Row& r : rows) {
        if (const auto d = drops_negatives(r)) (*d ? drops : keeps) = true;
        if (explicit_cut(r)) explicit_row = &r;
        if (automatic_cut(r)) automatic_row = &r;
        if (r.cut_rule == "atol") {
            if (atol_row && atol_row->tol != r.tol) m.cut = true;
            atol_row = &r;
        }
        if (relative_rule(r) && std::isfinite(relative_cut(r)))
            m.largest_relative_cut = std::max(m.largest_relative_cut, relative_cut(r));
    }
    m.cut = m.cut || (explicit_row && automatic_row);
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const Row& r = rows[i];
        m.negatives[i] = drops && keeps && drops_negatives(r).has_value();
        // The row of the largest relative cut sets the highest level any
        // other row sets (may_count_otherwise grows with the level).
        m.level[i] = relative_rule(r) && std::isfinite(relative_cut(r)) &&
                     cut_over(m.largest_relative_cut, relative_cut(r)) &&
                     may_count_otherwise(r, m.largest_relative_cut * r.spectral_norm);
    }
    return m;
}

void pair_warnings(const Row& a, const Row& b, Warnings& on_a, Warnings& on_b) {
    if (mixed_negatives(a, b)) {
        on_a.add(Warning::mixed_negatives);
        on_b.add(Warning::mixed_negatives);
    }
    if (mixed_cut(a, b)) {
        on_a.add(Warning::mixed_cut);
        on_b.add(Warning::mixed_cut);
    }
    if (finer_counts_otherwise(a, b)) on_a.add(Warning::mixed_level);
    if (finer_counts_otherwise(b, a)) on_b.add(Warning::mixed_level);
}

std::string pair_reason(const Row& a, const Row& b) {
    std::ostringstream s;
    s.precision(3);
    if (mixed_negatives(a, b)) {
        const bool a_drops = *drops_negatives(a);
        const char *dropping = a_drops ? "A" : "B", *keeping = a_drops ? "B" : "A";
        const Row& keeper = a_drops ? b : a;
        const Row& dropper = a_drops ? a : b;
        s << "; computed under different option negatives (" << dropping << " drop, " << keeping
          << " abs or last): " << keeping << "'s rank and volume hold its " << keeper.negative << " negative directions, "
          << dropping << "'s leave its " << dropper.negative << " out, so these are not in one unit";
    }
    if (mixed_cut(a, b))
        s << "; cut by different rules (cut A " << a.cut_rule << " at " << a.tol << ", B " << b.cut_rule << " at "
          << b.tol << "): each dim counts the values under its own row's cut, so these are not at one level";
    for (const bool a_finer : {true, false}) {
        const Row& f = a_finer ? a : b;
        const Row& c = a_finer ? b : a;
        if (!finer_counts_otherwise(f, c)) continue;
        const char *fn = a_finer ? "A" : "B", *cn = a_finer ? "B" : "A";
        s << "; " << fn << "'s cut lies lower against its largest value (tol/spectral_norm " << relative_cut(f)
          << "; " << values_type(f) << ", noise_floor " << f.noise_floor << ", cut " << f.cut_rule << ") than " << cn
          << "'s (" << relative_cut(c) << "; " << values_type(c) << ", noise_floor " << c.noise_floor << ", cut "
          << c.cut_rule << "), and " << fn << " may keep values under " << cn
          << "'s level: counted at one level its dim may be larger; option rtol " << relative_cut(c)
          << " counts both at one level";
    }
    return s.str();
}

}  // namespace basinvol::units
