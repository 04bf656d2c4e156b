// Toys with known answers: spectra, losses, Monte Carlo, the radial
// estimator, the HDF5 writer, and the validator's verdicts.
#include "support.hpp"

#include <basinvol/analyze.hpp>
#include <basinvol/error.hpp>
#include <basinvol/io/reader.hpp>
#include <basinvol/io/writer.hpp>
#include <basinvol/rank/ranking.hpp>
#include <basinvol/toy/generate.hpp>
#include <basinvol/toy/montecarlo.hpp>
#include <basinvol/toy/validate.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

using namespace basinvol;
using namespace basinvol::toy;

namespace {

// A fresh temporary directory per test (never the working directory).
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/basinvol_toy_XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
    std::string file(const std::string& name) const { return path + "/" + name; }
};

HessianInfo only(const std::string& file, const std::string& path) {
    Source s{file, path, file + ":" + path, nullptr};
    auto list = list_hessians(s);
    REQUIRE(list.size() == 1);
    REQUIRE(list[0].problem.empty());
    return list[0].info;
}

const Check* find(const std::vector<Check>& cs, const std::string& name) {
    for (const auto& c : cs)
        if (c.check == name) return &c;
    return nullptr;
}

}  // namespace

TEST_CASE("the seeded generator and rotations are reproducible and orthogonal") {
    Rng a(5), b(5);
    for (int i = 0; i < 10; ++i) CHECK(a.normal() == b.normal());
    Eigen::MatrixXd q = random_orthogonal(7, 3);
    CHECK((q.transpose() * q - Eigen::MatrixXd::Identity(7, 7)).norm() < 1e-13);
    CHECK(random_orthogonal(7, 3) == q);
}

TEST_CASE("recipes give the counts and bounds they promise") {
    Recipe r;
    r.flat = 4, r.curved = 30, r.negative = 5, r.lo = 1e-3, r.hi = 10, r.seed = 9;
    auto v = recipe_spectrum(r);
    REQUIRE(v.size() == 34);
    int zeros = 0, neg = 0;
    for (double x : v) {
        if (x == 0) ++zeros;
        else CHECK((std::abs(x) >= 1e-3 && std::abs(x) <= 10));
        if (x < 0) ++neg;
    }
    CHECK(zeros == 4);
    CHECK(neg == 5);
    r.distribution = Distribution::clustered;
    r.clusters = 3;
    for (double x : recipe_spectrum(r)) {
        if (x == 0) continue;
        const double a = std::abs(x);
        const bool near = std::abs(a / 1e-3 - 1) <= 0.0101 || std::abs(a / 0.1 - 1) <= 0.0101 || std::abs(a / 10 - 1) <= 0.0101;
        CHECK(near);
    }
    r.negative = 31;
    CHECK_THROWS_AS(recipe_spectrum(r), UsageError);
}

TEST_CASE("expected answers follow from the prescribed spectrum") {
    // x² + y² in R³: the basin slice is a disc of area πT.
    for (double T : {1.0, 0.5, 3.0}) {
        Expected e = expected_answer({2, 2, 0}, T);
        CHECK(e.rank == 2);
        CHECK(e.dim == 1);
        CHECK(e.log_volume == doctest::Approx(std::log(M_PI * T)).epsilon(1e-14));
    }
    CHECK(expected_answer({-2, 2}, 1).negative == 1);
    CHECK(parse_list("2, 2,0") == std::vector<double>{2, 2, 0});
    CHECK_THROWS_AS(parse_list("2,,0"), UsageError);
    CHECK_THROWS_AS(parse_list("2,0,"), UsageError);
    CHECK_THROWS_AS(parse_list("2,0, "), UsageError);
    CHECK_THROWS_AS(parse_list("2,nan"), UsageError);
}

TEST_CASE("spectra the stored type cannot resolve are refused") {
    Recipe r;
    r.curved = 50, r.lo = 1e-4, r.hi = 1e2;
    auto v = recipe_spectrum(r);
    CHECK_THROWS_AS(check_resolvable(v, StoredType::float32), UsageError);
    CHECK_NOTHROW(check_resolvable(v, StoredType::float64));
    CHECK_NOTHROW(check_resolvable({2, 2, 0}, StoredType::float32));
}

TEST_CASE("the loss format: parse, print, Hessian, learning coefficient") {
    PolyLoss l = PolyLoss::parse("x^2 + y^4");
    CHECK(l.n() == 2);
    CHECK(l.str() == "x0^2 + x1^4");
    CHECK(PolyLoss::parse(l.str()).str() == l.str());
    CHECK(l.hessian_diagonal()(0) == 2);
    CHECK(l.hessian_diagonal()(1) == 0);
    CHECK(*l.learning_coefficient() == doctest::Approx(0.75));
    CHECK(l.half_width(1, 16) == doctest::Approx(2).epsilon(1e-12));
    PolyLoss m = PolyLoss::parse("0.5*x0^2 - 0.5*x2^2", 4);
    CHECK(m.n() == 4);
    CHECK(m.hessian_diagonal()(2) == -1);
    CHECK_FALSE(m.nonnegative());
    CHECK_FALSE(PolyLoss::parse("x0^2 + x1^2", 3).learning_coefficient());  // x2 absent: unbounded
    // A coordinate named twice with one power is one term (2·x^2); with two
    // powers, {x^2 + x^4 <= T} follows no power of T.
    CHECK(*PolyLoss::parse("x^2 + x^2").learning_coefficient() == doctest::Approx(0.5));
    CHECK(*PolyLoss::parse("x0^4 + 3*x1^2 + x0^4").learning_coefficient() == doctest::Approx(0.75));
    CHECK_FALSE(PolyLoss::parse("x^2 + x^4").learning_coefficient());
    CHECK_THROWS_AS(PolyLoss::parse("x0 + x1^2"), UsageError);             // not a critical point
    // A product of coordinates is named as one, not as a linear term or a missing '+'.
    for (const char* product : {"x*y", "x^2*y^2", "x^2 + 3*x*y"})
        CHECK_THROWS_WITH_AS(PolyLoss::parse(product), doctest::Contains("a product of coordinates is not a term"),
                             UsageError);
    CHECK_THROWS_WITH_AS(PolyLoss::parse("x^0 + y^2"), doctest::Contains("x^0 is a constant"), UsageError);
    CHECK_THROWS_WITH_AS(PolyLoss::parse("x^2 + y"), doctest::Contains("a linear term"), UsageError);
    CHECK_THROWS_WITH_AS(PolyLoss::parse("1e308*x^2"), doctest::Contains("second derivative 2c pass float64's range"),
                         UsageError);
    CHECK(PolyLoss::parse("1e308*x^4").str() == "1e+308*x0^4");  // a quartic's is 0 at the origin
    CHECK_THROWS_AS(PolyLoss::parse("x0^2 + q"), UsageError);
    CHECK_THROWS_AS(PolyLoss::parse("x3^2", 2), UsageError);
    // A hexadecimal coefficient is named as such, not read as 0·x10.
    CHECK_THROWS_WITH_AS(PolyLoss::parse("0x10*x^2"), doctest::Contains("hexadecimal"), UsageError);
    CHECK_THROWS_WITH_AS(PolyLoss::parse("x^2 + 0xA*y^2"), doctest::Contains("hexadecimal"), UsageError);
    CHECK(PolyLoss::parse("2x1^2").str() == "2*x1^2");  // a coefficient may still touch its coordinate
    CHECK(PolyLoss::parse("0x1^2 + y^2").str() == "x1^2");  // a zero term in x1, not hexadecimal
    for (const auto& p : presets()) CHECK_NOTHROW(PolyLoss::parse(p.loss, p.n));
    CHECK(find_preset("parabola") != nullptr);
}

TEST_CASE("Monte Carlo volumes agree with closed forms within their standard error") {
    for (std::uint64_t seed : {1u, 2u, 3u}) {
        // Unit disc in [-1, 1]²: π.
        Estimate e = box_volume({1, 1}, [](const double* z) { return z[0] * z[0] + z[1] * z[1] <= 1; }, 100000, seed);
        CHECK(std::abs(e.value_over(std::log(M_PI)) - 1) <= 4 * e.se_over(std::log(M_PI)));
    }
    // An ellipsoid in 5-D: ω_5 (2T)^(5/2) / sqrt(Π λ).
    Eigen::VectorXd lam(5);
    lam << 0.5, 1, 2, 4, 8;
    Eigen::MatrixXd M = lam.asDiagonal();
    const double exact = expected_answer({0.5, 1, 2, 4, 8}, 0.7).log_volume;
    Estimate e = ellipsoid_volume(M, 0.7, 200000, 11);
    CHECK(std::abs(e.value_over(exact) - 1) <= 4 * e.se_over(exact));
    // Scales where 2T/λ, or the box it spans, leaves double's range.
    for (double scale : {1e-300, 1e-310, 1e300})
        for (double T : {0.7, 1e307, 1.7e308}) {
            CAPTURE(scale);
            CAPTURE(T);
            std::vector<double> scaled;
            for (Eigen::Index i = 0; i < lam.size(); ++i) scaled.push_back(lam(i) * scale);
            const double want = expected_answer(scaled, T).log_volume;
            REQUIRE(std::isfinite(want));
            Estimate big = ellipsoid_volume(Eigen::MatrixXd(Eigen::VectorXd::Map(scaled.data(), 5).asDiagonal()), T,
                                            200000, 11);
            CHECK(std::abs(big.value_over(want) - 1) <= 4 * big.se_over(want));
        }
    // A diagonal spread wider than double's range (one scale for all would
    // flush the smallest entries to zero).
    for (const std::vector<double>& spread : {std::vector<double>{1e300, 1e-30}, std::vector<double>{1e300, 1e-300, 3.0}})
        for (double T : {0.7, 1e307}) {
            CAPTURE(T);
            const double want = expected_answer(spread, T).log_volume;
            REQUIRE(std::isfinite(want));
            const Eigen::Index r = static_cast<Eigen::Index>(spread.size());
            Estimate wide =
                ellipsoid_volume(Eigen::MatrixXd(Eigen::VectorXd::Map(spread.data(), r).asDiagonal()), T, 200000, 12);
            CHECK(std::abs(wide.value_over(want) - 1) <= 4 * wide.se_over(want));
        }
}

TEST_CASE("the radial estimator falls short by ½(ln AM − ln GM) per dimension") {
    // log-uniform over 1e-4..1e2, r = 2000 (deterministic geometric grid).
    auto v = testing_support::geometric(2000, 1e2, 1e-4);
    Radial rd = radial_estimate(v, 1.0, 2000, 7);
    // Closed form for the continuous log-uniform law: AM = (b − a)/ln(b/a), GM = sqrt(ab).
    const double a = 1e-4, b = 1e2;
    const double closed = 0.5 * (std::log((b - a) / std::log(b / a)) - 0.5 * std::log(a * b));
    // The grid's own ½(ln AM − ln GM), summed here in long double.
    long double sum = 0, sum_log = 0;
    for (double x : v) {
        sum += x;
        sum_log += std::log(static_cast<long double>(x));
    }
    const double grid = static_cast<double>(0.5L * (std::log(sum / v.size()) - sum_log / v.size()));
    CHECK(rd.amgm_per_dim == doctest::Approx(grid).epsilon(1e-12));
    // The grid samples the law: 2.14246 against 2.14098.
    CHECK(std::abs(grid - closed) < 2e-3);
    // Finite r: Jensen keeps E log vᵀHv a little under log AM (about
    // var/(2·AM²·r/2) ≈ 0.003): the measured gap falls short of the grid's,
    // by no more than that (0.0016 here).
    CHECK(rd.gap_per_dim < grid);
    CHECK(rd.gap_per_dim > grid - 0.005);
    CHECK(rd.exact - rd.log_volume > 2000 * 2.1);
}

TEST_CASE("the radial estimator holds subnormal and near-overflow curvatures") {
    // Scaling every value by 2^e (exact) shifts both volumes by −(r/2)·e·ln 2
    // and leaves the gaps alone; vᵀHv must neither underflow to 0 (the
    // smallest subnormal times v² < 1/2) nor overflow (2^1020·v² > 2^1024).
    const std::vector<double> k = {1, 2, 3};
    const Radial base = radial_estimate(k, 1.0, 500, 3);
    for (const int e : {-1074, 1020}) {
        std::vector<double> w = k;
        for (double& x : w) x = std::ldexp(x, e);
        const Radial rd = radial_estimate(w, 1.0, 500, 3);
        REQUIRE(std::isfinite(rd.log_volume));
        REQUIRE(std::isfinite(rd.amgm_per_dim));
        CHECK(rd.gap_per_dim == doctest::Approx(base.gap_per_dim).epsilon(1e-12));
        CHECK(rd.amgm_per_dim == doctest::Approx(base.amgm_per_dim).epsilon(1e-12));
        CHECK(rd.se == doctest::Approx(base.se).epsilon(1e-9));
        CHECK(rd.exact - base.exact == doctest::Approx(-1.5 * e * M_LN2).epsilon(1e-12));
    }
}

TEST_CASE("the scaling fit recovers the learning coefficient of x² + y⁴") {
    PolyLoss l = PolyLoss::parse("x^2 + y^4");
    std::vector<ScalingPoint> pts;
    for (int k = 0; k < 5; ++k) {
        const double T = std::pow(10.0, -k);
        ScalingPoint p;
        p.T = T;
        p.estimate = box_volume({l.half_width(0, T), l.half_width(1, T)}, [&](const double* z) { return l(z) <= T; },
                                100000, 40 + static_cast<std::uint64_t>(k));
        pts.push_back(p);
    }
    ScalingFit f = fit_scaling(pts);
    REQUIRE(f.ok);
    CHECK(std::abs(f.slope - 0.75) <= 4 * f.se);
}

TEST_CASE("written toys read back with their attributes, and analyze agrees with them") {
    TempDir dir;
    const std::string file = dir.file("toys.h5");
    ToySpec spec;
    spec.eigenvalues = {3, 2, 1, 0.5, 0, 0};
    spec.rotation = 17;
    spec.threshold = 0.25;
    Toy t64 = make_toy(spec);
    write_hessian(file, "/a/f64", t64.matrix, false, t64.attrs, WriteMode::create);
    spec.type = StoredType::float32;
    spec.eigenvalues = {-1, 2, 0};
    Toy t32 = make_toy(spec);
    write_hessian(file, "/a/f32", t32.matrix, true, t32.attrs, WriteMode::append);
    CHECK_THROWS_AS(write_hessian(file, "/a/f32", t32.matrix, true, t32.attrs, WriteMode::append), InputError);

    HessianInfo i64 = only(file, "/a/f64");
    CHECK(i64.stored_type == "float64");
    CHECK(i64.attrs.numbers.at("expected_rank") == 4);
    CHECK(*i64.attrs.loss_threshold == 0.25);
    Row r = analyze(i64, {});
    REQUIRE(r.ok);
    CHECK(r.rank == 4);
    CHECK(r.log_volume == doctest::Approx(t64.expected.log_volume).epsilon(1e-12));

    HessianInfo i32 = only(file, "/a/f32");
    CHECK(i32.stored_type == "float32");
    Row r32 = analyze(i32, {});
    CHECK(r32.negative == 1);
    CHECK(r32.dim == 1);
}

TEST_CASE("validate passes honest toys and fails wrong expectations") {
    TempDir dir;
    const std::string file = dir.file("v.h5");
    ToySpec spec;
    spec.loss = PolyLoss::parse("x^2 + y^4");
    spec.rotation = 2;
    Toy t = make_toy(spec);
    write_hessian(file, "/good", t.matrix, false, t.attrs, WriteMode::create);
    Attributes wrong = t.attrs;
    wrong.numbers["expected_log_volume"] += 1e-6;
    wrong.numbers["expected_dim"] = 0;
    write_hessian(file, "/bad", t.matrix, false, wrong, WriteMode::append);

    ValidateOptions o;
    o.samples = 50000;
    auto good = validate_hessian(only(file, "/good"), o);
    for (const auto& c : good) CHECK_MESSAGE((c.verdict == Verdict::pass || c.verdict == Verdict::info), c.check);
    const Check* lc = find(good, "learning_coefficient");
    REQUIRE(lc);
    CHECK(lc->verdict == Verdict::pass);
    CHECK(std::abs(*lc->measured - 0.75) <= 4 * *lc->se);
    CHECK(*find(good, "hessian_exponent")->measured == 0.5);

    auto bad = validate_hessian(only(file, "/bad"), o);
    CHECK(find(bad, "dim")->verdict == Verdict::fail);
    CHECK(find(bad, "log_volume")->verdict == Verdict::fail);
    CHECK(find(bad, "rank")->verdict == Verdict::pass);
}

TEST_CASE("the log-volume tolerance is the stored-type rounding bound") {
    // float64, λ = {1, 1e-4}: 2ε·‖H‖_F·(1 + 1e4).
    const double eps = 2.220446049250313e-16;
    CHECK(logv_tolerance({1, 1e-4}, 1, eps, 2, 0) == doctest::Approx(1e-12 + 2 * eps * 10001).epsilon(1e-12));
}

TEST_CASE("the log-volume tolerance holds a toy rotated among subnormal numbers") {
    // λ = {3, 2, 1, 0}·1e-320, rotated in double: each entry rounds to the
    // subnormal step η, not to ε relative, and ε·‖H‖_F underflows to 0.
    const std::vector<double> e = {3e-320, 2e-320, 1e-320, 0};
    const std::vector<double> curved(e.begin(), e.begin() + 3);
    const double eps = std::numeric_limits<double>::epsilon();
    double worst = 0;
    for (std::uint32_t seed = 1; seed <= 8; ++seed) {
        const Eigen::MatrixXd stored = testing_support::with_spectrum(e, seed);
        const Eigen::VectorXd w = testing_support::eigenvalues_of(stored);  // ascending
        double actual = 0;
        for (std::size_t i = 0; i < 3; ++i) actual += std::log(e[i]) - std::log(std::abs(w(Eigen::Index(3 - i))));
        worst = std::max(worst, std::abs(actual) / 2);
        CHECK(std::abs(actual) / 2 <= logv_tolerance(curved, stored.norm(), eps, 4, 0));
    }
    // ε·‖H‖_F alone (n·η/2 left out) is far under what rounding did.
    CHECK(logv_tolerance(curved, testing_support::with_spectrum(e, 1).norm(), eps, 0, 0) * 1e6 < worst);
}

TEST_CASE("float32 storage: the entrywise tolerance holds the actual error and is far under Weyl's") {
    // A rotated spectrum stored as float32: the stored matrix's log V against
    // the exact spectrum's, for several rotations.
    for (std::uint32_t seed : {3u, 4u, 5u}) {
        std::vector<double> e = testing_support::geometric(60, 10, 1e-2);
        e.resize(80, 0.0);
        const Eigen::MatrixXd exact = testing_support::with_spectrum(e, seed);
        const Eigen::MatrixXd stored = exact.cast<float>().cast<double>();
        const Eigen::VectorXd w = testing_support::eigenvalues_of(stored);
        double actual = 0;
        for (std::size_t i = 0; i < 60; ++i) actual += std::log(e[i]);
        for (Eigen::Index i = 20; i < 80; ++i) actual -= std::log(w(i));
        actual = std::abs(actual) / 2;
        const double u = std::ldexp(1.0, -24);
        const double tight = entrywise_logv_tolerance(stored, 1e-4, false, u, 1.0);
        std::vector<double> curved(e.begin(), e.begin() + 60);
        const double weyl = logv_tolerance(curved, stored.norm(), 2 * u, 80, 1.0);
        CHECK(actual <= tight);
        CHECK(tight * 20 < weyl);
    }
}

TEST_CASE("regularized places need equal n, and partial spectra finish densely for it") {
    std::vector<Row> rows(2);
    rows[0].ok = rows[1].ok = true;
    rows[0].n = 3, rows[1].n = 4;
    rows[0].log_volume_regularized = 1.0;
    rows[1].log_volume_regularized = 2.0;
    CHECK_FALSE(rank_regularized(rows, 1e-6));
    CHECK_FALSE(rows[0].place_regularized);

    // n = 600, rank 5: the sketch finds 5 eigenvalues; log V_λ must equal the dense one.
    std::vector<double> eigs(600, 0.0);
    for (int i = 0; i < 5; ++i) eigs[static_cast<std::size_t>(i)] = 1.0 + i;
    Eigen::MatrixXd m = testing_support::with_spectrum(eigs, 5);
    AnalyzeOptions sketch, dense;
    sketch.method = Method::sketch;
    dense.method = Method::dense;
    sketch.regularized = dense.regularized = 1e-9;
    Row a = analyze_hessian(make_hessian(m), sketch);
    Row b = analyze_hessian(make_hessian(m), dense);
    REQUIRE(a.ok);
    REQUIRE(b.ok);
    CHECK(*a.log_volume_regularized == doctest::Approx(*b.log_volume_regularized).epsilon(1e-9));
}
