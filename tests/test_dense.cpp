// The dense solve's two reductions to tridiagonal form (src/solve/dense.cpp):
// dsyevd's one stage and the two stages one BLAS thread runs faster from
// some n, each held to LAPACK's bound on the same stored matrix.
#include "support.hpp"
#include "../src/solve/blas.hpp"
#include "../src/solve/detail.hpp"

#include <basinvol/solve/rounding.hpp>
#include <basinvol/solve/spectrum.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <limits>
#include <thread>
#include <vector>

using namespace basinvol;
using testing_support::with_spectrum;

namespace {

using detail::Reduction;

// Three families: low rank over six decades, both signs with zeros, a
// cluster of ones over a tail of 1e-15.
std::vector<double> family(int kind, int n) {
    std::vector<double> e(static_cast<std::size_t>(n), 0.0);
    const int k = std::max(1, n / 2);
    for (int i = 0; i < k; ++i) {
        const double t = k == 1 ? 0.0 : double(i) / double(k - 1);
        if (kind == 0) e[i] = std::pow(10.0, -6 * t);
        else if (kind == 1) e[i] = (i % 3 == 0 ? -1 : 1) * (0.1 + t);
        else e[i] = 1;
    }
    if (kind == 2)
        for (int i = k; i < n; ++i) e[i] = 1e-15 * std::sin(double(i));
    std::sort(e.begin(), e.end());
    return e;
}

std::vector<double> solve(Eigen::MatrixXd a, char uplo, Reduction how, int lda = 0) {
    const int n = static_cast<int>(a.rows());
    if (lda > n) {  // the matrix inside a taller array, as a Ritz matrix is
        Eigen::MatrixXd tall = Eigen::MatrixXd::Constant(lda, n, 7.0);
        tall.topRows(n) = a;
        return detail::symmetric_eigenvalues(tall.data(), n, lda, uplo, how);
    }
    return detail::symmetric_eigenvalues(a.data(), n, n, uplo, how);
}

double largest_difference(const std::vector<double>& x, const std::vector<double>& y) {
    REQUIRE(x.size() == y.size());
    double d = 0;
    for (std::size_t i = 0; i < x.size(); ++i) d = std::max(d, std::abs(x[i] - y[i]));
    return d;
}

}  // namespace

TEST_CASE("both reductions find each spectrum within LAPACK's bound, on one BLAS thread and on two") {
    // Each is within solve_resolution of the stored matrix's eigenvalues,
    // so of each other within twice that, and of the spectrum the matrix was
    // built from within that plus the building's rounding (a few ε·‖H‖_F).
    for (int n : {2, 3, 33, 34, 65, 200, 700})
        for (int kind = 0; kind < 3; ++kind) {
            CAPTURE(n);
            CAPTURE(kind);
            const std::vector<double> e = family(kind, n);
            const Eigen::MatrixXd h = with_spectrum(e, static_cast<std::uint32_t>(100 * n + kind));
            const double bound = solve_resolution(static_cast<std::size_t>(n), h.norm());
            for (int threads : {1, 2}) {
                const blas::ThreadCount count(threads);
                const std::vector<double> one = solve(h, 'L', Reduction::one_stage);
                for (Reduction how : {Reduction::two_stage, Reduction::two_stage_band_on_one}) {
                    for (char uplo : {'L', 'U'}) {
                        const std::vector<double> two = solve(h, uplo, how);
                        CHECK(std::is_sorted(two.begin(), two.end()));
                        CHECK(largest_difference(one, two) <= 2 * bound);
                        CHECK(largest_difference(e, two) <= 2 * bound);
                    }
                    CHECK(largest_difference(one, solve(h, 'U', how, n + 5)) <= 2 * bound);
                }
                CHECK(openblas_get_num_threads() == threads);  // the second stage's one thread restored
            }
        }
}

TEST_CASE("near the floor the reductions agree within the twins' reach: values at the cut, hidden saddles, float32 data") {
    // What the cut needs of two solves of one matrix (docs/method.md, "the
    // twins' reach"): values near the floor t = 8·√n·ε·‖H‖_F within
    // twin_reach of each other, so that the band of either holds the
    // other's dim. Families: low rank over three decades with three values
    // at 0.3–3 floors, one of them negative (a saddle the floor hides);
    // the same rounded to float32 and widened, measured at float32's floor.
    std::uint32_t seed = 900;
    for (int n : {200, 700, 1000})
        for (int kind = 0; kind < 2; ++kind) {
            CAPTURE(n);
            CAPTURE(kind);
            std::vector<double> e(static_cast<std::size_t>(n), 0.0);
            const int k = n / 3;
            for (int i = 0; i < k; ++i) e[i] = std::pow(10.0, -3.0 * i / (k - 1));
            double f2 = 0;
            for (double v : e) f2 += v * v;
            const double floor64 = 8 * std::sqrt(double(n)) * std::numeric_limits<double>::epsilon() * std::sqrt(f2);
            e[k] = 0.3 * floor64;
            e[k + 1] = -0.9 * floor64;
            e[k + 2] = 3 * floor64;
            Eigen::MatrixXd h = with_spectrum(e, seed++);
            if (kind == 1) h = h.cast<float>().cast<double>();
            const double unit = std::numeric_limits<double>::epsilon() * h.norm();
            const double floor = kind == 1 ? std::numeric_limits<float>::epsilon() * h.norm() : 8 * std::sqrt(double(n)) * unit;
            const double reach = twin_reach(static_cast<std::size_t>(n), h.norm());
            const std::vector<double> one = solve(h, 'L', Reduction::one_stage), two = solve(h, 'L', Reduction::two_stage);
            double near = 0;
            std::size_t above_one = 0, above_two = 0, surely = 0, maybe = 0;
            for (std::size_t i = 0; i < one.size(); ++i) {
                if (std::abs(one[i]) <= 100 * floor) near = std::max(near, std::abs(one[i] - two[i]));
                above_one += std::abs(one[i]) > floor;
                above_two += std::abs(two[i]) > floor;
                surely += std::abs(one[i]) > floor + reach;
                maybe += std::abs(one[i]) > floor - reach;
            }
            CHECK(near <= reach);
            CHECK(above_two >= surely);
            CHECK(above_two <= maybe);
            if (kind == 0) CHECK(above_one == static_cast<std::size_t>(k + 1));  // the 3-floor value is kept, the others not
            else CHECK(above_two == above_one);
        }
}

TEST_CASE("two stages scale a matrix outside LAPACK's safe range and back, as dsyevd does") {
    const int n = 120;
    const std::vector<double> e = family(1, n);
    const Eigen::MatrixXd h = with_spectrum(e, 7);
    for (double s : {1e-300, 1e-200, 1e200, 1e300}) {
        CAPTURE(s);
        const Eigen::MatrixXd hs = h * s;
        const std::vector<double> one = solve(hs, 'L', Reduction::one_stage), two = solve(hs, 'L', Reduction::two_stage);
        const double bound = solve_resolution(static_cast<std::size_t>(n), h.norm()) * s;
        CHECK(largest_difference(one, two) <= 2 * bound);
        for (std::size_t i = 0; i < e.size(); ++i) CHECK(std::abs(two[i] - e[i] * s) <= 2 * bound);
    }
}

TEST_CASE("the reduction: two stages where they measured faster, by OpenBLAS's core and the thread count") {
    CHECK(detail::two_stage_from("SkylakeX", 1, false) == 900);
    CHECK(detail::two_stage_from("Cooperlake", 1, false) == 900);
    CHECK(detail::two_stage_from("SkylakeX", 2, true) == 1400);
    CHECK(detail::two_stage_from("SkylakeX", 2, false) == 4000);
    CHECK(detail::two_stage_from("Haswell", 1, false) == 4000);
    CHECK(detail::two_stage_from("Zen", 2, true) == 4000);
    CHECK(detail::two_stage_from("Zen", 2, false) == LONG_MAX);
    CHECK(detail::two_stage_from(nullptr, 1, false) == 4000);
    CHECK(detail::reduction_for(899, 1) == Reduction::one_stage);
    CHECK(detail::reduction_for(4000, 1) == Reduction::two_stage);
    // The second stage goes to one thread only while the process's BLAS is
    // basinvol's alone: never inside a Shared scope.
    blas::own_threads();
    CHECK(blas::sole_user());
    CHECK(detail::reduction_for(4000, 2) == Reduction::two_stage_band_on_one);
    {
        const blas::Shared side_by_side;
        CHECK_FALSE(blas::sole_user());
        CHECK(detail::reduction_for(4000, 2) != Reduction::two_stage_band_on_one);
    }
    CHECK(blas::sole_user());
    blas::own_threads(false);  // as a library caller's process is
    CHECK_FALSE(blas::sole_user());
    CHECK(detail::reduction_for(4000, 2) != Reduction::two_stage_band_on_one);
}

TEST_CASE("a library caller's threads: one solve never changes the thread count another reads") {
    // Two threads solve at once on two BLAS threads, as two Python threads
    // may; each must see the count it set, and get the values it gets alone.
    REQUIRE_FALSE(blas::sole_user());
    const blas::ThreadCount two(2);
    const Eigen::MatrixXd big = with_spectrum(family(0, 1500), 3), small = with_spectrum(family(1, 1000), 4);
    auto solve_default = [](Eigen::MatrixXd a) {
        return detail::symmetric_eigenvalues(a.data(), static_cast<int>(a.rows()), static_cast<int>(a.rows()), 'L');
    };
    const std::vector<double> alone = solve_default(small);
    std::atomic<bool> done{false};
    std::atomic<int> wrong_count{0};
    std::thread other([&] {
        while (!done)
            if (solve_default(big).size() != 1500) ++wrong_count;
    });
    int differing = 0;
    for (int i = 0; i < 6; ++i) {
        if (openblas_get_num_threads() != 2) ++wrong_count;
        differing += solve_default(small) != alone;
    }
    done = true;
    other.join();
    CHECK(wrong_count == 0);
    CHECK(differing == 0);
}

TEST_CASE("the two-stage workspace the memory estimates count: LAPACK's own sizes, none below n = 900") {
    CHECK(two_stage_workspace_bytes(899) == 0);
    for (std::size_t n : {900u, 1000u, 4000u, 12000u}) {
        CAPTURE(n);
        const std::size_t bytes = two_stage_workspace_bytes(n);
        // The band (kd + 1 ≥ 2 rows), τ, the off-diagonal and a work array
        // of at least 2·kd·n: more than 4·n doubles; pthread OpenBLAS's kd =
        // 32 gives about 105·n.
        CHECK(bytes > 4 * n * sizeof(double));
        CHECK(bytes <= 256 * n * sizeof(double));
    }
    // Past what any matrix could need, no int overflow: a generous bound.
    const std::size_t huge = std::size_t(1) << 30;
    CHECK(two_stage_workspace_bytes(huge) == 256 * sizeof(double) * huge);
}
