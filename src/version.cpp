#include <basinvol/version.hpp>

#include <Eigen/Core>
#include <Spectra/SymEigsSolver.h>
#include <hdf5.h>

namespace basinvol {

std::string version() { return BASINVOL_VERSION; }

nlohmann::ordered_json library_versions() {
    unsigned maj = 0, min = 0, rel = 0;
    H5get_libversion(&maj, &min, &rel);
    return {
        {"eigen", std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) + "." +
                      std::to_string(EIGEN_MINOR_VERSION)},
        {"hdf5", std::to_string(maj) + "." + std::to_string(min) + "." + std::to_string(rel)},
        {"spectra", BASINVOL_SPECTRA_VERSION},
        {"lapack", "OpenBLAS (Debian)"},
    };
}

}  // namespace basinvol
