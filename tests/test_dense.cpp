// The dense solve's two reductions to tridiagonal form (src/solve/dense.cpp):
// dsyevd's one stage and the two stages that run faster from some n, each
// held to LAPACK's bound on the same stored matrix; and the second stage
// (src/solve/band.cpp) against LAPACK's dsytrd_sb2st on bands of its own.
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
#include <random>
#include <utility>
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
                for (char uplo : {'L', 'U'}) {
                    const std::vector<double> two = solve(h, uplo, Reduction::two_stage);
                    CHECK(std::is_sorted(two.begin(), two.end()));
                    CHECK(largest_difference(one, two) <= 2 * bound);
                    CHECK(largest_difference(e, two) <= 2 * bound);
                }
                CHECK(largest_difference(one, solve(h, 'U', Reduction::two_stage, n + 5)) <= 2 * bound);
                CHECK(openblas_get_num_threads() == threads);  // no solve changes the thread count
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
    CHECK(detail::two_stage_from("SkylakeX", 1) == 750);
    CHECK(detail::two_stage_from("Cooperlake", 1) == 750);
    CHECK(detail::two_stage_from("SkylakeX", 2) == 1200);
    CHECK(detail::two_stage_from("Haswell", 1) == 4000);
    CHECK(detail::two_stage_from("Zen", 2) == 4000);
    CHECK(detail::two_stage_from(nullptr, 1) == 4000);
    CHECK(detail::reduction_for(749, 1) == Reduction::one_stage);
    CHECK(detail::reduction_for(4000, 1) == Reduction::two_stage);
    CHECK(detail::reduction_for(4000, 2) == Reduction::two_stage);
}

TEST_CASE("threads solving at once: each sees its own thread count and gets the values it gets alone") {
    // Two threads solve at once on two BLAS threads, as two Python threads
    // or two jobs may, one matrix in two stages (whatever this CPU's default
    // for it), the other as this CPU solves it by default.
    const blas::ThreadCount two(2);
    const Eigen::MatrixXd big = with_spectrum(family(0, 1500), 3), small = with_spectrum(family(1, 1000), 4);
    auto solve_default = [](Eigen::MatrixXd a) {
        return detail::symmetric_eigenvalues(a.data(), static_cast<int>(a.rows()), static_cast<int>(a.rows()), 'L');
    };
    auto solve_two_stage = [](Eigen::MatrixXd a) {
        return detail::symmetric_eigenvalues(a.data(), static_cast<int>(a.rows()), static_cast<int>(a.rows()), 'L',
                                             Reduction::two_stage);
    };
    const std::vector<double> alone = solve_default(small), big_alone = solve_two_stage(big);
    std::atomic<bool> done{false};
    std::atomic<int> wrong_count{0};
    std::thread other([&] {
        while (!done) {
            if (openblas_get_num_threads() != 2) ++wrong_count;
            if (solve_two_stage(big) != big_alone) ++wrong_count;
        }
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

namespace {

// A symmetric band of kd subdiagonals in LAPACK's lower band storage
// (ldab = kd + 1), entries drawn by `entry(i, j)`.
template <class Entry>
std::vector<double> lower_band(int n, int kd, Entry entry) {
    std::vector<double> ab(static_cast<std::size_t>(kd + 1) * n, 0.0);
    for (int j = 0; j < n; ++j)
        for (int i = j; i <= std::min(n - 1, j + kd); ++i) ab[(i - j) + static_cast<std::size_t>(j) * (kd + 1)] = entry(i, j);
    return ab;
}

// The same band in upper storage: AB(kd + i − j, j) = A(i, j) for i ≤ j.
std::vector<double> as_upper(const std::vector<double>& lower, int n, int kd) {
    std::vector<double> ab(lower.size(), 0.0);
    for (int j = 0; j < n; ++j)
        for (int i = j; i <= std::min(n - 1, j + kd); ++i)
            ab[(kd + j - i) + static_cast<std::size_t>(i) * (kd + 1)] = lower[(i - j) + static_cast<std::size_t>(j) * (kd + 1)];
    return ab;
}

std::vector<double> tridiagonal_values(std::vector<double> d, std::vector<double> e) {
    const int n = static_cast<int>(d.size());
    int info = 0;
    e.resize(d.size() + 1);
    dsterf_(&n, d.data(), e.data(), &info);
    REQUIRE(info == 0);
    std::sort(d.begin(), d.end());
    return d;
}

// The band's eigenvalues through band_to_tridiagonal and through LAPACK's
// dsytrd_sb2st (values only), then dsterf each.
std::pair<std::vector<double>, std::vector<double>> both_second_stages(const std::vector<double>& ab, int n, int kd,
                                                                     char uplo = 'L') {
    const std::vector<double> band = uplo == 'L' ? ab : as_upper(ab, n, kd);
    const std::vector<double> before = band;
    std::vector<double> d(n), e(std::max(n - 1, 1));
    detail::band_to_tridiagonal(uplo, n, kd, band.data(), kd + 1, d.data(), e.data());
    CHECK(band == before);  // read only
    e.resize(static_cast<std::size_t>(std::max(n - 1, 0)));
    std::vector<double> lapack_band = band, ld(n), le(n);
    const char stage1 = 'Y', vect = 'N';
    const int ldab = kd + 1, query = -1;
    int info = 0;
    double hous_size = 0, work_size = 0, unused = 0;
    dsytrd_sb2st_(&stage1, &vect, &uplo, &n, &kd, &unused, &ldab, &unused, &unused, &hous_size, &query, &work_size,
                  &query, &info, 1, 1, 1);
    REQUIRE(info == 0);
    int lhous = static_cast<int>(hous_size) + 1, lwork = static_cast<int>(work_size) + 1;
    std::vector<double> hous(lhous), work(lwork);
    dsytrd_sb2st_(&stage1, &vect, &uplo, &n, &kd, lapack_band.data(), &ldab, ld.data(), le.data(), hous.data(), &lhous,
                  work.data(), &lwork, &info, 1, 1, 1);
    REQUIRE(info == 0);
    le.resize(static_cast<std::size_t>(std::max(n - 1, 0)));
    return {tridiagonal_values(d, e), tridiagonal_values(ld, le)};
}

// ‖A‖_F of the band, scaled by its largest entry so that squares near 1e±300 stay finite.
double band_frobenius(const std::vector<double>& ab, int n, int kd) {
    double big = 0, f2 = 0;
    for (double x : ab) big = std::max(big, std::abs(x));
    if (big == 0) return 0;
    for (int j = 0; j < n; ++j)
        for (int i = 0; i <= kd && i + j < n; ++i) {
            const double x = ab[i + static_cast<std::size_t>(j) * (kd + 1)] / big;
            f2 += (i == 0 ? 1 : 2) * x * x;
        }
    return big * std::sqrt(f2);
}

}  // namespace

TEST_CASE("the second stage: a band's values as LAPACK's dsytrd_sb2st gives them, within its bound") {
    // Random bands of every shape the loop distinguishes: n under, at and
    // past kd + 1 and 2·kd, kd = 1 (already tridiagonal) and kd = 32 (the
    // first stage's), both storages; the bound is the band's LAPACK bound.
    std::uint32_t seed = 1;
    for (int kd : {1, 2, 3, 8, 32})
        for (int n : {1, 2, 3, kd, kd + 1, kd + 2, 2 * kd + 1, 2 * kd + 3, 5 * kd + 7, 300}) {
            if (n < 1) continue;
            CAPTURE(kd);
            CAPTURE(n);
            std::mt19937 rng(seed++);
            std::normal_distribution<double> g;
            const std::vector<double> ab = lower_band(n, kd, [&](int, int) { return g(rng); });
            const double bound = solve_resolution(static_cast<std::size_t>(n), band_frobenius(ab, n, kd));
            for (char uplo : {'L', 'U'}) {
                const auto [mine, lapack] = both_second_stages(ab, n, kd, uplo);
                CHECK(largest_difference(mine, lapack) <= 2 * bound);
            }
        }
}

TEST_CASE("the second stage on adversarial bands: zero columns, split blocks, graded and tiny entries, clusters") {
    const int n = 260, kd = 32;
    std::mt19937 rng(77);
    std::normal_distribution<double> g;
    std::vector<std::pair<const char*, std::vector<double>>> bands;
    // Columns already tridiagonal (a reflector of τ = 0) every third column.
    bands.emplace_back("zero columns", lower_band(n, kd, [&](int i, int j) { return j % 3 == 0 && i > j + 1 ? 0.0 : g(rng); }));
    // Two blocks with no coupling: the band splits.
    bands.emplace_back("split", lower_band(n, kd, [&](int i, int j) { return (i >= n / 2) != (j >= n / 2) ? 0.0 : g(rng); }));
    // Entries graded over 200 decades down the band.
    bands.emplace_back("graded", lower_band(n, kd, [&](int i, int j) { return g(rng) * std::pow(10.0, -100.0 * (i + j) / n); }));
    // Subnormal-sized off-diagonals under a unit diagonal: the reflectors' rescaling.
    bands.emplace_back("tiny", lower_band(n, kd, [&](int i, int j) { return i == j ? 1.0 + j : 1e-310 * g(rng); }));
    // All entries near float64's largest.
    bands.emplace_back("huge", lower_band(n, kd, [&](int i, int j) { return 1e300 * (i == j ? 1.0 : 0.01 * g(rng)); }));
    // A cluster: the identity plus a rank-one band perturbation of 1e-12.
    bands.emplace_back("cluster", lower_band(n, kd, [&](int i, int j) { return (i == j ? 1.0 : 0.0) + 1e-12 * std::cos(i) * std::cos(j); }));
    for (const auto& [what, ab] : bands) {
        CAPTURE(what);
        const double bound = solve_resolution(static_cast<std::size_t>(n), band_frobenius(ab, n, kd));
        const auto [mine, lapack] = both_second_stages(ab, n, kd);
        CHECK(std::all_of(mine.begin(), mine.end(), [](double x) { return std::isfinite(x); }));
        CHECK(largest_difference(mine, lapack) <= 2 * bound);
    }
}

TEST_CASE("the two-stage workspace the memory estimates count: LAPACK's own sizes, none below n = 750") {
    CHECK(two_stage_workspace_bytes(749) == 0);
    for (std::size_t n : {750u, 1000u, 4000u, 12000u}) {
        CAPTURE(n);
        const std::size_t bytes = two_stage_workspace_bytes(n);
        // The band (kd + 1 ≥ 2 rows), τ, the off-diagonal, and the larger of
        // the first stage's work array and the second stage's band of
        // 2·kd + 1 rows: more than 4·n doubles; pthread OpenBLAS's kd = 32
        // gives about 100·n.
        CHECK(bytes > 4 * n * sizeof(double));
        CHECK(bytes <= 256 * n * sizeof(double));
    }
    // Past what any matrix could need, no int overflow: a generous bound.
    const std::size_t huge = std::size_t(1) << 30;
    CHECK(two_stage_workspace_bytes(huge) == 256 * sizeof(double) * huge);
}
