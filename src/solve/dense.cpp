// Dense symmetric eigenvalues through LAPACK dsyevd or dsyevd_2stage
// (eigenvalues only). Eigen's SelfAdjointEigenSolver was measured 2–3x
// slower than LAPACK; which reduction is faster depends on the CPU and the
// thread count (docs/performance.md).
#include "blas.hpp"
#include "detail.hpp"

#include <basinvol/error.hpp>
#include <basinvol/solve/spectrum.hpp>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>

namespace basinvol {

namespace {
std::atomic<bool> owned{false};
std::atomic<int> shared{0};
}  // namespace

void blas::own_threads(bool owns) { owned = owns; }
bool blas::sole_user() { return owned && shared == 0; }
blas::Shared::Shared() { ++shared; }
blas::Shared::~Shared() { --shared; }

// Measured (docs/performance.md), OpenBLAS 0.3.21. Its SkylakeX kernels
// (Cooperlake runs them too), one thread, each of two jobs side by side:
// two stages 36 ms against dsyevd's 33 at n = 800, 47 against 49 at 900, 61
// against 70 at 1000, 1.0 s against 1.8 s at 3000. Two threads, the second
// stage on one: 55 ms against 51 at 1000, 83 against 85 at 1200, 115
// against 133 at 1400, 1.5 s against 2.4 s at 4000; both on two: 0.41 s
// against 0.37 at 2000, 2.1 s against 2.4 at 4000. Its Zen kernels: 62 ms
// against 48 at 1000 and 3.9 s against 6.2 s at 4000 on one thread (4.0–4.2 s
// for dsyevd on two; dsyevd_2stage on two 4.8–5.1 s).
long detail::two_stage_from(const char* core, int threads, bool band_on_one) {
    const bool skylake = core && (std::strcmp(core, "SkylakeX") == 0 || std::strcmp(core, "Cooperlake") == 0);
    if (threads == 1) return skylake ? 900 : 4000;
    if (band_on_one) return skylake ? 1400 : 4000;
    return skylake ? 4000 : LONG_MAX;
}

detail::Reduction detail::reduction_for(int n, int threads) {
    static const char* core = openblas_get_corename();
    const bool band_on_one = threads > 1 && blas::sole_user();
    if (n < two_stage_from(core, threads, band_on_one)) return Reduction::one_stage;
    return band_on_one ? Reduction::two_stage_band_on_one : Reduction::two_stage;
}

namespace {

// The two stages' band width and workspace at n (LAPACK's queries; nothing
// is read): the band (kd + 1)·n, τ and the off-diagonal n each, the
// Householder store and one work array for both stages.
struct TwoStageSizes {
    int kd = 0, lhous = 0, lwork = 0;
    std::size_t doubles(int n) const {
        return (std::size_t(kd) + 3) * std::size_t(n) + std::size_t(lhous) + std::size_t(lwork);
    }
};

TwoStageSizes two_stage_sizes(int n) {
    const char vect = 'N', uplo = 'L', after_first = 'Y';
    const int band_spec = 1, minus = -1;
    TwoStageSizes z;
    z.kd = ilaenv2stage_(&band_spec, "DSYTRD_2STAGE", &vect, &n, &minus, &minus, &minus, 13, 1);
    if (z.kd < 1) throw NumericError("LAPACK ilaenv2stage gave no band width for n = " + std::to_string(n));
    const int ldab = z.kd + 1, query = -1;
    int info = 0;
    double first = 0, second = 0, hous = 0, unused = 0;
    dsytrd_sy2sb_(&uplo, &n, &z.kd, &unused, &n, &unused, &ldab, &unused, &first, &query, &info, 1);
    if (info != 0) throw NumericError("LAPACK dsytrd_sy2sb workspace query failed: info = " + std::to_string(info));
    dsytrd_sb2st_(&after_first, &vect, &uplo, &n, &z.kd, &unused, &ldab, &unused, &unused, &hous, &query, &second,
                  &query, &info, 1, 1, 1);
    if (info != 0) throw NumericError("LAPACK dsytrd_sb2st workspace query failed: info = " + std::to_string(info));
    z.lhous = static_cast<int>(hous) + 1;
    z.lwork = static_cast<int>(std::max(first, second)) + 1;
    return z;
}

}  // namespace

std::size_t two_stage_workspace_bytes(std::size_t n) noexcept {
    // No CPU takes two stages under n = 900 (two_stage_from). Past 2^20 (a
    // matrix of 8 TB, which no budget passes) LAPACK's int sizes could
    // overflow: a generous 256·n stands in, as it does should a query fail.
    if (n < 900) return 0;
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

// dsyevd_2stage with JOBZ = 'N' (its second stage on one thread when
// `band_on_one`): the matrix scaled into [√(safe min/ε), √(ε/safe min)] by
// its largest magnitude when outside it, reduced to a band of kd
// subdiagonals, the band to tridiagonal form, dsterf, the values scaled
// back.
void two_stage(double* a, int n, int lda, char uplo, double* w, bool band_on_one) {
    const char norm = 'M', vect = 'N', after_first = 'Y';
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
    std::vector<double> ab(static_cast<std::size_t>(ldab) * N), tau(N), e(N), hous(static_cast<std::size_t>(z.lhous)),
        work(static_cast<std::size_t>(z.lwork));
    dsytrd_sy2sb_(&uplo, &n, &z.kd, a, &lda, ab.data(), &ldab, tau.data(), work.data(), &z.lwork, &info, 1);
    check(info, "dsytrd_sy2sb", "failed");
    {
        std::optional<blas::ThreadCount> one;
        if (band_on_one && openblas_get_num_threads() > 1) one.emplace(1);
        dsytrd_sb2st_(&after_first, &vect, &uplo, &n, &z.kd, ab.data(), &ldab, w, e.data(), hous.data(), &z.lhous,
                      work.data(), &z.lwork, &info, 1, 1, 1);
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
    if (how == Reduction::one_stage) one_stage(a, n, lda, uplo, w.data());
    else two_stage(a, n, lda, uplo, w.data(), how == Reduction::two_stage_band_on_one);
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
