#pragma once
// Spectra of Hessians: the full spectrum (dense LAPACK) or the part of it
// that matters (largest magnitudes, with a certificate for the rest).
#include <basinvol/hessian.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace basinvol {

enum class Method { automatic, dense, lanczos };

struct SolverStats {
    std::size_t matvecs = 0;   // matrix-vector products (a block of k counts k)
    std::size_t passes = 0;    // passes over the whole matrix
    std::size_t restarts = 0;  // solver restarts / growth steps
    double seconds = 0;
};

// The eigenvalues a solver found, and what is proven about the others.
struct Spectrum {
    std::size_t n = 0;
    std::vector<double> values;  // eigenvalues found, ascending
    bool complete = false;       // values holds all n eigenvalues
    // Every eigenvalue not in `values` has |λ| ≤ rest_bound (Weyl bound from
    // ‖H − VΛVᵀ‖_F); 0 when complete.
    double rest_bound = 0;
    std::string method;          // what ran: "dense", "lanczos", ...
    std::string note;            // why a fallback happened, if one did
    SolverStats stats;
};

// All n eigenvalues through LAPACK (dsyev_2stage, eigenvalues only). Consumes
// the matrix: the Hessian's storage is released or overwritten.
Spectrum dense_spectrum(Hessian& h);

}  // namespace basinvol
