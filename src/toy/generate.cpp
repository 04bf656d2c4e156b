#include <basinvol/error.hpp>
#include <basinvol/toy/generate.hpp>

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
