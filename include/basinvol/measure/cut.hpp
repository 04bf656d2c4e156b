#pragma once
// Where the spectrum is cut into flat (|λ| ≤ tol) and curved (|λ| > tol)
// directions, and how sure that cut is. The long form is in docs/method.md.
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace basinvol {

enum class CutRule {
    automatic,  // dtype where a clear gap straddles it, else the largest gap between the floor and dtype
    dtype,      // tol = max|λ| · n · ε(stored type), as numpy.linalg.matrix_rank
    gap,        // the largest log-gap of the spectrum above the floor
};

struct CutOptions {
    CutRule rule = CutRule::automatic;
    std::optional<double> rtol;  // explicit: tol = rtol · max|λ|
    std::optional<double> atol;  // explicit: tol = atol (with rtol: the larger)
    double min_gap = 1.0;        // decades; a smaller gap makes the rank ambiguous
};

// What is known of a spectrum's magnitudes.
struct Magnitudes {
    std::vector<double> known;  // |λ| found, sorted descending
    std::size_t n = 0;          // size of the matrix
    double rest_bound = 0;      // the n − known.size() others have |λ| ≤ rest_bound
    double stored_eps = 0;      // ε of the stored type
    double frobenius = 0;       // ‖H‖_F
};

struct Cut {
    double tol = 0;              // |λ| ≤ tol is flat
    std::optional<double> gap;   // log10(smallest kept / largest dropped); empty = unbounded
    double floor = 0;            // ε(stored)·‖H‖_F: below it eigenvalues are rounding noise
    std::string rule;            // "dtype", "gap", "atol", "rtol"
    bool ambiguous = false;      // gap < min_gap
    bool below_floor = false;    // an explicit tol under the floor
    bool certified = true;       // every unknown eigenvalue is provably ≤ tol
};

// Chooses the cut. Throws UsageError on negative rtol/atol/min_gap.
Cut choose_cut(const Magnitudes& m, const CutOptions& options);

}  // namespace basinvol
