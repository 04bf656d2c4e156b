// Spectra of structured Hessians, one part in memory at a time.
#include "blas.hpp"
#include "detail.hpp"

#include <basinvol/error.hpp>
#include <basinvol/io/structure.hpp>
#include <basinvol/solve/structured.hpp>

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>

namespace basinvol {
namespace {

constexpr double eps64 = std::numeric_limits<double>::epsilon();
constexpr Eigen::Index panel = 2048;  // rows (or columns) of a float32 factor widened to double at once

struct Accumulator {
    std::vector<double> values;
    long double asym2 = 0;  // Σ ‖H_part − H_partᵀ‖_F²
    double value_error = 0;
};

// γ_k = k·u/(1 − k·u), u = ε/2: the relative rounding of a k-term dot product.
double gamma(double k) {
    const double ku = k * eps64 / 2;
    return ku / (1 - ku);
}

void check_int(std::size_t v, const std::string& where) {
    if (v > static_cast<std::size_t>(INT_MAX)) throw NumericError(where + ": a dimension of " + std::to_string(v) + " is too large for LAPACK");
}

// The Gram matrix of a factor read whole into this process (X = Gᵀ, n×m):
// K = XᵀX (m×m) or XXᵀ (n×n), upper triangle, built in double from G's
// stored values (float32 widened a panel at a time).
Eigen::MatrixXd local_gram(const HessianInfo& info, const StructurePart& p, const ReadOptions& opt, double& g2) {
    FactorValues v = read_factor(info, p, opt);
    const int n = static_cast<int>(p.n), m = static_cast<int>(p.m);
    const bool small_m = m <= n;
    const int k = small_m ? m : n;
    Eigen::MatrixXd K = Eigen::MatrixXd::Zero(k, k);  // syrk fills the upper triangle
    g2 = 0;
    if (!v.is_f32()) {
        blas::syrk('U', small_m ? 'T' : 'N', k, small_m ? n : m, 1.0, v.t64.data(), n, 0.0, K.data(), k);
        g2 = v.t64.squaredNorm();
    } else if (small_m) {
        for (Eigen::Index r0 = 0; r0 < n; r0 += panel) {
            const Eigen::Index w = std::min<Eigen::Index>(panel, n - r0);
            const Eigen::MatrixXd P = v.t32.middleRows(r0, w).cast<double>();  // w×m
            blas::syrk('U', 'T', k, static_cast<int>(w), 1.0, P.data(), static_cast<int>(w), 1.0, K.data(), k);
            g2 += P.squaredNorm();
        }
    } else {
        for (Eigen::Index c0 = 0; c0 < m; c0 += panel) {
            const Eigen::Index w = std::min<Eigen::Index>(panel, m - c0);
            const Eigen::MatrixXd P = v.t32.middleCols(c0, w).cast<double>();  // n×w
            blas::syrk('U', 'N', k, static_cast<int>(w), 1.0, P.data(), n, 1.0, K.data(), k);
            g2 += P.squaredNorm();
        }
    }
    return K;
}

// The nonzero part of eig(s·GᵀG) through the smaller Gram matrix.
void factor_values(const HessianInfo& info, const StructurePart& p, const ReadOptions& opt, const GramBuilder* gram,
                   Accumulator& acc) {
    const std::string where = info.file + ":" + p.path;
    check_int(std::max(p.m, p.n), where);
    const int n = static_cast<int>(p.n), m = static_cast<int>(p.m);
    const bool small_m = m <= n;
    const int k = small_m ? m : n;
    double g2 = 0;  // ‖G‖_F²
    Eigen::MatrixXd K = gram ? gram->gram(info, p, opt, g2) : local_gram(info, p, opt, g2);
    const double k_norm = std::abs(p.scale) * std::sqrt(2.0) * K.norm();  // ≥ ‖s·K‖_F from its upper triangle
    std::vector<double> w = detail::symmetric_eigenvalues(K.data(), k, k, 'U');
    for (double x : w) acc.values.push_back(p.scale * x);
    // Each Gram entry is a dot product of length n (or m): |ΔK| ≤ γ·|G||G|ᵀ, so
    // ‖ΔK‖₂ ≤ γ·‖G‖_F²; LAPACK adds ε·‖K‖.
    const double inner = small_m ? n : m;
    acc.value_error = std::max(acc.value_error, std::abs(p.scale) * gamma(inner) * g2 + eps64 * k_norm);
}

void part_values(const HessianInfo& info, const StructurePart& p, const ReadOptions& opt, const GramBuilder* gram,
                 Accumulator& acc) {
    switch (p.kind) {
        case PartKind::dense: {
            Hessian h = read_square_part(info, p.path, opt);
            acc.asym2 += static_cast<long double>(h.asymmetry() * h.frobenius()) * (h.asymmetry() * h.frobenius());
            acc.value_error = std::max(acc.value_error, eps64 * h.frobenius());
            Spectrum s = dense_spectrum(h);
            acc.values.insert(acc.values.end(), s.values.begin(), s.values.end());
            return;
        }
        case PartKind::diagonal: {
            const Eigen::VectorXd d = read_diagonal(info, p, opt);
            acc.values.insert(acc.values.end(), d.data(), d.data() + d.size());
            return;
        }
        case PartKind::factor: factor_values(info, p, opt, gram, acc); return;
        case PartKind::kron: {
            Hessian A = read_square_part(info, p.path + "/A", opt), B = read_square_part(info, p.path + "/B", opt);
            const double fa = A.frobenius(), fb = B.frobenius(), s = std::abs(p.scale);
            // (A ⊗ B) − (A ⊗ B)ᵀ = (A − Aᵀ) ⊗ B + Aᵀ ⊗ (B − Bᵀ)
            const double asym = s * (A.asymmetry() * fa * fb + fa * B.asymmetry() * fb);
            acc.asym2 += static_cast<long double>(asym) * asym;
            const std::vector<double> alpha = dense_spectrum(A).values, beta = dense_spectrum(B).values;
            acc.values.reserve(acc.values.size() + alpha.size() * beta.size());
            for (double x : alpha)
                for (double y : beta) acc.values.push_back(p.scale * x * y);
            // |α̂β̂ − αβ| ≤ |α|·ε‖B‖ + |β|·ε‖A‖ + ε²‖A‖‖B‖, and one rounding of the product
            acc.value_error = std::max(acc.value_error, s * 4 * eps64 * fa * fb);
            return;
        }
        case PartKind::blocks:
            for (const auto& child : p.parts) part_values(info, child, opt, gram, acc);
            return;
    }
}

}  // namespace

StructuredSpectrum structured_spectrum(const HessianInfo& info, const ReadOptions& opt, const GramBuilder* gram) {
    const auto t0 = detail::Clock::now();
    const StructurePart root = describe_structure(info, opt);
    StructuredSpectrum out;
    Accumulator acc;
    auto span = [&](const StructurePart& p, const std::string& name) {
        BlockSpan b;
        b.name = name;
        b.n = p.n;
        b.begin = acc.values.size();
        part_values(info, p, opt, gram, acc);
        b.end = acc.values.size();
        out.blocks.push_back(b);
    };
    if (root.kind == PartKind::blocks)
        for (const auto& child : root.parts) span(child, child.path.substr(child.path.rfind('/') + 1));
    else
        span(root, root.path.substr(root.path.rfind('/') + 1));
    long double f2 = 0;
    for (double v : acc.values) f2 += static_cast<long double>(v) * v;
    for (double v : acc.values)
        if (!std::isfinite(v)) throw NumericError(info.source() + ": an eigenvalue overflowed float64; rescale the Hessian");
    out.frobenius = std::sqrt(static_cast<double>(f2));
    out.asymmetry = std::sqrt(static_cast<double>(acc.asym2));
    out.value_error = acc.value_error;
    Spectrum& s = out.spectrum;
    s.n = root.n;
    s.method = "structured";
    s.values = std::move(acc.values);
    s.complete = s.values.size() == s.n;  // the others are exactly zero: nothing is unknown
    s.stats.passes = 1;
    s.stats.seconds = detail::since(t0);
    return out;
}

}  // namespace basinvol
