// Where single precision is enough (single.hpp): the factored Cholesky's
// correction Q₂ᵀSQ₂, formed in float inside the float64 working copy.
#include "single.hpp"
#include "blas.hpp"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace basinvol::detail {

namespace {

// Rounds the `count` doubles at p, scaled, to floats over the
// first half of their own storage. Ascending, eight at a time, each eight
// read before any is written: the floats of doubles i..i+7 land in doubles
// i/2..i/2+3, all read by then. Adds the doubles' squares to *sum_squares
// when it is given.
void round_in_place(double* p, std::size_t count, ScaleBy scale, double* sum_squares) {
    auto* bytes = reinterpret_cast<unsigned char*>(p);
    double in[8];
    float out[8];
    for (std::size_t i = 0; i < count; i += 8) {
        const std::size_t k = std::min<std::size_t>(8, count - i);
        std::memcpy(in, bytes + i * sizeof(double), k * sizeof(double));
        for (std::size_t j = 0; j < k; ++j) {
            if (sum_squares) *sum_squares += in[j] * in[j];
            out[j] = static_cast<float>(scale(in[j]));
        }
        std::memcpy(bytes + i * sizeof(float), out, k * sizeof(float));
    }
}

// The floats round_in_place left at p.
const float* floats_at(const double* p) { return reinterpret_cast<const float*>(p); }

}  // namespace

double add_correction(double* A, int n, int r, double norm_s) {
    const int m = n - r;
    if (norm_s == 0 || m == 0 || r == 0) return 0;  // nothing to add
    const int e = ScaleBy::clamp(single_exponent(norm_s));
    const ScaleBy up(e), down(-e);
    const std::size_t un = static_cast<std::size_t>(n), um = static_cast<std::size_t>(m);
    double q2 = 0;
    for (int j = 0; j < r; ++j) round_in_place(A + r + j * un, um, ScaleBy(0), &q2);
    for (int b = 0; b < m; ++b) round_in_place(A + (r + b) * (un + 1), um - b, down, nullptr);
    const int ldq = 2 * n, lds = 2 * n + 1;
    const float* Q2 = floats_at(A + r);
    const float* S = floats_at(A + r * (un + 1));
    double* V = A + n;
    constexpr int width = correction_width;
    Eigen::MatrixXf T(m, std::min(width, r)), F(r, std::min(width, r));
    double t2 = 0;
    for (int c = 0; c < r; c += width) {
        const int w = std::min(width, r - c);
        blas::symm('L', 'L', m, w, 1.0f, S, lds, floats_at(A + r + c * un), ldq, 0.0f, T.data(), m);
        t2 += T.leftCols(w).cast<double>().squaredNorm();
        blas::gemm('T', 'N', c + w, w, m, 1.0f, Q2, ldq, T.data(), m, 0.0f, F.data(), r);
        for (int j = 0; j < w; ++j)
            for (int i = 0; i < c + w; ++i) V[i + (c + j) * un] += up(F(i, j));
    }
    const double d1 = single_product_error(m, double(m) * r, down(norm_s), std::sqrt(q2));
    const double d2 = single_product_error(m, double(r) * r, std::sqrt(q2), std::sqrt(t2));
    return up(std::sqrt(2.0) * (d1 * (1 + 1e-6) + d2));
}

}  // namespace basinvol::detail
