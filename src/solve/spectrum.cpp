// Lanczos and certified partial spectra live here (see spectrum.hpp).
#include <basinvol/solve/spectrum.hpp>
