// Dense symmetric eigenvalues through LAPACK dsyevd or the two stages
// dsyevd_2stage runs, the second basinvol's (band.cpp); eigenvalues only.
// Eigen's SelfAdjointEigenSolver was measured 2–3x slower than LAPACK;
// which reduction is faster depends on the CPU and the thread count
// (docs/performance.md).
#include "blas.hpp"
#include "detail.hpp"

#include <basinvol/error.hpp>
#include <basinvol/solve/spectrum.hpp>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <string>

namespace basinvol {

// Measured (docs/performance.md), OpenBLAS 0.3.21, the second stage
// basinvol's (band.cpp). Its SkylakeX kernels (Cooperlake runs them too),
// one thread: two stages 19.1 ms against dsyevd's 17.5 at n = 600, 27.7
// against 28.0 at 700, 32.5 against 35.7 at 750, 65 against 87 at 1000; two
// threads: 55 ms against 53 at 1000, 69 against 71 at 1100, 83 against 94 at
// 1200. Its Zen kernels, LAPACK's second stage: 62 ms against 48 at 1000 and
// 3.9 s against 6.2 s at 4000 on one thread; not measured since.
long detail::two_stage_from(const char* core, int threads) {
    const bool skylake = core && (std::strcmp(core, "SkylakeX") == 0 || std::strcmp(core, "Cooperlake") == 0);
    if (threads == 1) return skylake ? 750 : 4000;
    return skylake ? 1200 : 4000;
}

detail::Reduction detail::reduction_for(int n, int threads) {
    static const char* core = openblas_get_corename();
    return n < two_stage_from(core, threads) ? Reduction::one_stage : Reduction::two_stage;
}

namespace {

// The two stages' band width and workspace at n (LAPACK's queries; nothing
// is read): the band (kd + 1)·n, τ and the off-diagonal n each, and the
// larger of the first stage's work array and the second stage's band with
// room for its bulge (the one is freed before the other is taken).
struct TwoStageSizes {
    int kd = 0, lwork = 0;
    std::size_t doubles(int n) const {
        return (std::size_t(kd) + 3) * std::size_t(n) +
               std::max(std::size_t(lwork), detail::band_workspace_doubles(n, kd));
    }
};

TwoStageSizes two_stage_sizes(int n) {
    const char vect = 'N', uplo = 'L';
    const int band_spec = 1, minus = -1;
    TwoStageSizes z;
    z.kd = ilaenv2stage_(&band_spec, "DSYTRD_2STAGE", &vect, &n, &minus, &minus, &minus, 13, 1);
    if (z.kd < 1) throw NumericError("LAPACK ilaenv2stage gave no band width for n = " + std::to_string(n));
    const int ldab = z.kd + 1, query = -1;
    int info = 0;
    double first = 0, unused = 0;
    dsytrd_sy2sb_(&uplo, &n, &z.kd, &unused, &n, &unused, &ldab, &unused, &first, &query, &info, 1);
    if (info != 0) throw NumericError("LAPACK dsytrd_sy2sb workspace query failed: info = " + std::to_string(info));
    z.lwork = static_cast<int>(first) + 1;
    return z;
}

}  // namespace

std::size_t two_stage_workspace_bytes(std::size_t n) noexcept {
    // No CPU takes two stages under n = 750 (two_stage_from). Past 2^20 (a
    // matrix of 8 TB, which no budget passes) LAPACK's int sizes could
    // overflow: a generous 256·n stands in, as it does should a query fail.
    if (n < 750) return 0;
    const std::size_t generous = 256 * sizeof(double) * n;
    if (n > (std::size_t(1) << 20)) return generous;
    try {
        return two_stage_sizes(static_cast<int>(n)).doubles(static_cast<int>(n)) * sizeof(double);
    } catch (const std::exception&) {
        return generous;
    }
}

std::vector<double> detail::symmetric_eigenvalues(double* a, int n, int lda, char uplo) {
    return symmetric_eigenvalues(a, n, lda, uplo, reduction_for(n, openblas_get_num_threads()));
}

namespace {

void check(int info, const char* routine, const char* what) {
    if (info != 0) throw NumericError(std::string("LAPACK ") + routine + " " + what + ": info = " + std::to_string(info));
}

void one_stage(double* a, int n, int lda, char uplo, double* w) {
    const char jobz = 'N';
    int lwork = -1, liwork = -1, info = 0, iquery = 0;
    double query = 0;
    dsyevd_(&jobz, &uplo, &n, a, &lda, w, &query, &lwork, &iquery, &liwork, &info, 1, 1);
    check(info, "dsyevd", "workspace query failed");
    lwork = static_cast<int>(query) + 1;
    liwork = std::max(1, iquery);
    std::vector<double> work(static_cast<std::size_t>(lwork));
    std::vector<int> iwork(static_cast<std::size_t>(liwork));
    dsyevd_(&jobz, &uplo, &n, a, &lda, w, work.data(), &lwork, iwork.data(), &liwork, &info, 1, 1);
    check(info, "dsyevd", "did not converge");
}

// dsyevd_2stage with JOBZ = 'N', its second stage basinvol's: the matrix
// scaled into [√(safe min/ε), √(ε/safe min)] by its largest magnitude when
// outside it, reduced to a band of kd subdiagonals, the band to tridiagonal
// form, dsterf, the values scaled back.
void two_stage(double* a, int n, int lda, char uplo, double* w) {
    const char norm = 'M';
    int info = 0;
    double unused = 0;
    const double anrm = dlansy_(&norm, &uplo, &n, a, &lda, &unused, 1, 1);
    const double small = dlamch_("S", 1) / dlamch_("P", 1), rmin = std::sqrt(small), rmax = std::sqrt(1 / small);
    double sigma = 1;
    if (anrm > 0 && anrm < rmin) sigma = rmin / anrm;
    else if (anrm > rmax) sigma = rmax / anrm;
    if (sigma != 1) {
        const int zero = 0;
        const double one = 1;
        dlascl_(&uplo, &zero, &zero, &one, &sigma, &n, &n, a, &lda, &info, 1);
        check(info, "dlascl", "failed");
    }
    const TwoStageSizes z = two_stage_sizes(n);
    const int ldab = z.kd + 1;
    const std::size_t N = static_cast<std::size_t>(n);
    std::vector<double> ab(static_cast<std::size_t>(ldab) * N), tau(N), e(N), work(static_cast<std::size_t>(z.lwork));
    dsytrd_sy2sb_(&uplo, &n, &z.kd, a, &lda, ab.data(), &ldab, tau.data(), work.data(), &z.lwork, &info, 1);
    check(info, "dsytrd_sy2sb", "failed");
    std::vector<double>().swap(work);  // freed (not only emptied) before the second stage takes its band
    detail::band_to_tridiagonal(uplo, n, z.kd, ab.data(), ldab, w, e.data());
    dsterf_(&n, w, e.data(), &info);
    check(info, "dsterf", "did not converge");
    if (sigma != 1)
        for (int i = 0; i < n; ++i) w[i] *= 1 / sigma;  // as dsyevd_2stage scales back
}

}  // namespace

std::vector<double> detail::symmetric_eigenvalues(double* a, int n, int lda, char uplo, Reduction how) {
    std::vector<double> w(static_cast<std::size_t>(std::max(n, 0)), 0.0);
    if (n == 0) return w;
    if (n == 1) {
        w[0] = a[0];
        return w;
    }
    if (how == Reduction::one_stage) one_stage(a, n, lda, uplo, w.data());
    else two_stage(a, n, lda, uplo, w.data());
    std::sort(w.begin(), w.end());
    return w;
}

Spectrum dense_spectrum(Hessian& h) {
    const auto t0 = detail::Clock::now();
    Spectrum s;
    s.n = h.info.n;
    s.method = "dense";
    if (h.info.n > static_cast<std::size_t>(INT_MAX)) throw NumericError("n is too large for LAPACK");
    Eigen::MatrixXd a = h.release_f64();  // LAPACK overwrites it
    const int n = static_cast<int>(h.info.n);
    s.values = detail::symmetric_eigenvalues(a.data(), n, n, 'L');
    s.complete = true;
    s.stats.passes = 1;
    s.stats.seconds = detail::since(t0);
    return s;
}

}  // namespace basinvol
