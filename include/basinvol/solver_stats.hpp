#pragma once
// What a solver spent: shared by the solvers (solve/spectrum.hpp) and the
// result they leave in a row (result.hpp).
#include <cstddef>

namespace basinvol {

struct SolverStats {
    std::size_t matvecs = 0;   // matrix-vector products (a block of k counts k)
    std::size_t passes = 0;    // passes over the whole matrix
    std::size_t restarts = 0;  // solver restarts / growth steps
    double seconds = 0;
};

}  // namespace basinvol
