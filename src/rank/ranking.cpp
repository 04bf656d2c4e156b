#include <basinvol/rank/ranking.hpp>

#include "units.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <vector>

namespace basinvol {
namespace {

bool is_saddle(const Row& r) { return r.negative > 0; }

// Curved directions r = n − dim, and the range the tolerance band allows.
std::size_t curved(const Row& r) { return r.n - r.dim; }
std::size_t curved_min(const Row& r) { return r.n - std::max(r.dim, r.dim_high); }
std::size_t curved_max(const Row& r) { return r.n - std::min(r.dim, r.dim_low); }

// Whether another draw of the input may keep a flat value the band does
// not count: one under the band's lower end, max(tol/10, floor − t), within
// the input's noise (and a relabelled solve's reach) of tol. Unknown (a row
// read back without dim_lifted) counts.
bool lifted_under_band(const Row& r) { return r.dim_lifted < std::min(r.dim, r.dim_low); }

// A row whose curved count is not pinned down: a cut a decade either way
// gives another r, the gap at the cut is ambiguous, or another draw of the
// input may keep a value under the band.
bool unsettled(const Row& r) {
    return curved_min(r) != curved_max(r) || r.warnings.has(Warning::ambiguous_rank) || lifted_under_band(r);
}

// Whether a cut within the band could give the row fewer curved directions
// than its own cut (lifting it past rows of its own r), or more (dropping
// it; also another draw of the input keeping a value under the band). An
// ambiguous rank may go either way.
bool may_rise(const Row& r) { return curved_min(r) < curved(r) || r.warnings.has(Warning::ambiguous_rank); }
bool may_fall(const Row& r) {
    return curved_max(r) > curved(r) || r.warnings.has(Warning::ambiguous_rank) || lifted_under_band(r);
}

// Two rows of one r ordered by their ranks or log-volumes, `upper` above:
// whether a cut within a band could reorder them. A cut that moves either
// row's r alone orders them by r, so only the upper row falling or the
// lower one rising reverses them; a cut that moves both to one other r
// leaves volumes nobody measured, which takes both moving (a rising upper
// row and a falling lower one keep the order, and never meet at one r).
bool band_reorders(const Row& upper, const Row& lower) { return may_fall(upper) || may_rise(lower); }

// The grid cells of two log-volumes: ties are equal cells, an equivalence,
// so places and pairwise comparisons agree. A step so fine that a cell's
// number overflows (--tie-tol 1e-320) is finer than float64 resolves: the
// values themselves are compared.
// The nearest whole number to q, halves up. Not floor(q + 0.5), whose sum
// rounds: q = 0.49999999999999994 would go to 1. q − floor(q) is exact
// near a half (Sterbenz); where it rounds, it is far from one.
double nearest_cell(double q) {
    const double down = std::floor(q);
    return q - down >= 0.5 ? down + 1 : down;
}

std::pair<double, double> cells(double a, double b, double tie_tol) {
    const double qa = a / tie_tol, qb = b / tie_tol;
    if (!(tie_tol > 0) || !std::isfinite(qa) || !std::isfinite(qb)) return {a, b};
    return {nearest_cell(qa), nearest_cell(qb)};
}

Decider decider(const Row& a, const Row& b, const RankOptions& opt, int& sign) {
    sign = 0;
    if (opt.saddles_last && is_saddle(a) != is_saddle(b)) {
        sign = is_saddle(a) ? -1 : 1;
        return Decider::saddle;
    }
    if (curved(a) != curved(b)) {
        sign = curved(a) < curved(b) ? 1 : -1;
        return Decider::curved;
    }
    // Under --negatives drop (rank + dim + negative = n) equal dims may hold
    // volumes over different numbers of directions, not in the same units:
    // fewer directions in the volume wins, as fewer curved ones does.
    if (a.rank != b.rank) {
        sign = a.rank < b.rank ? 1 : -1;
        return Decider::curved;
    }
    const auto [ca, cb] = cells(a.log_volume, b.log_volume, opt.tie_tol);
    if (ca != cb) {
        sign = ca > cb ? 1 : -1;
        return Decider::volume;
    }
    return Decider::tie;
}

// How far a row's log-volume may lie from the one of the matrix its input
// stands for: the solve's error and the input noise's reach (NaN, unknown,
// counts as unbounded).
double volume_reach(const Row& r) {
    const double e = r.log_volume_error + r.log_volume_noise;
    return std::isnan(e) ? INFINITY : e;
}

// The reach of two log-volumes together.
double error_bars(const Row& a, const Row& b) { return volume_reach(a) + volume_reach(b); }

// Whether a's and b's log-volumes within their reach meet: the intervals
// [v − e, v + e] overlap (unbounded reaches always do).
bool values_meet(const Row& a, const Row& b) {
    if (!(error_bars(a, b) < INFINITY)) return true;
    const double ea = volume_reach(a), eb = volume_reach(b);
    return a.log_volume - ea <= b.log_volume + eb && b.log_volume - eb <= a.log_volume + ea;
}

// The cells of a's and b's log-volumes less and plus their reaches, in one
// unit: grid cells, or the values themselves where any cell number
// overflows (a reach of 1e-14 on a grid of 1e-320 has cells ±1e306 while
// the other row's values need their own).
std::array<double, 4> reach_cells(const Row& a, const Row& b, double tie_tol) {
    const double ea = volume_reach(a), eb = volume_reach(b);
    std::array<double, 4> v = {a.log_volume - ea, a.log_volume + ea, b.log_volume - eb, b.log_volume + eb};
    for (const double x : v)
        if (!std::isfinite(x / tie_tol)) return v;
    for (double& x : v) x = nearest_cell(x / tie_tol);
    return v;
}

// Whether every value within their reach of a's and b's log-volumes lies
// in one grid cell (the values themselves on no grid: none but exact ones).
bool same_cell_within_errors(const Row& a, const Row& b, double tie_tol) {
    const double e = error_bars(a, b);
    if (!(e < INFINITY)) return false;
    if (!(tie_tol > 0)) return e == 0;
    const auto [lo_a, hi_a, lo_b, hi_b] = reach_cells(a, b, tie_tol);
    return lo_a == hi_a && lo_b == hi_b && lo_a == lo_b;
}

// Whether values within their reach of a's and b's log-volumes could share
// a grid cell, and so tie (on no grid the values compare: error_bars says).
bool cells_may_meet(const Row& a, const Row& b, double tie_tol) {
    if (!(tie_tol > 0)) return false;
    if (!(error_bars(a, b) < INFINITY)) return true;
    const auto [lo_a, hi_a, lo_b, hi_b] = reach_cells(a, b, tie_tol);
    return lo_a <= hi_b && lo_b <= hi_a;
}

// Why noise may decide an order (uncertain_by): a cut within a row's band
// (its dim_lifted, an ambiguous rank), the log-volumes' reach, or under
// option negatives last a saddle-or-minimum the band leaves open.
constexpr unsigned by_dim = 1, by_log_volume = 2, by_negative = 4;

std::vector<std::string> cause_names(unsigned causes) {
    std::vector<std::string> out;
    if (causes & by_dim) out.emplace_back("dim");
    if (causes & by_log_volume) out.emplace_back("log_volume");
    if (causes & by_negative) out.emplace_back("negative");
    return out;
}

// What may decide the order `sign` (a above b: 1) that `by` gave, by noise;
// 0 when nothing.
unsigned noise_causes(const Row& a, const Row& b, Decider by, int sign, const RankOptions& opt) {
    switch (by) {
        case Decider::saddle: return 0;
        case Decider::curved:  // the r ranges overlap: a cut within the band could reorder them
            if (curved(a) == curved(b))  // decided by the volume's directions
                return (sign > 0 ? band_reorders(a, b) : band_reorders(b, a)) ? by_dim : 0;
            return curved_min(a) <= curved_max(b) && curved_min(b) <= curved_max(a) ? by_dim : 0;
        case Decider::volume:  // equal r: decided by the volumes only if no cut within the bands reorders them,
                               // they differ past their reach, and no value within it falls in the other's
                               // grid cell (a tie)
            return ((sign > 0 ? band_reorders(a, b) : band_reorders(b, a)) ? by_dim : 0) |
                   (values_meet(a, b) || cells_may_meet(a, b, opt.tie_tol) ? by_log_volume : 0);
        case Decider::tie:  // a value within its reach of another cell (any reach, on no grid) could part them
            return (unsettled(a) || unsettled(b) ? by_dim : 0) |
                   (!same_cell_within_errors(a, b, opt.tie_tol) ? by_log_volume : 0);
    }
    return by_dim | by_log_volume | by_negative;
}

// Whether a cut within the band, or another draw of the input, could make a
// saddle a minimum, or a minimum a saddle: its cuts keep no negative value
// at one end and some at the other (negative_high counts those a draw keeps).
bool saddle_unsettled(const Row& r) { return r.negative_low == 0 && r.negative_high > 0; }

// Under option negatives last, whether a row whose saddle-or-minimum is
// unsettled could take another place against b: every status other than
// the rows' own, in turn, against the order `sign` (a tie, 0, included).
// Unequal statuses are ordered by the saddle rule; equal ones fall to the
// comparison without it, whose own noise then counts too (a cut within the
// band that makes a saddle a minimum also moves its dim). The rows' own
// statuses are the comparison's (noise_causes).
unsigned status_causes(const Row& a, const Row& b, int sign, const RankOptions& opt) {
    if (!opt.saddles_last || (!saddle_unsettled(a) && !saddle_unsettled(b))) return 0;
    RankOptions rest = opt;
    rest.saddles_last = false;
    int rest_sign = 0;
    const Decider by = decider(a, b, rest, rest_sign);
    const unsigned rest_causes = noise_causes(a, b, by, rest_sign, rest);
    unsigned causes = 0;
    for (int x = 0; x < (saddle_unsettled(a) ? 2 : 1); ++x)
        for (int y = 0; y < (saddle_unsettled(b) ? 2 : 1); ++y) {
            const bool sa = saddle_unsettled(a) ? x == 1 : is_saddle(a);
            const bool sb = saddle_unsettled(b) ? y == 1 : is_saddle(b);
            if (sa == is_saddle(a) && sb == is_saddle(b)) continue;
            if (sa != sb) {
                if ((sa ? -1 : 1) != sign) causes |= by_negative;
            } else if (rest_causes != 0 || rest_sign != sign) {
                causes |= by_negative | rest_causes;
            }
        }
    return causes;
}

// The causes pair_causes can give two rows at most, from what each row
// holds alone: a band's only when one of them is unsettled (else both
// curved counts are pinned, and neither may rise nor fall), the
// log-volumes' only at one curved count and rank, and only when their
// values lie within their reaches and two grid steps of each other (the
// cells of v ± e meet, or the values share one; the margin covers the
// rounding of v/tie_tol; a reach under 0, which nothing bounds, is taken
// as unbounded), the saddle status's only under option negatives last with
// a row whose status is open. Lets two rows already marked with all of
// them skip the pair: the rows whose status is open are compared with
// every row.
class PossibleCauses {
public:
    PossibleCauses(const std::vector<Row>& rows, const RankOptions& opt)
        : step_(opt.tie_tol > 0 ? opt.tie_tol : 0.0), last_(opt.saddles_last) {
        for (const Row& r : rows) {  // what a pair needs, in a few bytes a row (a reach under 0: unbounded)
            const double e = volume_reach(r);
            rows_.push_back({curved(r), r.rank, r.log_volume, e >= 0 ? e : INFINITY, unsettled(r), saddle_unsettled(r)});
        }
    }
    unsigned operator()(std::size_t i, std::size_t j) const {
        const Compact &a = rows_[i], &b = rows_[j];
        unsigned can = 0;
        if (last_ && (a.open || b.open)) can |= by_negative;
        if (a.unsettled || b.unsettled) can |= by_dim;
        if (a.curved == b.curved && a.rank == b.rank) {
            const double apart = std::abs(a.v - b.v);
            const double room = a.reach + b.reach + 2 * step_ + 1e-9 * (std::abs(a.v) + std::abs(b.v));
            if (!(std::isfinite(apart) && std::isfinite(room) && apart > room)) can |= by_log_volume;
        }
        return can;
    }

private:
    struct Compact {
        std::size_t curved, rank;
        double v, reach;
        bool unsettled, open;  // open: the saddle-or-minimum status
    };
    std::vector<Compact> rows_;
    double step_;
    bool last_;
};

// What may decide the order of a and b by noise (compare_rows's uncertain_by).
unsigned pair_causes(const Row& a, const Row& b, const RankOptions& opt) {
    int sign = 0;
    const Decider by = decider(a, b, opt, sign);
    return status_causes(a, b, sign, opt) | noise_causes(a, b, by, sign, opt);
}

// For each closed interval, whether another one meets it: sorted by left
// end, interval k meets an earlier one when their largest right end
// reaches its left end, and a later one when the next left end is within
// it. O(m log m).
template <class T>
std::vector<bool> meets_another(const std::vector<std::pair<T, T>>& iv) {
    std::vector<std::size_t> order(iv.size());
    for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return iv[x].first < iv[y].first; });
    std::vector<bool> meets(iv.size(), false);
    T reach{};  // the largest right end of the intervals before k
    for (std::size_t k = 0; k < order.size(); ++k) {
        const auto& [lo, hi] = iv[order[k]];
        meets[order[k]] = (k > 0 && reach >= lo) || (k + 1 < order.size() && iv[order[k + 1]].first <= hi);
        reach = k == 0 ? hi : std::max(reach, hi);
    }
    return meets;
}

// Whether a point lies in the union of closed intervals: merged, then searched.
template <class T>
class Cover {
public:
    explicit Cover(std::vector<std::pair<T, T>> iv) {
        std::sort(iv.begin(), iv.end());
        for (const auto& x : iv)
            if (!merged_.empty() && x.first <= merged_.back().second)
                merged_.back().second = std::max(merged_.back().second, x.second);
            else
                merged_.push_back(x);
    }
    bool holds(T p) const {
        auto it = std::upper_bound(merged_.begin(), merged_.end(), p,
                                   [](T v, const std::pair<T, T>& x) { return v < x.first; });
        return it != merged_.begin() && p <= std::prev(it)->second;
    }

private:
    std::vector<std::pair<T, T>> merged_;
};

// Rows of one class whose saddle-or-minimum is settled, all with one curved
// count and one rank: where noise may decide a pair's order by their
// log-volumes (their bands are mark_band_noise's). On the grid (tie_tol > 0) each row is the cell
// interval of its log-volume ± reach [L, R] around its own cell c (on no
// grid, the values themselves); a pair in different cells is noisy when the
// intervals meet, a pair in one cell (a tie) when either interval spans more
// than its cell, which is noise_decides's rule for the volume and tie
// deciders. Returns false, having marked nothing, for values this does not
// map exactly (non-finite values, negative reaches, cells past float64's range).
// `cell` receives each row's cell (on no grid, its value), as decider
// compares them.
bool mark_volume_noise(const std::vector<const Row*>& rows, const std::vector<std::size_t>& at,
                       double tie_tol, std::vector<unsigned>& uncertain, std::vector<double>& cell) {
    struct Interval {
        double lo, c, hi;
        bool wide;  // more than its cell (on no grid: an error above 0, even one v ± e rounds away)
    };
    std::vector<Interval> iv;
    iv.reserve(rows.size());
    const bool grid = tie_tol > 0;
    for (const Row* r : rows) {
        const double v = r->log_volume, e = volume_reach(*r);
        if (!std::isfinite(v) || !(e >= 0)) return false;
        if (e == INFINITY) {  // unbounded: within every other row's reach, in its own cell
            const double q = grid ? v / tie_tol : v;
            if (!std::isfinite(q)) return false;
            iv.push_back({-INFINITY, grid ? nearest_cell(q) : v, INFINITY, true});
            continue;
        }
        if (!grid) {  // values_meet's and same_cell_within_errors's expressions
            iv.push_back({v - e, v, v + e, e > 0});
            continue;
        }
        const double q = v / tie_tol, ql = (v - e) / tie_tol, qh = (v + e) / tie_tol;
        if (!std::isfinite(q) || !std::isfinite(ql) || !std::isfinite(qh)) return false;
        const double lo = nearest_cell(ql), hi = nearest_cell(qh);
        iv.push_back({lo, nearest_cell(q), hi, lo != hi});
    }
    std::vector<std::pair<double, double>> spans, wide;
    for (const auto& x : iv) {
        spans.emplace_back(x.lo, x.hi);
        if (x.wide) wide.emplace_back(x.lo, x.hi);
    }
    // A spanning row is noisy against any row it meets (in its cell or not);
    // a row on one cell only against a spanning row over that cell.
    const std::vector<bool> meets = meets_another(spans);
    const Cover<double> cover(std::move(wide));
    for (std::size_t k = 0; k < iv.size(); ++k)
        if (iv[k].wide ? meets[k] : cover.holds(iv[k].c)) uncertain[at[k]] |= by_log_volume;
    cell.clear();
    for (const auto& x : iv) cell.push_back(x.c);
    return true;
}

// Rows of one curved count, each with its place among them as decider
// orders them (`cell`: −rank, then the log-volume's cell): marks each row a
// cut within some band could reorder against another (band_reorders for
// rows in different places; in one place, a tie, either row unsettled).
void mark_band_noise(const std::vector<const Row*>& rows, const std::vector<std::size_t>& at,
                     const std::vector<std::pair<double, double>>& cell, std::vector<unsigned>& uncertain) {
    std::vector<std::size_t> order(rows.size());
    for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return cell[x] < cell[y]; });
    // Runs of one cell, lowest first, and what lies below and above each.
    std::vector<std::pair<std::size_t, std::size_t>> runs;  // [begin, end) in order
    for (std::size_t k = 0; k < order.size(); ++k)
        if (k == 0 || cell[order[k]] != cell[order[k - 1]]) runs.emplace_back(k, k + 1);
        else runs.back().second = k + 1;
    std::vector<bool> rise_below(runs.size(), false), fall_above(runs.size(), false);
    for (std::size_t g = 1; g < runs.size(); ++g) {
        rise_below[g] = rise_below[g - 1];
        for (std::size_t k = runs[g - 1].first; k < runs[g - 1].second; ++k)
            rise_below[g] = rise_below[g] || may_rise(*rows[order[k]]);
    }
    for (std::size_t g = runs.size() - 1; g-- > 0;) {
        fall_above[g] = fall_above[g + 1];
        for (std::size_t k = runs[g + 1].first; k < runs[g + 1].second; ++k)
            fall_above[g] = fall_above[g] || may_fall(*rows[order[k]]);
    }
    for (std::size_t g = 0; g < runs.size(); ++g) {
        std::size_t loose = 0;
        for (std::size_t k = runs[g].first; k < runs[g].second; ++k) loose += unsettled(*rows[order[k]]) ? 1 : 0;
        const bool shared = runs[g].second - runs[g].first > 1;
        for (std::size_t k = runs[g].first; k < runs[g].second; ++k) {
            const Row& r = *rows[order[k]];
            if ((may_fall(r) && g > 0) || (may_rise(r) && g + 1 < runs.size()) || rise_below[g] || fall_above[g] ||
                (shared && (unsettled(r) || loose > 0)))
                uncertain[at[order[k]]] |= by_dim;
        }
    }
}

// Marks each row whose order against some other row noise may decide with
// the union of those pairs' causes (pair_causes), in O(m log m) but for
// rows whose saddle-or-minimum is unsettled, which are compared with every row.
void mark_uncertain(const std::vector<Row>& good, const RankOptions& opt, std::vector<unsigned>& uncertain) {
    const std::size_t m = good.size();
    std::vector<std::size_t> odd;  // status unsettled under --negatives last
    for (std::size_t i = 0; i < m; ++i)
        if (opt.saddles_last && saddle_unsettled(good[i])) odd.push_back(i);
    const PossibleCauses possible(good, opt);
    for (const std::size_t i : odd)
        for (std::size_t j = 0; j < m; ++j)
            if (const unsigned can = possible(i, j); j != i && (uncertain[i] & uncertain[j] & can) != can) {
                const unsigned causes = pair_causes(good[i], good[j], opt);
                uncertain[i] |= causes;
                uncertain[j] |= causes;
            }
    // The rest by class (saddles and minima apart under --negatives last:
    // the saddle rule orders them, settled). Within a class, rows of other
    // curved counts are noisy when their curved ranges meet (noise_decides's
    // curved rule); rows of one curved count by their log-volumes (at one
    // rank) and by the way their bands may move them (band_reorders).
    std::map<bool, std::vector<std::size_t>> classes;
    for (std::size_t i = 0; i < m; ++i)
        if (!(opt.saddles_last && saddle_unsettled(good[i]))) classes[opt.saddles_last && is_saddle(good[i])].push_back(i);
    for (const auto& [saddle, members] : classes) {
        std::vector<std::size_t> lows, highs;  // the ends of the curved ranges, sorted
        std::map<std::size_t, std::vector<std::size_t>> at_curved;
        for (const std::size_t i : members) {
            lows.push_back(curved_min(good[i]));
            highs.push_back(curved_max(good[i]));
            at_curved[curved(good[i])].push_back(i);
        }
        std::sort(lows.begin(), lows.end());
        std::sort(highs.begin(), highs.end());
        for (const std::size_t i : members) {
            const Row& r = good[i];
            // The ranges meeting [curved_min, curved_max]: all but those ending
            // below it or starting above it; every row of its curved count meets it.
            const auto below = static_cast<std::size_t>(
                std::lower_bound(highs.begin(), highs.end(), curved_min(r)) - highs.begin());
            const auto above =
                static_cast<std::size_t>(lows.end() - std::upper_bound(lows.begin(), lows.end(), curved_max(r)));
            if (members.size() - below - above > at_curved[curved(r)].size()) uncertain[i] |= by_dim;
        }
        for (const auto& [count, at] : at_curved) {
            if (at.size() < 2) continue;
            std::map<std::size_t, std::vector<std::size_t>> by_rank;  // positions in `at`
            for (std::size_t k = 0; k < at.size(); ++k) by_rank[good[at[k]].rank].push_back(k);
            std::vector<const Row*> rows;
            for (const std::size_t i : at) rows.push_back(&good[i]);
            std::vector<std::pair<double, double>> place(at.size());
            bool mapped = true;
            for (const auto& [rank, ks] : by_rank) {
                std::vector<const Row*> same;
                std::vector<std::size_t> same_at;
                for (const std::size_t k : ks) {
                    same.push_back(rows[k]);
                    same_at.push_back(at[k]);
                }
                std::vector<double> cell(ks.size(), 0.0);
                if (ks.size() > 1) mapped = mapped && mark_volume_noise(same, same_at, opt.tie_tol, uncertain, cell);
                for (std::size_t x = 0; x < ks.size() && mapped; ++x)
                    place[ks[x]] = {-static_cast<double>(rank), cell[x]};
            }
            if (mapped)
                mark_band_noise(rows, at, place, uncertain);
            else
                for (std::size_t x = 0; x < at.size(); ++x)
                    for (std::size_t y = x + 1; y < at.size(); ++y) {
                        const unsigned can = possible(at[x], at[y]);
                        if ((uncertain[at[x]] & uncertain[at[y]] & can) == can) continue;
                        const unsigned causes = pair_causes(good[at[x]], good[at[y]], opt);
                        uncertain[at[x]] |= causes;
                        uncertain[at[y]] |= causes;
                    }
        }
    }
}

}  // namespace

Comparison compare_rows(const Row& a, const Row& b, const RankOptions& opt) {
    Comparison c;
    c.by = decider(a, b, opt, c.sign);
    const unsigned status = status_causes(a, b, c.sign, opt), causes = status | noise_causes(a, b, c.by, c.sign, opt);
    const bool by_status = (status & by_negative) != 0;
    c.noise_decides = causes != 0;
    c.uncertain_by = cause_names(causes);
    std::ostringstream s;
    s.precision(10);
    switch (c.by) {
        case Decider::saddle:
            s << "saddle: " << (is_saddle(a) ? "A" : "B") << " has negative eigenvalues (A " << a.negative << ", B "
              << b.negative << ") and option negatives last ranks saddles after minima";
            break;
        case Decider::curved:
            if (curved(a) == curved(b)) {
                s << "volume directions: A " << a.rank << (a.rank < b.rank ? " < " : " > ") << "B " << b.rank
                  << (a.n == b.n ? " at equal dimension" : " at equal curved directions");
                // Each row's own policy where the rows differ (mixed_negatives).
                if (units::mixed_negatives(a, b))
                    s << " (negative directions: A " << a.negative << (*units::drops_negatives(a) ? " dropped" : " kept")
                      << ", B " << b.negative << (*units::drops_negatives(b) ? " dropped" : " kept");
                else
                    s << " (negative directions dropped: A " << a.negative << ", B " << b.negative;
                s << "; fewer directions in the volume wins)";
            }
            else if (a.n == b.n)
                s << "dimension: A " << a.dim << (a.dim > b.dim ? " > " : " < ") << "B " << b.dim;
            else
                s << "curved directions: A " << curved(a) << (curved(a) < curved(b) ? " < " : " > ") << "B "
                  << curved(b) << " (n differs: A " << a.n << ", B " << b.n << "; fewer curved directions wins)";
            break;
        case Decider::volume:
            s << "volume: equal " << (a.n == b.n ? "dimension " + std::to_string(a.dim)
                                                 : "curved directions " + std::to_string(curved(a)))
              << ", log_volume A " << a.log_volume << (c.sign > 0 ? " > " : " < ") << "B " << b.log_volume;
            break;
        case Decider::tie:
            s << "tie: equal " << (a.n == b.n ? "dimension " + std::to_string(a.dim)
                                              : "curved directions " + std::to_string(curved(a)))
              << ", log_volume A " << a.log_volume << " and B " << b.log_volume
              << " round to one multiple of option tie_tol " << opt.tie_tol;
            break;
    }
    if (a.n != b.n && (c.by == Decider::volume || c.by == Decider::tie))
        s << " (n differs: A " << a.n << ", B " << b.n << "; the dims, A " << a.dim << " and B " << b.dim
          << ", are not compared)";
    if (a.threshold != b.threshold && !std::isnan(a.threshold) && !std::isnan(b.threshold) &&
        (c.by == Decider::volume || c.by == Decider::tie))
        s << "; measured at different thresholds (T: A " << a.threshold << ", B " << b.threshold
          << "): a log-volume moves by r/2 log T, so these are not in one unit";
    s << units::pair_reason(a, b);
    if (a.threshold != b.threshold && !std::isnan(a.threshold) && !std::isnan(b.threshold)) {
        c.warnings_a.add(Warning::mixed_threshold);
        c.warnings_b.add(Warning::mixed_threshold);
    }
    if (a.n != b.n) {  // as rank of the two marks them (the reason says how n decided)
        c.warnings_a.add(Warning::mixed_n);
        c.warnings_b.add(Warning::mixed_n);
    }
    units::pair_warnings(a, b, c.warnings_a, c.warnings_b);
    bool lifted_said = false;
    auto lifted = [&](const Row& x, const char* which) {
        s << "; " << which << "'s dim_lifted " << x.dim_lifted << " is under its band"
          << ": another draw of the input within its noise may keep a flat value the band does not count";
        lifted_said = true;
    };
    // One clause for each cause (uncertain_by), the first led by "noise may decide this".
    const char* lead = "; noise may decide this: ";
    if (by_status) {
        s << lead << "negative A " << a.negative << " (band " << a.negative_low << ".." << a.negative_high << "), B "
          << b.negative << " (band " << b.negative_low << ".." << b.negative_high
          << "): a cut within the band may make a saddle a minimum or a minimum a saddle";
        if (saddle_unsettled(a) && lifted_under_band(a)) lifted(a, "A");
        if (saddle_unsettled(b) && lifted_under_band(b)) lifted(b, "B");
        lead = "; and ";
    }
    if (causes & by_log_volume) {
        s.precision(3);
        s << lead << "log_volume_error A " << a.log_volume_error << ", B " << b.log_volume_error
          << "; log_volume_noise A " << a.log_volume_noise << ", B " << b.log_volume_noise;
        lead = "; and ";
    }
    if (causes & by_dim) {
        s << lead << "dim A " << a.dim << " (band " << a.dim_low << ".." << a.dim_high << "), B " << b.dim << " (band "
          << b.dim_low << ".." << b.dim_high << ")";
        if (a.warnings.has(Warning::ambiguous_rank) || b.warnings.has(Warning::ambiguous_rank)) s << ", ambiguous_rank";
        // Rows of one r whose order only a value under a band could change:
        // the upper one's, or either of a tie.
        const Row& upper = c.sign > 0 ? a : b;
        auto only_lifted = [&](const Row& x) {
            return lifted_under_band(x) && curved_max(x) == curved(x) && !x.warnings.has(Warning::ambiguous_rank);
        };
        if (c.by == Decider::tie) {
            if (only_lifted(a)) lifted(a, "A");
            if (only_lifted(b)) lifted(b, "B");
        } else if (curved(a) == curved(b) && only_lifted(upper) && !may_rise(c.sign > 0 ? b : a)) {
            lifted(upper, c.sign > 0 ? "A" : "B");
        }
    }
    if (lifted_said) s << " (option cut gap, or option atol a decade over noise_floor, cuts clear of that noise)";
    c.reason = s.str();
    return c;
}

Ranking rank_rows(std::vector<Row>& rows, const RankOptions& opt) {
    Ranking result;
    std::vector<Row> good, bad;
    for (auto& r : rows) {
        // Warnings of an earlier ranking (rows read back with --from-results) are recomputed.
        r.warnings.remove(Warning::mixed_n);
        r.warnings.remove(Warning::mixed_threshold);
        r.warnings.remove(Warning::mixed_negatives);
        r.warnings.remove(Warning::mixed_level);
        r.warnings.remove(Warning::mixed_cut);
        r.warnings.remove(Warning::place_uncertain);
        r.uncertain_by.clear();
        (r.ok ? good : bad).push_back(std::move(r));
    }
    for (std::size_t i = 1; i < good.size(); ++i)
        if (good[i].n != good[0].n) result.mixed_n = true;
    // Known thresholds only: a row read back without one (NaN) is not another T.
    for (std::size_t i = 0, known = good.size(); i < good.size() && !result.mixed_threshold; ++i) {
        if (std::isnan(good[i].threshold)) continue;
        if (known == good.size()) known = i;
        else if (good[i].threshold != good[known].threshold) result.mixed_threshold = true;
    }
    // Policies, cut rules and precisions the rows' own fields show.
    const units::Mixed mixed = units::mixed(good);
    result.mixed_cut = mixed.cut;
    result.largest_relative_cut = mixed.largest_relative_cut;
    for (std::size_t i = 0; i < good.size(); ++i) {
        if (mixed.level[i]) {
            good[i].warnings.add(Warning::mixed_level);
            ++result.mixed_level;
        }
        if (mixed.negatives[i]) {
            good[i].warnings.add(Warning::mixed_negatives);
            result.mixed_negatives = true;
        }
        if (std::isnan(good[i].log_volume_noise)) ++result.without_noise;
        if (units::relative_rule(good[i]) && std::isnan(good[i].spectral_norm)) ++result.without_norm;
    }
    int sign = 0;
    // Display order: the ranking rule, then log-volume, then source (so that
    // merged shards and a reordered input list print alike), then input order.
    std::stable_sort(good.begin(), good.end(), [&](const Row& a, const Row& b) {
        decider(a, b, opt, sign);
        if (sign != 0) return sign > 0;
        if (a.log_volume != b.log_volume) return a.log_volume > b.log_volume;
        return a.source < b.source;
    });
    for (std::size_t i = 0; i < good.size(); ++i) {
        decider(good[i > 0 ? i - 1 : 0], good[i], opt, sign);
        good[i].place = i > 0 && sign == 0 ? *good[i - 1].place : i + 1;
        if (result.mixed_n) good[i].warnings.add(Warning::mixed_n);
        if (result.mixed_threshold) good[i].warnings.add(Warning::mixed_threshold);
        if (result.mixed_cut) good[i].warnings.add(Warning::mixed_cut);
    }
    // A place is uncertain when noise may decide its order against any other row.
    std::vector<unsigned> uncertain(good.size(), 0);
    mark_uncertain(good, opt, uncertain);
    for (std::size_t i = 0; i < good.size(); ++i) {
        if (uncertain[i]) good[i].warnings.add(Warning::place_uncertain);
        good[i].uncertain_by = cause_names(uncertain[i]);
    }
    rows.clear();
    for (auto& r : good) rows.push_back(std::move(r));
    // Error rows last, by source: merged shards list them as one run does.
    std::stable_sort(bad.begin(), bad.end(), [](const Row& a, const Row& b) { return a.source < b.source; });
    for (auto& r : bad) {
        r.place.reset();
        rows.push_back(std::move(r));
    }
    return result;
}

bool rank_regularized(std::vector<Row>& rows, double tie_tol) {
    std::vector<Row*> with;
    for (auto& r : rows)
        if (r.ok && r.log_volume_regularized) with.push_back(&r);
    // log V_λ is an n-dimensional volume: rows of different n are in different units.
    for (const Row* r : with)
        if (r->n != with.front()->n) {
            for (Row* x : with) x->place_regularized.reset();
            return false;
        }
    std::stable_sort(with.begin(), with.end(), [](const Row* a, const Row* b) {
        return *a->log_volume_regularized > *b->log_volume_regularized;
    });
    for (std::size_t i = 0; i < with.size(); ++i) {
        if (i > 0 && [&] {
                const auto [a, b] = cells(*with[i - 1]->log_volume_regularized, *with[i]->log_volume_regularized, tie_tol);
                return a == b;
            }())
            with[i]->place_regularized = with[i - 1]->place_regularized;
        else
            with[i]->place_regularized = i + 1;
    }
    return true;
}

}  // namespace basinvol
