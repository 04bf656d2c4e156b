#include "units.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>

namespace basinvol::units {
namespace {

constexpr double eps64 = std::numeric_limits<double>::epsilon();

bool mixed_cut(const Row& a, const Row& b) {
    if ((explicit_cut(a) && automatic_cut(b)) || (automatic_cut(a) && explicit_cut(b))) return true;
    return a.cut_rule == "atol" && b.cut_rule == "atol" && a.tol != b.tol;
}

// Whether `finer` (of the smaller ε) may count otherwise at `coarser`'s level.
bool finer_counts_otherwise(const Row& finer, const Row& coarser) {
    const double ef = stored_eps(finer.stored_type), ec = stored_eps(coarser.stored_type);
    return automatic_cut(finer) && automatic_cut(coarser) && ef < ec && may_count_otherwise(finer, ec);
}

}  // namespace

std::optional<bool> drops_negatives(const Row& r) {
    if (r.negative == 0) return std::nullopt;
    return r.rank + r.dim < r.n;
}

double stored_eps(const std::string& type) {
    if (type.rfind("int", 0) == 0 || type.rfind("uint", 0) == 0) return eps64;  // exact in float64
    if (type == "float64") return eps64;
    if (type == "float32") return std::ldexp(1.0, -23);
    if (type == "float16") return std::ldexp(1.0, -10);
    if (type == "bfloat16") return std::ldexp(1.0, -7);
    // "floatN (E exponent bits, M mantissa bits)": computed in float64, so at most its ε.
    const auto at = type.find(" exponent bits, ");
    if (type.rfind("float", 0) == 0 && at != std::string::npos) {
        const int mantissa = std::atoi(type.c_str() + at + 16);
        if (mantissa > 0) return std::ldexp(1.0, -std::min(mantissa, 52));
    }
    return std::numeric_limits<double>::quiet_NaN();
}

bool automatic_cut(const Row& r) { return r.cut_rule == "dtype" || r.cut_rule == "gap"; }
bool explicit_cut(const Row& r) { return r.cut_rule == "atol" || r.cut_rule == "rtol"; }

bool may_count_otherwise(const Row& finer, double coarse) {
    if (finer.dim >= finer.n) return false;  // nothing kept: a higher cut drops nothing more
    if (!finer.gap) return true;             // nothing dropped: the smallest kept value is not given
    const double eps = stored_eps(finer.stored_type), n = static_cast<double>(finer.n);
    if (!(eps > 0)) return true;
    const double norm = finer.noise_floor / std::max(eps, 8 * std::sqrt(n) * eps64);  // ≥ ‖H‖_F
    const double level = std::max(n * coarse * norm, finer.noise_floor);
    const double smallest = finer.noise_floor * std::pow(10.0, *finer.gap);
    return !(smallest > level * (1 + 1e-9));
}

Mixed mixed(const std::vector<Row>& rows) {
    Mixed m;
    m.precision.assign(rows.size(), false);
    const Row *drops = nullptr, *keeps = nullptr, *explicit_row = nullptr, *automatic_row = nullptr,
              *atol_row = nullptr;
    double coarsest = 0;  // the largest ε among the automatic rows
    for (const Row& r : rows) {
        if (const auto d = drops_negatives(r)) (*d ? drops : keeps) = &r;
        if (explicit_cut(r)) explicit_row = &r;
        if (automatic_cut(r)) {
            automatic_row = &r;
            const double e = stored_eps(r.stored_type);
            if (e > coarsest) coarsest = e;
        }
        if (r.cut_rule == "atol") {
            if (atol_row && atol_row->tol != r.tol) m.cut = true;
            atol_row = &r;
        }
        if (std::isfinite(r.noise_floor)) m.largest_floor = std::max(m.largest_floor, r.noise_floor);
    }
    m.negatives = drops && keeps;
    m.cut = m.cut || (explicit_row && automatic_row);
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const Row& r = rows[i];
        m.precision[i] = automatic_cut(r) && stored_eps(r.stored_type) < coarsest && may_count_otherwise(r, coarsest);
    }
    return m;
}

void pair_warnings(const Row& a, const Row& b, Warnings& on_a, Warnings& on_b) {
    if (drops_negatives(a) && drops_negatives(b) && *drops_negatives(a) != *drops_negatives(b)) {
        on_a.add(Warning::mixed_negatives);
        on_b.add(Warning::mixed_negatives);
    }
    if (mixed_cut(a, b)) {
        on_a.add(Warning::mixed_cut);
        on_b.add(Warning::mixed_cut);
    }
    if (finer_counts_otherwise(a, b)) on_a.add(Warning::mixed_precision);
    if (finer_counts_otherwise(b, a)) on_b.add(Warning::mixed_precision);
}

std::string pair_reason(const Row& a, const Row& b) {
    std::ostringstream s;
    s.precision(3);
    const auto da = drops_negatives(a), db = drops_negatives(b);
    if (da && db && *da != *db) {
        const char *dropping = *da ? "A" : "B", *keeping = *da ? "B" : "A";
        const Row& keeper = *da ? b : a;
        const Row& dropper = *da ? a : b;
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
        s << "; " << (a_finer ? "A" : "B") << " is stored finer (" << f.stored_type << ") than "
          << (a_finer ? "B" : "A") << " (" << c.stored_type << ") and cut at its own precision: a "
          << c.stored_type << " copy of it may count kept values under its cut as flat; option atol over both "
          << "noise_floor (A " << a.noise_floor << ", B " << b.noise_floor << ") counts them at one level";
    }
    return s.str();
}

}  // namespace basinvol::units
