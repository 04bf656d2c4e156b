#pragma once
// A toy Hessian with its exact answers as attributes (the generator's core;
// tools/toy/main.cpp is the command line around it).
#include <basinvol/hessian.hpp>
#include <basinvol/toy/loss.hpp>
#include <basinvol/toy/spectrum.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace basinvol::toy {

struct ToySpec {
    std::vector<double> eigenvalues;        // the spectrum (ignored when `loss` is set)
    std::optional<PolyLoss> loss;           // a non-quadratic toy: its Hessian at 0 is the spectrum
    std::string preset;                     // the preset's name, when it came from one
    std::string recipe;                     // how the spectrum was made (kept as `toy_recipe`)
    std::optional<std::uint64_t> rotation;  // seed of the random rotation
    StoredType type = StoredType::float64;
    double threshold = 1;                   // loss_threshold
    std::string name;
};

struct Toy {
    Eigen::MatrixXd matrix;
    Attributes attrs;
    Expected expected;
};

// Builds the matrix and its attributes:
//   loss_threshold, name, expected_rank, expected_dim, expected_negative,
//   expected_log_volume (from the prescribed spectrum, docs/toys.md),
//   toy_rotation_seed, toy_recipe, and for losses toy_loss, toy_preset and,
//   where it is exact, expected_learning_coefficient.
// Throws UsageError for a spectrum whose rank the stored type cannot resolve.
Toy make_toy(const ToySpec& spec);

}  // namespace basinvol::toy
