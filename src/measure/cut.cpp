#include <basinvol/error.hpp>
#include <basinvol/measure/cut.hpp>
#include <basinvol/solve/rounding.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace basinvol {
namespace {

// A closed range of possible values of one quantity.
struct Range {
    double lo = 0, hi = 0;
};

// √(a·b) without forming a·b, which overflows past 1e154 per side and
// underflows below 1e-154 (a cut at 0 or +∞ would keep or drop everything).
double geometric_mean(double a, double b) { return std::sqrt(a) * std::sqrt(b); }

// One position of the sorted magnitudes and its known value (0 past them).
struct Pos {
    std::size_t i = 0;
    double v = 0;
};

// What is known of the true magnitudes m_0 ≥ m_1 ≥ … ≥ m_{n−1} (and m_n = 0,
// "past the end"): each lies in [lo(i), hi(i)]. With values x_j each in its
// own interval [l_j, u_j], the i-th largest x lies between the i-th largest l
// and the i-th largest u. Known value a_i gives [a_i − e, a_i + e], an unseen
// one [0, ρ]; the i-th largest upper end is at most max(a_i + e, ρ) for i < k
// and at most ρ after (at most k upper ends exceed ρ). A complete, exact
// spectrum has lo = hi = mid. Every bound is monotone in a_i, so a count of
// positions meeting one is the length of a prefix.
struct Knowledge {
    const SortedMagnitudes& a;
    std::size_t k, n;
    double e, rho, floor;

    Pos at(std::size_t i) const { return {i, i < k ? a.at(i) : 0.0}; }
    // at(i) for i in [from, to), at once (SortedMagnitudes::range).
    std::vector<Pos> run(std::size_t from, std::size_t to) const {
        std::vector<Pos> out;
        const std::vector<double> v = a.range(std::min(from, k), std::min(to, k));
        for (std::size_t i = from; i < to; ++i) out.push_back({i, i < k ? v[i - from] : 0.0});
        return out;
    }
    double mid(Pos p) const { return p.i < k ? p.v : 0.0; }
    double lo(Pos p) const { return p.i < k ? std::max(0.0, p.v - e) : 0.0; }
    double hi(Pos p) const { return p.i < k ? std::max(p.v + e, rho) : p.i < n ? rho : 0.0; }
    double clamp(double v) const { return std::max(v, floor); }  // below the floor a value is noise
    bool exact() const { return e == 0 && rho == 0; }

    // Candidate gap between position p and the next one q, in decades, with
    // its lower side clamped to the floor.
    double gap_mid(Pos p, Pos q) const { return std::log10(mid(p)) - std::log10(clamp(mid(q))); }
    Range gap_range(Pos p, Pos q) const {
        return {std::log10(lo(p)) - std::log10(clamp(hi(q))), std::log10(hi(p)) - std::log10(clamp(lo(q)))};
    }
    // How far noise moves a gap, in decades. Each value may move by up to
    // the floor (the stored type's rounding, the solver's, the input's
    // error), and a gap's lower side is clamped to the floor: log10 of a
    // side moves by at most move(v) ≤ log10 2, the larger of its moves down
    // and up (down, above twice the floor). A spectrum so moved gives its
    // own gaps noise up to spread(v) a side, the largest move within a
    // floor of v (move falls from 2·floor up). Plus log10's rounding.
    double move(double v) const {
        if (!(floor > 0)) return 0.0;
        return std::max(std::log10(clamp(v)) - std::log10(clamp(v - floor)),
                        std::log10(clamp(v + floor)) - std::log10(clamp(v)));
    }
    double spread(double v) const {
        if (!(floor > 0)) return 0.0;
        return v - floor >= 2 * floor ? move(v - floor) : std::log10(2.0);
    }
    double gap_noise(Pos p, Pos q) const { return move(mid(p)) + move(mid(q)) + 1e-12; }
    double gap_spread(Pos p, Pos q) const { return spread(mid(p)) + spread(mid(q)) + 1e-12; }
    // The most move and spread reach for a value anywhere in [lo(p), hi(p)]
    // (a partial spectrum's; an unseen one anywhere in [0, ρ]): move rises
    // to at most log10 2 up to the floor and falls from twice the floor,
    // spread falls from three times it and is log10 2 below.
    double most_move(Pos p) const {
        if (!(floor > 0)) return 0.0;
        if (hi(p) < floor) return move(hi(p));
        return lo(p) > 2 * floor ? move(lo(p)) : std::log10(2.0);
    }
    double most_spread(Pos p) const {
        if (!(floor > 0)) return 0.0;
        return lo(p) >= 3 * floor ? move(lo(p) - floor) : std::log10(2.0);
    }
    double most_gap_noise(Pos p, Pos q) const { return most_move(p) + most_move(q) + 1e-12; }
    double most_gap_spread(Pos p, Pos q) const { return most_spread(p) + most_spread(q) + 1e-12; }
    // The cut a gap places: the geometric mean of its sides.
    double cut_mid(Pos p, Pos q) const { return geometric_mean(mid(p), clamp(mid(q))); }
    // The gap and the gap cut a row reports: a partial spectrum knows its
    // dropped side only to lie under hi(q) (its unseen values anywhere in
    // [0, ρ]; a hidden negative value, which pivoted Cholesky never sees, is
    // one), so it reports the least gap that knowledge allows and the cut
    // at that gap's middle, which lies inside every consistent spectrum's
    // gap once the cut is decided. An exact spectrum's are gap_mid and
    // cut_mid, bit for bit.
    double least_gap(Pos p, Pos q) const { return gap_range(p, q).lo; }
    double least_gap_cut(Pos p, Pos q) const { return geometric_mean(lo(p), clamp(hi(q))); }
    Range cut_range(Pos p, Pos q) const {
        return {geometric_mean(lo(p), clamp(lo(q))), geometric_mean(hi(p), clamp(hi(q)))};
    }

    // Visits the gaps below positions 0, 1, …, min(k, n − 1) in order, as
    // (position, next position), until `visit` returns false. Position k
    // stands for every unseen one (they share one range).
    template <class F>
    void for_each_gap(F visit) const {
        const std::size_t last = std::min(k, n - 1);
        bool go = true;
        std::size_t i = 0;
        double prev = 0;
        if (k > 0)
            a.scan([&](double v) {
                if (i > 0) go = visit(Pos{i - 1, prev}, Pos{i, v});
                prev = v;
                ++i;
                return go && i < k;
            });
        if (go && k > 0) go = visit(Pos{k - 1, prev}, at(k));
        if (go && k <= last) visit(at(k), at(k + 1));
    }
};

// How many magnitudes exceed a tol known to lie in `t`, nominally (at t_mid
// over the known values) and whether every consistent spectrum agrees.
struct Count {
    std::size_t value = 0;
    bool decided = true;
};

Count count_above(const Knowledge& K, double t_mid, Range t) {
    auto prefix = [&](const std::function<bool(double)>& holds) { return std::min(K.a.prefix_where(holds), K.k); };
    Count c;
    c.value = prefix([&](double v) { return v > t_mid; });
    if (K.exact()) return c;
    const std::size_t surely = prefix([&](double v) { return std::max(0.0, v - K.e) > t.hi; });
    std::size_t maybe = prefix([&](double v) { return std::max(v + K.e, K.rho) > t.lo; });
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
// A gap another spectrum within noise could choose: the count it keeps and
// the values on its sides (positions kept − 1 and kept), known where it was
// found: a structure's sorted view finds a position's value by a search
// over all its rows, too slow to repeat for each of n tied gaps.
struct TiedCut {
    std::size_t kept = 0;
    double last_kept = 0, first_dropped = 0;  // last_kept: only when kept > 0
};

struct Choice {
    bool found = false;
    Pos at, next;  // the gap lies between these positions
    bool decided = true;
    // Gaps that noise could make the choice (see Ties): their dims join the
    // band; maybe_none: a spectrum within noise may have no eligible gap at
    // all.
    std::vector<TiedCut> tied;
    bool maybe_none = false;
};

// Gaps within noise of each other tie. The gap chosen is the first eligible
// one that could be the largest once every value moves by up to the floor:
// g + d ≥ edge, the largest g_t − d_t of an eligible gap (d: gap_noise), as
// the first of exactly equal gaps is. The edge is a maximum of continuous
// functions of the values, so rounding moves it by rounding: which of two
// equal gaps is the larger (a Kronecker factor's gap repeated near the
// floor, its noise large, and far above it, its noise small) does not
// move it. For the band, a spectrum whose values moved by
// up to the floor: its gaps are within d of these, its own noises within D
// (gap_spread). Its largest gap t was one with g_t + d_t ≥ least_top, the
// largest g − d of a gap eligible in every such spectrum; its choice j then
// has g_j + d_j + D_j ≥ g_t − d_t − D_t. So every gap j, eligible in some
// such spectrum, with g_j + d_j + D_j ≥ reach = min over those t of
// g_t − d_t − D_t may be chosen, and its dim joins the band. Two passes
// over the gaps in order: `first`, then `second`.
class Ties {
public:
    void first(double g, double d, bool eligible, bool certain) {
        if (eligible) edge_ = std::max(edge_, g - d);
        if (certain) least_top_ = std::max(least_top_, g - d);
    }
    void second(double g, double d, double spread, bool possible) {
        if (possible && g + d >= least_top_) reach_ = std::min(reach_, g - d - spread);
    }
    bool peer(double g, double d) const { return g + d >= edge_; }
    bool within_reach(double g, double d, double spread) const { return g + d + spread >= reach_; }
    double reach() const { return reach_; }
    // No gap is eligible in every spectrum within noise: one may have none.
    bool maybe_none() const { return least_top_ == -INFINITY && reach_ < INFINITY; }

private:
    double edge_ = -INFINITY, least_top_ = -INFINITY, reach_ = INFINITY;
};

bool eligible(const Knowledge& K, Pos p, Pos q, double ceiling_mid, double min_gap) {
    const double g = K.gap_mid(p, q);
    return g > 0 && g >= min_gap && K.cut_mid(p, q) <= ceiling_mid;
}

// Whether gap (p, q) is eligible in every spectrum within noise of this one
// (certain), or in some (possible). The ceiling is taken as it is, and a
// gap whose upper side lies under the floor (at most log10 2 once moved
// above it) is not counted.
bool certainly_eligible(const Knowledge& K, Pos p, Pos q, double ceiling_mid, double min_gap) {
    const double least = K.gap_mid(p, q) - K.gap_noise(p, q);
    return K.mid(p) - K.floor > K.floor && least > 0 && least >= min_gap && K.cut_mid(p, q) <= ceiling_mid;
}
bool possibly_eligible(const Knowledge& K, Pos p, Pos q, double ceiling_mid, double min_gap) {
    const double most = K.gap_mid(p, q) + K.gap_noise(p, q);
    return K.mid(p) > K.floor && most > 0 && most >= min_gap && K.cut_mid(p, q) <= ceiling_mid;
}

// A gap between two buckets' values p > q (or p, the smallest value above
// the floor, and q the largest under it, 0 when none), possibly eligible.
struct Candidate {
    double p, q, gap;
    bool eligible, certain;
};

// The choice among the gaps between buckets (from the top), with its band
// (Ties); empty when a gap inside a bucket (at most `inside` with its noise
// and spread: its width, its sides at least the bucket's least) could be
// within reach, or no gap is eligible everywhere (then one inside might be).
std::optional<Choice> choose_between(const Knowledge& K, const std::vector<Candidate>& between, double inside) {
    Ties ties;
    auto at = [](double v) { return Pos{0, v}; };
    for (const Candidate& c : between) ties.first(c.gap, K.gap_noise(at(c.p), at(c.q)), c.eligible, c.certain);
    for (const Candidate& c : between) ties.second(c.gap, K.gap_noise(at(c.p), at(c.q)), K.gap_spread(at(c.p), at(c.q)), true);
    if (ties.maybe_none() || !(ties.reach() > inside)) return std::nullopt;
    // The gap lies below the last position holding its upper value.
    auto kept_above = [&](double p) { return K.a.prefix_where([&](double v) { return v >= p; }); };
    Choice best;
    for (const Candidate& c : between) {
        const double noise = K.gap_noise(at(c.p), at(c.q));
        if (!best.found && c.eligible && ties.peer(c.gap, noise)) {
            best.found = true;
            best.at = K.at(kept_above(c.p) - 1);
            best.next = K.at(best.at.i + 1);
        } else if (ties.within_reach(c.gap, noise, K.gap_spread(at(c.p), at(c.q)))) {
            best.tied.push_back({kept_above(c.p), c.p, c.q});
        }
    }
    return best;
}

// The exact-knowledge answer of largest_gap without walking the values in
// order (which a structure's sorted view does with a heap). The values
// above the floor are put in buckets by their bit patterns, which order as
// the values do, keeping each bucket's least and greatest value. Consecutive
// values in different buckets are a non-empty bucket's least and the next
// non-empty one's greatest: those gaps, and the last one (to the floor), are
// known exactly. A gap inside bucket b is at most w_b = log10(max_b/min_b).
// When the largest eligible gap between buckets exceeds every w_b (with a
// margin for log10's rounding), no gap inside a bucket can match it; when
// none is eligible and min_gap exceeds every w_b, none inside is either.
// Otherwise (empty) the values must be walked.
std::optional<Choice> largest_gap_bucketed(const Knowledge& K, double ceiling_mid, double min_gap) {
    constexpr double margin = 1e-9;  // decades; log10's error is ~1e-13 here
    const std::size_t above = std::min(K.a.prefix_where([&](double v) { return v > K.floor; }), K.k);
    if (above == 0) return Choice{};  // the first position is at or under the floor: no gap
    const double top = K.a.at(0);
    // Every value is bucketed: only when all of them are positions (k of them).
    if (!std::isfinite(top) || K.a.size() != K.k) return std::nullopt;
    auto bits = [](double x) {
        std::uint64_t u;
        std::memcpy(&u, &x, sizeof u);
        return u;
    };
    // Values above the floor have patterns in (floor, top]: bucket by the
    // offset's high bits, at most `above` buckets.
    const std::uint64_t base = bits(K.floor) + 1, span = bits(top) - base;
    const std::size_t wanted = std::min<std::size_t>(above, 1 << 16);
    int shift = 0;
    while ((span >> shift) >= wanted) ++shift;
    const std::size_t count = static_cast<std::size_t>(span >> shift) + 1;
    std::vector<double> least(count, INFINITY), most(count, -INFINITY);
    bool sorted = true;  // every value at most the first (a list not sorted fails this)
    K.a.visit_spans([&](const double* values, std::size_t size) {
        for (std::size_t i = 0; i < size; ++i) {
            const double v = values[i];
            if (!(v > K.floor)) continue;
            const std::size_t b = static_cast<std::size_t>((bits(v) - base) >> shift);
            if (b >= count) {
                sorted = false;
                continue;
            }
            least[b] = std::min(least[b], v);
            most[b] = std::max(most[b], v);
        }
    });
    if (!sorted) return std::nullopt;
    // The largest w_b, and the largest w_b plus the noise of a gap inside
    // bucket b (both of its sides at least the bucket's least).
    double inside = 0, inside_noisy = 0;
    for (std::size_t b = 0; b < count; ++b)
        if (least[b] <= most[b]) {
            const double w = std::log10(most[b]) - std::log10(least[b]);
            inside = std::max(inside, w);
            // move falls from twice the floor up, spread from three times.
            const double moved = least[b] >= 2 * K.floor ? K.move(least[b]) : std::log10(2.0);
            const double spread = least[b] >= 3 * K.floor ? K.spread(least[b]) : std::log10(2.0);
            inside_noisy = std::max(inside_noisy, w + 2 * (moved + spread) + 4e-12);
        }
    // The eligible gaps between buckets, from the top. Known values only
    // (k ≥ 1 here), so position 0 reads as its value.
    std::vector<Candidate> between;
    double upper = -1;  // the last non-empty bucket's least
    auto consider = [&](double p, double q) {
        const Pos at{0, p}, next{0, q};
        if (possibly_eligible(K, at, next, ceiling_mid, min_gap))
            between.push_back({p, q, K.gap_mid(at, next), eligible(K, at, next, ceiling_mid, min_gap),
                               certainly_eligible(K, at, next, ceiling_mid, min_gap)});
    };
    for (std::size_t b = count; b-- > 0;) {
        if (!(least[b] <= most[b])) continue;
        if (upper >= 0) consider(upper, most[b]);
        upper = least[b];
    }
    // The smallest value above the floor, and the largest under it (its
    // noise counts: it may move above the floor).
    consider(upper, above < K.k ? K.a.at(above) : 0.0);
    if (between.empty()) {
        if (!(min_gap > inside_noisy + margin)) return std::nullopt;  // no gap inside reaches it, however moved
        return Choice{};
    }
    return choose_between(K, between, inside_noisy + margin);
}

// The first gap that is a peer of the largest eligible one, and its band
// (Ties): three walks over the gaps.
Choice first_of_ties(const Knowledge& K, double ceiling_mid, double min_gap) {
    Ties ties;
    auto walk = [&](auto visit) {
        K.for_each_gap([&](Pos p, Pos q) {
            if (!(K.mid(p) > K.floor)) return false;
            if (possibly_eligible(K, p, q, ceiling_mid, min_gap)) visit(p, q);
            return true;
        });
    };
    walk([&](Pos p, Pos q) {
        ties.first(K.gap_mid(p, q), K.gap_noise(p, q), eligible(K, p, q, ceiling_mid, min_gap),
                   certainly_eligible(K, p, q, ceiling_mid, min_gap));
    });
    walk([&](Pos p, Pos q) { ties.second(K.gap_mid(p, q), K.gap_noise(p, q), K.gap_spread(p, q), true); });
    Choice best;
    best.maybe_none = ties.maybe_none();
    walk([&](Pos p, Pos q) {
        const double g = K.gap_mid(p, q), noise = K.gap_noise(p, q);
        if (!best.found && eligible(K, p, q, ceiling_mid, min_gap) && ties.peer(g, noise)) {
            best.found = true;
            best.at = p;
            best.next = q;
        } else if (ties.within_reach(g, noise, K.gap_spread(p, q))) {
            best.tied.push_back({p.i + 1, K.mid(p), K.mid(q)});
        }
    });
    return best;
}

Choice largest_gap(const Knowledge& K, double ceiling_mid, Range ceiling, double min_gap) {
    if (K.exact())
        if (const auto fast = largest_gap_bucketed(K, ceiling_mid, min_gap)) return *fast;
    Choice best = first_of_ties(K, ceiling_mid, min_gap);
    if (K.exact()) return best;
    // Could gap (p, q) be eligible for some consistent spectrum, or tie
    // with an eligible gap (Ties: possibly eligible with its noise)? Its
    // noise is taken at its worst over the values' ranges: the ties of the
    // spectrum dense finds must be those of the found values, and an unseen
    // value (read as 0, no noise) may lie near the floor (noise up to
    // log10 2). hi only falls along the positions: none after the first
    // with hi ≤ floor.
    auto maybe_eligible = [&](Pos p, Pos q) {
        const Range g = K.gap_range(p, q);
        const double most = g.hi + K.most_gap_noise(p, q);
        return K.hi(p) > K.floor && most > 0 && most >= min_gap && K.cut_range(p, q).lo <= ceiling.hi;
    };
    if (!best.found) {
        K.for_each_gap([&](Pos p, Pos q) {
            if (maybe_eligible(p, q)) best.decided = false;
            return best.decided && K.hi(p) > K.floor;
        });
        return best;
    }
    const Range gc = K.gap_range(best.at, best.next);
    // The chosen gap is eligible in every consistent spectrum, there even
    // with its noise (certainly_eligible: so no spectrum may have none) ...
    const double noise = K.most_gap_noise(best.at, best.next);
    if (!(K.lo(best.at) - K.floor > K.floor && gc.lo - noise > 0 && gc.lo - noise >= min_gap &&
          K.cut_range(best.at, best.next).hi <= ceiling.lo))
        best.decided = false;
    // ... no other gap can beat it (an earlier one would win a tie), and
    // none comes within reach of it in any consistent spectrum (Ties: a
    // gap j with g_j + d_j + D_j ≥ g − d − D would be a peer or join the
    // band), so that the choice, the flag and the band are those of
    // every consistent spectrum: none tied.
    const double clear = gc.lo - noise - K.most_gap_spread(best.at, best.next);
    if (best.decided)
        K.for_each_gap([&](Pos p, Pos q) {
            if (p.i != best.at.i && maybe_eligible(p, q)) {
                const double gj = K.gap_range(p, q).hi;
                if (p.i < best.at.i ? gj >= gc.lo : gj > gc.lo) best.decided = false;
                if (gj + K.most_gap_noise(p, q) + K.most_gap_spread(p, q) >= clear) best.decided = false;
            }
            return best.decided && K.hi(p) > K.floor;
        });
    return best;
}

// Whether every consistent spectrum puts the largest magnitude on the same
// side of the floor.
bool top_decided(const Knowledge& K) {
    const Pos top = K.at(0);
    return K.exact() || K.lo(top) > K.floor || K.hi(top) <= K.floor;
}

// With c.tol (known to lie in `tol`) chosen: what it keeps, the gap at it,
// the band around it, and whether all of that is decided.
// `known_zero`: H is exactly zero (no stated or measured error either);
// `reach_under`: twin_reach(), how far under the floor the band looks.
void settle(const Knowledge& K, const CutOptions& opt, Range tol, bool decided, bool known_zero, double reach_under,
            Cut& c) {
    const Count kept = count_above(K, c.tol, tol);
    decided = decided && (c.rule == "gap" || kept.decided);
    c.kept = kept.value;
    if (c.kept == 0) {
        // Nothing kept: unbounded, but ambiguous unless H is known to be
        // zero: something lies above the floor, or the noise covers all of
        // H (a stated error past its eigenvalues), and any dim fits it.
        c.ambiguous = K.mid(K.at(0)) > c.floor || !known_zero;
        decided = decided && top_decided(K);
        // Every value is noise, or the dtype cut (what the stored type
        // resolves) keeps nothing though values may stand over the floor
        // (float16 with n·ε ≥ 1): the band is every dim. An explicit cut
        // past every value keeps its decade either way, below.
        const bool unresolved = c.rule == "dtype" || K.hi(K.at(0)) <= c.floor;
        if (!known_zero && unresolved) {
            c.dim_low = 0;
            c.dim_high = K.n;
            c.band_tol_low = 0;
            c.band_tol_high = INFINITY;
            c.all_noise = true;
            c.decided = decided;
            return;
        }
    } else if (c.kept < K.n) {
        const Pos below = K.at(c.kept - 1), next = K.at(c.kept);
        c.gap = K.least_gap(below, next);
        c.ambiguous = K.gap_mid(below, next) < opt.min_gap;  // the least gap's side too, once decided
        decided = decided && (K.exact() || decided_ge(K.gap_range(below, next), opt.min_gap));
    } else if (c.tol > 0) {
        // Nothing dropped: clear only when the smallest value stands min_gap
        // decades over the cut (a well-conditioned Hessian), as a dropped
        // value must stand that far under it. A gap cut lies inside the gap
        // from the smallest value down to the floor: that gap is measured,
        // as it is when a value under the floor is dropped.
        const Pos last = K.at(c.kept - 1);
        const Range under = c.rule == "gap" ? Range{c.floor, c.floor} : tol;
        c.ambiguous = std::log10(K.mid(last)) - std::log10(c.rule == "gap" ? c.floor : c.tol) < opt.min_gap;
        const Range over{std::log10(K.lo(last)) - std::log10(under.hi), std::log10(K.hi(last)) - std::log10(under.lo)};
        decided = decided && (K.exact() || decided_ge(over, opt.min_gap));
    }
    // An explicit or dtype cut is where its rule puts it, not in a gap: a
    // value over the floor and within the floor of it (noise, or two dense
    // solves' rounding, moves it to either side) makes the kept count
    // noise's choice. So does one within the twins' reach under the floor,
    // which a relabelled twin may put over it (both twins then carry the
    // flag). (Values further under are noise, flat in every count the band
    // holds; a gap cut lies a gap from its values.)
    const double reach = c.floor, noise_edge = c.floor - reach_under;
    // How far a value v moves: the floor over it, the twins' reach under it.
    auto moves = [&](double v) { return v > c.floor ? reach : reach_under; };
    bool near = false;
    if (c.rule != "gap" && reach > 0) {
        bool surely = false, maybe = false;
        for (const std::size_t i : {c.kept - 1, c.kept}) {  // the smallest kept, the largest dropped
            if (i >= K.n) continue;  // c.kept - 1 wraps when nothing is kept
            const Pos p = K.at(i);
            const double v = K.mid(p), lo = K.lo(p), hi = K.hi(p);
            near = near || (v > noise_edge && std::abs(v - c.tol) <= moves(v));
            // Every consistent value near (each within the least reach of its
            // range), or some one (the greatest).
            surely = surely || (lo > noise_edge && lo >= tol.hi - moves(lo) && hi <= tol.lo + moves(lo));
            maybe = maybe || (hi > noise_edge && hi >= tol.lo - moves(hi) && lo <= tol.hi + moves(hi));
        }
        c.ambiguous = c.ambiguous || near;
        decided = decided && (K.exact() || (near ? surely : !maybe));
    }
    // A decade either way, never lower than the floor less the twins'
    // reach (values under it are noise; one within that reach of the floor
    // may stand over it in the same Hessian relabelled, and a cut at the
    // floor then keeps it), never past the cut itself: a cut under the floor
    // keeps noise as curvature, and its band reaches up to the floor. With a
    // value near the cut, at least the floor either way, so that the band
    // holds the count with that value on either side.
    auto up = [&](double t) { return std::max(near ? t + reach : 0.0, std::max(t * band_factor, c.floor)); };
    auto down = [&](double t) {
        const double d = std::min(t, std::max(t / band_factor, noise_edge));
        return near ? std::min(d, std::max(t - reach, noise_edge)) : d;
    };
    const Count high = count_above(K, up(c.tol), {up(tol.lo), up(tol.hi)});
    const Count low = count_above(K, down(c.tol), {down(tol.lo), down(tol.hi)});
    c.dim_high = K.n - high.value;
    c.dim_low = K.n - low.value;
    c.band_tol_high = up(c.tol);
    c.band_tol_low = down(c.tol);
    c.decided = decided && high.decided && low.decided;
    if (c.below_floor) {
        // A cut under the floor: noise of the floor's size may lift any
        // value over it, exact zeros included (the same spectrum in another
        // basis comes out of a solve at ±1e-16): every value may be kept.
        c.dim_low = 0;
        c.band_tol_low = 0;
        c.ambiguous = c.ambiguous || c.dim_high > 0;
    }
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

// The rule an explicit cut reports: atol when it is alone or the larger.
static const char* explicit_rule(const CutOptions& opt, double tol) {
    return opt.atol && (!opt.rtol || tol == *opt.atol) ? "atol" : "rtol";
}

Cut choose_cut(const Magnitudes& m, const CutOptions& opt) {
    if (opt.rtol && !(*opt.rtol >= 0)) throw UsageError("rtol", "must be >= 0, got " + value_text(*opt.rtol));
    if (opt.atol && !(*opt.atol >= 0)) throw UsageError("atol", "must be >= 0, got " + value_text(*opt.atol));
    if (!(opt.min_gap >= 0)) throw UsageError("min_gap", "must be >= 0, got " + value_text(opt.min_gap));

    Cut c;
    // Rounding H to its stored type moves each eigenvalue by up to about
    // ε·‖H‖_F (Weyl); an error of the input itself moves them by its norm.
    c.floor = noise_floor(m);
    c.dim_low = c.dim_high = m.n;
    if (m.n == 0 || (c.floor == 0 && m.frobenius == 0)) {  // the zero matrix: everything is flat
        c.tol = c.band_tol_low = c.band_tol_high = opt.atol.value_or(0.0);  // rtol·max|λ| is 0
        c.rule = opt.rtol || opt.atol ? explicit_rule(opt, c.tol) : "dtype";
        c.dim_lifted = c.dim_low;  // no noise to lift a value by
        c.lift_tol = c.tol;
        return c;
    }
    const ListMagnitudes list(m.known);
    const SortedMagnitudes& known = m.sorted ? *m.sorted : list;
    const Knowledge K{known, std::min(known.size(), m.n), m.n, m.value_error, m.rest_bound, c.floor};
    const double n_eps = static_cast<double>(m.n) * m.stored_eps;
    const Pos top = K.at(0);
    c.top = K.mid(top);
    const Range amax{K.lo(top), K.hi(top)};
    // numpy.linalg.matrix_rank's default, max|λ|·n·ε, never under the floor.
    const double dtype_mid = std::max(K.mid(top) * n_eps, c.floor);
    const Range dtype{std::max(amax.lo * n_eps, c.floor), std::max(amax.hi * n_eps, c.floor)};
    bool decided = true;

    Range tol{dtype};
    c.tol = dtype_mid;
    c.rule = "dtype";
    std::vector<TiedCut> tied;
    std::vector<TiedCut> others;  // cuts noise may have auto choose instead: those keeping another count join `tied`
    auto take_gap = [&](const Choice& g) {
        decided = decided && g.decided;
        tied = g.tied;  // a spectrum within noise may choose these gaps ...
        if (g.maybe_none) {  // ... or none: the dtype cut
            const std::size_t kept = count_above(K, dtype_mid, dtype).value;
            tied.push_back({kept, kept > 0 ? K.mid(K.at(kept - 1)) : 0.0, K.mid(K.at(kept))});
        }
        if (!g.found) return;
        c.tol = K.least_gap_cut(g.at, g.next);
        tol = K.cut_range(g.at, g.next);
        c.rule = "gap";
    };
    if (opt.rtol || opt.atol) {
        const double r = opt.rtol.value_or(0.0), a = opt.atol.value_or(0.0);
        c.tol = std::max(a, r * K.mid(top));
        if (!std::isfinite(c.tol))  // a cut no float64 holds (nor JSON writes)
            throw NumericError("tol = rtol·max|λ| = " + value_text(r) + " · " + value_text(K.mid(top)) +
                               " overflows float64; give a smaller option rtol");
        tol = {std::max(a, r * amax.lo), std::max(a, r * amax.hi)};
        c.rule = explicit_rule(opt, c.tol);
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
            search = K.mid(top) > c.floor;
            decided = decided && top_decided(K);
        } else if (p.value < m.n) {
            const Pos below = K.at(p.value - 1), next = K.at(p.value);
            search = K.gap_mid(below, next) < opt.min_gap;
            decided = decided && (K.exact() || decided_ge(K.gap_range(below, next), opt.min_gap));
            // A partial spectrum's gap is known to its range, and its noise
            // to the most noise reaches there: it decides whether noise may
            // choose the other rule (below) only clear of both.
            if (!K.exact()) {
                const Range range = K.gap_range(below, next);
                const double reach = K.most_gap_noise(below, next);
                decided = decided && (range.hi < opt.min_gap - reach || range.lo > opt.min_gap + reach);
            }
        }
        if (search) take_gap(largest_gap(K, dtype_mid, dtype, opt.min_gap));
        // What a spectrum within noise may have auto choose instead (the
        // same matrix relabelled, another thread count): a value over the
        // floor and within it of the dtype cut lies on either side of the
        // cut, and the gap across the cut may lie on either side of
        // min_gap. With each count over the cut, auto keeps the dtype cut or
        // searches under it; those cuts are noise's choice too. A partial
        // spectrum with such a value leaves the row to dense.
        const Count fewer = count_above(K, dtype_mid + c.floor, {dtype.lo + c.floor, dtype.hi + c.floor});
        const Count more = count_above(K, std::max(dtype_mid - c.floor, c.floor),
                                       {std::max(dtype.lo - c.floor, c.floor), std::max(dtype.hi - c.floor, c.floor)});
        if (!K.exact() && (fewer.value != p.value || more.value != p.value)) decided = false;
        const Choice under = largest_gap(K, dtype_mid, dtype, opt.min_gap);  // the search's cut, whatever the count
        const std::size_t first = std::min(fewer.value, p.value), last = std::max(more.value, p.value);
        // Positions first − 1 to last + 1, fetched at once: a structure's
        // values within the floor of the dtype cut may number 10⁴ and more.
        const std::size_t from = first > 0 ? first - 1 : 0;
        const std::vector<Pos> near = K.run(from, std::min(last + 2, m.n + 1));
        auto pos = [&](std::size_t i) { return near[i - from]; };
        for (std::size_t count = first; count <= last; ++count) {
            // The search's cut when the gap across the dtype cut is (or
            // within noise may be) under min_gap, the dtype cut when it is
            // (or may be) not.
            bool look = count == 0 && K.mid(top) > c.floor, keep = !look;
            if (count > 0 && count < m.n) {
                const Pos below = pos(count - 1), next = pos(count);
                const double g = K.gap_mid(below, next), noise = K.gap_noise(below, next);
                look = g - noise < opt.min_gap;
                keep = g + noise >= opt.min_gap;
            }
            if (look && under.found) {
                others.push_back({under.at.i + 1, K.mid(under.at), K.mid(under.next)});
                others.insert(others.end(), under.tied.begin(), under.tied.end());
            }
            if (keep || !under.found || under.maybe_none)
                others.push_back({count, count > 0 ? K.mid(pos(count - 1)) : 0.0, K.mid(pos(count))});
        }
    }

    settle(K, opt, tol, decided, m.frobenius == 0 && m.input_noise == 0, twin_reach(m.n, m.frobenius), c);
    for (const TiedCut& t : others)
        if (t.kept != c.kept) tied.push_back(t);
    // Gaps within noise of the chosen one: noise picks the dim among them.
    for (const TiedCut& t : tied) {
        c.ambiguous = true;
        // |λ| > the next value keeps at most these, |λ| ≥ the last one at
        // least these (exactly, unless the two are equal: a ±v pair): the
        // negative band read at them holds every count the gap allows.
        const std::size_t kept = t.kept;
        const double most = kept > 0 ? std::nextafter(t.last_kept, 0.0) : INFINITY;
        const double fewest = t.first_dropped;
        if (m.n - kept < c.dim_low) c.dim_low = m.n - kept, c.band_tol_low = std::min(c.band_tol_low, most);
        if (m.n - kept > c.dim_high) c.dim_high = m.n - kept, c.band_tol_high = std::max(c.band_tol_high, fewest);
    }
    c.input_floor = std::max(m.stored_eps * m.frobenius, m.input_error);
    // Within ν + t of zero, an exact zero too may come out over tol.
    c.lift_tol = c.tol - c.input_floor - twin_reach(m.n, m.frobenius);
    const Count lifted = count_above(K, c.lift_tol, {c.lift_tol, c.lift_tol});
    if (!(c.lift_tol >= 0) || !lifted.decided) c.lift_tol = -1;
    c.dim_lifted = c.lift_tol < 0 ? 0 : std::min(c.dim_low, m.n - lifted.value);
    return c;
}

}  // namespace basinvol
