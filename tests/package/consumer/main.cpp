// Measures L = x² + y² in R³ through the installed library: dimension 1,
// log V = log(π) at T = 1. Exits 0 when that is what it gets.
#include <basinvol/analyze.hpp>
#include <basinvol/version.hpp>

#include <cmath>
#include <cstdio>

int main() {
    Eigen::MatrixXd h = Eigen::Vector3d(2, 2, 0).asDiagonal();
    basinvol::Row r = basinvol::analyze_hessian(basinvol::make_hessian(h), {});
    std::printf("basinvol %s: dim %zu, log_volume %.15g\n", basinvol::version().c_str(), r.dim, r.log_volume);
    return r.ok && r.dim == 1 && std::abs(r.log_volume - std::log(M_PI)) < 1e-12 ? 0 : 1;
}
