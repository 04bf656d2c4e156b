// The trust contract: for any input, options and method, an ok row has
// exactly the rank, dim, negative, flags and band of `--method dense` under
// the same options, and a log-volume within the error bars the rows report.
// Run over adversarial families: hidden saddles the diagonal cannot show,
// delocalized small eigenvalues, clusters at the cut, float32 wide ranges,
// rank budgets, and inputs carrying their own noise.
#include "support.hpp"

#include <basinvol/analyze.hpp>
#include <basinvol/measure/cut.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

using namespace basinvol;
using testing_support::geometric;
using testing_support::random_orthogonal;
using testing_support::with_spectrum;

namespace {

bool has(const Row& r, const char* w) { return r.warnings.has(parse_warning(w).value()); }

Row run(const Hessian& h, Method m, CutRule rule, std::optional<double> hessian_error = std::nullopt) {
    AnalyzeOptions opt;
    opt.method = m;
    opt.cut.rule = rule;
    opt.hessian_error = hessian_error;
    return analyze_hessian(h, opt);
}

// Every method against dense, under every cut rule.
void check_every_method(const Hessian& h, const char* family) {
    for (CutRule rule : {CutRule::automatic, CutRule::gap, CutRule::dtype}) {
        const Row d = run(h, Method::dense, rule);
        REQUIRE(d.ok);
        for (Method m : {Method::automatic, Method::cholesky, Method::sketch, Method::lanczos}) {
            const Row p = run(h, m, rule);
            CAPTURE(family);
            CAPTURE(static_cast<int>(rule));
            CAPTURE(method_name(m));
            CAPTURE(p.method);
            CAPTURE(p.solver_note);
            REQUIRE(p.ok);
            CHECK(p.certified);
            CHECK(p.rank == d.rank);
            CHECK(p.dim == d.dim);
            CHECK(p.negative == d.negative);
            CHECK(p.dim_low == d.dim_low);
            CHECK(p.dim_high == d.dim_high);
            CHECK(p.dim_lifted == d.dim_lifted);  // what another draw of the input may keep
            CHECK(p.negative_high == d.negative_high);
            CHECK(has(p, "saddle") == has(d, "saddle"));
            CHECK(has(p, "ambiguous_rank") == has(d, "ambiguous_rank"));
            // Both log-volumes are within their error bars of the exact one.
            CHECK(std::abs(p.log_volume - d.log_volume) <= p.log_volume_error + d.log_volume_error + 1e-12 * std::abs(d.log_volume));
        }
    }
}

Hessian f32(const Eigen::MatrixXd& m) { return make_hessian(Eigen::MatrixXf(m.cast<float>())); }

// Curved directions on the first coordinates, rotated among themselves, and
// a ±s pair on two further coordinates whose diagonal is exactly zero: a
// saddle pivoted Cholesky never pivots on.
Eigen::MatrixXd hidden_saddle(std::size_t n, std::size_t curved, double s, std::uint32_t seed) {
    const auto m = static_cast<Eigen::Index>(curved + 20);
    std::vector<double> e = geometric(curved, 0.5, 5e-3);
    e.resize(static_cast<std::size_t>(m), 0.0);
    Eigen::MatrixXd h = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(n));
    h.topLeftCorner(m, m) = with_spectrum(e, seed);
    const Eigen::Index a = m + 3, b = static_cast<Eigen::Index>(n) - 2;
    h(a, b) = h(b, a) = s;
    return h;
}

}  // namespace

TEST_CASE("hidden saddle on zero-diagonal coordinates: every method reports it as dense does" * doctest::test_suite("large")) {
    for (std::uint32_t seed : {11u, 12u}) {
        Eigen::MatrixXd m = hidden_saddle(600, 40, 1e-4, seed);
        REQUIRE(m.diagonal().minCoeff() >= 0);
        Hessian h = f32(m);
        const Row d = run(h, Method::dense, CutRule::automatic);
        CHECK(d.negative == 1);  // −1e-4 is above the dtype cut (≈ 3.6e-5): a saddle
        CHECK(has(d, "saddle"));
        check_every_method(h, "hidden saddle f32");
        check_every_method(make_hessian(m), "hidden saddle f64");
    }
}

TEST_CASE("a delocalized small eigenvalue just above the cut is counted by every method") {
    for (std::uint32_t seed : {21u, 22u}) {
        std::vector<double> e = geometric(40, 0.5, 5e-3);
        e.push_back(1e-4);
        e.resize(600, 0.0);
        Hessian h = f32(with_spectrum(e, seed));
        CHECK(run(h, Method::dense, CutRule::automatic).rank == 41);
        check_every_method(h, "delocalized");
    }
}

TEST_CASE("rotated indefinite spectra with a non-negative diagonal, --cut gap included") {
    std::mt19937_64 rng(31);
    std::uniform_real_distribution<double> u(0, 1);
    for (int trial = 0; trial < 2; ++trial) {
        std::vector<double> e;
        for (int i = 0; i < 3; ++i) e.push_back(-std::pow(10.0, -2 * u(rng)));  // [−1, −0.01]
        for (int i = 0; i < 37; ++i) e.push_back(std::pow(10.0, 1 - 3 * u(rng)));
        e.resize(600, 0.0);
        Eigen::MatrixXd m = with_spectrum(e, 40u + static_cast<std::uint32_t>(trial));
        Hessian h = f32(m);
        const Row d = run(h, Method::dense, CutRule::gap);
        CHECK(d.negative == 3);
        check_every_method(h, "indefinite");
    }
}

TEST_CASE("clusters at the cut and float32 continua: flags and counts match dense") {
    // Eigenvalues straddling the dtype cut within a factor of 2, and a
    // spectrum running through the float32 floor.
    std::vector<double> at_cut = geometric(30, 1.0, 1e-2);
    const double dtype = 600 * std::ldexp(1.0, -23);
    for (double f : {0.5, 0.8, 1.2, 2.0}) at_cut.push_back(f * dtype);
    at_cut.resize(600, 0.0);
    check_every_method(f32(with_spectrum(at_cut, 51)), "cluster at cut");

    std::vector<double> wide = geometric(120, 1e2, 1e-9);
    wide.resize(600, 0.0);
    check_every_method(f32(with_spectrum(wide, 52)), "float32 wide range");
}

TEST_CASE("rank budgets: just under and over n/4, and past the factored Cholesky's 0.75n" * doctest::test_suite("large")) {
    for (std::size_t r : {140u, 160u, 460u}) {
        std::vector<double> e = geometric(r, 10, 1e-2);
        e.resize(600, 0.0);
        check_every_method(f32(with_spectrum(e, 60u + static_cast<std::uint32_t>(r))), "budget");
    }
}

TEST_CASE("the input's own noise raises the floor: a perturbed upper triangle is not curvature") {
    // float64, 20 curved directions, 1e-14 added to the upper triangle only
    // (asymmetry far inside --max-asymmetry). Symmetrizing leaves noise of
    // about ‖H − Hᵀ‖_F/2 in the flat directions, far above the dtype cut.
    const Eigen::Index n = 120;
    std::vector<double> e = geometric(20, 1.0, 1e-2);
    e.resize(n, 0.0);
    Eigen::MatrixXd m = with_spectrum(e, 71);
    std::mt19937_64 rng(72);
    std::normal_distribution<double> g;
    for (Eigen::Index j = 0; j < n; ++j)
        for (Eigen::Index i = 0; i < j; ++i) m(i, j) += 1e-14 * g(rng);
    Hessian h = make_hessian(m);
    Row r = run(h, Method::dense, CutRule::automatic);
    CHECK(r.rank == 20);
    CHECK(r.negative == 0);
    CHECK_FALSE(has(r, "ambiguous_rank"));
    CHECK(r.noise_floor >= h.asymmetry() * h.frobenius());
    // Without the measured noise the symmetrized noise counts as curvature:
    // dense eigenvalues of the noise exceed the dtype cut.
    const Eigen::VectorXd w = testing_support::eigenvalues_of((m + m.transpose()) / 2);
    const double dtype = static_cast<double>(n) * std::numeric_limits<double>::epsilon();
    CHECK(w.cwiseAbs().unaryExpr([&](double v) { return v > dtype ? 1.0 : 0.0; }).sum() > 20);
    // A stated error does the same for a matrix whose asymmetry hides it.
    Eigen::MatrixXd sym = (m + m.transpose()) / 2;
    Hessian s = make_hessian(sym);
    CHECK(run(s, Method::dense, CutRule::automatic).rank > 20);
    Row stated = run(s, Method::dense, CutRule::automatic, 1e-12);
    CHECK(stated.rank == 20);
    CHECK(stated.noise_floor == doctest::Approx(1e-12));
    check_every_method(make_hessian(m), "input noise");
}

TEST_CASE("an eigenvalue just above the floor has no clean gap to noise below it") {
    // Measured on the batch workload: a kept eigenvalue 1.45x the float32
    // floor and a "gap" to values far under the floor. The gap's lower side
    // is the floor: under one decade, so the rank is ambiguous.
    // A continuum from 1 down through the dtype cut, ending at 1.45x the floor.
    double norm = 0;
    for (double v : geometric(300, 1.0, 1e-6)) norm += v * v;
    const double floor = std::ldexp(1.0, -23) * std::sqrt(norm);
    std::vector<double> e = geometric(300, 1.0, 1.45 * floor);
    e.resize(400, 0.0);
    Eigen::MatrixXd m = with_spectrum(e, 81);
    Row r = run(f32(m), Method::dense, CutRule::automatic);
    REQUIRE(r.gap.has_value());
    CHECK(*r.gap < 1.0);
    CHECK(has(r, "ambiguous_rank"));
    CHECK(r.dim_low < r.dim_high);  // and the band says how far the dim can move
}

TEST_CASE("float16-like storage where n·ε ≥ 1: the rank is flagged, not silently 0") {
    // ε = 2^-10 (float16), n = 1100: the dtype cut exceeds max|λ|.
    Magnitudes m;
    m.known = geometric(1100, 10, 1);
    m.n = 1100;
    m.stored_eps = std::ldexp(1.0, -10);
    double f2 = 0;
    for (double v : m.known) f2 += v * v;
    m.frobenius = std::sqrt(f2);
    Cut c = choose_cut(m, {});
    CHECK(c.kept == 0);
    CHECK(c.ambiguous);
}

TEST_CASE("the log-volume error bar bounds the distance to the exact spectrum's value") {
    std::vector<double> e = geometric(50, 10, 1e-3);
    e.resize(700, 0.0);
    Eigen::MatrixXd m = with_spectrum(e, 91);
    // The exact log-volume of this matrix, from its known spectrum.
    const double T = 1.0;
    double sum_log = 0;
    for (std::size_t i = 0; i < 50; ++i) sum_log += std::log(e[i]);
    const double exact = testing_support::log_ball(50) + 25 * std::log(2 * T) - sum_log / 2;
    for (Method meth : {Method::dense, Method::sketch, Method::lanczos, Method::cholesky}) {
        Row r = run(make_hessian(m), meth, CutRule::automatic);
        CAPTURE(r.method);
        REQUIRE(r.rank == 50);
        CHECK(r.log_volume_error > 0);
        // the matrix itself is exact only to rounding of its construction (~1e-15 relative)
        CHECK(std::abs(r.log_volume - exact) <= r.log_volume_error + 1e-10);
    }
}

TEST_CASE("the solver note names why a partial method was left") {
    // n = 20: the sketch refuses so small an n (it needs twice its
    // oversampling in Ritz pairs); that is not a negative diagonal.
    Eigen::MatrixXd m = with_spectrum({3, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 101);
    Row r = run(make_hessian(m), Method::sketch, CutRule::automatic);
    CHECK(r.method == "dense");
    CHECK(r.solver_note == "sketch: not applicable (n too small)");
    // A negative diagonal entry is what stops pivoted Cholesky.
    Eigen::MatrixXd s = with_spectrum({3, -2, 1, 0, 0, 0}, 102);
    s(0, 0) = -std::abs(s(0, 0)) - 0.1;
    Row c = run(make_hessian(s), Method::cholesky, CutRule::automatic);
    CHECK(c.method == "dense");
    CHECK(c.solver_note.find("cholesky: not applicable (negative diagonal)") == 0);
}

TEST_CASE("float32 values and float64 rounding are told apart by their bits") {
    auto evidence = [](const std::vector<double>& values) {
        Float32Evidence e;
        for (double v : values) e.add(v);
        return e;
    };
    auto times = [](std::vector<double> v, int k) {  // k copies: evidence needs 16 values of 24–25 bits
        std::vector<double> out;
        for (int i = 0; i < k; ++i) out.insert(out.end(), v.begin(), v.end());
        return out;
    };
    // Integers (any size) say nothing; short binary fractions, float32
    // subnormals and zeros are means of float32 values of under 24 bits.
    const Float32Evidence exact =
        evidence(times({1.0, 2.0, 0.5, -0.25, 65535.0, 9227465.0, 3e9, 0x1p-30, 0x1p-145, 22497.25, -0.0}, 20));
    CHECK(exact.too_precise == 0);
    CHECK(exact.full == 0);
    CHECK(exact.fractional == 20 * 5);
    CHECK_FALSE(exact.holds());
    // Means of two float32 values pass the first test: rounded reals of 24
    // bits and means in one binade (25) count as full, means across binades
    // (26 bits: neighbours; far more: float32 noise binades apart) do not.
    const double below = double(std::nextafter(1.0f, 0.0f)), above = double(std::nextafter(1.0f, 2.0f));
    struct Mean {
        double v;
        bool full;
    };
    for (const Mean m : {Mean{double(0.1f), true}, Mean{-double(std::sqrt(2.0f)), true},
                         Mean{(double(0.1f) + double(std::nextafter(0.1f, 1.0f))) / 2, true},
                         Mean{(below + above) / 2, false}, Mean{(double(3e-8f) + double(-7e-13f)) / 2, false},
                         Mean{1.0 + 0x1p-30, false}}) {
        CAPTURE(m.v);
        const Float32Evidence e = evidence({m.v});
        CHECK(e.too_precise == 0);
        CHECK(e.fractional == 1);
        CHECK(e.full == (m.full ? 1u : 0u));
    }
    // Values of float64 precision, past float32's range, double subnormals,
    // not finite: not float32 data, whatever else is there.
    const std::vector<double> rounded = {double(0.1f), double(1000.3f)};  // 24 bits each, 36 bits apart
    REQUIRE(evidence(rounded).full == 2);
    REQUIRE(evidence(times(rounded, 8)).holds());
    for (double v : {0.1, 1.0 / 3, 1e39, 0x1p-1070, 1.0 + 0x1p-25 + 0x1p-52, std::nan(""), HUGE_VAL}) {
        CAPTURE(v);
        CHECK(evidence({v}).too_precise == 1);
        CHECK_FALSE(evidence(times({double(0.1f), double(1000.3f), v}, 20)).holds());
    }
    // At least 16 full values, a third of the non-integers, 27 bits of extent.
    CHECK_FALSE(evidence(times(rounded, 7)).holds());
    CHECK(evidence(times({double(0.1f), double(1000.3f), 0.5, 0.25, 0.75, 0.125}, 8)).holds());
    CHECK_FALSE(evidence(times({double(0.1f), double(1000.3f), 0.5, 0.25, 0.75, 0.125, 0.375}, 8)).holds());
    CHECK_FALSE(evidence(times({double(0.1f), double(0.2f), double(0.3f)}, 16)).holds());  // one grid of 25 bits
    // Genuine float64 values pass the mean test about one time in five.
    std::mt19937_64 rng(7);
    std::normal_distribution<double> g;
    int passed = 0;
    for (int i = 0; i < 1000; ++i) passed += evidence({g(rng)}).too_precise == 0;
    CHECK(passed > 120);
    CHECK(passed < 260);
}

TEST_CASE("float32 data saved as float64 get the float32 dataset's answer; exact and float64 data keep float64's floor") {
    // Gram matrices rounded to float32 (n = 160, ranks 20–120) and an
    // indefinite one: a float64 copy is cut at float32's floor, as the
    // float32 dataset is, where float64's floor counts the rounding's
    // eigenvalues as curvature.
    struct Case {
        Eigen::Index n, rank;
        bool indefinite;
        std::uint32_t seed;
    };
    for (const Case& c : {Case{160, 20, false, 111}, Case{160, 80, false, 112}, Case{160, 120, false, 113},
                          Case{160, 60, true, 114}}) {
        CAPTURE(c.rank);
        std::mt19937_64 rng(c.seed);
        std::normal_distribution<double> g;
        Eigen::MatrixXf x(c.n, c.rank);
        for (Eigen::Index j = 0; j < c.rank; ++j)
            for (Eigen::Index i = 0; i < c.n; ++i) x(i, j) = static_cast<float>(g(rng));
        Eigen::VectorXf sign = Eigen::VectorXf::Ones(c.rank);
        if (c.indefinite) sign.tail(c.rank / 3).setConstant(-1);
        Eigen::MatrixXf h32 = x * sign.asDiagonal() * x.transpose();
        h32 = ((h32 + h32.transpose()) / 2).eval();
        const Eigen::MatrixXd h64 = h32.cast<double>();
        const Hessian a = make_hessian(h32), b = make_hessian(h64);
        CHECK_FALSE(a.info.float32_values);
        CHECK(b.info.float32_values);
        CHECK(b.info.stored_eps == a.info.stored_eps);
        const Row ra = run(a, Method::dense, CutRule::automatic), rb = run(b, Method::dense, CutRule::automatic);
        REQUIRE(ra.ok);
        REQUIRE(rb.ok);
        CHECK(ra.rank == c.rank);
        CHECK(rb.rank == ra.rank);
        CHECK(rb.dim_low == ra.dim_low);
        CHECK(rb.dim_high == ra.dim_high);
        CHECK(rb.negative == ra.negative);
        CHECK(rb.noise_floor == ra.noise_floor);
        CHECK(rb.log_volume == doctest::Approx(ra.log_volume).epsilon(1e-12));
        CHECK(has(rb, "float32_values"));
        CHECK_FALSE(has(ra, "float32_values"));
        // Under float64's floor the rounding is curvature.
        const Eigen::VectorXd w = testing_support::eigenvalues_of(h64);
        const double cut64 = 8 * std::sqrt(double(c.n)) * std::numeric_limits<double>::epsilon() * h64.norm();
        CHECK((w.array().abs() > cut64).count() > c.rank);
        check_every_method(b, "float32 data saved as float64");
        // Symmetrized after widening, (H + Hᵀ)/2 in float64 of an H asymmetric
        // by an ulp here and there (autograd's): the same answer, flagged.
        Eigen::MatrixXf skewed = h32;
        for (Eigen::Index j = 0; j < c.n; j += 3)
            for (Eigen::Index i = 0; i < j; i += 2) skewed(i, j) = std::nextafter(skewed(i, j), 1e30f);
        const Eigen::MatrixXd wide = skewed.cast<double>(), sym = (wide + wide.transpose()) / 2;
        const Hessian s = make_hessian(sym);
        CHECK(s.info.float32_values);
        const Row rs = run(s, Method::dense, CutRule::automatic);
        CHECK(rs.rank == c.rank);
        CHECK(rs.negative == ra.negative);
        CHECK(has(rs, "float32_values"));
    }
    // Exact data whose entries are float32 values: a toy's diagonal with
    // 2^-30 (under float32's floor of this matrix, over float64's) and an
    // integer Laplacian; both keep every value, under float64's rounding.
    Eigen::MatrixXd toy = Eigen::MatrixXd::Zero(4, 4);
    toy.diagonal() << 1, 2, 0.5, 0x1p-30;
    const Hessian t = make_hessian(toy);
    CHECK_FALSE(t.info.float32_values);
    const Row rt = run(t, Method::dense, CutRule::automatic);
    CHECK(rt.rank == 4);
    CHECK_FALSE(has(rt, "float32_values"));
    Eigen::MatrixXd lap = Eigen::MatrixXd::Zero(50, 50);
    for (Eigen::Index i = 0; i < 50; ++i) {
        lap(i, i) = 2;
        if (i + 1 < 50) lap(i, i + 1) = lap(i + 1, i) = -1;
    }
    CHECK_FALSE(make_hessian(lap).info.float32_values);
    // Integers past 2^16 (Fibonacci's, determinant 1: eigenvalues 1.3e7 and
    // 7.9e-8) are exact, not rounded reals: float64's floor keeps both.
    Eigen::Matrix2d fib;
    fib << 9227465, 5702887, 5702887, 3524578;
    const Hessian fh = make_hessian(Eigen::MatrixXd(fib));
    CHECK_FALSE(fh.info.float32_values);
    CHECK(run(fh, Method::dense, CutRule::automatic).rank == 2);
    // A linear model's MSE Hessian on raw 8-bit features, XᵀX/256: exact
    // binary fractions under 24 bits, its smallest value real (a feature
    // one count away from another): float64's floor keeps it.
    {
        std::mt19937_64 r8(121);
        std::uniform_int_distribution<int> pixel(0, 255);
        Eigen::MatrixXd X(256, 31);
        for (Eigen::Index i = 0; i < 256; ++i)
            for (Eigen::Index j = 0; j < 30; ++j) X(i, j) = pixel(r8);
        X.col(30) = X.col(0);
        X(7, 30) += 1;
        const Eigen::MatrixXd xtx = X.transpose() * X / 256;
        const Hessian hx = make_hessian(xtx);
        CHECK_FALSE(hx.info.float32_values);
        CHECK(run(hx, Method::dense, CutRule::automatic).rank == 31);
        // 1024 samples, centered: a covariance of exact binary fractions
        // whose values reach 26 bits (a review's case: it lost its value).
        Eigen::MatrixXd Y(1024, 10);
        for (Eigen::Index i = 0; i < 1024; ++i)
            for (Eigen::Index j = 0; j < 9; ++j) Y(i, j) = pixel(r8);
        Y.col(9) = Y.col(0);
        Y(7, 9) += 1;
        const Eigen::MatrixXd centered = Y.rowwise() - Y.colwise().sum() / 1024;
        const Hessian hc = make_hessian(Eigen::MatrixXd(centered.transpose() * centered / 1024));
        CHECK_FALSE(hc.info.float32_values);
        CHECK(run(hc, Method::dense, CutRule::automatic).rank == 10);
    }
    // Float32 data symmetrized in float64 where a parameter's curvature is
    // exactly zero (a bias before a batch norm) and each triangle holds its
    // own float32 noise: pairs binades apart, each mean still exact.
    {
        const Eigen::Index n = 60;
        std::mt19937_64 rn(123);
        std::normal_distribution<float> unit(0.0f, 1.0f), noise(0.0f, 3e-8f);
        Eigen::MatrixXf x(n, 20);
        for (Eigen::Index j = 0; j < 20; ++j)
            for (Eigen::Index i = 0; i < n; ++i) x(i, j) = i < 4 ? 0.0f : unit(rn);
        Eigen::MatrixXf h = x * x.transpose();
        for (Eigen::Index i = 0; i < n; ++i) {  // rows and columns 0–3: zero curvature, noise in each triangle
            for (Eigen::Index k = 0; k < 4; ++k) h(k, i) = noise(rn), h(i, k) = noise(rn);
        }
        const Eigen::MatrixXd wide = h.cast<double>(), sym = (wide + wide.transpose()) / 2;
        const Hessian hs = make_hessian(sym);
        CHECK(hs.info.float32_values);
        const Row rs = run(hs, Method::dense, CutRule::automatic);
        CHECK(rs.rank <= 20);
        CHECK(has(rs, "float32_values"));
        // Told to trust the stored type, float64's floor counts the noise.
        ReadOptions trust;
        trust.detect_float32_data = false;
        const Hessian ht = make_hessian(sym, "memory", trust);
        CHECK_FALSE(ht.info.float32_values);
        CHECK(run(ht, Method::dense, CutRule::automatic).rank > 20);
    }
    // Genuine float64 data, and float32 data with one entry pair changed to
    // a float64 value (not the mean of two float32 values): float64's floor.
    Eigen::MatrixXd f64 = with_spectrum(geometric(30, 1.0, 1e-3), 115);
    CHECK_FALSE(make_hessian(f64).info.float32_values);
    Eigen::MatrixXd mixed = f64.cast<float>().cast<double>();
    CHECK(make_hessian(mixed).info.float32_values);
    mixed(3, 7) = mixed(7, 3) = 1.0 / 3;
    CHECK_FALSE(make_hessian(mixed).info.float32_values);
}
