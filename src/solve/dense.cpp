// Dense symmetric eigenvalues through LAPACK dsyevd (eigenvalues only). At
// n = 4000 on this machine (Debian OpenBLAS 0.3.21, which runs its generic
// Prescott kernels on this CPU) dsyevd took 4.1–4.3 s and dsyev_2stage
// 5.1–5.4 s; Eigen's SelfAdjointEigenSolver was measured 2–3x slower than
// LAPACK (docs/performance.md).
#include "blas.hpp"
#include "detail.hpp"

#include <basinvol/error.hpp>
#include <basinvol/solve/spectrum.hpp>

#include <algorithm>
#include <climits>
#include <string>

namespace basinvol {

std::vector<double> detail::symmetric_eigenvalues(double* a, int n, int lda, char uplo) {
    std::vector<double> w(static_cast<std::size_t>(std::max(n, 0)), 0.0);
    if (n == 0) return w;
    if (n == 1) {
        w[0] = a[0];
        return w;
    }
    const char jobz = 'N';
    int lwork = -1, liwork = -1, info = 0, iquery = 0;
    double query = 0;
    dsyevd_(&jobz, &uplo, &n, a, &lda, w.data(), &query, &lwork, &iquery, &liwork, &info, 1, 1);
    if (info != 0) throw NumericError("LAPACK dsyevd workspace query failed: info = " + std::to_string(info));
    lwork = static_cast<int>(query) + 1;
    liwork = std::max(1, iquery);
    std::vector<double> work(static_cast<std::size_t>(lwork));
    std::vector<int> iwork(static_cast<std::size_t>(liwork));
    dsyevd_(&jobz, &uplo, &n, a, &lda, w.data(), work.data(), &lwork, iwork.data(), &liwork, &info, 1, 1);
    if (info != 0) throw NumericError("LAPACK dsyevd did not converge: info = " + std::to_string(info));
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
