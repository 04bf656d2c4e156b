#include "blas.hpp"
#include "single.hpp"
#include "../huge_pages.hpp"

#include <basinvol/error.hpp>
#include <basinvol/solve/operator.hpp>

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>

namespace basinvol {

namespace {
// Panel width for apply's float32 → double conversion and for the residual
// pass's buffers (−A·Bᵀ in double, the residual in float): n×256 doubles
// stays small next to the matrix (24.6 MB at n = 12000) and keeps GEMM
// efficient.
constexpr Eigen::Index panel_width = 256;
constexpr double eps = std::numeric_limits<double>::epsilon();
}  // namespace

HessianOperator::HessianOperator(const Hessian& h) : h_(h), n_(static_cast<Eigen::Index>(h.info.n)) {
    if (n_ > INT_MAX / 2) throw NumericError("n is too large for BLAS");
    if (h.empty()) throw NumericError("the Hessian holds no matrix");
}

template <class F>
void HessianOperator::for_each_panel(Eigen::Index width, F f) const {
    ++passes_;
    if (!h_.is_f32()) {
        for (Eigen::Index j0 = 0; j0 < n_; j0 += width)
            f(j0, std::min(width, n_ - j0), h_.f64().data() + j0 * n_);
        return;
    }
    Eigen::MatrixXd buf(n_, std::min(width, n_));
    for (Eigen::Index j0 = 0; j0 < n_; j0 += width) {
        const Eigen::Index w = std::min(width, n_ - j0);
        buf.leftCols(w) = h_.f32().middleCols(j0, w).cast<double>();
        f(j0, w, buf.data());
    }
}

void HessianOperator::perform_op(const double* x, double* y) const {
    ++matvecs_;
    Eigen::Map<const Eigen::VectorXd> xv(x, n_);
    Eigen::Map<Eigen::VectorXd> yv(y, n_);
    if (!h_.is_f32()) {
        yv.noalias() = h_.f64() * xv;
        return;
    }
    // H is symmetric: y_j = H(:, j)·x, one column at a time, accumulated in double.
    for (Eigen::Index j = 0; j < n_; ++j) {
        const float* col = h_.f32().data() + j * n_;
        double s = 0;
        for (Eigen::Index i = 0; i < n_; ++i) s += static_cast<double>(col[i]) * x[i];
        y[j] = s;
    }
}

Eigen::MatrixXd HessianOperator::apply(const Eigen::MatrixXd& X) const {
    const int n = static_cast<int>(n_), k = static_cast<int>(X.cols());
    Eigen::MatrixXd Y(n_, X.cols());
    detail::advise_huge_pages(Y);
    matvecs_ += static_cast<std::size_t>(k);
    if (!h_.is_f32()) {
        ++passes_;
        blas::gemm('N', 'N', n, k, n, 1.0, h_.f64().data(), n, X.data(), n, 0.0, Y.data(), n);
        return Y;
    }
    // Y = Σ_J H(:, J)·X(J, :)
    for_each_panel(panel_width, [&](Eigen::Index j0, Eigen::Index w, const double* panel) {
        blas::gemm('N', 'N', n, k, static_cast<int>(w), 1.0, panel, n, X.data() + j0, n, j0 == 0 ? 0.0 : 1.0,
                   Y.data(), n);
    });
    return Y;
}

double HessianOperator::residual_frobenius(const Eigen::MatrixXd& V, const Eigen::VectorXd& theta) const {
    return residual_pass(V, V * theta.asDiagonal(), nullptr, nullptr, 0);
}

double HessianOperator::residual_frobenius(const Eigen::MatrixXd& A, const Eigen::MatrixXd& B) const {
    return residual_pass(A, B, nullptr, nullptr, 0);
}

HessianOperator::Residual HessianOperator::residual_product(const Eigen::MatrixXd& A, const Eigen::MatrixXd& B,
                                                            const Eigen::MatrixXd& Q) const {
    // E is rounded to float scaled by 2⁻ᵉ, with 2ᵉ ≥ ‖H‖_F + ‖A‖_F·‖B‖_F ≥ ‖E‖_F
    // (exponents added: the product of the norms may pass double's range), so
    // that no scaled entry or sum can overflow float (single.hpp).
    const int e = detail::ScaleBy::clamp(1 + std::max(detail::single_exponent(h_.frobenius()),
                                                      detail::single_exponent(A.blueNorm()) +
                                                          detail::single_exponent(B.blueNorm())));
    Residual out;
    Eigen::MatrixXf W;
    {
        Eigen::MatrixXf Qf(n_, Q.cols());
        detail::advise_huge_pages(Qf);
        Qf = Q.cast<float>();
        W.resize(n_, Q.cols());
        detail::advise_huge_pages(W);
        W.setZero();
        out.frobenius = residual_pass(A, B, &Qf, &W, -e);
        matvecs_ += static_cast<std::size_t>(Q.cols());
    }
    out.EQ.resize(n_, Q.cols());
    detail::advise_huge_pages(out.EQ);
    out.EQ = W.cast<double>().unaryExpr(detail::ScaleBy(e));
    if (!out.EQ.allFinite()) throw NumericError("the residual's product with Q is not finite");
    // Each entry of E·Q sums n products; ‖E‖_F ≤ frobenius.
    const double n = static_cast<double>(n_);
    out.eq_error = detail::ScaleBy(e)(detail::single_product_error(n, n * static_cast<double>(Q.cols()),
                                                                   detail::ScaleBy(-e)(out.frobenius), Q.norm()));
    return out;
}

double HessianOperator::residual_pass(const Eigen::MatrixXd& A, const Eigen::MatrixXd& B, const Eigen::MatrixXf* Q,
                                      Eigen::MatrixXf* W, int to_float) const {
    const int n = static_cast<int>(n_), k = static_cast<int>(A.cols());
    // Scaled by ‖H‖_F so that squares of entries near 1e±300 stay finite.
    const double scale = h_.frobenius() > 0 ? h_.frobenius() : 1.0;
    const Eigen::Index width = std::min(panel_width, n_);
    const bool product = Q && Q->cols() > 0;
    // Each column panel J = [j0, j0 + w) is read once, as its lower trapezoid
    // H(j0:, J): C gets −A(j0:, :)·B(J, :)ᵀ (no C when k = 0), then one pass
    // down each column forms the residual R = H(j0:, J) + C (the stored
    // values widened to double), sums its squares and, for E·Q, rounds
    // R·2^to_float into F.
    Eigen::MatrixXd C(k > 0 ? n_ : 0, k > 0 ? width : 0);
    Eigen::MatrixXf F(product ? n_ : 0, product ? width : 0);
    Eigen::VectorXd r(n_);
    detail::advise_huge_pages(C);
    detail::advise_huge_pages(F);
    const detail::ScaleBy by(to_float);
    ++passes_;
    long double sum = 0;
    for (Eigen::Index j0 = 0; j0 < n_; j0 += width) {
        const Eigen::Index w = std::min(width, n_ - j0), m = n_ - j0;
        const int wi = static_cast<int>(w), mi = static_cast<int>(m);
        if (k > 0)
            blas::gemm('N', 'T', mi, wi, k, -1.0, A.data() + j0, n, B.data() + j0, n, 0.0, C.data(),
                       static_cast<int>(C.rows()));
        for (Eigen::Index c = 0; c < w; ++c) {
            auto rc = r.head(m);
            if (h_.is_f32())
                rc = h_.f32().col(j0 + c).tail(m).cast<double>();
            else
                rc = h_.f64().col(j0 + c).tail(m);
            if (k > 0) rc += C.col(c).head(m);
            if (product) F.col(c).head(m).array() = by.array(rc.array()).template cast<float>();
            // The diagonal block once, the rows below it twice (symmetry).
            // Each column's sum in double (vectorized; its rounding, at most
            // ~m·ε relative, is covered by the factor below), the columns' in
            // long double.
            const double block = (rc.head(w) / scale).squaredNorm();
            const double below = m == w ? 0.0 : (rc.tail(m - w) / scale).squaredNorm();
            sum += static_cast<long double>(block) + 2.0L * below;
        }
        if (product) {  // W += R·Q from the lower trapezoid, each entry used twice by symmetry:
            const int q = static_cast<int>(Q->cols()), ldf = static_cast<int>(F.rows());
            // W(J, :) += R(j0:, J)ᵀ·Q(j0:, :), the columns J of R from row j0 down;
            blas::gemm('T', 'N', wi, q, mi, 1.0f, F.data(), ldf, Q->data() + j0, n, 1.0f, W->data() + j0, n);
            // W(j0+w:, :) += R(j0+w:, J)·Q(J, :), the same entries as rows j0+w.. of R.
            if (m > w)
                blas::gemm('N', 'N', mi - wi, q, wi, 1.0f, F.data() + w, ldf, Q->data() + j0, n, 1.0f,
                           W->data() + j0 + w, n);
        }
    }
    return scale * std::sqrt(static_cast<double>(sum)) * (1 + static_cast<double>(n_) * eps);
}

void HessianOperator::column(Eigen::Index j, double* out) const {
    if (!h_.is_f32()) {
        std::copy(h_.f64().data() + j * n_, h_.f64().data() + (j + 1) * n_, out);
        return;
    }
    const float* col = h_.f32().data() + j * n_;
    for (Eigen::Index i = 0; i < n_; ++i) out[i] = col[i];
}

Eigen::VectorXd HessianOperator::diagonal() const {
    return h_.is_f32() ? Eigen::VectorXd(h_.f32().diagonal().cast<double>()) : Eigen::VectorXd(h_.f64().diagonal());
}

double HessianOperator::trace() const {
    long double t = 0;
    const Eigen::VectorXd d = diagonal();
    for (Eigen::Index i = 0; i < n_; ++i) t += d(i);
    return static_cast<double>(t);
}

}  // namespace basinvol
