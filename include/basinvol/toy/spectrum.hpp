#pragma once
// Toy Hessians with known answers: prescribed spectra (lists or recipes),
// seeded random rotations, and the exact dimension and log-volume that follow
// from the prescription alone (no eigen-solver involved).
#include <basinvol/names.hpp>

#include <Eigen/Dense>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace basinvol::toy {

// A seeded generator whose numbers are the same on every platform: the
// standard distributions are implementation-defined, so uniform and normal
// variates are made here from mt19937_64's (standardized) raw output.
class Rng {
public:
    explicit Rng(std::uint64_t seed) : g_(seed) {}
    double uniform();  // [0, 1), 53 random bits
    double normal();   // standard normal (Box–Muller)

private:
    std::mt19937_64 g_;
    bool has_spare_ = false;
    double spare_ = 0;
};

// A Haar-random n×n orthogonal matrix (QR of a Gaussian matrix, signs fixed).
Eigen::MatrixXd random_orthogonal(Eigen::Index n, std::uint64_t seed);

enum class Distribution {
    loguniform,  // log|λ| uniform between log lo and log hi
    clustered,   // `clusters` centres log-evenly spaced in [lo, hi], each value within ±spread of its centre
};

// A spectrum described by counts and bounds.
struct Recipe {
    std::size_t flat = 0;      // exact zeros
    std::size_t curved = 0;    // nonzero eigenvalues, |λ| in [lo, hi]
    std::size_t negative = 0;  // how many of the curved ones are negative
    double lo = 1e-2, hi = 1;
    Distribution distribution = Distribution::loguniform;
    std::size_t clusters = 3;
    double spread = 0.01;      // relative half-width of a cluster
    std::uint64_t seed = 1;
};

// The eigenvalues of a recipe (curved ones first, then the zeros). Throws
// UsageError on inconsistent counts or bounds.
std::vector<double> recipe_spectrum(const Recipe& recipe);

// Parses "2,2,0" (also accepts spaces). Throws UsageError.
std::vector<double> parse_list(const std::string& text);

enum class StoredType { float32, float64 };
const Names<StoredType>& stored_type_names();     // float32, float64
const Names<Distribution>& distribution_names();  // loguniform, clustered

// Machine epsilon of the stored type (float32: 2^-23, float64: 2^-52).
double stored_eps(StoredType type);

// The answer a prescribed spectrum implies, with basinvol's defaults
// (flat = exact zeros, --negatives abs):
//   log V = log ω_r + (r/2)·log(2T) − ½ Σ_{λ≠0} log|λ|
struct Expected {
    std::size_t n = 0, rank = 0, dim = 0, negative = 0;
    double log_volume = 0;
};
Expected expected_answer(const std::vector<double>& eigenvalues, double threshold);

// Refuses (UsageError) a spectrum whose nonzero eigenvalues are not far above
// the cut the stored type implies: every nonzero |λ| must be at least
// margin · max(n · ε(stored) · max|λ|, n · η/2) (η the stored type's
// smallest subnormal), so the expected rank is unambiguous after rounding to
// the stored type (which moves eigenvalues by about ε·‖H‖_F, and by up to
// n·η/2 among subnormal numbers).
void check_resolvable(const std::vector<double>& eigenvalues, StoredType type, double margin = 100);

// Q·diag(λ)·Qᵀ with Q = random_orthogonal(n, seed), symmetrized; diag(λ)
// when no seed is given.
Eigen::MatrixXd toy_matrix(const std::vector<double>& eigenvalues, std::optional<std::uint64_t> rotation_seed);

}  // namespace basinvol::toy
