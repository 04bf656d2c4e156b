// The LAPACK calls a batch row's cost is made of, alone, on one matrix:
// what an eigenvalue-only dense solve costs (dsyevd, and its two halves
// dsytrd + dsterf) against the factorizations a counted spectrum would use
// instead (dpotrf, Bunch–Kaufman dsytrf, pivoted dpstrf, dtrtri) —
// docs/performance.md, "Batch: why 3x is out of reach by counting".
//
//   OPENBLAS_NUM_THREADS=1 build/bench_lapack_kernels N [RANK [REPEATS]]
//
// The matrix is a float32-rounded Gram matrix JᵀJ of rank RANK (default N)
// with 1e-3 added to its diagonal, as the batch workload's Hessians are
// Gram matrices; every call gets a fresh copy. Prints each call's best wall
// time of REPEATS (default 3) in milliseconds.
#include "../src/solve/blas.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <vector>

extern "C" {
void dsytrd_(const char* uplo, const int* n, double* a, const int* lda, double* d, double* e, double* tau, double* work,
             const int* lwork, int* info, std::size_t);
void dsterf_(const int* n, double* d, double* e, int* info);
void dsytrf_(const char* uplo, const int* n, double* a, const int* lda, int* ipiv, double* work, const int* lwork,
             int* info, std::size_t);
void dtrtri_(const char* uplo, const char* diag, const int* n, double* a, const int* lda, int* info, std::size_t,
             std::size_t);
}

namespace {

using Clock = std::chrono::steady_clock;

double best_ms(int repeats, const std::vector<double>& h, std::vector<double>& a,
               const std::function<void(double*)>& call) {
    double best = 1e300;
    for (int i = 0; i < repeats; ++i) {
        a = h;
        const auto t0 = Clock::now();
        call(a.data());
        best = std::min(best, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s N [RANK [REPEATS]]\n", argv[0]);
        return 2;
    }
    const int n = std::atoi(argv[1]);
    const int rank = argc > 2 ? std::atoi(argv[2]) : n;
    const int repeats = argc > 3 ? std::atoi(argv[3]) : 3;
    if (n < 2 || rank < 1 || rank > n || repeats < 1) {
        std::fprintf(stderr, "%s: need 2 <= N, 1 <= RANK <= N, REPEATS >= 1\n", argv[0]);
        return 2;
    }
    const std::size_t nn = static_cast<std::size_t>(n) * static_cast<std::size_t>(n);
    std::vector<double> j(static_cast<std::size_t>(rank) * static_cast<std::size_t>(n)), h(nn), a(nn);
    std::mt19937_64 rng(20261202);
    std::normal_distribution<double> normal(0.0, 1.0);
    for (double& x : j) x = normal(rng) / std::sqrt(static_cast<double>(n));
    basinvol::blas::gemm('T', 'N', n, n, rank, 1.0, j.data(), rank, j.data(), rank, 0.0, h.data(), n);
    for (double& x : h) x = static_cast<float>(x);
    for (int i = 0; i < n; ++i) h[static_cast<std::size_t>(i) * static_cast<std::size_t>(n + 1)] += 1e-3;

    const std::size_t un = static_cast<std::size_t>(n);
    std::vector<double> d(un), e(un), tau(un), work(64 * un + 2 * nn), w(un);
    std::vector<int> iwork(5 * un + 3), piv(un);
    const int lwork = static_cast<int>(work.size()), liwork = static_cast<int>(iwork.size());
    int info = 0, r = 0;
    const double tol = -1;
    const double syevd = best_ms(repeats, h, a, [&](double* m) {
        dsyevd_("N", "L", &n, m, &n, w.data(), work.data(), &lwork, iwork.data(), &liwork, &info, 1, 1);
    });
    const double sytrd = best_ms(repeats, h, a, [&](double* m) {
        dsytrd_("L", &n, m, &n, d.data(), e.data(), tau.data(), work.data(), &lwork, &info, 1);
    });
    double sterf = 1e300;
    for (int i = 0; i < repeats; ++i) {
        a = h;
        dsytrd_("L", &n, a.data(), &n, d.data(), e.data(), tau.data(), work.data(), &lwork, &info, 1);
        const auto t0 = Clock::now();
        dsterf_(&n, d.data(), e.data(), &info);
        sterf = std::min(sterf, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    const double potrf = best_ms(repeats, h, a, [&](double* m) { dpotrf_("L", &n, m, &n, &info, 1); });
    const double sytrf = best_ms(repeats, h, a, [&](double* m) {
        dsytrf_("L", &n, m, &n, piv.data(), work.data(), &lwork, &info, 1);
    });
    const double pstrf = best_ms(repeats, h, a, [&](double* m) {
        dpstrf_("L", &n, m, &n, piv.data(), &r, &tol, work.data(), &info, 1);
    });
    const double trtri = best_ms(repeats, h, a, [&](double* m) {
        dpotrf_("L", &n, m, &n, &info, 1);
        dtrtri_("L", "N", &n, m, &n, &info, 1, 1);
    });
    std::printf("n %d rank %d (ms, best of %d)\n", n, rank, repeats);
    std::printf("dsyevd %.1f  dsytrd %.1f  dsterf %.1f  dpotrf %.1f  dsytrf %.1f  dpstrf %.1f  dpotrf+dtrtri %.1f\n",
                syevd, sytrd, sterf, potrf, sytrf, pstrf, trtri);
    return info == 0 ? 0 : 1;
}
