// The cut between flat and curved directions, and how sure it is.
#include "support.hpp"

#include <basinvol/analyze.hpp>
#include <basinvol/error.hpp>
#include <basinvol/measure/cut.hpp>
#include <basinvol/solve/rounding.hpp>
#include <basinvol/rank/ranking.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

using namespace basinvol;
using testing_support::geometric;
using testing_support::with_spectrum;

namespace {
bool has(const Row& r, const char* w) { return r.warnings.has(parse_warning(w).value()); }

// What a float64 dense spectrum tells the cut: the magnitudes `known`
// (sorted descending) of an n×n matrix of norm ‖H‖_F = frobenius.
Magnitudes float64_spectrum(std::vector<double> known, std::size_t n, double frobenius) {
    Magnitudes m;
    m.known = std::move(known);
    m.n = n;
    m.stored_eps = std::numeric_limits<double>::epsilon();
    m.frobenius = frobenius;
    return m;
}

// Planted near-equal gaps: the products of two short spectra (as a
// Kronecker factor pair's), from 1 down to 1e-12, sorted descending.
std::vector<double> product_spectrum(int trial, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> u(0, 1);
    std::vector<double> a(2 + trial % 3), b(2 + trial / 3 % 3), v;
    for (double& x : a) x = std::pow(10.0, -6 * u(rng));
    for (double& x : b) x = std::pow(10.0, -6 * u(rng));
    for (double x : a)
        for (double y : b) v.push_back(x * y);
    std::sort(v.rbegin(), v.rend());
    return v;
}

// An input error that puts the floor among the values of `v`: from under
// the smallest to past the middle one.
double noise_among(const std::vector<double>& v, int trial, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> u(0, 1);
    return v[std::min(v.size() - 1, v.size() / 2 + trial % (v.size() / 2 + 1))] * std::pow(10.0, 1 - 3 * u(rng));
}

Row run_f32(const Eigen::MatrixXd& m, CutRule rule = CutRule::automatic) {
    AnalyzeOptions opt;
    opt.method = Method::dense;
    opt.cut.rule = rule;
    return analyze_hessian(make_hessian(Eigen::MatrixXf(m.cast<float>())), opt);
}
}  // namespace

TEST_CASE("dim_lifted counts the flat values another draw of the input may lift over tol") {
    // A stated error of 1e-6 and a cut at 1.01e-6: the band's lower end
    // stops near the floor, under which 0.95e-6 lies, within the input's
    // noise of tol; 1e-9 is not (1e-9 + 1e-6 < 1.01e-6).
    Magnitudes m = float64_spectrum({1, 1, 0.95e-6, 1e-9}, 6, 1.5);
    m.input_noise = m.input_error = 1e-6;
    CutOptions opt;
    opt.atol = 1.01e-6;
    Cut c = choose_cut(m, opt);
    CHECK(c.input_floor == 1e-6);
    CHECK(c.kept == 2);
    CHECK(c.dim_low == 4);
    CHECK(c.dim_lifted == 3);
    CHECK(c.lift_tol == doctest::Approx(1e-8).epsilon(1e-3));
    // The floor the solver's alone: no draw of the input moves 0.95e-6 that far.
    m.input_noise = m.input_error = 0;
    c = choose_cut(m, opt);
    CHECK(c.input_floor == doctest::Approx(std::numeric_limits<double>::epsilon() * 1.5));
    CHECK(c.dim_low == 3);  // 0.95e-6 lies in the band (over tol/10)
    CHECK(c.dim_lifted == 3);
    // A small float64 Hessian cut at the floor (8·√n·ε·‖H‖_F, over its
    // n·ε·max|λ|) with flat values at rounding level: a draw of the input
    // moves them by ε·‖H‖_F, a relabelled solve by the twins' reach, and
    // neither reaches tol.
    Magnitudes f = float64_spectrum({1, 0.5, 3e-17}, 40, 1.2);
    c = choose_cut(f, {});
    REQUIRE(c.tol == c.floor);
    CHECK(c.dim_lifted == 38);
    // An asymmetry of the floor's size moves them as far as the floor, with
    // tol at it: every flat value, exact zeros too, may come out over it.
    f.input_noise = f.input_error = c.floor;
    c = choose_cut(f, {});
    CHECK(c.dim_low == 38);
    CHECK(c.dim_lifted == 0);
    CHECK(c.lift_tol < 0);
    // A structure's computation error of that size is not the input's: no
    // draw of the input moves a value by it.
    f.input_error = 0;
    c = choose_cut(f, {});
    CHECK(c.dim_low == 38);
    CHECK(c.dim_lifted == 38);
    // The zero matrix: nothing to lift a value by.
    c = choose_cut(float64_spectrum({}, 5, 0), {});
    CHECK(c.dim_low == 5);
    CHECK(c.dim_lifted == 5);
}

TEST_CASE("dtype cut is max|lambda| * n * eps of the stored type") {
    Magnitudes m;
    m.known = {10, 1, 1e-20};
    m.n = 3;
    m.stored_eps = std::numeric_limits<double>::epsilon();
    m.frobenius = 10.05;
    CutOptions opt;
    opt.rule = CutRule::dtype;
    Cut c = choose_cut(m, opt);
    CHECK(c.tol == doctest::Approx(10 * 3 * m.stored_eps));
    REQUIRE(c.gap.has_value());
    CHECK(*c.gap == doctest::Approx(std::log10(1 / noise_floor(m))));  // 1e-20 is under the floor
    CHECK_FALSE(c.ambiguous);
}

TEST_CASE("auto agrees with dtype where a clear gap straddles it") {
    Eigen::MatrixXd h = with_spectrum({9, 3, 1, 0.3, 0.1, 0, 0, 0}, 5);
    Row a = run_f32(h), d = run_f32(h, CutRule::dtype);
    CHECK(a.rank == 5);
    CHECK(d.rank == 5);
    CHECK(a.tol == doctest::Approx(d.tol));
    CHECK(a.cut_rule == "dtype");
}

TEST_CASE("auto recovers rank 300 of a float32-stored Hessian with spectrum 1e2..3e-3") {
    // The dtype cut (1.2e-2) drops the smallest eigenvalues; the spectrum
    // ends two decades above the float32 noise floor (~3e-5): a clear gap at
    // the true rank.
    std::vector<double> eigs = geometric(300, 1e2, 3e-3);
    eigs.resize(1000, 0.0);
    Eigen::MatrixXd h = with_spectrum(eigs, 7);
    Row a = run_f32(h);
    Row d = run_f32(h, CutRule::dtype);
    Row g = run_f32(h, CutRule::gap);
    REQUIRE(a.ok);
    CHECK(a.rank == 300);
    CHECK(a.cut_rule == "gap");
    CHECK(a.tol >= a.noise_floor);  // never below the noise floor
    REQUIRE(a.gap.has_value());
    CHECK(*a.gap >= 1.0);
    CHECK_FALSE(has(a, "ambiguous_rank"));
    CHECK(d.rank < 290);
    CHECK(d.rank > 200);
    CHECK(has(d, "ambiguous_rank"));
    CHECK(g.rank == 300);
}

TEST_CASE("a float32 continuum across the cut is reported as ambiguous") {
    Eigen::MatrixXd h = with_spectrum(geometric(400, 1.0, 1e-8), 8);
    Row a = run_f32(h);
    REQUIRE(a.ok);
    CHECK(has(a, "ambiguous_rank"));
    REQUIRE(a.gap.has_value());
    CHECK(*a.gap < 1.0);
}

TEST_CASE("auto never drops eigenvalues of a well-conditioned full-rank Hessian") {
    for (std::uint32_t seed : {1u, 2u}) {
        Eigen::MatrixXd h = with_spectrum(geometric(200, 10.0, 0.01), seed);
        AnalyzeOptions opt;
        Row a = analyze_hessian(make_hessian(h), opt);
        Row f = run_f32(h);
        CHECK(a.rank == 200);
        CHECK(f.rank == 200);
        CHECK_FALSE(a.gap.has_value());  // nothing dropped: unbounded
        CHECK_FALSE(has(a, "ambiguous_rank"));
    }
}

TEST_CASE("a full-rank Hessian whose smallest value stands within min_gap of the cut is ambiguous") {
    // Nothing dropped, but the smallest value is as near the cut as a dropped
    // one may be: its side of the cut is as unsure, and so is the dim.
    for (const double smallest : {1e-14, 3e-14, 1e-13, 1e-12}) {
        Eigen::MatrixXd h = Eigen::Vector3d(1, 1, smallest).asDiagonal();
        AnalyzeOptions opt;
        opt.method = Method::dense;
        for (const CutRule rule : {CutRule::automatic, CutRule::dtype}) {  // (gap: the 12+ decades under 1)
            opt.cut.rule = rule;
            Row r = analyze_hessian(make_hessian(h), opt);
            REQUIRE(r.ok);
            CAPTURE(smallest);
            CHECK(r.rank == 3);
            const bool near = std::log10(smallest / r.tol) < opt.cut.min_gap;
            CHECK(has(r, "ambiguous_rank") == near);
            CHECK((r.dim_high > 0) == near);  // the band says the same
        }
    }
}

TEST_CASE("no automatic cut is placed under the noise floor") {
    // A clean gap far below the float32 floor must not be taken for a cut.
    std::vector<double> eigs = geometric(50, 1.0, 1e-3);
    std::vector<double> tiny = geometric(10, 1e-12, 1e-13);
    eigs.insert(eigs.end(), tiny.begin(), tiny.end());
    eigs.resize(80, 0.0);
    Magnitudes m;
    for (double v : eigs) m.known.push_back(v);
    std::sort(m.known.rbegin(), m.known.rend());
    m.n = m.known.size();
    m.stored_eps = std::ldexp(1.0, -23);
    m.frobenius = 3;
    for (CutRule rule : {CutRule::automatic, CutRule::gap, CutRule::dtype}) {
        CutOptions opt;
        opt.rule = rule;
        Cut c = choose_cut(m, opt);
        CHECK(c.tol >= c.floor);
        // Independently: the floor is at least float32's ε·‖H‖_F, and every
        // rule keeps exactly the 50 values over it.
        CHECK(c.floor >= std::ldexp(1.0, -23) * 3);
        CHECK(c.tol >= std::ldexp(1.0, -23) * 3);
        CHECK(c.kept == 50);
    }
}

TEST_CASE("every cut scales with H, out to entries of 1e±290") {
    // A gap's cut is the geometric mean of its sides: formed as a product it
    // overflows (or underflows) past 1e±154 and keeps or drops everything.
    // Each rule's answer at scale s must be its answer at scale 1, times s:
    // on an exact spectrum, and on a partial one with error bars.
    // Two spectra: float64, where every rule finds the gap under 0.2; and
    // float32, where the dtype cut (1.4e-5) falls between 2e-5 and 1.2e-5, so
    // `auto` falls back to the clear gap under them.
    struct Family {
        std::vector<double> values;
        double eps;
    };
    const Family families[] = {{{3, 2, 1, 0.5, 0.2, 3e-12, 1e-13}, std::numeric_limits<double>::epsilon()},
                               {{3, 2, 1, 2e-5, 1.2e-5, 1e-11}, std::ldexp(1.0, -23)}};
    // Relative to the value compared (doctest's Approx adds an absolute 1e-12 here).
    const auto same = [](double got, double want) { return std::abs(got - want) <= 1e-12 * std::abs(want); };
    auto at_scale = [&](const Family& f, double s, bool partial) {
        Magnitudes m;
        for (double v : f.values) m.known.push_back(v * s);
        m.n = 40;
        m.stored_eps = f.eps;
        m.frobenius = 3.9 * s;
        if (partial) m.rest_bound = m.value_error = 1e-14 * s;
        return m;
    };
    const CutRule rules[] = {CutRule::automatic, CutRule::gap, CutRule::dtype, CutRule::automatic};
    for (const Family& f : families)
        for (bool partial : {false, true})
            for (int rule = 0; rule < 4; ++rule) {
                CutOptions opt;
                opt.rule = rules[rule];
                if (rule == 3) opt.rtol = 1e-2;
                const Cut one = choose_cut(at_scale(f, 1, partial), opt);
                if (f.eps < 1e-10 && opt.rule == CutRule::gap) CHECK(one.kept == 5);
                if (f.eps > 1e-10 && rule == 0) {  // auto: the gap under the dtype cut
                    CHECK(one.rule == "gap");
                    CHECK(one.kept == 5);
                }
                for (double s : {1e-290, 1e-150, 1e150, 1e290}) {  // the values stay normal
                    CAPTURE(s);
                    CAPTURE(partial);
                    CAPTURE(rule);
                    const Cut c = choose_cut(at_scale(f, s, partial), opt);
                    CHECK(c.kept == one.kept);
                    CHECK(c.decided == one.decided);
                    CHECK(c.rule == one.rule);
                    CHECK(c.dim_low == one.dim_low);
                    CHECK(c.dim_high == one.dim_high);
                    CHECK(same(c.tol / s, one.tol));
                    CHECK(same(c.floor / s, one.floor));
                    REQUIRE(c.gap.has_value() == one.gap.has_value());
                    if (c.gap) CHECK(same(*c.gap, *one.gap));
                }
            }
}

TEST_CASE("explicit atol and rtol; a cut under the floor is flagged") {
    Eigen::MatrixXd h = with_spectrum({4, 2, 1e-3, 1e-6, 0}, 9);
    AnalyzeOptions opt;
    opt.cut.atol = 1e-4;
    Row r = analyze_hessian(make_hessian(h), opt);
    CHECK(r.rank == 3);
    CHECK(r.tol == doctest::Approx(1e-4));
    CHECK(r.cut_rule == "atol");
    opt.cut.atol.reset();
    opt.cut.rtol = 1e-2;
    r = analyze_hessian(make_hessian(h), opt);
    CHECK(r.rank == 2);
    CHECK(r.tol == doctest::Approx(4e-2));
    opt.cut.rtol.reset();
    opt.cut.atol = 1e-20;
    r = analyze_hessian(make_hessian(h), opt);
    CHECK(has(r, "cut_below_floor"));
    // The zero matrix: every direction is flat under any cut, and the row
    // still reports the cut it was given.
    const Hessian zero = make_hessian(Eigen::MatrixXd(Eigen::MatrixXd::Zero(4, 4)));
    opt.cut.atol = 1e-4;
    r = analyze_hessian(zero, opt);
    CHECK(r.dim == 4);
    CHECK(r.tol == 1e-4);
    CHECK(r.cut_rule == "atol");
    opt.cut.atol.reset();
    opt.cut.rtol = 1e-2;
    r = analyze_hessian(zero, opt);
    CHECK(r.dim == 4);
    CHECK(r.tol == 0);
    CHECK(r.cut_rule == "rtol");
    // rtol·max|λ| past float64: an error row, not a cut of +inf (which JSON
    // cannot write); the largest that holds drops everything.
    opt.cut.rtol = 1e308;
    r = analyze_hessian(make_hessian(h), opt);
    CHECK_FALSE(r.ok);
    CHECK(r.error.find("overflows float64; give a smaller option rtol") != std::string::npos);
    opt.cut.rtol = 1e307;
    r = analyze_hessian(make_hessian(h), opt);
    REQUIRE(r.ok);
    CHECK(r.dim == 5);
    CHECK(std::isfinite(r.tol));
}

TEST_CASE("an explicit cut within the floor of a value leaves the kept count to noise: ambiguous_rank") {
    // The same Hessian relabelled (or solved by ScaLAPACK) moves a value at
    // tol to either side of it: every such row says ambiguous_rank and holds
    // both dims in its band, whichever side its own rounding chose.
    Magnitudes m = float64_spectrum({1, 0.5, 1e-3}, 40, 3);
    CutOptions opt;
    const double floor = noise_floor(m);
    for (double at : {1e-3 - floor / 2, 1e-3, 1e-3 + floor / 2}) {
        CAPTURE(at);
        opt.atol = at;
        const Cut c = choose_cut(m, opt);
        CHECK(c.ambiguous);
        CHECK(c.decided);
        CHECK(c.dim_low == 37);
        CHECK(c.dim_high == 38);
    }
    // Clear of the floor either way: the gaps beside it (2.7 decades above,
    // 10 below) make the count sure.
    for (double at : {1e-3 - 4 * floor, 1e-3 + 4 * floor}) {
        CAPTURE(at);
        opt.atol = at;
        CHECK_FALSE(choose_cut(m, opt).ambiguous);
    }
    // rtol the same way: tol = rtol·max|λ|.
    opt.atol.reset();
    opt.rtol = 1e-3;
    CHECK(choose_cut(m, opt).ambiguous);
    opt.rtol.reset();
    // A cut within two floors of the floor: the band reaches the floor's
    // width either way, so it holds the count with the value on either
    // side; a value under the floor is noise, flat in every count. Under
    // the floor (0.7e-6) the noise may lift every value over the cut: dim 0.
    Magnitudes near_floor = float64_spectrum({1, 0.5, 0}, 40, 1.2);
    near_floor.input_noise = 1e-6;
    REQUIRE(noise_floor(near_floor) == 1e-6);
    struct Case {
        double value, atol;
        bool ambiguous;
        std::size_t dim_low, dim_high;
    };
    for (const Case& k : {Case{1.2e-6, 1.5e-6, true, 37, 38}, Case{1.9e-6, 1.5e-6, true, 37, 38},
                          Case{2.4e-6, 1.5e-6, true, 37, 38}, Case{1.2e-6, 0.7e-6, true, 0, 38},
                          Case{0.8e-6, 1.5e-6, false, 38, 38}, Case{3.5e-5, 1.5e-6, false, 37, 37}}) {
        CAPTURE(k.value);
        CAPTURE(k.atol);
        near_floor.known[2] = k.value;
        opt.atol = k.atol;
        const Cut c = choose_cut(near_floor, opt);
        CHECK(c.ambiguous == k.ambiguous);
        CHECK(c.dim_low == k.dim_low);
        CHECK(c.dim_high == k.dim_high);
        CHECK(c.dim_low <= 40 - c.kept);
        CHECK(40 - c.kept <= c.dim_high);
    }
    opt.atol.reset();
    // The dtype cut, max|λ|·n·ε, is where its rule puts it too: under
    // --cut dtype, and under auto where a clear gap straddles it.
    Magnitudes at_dtype = float64_spectrum({1, 0}, 10000, 1);
    const double dtype = 10000 * std::numeric_limits<double>::epsilon();
    REQUIRE(dtype > 10 * noise_floor(at_dtype) / 2);
    for (const CutRule rule : {CutRule::dtype, CutRule::automatic}) {
        for (const double over : {-0.3, 0.3, 3.0}) {
            CAPTURE(over);
            at_dtype.known[1] = dtype + over * noise_floor(at_dtype);
            CutOptions o;
            o.rule = rule;
            const Cut c = choose_cut(at_dtype, o);
            CHECK(c.rule == "dtype");
            CHECK(c.ambiguous == (std::abs(over) <= 1));
            if (c.ambiguous) CHECK(c.dim_high - c.dim_low >= 1);
        }
    }
    // A partial spectrum (each value known within value_error) decides it
    // only when every value its bounds allow is on the same side of "within
    // the floor of tol" (the kept count itself decided in each case here:
    // no interval reaches tol).
    opt.rtol.reset();
    m.rest_bound = floor / 10;
    auto partial = [&](double tol_over, double error) {
        opt.atol = 1e-3 + tol_over * floor;
        m.value_error = error * floor;
        return choose_cut(m, opt);
    };
    Cut c = partial(1.5, 0.1);  // never within the floor
    CHECK_FALSE(c.ambiguous);
    CHECK(c.decided);
    c = partial(1.5, 0.9);  // may be within it
    CHECK_FALSE(c.ambiguous);
    CHECK_FALSE(c.decided);
    c = partial(0.5, 0.1);  // always within it
    CHECK(c.ambiguous);
    CHECK(c.decided);
    c = partial(0.9, 0.5);  // may be outside it
    CHECK(c.ambiguous);
    CHECK_FALSE(c.decided);
}

TEST_CASE("a cut under the floor has a band from dim 0 (noise lifts every value over it) up to the floor's") {
    // Two exact zeros come out of the eigensolver as noise of ~1e-16 in a
    // rotated basis and as exact zeros in the diagonal one: a cut at 1e-20
    // keeps them as curvature in one and not the other. Its band must hold
    // every dim the noise allows, in both: from 0 (the noise lifts every
    // value over the cut) up to the floor's count, flagged ambiguous.
    for (int seed : {0, 1, 2, 3}) {
        CAPTURE(seed);
        const std::vector<double> e{3, 2, 1, 0, 0};
        const Eigen::MatrixXd h = seed ? with_spectrum(e, seed)
                                       : Eigen::MatrixXd(Eigen::Map<const Eigen::VectorXd>(e.data(), 5).asDiagonal());
        AnalyzeOptions opt;
        opt.method = Method::dense;
        opt.cut.atol = 1e-20;
        const Row r = analyze_hessian(make_hessian(h), opt);
        REQUIRE(has(r, "cut_below_floor"));
        CHECK(has(r, "ambiguous_rank"));
        CHECK(r.dim_low == 0);
        CHECK(r.dim <= r.dim_high);
        CHECK(r.dim_high == 2);  // at the floor the two zeros are flat
        CHECK(r.negative_high == 2);  // and either may be negative
        // A cut under the floor that every value clears by more than the
        // floor: nothing for noise to decide.
        const Row full = analyze_hessian(make_hessian(Eigen::MatrixXd(Eigen::Vector3d(3, 2, 1).asDiagonal())), opt);
        REQUIRE(has(full, "cut_below_floor"));
        CHECK_FALSE(has(full, "ambiguous_rank"));
        CHECK(full.dim_low == 0);
        CHECK(full.dim_high == 0);
        // Ranked against a row whose curved count the band holds, noise decides.
        opt.cut.atol.reset();
        const Row clean = analyze_hessian(make_hessian(with_spectrum({3, 2, 1, 1, 0}, seed)), opt);
        REQUIRE(clean.dim == 1);
        CHECK(compare_rows(clean, r, RankOptions{}).noise_decides);
    }
}

TEST_CASE("a partial spectrum decides the cut only when its rest bound is under tol") {
    Magnitudes m;
    m.known = {5, 2, 1};
    m.n = 100;
    m.stored_eps = std::numeric_limits<double>::epsilon();
    m.frobenius = 5.5;
    m.rest_bound = m.value_error = 1e-14;
    Cut c = choose_cut(m, {});
    CHECK(c.decided);
    CHECK(c.kept == 3);
    REQUIRE(c.gap.has_value());
    // The gap's lower side is the noise floor, not the (smaller) rest bound.
    CHECK(*c.gap == doctest::Approx(std::log10(1 / noise_floor(m))));
    m.rest_bound = 1e-3;
    CHECK_FALSE(choose_cut(m, {}).decided);
}

TEST_CASE("gaps within noise of each other tie: the first is chosen and the others' dims join the band") {
    // 2, 1e-4, 6e-6, 3e-10 (a Kronecker product's spectrum): two gaps of
    // 4.301 decades, the second known to ±0.0014 decades under a floor of
    // 1e-12. Rounding in the last digit must not flip the dim between 1 and 3.
    Magnitudes m;
    m.n = 4;
    m.stored_eps = std::numeric_limits<double>::epsilon();
    m.frobenius = 2.0;
    m.input_noise = 1e-12;
    CutOptions opt;
    opt.rule = CutRule::gap;
    for (const double last : {3e-10 * (1 - 1e-12), 3e-10, 3e-10 * (1 + 1e-12)})
        for (const double error : {0.0, 1e-20}) {  // an exact list, and a partial one
            CAPTURE(last);
            CAPTURE(error);
            m.known = {2, 1e-4, 6e-6, last};
            m.value_error = m.rest_bound = error;
            const Cut c = choose_cut(m, opt);
            CHECK(c.kept == 1);  // the first of the tied gaps
            CHECK(c.ambiguous);
            CHECK(c.dim_low == 1);
            CHECK(c.dim_high == 3);
        }
    // A second gap a decade larger than the first is no tie.
    m.known = {2, 1e-4, 6e-6, 3e-11};
    m.value_error = m.rest_bound = 0;
    const Cut c = choose_cut(m, opt);
    CHECK(c.kept == 3);
    CHECK_FALSE(c.ambiguous);
    CHECK(c.dim_low == 1);
    CHECK(c.dim_high == 1);
}

// A spectrum moved by up to its floor: every value by u·floor, u in [−1, 1]
// (the extremes half the time), re-sorted.
std::vector<double> moved(const std::vector<double>& v, double floor, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> u(-1, 1);
    std::vector<double> w = v;
    for (double& x : w) {
        const double t = u(rng);
        x = std::max(0.0, x + (rng() % 2 ? t : (t < 0 ? -1.0 : 1.0)) * floor);
    }
    std::sort(w.rbegin(), w.rend());
    return w;
}

// `moves` spectra, each v with every value moved by `move` and sorted
// descending: each one's dim under `cut_of` lies inside c's band.
template <class Move, class CutOf>
void check_moved_in_band(const Cut& c, std::size_t n, const std::vector<double>& v, int moves, Move move, CutOf cut_of) {
    for (int i = 0; i < moves; ++i) {
        std::vector<double> w = v;
        for (double& x : w) x = move(x);
        std::sort(w.rbegin(), w.rend());
        const Cut d = cut_of(w);
        CAPTURE(i);
        CHECK(n - d.kept >= c.dim_low);
        CHECK(n - d.kept <= c.dim_high);
    }
}

TEST_CASE("property: a spectrum moved within its noise floor gets a dim inside the band") {
    // Random spectra with planted near-equal gaps (products of two short
    // spectra, as in a Kronecker factor pair) and values near, on and under
    // the floor; each moved by up to the floor. Both as an exact list and as
    // a partial spectrum (whose gaps are walked in order). The gap rule: its
    // choice is what ties decide (auto's dtype cut at the floor is a count
    // at the floor, which the band does not claim to hold under such moves).
    std::mt19937_64 rng(20261203);
    std::uniform_real_distribution<double> u(0, 1);
    int ties = 0;
    for (int trial = 0; trial < 3000; ++trial) {
        const std::vector<double> v = product_spectrum(trial, rng);
        Magnitudes m;
        m.n = v.size() + 3;
        m.stored_eps = std::numeric_limits<double>::epsilon();
        m.frobenius = v.front() * std::sqrt(double(v.size()));
        // A floor among the values: from under the smallest to past the middle one.
        m.input_noise = noise_among(v, trial, rng);
        const double floor = noise_floor(m);
        m.known = v;
        m.value_error = m.rest_bound = trial % 2 ? 1e-30 * v.back() : 0.0;
        CutOptions opt;
        opt.rule = CutRule::gap;
        const Cut c = choose_cut(m, opt);
        ties += c.ambiguous ? 1 : 0;
        // The band's cuts keep what its dims say (where the negative band is read).
        auto kept_above = [&](double t) { return std::size_t(std::count_if(v.begin(), v.end(), [t](double x) { return x > t; })); };
        CAPTURE(trial);
        if (c.dim_low == 0 && c.dim_high == m.n) {  // every value under the floor: any dim, every value may be kept
            CHECK(c.band_tol_low == 0);
            CHECK(c.band_tol_high == INFINITY);
        } else {
            CHECK(kept_above(c.band_tol_low) == m.n - c.dim_low);
            CHECK(kept_above(c.band_tol_high) == m.n - c.dim_high);
        }
        for (int move = 0; move < 8; ++move) {
            Magnitudes w = m;
            w.known = moved(v, floor, rng);
            const Cut d = choose_cut(w, opt);
            CAPTURE(trial);
            CAPTURE(move);
            CHECK(m.n - d.kept >= c.dim_low);
            CHECK(m.n - d.kept <= c.dim_high);
        }
    }
    CHECK(ties > 0);  // the family does plant ties
}

TEST_CASE("property: a partial spectrum's decided cut is the full spectrum's, ties, flag and band included") {
    // The full spectrum: planted near-equal gaps (products, as a Kronecker
    // pair's) and values near, on and under the floor. A partial solver
    // sees the values above a threshold h, each within e of the truth, and
    // bounds the rest by ρ ≥ h (Cholesky's pivot stop, a sketch's noise
    // cut). Where it decides the cut, the cut must be the full one's: the
    // ties an unseen value near the floor makes (its noise, up to log10 2)
    // included. Gap, auto and explicit rules.
    std::mt19937_64 rng(20261205);
    std::uniform_real_distribution<double> u(0, 1);
    int decided = 0, decided_ambiguous = 0, undecided = 0;
    for (int trial = 0; trial < 4000; ++trial) {
        const std::vector<double> v = product_spectrum(trial, rng);
        Magnitudes full;
        full.n = v.size() + 3;
        full.stored_eps = trial % 4 ? std::numeric_limits<double>::epsilon() : 0x1p-24;
        full.frobenius = v.front() * std::sqrt(double(v.size()));
        full.input_noise = noise_among(v, trial, rng);
        const double floor = noise_floor(full);
        full.known = v;
        // What the partial solver sees: values over h, each off by up to e.
        const double h = floor * std::pow(10.0, 1.5 * u(rng) - 0.5);
        const double e = trial % 3 == 0 ? 0.0 : floor * std::pow(10.0, -3 * u(rng));
        Magnitudes part = full;
        part.known.clear();
        for (double x : v)
            if (x > h) part.known.push_back(std::max(0.0, x + e * (2 * u(rng) - 1)));
        std::sort(part.known.rbegin(), part.known.rend());
        part.value_error = e + 1e-300;
        part.rest_bound = h * (1 + 1e-12);
        CutOptions opt;
        switch (trial % 4) {
            case 0: opt.rule = CutRule::gap; break;
            case 1: opt.rule = CutRule::automatic; break;
            case 2: opt.atol = v[trial % v.size()] * (1 + (u(rng) - 0.5) * 1e-12); break;  // at a value
            default: opt.rule = CutRule::automatic; opt.min_gap = 0.3 + u(rng); break;
        }
        const Cut c = choose_cut(full, opt);
        const Cut p = choose_cut(part, opt);
        if (!p.decided) {
            ++undecided;
            continue;
        }
        ++decided;
        decided_ambiguous += c.ambiguous ? 1 : 0;
        CAPTURE(trial);
        CHECK(p.kept == c.kept);
        CHECK(p.ambiguous == c.ambiguous);
        CHECK(p.dim_low == c.dim_low);
        CHECK(p.dim_high == c.dim_high);
        CHECK(p.rule == c.rule);
    }
    CHECK(decided > 500);
    CHECK(undecided > 100);
    CHECK(decided_ambiguous > 0);  // decided rows that are flagged: the flag comes out the same
}

TEST_CASE("gaps near the floor: its clamp moves them, and their own noise grows when moved") {
    // Cases a moved spectrum once took outside the band (no warning).
    struct Case {
        std::vector<double> values;
        std::size_t n;
    };
    for (const Case& k : {Case{{749.691, 76.4094, 26.2713, 21.9089, 15.9738, 14.3256, 12.057}, 9},
                          Case{{std::pow(10.0, 9.9), 1e5, 0.5}, 4}, Case{{86.7473, 7.75026, 1.01401}, 5},
                          Case{{31.0227, 8.30966, 4.24299, 1.06559}, 6}}) {
        Magnitudes m;
        m.n = k.n;
        m.known = k.values;
        m.stored_eps = std::numeric_limits<double>::epsilon();
        m.frobenius = k.values.front();
        m.input_noise = 1.0;  // the floor
        CutOptions opt;
        opt.rule = CutRule::gap;
        const Cut c = choose_cut(m, opt);
        std::mt19937_64 rng(7);
        for (int move = 0; move < 2000; ++move) {
            Magnitudes w = m;
            w.known = moved(k.values, 1.0, rng);
            const Cut d = choose_cut(w, opt);
            CAPTURE(k.values.front());
            CHECK(m.n - d.kept >= c.dim_low);
            CHECK(m.n - d.kept <= c.dim_high);
        }
    }
}

TEST_CASE("a Hessian wholly under its noise floor is ambiguous with the band of every dim") {
    Magnitudes m;
    m.n = 5;
    m.stored_eps = std::numeric_limits<double>::epsilon();
    m.known = {1e-3, 1e-4, 0, 0, 0};
    m.frobenius = std::hypot(1e-3, 1e-4);
    m.input_noise = 1.0;  // a stated error past every eigenvalue
    Cut c = choose_cut(m, {});
    CHECK(c.kept == 0);
    CHECK(c.ambiguous);
    CHECK(c.dim_low == 0);
    CHECK(c.dim_high == 5);
    // The zero matrix stated exact is flat in every direction, for certain.
    m.known = {0, 0, 0, 0, 0};
    m.frobenius = m.input_noise = 0;
    c = choose_cut(m, {});
    CHECK_FALSE(c.ambiguous);
    CHECK(c.dim_low == 5);
    CHECK(c.dim_high == 5);
    // With a stated error it could hide curvature up to that error.
    m.input_noise = 1e-3;
    c = choose_cut(m, {});
    CHECK(c.ambiguous);
    CHECK(c.dim_low == 0);
}

TEST_CASE("a dtype cut past every value over the floor leaves any dim; an explicit one keeps its decade") {
    // float16 storage at n·ε ≥ 1: the dtype cut (n·ε·max|λ|) passes max|λ|
    // while values stand over the floor ε·‖H‖_F. What the stored type
    // resolves says nothing of the dim: the band is 0..n, as under the floor.
    std::mt19937_64 rng(1100);
    std::uniform_real_distribution<double> u(-2, 2);
    std::vector<double> v(1000);
    for (double& x : v) x = std::exp(u(rng));
    std::sort(v.rbegin(), v.rend());
    double sum2 = 0;
    for (double x : v) sum2 += x * x;
    Magnitudes m;
    m.n = 1100;  // and 100 zeros
    m.stored_eps = 0x1p-10;
    m.frobenius = std::sqrt(sum2);
    m.known = v;
    m.known.resize(m.n, 0.0);
    REQUIRE(v.back() > noise_floor(m));
    for (const CutRule rule : {CutRule::dtype, CutRule::automatic}) {
        CutOptions opt;
        opt.rule = rule;
        const Cut c = choose_cut(m, opt);
        CAPTURE(int(rule));
        CHECK(c.rule == "dtype");
        CHECK(c.kept == 0);
        CHECK(c.ambiguous);
        CHECK(c.dim_low == 0);
        CHECK(c.dim_high == m.n);
        CHECK(c.all_noise);
    }
    // An explicit cut past every value is the user's: a decade under it
    // keeps the values over tol/10.
    CutOptions opt;
    opt.atol = 2 * v.front();
    const Cut c = choose_cut(m, opt);
    CHECK(c.kept == 0);
    CHECK(c.ambiguous);
    CHECK(c.dim_high == m.n);
    CHECK(c.dim_low == m.n - std::size_t(std::count_if(v.begin(), v.end(), [&](double x) { return x > *opt.atol / 10; })));
    CHECK_FALSE(c.all_noise);
}

TEST_CASE("negative tolerances are usage errors") {
    Magnitudes m;
    m.known = {1};
    m.n = 1;
    CutOptions opt;
    opt.atol = -1;
    CHECK_THROWS_AS(choose_cut(m, opt), UsageError);
}

TEST_CASE("a gap cut that drops nothing measures the gap down to the floor, as one that drops a zero does") {
    // {1, 0.5, 0.25, 0.125} with a stated error of 1.25e-4 (the floor): the
    // gap from 0.125 to the floor is 3 decades whether or not a zero (noise,
    // under the floor) is there to be dropped; the flag must not hang on it.
    const double noise = 1.25e-4;
    for (const double min_gap : {1.0, 2.0, 2.9, 3.1, 4.0}) {
        CAPTURE(min_gap);
        CutOptions opt;
        opt.rule = CutRule::gap;
        opt.min_gap = min_gap;
        std::vector<Cut> cuts;
        for (const bool zero : {false, true}) {
            std::vector<double> v{1, 0.5, 0.25, 0.125};
            if (zero) v.push_back(0);
            Magnitudes m = float64_spectrum(v, v.size(), std::sqrt(1 + 0.25 + 0.0625 + 0.015625));
            m.input_noise = noise;
            REQUIRE(noise_floor(m) == noise);
            cuts.push_back(choose_cut(m, opt));
            CHECK(cuts.back().kept == 4);
            CHECK(cuts.back().tol == doctest::Approx(std::sqrt(0.125 * noise)));
        }
        CHECK(cuts[0].ambiguous == (min_gap > 3));
        CHECK(cuts[1].ambiguous == (min_gap > 3));
    }
}

TEST_CASE("the log-volume's error bar is the float64 solve's, whatever the stored type's subnormal step") {
    // diag(2, 0.5, 0, ...) is exact in float16: stored as float16 or as
    // float64 it is one matrix, solved alike in float64. The stored type's
    // subnormal step (2^-24 for float16) belongs to the noise floor, not to
    // the solve's error (it made the bar 6e-7 here, against 1e-14).
    Eigen::MatrixXd d = Eigen::MatrixXd::Zero(20, 20);
    d(0, 0) = 2;
    d(1, 1) = 0.5;
    AnalyzeOptions opt;
    opt.method = Method::dense;
    const Row r64 = analyze_hessian(make_hessian(d), opt);
    for (const auto& [type, eps] : {std::pair<const char*, double>{"float16", 0x1p-10}, {"bfloat16", 0x1p-7},
                                     {"float32", 0x1p-23}}) {
        CAPTURE(type);
        Hessian h = make_hessian(Eigen::MatrixXf(d.cast<float>()));
        h.info.stored_type = type;
        h.info.stored_eps = eps;
        const Row r = analyze_hessian(std::move(h), opt);
        REQUIRE(r.ok);
        CHECK(r.rank == r64.rank);
        CHECK(r.log_volume == r64.log_volume);
        CHECK(r.log_volume_error == doctest::Approx(r64.log_volume_error).epsilon(1e-12));
        CHECK(r.log_volume_error < 1e-13);
    }
}

TEST_CASE("auto's choice between the dtype cut and a gap below it, at min_gap within noise, leaves both dims in the band") {
    // float32, n = 10⁴, ‖H‖_F = 1: the dtype cut at n·ε·1 ≈ 1.2e-3, the
    // floor at ε ≈ 1.2e-7. The gap across the dtype cut (a over b) stands
    // at min_gap, give or take less than noise moves it (the same matrix
    // relabelled, another thread count puts it on either side), and under
    // b a clear gap down to the floor: auto keeps the dtype cut (n − 2
    // kept) or takes that gap (n − 3). Each row must say that noise
    // decides, with a band holding both dims.
    const std::size_t n = 10000;
    auto cut = [&](double min_gap, double off) {
        Magnitudes m;
        m.n = n;
        m.stored_eps = std::ldexp(1.0, -23);
        m.frobenius = 1;
        const double a = 3e-3, b = a * std::pow(10.0, -(min_gap + off));
        m.known = {1.0, a, b};
        CutOptions opt;
        opt.min_gap = min_gap;
        return choose_cut(m, opt);
    };
    for (const double min_gap : {1.0, 1.5}) {
        CAPTURE(min_gap);
        for (const double off : {-1e-4, -1e-12, 0.0, 1e-12, 1e-4}) {
            CAPTURE(off);
            const Cut c = cut(min_gap, off);
            CHECK(c.rule == std::string(off < 0 ? "gap" : "dtype"));
            CHECK(c.kept == (off < 0 ? 3u : 2u));
            CHECK(c.ambiguous);
            CHECK(c.dim_low <= n - 3);
            CHECK(c.dim_high >= n - 2);
        }
        // Clear of noise either way: the one rule's dim.
        for (const double off : {-0.05, 0.05}) {
            CAPTURE(off);
            const Cut c = cut(min_gap, off);
            CHECK(c.rule == std::string(off < 0 ? "gap" : "dtype"));
            CHECK(c.kept == (off < 0 ? 3u : 2u));
        }
    }
    // A partial spectrum (values known to ±1e-12, the rest under 1e-12)
    // decides that choice only clear of the noise's reach; at its edge the
    // dense spectrum must (the edge moves with the values' last bits).
    const double noise = [&] {
        Magnitudes m;
        m.n = n;
        m.stored_eps = std::ldexp(1.0, -23);
        m.frobenius = 1;
        const double a = 3e-3, b = a / 10, floor = noise_floor(m);
        auto move = [&](double v) { return std::log10(v / (v - floor)); };  // both well over twice the floor
        return move(a) + move(b);
    }();
    for (const double off : {-0.05, -3 * noise, -0.5 * noise, 0.0, 0.5 * noise, 3 * noise, 0.05}) {
        CAPTURE(off);
        Magnitudes m;
        m.n = n;
        m.stored_eps = std::ldexp(1.0, -23);
        m.frobenius = 1;
        m.known = {1.0, 3e-3, 3e-3 * std::pow(10.0, -(1 + off))};
        m.value_error = m.rest_bound = 1e-12;
        CutOptions opt;
        const Cut c = choose_cut(m, opt);
        CHECK(c.decided == (std::abs(off) > 2 * noise));
    }
}

TEST_CASE("auto with a value within the floor of the dtype cut: each side's choice of rule joins the band") {
    // float32, n = 300: the dtype cut at 300·ε ≈ 3.6e-5, the floor at
    // ε·‖H‖_F ≈ 1.2e-7. A value v a hair over the cut leaves the gap across
    // it (v over 1e-5) under min_gap, and auto takes the gap under 1e-5
    // (4 kept); a hair under, the gap across the cut (1e-3 over v) is clear
    // and auto keeps the dtype cut (2 kept). The two spectra are the same
    // within noise: each row must hold both dims, flagged.
    const std::size_t n = 300;
    const double cut = 300 * std::ldexp(1.0, -23);
    for (const double side : {1 + 1e-7, 1 - 1e-7}) {
        CAPTURE(side);
        Magnitudes m;
        m.n = n;
        m.stored_eps = std::ldexp(1.0, -23);
        m.known = {1.0, 1e-3, cut * side, 1e-5};
        m.frobenius = std::sqrt(1 + 1e-6 + cut * cut + 1e-10);
        const Cut c = choose_cut(m, CutOptions{});
        CHECK(c.kept == (side > 1 ? 4u : 2u));
        CHECK(c.ambiguous);
        CHECK(c.dim_low <= n - 4);
        CHECK(c.dim_high >= n - 2);
        // A partial spectrum hands such a row to dense.
        m.value_error = m.rest_bound = 1e-14;
        CHECK_FALSE(choose_cut(m, CutOptions{}).decided);
    }
}

TEST_CASE("auto with two values within the floor over the dtype cut: every count between joins the band") {
    // float32, n = 300: v1 = cut + 0.6·floor and v2 a hair either side of the
    // cut. With v2 under it, the gap v1 → v2 is under min_gap and auto
    // searches (keeping 4, down to cut/11.5); with v2 over it, the dtype cut
    // keeps 3; moved by noise, v1 may drop too (2 kept). Each spectrum's band
    // must hold the others' dims.
    const std::size_t n = 300;
    const double eps = std::ldexp(1.0, -23), cut = 300 * eps;
    std::vector<Cut> cuts;
    for (const double side : {1 + 1e-7, 1 - 1e-7}) {
        Magnitudes m;
        m.n = n;
        m.stored_eps = eps;
        m.known = {1.0, cut + 0.6 * eps, cut * side, cut / 11.5};
        m.frobenius = 1;
        cuts.push_back(choose_cut(m, CutOptions{}));
    }
    CHECK(cuts[0].kept == 3);
    CHECK(cuts[1].kept == 4);
    for (const Cut& c : cuts) {
        CHECK(c.ambiguous);
        for (const Cut& other : cuts) {
            CHECK(c.dim_low <= n - other.kept);
            CHECK(c.dim_high >= n - other.kept);
        }
    }
}

TEST_CASE("property: auto under rounding-size moves near the dtype cut and min_gap gets a dim inside the band") {
    // float32, n = 300 (the dtype cut at 300·ε·max|λ|, far over the floor
    // ε·‖H‖_F): values placed a hair (a relative 2e-9) either side of the
    // dtype cut, gaps of min_gap give or take a hair across it and under it,
    // among others; each spectrum moved by up to a relative 2e-9 (the last
    // bits another solve gives). The moved spectrum's dim lies in the band.
    std::mt19937_64 rng(20261205);
    std::uniform_real_distribution<double> u(0, 1);
    const std::size_t n = 300;
    const double eps = std::ldexp(1.0, -23);
    int flagged = 0;
    for (int trial = 0; trial < 4000; ++trial) {
        const double cut = n * eps, floor = eps;  // max|λ| = 1, ‖H‖_F ≈ 1
        std::vector<double> v = {1.0};
        auto hair = [&] { return 2e-9 * (2 * u(rng) - 1); };  // a move's size either way
        // a: over the cut, by a hair or within two floors; b: a decade under
        // a, give or take a hair (the gap across the cut at min_gap), or at
        // the cut by a hair; then a gap down to `low`, and values over the floor.
        const double a = trial % 2 ? cut * (1 + hair()) : cut + 2 * floor * u(rng);
        v.push_back(a);
        v.push_back(trial % 3 ? a * std::pow(10.0, -1 + hair()) : cut * (1 + hair()));
        if (trial % 5 == 0) v.push_back(cut * (1 + hair()));
        const double low = cut * std::pow(10.0, -1.05 - 0.5 * u(rng));
        v.push_back(low);
        if (trial % 4 == 0) v.push_back(low * std::pow(10.0, -1 + hair()));
        for (int j = 0; j < 2; ++j) v.push_back(std::pow(10.0, -6.5 + 3 * u(rng)));  // 3e-7 .. 3e-4
        std::sort(v.rbegin(), v.rend());
        auto cut_of = [&](const std::vector<double>& w) {
            Magnitudes m;
            m.n = n;
            m.stored_eps = eps;
            m.known = w;
            m.frobenius = 1;
            return choose_cut(m, CutOptions{});
        };
        const Cut c = cut_of(v);
        flagged += c.ambiguous ? 1 : 0;
        CAPTURE(trial);
        check_moved_in_band(c, n, v, 6, [&](double x) { return x * (1 + hair()); }, cut_of);
    }
    CHECK(flagged > 0);
}

TEST_CASE("property: a value within the twins' reach of the floor, cut at the floor, moves across it inside the band") {
    // A float64 Hessian with ‖H‖_F = 1, n = 12 (twin_reach at its bound
    // 4·√n·ε) and n = 1000 (at its measured cap 16·ε): dtype's n·ε·max|λ| is
    // under the floor 8·√n·ε·‖H‖_F, so dtype, auto and an atol at the floor
    // all cut at the floor. Values planted from a third of the floor to three
    // times it, most within the reach of it; each spectrum moved by up to
    // the reach, as the same Hessian relabelled may come out of a solve: the
    // moved spectrum's dim lies in the band (once not: a value just under
    // the floor was flat in every count, and its relabelled twin kept it).
    std::mt19937_64 rng(20261206);
    std::uniform_real_distribution<double> u(0, 1);
    for (const std::size_t n : {std::size_t(12), std::size_t(1000)}) {
        CAPTURE(n);
        const double reach = twin_reach(n, 1.0);
        int widened = 0;
        for (int trial = 0; trial < 2000; ++trial) {
            auto cut_with = [&](const CutOptions& opt) {
                return [&, opt](const std::vector<double>& w) {
                    Magnitudes m;
                    m.n = n;
                    m.stored_eps = std::numeric_limits<double>::epsilon();
                    m.frobenius = 1;
                    m.known = w;
                    return choose_cut(m, opt);
                };
            };
            const double floor = cut_with(CutOptions{})({1.0}).floor;
            const double top = n > 100 ? 0.2 : 0.9;  // dtype cut n·ε·top under the floor
            std::vector<double> v = {top, top * (0.2 + 0.2 * u(rng))};
            for (int j = 0; j < 1 + trial % 3; ++j)
                v.push_back(trial % 4 ? floor + (2 * u(rng) - 1) * reach : floor * std::pow(10.0, u(rng) - 0.5));
            if (trial % 2) v.push_back(1e-17 * u(rng));  // flat noise far under the floor
            std::sort(v.rbegin(), v.rend());
            for (int rule = 0; rule < 3; ++rule) {
                CutOptions opt;
                opt.rule = rule == 0 ? CutRule::dtype : CutRule::automatic;
                if (rule == 2) opt.atol = floor;
                const auto cut_of = cut_with(opt);
                const Cut c = cut_of(v);
                REQUIRE(c.floor == floor);
                REQUIRE(c.tol == floor);
                widened += c.dim_low < n - c.kept ? 1 : 0;
                CAPTURE(trial);
                CAPTURE(rule);
                check_moved_in_band(c, n, v, 6, [&](double x) { return std::max(0.0, x + (2 * u(rng) - 1) * reach); },
                                    cut_of);
            }
        }
        CHECK(widened > 0);
    }
}

TEST_CASE("flat values further than the twins' reach under the floor leave the band clean at a cut on the floor") {
    // A float64 solve's flat values lie at 0.001–0.17 of the floor (n =
    // 3..1000): they, and a value at 0.4 of the floor (n = 12: the reach is
    // half the floor), stay flat in every count of the band.
    const double floor = 1e-8;
    for (double noise : {0.0, 1e-16, 0.4 * floor}) {
        Magnitudes m;
        m.n = 12;
        m.stored_eps = std::numeric_limits<double>::epsilon();
        m.frobenius = floor / (8 * std::sqrt(12.0) * std::numeric_limits<double>::epsilon());  // the floor's solver term
        const std::vector<double> values = {m.frobenius / 2, m.frobenius / 4, 1e3 * floor, noise, noise / 2};
        m.known = values;
        const Cut c = choose_cut(m, CutOptions{});
        CAPTURE(noise);
        CHECK(c.floor == doctest::Approx(floor));
        CHECK(c.tol == c.floor);
        CHECK(c.kept == 3);
        CHECK(c.dim_low == 9);
        CHECK(c.dim_high == 9);
    }
}

TEST_CASE("a value under the floor is near an explicit cut only within the twins' reach of it") {
    // n = 12, ‖H‖_F = 1: the floor 8·√12·ε, the reach t = 4·√12·ε. A value at
    // floor − t/2 lies a twin's move from a cut at the floor, not from one
    // at 1.5·floor, where only values over the floor (within the floor of
    // it) are near.
    Magnitudes m;
    m.n = 12;
    m.stored_eps = std::numeric_limits<double>::epsilon();
    m.frobenius = 1;
    const double floor = noise_floor(m), t = twin_reach(12, 1.0);
    for (const double at : {1.0, 1.5}) {
        CutOptions opt;
        opt.atol = at * floor;
        const std::vector<double> under = {0.9, 0.3, floor - t / 2}, over = {0.9, 0.3, 1.2 * floor};
        m.known = under;
        const Cut u = choose_cut(m, opt);
        m.known = over;
        const Cut o = choose_cut(m, opt);
        CAPTURE(at);
        CHECK(u.kept == 2);
        CHECK(u.ambiguous == (at == 1.0));
        CHECK(o.ambiguous);
    }
}
