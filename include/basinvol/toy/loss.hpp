#pragma once
// Non-quadratic toy losses: a small expression format the generator writes
// into the `toy_loss` attribute and the validator evaluates.
//
// Format (docs/toys.md): a sum of terms `c*xI^p`, where c is a number (default
// 1; a leading '-' or '+' joins the term), xI a coordinate (x0, x1, ...; `x`,
// `y`, `z`, `w` are x0..x3) and p an integer power 2..64 (default 1, which is
// refused: the origin must be a critical point). Spaces are ignored. Example:
// "x^2 + y^4", "0.5*x0^2 - 0.5*x1^2 + 3*x2^6".
//
// The loss is separable, L(x) = Σ_k c_k·x_{i_k}^{p_k}, so its Hessian at the
// origin is diagonal: H_ii = 2·Σ{c : the term c·x_i² }.
#include <Eigen/Dense>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace basinvol::toy {

struct Term {
    double coef = 1;
    std::size_t var = 0;
    int power = 2;
};

class PolyLoss {
public:
    // Parses the format above; n = 0 means one more than the largest
    // coordinate used. Throws UsageError naming the offending text.
    static PolyLoss parse(const std::string& text, std::size_t n = 0);

    std::size_t n() const { return n_; }
    const std::vector<Term>& terms() const { return terms_; }
    // The canonical text (parse(str()) gives the same loss).
    std::string str() const;

    // L(x) (L(0) = 0).
    double operator()(const double* x) const;
    // L restricted to coordinate i (the others at 0).
    double coordinate(std::size_t i, double x) const;

    // The Hessian at the origin (diagonal).
    Eigen::VectorXd hessian_diagonal() const;

    // Every term has c > 0 and an even power: L ≥ 0 and each coordinate's
    // part grows with |x|, so {L ≤ T} is a box-bounded set in the coordinates
    // that appear.
    bool nonnegative() const;
    // Coordinate i appears in some term.
    bool appears(std::size_t i) const;
    // The largest |x| with coordinate(i, x) ≤ T (nonnegative() and appears(i));
    // inf when that |x| is past 2^1022, where no box fits in double.
    double half_width(std::size_t i, double T) const;

    // The learning coefficient (volume exponent) of {L ≤ T} as T → 0 when it
    // is exact at every T: every coordinate appears in exactly one term,
    // c > 0, p even, so V(T) ∝ T^(Σ 1/p). Empty otherwise.
    std::optional<double> learning_coefficient() const;

private:
    std::vector<Term> terms_;
    std::size_t n_ = 0;
};

// Named toys. `loss` is in the format above; `n` may exceed the coordinates
// the loss uses (the others are exactly flat).
struct Preset {
    std::string name;
    std::string loss;
    std::size_t n;
    std::string about;
};
const std::vector<Preset>& presets();
// The preset called `name`, or nullptr.
const Preset* find_preset(const std::string& name);

}  // namespace basinvol::toy
