// The LAPACK calls a batch row's cost is made of, alone, on one matrix:
// what an eigenvalue-only dense solve costs (dsyevd, and its two halves
// dsytrd + dsterf) against the factorizations a counted spectrum would use
// instead (dpotrf, Bunch–Kaufman dsytrf, pivoted dpstrf, dtrtri); the
// alternatives to dsyevd that were measured and not adopted (its upper
// triangle, dsyevd_2stage, and for the tridiagonal values dstemr or dqds
// through dlasq1 in place of dsterf); and the steps of the factored
// Cholesky at the matrix's rank (src/solve/cholesky.cpp), with the Cholesky
// of its Ritz matrix against that matrix's dsyevd — docs/performance.md.
//
//   OPENBLAS_NUM_THREADS=1 build/bench_lapack_kernels N [RANK [REPEATS]]
//
// The matrix is a float32-rounded Gram matrix JᵀJ of rank RANK (default N)
// with 1e-3 added to its diagonal, as the batch workload's Hessians are
// Gram matrices (the factored steps take JᵀJ itself, whose pivots stop at
// RANK); every call gets a fresh copy. Prints each call's best wall time of
// REPEATS (default 3) in milliseconds.
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
void dsyevd_2stage_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w,
                    double* work, const int* lwork, int* iwork, const int* liwork, int* info, std::size_t,
                    std::size_t);
void dstemr_(const char* jobz, const char* range, const int* n, double* d, double* e, const double* vl,
             const double* vu, const int* il, const int* iu, int* m, double* w, double* z, const int* ldz,
             const int* nzc, int* isuppz, int* tryrac, double* work, const int* lwork, int* iwork, const int* liwork,
             int* info, std::size_t, std::size_t);
void dlasq1_(const int* n, double* d, double* e, double* work, int* info);
}

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// The best of `repeats` timed calls, each on a fresh copy of h in a.
double best_ms(int repeats, const std::vector<double>& h, std::vector<double>& a,
               const std::function<void(double*)>& call) {
    double best = 1e300;
    for (int i = 0; i < repeats; ++i) {
        a = h;
        const auto t0 = Clock::now();
        call(a.data());
        best = std::min(best, ms_since(t0));
    }
    return best;
}

// The best of `repeats` timed calls on fresh copies of the tridiagonal (d, e).
double best_tridiagonal_ms(int repeats, const std::vector<double>& d, const std::vector<double>& e,
                           const std::function<void(std::vector<double>&, std::vector<double>&)>& call) {
    double best = 1e300;
    for (int i = 0; i < repeats; ++i) {
        std::vector<double> dd = d, ee = e;
        const auto t0 = Clock::now();
        call(dd, ee);
        best = std::min(best, ms_since(t0));
    }
    return best;
}

// Fails loudly: a LAPACK call that did nothing would print a time.
void check(int info, const char* call) {
    if (info == 0) return;
    std::fprintf(stderr, "bench_lapack_kernels: %s failed: info = %d\n", call, info);
    std::exit(1);
}

// Work arrays for every call below at size n, from LAPACK's own queries
// (dsyevd, dsyevd_2stage, dsytrd, dsytrf) and the documented minima
// (dstemr 18n and 10n, dlasq1 4n).
struct Workspace {
    std::vector<double> work;
    std::vector<int> iwork;
    int lwork = 0, liwork = 0;
    explicit Workspace(int n) {
        const int query = -1;
        int info = 0, iq = 0;
        double q[4] = {0, 0, 0, 0};
        double one = 0, w = 0;
        std::vector<int> piv(static_cast<std::size_t>(std::max(n, 1)));
        dsyevd_("N", "L", &n, &one, &n, &w, &q[0], &query, &iq, &query, &info, 1, 1);
        liwork = std::max(iq, 10 * n + 3);
        dsyevd_2stage_("N", "L", &n, &one, &n, &w, &q[1], &query, &iq, &query, &info, 1, 1);
        liwork = std::max(liwork, iq);
        dsytrd_("L", &n, &one, &n, &w, &w, &w, &q[2], &query, &info, 1);
        dsytrf_("L", &n, &one, &n, piv.data(), &q[3], &query, &info, 1);
        double most = 18.0 * n;
        for (double x : q) most = std::max(most, x);
        lwork = static_cast<int>(most) + 1;
        work.resize(static_cast<std::size_t>(lwork));
        iwork.resize(static_cast<std::size_t>(liwork));
    }
};

void dense_kernels(int n, int repeats, const std::vector<double>& h) {
    std::vector<double> a, d(n), e(n), tau(n), w(n);
    std::vector<int> piv(n);
    Workspace ws(n);
    int info = 0, r = 0;
    const double tol = -1;
    const double syevd = best_ms(repeats, h, a, [&](double* m) {
        dsyevd_("N", "L", &n, m, &n, w.data(), ws.work.data(), &ws.lwork, ws.iwork.data(), &ws.liwork, &info, 1, 1);
        check(info, "dsyevd");
    });
    const double sytrd = best_ms(repeats, h, a, [&](double* m) {
        dsytrd_("L", &n, m, &n, d.data(), e.data(), tau.data(), ws.work.data(), &ws.lwork, &info, 1);
        check(info, "dsytrd");
    });
    const double sterf =
        best_tridiagonal_ms(repeats, d, e, [&](std::vector<double>& dd, std::vector<double>& ee) {
            dsterf_(&n, dd.data(), ee.data(), &info);
            check(info, "dsterf");
        });
    const double potrf = best_ms(repeats, h, a, [&](double* m) {
        dpotrf_("L", &n, m, &n, &info, 1);
        check(info, "dpotrf");
    });
    const double sytrf = best_ms(repeats, h, a, [&](double* m) {
        dsytrf_("L", &n, m, &n, piv.data(), ws.work.data(), &ws.lwork, &info, 1);
        check(info, "dsytrf");
    });
    const double pstrf = best_ms(repeats, h, a, [&](double* m) {
        dpstrf_("L", &n, m, &n, piv.data(), &r, &tol, ws.work.data(), &info, 1);
        check(info == 1 ? 0 : info, "dpstrf");  // 1: stopped at its tolerance
    });
    const double trtri = best_ms(repeats, h, a, [&](double* m) {
        dpotrf_("L", &n, m, &n, &info, 1);
        check(info, "dpotrf");
        dtrtri_("L", "N", &n, m, &n, &info, 1, 1);
        check(info, "dtrtri");
    });
    std::printf("dsyevd %.1f  dsytrd %.1f  dsterf %.1f  dpotrf %.1f  dsytrf %.1f  dpstrf %.1f  dpotrf+dtrtri %.1f\n",
                syevd, sytrd, sterf, potrf, sytrf, pstrf, trtri);
}

// The tridiagonal's values by dqds: T − σI = LDLᵀ with σ under Gershgorin's
// bound, B = D^½Lᵀ bidiagonal (BᵀB = T − σI), λ = σ + s² over B's singular
// values s (dlasq1). Absolute accuracy ε·‖T‖, as dsterf's.
void dqds_values(int n, std::vector<double>& d, std::vector<double>& e, std::vector<double>& work, int& info) {
    double sigma = 1e300, size = 0;
    for (int i = 0; i < n; ++i) {
        const double off = (i > 0 ? std::abs(e[i - 1]) : 0.0) + (i + 1 < n ? std::abs(e[i]) : 0.0);
        sigma = std::min(sigma, d[i] - off);
        size = std::max(size, std::abs(d[i]) + off);
    }
    sigma -= 1e-3 * size;
    double pivot = d[0] - sigma;
    for (int i = 0; i < n; ++i) {
        const double root = std::sqrt(pivot);
        if (i + 1 < n) {
            pivot = d[i + 1] - sigma - e[i] * e[i] / pivot;
            e[i] /= root;
        }
        d[i] = root;
    }
    dlasq1_(&n, d.data(), e.data(), work.data(), &info);
    for (int i = 0; i < n; ++i) d[i] = sigma + d[i] * d[i];
}

void alternatives(int n, int repeats, const std::vector<double>& h) {
    std::vector<double> a, d(n), e(n), tau(n), w(n), z(1);
    std::vector<int> isuppz(2 * static_cast<std::size_t>(n));
    Workspace ws(n);
    int info = 0, found = 0, ldz = 1, nzc = 0, tryrac = 0, none = 0;
    const double zero = 0;
    const double upper = best_ms(repeats, h, a, [&](double* m) {
        dsyevd_("N", "U", &n, m, &n, w.data(), ws.work.data(), &ws.lwork, ws.iwork.data(), &ws.liwork, &info, 1, 1);
        check(info, "dsyevd('U')");
    });
    const double two_stage = best_ms(repeats, h, a, [&](double* m) {
        dsyevd_2stage_("N", "L", &n, m, &n, w.data(), ws.work.data(), &ws.lwork, ws.iwork.data(), &ws.liwork, &info,
                       1, 1);
        check(info, "dsyevd_2stage");
    });
    a = h;
    dsytrd_("L", &n, a.data(), &n, d.data(), e.data(), tau.data(), ws.work.data(), &ws.lwork, &info, 1);
    check(info, "dsytrd");
    const double stemr =
        best_tridiagonal_ms(repeats, d, e, [&](std::vector<double>& dd, std::vector<double>& ee) {
            dstemr_("N", "A", &n, dd.data(), ee.data(), &zero, &zero, &none, &none, &found, w.data(), z.data(), &ldz,
                    &nzc, isuppz.data(), &tryrac, ws.work.data(), &ws.lwork, ws.iwork.data(), &ws.liwork, &info, 1,
                    1);
            check(info, "dstemr");
        });
    const double dqds = best_tridiagonal_ms(repeats, d, e, [&](std::vector<double>& dd, std::vector<double>& ee) {
        dqds_values(n, dd, ee, ws.work, info);
        check(info, "dlasq1");
    });
    std::printf("dsyevd('U') %.1f  dsyevd_2stage %.1f  | in place of dsterf: dstemr %.1f  LDLT+dlasq1 %.1f\n", upper,
                two_stage, stemr, dqds);
}

// The factored Cholesky's steps (src/solve/cholesky.cpp), float64, without
// its single-precision correction: dpstrf, S = H₂₂ − L₂L₂ᵀ from the stored
// values (the permuted gather, then dsyrk), the Ritz matrix M = RRᵀ, then
// the Cholesky a counted spectrum would take of M against M's dsyevd.
void factored_steps(int n, int repeats, const std::vector<double>& h) {
    double best[7];
    std::fill(best, best + 7, 1e300);
    int r = 0;
    for (int rep = 0; rep < repeats; ++rep) {
        std::vector<double> a = h, work(2 * static_cast<std::size_t>(n));
        std::vector<int> piv(n);
        double* A = a.data();
        auto at = [&](int i, int j) -> double& { return A[i + static_cast<std::size_t>(j) * n]; };
        double top = 0;
        for (int i = 0; i < n; ++i) top = std::max(top, h[static_cast<std::size_t>(i) * (n + 1)]);
        const double stop = 4 * std::ldexp(1.0, -23) * top;
        int info = 0;
        double t[7];
        auto t0 = Clock::now();
        auto lap = [&](int k) {
            t[k] = ms_since(t0);
            t0 = Clock::now();
        };
        dpstrf_("L", &n, A, &n, piv.data(), &r, &stop, work.data(), &info, 1);
        check(info == 1 ? 0 : info, "dpstrf");  // 1: stopped at its tolerance
        lap(0);
        // V = A(0:r, 1:r+1) needs a column past the rank; a rank of 0 leaves
        // no Ritz matrix. basinvol gives up at 0.75·n anyway.
        if (r >= n || r == 0) break;
        const int m = n - r;
        double* L2 = A + r;
        double* V = A + n;
        for (int b = 0; b < m; ++b)
            for (int i = b; i < m; ++i)
                at(r + i, r + b) = h[static_cast<std::size_t>(piv[r + i] - 1) +
                                     static_cast<std::size_t>(piv[r + b] - 1) * static_cast<std::size_t>(n)];
        basinvol::blas::syrk('L', 'N', m, r, -1.0, L2, n, 1.0, &at(r, r), n);
        lap(1);
        basinvol::blas::syrk('U', 'T', r, m, 1.0, L2, n, 0.0, V, n);
        dlauum_("L", &r, A, &n, &info, 1);
        check(info, "dlauum");
        for (int i = 0; i < r; ++i)
            for (int j = 0; j <= i; ++j) V[j + static_cast<std::size_t>(i) * n] += at(i, j);
        lap(2);
        dpotrf_("U", &r, V, &n, &info, 1);
        check(info, "dpotrf");
        lap(3);
        basinvol::blas::trsm('R', 'U', 'N', 'N', m, r, 1.0, V, n, L2, n);
        dlauum_("U", &r, V, &n, &info, 1);
        check(info, "dlauum");
        lap(4);
        std::vector<double> M(static_cast<std::size_t>(r) * r), w(r);
        for (int i = 0; i < r; ++i)
            for (int j = 0; j <= i; ++j) M[j + static_cast<std::size_t>(i) * r] = V[j + static_cast<std::size_t>(i) * n];
        std::vector<double> C = M;
        Workspace ws(r);
        t0 = Clock::now();
        dpotrf_("U", &r, C.data(), &r, &info, 1);
        check(info, "dpotrf of the Ritz matrix");
        lap(5);
        dsyevd_("N", "U", &r, M.data(), &r, w.data(), ws.work.data(), &ws.lwork, ws.iwork.data(), &ws.liwork, &info, 1,
                1);
        check(info, "dsyevd of the Ritz matrix");
        lap(6);
        for (int k = 0; k < 7; ++k) best[k] = std::min(best[k], t[k]);
    }
    if (r >= n || r == 0) {
        std::printf("factored: %d pivots of %d, nothing to time (basinvol goes dense past 0.75·n)\n", r, n);
        return;
    }
    std::printf("factored at r = %d: dpstrf %.1f  S %.1f  LtL %.1f  dpotrf %.1f  Q2+RRt %.1f | Ritz matrix: dpotrf %.1f "
                " dsyevd %.1f\n",
                r, best[0], best[1], best[2], best[3], best[4], best[5], best[6]);
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
    std::vector<double> j(static_cast<std::size_t>(rank) * static_cast<std::size_t>(n)), h(nn);
    std::mt19937_64 rng(20261202);
    std::normal_distribution<double> normal(0.0, 1.0);
    for (double& x : j) x = normal(rng) / std::sqrt(static_cast<double>(n));
    basinvol::blas::gemm('T', 'N', n, n, rank, 1.0, j.data(), rank, j.data(), rank, 0.0, h.data(), n);
    for (double& x : h) x = static_cast<float>(x);
    const std::vector<double> gram = h;
    for (int i = 0; i < n; ++i) h[static_cast<std::size_t>(i) * static_cast<std::size_t>(n + 1)] += 1e-3;

    std::printf("n %d rank %d (ms, best of %d)\n", n, rank, repeats);
    dense_kernels(n, repeats, h);
    alternatives(n, repeats, h);
    factored_steps(n, repeats, gram);
    return 0;
}
