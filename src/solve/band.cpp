// A symmetric band to tridiagonal form by bulge chasing, values only: the
// second of the two stages (dense.cpp), in place of LAPACK's dsytrd_sb2st.
//
// The arithmetic is dsytrd_sb2st's (Haidar, Ltaief and Dongarra's
// algorithm, as LAPACK runs it without vectors): sweep s makes column s
// tridiagonal with one reflector over rows s+1..s+kd, applied to the
// diagonal block from both sides; the bulge this leaves below is chased
// down the band, kd rows a step, by a reflector applied to the block from
// the right, a new one that clears the block's first column applied from
// the left, and the new one applied to the next diagonal block from both
// sides. Each step is a two-sided orthogonal similarity, so the
// tridiagonal is similar to the band up to a backward error of a modest
// multiple of ε·‖A‖, as LAPACK's is (tests/test_dense.cpp holds the two
// to each other within twice LAPACK's bound). What differs is the cost:
// LAPACK applies each reflector through BLAS calls on vectors of length kd
// (32), where OpenBLAS spends more on each call than on its arithmetic
// (dsyr2 and dger as a daxpy per column); here each step is one loop nest
// over a block held in cache, vectorized for the CPU it runs on. It calls
// no BLAS, so it never runs on more than the calling thread
// (docs/performance.md).
#include "detail.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <vector>

// Each kernel is compiled for AVX-512, AVX2 and the baseline, picked at
// load time by the CPU (GCC's function multiversioning, which needs x86-64
// and ELF's indirect functions; elsewhere, and with clang, whose fuzzing
// build need not be fast, the baseline alone). The AVX-512
// clones contract products and sums into fused multiply-adds, the others
// do not: as with OpenBLAS's kernels, the last bits of a value depend on
// the CPU, within the same bound.
#if defined(__x86_64__) && defined(__ELF__) && defined(__GNUC__) && !defined(__clang__)
#define BASINVOL_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BASINVOL_SIMD_CLONES
#endif
#if defined(__clang__)
// The fuzzing build's -O1 under the sanitizers leaves the `omp simd` loops scalar.
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

namespace basinvol::detail {

namespace {

// C := H·C·H for H = I − τ·v·vᵀ (v[0] = 1), C symmetric m×m with its lower
// triangle held (leading dimension ldc); w is m of scratch.
BASINVOL_SIMD_CLONES void reflect_both_sides(int m, const double* v, double tau, double* c, int ldc, double* w) {
    if (tau == 0) return;
    for (int i = 0; i < m; ++i) w[i] = 0;
    for (int j = 0; j < m; ++j) {  // w = C·v from the lower triangle
        const double* cj = c + static_cast<std::ptrdiff_t>(j) * ldc;
        const double vj = v[j];
        double below = 0;
        w[j] += cj[j] * vj;
#pragma omp simd reduction(+ : below)
        for (int i = j + 1; i < m; ++i) {
            w[i] += cj[i] * vj;
            below += cj[i] * v[i];
        }
        w[j] += below;
    }
    double dot = 0;  // w = τ·C·v − ½·τ²·(vᵀC·v)·v, then C −= v·wᵀ + w·vᵀ
#pragma omp simd reduction(+ : dot)
    for (int i = 0; i < m; ++i) {
        w[i] *= tau;
        dot += w[i] * v[i];
    }
    const double alpha = -0.5 * tau * dot;
    for (int i = 0; i < m; ++i) w[i] += alpha * v[i];
    for (int j = 0; j < m; ++j) {
        double* cj = c + static_cast<std::ptrdiff_t>(j) * ldc;
        const double vj = v[j], wj = w[j];
        for (int i = j; i < m; ++i) cj[i] -= v[i] * wj + w[i] * vj;
    }
}

// C := C·H for C m×n: w = C·v, C −= τ·w·vᵀ. M > 0 fixes m = M at compile
// time (the blocks of kd = 32 rows, the common band width): w is then its
// own, in registers; else `scratch` (m).
template <int M>
BASINVOL_SIMD_CLONES void reflect_right(int m_, int n, const double* v, double tau, double* c, int ldc,
                                        double* scratch) {
    if (tau == 0) return;
    const int m = M > 0 ? M : m_;
    double own[M > 0 ? M : 1];
    double* w = M > 0 ? own : scratch;
    for (int i = 0; i < m; ++i) w[i] = 0;
    for (int j = 0; j < n; ++j) {
        const double* cj = c + static_cast<std::ptrdiff_t>(j) * ldc;
        const double vj = v[j];
        for (int i = 0; i < m; ++i) w[i] += cj[i] * vj;
    }
    for (int j = 0; j < n; ++j) {
        double* cj = c + static_cast<std::ptrdiff_t>(j) * ldc;
        const double t = tau * v[j];
        for (int i = 0; i < m; ++i) cj[i] -= w[i] * t;
    }
}

// C := H·C for C m×n, column by column: C(:, j) −= τ·(vᵀC(:, j))·v; M as
// for reflect_right.
template <int M>
BASINVOL_SIMD_CLONES void reflect_left(int m_, int n, const double* v, double tau, double* c, int ldc) {
    if (tau == 0) return;
    const int m = M > 0 ? M : m_;
    for (int j = 0; j < n; ++j) {
        double* cj = c + static_cast<std::ptrdiff_t>(j) * ldc;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (int i = 0; i < m; ++i) s += cj[i] * v[i];
        const double t = tau * s;
        for (int i = 0; i < m; ++i) cj[i] -= v[i] * t;
    }
}

// LAPACK's dlarfg: the reflector H = I − τ·v·vᵀ, v = [1; x'], with
// H·[alpha; x] = [beta; 0]; alpha becomes beta and x becomes x'. τ = 0 (H
// = I) when x is zero. The norm is taken scaled by the largest |x_i|, so
// that squares neither overflow nor underflow; a beta under the safe
// minimum is recomputed from x, alpha scaled up, as dlarfg does.
double reflector(int n, double& alpha, double* x) {
    if (n <= 1) return 0;
    const int k = n - 1;
    auto norm = [&] {
        double big = 0, s = 0;
        for (int i = 0; i < k; ++i) big = std::max(big, std::abs(x[i]));
        if (big == 0) return 0.0;
        if (big >= DBL_MIN) {  // 1/big is finite: a product in place of each division
            const double inv = 1 / big;
            for (int i = 0; i < k; ++i) s += (x[i] * inv) * (x[i] * inv);
        } else {
            for (int i = 0; i < k; ++i) s += (x[i] / big) * (x[i] / big);
        }
        return big * std::sqrt(s);
    };
    double xnorm = norm();
    if (xnorm == 0) return 0;
    double beta = -std::copysign(std::hypot(alpha, xnorm), alpha);
    const double safmin = DBL_MIN / (DBL_EPSILON / 2), rsafmn = 1 / safmin;
    int scaled = 0;
    if (std::abs(beta) < safmin) {
        do {
            ++scaled;
            for (int i = 0; i < k; ++i) x[i] *= rsafmn;
            beta *= rsafmn;
            alpha *= rsafmn;
        } while (std::abs(beta) < safmin && scaled < 20);
        xnorm = norm();
        beta = -std::copysign(std::hypot(alpha, xnorm), alpha);
    }
    const double tau = (beta - alpha) / beta;
    const double to_v = 1 / (alpha - beta);
    for (int i = 0; i < k; ++i) x[i] *= to_v;
    for (int j = 0; j < scaled; ++j) beta *= safmin;
    alpha = beta;
    return tau;
}

}  // namespace

std::size_t band_workspace_doubles(int n, int kd) {
    return (2 * static_cast<std::size_t>(kd) + 1) * static_cast<std::size_t>(std::max(n, 0)) +
           3 * (static_cast<std::size_t>(kd) + 1);
}

void band_to_tridiagonal(char uplo, int n, int kd, const double* ab, int ldab, double* d, double* e) {
    if (n <= 0) return;
    const auto stored = static_cast<std::size_t>(kd);  // AB's rows less one, however many subdiagonals n allows
    kd = std::max(0, std::min(kd, n - 1));
    // The band in W, lower, with kd more subdiagonals for the bulge:
    // W[(i − j) + j·ldw] = A(i, j) for 0 ≤ i − j ≤ 2·kd. Seen with leading
    // dimension ldw − 1, any block on or below the diagonal is an ordinary
    // column-major matrix (block).
    const int ldw = 2 * kd + 1, ld = ldw - 1;
    const auto N = static_cast<std::size_t>(n), LDW = static_cast<std::size_t>(ldw),
               LDAB = static_cast<std::size_t>(ldab), KD = static_cast<std::size_t>(kd);
    std::vector<double> W(LDW * N, 0.0), v(KD + 1), next(KD + 1), w(KD + 1);
    for (std::size_t j = 0; j < N; ++j)
        for (std::size_t i = 0; i <= KD && j + i < N; ++i)  // A(j + i, j): lower AB(i, j), upper AB(kd − i, j + i)
            W[i + j * LDW] = uplo == 'L' ? ab[i + j * LDAB] : ab[(stored - i) + (j + i) * LDAB];
    auto block = [&](int row, int col) {
        return W.data() + static_cast<std::size_t>(row - col) + static_cast<std::size_t>(col) * LDW;
    };
    for (int s = 0; kd > 1 && s + 2 < n; ++s) {
        // Column s below its first subdiagonal, cleared by a reflector over rows st..ed.
        int st = s + 1, ed = std::min(s + kd, n - 1), m = ed - st + 1;
        double* col = block(st, s);
        v[0] = 1;
        for (int i = 1; i < m; ++i) v[i] = col[i], col[i] = 0;
        double tau = reflector(m, col[0], v.data() + 1);
        reflect_both_sides(m, v.data(), tau, block(st, st), ld, w.data());
        // The bulge, chased down kd rows a step.
        for (int j1 = ed + 1; j1 < n; j1 = ed + 1) {
            const int j2 = std::min(ed + kd, n - 1), width = ed - st + 1;
            m = j2 - j1 + 1;
            double* c = block(j1, st);  // rows j1..j2, columns st..ed
            if (m == 32) reflect_right<32>(m, width, v.data(), tau, c, ld, w.data());
            else reflect_right<0>(m, width, v.data(), tau, c, ld, w.data());
            next[0] = 1;
            for (int i = 1; i < m; ++i) next[i] = c[i], c[i] = 0;
            tau = reflector(m, c[0], next.data() + 1);
            if (m == 32) reflect_left<32>(m, width - 1, next.data(), tau, c + ld, ld);
            else reflect_left<0>(m, width - 1, next.data(), tau, c + ld, ld);
            std::swap(v, next);
            st = j1;
            ed = j2;
            reflect_both_sides(m, v.data(), tau, block(st, st), ld, w.data());
        }
    }
    for (std::size_t j = 0; j < N; ++j) d[j] = W[j * LDW];
    for (std::size_t j = 0; j + 1 < N; ++j) e[j] = kd > 0 ? W[1 + j * LDW] : 0.0;
}

}  // namespace basinvol::detail
