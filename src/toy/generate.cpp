#include <basinvol/error.hpp>
#include <basinvol/toy/generate.hpp>

#include <cmath>
#include <string>

namespace basinvol::toy {

Toy make_toy(const ToySpec& spec) {
    std::vector<double> eigs = spec.eigenvalues;
    if (spec.loss) {
        Eigen::VectorXd h = spec.loss->hessian_diagonal();
        eigs.assign(h.data(), h.data() + h.size());
    }
    if (eigs.empty()) throw UsageError("a toy needs at least one eigenvalue");
    check_resolvable(eigs, spec.type);
    Toy t;
    t.expected = expected_answer(eigs, spec.threshold);
    t.matrix = toy_matrix(eigs, spec.rotation);
    // Near DBL_MAX a rotation's sums, or ‖H‖_F itself, pass float64's range:
    // basinvol would refuse the file, so no toy is written.
    const double top = t.matrix.cwiseAbs().maxCoeff();  // (NaN when an entry is)
    if (!t.matrix.allFinite() || (top > 0 && !std::isfinite(top * (t.matrix / top).norm())))
        throw UsageError(std::string(t.matrix.allFinite() ? "the toy's norm ‖H‖_F passes" : "the toy's entries pass") +
                         " float64's range (1.8e308): scale its eigenvalues down");
    Attributes& a = t.attrs;
    a.loss_threshold = spec.threshold;
    if (!spec.name.empty()) a.name = spec.name;
    a.numbers["expected_rank"] = static_cast<double>(t.expected.rank);
    a.numbers["expected_dim"] = static_cast<double>(t.expected.dim);
    a.numbers["expected_negative"] = static_cast<double>(t.expected.negative);
    a.numbers["expected_log_volume"] = t.expected.log_volume;
    if (spec.rotation) a.numbers["toy_rotation_seed"] = static_cast<double>(*spec.rotation);
    if (!spec.recipe.empty()) a.strings["toy_recipe"] = spec.recipe;
    if (spec.loss) {
        a.strings["toy_loss"] = spec.loss->str();
        a.numbers["toy_n"] = static_cast<double>(spec.loss->n());
        if (!spec.preset.empty()) a.strings["toy_preset"] = spec.preset;
        if (auto lc = spec.loss->learning_coefficient()) a.numbers["expected_learning_coefficient"] = *lc;
    }
    return t;
}

}  // namespace basinvol::toy
