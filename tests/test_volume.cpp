// Closed forms and invariances of the dimension and log-volume.
#include "support.hpp"

#include <basinvol/analyze.hpp>
#include <basinvol/measure/volume.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

using namespace basinvol;
using testing_support::log_ball;
using testing_support::with_spectrum;

namespace {
Row run(Eigen::MatrixXd m, AnalyzeOptions opt = {}) {
    opt.method = Method::dense;
    return analyze_hessian(make_hessian(std::move(m)), opt);
}
}  // namespace

TEST_CASE("unit-ball volumes match their closed forms") {
    CHECK(std::exp(log_unit_ball(0)) == doctest::Approx(1.0));
    CHECK(std::exp(log_unit_ball(1)) == doctest::Approx(2.0));
    CHECK(std::exp(log_unit_ball(2)) == doctest::Approx(M_PI));
    CHECK(std::exp(log_unit_ball(3)) == doctest::Approx(4.0 * M_PI / 3.0));
    CHECK(std::exp(log_unit_ball(4)) == doctest::Approx(M_PI * M_PI / 2.0));
    // r = 10^5 stays finite in log space (ω_r itself underflows).
    CHECK(std::isfinite(log_unit_ball(100000)));
    CHECK(log_unit_ball(100000) < -1e5);
}

TEST_CASE("L = x^2 + y^2 in R^3: H = diag(2,2,0), dimension 1, log V = log(pi T)") {
    for (double T : {1.0, 0.5, 3.0}) {
        AnalyzeOptions opt;
        opt.threshold = T;
        Row r = run(Eigen::Vector3d(2, 2, 0).asDiagonal().toDenseMatrix(), opt);
        REQUIRE(r.ok);
        CHECK(r.n == 3);
        CHECK(r.dim == 1);
        CHECK(r.rank == 2);
        CHECK(r.negative == 0);
        CHECK(r.log_volume == doctest::Approx(std::log(M_PI * T)).epsilon(1e-14));
        CHECK(r.log10_volume == doctest::Approx(std::log10(M_PI * T)).epsilon(1e-14));
        // The dropped eigenvalue is exactly zero, but below the noise floor a
        // value is noise: the gap is measured against the floor.
        REQUIRE(r.gap.has_value());
        // The floor is float64's 8·√n·ε·‖H‖_F here (n = 3, ‖H‖_F = √8).
        const double floor = 8 * std::sqrt(3.0) * std::numeric_limits<double>::epsilon() * std::sqrt(8.0);
        CHECK(r.noise_floor == doctest::Approx(floor).epsilon(1e-12));
        CHECK(*r.gap == doctest::Approx(std::log10(2 / floor)).epsilon(1e-12));
        CHECK(r.dim_low == 1);
        CHECK(r.dim_high == 1);
        CHECK(r.log_volume_error < 1e-14);
    }
}

TEST_CASE("the loss_threshold attribute sets T unless -T is given") {
    Hessian h = make_hessian(Eigen::MatrixXd(Eigen::Vector3d(2, 2, 0).asDiagonal()));
    h.info.attrs.loss_threshold = 0.25;
    Row r = analyze_hessian(h, {});
    CHECK(r.log_volume == doctest::Approx(std::log(M_PI * 0.25)));
    AnalyzeOptions opt;
    opt.threshold = 2.0;
    CHECK(analyze_hessian(h, opt).log_volume == doctest::Approx(std::log(M_PI * 2.0)));
    h.info.attrs.loss_threshold = -1;
    Row bad = analyze_hessian(h, {});
    CHECK_FALSE(bad.ok);
    CHECK(bad.error.find("loss_threshold") != std::string::npos);
}

TEST_CASE("invariance under H -> Q H Q^T") {
    std::vector<double> eigs = {5, 3, 1, 0.2, 1e-3, -0.7, 0, 0, 0, 0};
    Row a = run(with_spectrum(eigs, 11));
    Row b = run(with_spectrum(eigs, 12));
    Eigen::VectorXd d = Eigen::Map<Eigen::VectorXd>(eigs.data(), 10);
    Row c = run(d.asDiagonal().toDenseMatrix());
    for (const Row* r : {&a, &b}) {
        REQUIRE(r->ok);
        CHECK(r->rank == c.rank);
        CHECK(r->dim == c.dim);
        CHECK(r->negative == c.negative);
        CHECK(r->log_volume == doctest::Approx(c.log_volume).epsilon(1e-12));
    }
    CHECK(c.dim == 4);
    CHECK(c.negative == 1);
}

TEST_CASE("H -> alpha H shifts log V by exactly -(r/2) log alpha") {
    std::vector<double> eigs = {4, 2, 1, 0.5, 0.25, -0.125, 0, 0};
    Eigen::MatrixXd h = with_spectrum(eigs, 21);
    Row base = run(h);
    REQUIRE(base.ok);
    const double r = static_cast<double>(base.rank);
    for (double alpha : {1e-300, 1e-3, 1e3, 1e300}) {
        CAPTURE(alpha);
        Row s = run(h * alpha);
        REQUIRE(s.ok);
        CHECK(s.rank == base.rank);
        CHECK(s.dim == base.dim);
        CHECK(std::isfinite(s.log_volume));
        CHECK(s.log_volume == doctest::Approx(base.log_volume - r / 2 * std::log(alpha)).epsilon(1e-12));
    }
}

TEST_CASE("an exactly flat coordinate adds one dimension and leaves log V unchanged") {
    Eigen::MatrixXd h = with_spectrum({3, 2, 1, 0.1, 0}, 31);
    Eigen::MatrixXd g = Eigen::MatrixXd::Zero(6, 6);
    g.topLeftCorner(5, 5) = h;
    Row a = run(h), b = run(g);
    REQUIRE(a.ok);
    REQUIRE(b.ok);
    CHECK(b.dim == a.dim + 1);
    CHECK(b.rank == a.rank);
    CHECK(b.log_volume == doctest::Approx(a.log_volume).epsilon(1e-12));
}

TEST_CASE("dense results agree with an independent eigen-solver") {
    // Eigen's own solver, and the formula written out here, as the reference.
    for (std::uint32_t seed : {41u, 42u, 43u}) {
        std::vector<double> eigs;
        for (int i = 0; i < 60; ++i) eigs.push_back(std::pow(10.0, -4 + 6.0 * i / 59.0) * (i % 7 == 0 ? -1 : 1));
        for (int i = 0; i < 20; ++i) eigs.push_back(0.0);
        Eigen::MatrixXd h = with_spectrum(eigs, seed);
        Row r = run(h);
        REQUIRE(r.ok);
        const Eigen::VectorXd w = testing_support::eigenvalues_of(h);
        const double tol = w.cwiseAbs().maxCoeff() * 80 * std::numeric_limits<double>::epsilon();
        std::size_t rank = 0, neg = 0;
        double sum = 0;
        for (Eigen::Index i = 0; i < w.size(); ++i)
            if (std::abs(w(i)) > tol) {
                ++rank;
                neg += w(i) < 0;
                sum += std::log(std::abs(w(i)));
            }
        CHECK(r.rank == rank);
        CHECK(r.dim == 80 - rank);
        CHECK(r.negative == neg);
        CHECK(r.log_volume == doctest::Approx(log_ball(rank) + rank / 2.0 * std::log(2.0) - sum / 2).epsilon(1e-10));
        CHECK(rank == 60);
        CHECK(neg == 9);
    }
}

TEST_CASE("negative eigenvalues: abs flags saddles, drop leaves them out of the volume") {
    std::vector<double> eigs = {4, 1, -2, 0};
    Eigen::VectorXd d = Eigen::Map<Eigen::VectorXd>(eigs.data(), 4);
    Eigen::MatrixXd h = d.asDiagonal().toDenseMatrix();
    Row a = run(h);
    CHECK(a.rank == 3);
    CHECK(a.negative == 1);
    CHECK(a.log_volume == doctest::Approx(log_ball(3) + 1.5 * std::log(2.0) - 0.5 * std::log(8.0)));
    CHECK(a.warnings.has(Warning::saddle));
    AnalyzeOptions opt;
    opt.negatives = NegativePolicy::drop;
    Row b = run(h, opt);
    CHECK(b.rank == 2);
    CHECK(b.dim == 1);
    CHECK(b.negative == 1);
    CHECK(b.log_volume == doctest::Approx(log_ball(2) + std::log(2.0) - 0.5 * std::log(4.0)));
}

TEST_CASE("regularized comparator: log V_lambda over all n directions") {
    std::vector<double> eigs = {4, 1, 0};
    double lambda = 0.01;
    double expect = log_ball(3) + 1.5 * std::log(2.0) - 0.5 * (std::log(4.01) + std::log(1.01) + std::log(0.01));
    CHECK(regularized_log_volume(eigs, 3, 1.0, lambda) == doctest::Approx(expect).epsilon(1e-14));
    // Eigenvalues not listed count as zero.
    CHECK(regularized_log_volume({4, 1}, 3, 1.0, lambda) == doctest::Approx(expect).epsilon(1e-14));
}

TEST_CASE("the regularized volume's rounding bound, and the warning when it passes a micro-nat") {
    // ½·Σ log(1 + e/(|λ_i| + λ − e)) over all n; unlisted values are 0.
    const double e = 1e-12, lambda = 1e-6;
    const double expect = 0.5 * (std::log1p(e / (4 + lambda - e)) + 2 * std::log1p(e / (lambda - e)));
    const std::vector<double> listed = {4, 0};
    CHECK(regularized_log_volume_error(EigenvalueList(listed), 3, lambda, e) == doctest::Approx(expect));
    CHECK(std::isinf(regularized_log_volume_error(EigenvalueList(listed), 2, 1e-13, e)));
    CHECK(regularized_log_volume_error(EigenvalueList(listed), 2, lambda, 0) == 0);
    // A rotated spectrum of 40 zeros under three curved values: the zeros come
    // out of the solve at ±ε·‖H‖, which a λ of 1e-14 cannot tell from its own
    // size (the volume is off by tens of nats against the exact one), and a
    // λ of 1e-3 can.
    std::vector<double> spectrum(43, 0.0);
    spectrum[0] = 1e3, spectrum[1] = 10, spectrum[2] = 0.1;
    const Eigen::MatrixXd H = testing_support::with_spectrum(spectrum, 7);
    for (const double reg : {1e-14, 1e-10, 1e-3, 1.0}) {
        CAPTURE(reg);
        AnalyzeOptions opt;
        opt.regularized = reg;
        const Row r = run(H, opt);
        REQUIRE(r.ok);
        CHECK(r.warnings.has(Warning::regularized_noisy) == (reg < 1e-6));
    }
    // Judged by the dense solve's bound whichever solver ran: a flag every
    // solver gives alike (a partial one once gave it where dense did not).
    std::vector<double> low(600, 0.0);
    for (std::size_t i = 0; i < 30; ++i) low[i] = 10 * std::pow(1e-4, double(i) / 29);
    const Eigen::MatrixXd L = testing_support::with_spectrum(low, 11);
    for (const double reg : {1e-10, 1e-3}) {
        CAPTURE(reg);
        for (const Method m : {Method::dense, Method::cholesky, Method::sketch, Method::lanczos}) {
            CAPTURE(method_name(m));
            AnalyzeOptions opt;
            opt.regularized = reg;
            opt.method = m;
            const Row r = run(L, opt);
            REQUIRE(r.ok);
            CHECK(r.warnings.has(Warning::regularized_noisy) == (reg < 1e-6));
        }
    }
}

TEST_CASE("n = 1 and the all-zero matrix") {
    Row one = run(Eigen::MatrixXd::Constant(1, 1, 8.0));
    REQUIRE(one.ok);
    CHECK(one.rank == 1);
    // ω_1 = 2; radius sqrt(2T/λ) = 0.5: length 1.
    CHECK(one.log_volume == doctest::Approx(0.0).epsilon(1e-14));
    Row zero = run(Eigen::MatrixXd::Zero(5, 5));
    REQUIRE(zero.ok);
    CHECK(zero.rank == 0);
    CHECK(zero.dim == 5);
    CHECK(zero.log_volume == doctest::Approx(0.0));
}

TEST_CASE("property: the same Hessian relabelled gets a log-volume within both error bars") {
    // Permuting parameters permutes H's rows and columns: the exact
    // eigenvalues are the same, the computed ones differ by rounding, which
    // log_volume_error must cover (it once missed 23 of 300 such pairs).
    std::mt19937_64 rng(20261203);
    std::normal_distribution<double> z;
    for (int trial = 0; trial < 300; ++trial) {
        const Eigen::Index n = 5 + trial % 40, r = 1 + trial % 3;
        Eigen::MatrixXd J(r, n);
        for (Eigen::Index i = 0; i < J.size(); ++i) J.data()[i] = z(rng);
        const Eigen::MatrixXd H = J.transpose() * J;
        std::vector<int> order(static_cast<std::size_t>(n));
        std::iota(order.begin(), order.end(), 0);
        std::shuffle(order.begin(), order.end(), rng);
        Eigen::MatrixXd P(n, n);
        for (Eigen::Index i = 0; i < n; ++i)
            for (Eigen::Index j = 0; j < n; ++j) P(i, j) = H(order[std::size_t(i)], order[std::size_t(j)]);
        AnalyzeOptions opt;
        opt.method = Method::dense;
        const Row a = run(H, opt), b = run(P, opt);
        REQUIRE(a.rank == b.rank);
        CAPTURE(trial);
        CHECK(std::abs(a.log_volume - b.log_volume) <= a.log_volume_error + b.log_volume_error);
    }
}
