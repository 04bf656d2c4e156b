// Dense symmetric eigenvalues through LAPACK dsyevd (eigenvalues only). At
// n = 4000 on this machine (Debian OpenBLAS 0.3.21, which runs its generic
// Prescott kernels on this CPU) dsyevd took 4.1–4.3 s and dsyev_2stage
// 5.1–5.4 s; Eigen's SelfAdjointEigenSolver was measured 2–3x slower than
// LAPACK (docs/performance.md).
#include "blas.hpp"

#include <basinvol/error.hpp>
#include <basinvol/solve/spectrum.hpp>

#include <algorithm>
#include <chrono>
#include <climits>
#include <string>

namespace basinvol {

Spectrum dense_spectrum(Hessian& h) {
    auto t0 = std::chrono::steady_clock::now();
    Spectrum s;
    s.n = h.info.n;
    s.method = "dense";
    if (h.info.n > static_cast<std::size_t>(INT_MAX)) throw NumericError("n is too large for LAPACK");
    if (h.is_f32()) {
        h.f64 = h.f32.cast<double>();
        h.f32.resize(0, 0);
    }
    const int n = static_cast<int>(h.info.n);
    s.values.assign(h.info.n, 0.0);
    if (n == 1) {
        s.values[0] = h.f64(0, 0);
    } else {
        int lwork = -1, liwork = -1, info = 0, iquery = 0;
        double query = 0;
        dsyevd_("N", "L", &n, h.f64.data(), &n, s.values.data(), &query, &lwork, &iquery, &liwork, &info, 1, 1);
        if (info != 0) throw NumericError("LAPACK dsyevd workspace query failed: info = " + std::to_string(info));
        lwork = static_cast<int>(query) + 1;
        liwork = std::max(1, iquery);
        std::vector<double> work(static_cast<std::size_t>(lwork));
        std::vector<int> iwork(static_cast<std::size_t>(liwork));
        dsyevd_("N", "L", &n, h.f64.data(), &n, s.values.data(), work.data(), &lwork, iwork.data(), &liwork, &info,
                1, 1);
        if (info != 0) throw NumericError("LAPACK dsyevd did not converge: info = " + std::to_string(info));
    }
    h.f64.resize(0, 0);
    std::sort(s.values.begin(), s.values.end());
    s.complete = true;
    s.stats.passes = 1;
    s.stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return s;
}

}  // namespace basinvol
