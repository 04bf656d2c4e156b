// The LAPACK calls a batch row's cost is made of, alone, on one matrix:
// what an eigenvalue-only dense solve costs (dsyevd, and its two halves
// dsytrd + dsterf) against the factorizations a counted spectrum would use
// instead (dpotrf, Bunch–Kaufman dsytrf, pivoted dpstrf, dtrtri); the
// alternatives to dsyevd that were measured and not adopted (its upper
// triangle, dsyevd_2stage, and for the tridiagonal values dstemr or dqds
// through dlasq1 in place of dsterf); and the steps of the factored
// Cholesky at the matrix's rank (src/solve/cholesky.cpp), with the Cholesky
// of its Ritz matrix against that matrix's dsyevd; and what a spectrum
// summarized by log det V (no r×r matrix) and its extremes would cost in
// its place — docs/performance.md.
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
void dtrsv_(const char* uplo, const char* trans, const char* diag, const int* n, const double* a, const int* lda,
            double* x, const int* incx, std::size_t, std::size_t, std::size_t);
void dpotrs_(const char* uplo, const int* n, const int* nrhs, const double* a, const int* lda, double* b,
             const int* ldb, int* info, std::size_t);
void dgetrf_(const int* m, const int* n, double* a, const int* lda, int* ipiv, int* info);
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

// A fresh float64 copy of h pivoted by dpstrf as the factored Cholesky does
// it for float32 storage (stopping at 4·2⁻²³ of the largest diagonal):
// L₁ and L₂ in the copy's first `rank` columns, the pivots in `piv`.
struct Pivoted {
    int n, rank = 0;
    std::vector<double> a;
    std::vector<int> piv;
    Pivoted(const std::vector<double>& h, int size) : n(size), a(h), piv(static_cast<std::size_t>(size)) {}
    double& at(int i, int j) { return a[i + static_cast<std::size_t>(j) * n]; }
    void factor() {
        double top = 0;
        for (int i = 0; i < n; ++i) top = std::max(top, a[static_cast<std::size_t>(i) * (n + 1)]);
        const double stop = 4 * std::ldexp(1.0, -23) * top;
        std::vector<double> work(2 * static_cast<std::size_t>(n));
        int info = 0;
        dpstrf_("L", &n, a.data(), &n, piv.data(), &rank, &stop, work.data(), &info, 1);
        check(info == 1 ? 0 : info, "dpstrf");  // 1: stopped at its tolerance
    }
};

// The factored Cholesky's steps (src/solve/cholesky.cpp), float64, without
// its single-precision correction: dpstrf, S = H₂₂ − L₂L₂ᵀ from the stored
// values (the permuted gather, then dsyrk), the Ritz matrix M = RRᵀ, then
// the Cholesky a counted spectrum would take of M against M's dsyevd.
void factored_steps(int n, int repeats, const std::vector<double>& h) {
    double best[7];
    std::fill(best, best + 7, 1e300);
    int r = 0;
    for (int rep = 0; rep < repeats; ++rep) {
        Pivoted p(h, n);
        double* A = p.a.data();
        const std::vector<int>& piv = p.piv;
        auto at = [&](int i, int j) -> double& { return p.at(i, j); };
        int info = 0;
        double t[7];
        auto t0 = Clock::now();
        auto lap = [&](int k) {
            t[k] = ms_since(t0);
            t0 = Clock::now();
        };
        p.factor();
        r = p.rank;
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

// What a spectrum summarized by its log-determinant would cost, with no
// r×r matrix: for L = [L₁; L₂] from dpstrf, A = L₂L₁⁻¹ (m×r, m = n − r),
// log det LᵀL = 2·log det L₁ + log det(I + AAᵀ) (Sylvester's determinant
// identity, the m×m side), and the Ritz matrix V = RRᵀ + Q₂ᵀSQ₂ has
// log det V = log det LᵀL + log det(I + S·ZZᵀ), Z = L₂(LᵀL)⁻¹ =
// (I + AAᵀ)⁻¹·A·L₁⁻ᵀ. Checked against Σ log eig(V) with V formed as
// cholesky.cpp does (in float64). Then what its extremes would cost: 60
// Lanczos products with H (float64) for the largest value, 20
// shift-and-invert products with (LᵀL)⁻¹ through the factors for the
// smallest. Times after dpstrf and S, best of `repeats`.
void complement_steps(int n, int repeats, const std::vector<double>& h) {
    double best[3] = {1e300, 1e300, 1e300};
    double logdet = 0, ritz = 0;
    int r = 0;
    for (int rep = 0; rep < repeats; ++rep) {
        Pivoted p(h, n);
        double* A = p.a.data();
        const std::vector<int>& piv = p.piv;
        auto at = [&](int i, int j) -> double& { return p.at(i, j); };
        int info = 0;
        p.factor();
        r = p.rank;
        if (r >= n || r == 0) return;
        const int m = n - r;
        double* L1 = A;
        double* L2 = A + r;
        std::vector<double> S(static_cast<std::size_t>(m) * m);
        for (int b = 0; b < m; ++b)
            for (int i = 0; i < m; ++i)
                S[i + static_cast<std::size_t>(b) * m] = h[static_cast<std::size_t>(piv[r + i] - 1) +
                                                            static_cast<std::size_t>(piv[r + b] - 1) * n];
        basinvol::blas::gemm('N', 'T', m, m, r, -1.0, L2, n, L2, n, 1.0, S.data(), m);

        auto t0 = Clock::now();
        std::vector<double> Am(static_cast<std::size_t>(m) * r), K(static_cast<std::size_t>(m) * m, 0.0);
        for (int j = 0; j < r; ++j)
            for (int i = 0; i < m; ++i) Am[i + static_cast<std::size_t>(j) * m] = at(r + i, j);
        basinvol::blas::trsm('R', 'L', 'N', 'N', m, r, 1.0, L1, n, Am.data(), m);  // A = L₂L₁⁻¹
        for (int i = 0; i < m; ++i) K[i + static_cast<std::size_t>(i) * m] = 1;
        basinvol::blas::syrk('L', 'N', m, r, 1.0, Am.data(), m, 1.0, K.data(), m);  // I + AAᵀ
        dpotrf_("L", &m, K.data(), &m, &info, 1);
        check(info, "dpotrf of I + AAᵀ");
        double ld = 0;
        for (int i = 0; i < r; ++i) ld += 2 * std::log(at(i, i));
        for (int i = 0; i < m; ++i) ld += 2 * std::log(K[i + static_cast<std::size_t>(i) * m]);
        std::vector<double> Z = Am;
        basinvol::blas::trsm('R', 'L', 'T', 'N', m, r, 1.0, L1, n, Z.data(), m);  // A·L₁⁻ᵀ
        dpotrs_("L", &m, &r, K.data(), &m, Z.data(), &m, &info, 1);              // Z
        check(info, "dpotrs");
        std::vector<double> P(static_cast<std::size_t>(m) * m), C(static_cast<std::size_t>(m) * m);
        basinvol::blas::gemm('N', 'T', m, m, r, 1.0, Z.data(), m, Z.data(), m, 0.0, P.data(), m);  // ZZᵀ
        basinvol::blas::gemm('N', 'N', m, m, m, 1.0, S.data(), m, P.data(), m, 0.0, C.data(), m);  // S·ZZᵀ
        for (int i = 0; i < m; ++i) C[i + static_cast<std::size_t>(i) * m] += 1;
        std::vector<int> ipiv(m);
        dgetrf_(&m, &m, C.data(), &m, ipiv.data(), &info);
        check(info, "dgetrf of I + S·ZZᵀ");
        for (int i = 0; i < m; ++i) ld += std::log(std::abs(C[i + static_cast<std::size_t>(i) * m]));
        best[0] = std::min(best[0], ms_since(t0));
        logdet = ld;

        t0 = Clock::now();  // 60 Lanczos products with H for the largest value
        std::vector<double> x(n, 1.0 / std::sqrt(double(n))), y(n);
        for (int k = 0; k < 60; ++k) {
            basinvol::blas::gemv('N', n, n, 1.0, h.data(), n, x.data(), 1, 0.0, y.data(), 1);
            double norm = 0;
            for (double v : y) norm += v * v;
            for (int i = 0; i < n; ++i) x[i] = y[i] / std::sqrt(norm);
        }
        best[1] = std::min(best[1], ms_since(t0));
        t0 = Clock::now();  // 20 products with (LᵀL)⁻¹ = L₁⁻¹(I − Aᵀ(I + AAᵀ)⁻¹A)L₁⁻ᵀ
        std::vector<double> u(r, 1.0 / std::sqrt(double(r))), v(m);
        const int one = 1;
        for (int k = 0; k < 20; ++k) {
            dtrsv_("L", "T", "N", &r, L1, &n, u.data(), &one, 1, 1, 1);
            basinvol::blas::gemv('N', m, r, 1.0, Am.data(), m, u.data(), 1, 0.0, v.data(), 1);
            dpotrs_("L", &m, &one, K.data(), &m, v.data(), &m, &info, 1);
            basinvol::blas::gemv('T', m, r, -1.0, Am.data(), m, v.data(), 1, 1.0, u.data(), 1);
            dtrsv_("L", "N", "N", &r, L1, &n, u.data(), &one, 1, 1, 1);
            double norm = 0;
            for (double w : u) norm += w * w;
            for (double& w : u) w /= std::sqrt(norm);
        }
        best[2] = std::min(best[2], ms_since(t0));

        if (rep == 0) {  // the check: Σ log eig(V), V = RRᵀ + Q₂ᵀSQ₂ formed as cholesky.cpp does
            std::vector<double> V(static_cast<std::size_t>(r) * r, 0.0), Q2(static_cast<std::size_t>(m) * r);
            std::vector<double> L(static_cast<std::size_t>(n) * r, 0.0);
            for (int j = 0; j < r; ++j)
                for (int i = j; i < n; ++i) L[i + static_cast<std::size_t>(j) * n] = at(i, j);
            basinvol::blas::syrk('U', 'T', r, n, 1.0, L.data(), n, 0.0, V.data(), r);  // LᵀL = RᵀR
            dpotrf_("U", &r, V.data(), &r, &info, 1);
            check(info, "dpotrf of LᵀL");
            for (int j = 0; j < r; ++j)
                for (int i = 0; i < m; ++i) Q2[i + static_cast<std::size_t>(j) * m] = L[r + i + static_cast<std::size_t>(j) * n];
            basinvol::blas::trsm('R', 'U', 'N', 'N', m, r, 1.0, V.data(), r, Q2.data(), m);  // Q₂ = L₂R⁻¹
            std::vector<double> R = V, W(static_cast<std::size_t>(r) * r, 0.0), SQ(static_cast<std::size_t>(m) * r);
            for (int j = 0; j < r; ++j)
                for (int i = j + 1; i < r; ++i) R[i + static_cast<std::size_t>(j) * r] = 0;
            basinvol::blas::gemm('N', 'T', r, r, r, 1.0, R.data(), r, R.data(), r, 0.0, W.data(), r);  // RRᵀ
            basinvol::blas::gemm('N', 'N', m, r, m, 1.0, S.data(), m, Q2.data(), m, 0.0, SQ.data(), m);
            basinvol::blas::gemm('T', 'N', r, r, m, 1.0, Q2.data(), m, SQ.data(), m, 1.0, W.data(), r);
            std::vector<double> w(r);
            Workspace ws(r);
            dsyevd_("N", "L", &r, W.data(), &r, w.data(), ws.work.data(), &ws.lwork, ws.iwork.data(), &ws.liwork, &info,
                    1, 1);
            check(info, "dsyevd of V");
            ritz = 0;
            for (double e : w) ritz += std::log(e);
        }
    }
    if (r >= n || r == 0) return;
    std::printf("summarized at r = %d: log det V %.1f  (against Σ log eig(V): %.1e relative) | extremes: 60 H·x %.1f"
                "  20 (LᵀL)⁻¹·x %.1f\n",
                r, best[0], std::abs(logdet - ritz) / std::abs(ritz), best[1], best[2]);
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
    complement_steps(n, repeats, gram);
    return 0;
}
