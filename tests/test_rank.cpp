// The ranking rule: fewest curved directions first, then log-volume; ties,
// mixed n, saddles last, compare, and places that noise may decide.
#include <basinvol/rank/ranking.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <limits>
#include <map>
#include <vector>

using namespace basinvol;

namespace {
Row row(const char* name, std::size_t n, std::size_t dim, double logv, std::size_t neg = 0) {
    Row r;
    r.source = name;
    r.ok = true;
    r.n = n;
    r.dim = r.dim_low = r.dim_high = r.dim_lifted = dim;
    r.rank = n - dim;
    r.log_volume = logv;
    r.negative = r.negative_low = r.negative_high = neg;
    return r;
}
template <class C>
std::string words(const C& c) {
    std::string out;
    for (const auto& x : c) out += (out.empty() ? "" : " ") + x;
    return "{" + out + "}";
}
bool has(const Row& r, const char* w) { return r.warnings.has(parse_warning(w).value()); }
// The rows' sources in order, and their places (0: no place).
std::vector<std::string> sources(const std::vector<Row>& rows) {
    std::vector<std::string> v;
    for (const Row& r : rows) v.push_back(r.source);
    return v;
}
std::vector<std::size_t> places(const std::vector<Row>& rows) {
    std::vector<std::size_t> v;
    for (const Row& r : rows) v.push_back(r.place.value_or(0));
    return v;
}
}  // namespace

TEST_CASE("dimension first, then log-volume; error rows last with no place") {
    Row err;
    err.source = "bad";
    std::vector<Row> rows = {row("a", 10, 2, 50.0), err, row("b", 10, 3, -100.0), row("c", 10, 2, 60.0)};
    rank_rows(rows, {});
    REQUIRE(rows.size() == 4);
    // more flat directions wins, whatever its volume
    CHECK(sources(rows) == std::vector<std::string>{"b", "c", "a", "bad"});
    CHECK(places(rows) == std::vector<std::size_t>{1, 2, 3, 0});
    CHECK_FALSE(rows[3].place.has_value());
    CHECK_FALSE(has(rows[0], "place_uncertain"));
}

TEST_CASE("log-volumes on one --tie-tol step share a place") {
    std::vector<Row> rows = {row("a", 5, 1, 1.0), row("b", 5, 1, 1.0 + 1e-9), row("c", 5, 1, 0.5)};
    RankOptions opt;
    opt.tie_tol = 1e-6;
    rank_rows(rows, opt);
    CHECK(places(rows) == std::vector<std::size_t>{1, 1, 3});
}

TEST_CASE("a log-volume just under half a step is in the cell below") {
    // 0.49999999999999994 + 0.5 rounds to 1.0: the cell must not be taken
    // from that sum. With --tie-tol 1 it shares place with 0, not with 1.
    const double under_half = std::nextafter(0.5, 0.0);
    std::vector<Row> rows = {row("one", 5, 1, 1.0), row("under", 5, 1, under_half), row("zero", 5, 1, 0.0)};
    RankOptions opt;
    opt.tie_tol = 1;
    rank_rows(rows, opt);
    CHECK(sources(rows) == std::vector<std::string>{"one", "under", "zero"});
    CHECK(places(rows) == std::vector<std::size_t>{1, 2, 2});
    CHECK(compare_rows(rows[1], rows[2], opt).sign == 0);
    CHECK(compare_rows(rows[0], rows[1], opt).sign > 0);
    // Exactly half goes up, as does −0.5 (to 0).
    std::vector<Row> halves = {row("half", 5, 1, 0.5), row("one", 5, 1, 1.0), row("minus", 5, 1, -0.5), row("z", 5, 1, 0.0)};
    rank_rows(halves, opt);
    CHECK(places(halves) == std::vector<std::size_t>{1, 1, 3, 3});
}

TEST_CASE("ties do not chain: rank and compare agree on every pair") {
    // 0.9e-6 apart each: "within tie_tol of a neighbour" would chain all five
    // into one place while compare orders the ends.
    std::vector<Row> rows;
    for (int i = 0; i < 5; ++i) rows.push_back(row("r", 7, 2, 3.0 + 0.9e-6 * i));
    rows.push_back(row("far", 7, 2, 2.0));
    RankOptions opt;
    std::vector<Row> ranked = rows;
    rank_rows(ranked, opt);
    // The grid of tie_tol keeps them apart (cells 3000000 to 3000004): five
    // places, the largest log-volume first, then "far".
    for (const Row& r : ranked) {
        CAPTURE(r.log_volume);
        const long step = std::lround((3.0 + 0.9e-6 * 4 - r.log_volume) / 0.9e-6);
        CHECK(*r.place == (r.source == "far" ? 6u : static_cast<std::size_t>(step) + 1));
    }
    for (const Row& a : ranked)
        for (const Row& b : ranked) {
            const Comparison c = compare_rows(a, b, opt);
            if (c.sign > 0) CHECK(*a.place < *b.place);
            if (c.sign < 0) CHECK(*a.place > *b.place);
            if (c.sign == 0) CHECK(*a.place == *b.place);
        }
}

TEST_CASE("random rows: places are a consistent total preorder with compare") {
    std::mt19937_64 rng(20261201);
    std::uniform_int_distribution<int> n_of(3, 6), dim_of(0, 3), step(0, 6);
    for (int trial = 0; trial < 50; ++trial) {
        std::vector<Row> rows;
        for (int i = 0; i < 12; ++i) {
            const int n = n_of(rng);
            rows.push_back(row("x", static_cast<std::size_t>(n), static_cast<std::size_t>(std::min(dim_of(rng), n)),
                               1.0 + 0.4e-6 * step(rng), static_cast<std::size_t>(step(rng) % 2)));
        }
        RankOptions opt;
        opt.saddles_last = trial % 2 == 0;
        rank_rows(rows, opt);
        for (const Row& a : rows)
            for (const Row& b : rows) {
                const int s = compare_rows(a, b, opt).sign;
                CHECK(s == -compare_rows(b, a, opt).sign);
                if (s > 0) CHECK(*a.place < *b.place);
                if (s == 0) CHECK(*a.place == *b.place);
            }
    }
}

TEST_CASE("rows of different n rank by curved directions r, then log-volume") {
    // r: small 2, large 4, flat 2 (n 5, dim 3). Equal r: volumes in the same units.
    std::vector<Row> rows = {row("small", 3, 1, 100.0), row("large", 5, 1, -100.0), row("flat", 5, 3, -200.0)};
    Ranking r = rank_rows(rows, {});
    CHECK(r.mixed_n);
    CHECK(sources(rows) == std::vector<std::string>{"small", "flat", "large"});
    CHECK(places(rows) == std::vector<std::size_t>{1, 2, 3});
    CHECK(has(rows[1], "mixed_n"));
    // compare follows the same rule, and marks the pair as rank marks it
    const Comparison across = compare_rows(rows[0], rows[1], {});
    CHECK(across.sign == 1);
    CHECK((across.warnings_a.has(Warning::mixed_n) && across.warnings_b.has(Warning::mixed_n)));
    CHECK(compare_rows(rows[1], rows[2], {}).by == Decider::curved);
    const Comparison alike = compare_rows(rows[1], rows[1], {});
    CHECK_FALSE((alike.warnings_a.has(Warning::mixed_n) || alike.warnings_b.has(Warning::mixed_n)));
}

TEST_CASE("--negatives last ranks saddles after every minimum") {
    std::vector<Row> rows = {row("saddle", 10, 5, 10.0, 2), row("min", 10, 1, 0.0)};
    RankOptions opt;
    opt.saddles_last = true;
    rank_rows(rows, opt);
    CHECK(rows[0].source == "min");
    std::vector<Row> plain = {row("saddle", 10, 5, 10.0, 2), row("min", 10, 1, 0.0)};
    rank_rows(plain, {});
    CHECK(plain[0].source == "saddle");
}

TEST_CASE("--negatives last: a saddle whose negative values may lie within the band may be a minimum") {
    RankOptions last;
    last.saddles_last = true;
    Row min = row("min", 4, 1, 2.5), saddle = row("saddle", 4, 0, 18.8, 1);
    saddle.negative_high = 1;  // settled: the band's cuts all keep its negative value
    saddle.negative_low = 1;
    CHECK_FALSE(compare_rows(min, saddle, last).noise_decides);
    // The negative value lies within the band: a decade up, it is flat.
    saddle.dim_high = 1;
    saddle.negative_low = 0;
    Comparison c = compare_rows(min, saddle, last);
    CHECK(c.sign == 1);
    CHECK(c.noise_decides);
    CHECK(c.reason.find("may make a saddle a minimum") != std::string::npos);
    // A minimum whose band's lowest cut keeps a negative value may be a saddle:
    // against a settled saddle of fewer curved directions the order may turn.
    Row maybe = row("maybe", 4, 1, 1.0), settled = row("settled", 4, 2, 0.0, 1);
    maybe.dim_low = 0;
    maybe.negative_high = 1;
    settled.negative_low = settled.negative_high = 1;
    c = compare_rows(maybe, settled, last);
    CHECK(c.sign == 1);
    CHECK(c.noise_decides);
    // Without --negatives last the saddle rule does not apply (dims decide here).
    Row apart_a = row("a", 10, 6, 0.0), apart_b = row("b", 10, 1, 0.0, 1);
    apart_b.negative_high = 1;  // negative_low 0: its status is unsettled, but no status orders the rows
    CHECK_FALSE(compare_rows(apart_a, apart_b, {}).noise_decides);
    // Under it, a minimum of fewer curved directions stays above the saddle
    // whether or not the saddle is one: not noise.
    CHECK_FALSE(compare_rows(apart_a, apart_b, last).noise_decides);
    std::vector<Row> rows = {saddle, min, row("a", 4, 3, 0.0)};
    rank_rows(rows, last);
    CHECK(sources(rows) == std::vector<std::string>{"a", "min", "saddle"});
    CHECK_FALSE(has(rows[0], "place_uncertain"));
    CHECK(has(rows[1], "place_uncertain"));
    CHECK(has(rows[2], "place_uncertain"));
}

TEST_CASE("compare says what decided") {
    Comparison c = compare_rows(row("a", 4, 2, 0.0), row("b", 4, 1, 9.0), {});
    CHECK(c.sign == 1);
    CHECK(c.reason.find("dimension") == 0);
    c = compare_rows(row("a", 4, 1, 0.0), row("b", 4, 1, 9.0), {});
    CHECK(c.sign == -1);
    CHECK(c.reason.find("volume") == 0);
    c = compare_rows(row("a", 4, 1, 1.0), row("b", 4, 1, 1.0), {});
    CHECK(c.sign == 0);
    CHECK(c.reason.find("tie") == 0);
    CHECK_FALSE(c.noise_decides);
}

TEST_CASE("noise decides an order when the tolerance bands overlap") {
    Row a = row("a", 10, 4, 0.0), b = row("b", 10, 3, 5.0);
    CHECK_FALSE(compare_rows(a, b, {}).noise_decides);
    b.dim_high = 4;  // a cut a decade higher would give b a's dimension
    Comparison c = compare_rows(a, b, {});
    CHECK(c.sign == 1);
    CHECK(c.noise_decides);
    CHECK(c.reason.find("noise may decide") != std::string::npos);
    // Equal dims decided by volume: noisy when either rank is unsettled.
    Row x = row("x", 10, 3, 1.0), y = row("y", 10, 3, 2.0);
    CHECK_FALSE(compare_rows(x, y, {}).noise_decides);
    x.warnings.add(Warning::ambiguous_rank);
    CHECK(compare_rows(x, y, {}).noise_decides);

    std::vector<Row> rows = {a, b, row("c", 10, 1, 0.0)};
    rank_rows(rows, {});
    CHECK(has(rows[0], "place_uncertain"));
    CHECK(has(rows[1], "place_uncertain"));
    CHECK_FALSE(has(rows[2], "place_uncertain"));
    // Ranking again (rows read back) does not repeat the warning.
    rank_rows(rows, {});
    CHECK(rows[0].warnings.names() == std::vector<std::string>{"place_uncertain"});
}

TEST_CASE("noise decides an order of equal dims when the log-volumes' error bars overlap") {
    // The same Hessian with its parameters relabelled: its log-volume from
    // two solvers (or two BLAS runs) differs inside the error bars.
    Row a = row("a", 600, 555, 127.2085562), b = row("b", 600, 555, 127.2085543);
    a.log_volume_error = b.log_volume_error = 4.2e-4;
    Comparison c = compare_rows(a, b, {});
    CHECK(c.sign == 1);
    CHECK(c.noise_decides);
    CHECK(c.reason.find("log_volume_error A 0.00042, B 0.00042") != std::string::npos);
    // Apart by more than both bars: decided.
    b.log_volume = a.log_volume - 8.5e-4;
    CHECK_FALSE(compare_rows(a, b, {}).noise_decides);
    // An unknown error (NaN) bounds nothing.
    b.log_volume_error = std::numeric_limits<double>::quiet_NaN();
    CHECK(compare_rows(a, b, {}).noise_decides);
    // The input noise's reach counts as the error bar does, on either row.
    a.log_volume_error = b.log_volume_error = 1e-9;
    b.log_volume = a.log_volume - 8.5e-4;
    a.log_volume_noise = 8.5e-4;
    c = compare_rows(a, b, {});
    CHECK(c.noise_decides);
    CHECK(c.reason.find("log_volume_noise A 0.00085, B 0") != std::string::npos);
    a.log_volume_noise = 8.5e-4 - 3e-6;  // clear by more than a --tie-tol cell
    CHECK_FALSE(compare_rows(a, b, {}).noise_decides);
    b.log_volume_noise = 3e-6;  // the lower row's reach counts as the upper one's
    CHECK(compare_rows(a, b, {}).noise_decides);
    b.log_volume_noise = std::numeric_limits<double>::quiet_NaN();  // unknown: a row saved without it
    CHECK(compare_rows(a, b, {}).noise_decides);
    // A tie on the grid with bars as wide as its step could be an order.
    Row x = row("x", 10, 3, 1.0), y = row("y", 10, 3, 1.0 + 1e-7);
    RankOptions opt;
    REQUIRE(compare_rows(x, y, opt).by == Decider::tie);
    CHECK_FALSE(compare_rows(x, y, opt).noise_decides);
    x.log_volume_error = opt.tie_tol;
    CHECK(compare_rows(x, y, opt).noise_decides);
    // Bars far under the step, but reaching across a cell's edge.
    Row edge_a = row("ea", 10, 3, 0.5e-6 - 1e-12), edge_b = row("eb", 10, 3, 0.5e-6 - 3e-12);
    edge_a.log_volume_error = edge_b.log_volume_error = 2e-12;
    REQUIRE(compare_rows(edge_a, edge_b, opt).by == Decider::tie);
    CHECK(compare_rows(edge_a, edge_b, opt).noise_decides);
    // Apart on the grid, but one value within its error of the other's cell:
    // noise decides between an order and a tie (either way round).
    RankOptions step;
    step.tie_tol = 1;
    Row at_edge = row("ae", 10, 3, 0.5), under = row("u", 10, 3, 0.3);
    at_edge.log_volume_error = 2e-15;
    REQUIRE(compare_rows(at_edge, under, step).by == Decider::volume);
    CHECK(compare_rows(at_edge, under, step).noise_decides);
    CHECK(compare_rows(under, at_edge, step).noise_decides);
    at_edge.log_volume_error = 0;  // exactly on the edge, with no error: cell 1, decided
    CHECK_FALSE(compare_rows(at_edge, under, step).noise_decides);
    at_edge.log_volume = 0.75;  // bars short of the edge: decided
    at_edge.log_volume_error = 0.2;
    CHECK_FALSE(compare_rows(at_edge, under, step).noise_decides);
    at_edge.log_volume_error = 0.3;  // 0.45 reaches the tie's cell
    CHECK(compare_rows(at_edge, under, step).noise_decides);
    std::vector<Row> edge_rows = {under, at_edge};
    rank_rows(edge_rows, step);
    CHECK(has(edge_rows[0], "place_uncertain"));
    CHECK(has(edge_rows[1], "place_uncertain"));
    // On no grid (tie_tol 0) equal values with any error could be an order.
    RankOptions exact;
    exact.tie_tol = 0;
    Row same = row("s", 10, 3, 1.0);
    REQUIRE(compare_rows(same, same, exact).by == Decider::tie);
    CHECK_FALSE(compare_rows(same, same, exact).noise_decides);
    same.log_volume_error = 1e-16;
    CHECK(compare_rows(same, same, exact).noise_decides);
    std::vector<Row> rows = {a, row("c", 600, 555, 0.0), row("d", 600, 556, 0.0)};
    rows[1].log_volume = a.log_volume - 1e-4;
    rows[1].log_volume_error = 1e-4;
    rank_rows(rows, {});
    REQUIRE(sources(rows) == std::vector<std::string>{"d", "a", "c"});  // the larger dim first
    CHECK_FALSE(has(rows[0], "place_uncertain"));
    CHECK(has(rows[1], "place_uncertain"));
    CHECK(has(rows[2], "place_uncertain"));
}

TEST_CASE("a --tie-tol finer than float64 resolves compares the values themselves") {
    Row a = row("a", 4, 1, 2.472132729), b = row("b", 4, 1, 1.118107629);
    for (const double tie_tol : {1e-320, 1e-310, 1e-300, 0.0}) {
        CAPTURE(tie_tol);
        RankOptions opt;
        opt.tie_tol = tie_tol;
        const Comparison c = compare_rows(a, b, opt);
        CHECK(c.by == Decider::volume);
        CHECK(c.sign == 1);
    }
}

TEST_CASE("under --negatives drop, equal dims with volumes over different directions rank by those directions") {
    // rank + dim + negative = n: X (5, -3, 0, 0) has a volume over 1
    // direction, Z (500, 300, 0, 0) over 2, at the same dim 2.
    Row x = row("x", 4, 2, 0.235, 1), z = row("z", 4, 2, -4.12);
    x.rank = 1;
    const Comparison c = compare_rows(x, z, {});
    CHECK(c.by == Decider::curved);
    CHECK(c.sign == 1);
    CHECK_FALSE(c.noise_decides);
    CHECK(c.reason.find("volume directions: A 1 < B 2 at equal dimension") != std::string::npos);
    CHECK(compare_rows(z, x, {}).sign == -1);
    std::vector<Row> rows = {z, x};
    rank_rows(rows, {});
    CHECK(sources(rows) == std::vector<std::string>{"x", "z"});
    CHECK(places(rows) == std::vector<std::size_t>{1, 2});
}

TEST_CASE("regularized places follow the regularized volume") {
    std::vector<Row> rows = {row("a", 4, 2, 0.0), row("b", 4, 1, 9.0)};
    rows[0].log_volume_regularized = -3.0;
    rows[1].log_volume_regularized = 2.0;
    rank_regularized(rows, 1e-6);
    CHECK(*rows[0].place_regularized == 2);
    CHECK(*rows[1].place_regularized == 1);
}

// rank_rows finds the uncertain places by sorting (O(m log m) but for rows
// whose saddle-or-minimum is unsettled); compare_rows decides each pair
// alone. On adversarial families (bands, ambiguous ranks, error bars that
// meet or straddle grid cells, unbounded and zero errors, ties, mixed n,
// ranks apart at one dim, statuses within the band, no grid and grids finer
// than float64) a place is uncertain exactly when noise may decide its order
// against some other row.
TEST_CASE("place_uncertain is exactly: noise may decide the order against some row") {
    std::mt19937_64 rng(20261204);
    std::uniform_int_distribution<int> pick(0, 1 << 30);
    auto one_in = [&](int k) { return pick(rng) % k == 0; };
    std::size_t uncertain_seen = 0, certain_seen = 0;
    std::map<std::string, std::size_t> cause_seen;
    for (int trial = 0; trial < 3000; ++trial) {
        RankOptions opt;
        opt.saddles_last = trial % 2 == 0;
        const double grids[] = {1e-6, 0.0, 0.25, 1e-320, 1.0};
        opt.tie_tol = grids[pick(rng) % 5];
        std::vector<Row> rows;
        const int m = 2 + pick(rng) % 14;
        for (int i = 0; i < m; ++i) {
            const std::size_t n = one_in(4) ? 8 : 6;
            const std::size_t dim = static_cast<std::size_t>(pick(rng) % 4);
            // Log-volumes on a coarse grid, nudged, far from 0 (where an error
            // of 1e-14 is below half an ulp: v ± e == v), or at sums that round
            // (0.1 + 0.2 against 0 with errors 0.1 and 0.2).
            const double base = one_in(4) ? 1000.0 : 0.0;
            double v = base + 0.25 * (pick(rng) % 9) + (one_in(3) ? 1e-7 * (pick(rng) % 5) : 0.0);
            if (one_in(6)) v = one_in(2) ? 0.1 + 0.2 : 0.0;
            Row r = row("x", n, dim, v, one_in(3) ? 1 : 0);
            r.source = "r" + std::to_string(i);
            if (one_in(3)) r.dim_low = dim > 0 ? dim - 1 - pick(rng) % dim : 0;
            if (one_in(3)) r.dim_high = std::min(n, dim + 1 + pick(rng) % 2);
            if (one_in(8)) r.warnings.add(Warning::ambiguous_rank);
            if (one_in(5)) r.rank -= std::min<std::size_t>(r.rank, 1);  // --negatives drop: fewer volume directions
            const double errors[] = {0.0, 1e-7, 0.1, 0.3, std::numeric_limits<double>::quiet_NaN(), INFINITY, 2e-6,
                                     1e-14, 0.2};
            r.log_volume_error = errors[pick(rng) % 9];
            const double noises[] = {0.0, 0.0, 0.1, 1e-7, std::numeric_limits<double>::quiet_NaN(), 0.05};
            r.log_volume_noise = noises[pick(rng) % 6];
            // Another draw of the input may keep a flat value under the band, or not.
            r.dim_lifted = one_in(4) && r.dim_low > 0 ? pick(rng) % r.dim_low : r.dim_low;
            if (r.negative > 0 && one_in(2)) r.negative_low = 0;  // a saddle that may be a minimum
            if (r.negative == 0 && one_in(6)) r.negative_high = 1;  // a minimum that may be a saddle
            rows.push_back(r);
        }
        std::vector<Row> ranked = rows;
        rank_rows(ranked, opt);
        for (const Row& a : ranked) {
            bool noisy = false;
            std::set<std::string> causes;  // the union over the rows compare finds it noisy against
            for (const Row& b : ranked) {
                if (&a == &b) continue;
                const Comparison c = compare_rows(a, b, opt);
                noisy = noisy || c.noise_decides;
                CHECK(c.noise_decides == !c.uncertain_by.empty());
                causes.insert(c.uncertain_by.begin(), c.uncertain_by.end());
            }
            CHECK_MESSAGE(has(a, "place_uncertain") == noisy, "trial " << trial << " row " << a.source);
            CHECK_MESSAGE(std::set<std::string>(a.uncertain_by.begin(), a.uncertain_by.end()) == causes,
                          "trial " << trial << " row " << a.source << ": rank " << words(a.uncertain_by) << ", compare "
                                             << words(causes));
            for (const auto& x : causes) ++cause_seen[x];
            ++(noisy ? uncertain_seen : certain_seen);
        }
    }
    // Both answers, and every cause, are common in the families above.
    CHECK(uncertain_seen > 1000);
    CHECK(certain_seen > 1000);
    for (const char* x : {"dim", "log_volume", "negative"}) CHECK_MESSAGE(cause_seen[x] > 300, x);
}

TEST_CASE("place_uncertain on no grid: an error below half an ulp still parts a tie; overlaps as compare rounds them") {
    RankOptions exact;
    exact.tie_tol = 0;
    // v ± 1e-14 == v at v = 1000: the tie is decided by errors all the same.
    Row a = row("a", 6, 2, 1000.0), b = row("b", 6, 2, 1000.0);
    a.log_volume_error = b.log_volume_error = 1e-14;
    REQUIRE(compare_rows(a, b, exact).noise_decides);
    std::vector<Row> rows = {a, b};
    rank_rows(rows, exact);
    CHECK(has(rows[0], "place_uncertain"));
    CHECK(has(rows[1], "place_uncertain"));
    // Error bars that meet only as rounded: the flags follow compare.
    for (const double eb : {0.2, 0.19999999999999998}) {
        Row c = row("c", 6, 2, 0.0), d = row("d", 6, 2, 0.1 + 0.2);
        c.log_volume_error = 0.1;
        d.log_volume_error = eb;
        const bool noisy = compare_rows(c, d, exact).noise_decides;
        std::vector<Row> two = {c, d};
        rank_rows(two, exact);
        CHECK(has(two[0], "place_uncertain") == noisy);
        CHECK(has(two[1], "place_uncertain") == noisy);
    }
}

TEST_CASE("noise decides an order exactly when some cuts within the bands give another order") {
    // Rows of one r ordered by volume: a row with a higher volume whose band
    // can only lift it (fewer curved directions) stays above one whose band
    // is settled; it may be reordered only by falling, or the lower one rising.
    Row a = row("a", 4, 1, 5.12), b = row("b", 4, 1, 2.47);
    a.dim_high = 2;  // a cut a decade up makes a value flat: a rises
    CHECK_FALSE(compare_rows(a, b, {}).noise_decides);
    CHECK_FALSE(compare_rows(b, a, {}).noise_decides);
    std::vector<Row> rows = {a, b};
    rank_rows(rows, {});
    CHECK_FALSE(has(rows[0], "place_uncertain"));
    CHECK_FALSE(has(rows[1], "place_uncertain"));
    Row low = a;  // the same band on the lower volume: rising, it passes b
    low.log_volume = 1.0;
    CHECK(compare_rows(low, b, {}).noise_decides);
    // A flat value under the band (whose lower end stops at the noise
    // floor) that another draw of the input may lift over tol: the band
    // does not show it, so it is not taken as one-sided.
    Row lifted = a;
    lifted.dim_lifted = 0;
    CHECK(compare_rows(lifted, b, {}).noise_decides);
    CHECK(compare_rows(lifted, b, {}).reason.find("A's dim_lifted 0 is under its band") != std::string::npos);
    rows = {lifted, b};
    rank_rows(rows, {});
    CHECK(has(rows[0], "place_uncertain"));
    CHECK(has(rows[1], "place_uncertain"));
    // On the lower row a kept value only takes it further under: the order stays.
    Row lower = b;
    lower.dim_lifted = 0;
    CHECK_FALSE(compare_rows(a, lower, {}).noise_decides);
    CHECK_FALSE(compare_rows(lower, a, {}).noise_decides);
    // A tie either row of which may fall is not settled.
    Row one = row("one", 4, 1, 3.0), tied = row("tied", 4, 1, 3.0);
    REQUIRE(compare_rows(one, tied, {}).by == Decider::tie);
    CHECK_FALSE(compare_rows(one, tied, {}).noise_decides);
    tied.dim_lifted = 0;
    CHECK(compare_rows(one, tied, {}).noise_decides);
    CHECK(compare_rows(one, tied, {}).reason.find("B's dim_lifted 0 is under its band") != std::string::npos);
    // Under --negatives last a minimum that another draw of the input may
    // give a negative value (negative_high counts it) may be a saddle.
    RankOptions last;
    last.saddles_last = true;
    Row saddle = row("s", 4, 2, 0.0, 1);
    Row minimum = row("m", 4, 1, -5.0);
    minimum.dim_lifted = 0;  // a value it may lift, positive: still a minimum
    CHECK_FALSE(compare_rows(minimum, saddle, last).noise_decides);
    minimum.negative_high = 1;
    CHECK(compare_rows(minimum, saddle, last).noise_decides);
    CHECK(compare_rows(minimum, saddle, last).reason.find("A's dim_lifted 0") != std::string::npos);
    minimum.dim_lifted = minimum.dim_low;  // the band's own cut keeps it: named by the band alone
    CHECK(compare_rows(minimum, saddle, last).noise_decides);
    CHECK(compare_rows(minimum, saddle, last).reason.find("dim_lifted") == std::string::npos);
    Row falls = a;  // a cut a decade down keeps one more value: a falls under b
    falls.dim_high = 1;
    falls.dim_low = 0;
    CHECK(compare_rows(falls, b, {}).noise_decides);
    CHECK(compare_rows(falls, b, {}).reason.find("band 0..1") != std::string::npos);

    // Against enumeration: every pair of cuts within the two bands, each
    // giving r = n − dim; at the rows' own r the order is the one measured,
    // at any other common r nobody measured the volumes (unknown).
    std::mt19937_64 rng(20261206);
    std::uniform_int_distribution<int> pick(0, 1 << 30);
    std::size_t noisy_seen = 0, settled_seen = 0;
    for (int trial = 0; trial < 20000; ++trial) {
        RankOptions opt;  // errors 0 and a grid: only the bands move an order
        Row r[2];
        for (Row& x : r) {
            const std::size_t n = pick(rng) % 4 == 0 ? 7 : 6;
            const std::size_t dim = 1 + static_cast<std::size_t>(pick(rng) % 4);
            x = row("x", n, dim, 0.5 * (pick(rng) % 3));
            if (pick(rng) % 2) x.dim_low = dim - 1 - static_cast<std::size_t>(pick(rng) % dim);
            if (pick(rng) % 2) x.dim_high = dim + 1 + static_cast<std::size_t>(pick(rng) % 2);
            x.dim_lifted = x.dim_low;
            if (pick(rng) % 5 == 0) x.rank -= 1;  // --negatives drop: a volume over fewer directions
        }
        const Comparison c = compare_rows(r[0], r[1], opt);
        std::set<int> orders;
        bool unknown = false;
        for (std::size_t x = r[0].n - r[0].dim_high; x <= r[0].n - r[0].dim_low; ++x)
            for (std::size_t y = r[1].n - r[1].dim_high; y <= r[1].n - r[1].dim_low; ++y) {
                const bool own = x == r[0].n - r[0].dim && y == r[1].n - r[1].dim;
                if (x != y)
                    orders.insert(x < y ? 1 : -1);
                else if (!own)
                    unknown = true;
                else if (r[0].rank != r[1].rank)
                    orders.insert(r[0].rank < r[1].rank ? 1 : -1);
                else
                    orders.insert(r[0].log_volume > r[1].log_volume ? 1 : r[0].log_volume < r[1].log_volume ? -1 : 0);
            }
        const bool noisy = unknown || orders.size() > 1;
        CHECK_MESSAGE(c.noise_decides == noisy, "trial " << trial << ": " << c.reason);
        // Errors 0: only a band can decide it.
        CHECK(c.uncertain_by == (noisy ? std::vector<std::string>{"dim"} : std::vector<std::string>{}));
        CHECK(orders.count(c.sign) == 1);  // the measured order is among them
        ++(noisy ? noisy_seen : settled_seen);
    }
    CHECK(noisy_seen > 2000);
    CHECK(settled_seen > 2000);
}

TEST_CASE("rows measured at different thresholds are ranked with mixed_threshold, and compare says so") {
    Row a = row("a", 6, 2, 1.5), b = row("b", 6, 2, 0.5), c = row("c", 6, 1, -3.0);
    std::vector<Row> rows = {a, b, c};
    rank_rows(rows, {});
    for (const Row& r : rows) CHECK_FALSE(has(r, "mixed_threshold"));
    b.threshold = 0.01;  // log V moves by r/2 log T: b's volume at T = 1 would be 0.5 + 2 log 100
    rows = {a, b, c};
    const Ranking ranked = rank_rows(rows, {});
    CHECK(ranked.mixed_threshold);
    for (const Row& r : rows) CHECK(has(r, "mixed_threshold"));
    CHECK(compare_rows(a, b, {}).reason.find("different thresholds (T: A 1, B 0.01)") != std::string::npos);
    // Decided by dimension, the thresholds do not enter the reason.
    CHECK(compare_rows(b, c, {}).reason.find("thresholds") == std::string::npos);
    // A threshold not known (a row read back without one) is not another T.
    std::vector<Row> unknown = {a, c, row("d", 6, 2, 0.0)};
    unknown[1].threshold = unknown[2].threshold = std::numeric_limits<double>::quiet_NaN();
    CHECK_FALSE(rank_rows(unknown, {}).mixed_threshold);
    for (const Row& r : unknown) CHECK_FALSE(has(r, "mixed_threshold"));
    Row nan_t = b;
    nan_t.threshold = std::numeric_limits<double>::quiet_NaN();
    CHECK(compare_rows(a, nan_t, {}).reason.find("thresholds") == std::string::npos);
    // Ranking again with the rows of one threshold drops the warning.
    rows.erase(std::remove_if(rows.begin(), rows.end(), [](const Row& r) { return r.source == "b"; }), rows.end());
    rank_rows(rows, {});
    for (const Row& r : rows) CHECK_FALSE(has(r, "mixed_threshold"));
}

TEST_CASE("rows computed under --negatives abs and drop are ranked with mixed_negatives, and compare says so") {
    // Two saddles of one dim with three negative values each: b dropped its
    // three (rank + dim + negative = n), so it holds fewer volume directions
    // and ranks above a by its policy alone.
    Row a = row("a", 10, 2, 1.0, 3), b = row("b", 10, 2, 1.0, 3), c = row("c", 10, 3, 0.0);
    std::vector<Row> rows = {a, b, c};
    CHECK_FALSE(rank_rows(rows, {}).mixed_negatives);
    for (const Row& r : rows) CHECK_FALSE(has(r, "mixed_negatives"));
    b.rank -= 3;
    rows = {a, b, c};
    CHECK(rank_rows(rows, {}).mixed_negatives);
    // The saddles carry it; a minimum reads alike under both policies.
    for (const Row& r : rows) CHECK(has(r, "mixed_negatives") == (r.source != "c"));
    const std::string why = compare_rows(b, a, {}).reason;
    CHECK_MESSAGE(why.find("different option negatives (A drop, B abs or last)") != std::string::npos, why);
    CHECK_MESSAGE(why.find("(negative directions: A 3 dropped, B 3 kept;") != std::string::npos, why);
    const Comparison pair = compare_rows(b, a, {});
    CHECK((pair.warnings_a.has(Warning::mixed_negatives) && pair.warnings_b.has(Warning::mixed_negatives)));
    CHECK_MESSAGE(why.find("B's rank and volume hold its 3 negative directions, A's leave its 3 out") !=
                      std::string::npos, why);
    // A row without negative values reads alike under both: no mix with either.
    rows = {b, c};
    CHECK_FALSE(rank_rows(rows, {}).mixed_negatives);
    rows = {a, c};
    CHECK_FALSE(rank_rows(rows, {}).mixed_negatives);
    CHECK(compare_rows(b, c, {}).reason.find("negatives") == std::string::npos);
    // A ranking of the rows of one policy drops the warning the merge gave.
    rows = {a, b};
    rank_rows(rows, {});
    rows.erase(std::remove_if(rows.begin(), rows.end(), [](const Row& r) { return r.source == "b"; }), rows.end());
    rank_rows(rows, {});
    for (const Row& r : rows) CHECK_FALSE(has(r, "mixed_negatives"));
}

TEST_CASE("a row cut lower against its largest value than another, keeping a value under its level, is mixed_level") {
    // Relative cuts: A's at 1e-6 of its largest value (a float32 copy's
    // dtype cut), B's at 1e-14 (float64's); each row's smallest kept value
    // lies over max(noise_floor·10^gap, and 10·tol when dim_high = dim).
    auto cut = [](Row r, const char* rule, double norm, double tol, double floor, std::optional<double> gap) {
        r.cut_rule = rule;
        r.spectral_norm = norm;
        r.tol = tol;
        r.noise_floor = floor;
        r.gap = gap;
        return r;
    };
    const Row coarse = cut(row("a", 8, 3, 0.0), "dtype", 1.0, 1e-6, 1e-7, 2.0);
    // B keeps a value from 5e-15·10³ = 5e-12 on: under A's level, 1e-6.
    const Row fine = cut(row("b", 8, 1, 5.0), "dtype", 1.0, 1e-14, 5e-15, 3.0);
    std::vector<Row> rows = {coarse, fine};
    Ranking ranked = rank_rows(rows, {});
    CHECK(ranked.mixed_level == 1);
    CHECK(ranked.largest_relative_cut == 1e-6);
    for (const Row& r : rows) CHECK(has(r, "mixed_level") == (r.source == "b"));
    const Comparison c = compare_rows(coarse, fine, {});
    CHECK_MESSAGE(c.reason.find("B's cut lies lower against its largest value (tol/spectral_norm 1e-14") !=
                      std::string::npos, c.reason);
    CHECK_MESSAGE(c.reason.find("option rtol 1e-06 counts both at one level") != std::string::npos, c.reason);
    CHECK((c.warnings_b.has(Warning::mixed_level) && !c.warnings_a.has(Warning::mixed_level)));
    // The same at another scale: relative cuts compare, not absolute ones.
    rows = {coarse, cut(fine, "gap", 100.0, 1e-12, 5e-13, 3.0)};
    CHECK(rank_rows(rows, {}).mixed_level == 1);
    // B's smallest kept value at 5e-15·10^12 = 5e-3, over A's level: one dim
    // at either cut. A stated error that raises B's floor and cut (1e-9)
    // with its smallest kept value at 0.1 is clear too.
    for (const Row& clear : {cut(fine, "dtype", 1.0, 1e-14, 5e-15, 12.0), cut(fine, "dtype", 1.0, 1e-9, 1e-9, 8.0)}) {
        rows = {coarse, clear};
        CHECK(rank_rows(rows, {}).mixed_level == 0);
        CHECK(compare_rows(coarse, clear, {}).warnings_b.empty());
        CHECK(compare_rows(coarse, clear, {}).reason.find("lies lower") == std::string::npos);
    }
    // A's level is its cut: B's smallest kept value at 0.95e-6 lies under
    // it, at 1.05e-6 over it.
    for (const double smallest : {0.95e-6, 1.05e-6}) {
        rows = {coarse, cut(fine, "dtype", 1.0, 1e-14, 5e-15, std::log10(smallest / 5e-15))};
        CHECK(rank_rows(rows, {}).mixed_level == (smallest < 1e-6 ? 1u : 0u));
    }
    // One rule's cuts, ulps apart (n·ε, or one rtol, over max|λ| rounded
    // per row), are one level: no warning however close B's kept values.
    const double eps = std::numeric_limits<double>::epsilon();
    rows = {cut(coarse, "dtype", 1.0, 8 * eps * (1 + 2 * eps), 1e-15, 0.1),
            cut(fine, "dtype", 3.0, 3 * 8 * eps, 1e-15, 0.1)};
    CHECK(rank_rows(rows, {}).mixed_level == 0);
    rows = {cut(coarse, "rtol", 7.0, 7 * 3e-7 * (1 + 4 * eps), 1e-15, 0.1), cut(fine, "rtol", 1.0, 3e-7, 1e-15, 0.1)};
    CHECK(rank_rows(rows, {}).mixed_level == 0);
    // A gap cut lies at the geometric mean of its sides: the kept side at
    // tol·10^(gap/2). B cut by gap at 1e-8 over a gap of 8 decades keeps
    // nothing under 1e-4, over A's level: clear.
    rows = {coarse, cut(fine, "gap", 1.0, 1e-8, 1e-15, 8.0)};
    CHECK(rank_rows(rows, {}).mixed_level == 0);
    rows = {coarse, cut(fine, "gap", 1.0, 1e-8, 1e-15, 3.0)};  // kept from 3e-7 on: under it
    CHECK(rank_rows(rows, {}).mixed_level == 1);
    // Nothing kept: a higher cut drops nothing more.
    rows = {coarse, cut(row("z", 8, 8, 0.0), "dtype", 1.0, 1e-14, 5e-15, std::nullopt)};
    CHECK(rank_rows(rows, {}).mixed_level == 0);
    // rtol cuts are relative too: runs at two rtol levels.
    rows = {cut(coarse, "rtol", 1.0, 1e-6, 1e-7, 2.0), cut(fine, "rtol", 1.0, 1e-12, 5e-15, 3.0)};
    CHECK(rank_rows(rows, {}).mixed_level == 1);
    // atol cuts are one absolute level by choice; a row without spectral_norm
    // (saved before it) has no known relative cut.
    rows = {cut(coarse, "atol", 1.0, 1e-6, 1e-7, 2.0), cut(fine, "atol", 1.0, 1e-6, 5e-15, 3.0)};
    CHECK(rank_rows(rows, {}).mixed_level == 0);
    rows = {coarse, cut(fine, "dtype", std::numeric_limits<double>::quiet_NaN(), 1e-14, 5e-15, 3.0)};
    CHECK(rank_rows(rows, {}).mixed_level == 0);
    // Explicit cuts: no relative rows to compare, one rule.
    rows = {cut(coarse, "atol", 1.0, 1e-6, 1e-7, 2.0), cut(fine, "atol", 1.0, 1e-6, 5e-15, 3.0)};
    CHECK_FALSE(rank_rows(rows, {}).mixed_cut);
}

TEST_CASE("mixed_level is exactly: compare finds some other row against which it is") {
    std::mt19937_64 rng(20261207);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::size_t seen = 0;
    for (int trial = 0; trial < 2000; ++trial) {
        std::vector<Row> rows;
        const int m = 2 + static_cast<int>(u(rng) * 8);
        for (int i = 0; i < m; ++i) {
            Row r = row("x", 8, static_cast<std::size_t>(u(rng) * 9), u(rng));
            r.source = "r" + std::to_string(i);
            const char* rules[] = {"dtype", "gap", "rtol", "atol", ""};
            r.cut_rule = rules[static_cast<int>(u(rng) * 5)];
            r.spectral_norm = u(rng) < 0.1 ? std::numeric_limits<double>::quiet_NaN() : std::pow(10.0, 4 * u(rng) - 2);
            r.tol = r.spectral_norm * std::pow(10.0, -14 * u(rng) - 1);
            r.noise_floor = r.tol * std::pow(10.0, -2 * u(rng));
            if (u(rng) < 0.8 && r.dim < r.n && r.dim > 0) r.gap = 12 * u(rng);
            r.dim_high = u(rng) < 0.5 ? r.dim : std::min<std::size_t>(r.n, r.dim + 1);
            rows.push_back(r);
        }
        std::vector<Row> ranked = rows;
        rank_rows(ranked, {});
        for (const Row& a : ranked) {
            bool against = false;
            for (const Row& b : ranked)
                if (&a != &b && compare_rows(a, b, {}).warnings_a.has(Warning::mixed_level)) against = true;
            CHECK_MESSAGE(has(a, "mixed_level") == against, "trial " << trial << " row " << a.source);
            seen += against ? 1 : 0;
        }
    }
    CHECK(seen > 500);
}

TEST_CASE("rows cut by different rules are ranked with mixed_cut, and compare says so") {
    auto cut = [](Row r, const char* rule, double tol) {
        r.cut_rule = rule;
        r.tol = tol;
        return r;
    };
    const Row a = row("a", 8, 3, 0.0), b = row("b", 8, 1, 5.0);
    // Explicit and automatic: each dim counts the values under its own cut.
    for (const char* automatic : {"dtype", "gap"}) {
        std::vector<Row> rows = {cut(a, "atol", 1e-5), cut(b, automatic, 2e-13)};
        CHECK(rank_rows(rows, {}).mixed_cut);
        for (const Row& r : rows) CHECK(has(r, "mixed_cut"));
    }
    std::vector<Row> rows = {cut(a, "rtol", 1e-5), cut(b, "dtype", 2e-13)};
    CHECK(rank_rows(rows, {}).mixed_cut);
    const Comparison c = compare_rows(cut(a, "atol", 1e-5), cut(b, "dtype", 2e-13), {});
    CHECK_MESSAGE(c.reason.find("cut by different rules (cut A atol at 1e-05, B dtype at 2e-13)") != std::string::npos,
                  c.reason);
    CHECK((c.warnings_a.has(Warning::mixed_cut) && c.warnings_b.has(Warning::mixed_cut)));
    // atol at two levels; at one level, or rtol at any (each row's own max|λ|), none.
    rows = {cut(a, "atol", 1e-5), cut(b, "atol", 1e-6)};
    CHECK(rank_rows(rows, {}).mixed_cut);
    rows = {cut(a, "atol", 1e-5), cut(b, "atol", 1e-5)};
    CHECK_FALSE(rank_rows(rows, {}).mixed_cut);
    rows = {cut(a, "rtol", 1e-5), cut(b, "rtol", 3e-2), cut(row("c", 8, 2, 1.0), "atol", 1e-5)};
    CHECK_FALSE(rank_rows(rows, {}).mixed_cut);
    rows = {cut(a, "dtype", 1e-7), cut(b, "gap", 1e-9), cut(row("c", 8, 2, 1.0), "", 0.0)};
    CHECK_FALSE(rank_rows(rows, {}).mixed_cut);
    // A ranking of rows of one rule drops the warning a merge gave.
    rows = {cut(a, "atol", 1e-5), cut(b, "dtype", 2e-13)};
    rank_rows(rows, {});
    rows.pop_back();
    rank_rows(rows, {});
    CHECK_FALSE(has(rows[0], "mixed_cut"));
}

TEST_CASE("--negatives last: a cut that makes a saddle a minimum and moves its dim is noise by both") {
    RankOptions last;
    last.saddles_last = true;
    // A: a saddle of dim 29 whose negative value lies within its band (29..30):
    // cut a decade up, it is a minimum of dim 30 and, by volume, above B.
    Row a = row("a", 40, 29, 17.15, 1), b = row("b", 40, 30, 16.74);
    a.negative_low = 0;
    a.dim_high = 30;
    const Comparison c = compare_rows(a, b, last);
    CHECK(c.sign < 0);
    CHECK(c.uncertain_by == std::vector<std::string>{"dim", "negative"});
    CHECK_MESSAGE(c.reason.find("may make a saddle a minimum") != std::string::npos, c.reason);
    // An open minimum below a minimum by volume, within their reach: as a
    // saddle it would be below all the same, so only the volumes decide.
    Row open = row("o", 40, 30, 16.0), other = row("m", 40, 30, 16.0 + 1e-3);
    open.negative_high = 1;
    open.log_volume_noise = other.log_volume_noise = 1e-2;
    const Comparison d = compare_rows(open, other, last);
    CHECK(d.sign < 0);
    CHECK(d.uncertain_by == std::vector<std::string>{"log_volume"});
    CHECK_MESSAGE(d.reason.find("saddle a minimum") == std::string::npos, d.reason);
    std::vector<Row> rows = {open, other};
    rank_rows(rows, last);
    for (const Row& r : rows) CHECK(r.uncertain_by == std::vector<std::string>{"log_volume"});
}
