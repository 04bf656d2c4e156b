// Partial spectra (sketch, Lanczos) must match the dense path, and carry a
// certificate that is checked, not assumed.
#include "support.hpp"
#include "../src/solve/single.hpp"

#include <basinvol/analyze.hpp>
#include <basinvol/solve/operator.hpp>
#include <basinvol/solve/spectrum.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <queue>

using namespace basinvol;
using testing_support::geometric;
using testing_support::with_spectrum;

namespace {
Row run(const Hessian& h, Method m) {
    AnalyzeOptions opt;
    opt.method = m;
    return analyze_hessian(h, opt);
}

void check_same(const Row& partial, const Row& dense) {
    REQUIRE(partial.ok);
    REQUIRE(dense.ok);
    CHECK(partial.rank == dense.rank);
    CHECK(partial.dim == dense.dim);
    CHECK(partial.negative == dense.negative);
    CHECK(partial.log_volume == doctest::Approx(dense.log_volume).epsilon(1e-9));
    CHECK(partial.certified);
}

// The contract a partial spectrum states, checked value by value against
// dense's eigenvalues of the same stored matrix: sorted, the found values
// padded with n − k zeros pair one to one with dense's, each within
// value_error (a listed value) or rest_bound (an unseen one) — Weyl, whose
// pairing survives the padding since a sorted merge with the same zeros is
// 1-Lipschitz. `slack` is rounding: the partial rows' allowance
// 4·√n·ε·‖H‖_F, dense's own ε·‖H‖, with room.
void check_pairing(const Spectrum& s, const std::vector<double>& dense, double frobenius) {
    REQUIRE(dense.size() == s.n);
    REQUIRE(s.values.size() <= s.n);
    std::vector<double> padded = s.values;
    padded.resize(s.n, 0.0);
    std::sort(padded.begin(), padded.end());
    const double slack = 8 * std::sqrt(double(s.n)) * std::numeric_limits<double>::epsilon() * frobenius;
    const double within = std::max(s.value_error, s.rest_bound) + slack;
    for (std::size_t i = 0; i < s.n; ++i) {
        CAPTURE(i);
        CHECK(std::abs(padded[i] - dense[i]) <= within);
    }
}

// The contract itself, per value: some one-to-one pairing puts every dense
// eigenvalue within value_error of a listed value or within rest_bound of
// zero (an unseen one), with `slack` as above. Points and intervals on a
// line: sweeping the points in order, each takes, among the intervals begun
// at or before it, the one that ends first; no pairing exists if it has
// ended. Weyl's sorted check above cannot see a value_error far under
// rest_bound; this one can.
void check_matching(const Spectrum& s, std::vector<double> dense, double frobenius) {
    REQUIRE(dense.size() == s.n);
    const double slack = 8 * std::sqrt(double(s.n)) * std::numeric_limits<double>::epsilon() * frobenius;
    std::vector<std::pair<double, double>> spans;
    for (double v : s.values) spans.push_back({v - s.value_error - slack, v + s.value_error + slack});
    spans.resize(s.n, {-s.rest_bound - slack, s.rest_bound + slack});
    std::sort(spans.begin(), spans.end());
    std::sort(dense.begin(), dense.end());
    std::priority_queue<double, std::vector<double>, std::greater<double>> open_ends;
    std::size_t next = 0, unpaired = 0;
    for (double x : dense) {
        while (next < spans.size() && spans[next].first <= x) open_ends.push(spans[next++].second);
        while (!open_ends.empty() && open_ends.top() < x) open_ends.pop(), ++unpaired;  // ended unused
        if (open_ends.empty()) {
            ++unpaired;
            continue;
        }
        open_ends.pop();
    }
    CAPTURE(s.value_error);
    CAPTURE(s.rest_bound);
    CHECK(unpaired == 0);
}

// The spectrum as its second pairing (Spectrum::narrower) states it.
Spectrum narrowed(const Spectrum& s) {
    REQUIRE(s.narrower);
    Spectrum t = s;
    t.values = s.narrower->values;
    t.value_error = s.narrower->value_error;
    t.rest_bound = s.narrower->rest_bound;
    t.narrower.reset();
    return t;
}

// The column Cholesky tests' adversarial families, by seed % 4, of rank
// r = 20 + (7·seed mod 40) ≤ n/8 and λmax = 1: 0, values down to `low` with
// the smallest four at 0.3x to 3x of `tol`; 1, values down to `low` with
// one a saddle of `saddle`·(1 + seed mod 3); 2, values down to `wide`; 3,
// values down to `narrow`.
struct Families {
    double low, wide, narrow, saddle;
};

// The smallest four of the (descending) values `e` at 0.3x to 3x of `tol`.
void straddle(std::vector<double>& e, double tol) {
    const double at[] = {0.3, 0.8, 1.2, 3.0};
    for (std::size_t i = 0; i < 4; ++i) e[e.size() - 1 - i] = at[i] * tol;
}

std::vector<double> adversarial(std::size_t n, std::uint32_t seed, double tol, const Families& f) {
    const std::uint32_t family = seed % 4;
    const std::size_t r = 20 + (seed * 7) % 40;
    std::vector<double> e = geometric(r, 1.0, family == 2 ? f.wide : family == 3 ? f.narrow : f.low);
    if (family == 0) straddle(e, tol);
    if (family == 1) e[r / 2] = f.saddle * (1 + seed % 3);
    e.resize(n, 0.0);
    return e;
}

// One adversarial case: the Cholesky row against the dense row of the same
// stored matrix (a saddle must be refused by the certificate, not by the
// diagonal), and whichever branch ran, its spectrum value by value. Returns
// {cholesky row, dense row}.
std::pair<Row, Row> cholesky_against_dense(const Hessian& h, bool saddle) {
    Row c = run(h, Method::cholesky), d = run(h, Method::dense);
    REQUIRE(c.ok);
    REQUIRE(d.ok);
    Hessian dense_copy = h;
    const std::optional<Spectrum> s = cholesky_spectrum(h);
    REQUIRE(s);
    REQUIRE(!s->too_large);  // the rank is under the budget (n/4 columns, 0.75·n factored)
    const std::vector<double> exact = dense_spectrum(dense_copy).values;
    check_pairing(*s, exact, h.frobenius());
    check_matching(*s, exact, h.frobenius());
    if (saddle) {
        CHECK(c.method == "dense");
        CHECK(c.solver_note.find("rest bound") != std::string::npos);
        CHECK(d.negative == 1);
    }
    CHECK(c.dim_low <= d.dim_high);
    CHECK(d.dim_low <= c.dim_high);
    if (c.dim_low == c.dim_high && d.dim_low == d.dim_high) {
        CHECK(c.dim == d.dim);
        CHECK(c.negative == d.negative);
        CHECK(std::abs(c.log_volume - d.log_volume) <=
              c.log_volume_error + d.log_volume_error + 1e-9 * std::abs(d.log_volume));
    }
    return {c, d};
}

// Low rank r of n: spectrum spanning six decades, some of it negative.
std::vector<double> lowrank(std::size_t n, std::size_t r, bool negatives) {
    std::vector<double> e = geometric(r, 1e2, 1e-4);
    if (negatives)
        for (std::size_t i = 0; i < r; i += 5) e[i] = -e[i];
    e.resize(n, 0.0);
    return e;
}
}  // namespace

TEST_CASE("the operator's products and certificate agree with plain Eigen") {
    // Panels are 256 columns: n = 300 needs a product across two panels,
    // 256 is one whole panel, 512 two, 777 four with a short last one.
    for (const Eigen::Index n : {300, 256, 512, 777}) {
        CAPTURE(n);
        const Eigen::MatrixXd m = with_spectrum(lowrank(static_cast<std::size_t>(n), 20, true), 3);
        for (bool f32 : {false, true}) {
            CAPTURE(f32);
            Hessian h = f32 ? make_hessian(Eigen::MatrixXf(m.cast<float>())) : make_hessian(m);
            Eigen::MatrixXd ref = f32 ? Eigen::MatrixXd(m.cast<float>().cast<double>()) : m;
            ref = (ref + ref.transpose()).eval() / 2;
            HessianOperator op(h);
            Eigen::MatrixXd x = Eigen::MatrixXd::Random(n, 7);
            CHECK((op.apply(x) - ref * x).norm() <= 1e-12 * ref.norm() * x.norm());
            Eigen::VectorXd y(n);
            op.perform_op(x.col(0).data(), y.data());
            CHECK((y - ref * x.col(0)).norm() <= 1e-12 * ref.norm() * x.col(0).norm());
            Eigen::MatrixXd v = testing_support::random_orthogonal(n, 9).leftCols(5);
            Eigen::VectorXd theta(5);
            theta << 3, -1, 0.5, 2, 7;
            double expect = (ref - v * theta.asDiagonal() * v.transpose()).norm();
            CHECK(op.residual_frobenius(v, theta) == doctest::Approx(expect).epsilon(1e-12));
            // The fused form: the certificate for A·Bᵀ and E·Q, E = H − A·Bᵀ,
            // in the same pass, E·Q assembled from the lower trapezoids of the
            // panels in single precision, within its stated bound, which is
            // itself tight: under 2·(γ_n + 2u) of ‖E‖_F·‖Q‖_F in float.
            Eigen::MatrixXd a = Eigen::MatrixXd::Random(n, 4), q = Eigen::MatrixXd::Random(n, 6);
            const Eigen::MatrixXd e = ref - a * a.transpose();
            HessianOperator::Residual res = op.residual_product(a, a, q);
            CHECK(res.frobenius == doctest::Approx(e.norm()).epsilon(1e-12));
            CHECK((res.EQ - e * q).norm() <= res.eq_error);
            CHECK(res.eq_error <= 2 * double(n + 2) * 0x1p-24 * e.norm() * q.norm());
            CHECK((res.EQ - e * q).norm() > 1e-12 * e.norm() * q.norm());  // it is single precision
            // No factor: the certificate is ‖H‖_F, and E·Q = H·Q.
            res = op.residual_product(Eigen::MatrixXd(n, 0), Eigen::MatrixXd(n, 0), q);
            CHECK(res.frobenius == doctest::Approx(ref.norm()).epsilon(1e-12));
            CHECK((res.EQ - ref * q).norm() <= res.eq_error);
        }
    }
}

TEST_CASE("the single-precision product keeps its bound across float's range") {
    // Entries near 1e±200 (float64 storage) and 1e±30 (float32) would over-
    // or underflow float unscaled; scaled by a power of two they keep their
    // digits, and the bound holds in the matrix's own units (norms taken
    // without overflow: stableNorm).
    const Eigen::MatrixXd m = with_spectrum(lowrank(200, 15, true), 4);
    const Eigen::MatrixXd a = Eigen::MatrixXd::Random(200, 3), q = Eigen::MatrixXd::Random(200, 5);
    for (double scale : {1e-200, 1e-30, 1e30, 1e200}) {
        for (bool f32 : {false, true}) {
            if (f32 && std::abs(std::log10(scale)) > 35) continue;  // not a float32 matrix
            CAPTURE(scale);
            CAPTURE(f32);
            const Eigen::MatrixXd ms = m * scale;
            Hessian h = f32 ? make_hessian(Eigen::MatrixXf(ms.cast<float>())) : make_hessian(ms);
            Eigen::MatrixXd ref = f32 ? Eigen::MatrixXd(ms.cast<float>().cast<double>()) : ms;
            ref = (ref + ref.transpose()).eval() / 2;
            const Eigen::MatrixXd as = a * std::sqrt(scale), e = ref - as * as.transpose();
            const HessianOperator::Residual res = HessianOperator(h).residual_product(as, as, q);
            CHECK(res.frobenius == doctest::Approx(e.stableNorm()).epsilon(1e-12));
            CHECK((res.EQ - e * q).stableNorm() <= res.eq_error);
            CHECK(res.eq_error <= 2 * 202 * 0x1p-24 * e.stableNorm() * q.stableNorm());
        }
    }
}

TEST_CASE("the single-precision product's bound holds where rounding errors all lean one way") {
    // All-positive E and Q: every product and partial sum rounds with the
    // same sign pattern, the case where the error grows fastest with k.
    for (bool f32 : {false, true}) {
        const Eigen::MatrixXd m = (Eigen::MatrixXd::Random(400, 400).array() + 1.0).matrix() / 3;
        const Eigen::MatrixXd sym = (m + m.transpose()) / 2;
        Hessian h = f32 ? make_hessian(Eigen::MatrixXf(sym.cast<float>())) : make_hessian(sym);
        const Eigen::MatrixXd ref = f32 ? Eigen::MatrixXd(sym.cast<float>().cast<double>()) : sym;
        const Eigen::MatrixXd q = (Eigen::MatrixXd::Random(400, 8).array() + 1.0).matrix();
        const HessianOperator::Residual res =
            HessianOperator(h).residual_product(Eigen::MatrixXd(400, 0), Eigen::MatrixXd(400, 0), q);
        CHECK((res.EQ - ref * q).norm() <= res.eq_error);
        CHECK((res.EQ - ref * q).norm() > 0);
    }
}

TEST_CASE("the factored Cholesky's single-precision correction: Q₂ᵀSQ₂ within its bound, the rest untouched") {
    std::uint64_t seed = 40;
    constexpr int w = detail::correction_width;  // one block, exactly one, one column more, three blocks
    for (int r : {1, 7, w - 1, w, w + 1, 2 * w + 1}) {
        for (int m : {1, 7, 9, 150}) {
            for (double scale : {1e-200, 1e-30, 1.0, 1e30, 1e200}) {
                CAPTURE(r);
                CAPTURE(m);
                CAPTURE(scale);
                const int n = r + m;
                // A as the factored form leaves it: Q₂ = A(r:, 0:r), rows of r
                // orthonormal columns (‖Q₂‖₂ ≤ 1), S in the trailing lower triangle.
                const Eigen::MatrixXd o = testing_support::random_orthogonal(n, ++seed);
                const Eigen::MatrixXd q2 = o.block(r, 0, m, r);
                Eigen::MatrixXd s = Eigen::MatrixXd::Random(m, m) * scale;
                s = (s + s.transpose()).eval() / 2;
                Eigen::MatrixXd a = Eigen::MatrixXd::Random(n, n);
                a.block(r, 0, m, r) = q2;
                a.block(r, r, m, m).triangularView<Eigen::Lower>() = s;
                a.block(0, 1, r, r).setZero();  // V: what is added is all it holds
                const Eigen::MatrixXd before = a;
                const double bound = detail::add_correction(a.data(), n, r, s.stableNorm());
                const Eigen::MatrixXd exact = q2.transpose() * s * q2;
                Eigen::MatrixXd added = a.block(0, 1, r, r).triangularView<Eigen::Upper>();
                added += added.triangularView<Eigen::StrictlyUpper>().transpose();
                CHECK((added - exact).stableNorm() <= bound);
                CHECK(bound <= 4 * (m + 3) * 0x1p-24 * std::sqrt(double(r)) * s.stableNorm());
                // Nothing else of A moves: L₁'s first column, the block right of
                // V, and the trailing block's strict upper triangle.
                CHECK(a.block(0, 0, r, 1) == before.block(0, 0, r, 1));
                CHECK(a.block(0, r + 1, r, m - 1) == before.block(0, r + 1, r, m - 1));
                const Eigen::MatrixXd upper_after = a.block(r, r, m, m).triangularView<Eigen::StrictlyUpper>();
                const Eigen::MatrixXd upper_before = before.block(r, r, m, m).triangularView<Eigen::StrictlyUpper>();
                CHECK(upper_after == upper_before);
            }
        }
    }
}

TEST_CASE("sketch and Lanczos match dense on low-rank float64 Hessians, negatives included" * doctest::test_suite("large")) {
    // With and without a stated input error (autograd's, say) over the
    // solver's floor. Without one, the floor 8·√n·ε·‖H‖_F is twice the
    // partial rows' rounding allowance, and the band looks under it by the
    // twins' reach (16·ε·‖H‖_F here, 0.07 of the floor): the rest bounds,
    // at 0.2–0.3 of the floor, must clear floor − reach − allowance.
    for (bool stated : {true, false}) {
        for (bool neg : {false, true}) {
            CAPTURE(stated);
            CAPTURE(neg);
            Hessian h = make_hessian(with_spectrum(lowrank(800, 60, neg), neg ? 5u : 6u));
            auto run_with = [&](Method m) {
                AnalyzeOptions opt;
                opt.method = m;
                if (stated) opt.hessian_error = 1e-10;  // 1e-12 of ‖H‖, under every curved value
                return analyze_hessian(h, opt);
            };
            Row d = run_with(Method::dense);
            Row s = run_with(Method::sketch);
            Row l = run_with(Method::lanczos);
            Row a = run_with(Method::automatic);
            Row c = run_with(Method::cholesky);
            CAPTURE(s.solver_note);
            CAPTURE(l.solver_note);
            CHECK(s.method == "sketch");
            CHECK(l.method == "lanczos");
            // Pivoted Cholesky certifies a PSD matrix; on a saddle its certificate
            // fails and auto moves on to the sketch, saying why.
            CHECK(a.method == (neg ? "sketch" : "cholesky"));
            CHECK(c.method == (neg ? "dense" : "cholesky"));
            if (neg) CHECK(a.solver_note.find("cholesky") == 0);
            check_same(s, d);
            check_same(l, d);
            check_same(a, d);
            check_same(c, d);
            CHECK(d.dim_low == d.dim_high);
            CHECK(s.residual_bound <= s.tol);
            CHECK(d.rank == 60);
        }
    }
}

TEST_CASE("the sketch's values against dense, value by value: saddles, values at the cut, clusters, float32" * doctest::test_suite("large")) {
    // Each listed value within value_error of a dense eigenvalue, the rest
    // within rest_bound of zero, under one pairing (check_matching), and so
    // under the second pairing where there is one (float32 storage). Families
    // by seed % 4: geometric values 1..1e-4 with every fifth
    // negative; values straddling the dtype tol; a cluster of ten at 1e-3
    // within 1e-9 of each other; float32 storage of the first family. n =
    // 600, rank 20..59 (the sketch's budget is n/4).
    const std::size_t n = 600;
    for (std::uint32_t seed = 1; seed <= 12; ++seed) {
        CAPTURE(seed);
        const std::uint32_t family = seed % 4;
        const std::size_t r = 20 + (seed * 7) % 40;
        std::vector<double> e = geometric(r, 1.0, 1e-4);
        if (family != 1)
            for (std::size_t i = 0; i < r; i += 5) e[i] = -e[i];
        if (family == 1) straddle(e, n * std::numeric_limits<double>::epsilon());
        if (family == 2)
            for (std::size_t i = 0; i < 10; ++i) e[r / 2 + i] = 1e-3 * (1 + 1e-9 * double(i));
        e.resize(n, 0.0);
        const Eigen::MatrixXd m = with_spectrum(e, 400 + seed);
        const Hessian h = family == 3 ? make_hessian(Eigen::MatrixXf(m.cast<float>())) : make_hessian(m);
        const std::optional<Spectrum> s = sketch_spectrum(h);
        REQUIRE(s);
        REQUIRE(!s->too_large);
        Hessian dense_copy = h;
        const std::vector<double> exact = dense_spectrum(dense_copy).values;
        check_matching(*s, exact, h.frobenius());
        if (s->narrower) check_matching(narrowed(*s), exact, h.frobenius());
        if (family == 3) CHECK(s->narrower);
    }
}

TEST_CASE("the sketch's and Lanczos' second pairing against dense: noise-level Ritz values, values near the split, saddles") {
    // Low rank r of n = 600 with every fifth value negative, stored as
    // float32 (whose rounding leaves the oversampling's Ritz values near
    // ρ ≈ 5e-8) or float64 (ρ at its rounding, ν = 2e-14). Families by
    // seed % 3: values 1..1e-3; the smallest three at 6ν, 12ν and 30ν,
    // where the split's δ nears its limit ρ/8 or the split must leave them
    // out; a cluster of ten at 1e-2 within 1e-9 of each other.
    // Each pairing the solver states must hold against dense's eigenvalues
    // of the same stored matrix (check_matching), the second one with
    // value errors at least 1000 times under Weyl's ρ where it lists every
    // signal value; and the row must be dense's, within the two error bars.
    const std::size_t n = 600;
    int narrow_rows = 0;
    for (std::uint32_t seed = 1; seed <= 9; ++seed) {
        CAPTURE(seed);
        const std::uint32_t family = seed % 3;
        const bool single = seed % 2 == 0;
        const std::size_t r = 20 + (seed * 7) % 40;
        const double nu = single ? 5e-8 : 2e-14;  // about where ρ falls
        std::vector<double> e = geometric(r, 1.0, 1e-3);
        if (family == 1) e[r - 3] = 30 * nu, e[r - 2] = 12 * nu, e[r - 1] = 6 * nu;
        if (family == 2)
            for (std::size_t i = 0; i < 10; ++i) e[r / 2 + i] = 1e-2 * (1 + 1e-9 * double(i));
        for (std::size_t i = 0; i < r; i += 5) e[i] = -e[i];
        e.resize(n, 0.0);
        const Eigen::MatrixXd m = with_spectrum(e, 700 + seed);
        const Hessian h = single ? make_hessian(Eigen::MatrixXf(m.cast<float>())) : make_hessian(m);
        Hessian dense_copy = h;
        const std::vector<double> exact = dense_spectrum(dense_copy).values;
        for (Method method : {Method::sketch, Method::lanczos}) {
            CAPTURE(method_name(method));
            const std::optional<Spectrum> s = method == Method::sketch ? sketch_spectrum(h) : lanczos_spectrum(h);
            REQUIRE(s);
            REQUIRE(!s->too_large);
            check_matching(*s, exact, h.frobenius());
            if (!s->narrower) continue;
            const Spectrum t = narrowed(*s);
            check_matching(t, exact, h.frobenius());
            CHECK(t.value_error <= s->rest_bound / 8);
            const std::size_t listed_signal = family == 1 ? r - 3 : r;  // 6ν..30ν may sit on either side
            CHECK(t.values.size() >= listed_signal);
            CHECK(t.values.size() <= r);
            if (t.values.size() == r && family != 1) CHECK(t.value_error <= 1e-3 * s->rest_bound);
            const Row p = run(h, method), d = run(h, Method::dense);
            REQUIRE(p.ok);
            REQUIRE(d.ok);
            CAPTURE(p.solver_note);
            if (p.method != "dense" && p.certified && d.dim_low == d.dim_high) {
                CHECK(p.rank == d.rank);
                CHECK(p.negative == d.negative);
                CHECK(std::abs(p.log_volume - d.log_volume) <= p.log_volume_error + d.log_volume_error);
                if (p.residual_bound == t.rest_bound) narrow_rows += single ? 1 : 100;
            }
        }
    }
    // The second pairing decides every float32 row (4 seeds, 2 methods); a
    // float64 one's ρ is its rounding, where Weyl's is as good.
    CHECK(narrow_rows == 8);
}

TEST_CASE("float64 column Cholesky: eig(LLᵀ) when the certificate is at rounding, Ritz values when it is above") {
    // Rank 40 of n = 800 on 40 random coordinates (a large diagonal, so the
    // pivots' stop, 4·ε·√n·max diag, sits near ε·√n·‖H‖), plus c·I: c = 0
    // leaves ρ at rounding and the values of LLᵀ are listed (one pass); c =
    // 6·ε·‖H‖, under the stop, leaves ρ ≈ c·√760 ≈ 165·ε·‖H‖, above the
    // rounding ε·√n·‖H‖_F and under the dtype tol n·ε·‖H‖: H·Q is formed for
    // the Ritz values (a second pass).
    const Eigen::Index n = 800, r = 40;
    const Eigen::MatrixXd b = with_spectrum(geometric(r, 10, 0.1), 31);
    std::vector<Eigen::Index> at(static_cast<std::size_t>(n));
    for (Eigen::Index i = 0; i < n; ++i) at[static_cast<std::size_t>(i)] = (i * 389) % n;  // 389 is prime to 800
    Eigen::MatrixXd m = Eigen::MatrixXd::Zero(n, n);
    for (Eigen::Index i = 0; i < r; ++i)
        for (Eigen::Index j = 0; j < r; ++j) m(at[std::size_t(i)], at[std::size_t(j)]) = b(i, j);
    const double eps = std::numeric_limits<double>::epsilon();
    for (double c : {0.0, 6 * eps * 10}) {
        CAPTURE(c);
        Hessian h = make_hessian(Eigen::MatrixXd(m + c * Eigen::MatrixXd::Identity(n, n)));
        Hessian dense_copy = h;
        const Spectrum d = dense_spectrum(dense_copy);
        const std::optional<Spectrum> s = cholesky_spectrum(h);
        REQUIRE(s);
        REQUIRE(s->values.size() == std::size_t(r));
        const bool ritz = c > 0;
        CHECK(s->stats.passes == (ritz ? 2u : 1u));
        CHECK((s->rest_bound > eps * std::sqrt(double(n)) * h.frobenius()) == ritz);
        CHECK(s->rest_bound < n * eps * d.values.back());  // under the dtype tol: the certificate decides
        CHECK(s->value_error == doctest::Approx((ritz ? 2 : 1) * s->rest_bound));
        // The listed values against dense's largest, within the error a row
        // states (analyze.cpp: value_error, the rounding allowance every
        // partial row carries, 4·√n·ε·‖H‖_F, and dense's own ε·‖H‖_F; at
        // c = 0 the certificate is itself rounding and the allowance carries
        // the pairing) and to 1e-9 relative; the others within rest_bound of
        // zero.
        const double stated = s->value_error + (4 * std::sqrt(double(n)) + 1) * eps * h.frobenius();
        for (Eigen::Index i = 0; i < r; ++i) {
            const double listed = s->values[std::size_t(r - 1 - i)], exact = d.values[std::size_t(n - 1 - i)];
            CHECK(std::abs(listed - exact) <= stated);
            CHECK(listed == doctest::Approx(exact).epsilon(1e-9));
        }
        for (Eigen::Index i = 0; i < n - r; ++i) CHECK(std::abs(d.values[std::size_t(i)]) <= s->rest_bound);
        check_same(run(h, Method::cholesky), run(h, Method::dense));
    }
}

TEST_CASE("float64 column Cholesky against dense on adversarial families: values at the cut, hidden saddles, wide ranges") {
    // Low rank r of n = 500 (λmax = 1) under auto's cut, four families: the
    // smallest values straddling the dtype tol n·ε (0.3x to 3x of it); a
    // saddle of −1e-6 hidden among positive values (well above rounding:
    // Weyl puts the certificate at ≥ 1e-6, so it must refuse); values over
    // 11 decades, the smallest 100x the tol (eig(LLᵀ) would carry relative
    // error ρ/λ there, so the Ritz values are formed); values within a factor
    // 20, where eig(LLᵀ) is listed. Whatever branch the
    // solver takes (eig(LLᵀ), Ritz values, or the row given to dense), its
    // answer must be dense's: the same dim and negatives, the log-volumes
    // within the two error bars when both are decided, overlapping bands
    // when the cut is ambiguous.
    const std::size_t n = 500;
    const double tol = n * std::numeric_limits<double>::epsilon();
    int shortcut = 0, saddles = 0;
    for (std::uint32_t seed = 1; seed <= 24; ++seed) {
        CAPTURE(seed);
        const std::uint32_t family = seed % 4;
        const std::vector<double> e = adversarial(n, seed, tol, {1e-6, 1e-11, 0.05, -1e-6});
        const Hessian h = make_hessian(with_spectrum(e, 100 + seed));
        const auto [c, d] = cholesky_against_dense(h, family == 1);
        if (c.method == "cholesky" && c.stats && c.stats->passes == 1) ++shortcut;
        if (family == 2) CHECK(!(c.method == "cholesky" && c.stats && c.stats->passes == 1));  // blurred by ρ
        if (family == 1) ++saddles;
        // What users compare; not for values at 1e-11 of the largest, which
        // no backward-stable solver, dense included, gets to 1e-9.
        if (family != 2 && c.dim_low == c.dim_high && d.dim_low == d.dim_high)
            CHECK(c.log_volume == doctest::Approx(d.log_volume).epsilon(1e-9));
    }
    CHECK(saddles == 6);
    CHECK(shortcut >= 6);  // the eig(LLᵀ) branch was among those exercised
}

TEST_CASE("float32 column Cholesky against dense on adversarial families: values at the cut, hidden saddles, wide ranges") {
    // The certificate pass over float32 panels (lower trapezoids widened,
    // H·Q by symmetry) on four families of rank r ≤ n/8 of n = 500, stored
    // as float32 (dtype tol n·ε₃₂ ≈ 6e-5, λmax = 1): the smallest values
    // straddling the tol; a saddle of −1e-3 hidden among positive values
    // (the certificate must refuse it); values over 7 decades, running far
    // under the tol into the stored rounding; values within a factor 100.
    // The answer must be dense's on the same stored values.
    const std::size_t n = 500;
    const double tol = n * double(std::numeric_limits<float>::epsilon());
    int cholesky = 0;
    for (std::uint32_t seed = 1; seed <= 24; ++seed) {
        CAPTURE(seed);
        const std::vector<double> e = adversarial(n, seed, tol, {1e-2, 1e-7, 0.01, -1e-3});
        const Hessian h = make_hessian(Eigen::MatrixXf(with_spectrum(e, 200 + seed).cast<float>()));
        if (cholesky_against_dense(h, seed % 4 == 1).first.method == "cholesky") ++cholesky;
    }
    CHECK(cholesky >= 6);  // the float32 certificate pass decided rows itself
}

TEST_CASE("property: under an explicit cut below the floor every solver's band is dense's, from dim 0") {
    // The adversarial families (values straddling the floor, hidden saddles,
    // wide and narrow ranges), float64 and float32, under --atol at 0.3 and
    // 0.9 of dense's noise floor: noise may lift every value over such a
    // cut, so each row's band starts at 0 and holds the other's dim, flags
    // included; a row whose band is a single dim has dense's dim and a
    // log-volume within the two error bars.
    const std::size_t n = 500;
    int nontrivial = 0;
    for (const bool f32 : {false, true}) {
        const double eps = f32 ? double(std::numeric_limits<float>::epsilon()) : std::numeric_limits<double>::epsilon();
        for (std::uint32_t seed = 1; seed <= 12; ++seed) {
            const std::vector<double> e =
                adversarial(n, seed, n * eps, f32 ? Families{1e-2, 1e-7, 0.01, -1e-3} : Families{1e-6, 1e-11, 0.05, -1e-6});
            const Eigen::MatrixXd m = with_spectrum(e, 300 + seed);
            const Hessian h = f32 ? make_hessian(Eigen::MatrixXf(m.cast<float>())) : make_hessian(m);
            const double floor = run(h, Method::dense).noise_floor;
            for (const double share : {0.3, 0.9}) {
                AnalyzeOptions opt;
                opt.cut.atol = share * floor;
                opt.method = Method::dense;
                const Row d = analyze_hessian(h, opt);
                REQUIRE(d.ok);
                REQUIRE(d.warnings.has(Warning::cut_below_floor));
                CHECK(d.dim_low == 0);
                nontrivial += d.dim_high > 0;
                CHECK(d.warnings.has(Warning::ambiguous_rank) == (d.dim_high > 0));
                for (const Method method : {Method::cholesky, Method::sketch, Method::lanczos, Method::automatic}) {
                    CAPTURE(f32);
                    CAPTURE(seed);
                    CAPTURE(share);
                    CAPTURE(name_of(method_names(), method));
                    opt.method = method;
                    const Row p = analyze_hessian(h, opt);
                    REQUIRE(p.ok);
                    CHECK(p.warnings.has(Warning::cut_below_floor));
                    CHECK(p.dim_low == 0);
                    CHECK(p.dim <= d.dim_high);
                    CHECK(d.dim <= p.dim_high);
                    CHECK(p.warnings.has(Warning::ambiguous_rank) == (p.dim_high > 0));
                    if (p.dim_high == 0 && d.dim_high == 0) {
                        CHECK(p.dim == d.dim);
                        CHECK(p.negative == d.negative);
                        CHECK(std::abs(p.log_volume - d.log_volume) <=
                              p.log_volume_error + d.log_volume_error + 1e-9 * std::abs(d.log_volume));
                    }
                }
            }
        }
    }
    CHECK(nontrivial > 0);  // the families do put values under such a cut
}

TEST_CASE("sketch and Cholesky match dense on a float32-stored low-rank Hessian") {
    std::vector<double> e = geometric(50, 10, 0.1);
    e.resize(700, 0.0);
    Hessian h = make_hessian(Eigen::MatrixXf(with_spectrum(e, 8).cast<float>()));
    Row d = run(h, Method::dense), s = run(h, Method::sketch), c = run(h, Method::cholesky);
    CHECK(s.method == "sketch");
    CHECK(c.method == "cholesky");
    check_same(s, d);
    check_same(c, d);
}

TEST_CASE("float32 with eigenvalues near the noise floor: dense's row, ties and band included") {
    // Eigenvalues of 1e-4 sit a few ε32·‖H‖_F above the rounding noise of the
    // stored matrix (ε32·‖H‖_F ≈ 2e-5 here), in a continuum with no clear
    // gap: dense flags the rank and its band holds the dims of the gaps
    // tied near the floor, among them gaps to the noise values, which the
    // sketch bounds by its rest bound (1e-5) without seeing them. Their
    // noise may reach log10 2 there, so the sketch's bounds cannot decide
    // the ties, and dense finishes, saying why.
    Hessian h = make_hessian(Eigen::MatrixXf(with_spectrum(lowrank(700, 50, false), 8).cast<float>()));
    Row s = run(h, Method::sketch), d = run(h, Method::dense);
    REQUIRE(s.ok);
    CHECK(d.warnings.has(Warning::ambiguous_rank));
    CHECK(d.dim_low < d.dim_high);
    check_same(s, d);
    CHECK(s.dim_low == d.dim_low);
    CHECK(s.dim_high == d.dim_high);
    CHECK(s.method == "dense");
    CHECK(s.solver_note.find("sketch: the cut is not decided by the partial spectrum") != std::string::npos);
}

TEST_CASE("a full-rank Hessian goes dense under auto and says why") {
    Hessian h = make_hessian(with_spectrum(geometric(600, 5.0, 0.5), 10));
    Row a = run(h, Method::automatic);
    REQUIRE(a.ok);
    CHECK(a.method == "dense");
    CHECK(a.rank == 600);
    CHECK_FALSE(a.solver_note.empty());
}

TEST_CASE("Lanczos on Krylov spaces that close early: certified only with an orthonormal basis, else dense") {
    // The all-ones matrix (one curved direction), a sum of two such blocks,
    // and a scaled identity block: Spectra's basis can break down; a row
    // is then dense's, saying why, never a certificate on a broken basis.
    const Eigen::Index n = 600;
    std::vector<Eigen::MatrixXd> cases;
    cases.push_back(Eigen::MatrixXd::Ones(n, n));
    Eigen::MatrixXd two = Eigen::MatrixXd::Zero(n, n);
    two.topLeftCorner(300, 300).setOnes();
    two.bottomRightCorner(300, 300).setConstant(2.0);
    cases.push_back(two);
    Eigen::MatrixXd eye = Eigen::MatrixXd::Zero(n, n);
    eye.topLeftCorner(40, 40).setIdentity();
    cases.push_back(3.0 * eye);
    for (std::size_t i = 0; i < cases.size(); ++i) {
        CAPTURE(i);
        Hessian h = make_hessian(cases[i]);
        Row d = run(h, Method::dense);
        Row l = run(h, Method::lanczos);
        check_same(l, d);
        if (l.method == "lanczos") {
            CHECK(l.residual_bound <= l.tol);
        } else {
            CHECK(l.method == "dense");
            CHECK(l.solver_note.find("lanczos") == 0);
        }
    }
    // The all-ones matrix breaks Spectra's basis: the note names that.
    Row ones = run(make_hessian(cases[0]), Method::lanczos);
    CHECK(ones.solver_note.find("lanczos: failed (Spectra's Lanczos basis broke down") == 0);
}

TEST_CASE("an uncertifiable partial spectrum is finished densely") {
    // Rank 400 of 600 cannot fit n/4 Ritz pairs: the sketch must not pretend.
    Hessian h = make_hessian(with_spectrum(lowrank(600, 400, true), 12));
    Row s = run(h, Method::sketch);
    Row d = run(h, Method::dense);
    REQUIRE(s.ok);
    CHECK(s.method == "dense");
    CHECK(s.rank == d.rank);
    CHECK(s.log_volume == doctest::Approx(d.log_volume).epsilon(1e-12));
}

namespace {
// A float32-stored Hessian with the given spectrum (rank share high enough for
// the factored Cholesky form: likely rank > n/8).
Hessian float32_hessian(const std::vector<double>& e, std::uint32_t seed) {
    return make_hessian(Eigen::MatrixXf(with_spectrum(e, seed).cast<float>()));
}
}  // namespace

TEST_CASE("factored Cholesky: ranks n/2 to 0.73·n of a float32 Hessian match dense and are certified") {
    for (std::size_t rank : {300u, 440u}) {
        CAPTURE(rank);
        std::vector<double> e = geometric(rank, 10, 0.05);
        e.resize(600, 0.0);
        Hessian h = float32_hessian(e, 21);
        Row d = run(h, Method::dense), a = run(h, Method::automatic), c = run(h, Method::cholesky);
        CHECK(a.method == "cholesky");
        CHECK(a.solver_note.empty());
        check_same(a, d);
        check_same(c, d);
        CHECK(a.rank == rank);
        CHECK(a.residual_bound <= a.tol);
        CHECK(a.residual_bound > 0);
    }
}

TEST_CASE("factored Cholesky: Ritz values match dense, the rest lie within the certificate, H is untouched") {
    std::vector<double> e = geometric(250, 4, 0.02);
    e.resize(560, 0.0);
    const Eigen::MatrixXd m = with_spectrum(e, 22);
    // Float32 storage, and float64 storage of the same float values declared
    // float32-precise: both ways of reading the stored values.
    for (bool f32 : {true, false}) {
        CAPTURE(f32);
        Hessian h = f32 ? make_hessian(Eigen::MatrixXf(m.cast<float>()))
                        : make_hessian(Eigen::MatrixXd(m.cast<float>().cast<double>()));
        h.info.stored_eps = std::numeric_limits<float>::epsilon();
        const Hessian before = h;
        Hessian dense_copy = h;
        const Spectrum d = dense_spectrum(dense_copy);
        const std::optional<Spectrum> s = cholesky_spectrum(h);
        REQUIRE(s);
        CHECK(s->method == "cholesky");
        CHECK(s->stats.matvecs == 0);  // factored: no operator products, one pass
        REQUIRE(s->values.size() >= 250);
        const std::size_t r = s->values.size();
        // The r Ritz values against the r largest-magnitude dense eigenvalues.
        std::vector<double> by_size = d.values, ritz = s->values;
        auto magnitude_desc = [](double x, double y) { return std::abs(x) > std::abs(y); };
        std::sort(by_size.begin(), by_size.end(), magnitude_desc);
        std::sort(ritz.begin(), ritz.end(), magnitude_desc);
        for (std::size_t i = 0; i < 250; ++i) CHECK(ritz[i] == doctest::Approx(by_size[i]).epsilon(1e-9));
        // Weyl: the n − r others lie within rest_bound of zero.
        for (std::size_t i = r; i < by_size.size(); ++i) CHECK(std::abs(by_size[i]) <= s->rest_bound);
        CHECK(s->rest_bound < 1e-3 * std::abs(by_size[249]));
        // The solver reads h and never writes it.
        CHECK(h.is_f32() == f32);
        if (f32) CHECK((h.f32().array() == before.f32().array()).all());
        else CHECK((h.f64().array() == before.f64().array()).all());
    }
}

TEST_CASE("factored Cholesky against dense on adversarial families: values at the cut, hidden saddles, wide ranges") {
    // Rank r from n/4 to 0.41·n of n = 400, stored as float32 (dtype tol
    // n·ε₃₂ ≈ 5e-5, λmax = 1), so that the likely rank (the Marchenko–Pastur
    // estimate from trace²/‖H‖_F²) is past n/8 and under the 0.75·n budget:
    // the factored form runs, with its correction Q₂ᵀSQ₂ in single precision.
    // Four families: the smallest four values straddling the tol (0.3x to 3x
    // of it); a saddle of −1e-3 hidden among positive values (the
    // certificate must refuse it); a tail of 40 values running down to 1e-7,
    // far under the tol into the stored rounding; values within a factor 2.
    // The answer must be dense's on the same stored values, value by value.
    const std::size_t n = 400;
    const double tol = n * double(std::numeric_limits<float>::epsilon());
    int decided = 0;
    for (std::uint32_t seed = 1; seed <= 16; ++seed) {
        CAPTURE(seed);
        const std::uint32_t family = seed % 4;
        const std::size_t r = n / 4 + (seed * 13) % (n / 6);
        std::vector<double> e = geometric(r, 1.0, family == 3 ? 0.5 : 0.1);
        if (family == 0) straddle(e, tol);
        if (family == 1) e[r / 2] = -1e-3 * (1 + seed % 3);
        if (family == 2) {
            const std::vector<double> tail = geometric(40, 0.05, 1e-7);
            std::copy(tail.begin(), tail.end(), e.end() - 40);
        }
        e.resize(n, 0.0);
        const Hessian h = make_hessian(Eigen::MatrixXf(with_spectrum(e, 300 + seed).cast<float>()));
        // Every value the factored spectrum states is checked against dense
        // (cholesky_against_dense), decided or not; it formed no product with
        // H, which only the factored form does not.
        const std::optional<Spectrum> s = cholesky_spectrum(h);
        CHECK((s && s->stats.matvecs == 0));
        const auto [c, d] = cholesky_against_dense(h, family == 1);
        if (c.method == "cholesky") ++decided;
        if (family == 3) CHECK(c.method == "cholesky");
        if (family != 1 && c.method == "cholesky" && c.dim_low == c.dim_high && d.dim_low == d.dim_high)
            CHECK(c.log_volume == doctest::Approx(d.log_volume).epsilon(1e-9));
    }
    // The narrow family is decided by the factored form; values within its
    // error bars of the cut (families 0 and 2) leave the row to dense.
    CHECK(decided >= 4);
}

TEST_CASE("factored Cholesky: past 0.75·n pivots auto goes dense and says why") {
    std::vector<double> e = geometric(480, 10, 0.1);
    e.resize(600, 0.0);
    Hessian h = float32_hessian(e, 23);
    Row d = run(h, Method::dense), a = run(h, Method::automatic);
    REQUIRE(a.ok);
    CHECK(a.method == "dense");
    CHECK(a.solver_note.find("cholesky: rank above 450") == 0);
    CHECK(a.rank == d.rank);
    CHECK(a.log_volume == d.log_volume);
}

TEST_CASE("a rank only estimated past the budget is said to be an estimate") {
    // Rank 500 of 1000, values 1 down to 0.5: trace²/‖H‖_F² and the
    // Marchenko–Pastur spectrum of that ratio put the rank past 0.75·n, so
    // auto skips the factorization; the note must not state it as a count.
    std::vector<double> e(1000, 0.0);
    for (std::size_t i = 0; i < 500; ++i) e[i] = 1.0 - 0.5 * double(i) / 499.0;
    Hessian h = float32_hessian(e, 51);
    Row d = run(h, Method::dense), a = run(h, Method::automatic);
    REQUIRE(a.ok);
    CHECK(d.rank == 500);
    CHECK(a.method == "dense");
    CHECK(a.solver_note.find("cholesky: rank likely above 750 by its trace and ‖H‖_F (cheaper densely)") == 0);
    CHECK(a.rank == d.rank);
}

TEST_CASE("factored Cholesky on a saddle with a non-negative diagonal: the certificate refuses it") {
    std::vector<double> e = geometric(300, 10, 0.05);
    for (std::size_t i = 0; i < 300; i += 7) e[i] = -e[i];
    e.resize(600, 0.0);
    Hessian h = float32_hessian(e, 24);
    REQUIRE(Eigen::VectorXf(h.f32().diagonal()).minCoeff() >= 0);
    Row d = run(h, Method::dense), c = run(h, Method::cholesky), a = run(h, Method::automatic);
    CHECK(c.method == "dense");
    CHECK(c.solver_note.find("cholesky: rest bound") == 0);
    CHECK(a.method == "dense");
    CHECK(d.negative > 0);
    for (const Row* x : {&c, &a}) {
        REQUIRE(x->ok);
        CHECK(x->rank == d.rank);
        CHECK(x->negative == d.negative);
        CHECK(x->log_volume == doctest::Approx(d.log_volume).epsilon(1e-12));
    }
}
