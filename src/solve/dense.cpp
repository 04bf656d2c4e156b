// Dense symmetric eigenvalues through LAPACK dsyevd or dsyevd_2stage
// (eigenvalues only). Eigen's SelfAdjointEigenSolver was measured 2–3x
// slower than LAPACK; which reduction is faster depends on the CPU and the
// thread count (docs/performance.md).
#include "blas.hpp"
#include "detail.hpp"

#include <basinvol/error.hpp>
#include <basinvol/solve/spectrum.hpp>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>

namespace basinvol {

// Measured (docs/performance.md), OpenBLAS 0.3.21. Its SkylakeX kernels
// (Cooperlake runs them too), one thread, each of two jobs side by side:
// two stages 36 ms against dsyevd's 33 at n = 800, 47 against 49 at 900, 61
// against 70 at 1000, 1.0 s against 1.8 s at 3000; two threads: 55 ms
// against 51 at 1000, 83 against 85 at 1200, 115 against 133 at 1400, 1.5 s
// against 2.4 s at 4000. Its Zen kernels: 62 ms against 48 at 1000 and 3.9 s
// against 6.2 s at 4000 on one thread (against 4.0–4.2 s for dsyevd on two).
long detail::two_stage_from(const char* core, int threads) {
    if (core && (std::strcmp(core, "SkylakeX") == 0 || std::strcmp(core, "Cooperlake") == 0))
        return threads == 1 ? 900 : 1400;
    return 4000;
}

std::size_t two_stage_workspace_bytes(std::size_t n) {
    return n >= 900 ? 128 * n * sizeof(double) : 0;
}

detail::Reduction detail::reduction_for(int n, int threads) {
    static const char* core = openblas_get_corename();
    return n >= two_stage_from(core, threads) ? Reduction::two_stage : Reduction::one_stage;
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

// dsyevd_2stage with JOBZ = 'N', its second stage on one thread: the
// matrix scaled into [√(safe min/ε), √(ε/safe min)] by its largest
// magnitude when outside it, reduced to a band of KD subdiagonals, the band
// to tridiagonal form, dsterf, the values scaled back.
void two_stage(double* a, int n, int lda, char uplo, double* w) {
    const char norm = 'M', vect = 'N', after_first = 'Y';
    int info = 0;
    std::vector<double> unused(1);
    const double anrm = dlansy_(&norm, &uplo, &n, a, &lda, unused.data(), 1, 1);
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
    const int band_spec = 1, minus = -1;
    const int kd = ilaenv2stage_(&band_spec, "DSYTRD_2STAGE", &vect, &n, &minus, &minus, &minus, 13, 1);
    if (kd < 1) check(-1, "ilaenv2stage", "gave no band width");
    const int ldab = kd + 1;
    std::vector<double> ab(static_cast<std::size_t>(ldab) * static_cast<std::size_t>(n)), tau(static_cast<std::size_t>(n));
    int lwork = -1;
    double query = 0;
    dsytrd_sy2sb_(&uplo, &n, &kd, a, &lda, ab.data(), &ldab, tau.data(), &query, &lwork, &info, 1);
    check(info, "dsytrd_sy2sb", "workspace query failed");
    lwork = static_cast<int>(query) + 1;
    std::vector<double> work(static_cast<std::size_t>(lwork));
    dsytrd_sy2sb_(&uplo, &n, &kd, a, &lda, ab.data(), &ldab, tau.data(), work.data(), &lwork, &info, 1);
    check(info, "dsytrd_sy2sb", "failed");
    std::vector<double> e(static_cast<std::size_t>(n));
    {
        std::optional<blas::ThreadCount> one;
        if (openblas_get_num_threads() > 1) one.emplace(1);
        int lhous = -1;
        double hquery = 0;
        lwork = -1;
        dsytrd_sb2st_(&after_first, &vect, &uplo, &n, &kd, ab.data(), &ldab, w, e.data(), &hquery, &lhous,
                      &query, &lwork, &info, 1, 1, 1);
        check(info, "dsytrd_sb2st", "workspace query failed");
        lhous = static_cast<int>(hquery) + 1;
        lwork = static_cast<int>(query) + 1;
        std::vector<double> hous(static_cast<std::size_t>(lhous));
        work.assign(static_cast<std::size_t>(lwork), 0.0);
        dsytrd_sb2st_(&after_first, &vect, &uplo, &n, &kd, ab.data(), &ldab, w, e.data(), hous.data(), &lhous,
                      work.data(), &lwork, &info, 1, 1, 1);
        check(info, "dsytrd_sb2st", "failed");
    }
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
    if (how == Reduction::two_stage) two_stage(a, n, lda, uplo, w.data());
    else one_stage(a, n, lda, uplo, w.data());
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
