#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace basinvol {

// basinvol's version, "MAJOR.MINOR.PATCH".
std::string version();

// Versions of the libraries basinvol was built with and runs against
// (Eigen, Spectra, HDF5, LAPACK), for the JSON context block.
nlohmann::ordered_json library_versions();

}  // namespace basinvol
