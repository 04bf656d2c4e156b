// Numerics at the extremes, tested the way LAPACK tests its own solvers: build
// matrices with prescribed spectra (Q·diag(λ)·Qᵀ, Q Haar-random from a local
// seed) and check the computed dimension and log-volume against the
// prescription. Every case runs through every solver.
#include "support.hpp"

#include <basinvol/analyze.hpp>
#include <basinvol/io/reader.hpp>
#include <basinvol/measure/volume.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <numeric>
#include <string>
#include <vector>

using namespace basinvol;
using testing_support::geometric;
using testing_support::log_ball;
using testing_support::with_spectrum;

namespace {

const Method all_methods[] = {Method::dense, Method::cholesky, Method::sketch, Method::lanczos, Method::automatic};

const char* name(Method m) {
    switch (m) {
        case Method::dense: return "dense";
        case Method::sketch: return "sketch";
        case Method::lanczos: return "lanczos";
        case Method::cholesky: return "cholesky";
        default: return "auto";
    }
}

Row run(Eigen::MatrixXd m, Method method, AnalyzeOptions opt = {}) {
    opt.method = method;
    return analyze_hessian(make_hessian(std::move(m)), opt);
}

// log V = log ω_r + (r/2)·log 2T − ½ Σ log|λ| over the prescribed nonzero λ (T = 1).
double expected_log_volume(const std::vector<double>& eigs) {
    std::size_t r = 0;
    long double sum = 0;
    for (double v : eigs)
        if (v != 0) {
            ++r;
            sum += std::log(static_cast<long double>(std::abs(v)));
        }
    return log_ball(r) + 0.5 * static_cast<double>(r) * std::log(2.0) - static_cast<double>(sum / 2);
}

std::vector<double> with_zeros(std::vector<double> v, std::size_t zeros) {
    v.insert(v.end(), zeros, 0.0);
    return v;
}

}  // namespace

TEST_CASE("n = 1: a positive, a negative and a zero 1x1 Hessian") {
    for (Method m : all_methods) {
        CAPTURE(name(m));
        Row pos = run(Eigen::MatrixXd::Constant(1, 1, 5.0), m);
        REQUIRE(pos.ok);
        CHECK(pos.rank == 1);
        CHECK(pos.dim == 0);
        // ω_1 = 2: log V = log 2 + ½ log 2 − ½ log 5
        CHECK(pos.log_volume == doctest::Approx(std::log(2.0) + 0.5 * std::log(2.0) - 0.5 * std::log(5.0)).epsilon(1e-15));
        Row neg = run(Eigen::MatrixXd::Constant(1, 1, -2.0), m);
        REQUIRE(neg.ok);
        CHECK(neg.negative == 1);
        Row zero = run(Eigen::MatrixXd::Zero(1, 1), m);
        REQUIRE(zero.ok);
        CHECK(zero.rank == 0);
        CHECK(zero.dim == 1);
        CHECK(zero.log_volume == 0);  // ω_0 = 1, no curved direction
    }
}

TEST_CASE("the zero matrix: every direction flat, log V = 0, unbounded gap") {
    for (std::size_t n : {2u, 7u, 120u, 700u})
        for (Method m : all_methods) {
            CAPTURE(n);
            CAPTURE(name(m));
            Row r = run(Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(n)), m);
            REQUIRE(r.ok);
            CHECK(r.rank == 0);
            CHECK(r.dim == n);
            CHECK(r.log_volume == 0);
            CHECK_FALSE(r.gap.has_value());
            CHECK(std::isfinite(r.tol));
        }
}

TEST_CASE("one nonzero eigenvalue among many zeros") {
    for (std::size_t n : {3u, 64u, 600u})
        for (double lambda : {3.0, -0.5, 1e-200, 1e200})
            for (Method m : all_methods) {
                CAPTURE(n);
                CAPTURE(lambda);
                CAPTURE(name(m));
                std::vector<double> eigs = with_zeros({lambda}, n - 1);
                Row r = run(with_spectrum(eigs, 11), m);
                REQUIRE(r.ok);
                CHECK(r.rank == 1);
                CHECK(r.dim == n - 1);
                CHECK(r.negative == (lambda < 0 ? 1u : 0u));
                CHECK(r.log_volume == doctest::Approx(expected_log_volume(eigs)).epsilon(1e-12));
            }
}

TEST_CASE("repeated and clustered eigenvalues") {
    const std::size_t n = 600;
    std::vector<double> repeated = with_zeros(std::vector<double>(40, 2.0), n - 40);
    std::vector<double> clustered(60);
    for (std::size_t i = 0; i < clustered.size(); ++i) clustered[i] = 1.0 + 1e-12 * static_cast<double>(i);
    clustered = with_zeros(clustered, n - 60);
    std::vector<double> all_equal(n, 0.25);
    struct Case {
        const char* what;
        std::vector<double> eigs;
    } cases[] = {{"40 x 2.0", repeated}, {"60 within 1e-10 of 1", clustered}, {"identity / 4", all_equal}};
    for (const auto& c : cases)
        for (Method m : all_methods) {
            CAPTURE(c.what);
            CAPTURE(name(m));
            Row r = run(with_spectrum(c.eigs, 12), m);
            REQUIRE(r.ok);
            std::size_t rank = static_cast<std::size_t>(std::count_if(c.eigs.begin(), c.eigs.end(), [](double v) { return v != 0; }));
            CHECK(r.rank == rank);
            CHECK(r.log_volume == doctest::Approx(expected_log_volume(c.eigs)).epsilon(1e-12));
        }
}

TEST_CASE("geometric spectra down to the tolerance: the rank is exact") {
    // tol = max|λ|·n·ε = n·ε here; the smallest prescribed value sits 1000x
    // above it, the dropped ones are exactly zero.
    for (std::size_t n : {50u, 600u}) {
        const double tol = static_cast<double>(n) * std::ldexp(1.0, -52);
        const std::size_t r = n / 5;
        std::vector<double> eigs = with_zeros(geometric(r, 1.0, 1e3 * tol), n - r);
        for (Method m : all_methods) {
            CAPTURE(n);
            CAPTURE(name(m));
            Row row = run(with_spectrum(eigs, 13), m);
            REQUIRE(row.ok);
            CHECK(row.rank == r);
            CHECK(row.dim == n - r);
            // Each computed λ carries an absolute error of about ε·‖H‖ (Weyl), here
            // taken as δ = 8·√n·ε·‖H‖_F (computed from the prescribed values, not
            // from the row): the log-volume holds to Σ ½·δ/(λ_i − δ).
            double frobenius = 0;
            for (double v : eigs) frobenius += v * v;
            const double delta = 8 * std::sqrt(static_cast<double>(n)) * std::ldexp(1.0, -52) * std::sqrt(frobenius);
            double bound = 0;
            for (std::size_t i = 0; i < r; ++i) bound += 0.5 * delta / (eigs[i] - delta);
            CHECK(std::abs(row.log_volume - expected_log_volume(eigs)) <= bound);
        }
    }
}

TEST_CASE("a diagonal geometric spectrum is measured to rounding") {
    const std::size_t n = 80;
    std::vector<double> eigs = with_zeros(geometric(60, 1e3, 1e-10), n - 60);
    Eigen::MatrixXd d = Eigen::Map<Eigen::VectorXd>(eigs.data(), static_cast<Eigen::Index>(n)).asDiagonal();
    Row r = run(d, Method::dense);
    REQUIRE(r.ok);
    CHECK(r.rank == 60);
    CHECK(r.log_volume == doctest::Approx(expected_log_volume(eigs)).epsilon(1e-14));
}

TEST_CASE("entries scaled by 1e-300 and 1e+300: finite, and shifted by exactly -(r/2) log alpha" * doctest::test_suite("large")) {
    for (std::size_t n : {30u, 600u}) {
        const std::size_t r = n / 3;
        std::vector<double> eigs = with_zeros(geometric(r, 10.0, 0.1), n - r);
        eigs[1] = -eigs[1];
        const Eigen::MatrixXd h = with_spectrum(eigs, 14);
        for (Method m : all_methods) {
            CAPTURE(n);
            CAPTURE(name(m));
            Row base = run(h, m);
            REQUIRE(base.ok);
            REQUIRE(base.rank == r);
            for (double alpha : {1e-300, 1e-150, 1e150, 1e300}) {
                CAPTURE(alpha);
                Row s = run(alpha * h, m);
                REQUIRE(s.ok);
                CHECK(s.rank == r);
                CHECK(s.negative == 1);
                REQUIRE(std::isfinite(s.log_volume));
                const double shift = -0.5 * static_cast<double>(r) * std::log(alpha);
                CHECK(s.log_volume - base.log_volume == doctest::Approx(shift).epsilon(1e-12));
                CHECK(std::isfinite(s.tol));
                CHECK(s.tol > 0);
            }
        }
    }
}

TEST_CASE("values near the edges of float64 are refused or measured, never overflowed") {
    // Eigenvalues 2.5e307 and -0.5e307: measured.
    Eigen::MatrixXd big(2, 2);
    big << 1e307, 1.5e307, 1.5e307, 1e307;
    Row r = run(big, Method::dense);
    REQUIRE(r.ok);
    CHECK(r.rank == 2);
    CHECK(r.negative == 1);
    CHECK(r.log_volume == doctest::Approx(log_ball(2) + std::log(2.0) - 0.5 * (std::log(2.5e307) + std::log(0.5e307))));
    // Ten times larger, the top eigenvalue (2.5e308) is past DBL_MAX: an error
    // row, never rank 0 from an infinite tol.
    for (Method m : all_methods) {
        CAPTURE(name(m));
        Row over = run(big * 10, m);
        CHECK_FALSE(over.ok);
        CHECK(over.error.find("float64") != std::string::npos);
        CHECK(over.error.find("rescale the Hessian") != std::string::npos);
    }
    // Subnormal entries: rank found, log-volume finite.
    Eigen::MatrixXd tiny = Eigen::Vector2d(4e-320, 1e-321).asDiagonal();
    Row t = run(tiny, Method::dense);
    REQUIRE(t.ok);
    CHECK(std::isfinite(t.log_volume));
    CHECK(t.rank >= 1);
}

TEST_CASE("subnormal entries: the rounding residue is not curvature") {
    // A rank-12 matrix whose entries are subnormal: ε·‖H‖_F underflows
    // to 0, and the solver's residue (multiples of 5e-324) in the 8 flat
    // directions must stay under the floor (the subnormal step), as float32
    // storage's does under its own step.
    const Eigen::MatrixXd g = with_spectrum(with_zeros(geometric(12, 10.0, 0.1), 8), 3);
    const Row base = run(g, Method::dense);
    REQUIRE(base.rank == 12);
    for (double alpha : {1e-310, 1e-312, 1e-315, 1e-318}) {
        CAPTURE(alpha);
        const Row s = run(alpha * g, Method::dense);
        REQUIRE(s.ok);
        CHECK(s.rank == 12);
        CHECK(s.negative == 0);
        CHECK(s.noise_floor > 0);
        CHECK(s.log_volume - base.log_volume == doctest::Approx(-6 * std::log(alpha)).epsilon(1e-4));
    }
    const Row f = analyze_hessian(make_hessian(Eigen::MatrixXf((1e-41 * g).cast<float>())), AnalyzeOptions{});
    REQUIRE(f.ok);
    CHECK(f.rank == 12);
    CHECK(f.negative == 0);
}

TEST_CASE("subnormal entries: an asymmetry of a few steps is rounding, not symmetrized") {
    // A matrix rotated in double at 1e-310 differs from its transpose by a
    // step or two of 4.9e-324 (as Q·D·Qᵀ computed there does): the stored
    // type's rounding, as ε relative is at normal scale. A few steps per
    // entry; the same relative asymmetry at scale 1 is symmetrizing.
    const Eigen::MatrixXd g = with_spectrum(with_zeros(geometric(4, 3.0, 0.5), 2), 5);
    for (double alpha : {1e-310, 1e-315}) {
        CAPTURE(alpha);
        Eigen::MatrixXd m = alpha * g;
        for (Eigen::Index j = 1; j < m.cols(); ++j) m(0, j) = std::nextafter(std::nextafter(m(0, j), 1.0), 1.0);
        const Row s = run(m, Method::dense);
        REQUIRE(s.ok);
        CHECK(s.asymmetry > 0);
        CHECK_FALSE(s.warnings.has(Warning::symmetrized));
        const Row big = run(m / alpha, Method::dense);  // the same relative asymmetry at scale 1
        REQUIRE(big.ok);
        CHECK(big.asymmetry == doctest::Approx(s.asymmetry).epsilon(0.5));
        CHECK(big.warnings.has(Warning::symmetrized));
    }
}

TEST_CASE("subnormal entries: the log-volume's error bar holds the exact value") {
    // Among subnormals every operation rounds to an absolute step, so the
    // error bar may not be ε·‖H‖_F (which underflows to 0). The exact
    // eigenvalues of the stored matrix come from its exact rescale by 2^1074.
    const Eigen::MatrixXd g = with_spectrum(with_zeros(geometric(5, 4.0, 0.4), 45), 7);
    const double ln2 = std::log(2.0);
    for (double alpha : {1e-316, 1e-320}) {
        CAPTURE(alpha);
        const Eigen::MatrixXd stored = alpha * g;  // rounded to the subnormal step: this is the matrix measured
        const Row s = run(stored, Method::dense);
        REQUIRE(s.ok);
        REQUIRE(s.rank == 5);
        Eigen::MatrixXd up = stored;
        for (Eigen::Index i = 0; i < up.size(); ++i) up.data()[i] = std::ldexp(up.data()[i], 1074);  // exact
        const Eigen::VectorXd lambda = Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(up).eigenvalues();
        double sum_log = 0;  // the five largest, in units of 2^-1074
        for (Eigen::Index i = lambda.size() - 5; i < lambda.size(); ++i) sum_log += std::log(lambda(i)) - 1074 * ln2;
        const double want = log_ball(5) + 2.5 * ln2 - sum_log / 2;  // T = 1
        CHECK(s.log_volume_error > 0);
        CHECK(std::abs(s.log_volume - want) <= s.log_volume_error + 1e-9 * std::abs(want));
    }
}

TEST_CASE("the largest n the memory budget holds is read; one byte less is refused") {
    // ok.saddle.h5 is 7x7 float64: 392 bytes in memory.
    auto list = list_hessians(parse_source(std::string(BASINVOL_TESTDATA) + "/ok.saddle.h5"));
    REQUIRE(list.size() == 1);
    AnalyzeOptions opt;
    opt.read.max_bytes = 7 * 7 * 8;
    CHECK(analyze_listed(list[0], opt).ok);
    opt.read.max_bytes = 7 * 7 * 8 - 1;
    Row refused = analyze_listed(list[0], opt);
    CHECK_FALSE(refused.ok);
    CHECK(refused.error.find("n = 7 needs") != std::string::npos);
}

TEST_CASE("a large prescribed spectrum: n = 1200, rank 150, every solver agrees" * doctest::test_suite("large")) {
    const std::size_t n = 1200, r = 150;
    std::vector<double> eigs = with_zeros(geometric(r, 1e2, 1e-3), n - r);
    const Eigen::MatrixXd h = with_spectrum(eigs, 15);
    for (Method m : {Method::automatic, Method::dense, Method::lanczos}) {
        CAPTURE(name(m));
        Row row = run(h, m);
        REQUIRE(row.ok);
        CHECK(row.rank == r);
        CHECK(row.certified);
        CHECK(row.log_volume == doctest::Approx(expected_log_volume(eigs)).epsilon(1e-9));
    }
}
