#pragma once
// A Hessian as an operator: the seam between storage and solvers.
//
// It has Spectra's operator shape (Scalar, rows(), cols(), perform_op), so
// Spectra's solvers take it as is, and block operations for the blocked
// solvers: Y = H·X and the certificate ‖H − V·diag(θ)·Vᵀ‖_F, each one pass
// over H in column panels through BLAS-3. Float32-stored matrices stay
// float32 in memory; every product accumulates in double but the one
// residual_product says is formed in single precision.
#include <basinvol/hessian.hpp>

#include <Eigen/Dense>

#include <cstddef>

namespace basinvol {

class HessianOperator {
public:
    using Scalar = double;

    // Keeps a reference: `h` must outlive the operator.
    explicit HessianOperator(const Hessian& h);

    Eigen::Index rows() const { return n_; }
    Eigen::Index cols() const { return n_; }

    // y = H·x (Spectra's operator interface).
    void perform_op(const double* x, double* y) const;

    // Y = H·X, one pass over H.
    Eigen::MatrixXd apply(const Eigen::MatrixXd& X) const;

    // ‖H − V·diag(θ)·Vᵀ‖_F, one pass over the lower triangle of H. By Weyl's
    // inequality every eigenvalue of H not matched by θ lies within this of 0.
    double residual_frobenius(const Eigen::MatrixXd& V, const Eigen::VectorXd& theta) const;

    // ‖H − A·Bᵀ‖_F for A, B of n×k whose product is symmetric (V and V·diag(θ),
    // or L and L), one pass over the lower triangle of H, computed in double
    // and widened for its summation (the rounding of forming A·Bᵀ is the
    // row's rounding allowance, analyze.cpp).
    double residual_frobenius(const Eigen::MatrixXd& A, const Eigen::MatrixXd& B) const;

    // The residual E = H − A·Bᵀ (as residual_frobenius) and, in the same
    // pass, E·Q formed in single precision from E's lower triangle (by
    // symmetry), scaled by a power of two so that nothing overflows float,
    // with a bound on that product's error (solve/single.hpp). Throws
    // NumericError if the product is not finite all the same.
    struct Residual {
        double frobenius = 0;  // ≥ ‖E‖_F
        Eigen::MatrixXd EQ;    // E·Q, n×q
        double eq_error = 0;   // ≥ ‖EQ − E·Q‖_F, E as computed in double
    };
    Residual residual_product(const Eigen::MatrixXd& A, const Eigen::MatrixXd& B, const Eigen::MatrixXd& Q) const;

    // Column j of H as double.
    void column(Eigen::Index j, double* out) const;

    // diag(H) as double.
    Eigen::VectorXd diagonal() const;

    // Σ H_ii (exact for the stored values, summed in long double).
    double trace() const;

    std::size_t matvecs() const { return matvecs_; }
    std::size_t passes() const { return passes_; }

private:
    // Calls f(j0, width, panel) for column panels of H as double, panel n×width
    // with leading dimension n.
    template <class F>
    void for_each_panel(Eigen::Index width, F f) const;

    // The residual's pass; adds E·2^to_float·Q to W (n×q, float) when Q
    // (float) is given.
    double residual_pass(const Eigen::MatrixXd& A, const Eigen::MatrixXd& B, const Eigen::MatrixXf* Q,
                         Eigen::MatrixXf* W, int to_float) const;

    const Hessian& h_;
    Eigen::Index n_;
    mutable std::size_t matvecs_ = 0;
    mutable std::size_t passes_ = 0;
};

}  // namespace basinvol
