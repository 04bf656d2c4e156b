#pragma once
// Spectra of structured Hessians (docs/structured.md), computed from the
// structure without forming the n×n matrix:
//   blocks    the union of the members' spectra;
//   factor    H = s·GᵀG: the eigenvalues of the smaller Gram matrix s·GGᵀ
//             (m×m) or s·GᵀG (n×n), the other |n − m| exactly zero;
//   kron      H = s·(A ⊗ B): s·α_i·β_j over the eigenvalues of A and B;
//   diagonal  the values themselves.
// Dense members and Kronecker factors go through LAPACK like a dense Hessian.
#include <basinvol/hessian.hpp>
#include <basinvol/io/reader.hpp>
#include <basinvol/io/structure.hpp>
#include <basinvol/solve/spectrum.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace basinvol {

// Where one top-level block's eigenvalues sit in the spectrum's values.
struct BlockSpan {
    std::string name;             // the member's name (its last path component)
    std::size_t n = 0;            // its parameters
    std::size_t begin = 0, end = 0;  // values[begin, end); its n − (end − begin) others are exactly 0
};

struct StructuredSpectrum {
    Spectrum spectrum;               // values in block order; the n − k not listed are exactly 0
    std::vector<BlockSpan> blocks;   // one per top-level block (one in all for other structures)
    double frobenius = 0;            // ‖H‖_F, from the eigenvalues
    double asymmetry = 0;            // ‖H − Hᵀ‖_F of the stored parts (absolute), before symmetrizing
    double value_error = 0;          // each eigenvalue's computed error bound (Gram rounding, LAPACK)
};

// How a factor's Gram matrix is formed: in this process (no builder), or by
// a caller that spreads G over processes (basinvol-mpi: each rank reads a
// slab of G's longer dimension, the Gram is summed across ranks).
struct GramBuilder {
    virtual ~GramBuilder() = default;
    // K in double, k×k with k = min(m, n), its upper triangle filled: s·GGᵀ's
    // Gram GGᵀ when m ≤ n, else GᵀG; and ‖G‖_F² in g2. Throws InputError
    // (values, memory) naming FILE:/path/G as read_factor does.
    virtual Eigen::MatrixXd gram(const HessianInfo& info, const StructurePart& part, const ReadOptions& options,
                                 double& g2) const = 0;
};

// Reads a listed structured Hessian one part at a time and computes its
// spectrum (factors' Grams through `gram` when given). Throws InputError
// (layout, values, memory budget) or NumericError.
StructuredSpectrum structured_spectrum(const HessianInfo& info, const ReadOptions& options,
                                       const GramBuilder* gram = nullptr);

}  // namespace basinvol
