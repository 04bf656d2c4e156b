// Spectra of structured Hessians, one part (or two square parts) in memory at a time.
#include "../threads.hpp"
#include "blas_room.hpp"
#include "blas.hpp"
#include "detail.hpp"

#include <basinvol/error.hpp>
#include <basinvol/io/reader.hpp>
#include <basinvol/io/structure.hpp>
#include <basinvol/solve/structured.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <map>
#include <mutex>
#include <queue>
#include <sstream>
#include <sys/resource.h>

namespace basinvol {
namespace {

constexpr double eps64 = std::numeric_limits<double>::epsilon();
constexpr Eigen::Index panel = 2048;  // rows (or columns) of a float32 factor widened to double at once
// The largest share of a Kronecker pair's symmetric part its two skew parts may
// make (s·A_k ⊗ B_k, which the values of the factors' symmetric parts miss).
constexpr double kron_skew_share = 1e-3;

// A square part, read and solved after the walk: a dense member, or a
// Kronecker part's factor A or B.
struct Square {
    enum Role { dense, a, b };
    std::size_t part = 0;  // its part in Accumulator::parts
    Role role = dense;
    std::string path;
    std::size_t n = 0;     // its size, n×n
    double frobenius = 0, skew = 0;  // ‖(M + Mᵀ)/2‖_F and ‖M − Mᵀ‖_F
    double stored_eps = 0;           // ε of its own stored type
    std::exception_ptr failed;
    bool float32_values = false;     // a float64 part holding float32 data
};

struct Accumulator {
    std::vector<SpectrumPart> parts;
    std::vector<std::string> paths;  // each part's path, for the messages that name it
    // A Kronecker part's scale, max|λ(A)| and max|λ(B)| as stated, before
    // balance_kron rescales them, by part: what an overflow message shows.
    std::map<std::size_t, std::array<double, 3>> stated_kron;
    SpectrumPart& add(const std::string& path, std::size_t n) {
        paths.push_back(path);
        SpectrumPart& p = parts.emplace_back();
        p.n = n;
        return p;
    }
    std::vector<Square> squares;  // in the walk's order, A then B of each Kronecker part
    double asymmetry = 0;  // ‖H − Hᵀ‖_F = √Σ ‖H_part − H_partᵀ‖_F², kept by hypot (no overflow)
    // The square part (a dense part, a Kronecker factor) whose asymmetry
    // adds the most to the whole's, for the message that refuses it.
    double most_skew = 0;
    std::string most_skew_part;
    double skew_products = 0;  // ‖Σ s·A_k ⊗ B_k‖_F over Kronecker parts (orthogonal: by hypot)
    // The Kronecker part whose s·A_k ⊗ B_k is the largest share of its own
    // symmetric part (a term its values, A_s ⊗ B_s's, do not hold), for the
    // check that refuses such a pair (structured_spectrum).
    double skew_share = 0;
    std::string skew_share_part;
    double value_error = 0;
    double stored_underflow = 0;  // StructuredSpectrum::stored_underflow, the largest part's (block diagonal)
    // A factor or Kronecker part whose exact values are not all zero: its
    // products may underflow where its factors do not.
    bool nonzero_products = false;
    bool float32_values = false;  // StructuredSpectrum::float32_values
};

void check_int(std::size_t v, const std::string& where) {
    if (v > static_cast<std::size_t>(INT_MAX)) throw NumericError(where + ": a dimension of " + std::to_string(v) + " is too large for LAPACK");
}

// The Gram matrix of a factor read whole into this process (X = Gᵀ, n×m):
// K = XᵀX (m×m) or XXᵀ (n×n), upper triangle, built in double from G's
// stored values (float32 widened a panel at a time; its squares cannot leave
// double's range, so it is never shifted).
Gram local_gram(const HessianInfo& info, const StructurePart& p, const ReadOptions& opt) {
    FactorValues v = read_factor(info, p, opt);
    const int n = static_cast<int>(p.n), m = static_cast<int>(p.m);
    const bool small_m = m <= n;
    const int k = small_m ? m : n;
    Gram out;
    out.float32_values = !v.is_f32() && opt.detect_float32_data && float32_data(v.t64, p.stored_type, p.stored_eps);
    if (!v.is_f32() && v.t64.size() > 0) {
        out.shift = gram_shift(v.t64.cwiseAbs().maxCoeff());
        double* g = v.t64.data();  // in place: G may be most of the memory budget
        if (out.shift != 0)
            for (Eigen::Index i = 0; i < v.t64.size(); ++i) g[i] = std::ldexp(g[i], -out.shift);
    }
    Eigen::MatrixXd& K = out.K;
    K = Eigen::MatrixXd::Zero(k, k);  // syrk fills the upper triangle
    detail::BlasSection section(detail::fork_gate());
    detail::BlasRoom room;
    if (!v.is_f32()) {
        blas::syrk('U', small_m ? 'T' : 'N', k, small_m ? n : m, 1.0, v.t64.data(), n, 0.0, K.data(), k);
    } else if (small_m) {
        for (Eigen::Index r0 = 0; r0 < n; r0 += panel) {
            const Eigen::Index w = std::min<Eigen::Index>(panel, n - r0);
            const Eigen::MatrixXd P = v.t32.middleRows(r0, w).cast<double>();  // w×m
            blas::syrk('U', 'T', k, static_cast<int>(w), 1.0, P.data(), static_cast<int>(w), 1.0, K.data(), k);
        }
    } else {
        for (Eigen::Index c0 = 0; c0 < m; c0 += panel) {
            const Eigen::Index w = std::min<Eigen::Index>(panel, m - c0);
            const Eigen::MatrixXd P = v.t32.middleCols(c0, w).cast<double>();  // n×w
            blas::syrk('U', 'N', k, static_cast<int>(w), 1.0, P.data(), n, 1.0, K.data(), k);
        }
    }
    return out;
}

// x·s·2^e without leaving double's range on the way: s's exponent joins e.
double scaled(double x, double s, int e) {
    int es = 0;
    const double ms = std::frexp(s, &es);
    return std::ldexp(x * ms, es + e);
}

// The nonzero part of eig(s·GᵀG) through the smaller Gram matrix.
void factor_values(const HessianInfo& info, const StructurePart& p, const ReadOptions& opt, const GramBuilder* gram,
                   Accumulator& acc) {
    const std::string where = info.file + ":" + p.path;
    check_int(std::max(p.m, p.n), where);
    const int n = static_cast<int>(p.n), m = static_cast<int>(p.m);
    const bool small_m = m <= n;
    const int k = small_m ? m : n;
    Gram built = gram ? gram->gram(info, p, opt) : local_gram(info, p, opt);
    acc.float32_values = acc.float32_values || built.float32_values;
    Eigen::MatrixXd& K = built.K;
    // Each Gram entry is a dot product of length n (or m): |ΔK| ≤ γ·|G||G|ᵀ, so
    // ‖ΔK‖₂ ≤ γ·‖G‖_F², and ‖G‖_F² = trace K, each K_ii computed to within
    // γ of its value; LAPACK adds ε·‖K‖, and K is positive semi-definite, so
    // ‖K‖₂ ≤ trace K. The bound is (γ/(1 − γ) + 1.5·ε)·|s|·trace K, summed term
    // by term (each term stays finite while K does) and raised by γ_{k+3} for
    // the rounding of that sum and its factors. A K that overflowed holds an
    // infinity or a NaN.
    if (!K.allFinite()) reject_norm_overflow(info.source());
    // (1.5·ε: LAPACK's ε·‖K‖ and the rounding of scaling each value by s.)
    const double inner = small_m ? n : m, g = detail::gamma(inner), per_trace = g / (1 - g) + 1.5 * eps64;
    double bound = 0;  // (γ/(1 − γ) + 1.5·ε)·trace K
    for (int i = 0; i < k; ++i) bound += per_trace * K(i, i);
    bound *= 1 + detail::gamma(k + 3);
    acc.nonzero_products = acc.nonzero_products || (bound > 0 && p.scale != 0);
    SpectrumPart& out = acc.add(p.path, p.n);
    out.eps = built.float32_values ? std::max(p.stored_eps, 0x1p-23) : p.stored_eps;
    detail::BlasSection section(detail::fork_gate());
    detail::BlasRoom room;
    out.values = detail::symmetric_eigenvalues(K.data(), k, k, 'U');
    // s·GᵀG = s·2^(2·shift)·(the Gram of 2^-shift·G)
    for (double& x : out.values) x = scaled(x, p.scale, 2 * built.shift);
    out.value_error = scaled(bound, std::abs(p.scale), 2 * built.shift);
    acc.value_error = std::max(acc.value_error, out.value_error);
    // Each stored g within half the type's subnormal step: ‖ΔG‖_F ≤ √(mn)·step/2,
    // and ‖s·((G + ΔG)ᵀ(G + ΔG) − GᵀG)‖₂ ≤ |s|·(2‖G‖_F‖ΔG‖_F + ‖ΔG‖²_F),
    // ‖G‖_F² = trace K (of 2^-shift·G, so ΔG is shifted alike).
    const double g_eps = built.float32_values ? 0x1p-23 : p.stored_eps;  // float32 data in a float64 G: float32's step
    const double dg = std::ldexp(std::sqrt(double(m) * double(n)) * subnormal_step(g_eps) / 2, -built.shift);
    double trace = 0;
    for (int i = 0; i < k; ++i) trace += K(i, i);
    out.noise = scaled(2 * std::sqrt(trace) * dg + dg * dg, std::abs(p.scale), 2 * built.shift);
    acc.stored_underflow = std::max(acc.stored_underflow, out.noise);
}

// A dense or diagonal part's stored entries are its dense twin's, each
// rounded to its own type's step: n·step/2 over the whole, as for that twin.
double twin_underflow(const HessianInfo& info, double stored_eps) {
    return static_cast<double>(info.n) * subnormal_step(stored_eps) / 2;
}

void part_values(const HessianInfo& info, const StructurePart& p, const ReadOptions& opt, const GramBuilder* gram,
                 Accumulator& acc) {
    switch (p.kind) {
        case PartKind::dense:  // read and solved after the walk (solve_squares)
            acc.stored_underflow = std::max(acc.stored_underflow, twin_underflow(info, p.stored_eps));
            acc.add(p.path, p.n);
            acc.squares.push_back({acc.parts.size() - 1, Square::dense, p.path, p.n, 0, 0, 0, nullptr});
            return;
        case PartKind::diagonal: {
            const Eigen::VectorXd d = read_diagonal(info, p, opt);
            const bool float32_held = opt.detect_float32_data && float32_data(d, p.stored_type, p.stored_eps);
            acc.float32_values = acc.float32_values || float32_held;
            acc.stored_underflow =
                std::max(acc.stored_underflow, twin_underflow(info, float32_held ? 0x1p-23 : p.stored_eps));
            SpectrumPart& out = acc.add(p.path, p.n);
            out.values.assign(d.data(), d.data() + d.size());
            out.eps = float32_held ? std::max(p.stored_eps, 0x1p-23) : p.stored_eps;
            out.noise = static_cast<double>(p.n) * subnormal_step(out.eps) / 2;
            return;
        }
        case PartKind::factor: factor_values(info, p, opt, gram, acc); return;
        case PartKind::kron: {  // its factors are read and solved after the walk (solve_squares)
            SpectrumPart& out = acc.add(p.path, p.n);
            out.kron = true;
            out.scale = p.scale;
            acc.squares.push_back({acc.parts.size() - 1, Square::a, member_of(p.path, "A"), p.a, 0, 0, 0, nullptr});
            acc.squares.push_back({acc.parts.size() - 1, Square::b, member_of(p.path, "B"), p.b, 0, 0, 0, nullptr});
            return;
        }
        case PartKind::blocks:
            for (const auto& child : p.parts) part_values(info, child, opt, gram, acc);
            return;
    }
}

// Reads and solves one square part; a failure is kept for fold_squares to throw.
void solve_square(const HessianInfo& info, const ReadOptions& opt, Accumulator& acc, Square& q) noexcept {
    try {
        // A part's asymmetry counts against the whole's ‖H‖_F (checked once
        // the whole is known), as its dense twin's does: a small bias block's
        // autograd noise is small beside the layer it sits in.
        ReadOptions part_opt = opt;
        part_opt.max_asymmetry = std::numeric_limits<double>::infinity();
        Hessian m = read_square_part(info, q.path, part_opt);
        q.frobenius = m.frobenius();
        q.skew = m.asymmetry_norm();
        q.stored_eps = m.info.stored_eps;
        q.float32_values = m.info.float32_values;
        SpectrumPart& part = acc.parts[q.part];
        detail::BlasSection section(detail::fork_gate());
        detail::BlasRoom room;
        (q.role == Square::dense ? part.values : q.role == Square::a ? part.alpha : part.beta) =
            dense_spectrum(m).values;
    } catch (...) {
        q.failed = std::current_exception();
    }
}

// Keeps a Kronecker part's products fl(fl(s·α_i)·β_j) in double's range
// when s·α or β leave it (see SpectrumPart): when either one's largest
// magnitude lies outside [2^-800, 2^800], α becomes fl(s·α_i)·2^-k and β
// becomes β·2^k, each with about half the products' exponent, and s 1.
// Otherwise nothing changes.
void balance_kron(SpectrumPart& p) {
    double amax = 0, bmax = 0;
    for (double a : p.alpha) amax = std::max(amax, std::abs(a));
    for (double b : p.beta) bmax = std::max(bmax, std::abs(b));
    if (amax == 0 || bmax == 0) return;
    int es = 0, ea = 0, eb = 0;
    const double ms = std::frexp(p.scale, &es);
    std::frexp(amax, &ea);
    std::frexp(bmax, &eb);
    const int e_alpha = es + ea;  // s·α's largest is below 2^e_alpha
    constexpr int edge = 800;
    if (std::abs(e_alpha) <= edge && std::abs(eb) <= edge) return;
    const int half = static_cast<int>(std::floor((e_alpha + eb) / 2.0));
    const int k = e_alpha - half;
    // fl(s·α_i) = fl(ms·(α_i·2^-ea))·2^(es + ea): exact scalings around the one rounding
    for (double& a : p.alpha) a = std::ldexp(ms * std::ldexp(a, -ea), e_alpha - k);
    for (double& b : p.beta) b = std::ldexp(b, k);
    p.scale = 1;
}

// s·√((x₁y₁)² + (x₂y₂)²) for s, x, y ≥ 0, s multiplied first by the factor
// that moves it toward 1, so that no partial product leaves double's range
// while the whole stays in it.
double scaled(double s, double x1, double y1, double x2, double y2) {
    const auto product = [s](double x, double y) {
        const double big = std::max(x, y), small = std::min(x, y);
        return s < 1 ? (s * big) * small : (s * small) * big;
    };
    return std::hypot(product(x1, y1), product(x2, y2));
}

// Each square part's input noise and value error, in the walk's order.
void fold_squares(const HessianInfo& info, Accumulator& acc) {
    for (std::size_t i = 0; i < acc.squares.size(); ++i) {
        const Square& q = acc.squares[i];
        if (q.failed) std::rethrow_exception(q.failed);
        auto note_skew = [&](double skew, const std::string& path) {
            if (skew > acc.most_skew) acc.most_skew = skew, acc.most_skew_part = path;
        };
        if (q.role == Square::dense) {
            // Float32 data in a float64 part: float32's subnormal step (the
            // walk counted the stored type's).
            if (q.float32_values) acc.stored_underflow = std::max(acc.stored_underflow, twin_underflow(info, q.stored_eps));
            SpectrumPart& part = acc.parts[q.part];
            part.eps = q.stored_eps;  // float32's for float32 data (read_square_part marks it)
            part.noise = std::max(q.skew, static_cast<double>(q.n) * subnormal_step(q.stored_eps) / 2);
            acc.asymmetry = std::hypot(acc.asymmetry, q.skew);
            note_skew(q.skew, q.path);
            part.value_error = eps64 * q.frobenius;
            acc.value_error = std::max(acc.value_error, eps64 * q.frobenius);
            continue;
        }
        const Square& B = acc.squares[++i];  // A's partner
        if (B.failed) std::rethrow_exception(B.failed);
        SpectrumPart& part = acc.parts[q.part];
        part.eps = std::max(q.stored_eps, B.stored_eps);
        const double fa = q.frobenius, fb = B.frobenius, s = std::abs(part.scale);
        const double size = scaled(s, fa, fb, 0, 0);  // ‖s·A_s ⊗ B_s‖_F
        // With M = M_s + M_k (symmetric and skew parts, ‖M_k‖_F = ‖M − Mᵀ‖_F/2),
        // A ⊗ B − (A ⊗ B)ᵀ = 2(A_s ⊗ B_k + A_k ⊗ B_s), two orthogonal terms, so
        // ‖H − Hᵀ‖_F = s·√(‖A_s‖²‖B − Bᵀ‖² + ‖A − Aᵀ‖²‖B_s‖²): exactly the
        // dense twin's.
        acc.asymmetry = std::hypot(acc.asymmetry, scaled(s, fa, B.skew, q.skew, fb));
        note_skew(scaled(s, fa, B.skew, 0, 0), B.path);  // s·‖A_s‖_F·‖B − Bᵀ‖_F
        note_skew(scaled(s, q.skew, fb, 0, 0), q.path);  // s·‖A − Aᵀ‖_F·‖B_s‖_F
        // |α̂β̂ − αβ| ≤ |α|·ε‖B‖ + |β|·ε‖A‖ + ε²‖A‖‖B‖, and one rounding of the
        // product; the values are A_s ⊗ B_s's, where the twin's symmetric part
        // adds A_k ⊗ B_k (symmetric): ‖A_k ⊗ B_k‖₂ ≤ s·‖A_k‖_F‖B_k‖_F.
        const double skew_product = scaled(s, q.skew / 2, B.skew / 2, 0, 0);  // s·‖A_k‖_F·‖B_k‖_F
        acc.skew_products = std::hypot(acc.skew_products, skew_product);
        // (A_s ⊗ B_s and A_k ⊗ B_k are orthogonal: the twin's symmetric part has their hypot.)
        if (const double share = skew_product > 0 ? skew_product / std::hypot(size, skew_product) : 0.0;
            share > acc.skew_share)
            acc.skew_share = share, acc.skew_share_part = acc.paths[q.part];
        part.value_error = 4 * eps64 * size + skew_product;
        acc.value_error = std::max(acc.value_error, part.value_error);
        // A and B each within half a subnormal step of their own stored
        // type: ‖ΔA‖_F ≤ a·step_A/2, and s·(A ⊗ ΔB + ΔA ⊗ B + ΔA ⊗ ΔB).
        const double da = static_cast<double>(q.n) * subnormal_step(q.stored_eps) / 2,
                     db = static_cast<double>(B.n) * subnormal_step(B.stored_eps) / 2;
        const double underflow = scaled(s, fa, db, 0, 0) + scaled(s, da, fb, 0, 0) + scaled(s, da, db, 0, 0);
        acc.stored_underflow = std::max(acc.stored_underflow, underflow);
        part.noise = std::max(scaled(s, fa, B.skew, q.skew, fb), underflow);
        acc.nonzero_products = acc.nonzero_products || (fa > 0 && fb > 0 && s > 0);
        std::array<double, 3> stated{part.scale, 0, 0};
        for (double a : part.alpha) stated[1] = std::max(stated[1], std::abs(a));
        for (double b : part.beta) stated[2] = std::max(stated[2], std::abs(b));
        acc.stated_kron[q.part] = stated;
        balance_kron(part);
    }
}

// Whether square parts may be solved two at a time. `dsyevd` spends half
// its time in `dsymv`, bound by memory, so a second BLAS thread on one
// matrix gains little (about 1.3x at n = 1000), while two matrices side by
// side, one thread each, come close to twice the throughput
// (docs/performance.md, "Kronecker factors side by side"). Only when:
//   - the caller allows it: it owns OpenBLAS's process-wide thread count
//     (no other job) and gives the memory for a second part;
//   - this job may run two BLAS threads or more;
//   - reads are not isolated in child processes (a fork while the other
//     thread is inside threaded OpenBLAS tears its thread pool down);
//   - there is no address-space limit (each thread that calls OpenBLAS
//     maps a buffer of its own, and OpenBLAS waits forever for one);
//   - the work (n³ each) splits: no part over three quarters of it, and
//     enough of it to pay for a thread;
//   - the working set and the second largest part fit that memory and the
//     read budget together.
bool side_by_side_squares(const std::vector<Square>& qs, const HessianInfo& info, const StructurePart& root,
                          const ReadOptions& opt, SideBySide allowed, int threads) {
    if (!allowed.allowed || threads < 2 || qs.size() < 2 || opt.isolate != ReadOptions::Isolation::never)
        return false;
    struct rlimit as {};
    if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY) return false;
    double work = 0, largest = 0;
    for (const Square& q : qs) {
        const double w = std::pow(static_cast<double>(q.n), 3);
        work += w;
        largest = std::max(largest, w);
    }
    constexpr double enough = 2 * 64.0 * 64.0 * 64.0;  // two 64×64 matrices: 0.1 ms each, a thread start 0.05
    // The working set holds the largest square part; the second comes on top.
    const bool fits = add_bytes(info.working_bytes, root.square_bytes[1]) <= std::min(allowed.memory, memory_budget(opt));
    return largest <= 0.75 * work && work >= enough && fits;
}

// The square parts' spectra (dense members, Kronecker factors), one at a
// time or, when side_by_side_squares allows, two at a time, largest first,
// each with half the BLAS threads, each thread reading its next part (HDF5
// under its lock) while the other solves. After a failure, only parts before
// it in the walk's order are still started; fold_squares throws the first.
bool solve_squares(const HessianInfo& info, const StructurePart& root, const ReadOptions& opt, SideBySide allowed,
                   Accumulator& acc) {
    std::vector<Square>& qs = acc.squares;
    const int threads = openblas_get_num_threads();
    const bool side_by_side = side_by_side_squares(qs, info, root, opt, allowed, threads);
    std::vector<std::size_t> order(qs.size());
    for (std::size_t i = 0; i < qs.size(); ++i) order[i] = i;
    if (side_by_side)
        std::stable_sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return qs[x].n > qs[y].n; });
    std::atomic<std::size_t> next{0}, first_failed{qs.size()};
    auto solve = [&] {
        for (std::size_t k; (k = next++) < order.size();) {
            const std::size_t i = order[k];
            if (i > first_failed) continue;
            solve_square(info, opt, acc, qs[i]);
            if (!qs[i].failed) continue;
            std::size_t f = first_failed;
            while (i < f && !first_failed.compare_exchange_weak(f, i)) {
            }
        }
    };
    if (!side_by_side) {
        solve();
    } else {
        const blas::ThreadCount half(threads / 2);
        detail::run_on_threads(2, solve);
    }
    return side_by_side;
}

// The magnitudes of a set of parts as rows, each a multiplier c and a list b
// sorted descending: row values fl(c·b_j), descending along the row since
// rounding is monotone. The listed parts together are one row with c = 1
// (exact); a Kronecker part is one row per α_i, c = |fl(s·α_i)|, over |β|
// sorted, and |fl(fl(s·α_i)·β_j)| = fl(c·|β_j|) exactly. A part's rows share
// their b and are held with c descending: fl(c·b_j) only falls with c, so
// the length of a row's prefix meeting a monotone test only falls from one
// row to the next, and one walk down b finds every row's (O(a + b) a part,
// where a search a row took O(a·log b)). A position's value is a search
// over values by such counts, remembered for the positions asked again.
class RowMagnitudes final : public SortedMagnitudes {
public:
    RowMagnitudes(const SpectrumPart* begin, const SpectrumPart* end) {
        Group listed;
        listed.c = {1.0};
        for (const SpectrumPart* p = begin; p != end; ++p)
            if (!p->kron) listed.b.insert(listed.b.end(), p->values.begin(), p->values.end());
        if (!listed.b.empty()) groups_.push_back(std::move(listed));
        for (const SpectrumPart* p = begin; p != end; ++p) {
            if (!p->kron || p->alpha.empty() || p->beta.empty()) continue;
            Group& g = groups_.emplace_back();
            g.b = p->beta;
            for (double a : p->alpha) g.c.push_back(std::abs(p->scale * a));
            std::sort(g.c.begin(), g.c.end(), std::greater<double>());
        }
        for (Group& g : groups_) {
            sort_magnitudes(g.b);
            size_ += g.c.size() * g.b.size();
        }
    }
    RowMagnitudes(const RowMagnitudes&) = delete;
    RowMagnitudes& operator=(const RowMagnitudes&) = delete;
    std::size_t size() const override { return size_; }

    std::size_t prefix_where(const std::function<bool(double)>& holds) const override { return count(holds); }

    // The i-th largest x is the least double x ≥ 0 with at most i values
    // above it; non-negative doubles order as their bit patterns.
    double at(std::size_t i) const override {
        {
            const std::lock_guard<std::mutex> lock(memo_mutex_);
            for (const auto& [j, v] : memo_)
                if (j == i) return v;
        }
        std::uint64_t lo = 0, hi = bits(top());
        while (lo < hi) {
            const std::uint64_t mid = lo + (hi - lo) / 2;
            const double x = value(mid);
            if (count([x](double v) { return v > x; }) <= i) hi = mid;
            else lo = mid + 1;
        }
        const std::lock_guard<std::mutex> lock(memo_mutex_);
        if (memo_.size() < 16) memo_.emplace_back(i, value(lo));
        else memo_[memo_next_++ % memo_.size()] = {i, value(lo)};
        return value(lo);
    }

    // Between at(from) and at(to − 1) lie the values of those positions,
    // and the ones equal to at(from) start at count_above(at(from)): one
    // pass over the rows collects them, O(rows · log + their number).
    std::vector<double> range(std::size_t from, std::size_t to) const override {
        if (from >= to) return {};
        const double hi = at(from), lo = at(to - 1);
        const std::size_t above = count([hi](double v) { return v > hi; });
        std::vector<double> v;
        for (const Group& g : groups_)
            for (const double c : g.c) {
                const auto first = std::partition_point(g.b.begin(), g.b.end(), [c, hi](double x) { return c * x > hi; });
                const auto last = std::partition_point(first, g.b.end(), [c, lo](double x) { return c * x >= lo; });
                for (auto it = first; it != last; ++it) v.push_back(c * *it);
            }
        std::sort(v.begin(), v.end(), std::greater<double>());
        const auto skip = static_cast<std::ptrdiff_t>(from - above);
        return {v.begin() + skip, v.begin() + skip + static_cast<std::ptrdiff_t>(to - from)};
    }

    void scan(const std::function<bool(double)>& visit) const override {
        struct Head {
            double v;
            const Group* g;
            std::size_t row, j;
            bool operator<(const Head& o) const { return v < o.v; }
        };
        std::priority_queue<Head> heads;
        for (const Group& g : groups_)
            for (std::size_t r = 0; r < g.c.size(); ++r) heads.push({g.c[r] * g.b.front(), &g, r, 0});
        while (!heads.empty()) {
            Head h = heads.top();
            heads.pop();
            if (!visit(h.v)) return;
            if (++h.j < h.g->b.size()) heads.push({h.g->c[h.row] * h.g->b[h.j], h.g, h.row, h.j});
        }
    }

    void visit_spans(const std::function<void(const double*, std::size_t)>& visit) const override {
        std::vector<double> row;
        for (const Group& g : groups_)
            for (const double c : g.c) {
                row.resize(g.b.size());
                for (std::size_t j = 0; j < row.size(); ++j) row[j] = c * g.b[j];
                visit(row.data(), row.size());
            }
    }

private:
    // Rows c·b, c descending, b descending and not empty.
    struct Group {
        std::vector<double> b, c;
    };
    std::vector<Group> groups_;
    std::size_t size_ = 0;
    mutable std::mutex memo_mutex_;
    mutable std::vector<std::pair<std::size_t, double>> memo_;  // (position, value) of the last 16 at()
    mutable std::size_t memo_next_ = 0;

    // How many values meet `holds`, monotone (true for a value, true for
    // every larger one): each part's rows walked with c descending, the
    // row's prefix length j only falling.
    template <class Holds>
    std::size_t count(const Holds& holds) const {
        std::size_t total = 0;
        for (const Group& g : groups_) {
            std::size_t j = g.b.size();
            for (const double c : g.c) {
                while (j > 0 && !holds(c * g.b[j - 1])) --j;
                if (j == 0) break;
                total += j;
            }
        }
        return total;
    }
    double top() const {
        double t = 0;
        for (const Group& g : groups_) t = std::max(t, g.c.front() * g.b.front());
        return t;
    }
    static void sort_magnitudes(std::vector<double>& v) {
        for (double& x : v) x = std::abs(x);
        std::sort(v.begin(), v.end(), std::greater<double>());
    }
    static std::uint64_t bits(double x) {
        std::uint64_t u;
        std::memcpy(&u, &x, sizeof u);
        return u;
    }
    static double value(std::uint64_t u) {
        double x;
        std::memcpy(&x, &u, sizeof x);
        return x;
    }
};

// The kept sums of a Kronecker part s·(A ⊗ B). With c = fl(s·α_i), the
// products |fl(c·β_j)| = fl(|c|·|β_j|) fall along |β| sorted descending, so
// row i keeps a prefix of that order; prefix sums over it (by β's sign) give
// the row's counts and Σ log|λ| = L·log|c| + Σ log|β_j| (exact to a rounding
// per term). The error sum is bounded per row and sign: −log(1 − x) ≤
// x/(1 − x), and every kept |λ| of that sign is at least the last one m, so
// Σ −log(1 − e/|λ_j|) ≤ (e/|c|)·Σ 1/|β_j| / (1 − e/m), widened by a
// few roundings.
void kron_kept(const SpectrumPart& p, double tol, double error, KeptSums& k) {
    const std::size_t b = p.beta.size();
    std::vector<double> mag(b);
    std::vector<unsigned char> negative(b);
    {
        std::vector<std::size_t> order(b);
        for (std::size_t j = 0; j < b; ++j) order[j] = j;
        std::sort(order.begin(), order.end(),
                  [&](std::size_t x, std::size_t y) { return std::abs(p.beta[x]) > std::abs(p.beta[y]); });
        for (std::size_t j = 0; j < b; ++j) {
            mag[j] = std::abs(p.beta[order[j]]);
            negative[j] = p.beta[order[j]] < 0;
        }
    }
    // Over the first j of that order, by β's sign: count, Σ log|β|, Σ 1/|β|,
    // and the index of the last one (b when none).
    std::vector<std::size_t> count[2], last[2];
    std::vector<long double> logs[2], inverse[2];
    for (int s = 0; s < 2; ++s) {
        count[s].assign(b + 1, 0);
        last[s].assign(b + 1, b);
        logs[s].assign(b + 1, 0);
        inverse[s].assign(b + 1, 0);
    }
    for (std::size_t j = 0; j < b; ++j)
        for (int s = 0; s < 2; ++s) {
            const bool here = negative[j] == s;
            count[s][j + 1] = count[s][j] + here;
            last[s][j + 1] = here ? j : last[s][j];
            logs[s][j + 1] = logs[s][j] + (here ? std::log(static_cast<long double>(mag[j])) : 0.0L);
            inverse[s][j + 1] = inverse[s][j] + (here ? 1.0L / mag[j] : 0.0L);
        }
    for (double a : p.alpha) {
        const double c = p.scale * a, ac = std::abs(c);
        const std::size_t L = static_cast<std::size_t>(
            std::partition_point(mag.begin(), mag.end(), [&](double x) { return ac * x > tol; }) - mag.begin());
        if (L == 0) continue;
        const long double log_c = std::log(static_cast<long double>(ac));
        for (int s = 0; s < 2; ++s) {
            const std::size_t cnt = count[s][L];
            if (cnt == 0) continue;
            const int sign = s ^ (c < 0);  // the products' sign
            k.count[sign] += cnt;
            k.log_sum[sign] += static_cast<long double>(cnt) * log_c + logs[s][L];
            if (error == 0) continue;
            const double m = ac * mag[last[s][L]];
            if (!(m > error)) k.unbounded[sign] = true;
            else k.error_sum[sign] += (1 + 8 * eps64) * (error / ac) * inverse[s][L] / (1 - error / m);
        }
    }
}

}  // namespace

int gram_shift(double largest) {
    if (largest == 0 || (largest >= std::ldexp(1.0, -400) && largest <= std::ldexp(1.0, 400))) return 0;
    int e = 0;
    std::frexp(largest, &e);
    return e;
}

std::size_t PartValues::size() const {
    std::size_t k = 0;
    for (const SpectrumPart* p = begin_; p != end_; ++p) k += p->size();
    return k;
}

void PartValues::for_each_span(const std::function<void(const double*, std::size_t)>& visit) const {
    std::vector<double> row;
    for (const SpectrumPart* p = begin_; p != end_; ++p) {
        if (!p->kron) {
            visit(p->values.data(), p->values.size());
            continue;
        }
        row.resize(p->beta.size());
        for (double a : p->alpha) {
            const double c = p->scale * a;
            for (std::size_t j = 0; j < row.size(); ++j) row[j] = c * p->beta[j];
            visit(row.data(), row.size());
        }
    }
}

KeptSums PartValues::kept(double tol, double error) const {
    KeptSums k;
    for (const SpectrumPart* p = begin_; p != end_; ++p) {
        if (!p->kron) {
            const KeptSums part = EigenvalueList(p->values).kept(tol, error);
            for (int s = 0; s < 2; ++s) {
                k.count[s] += part.count[s];
                k.log_sum[s] += part.log_sum[s];
                k.error_sum[s] += part.error_sum[s];
                k.unbounded[s] = k.unbounded[s] || part.unbounded[s];
            }
            continue;
        }
        kron_kept(*p, tol, error, k);
    }
    return k;
}

std::shared_ptr<const SortedMagnitudes> PartValues::magnitudes() const {
    return std::make_shared<RowMagnitudes>(begin_, end_);
}

namespace {

// Refuses the first part with a value past float64, naming it: a factor
// scaled past it, or a Kronecker part's largest product.
void reject_overflowed_part(const HessianInfo& info, const Accumulator& acc) {
    for (std::size_t i = 0; i < acc.parts.size(); ++i) {
        const SpectrumPart& p = acc.parts[i];
        std::ostringstream why;
        why.precision(3);
        if (p.kron) {
            double a = 0, b = 0;
            for (double x : p.alpha) a = std::max(a, std::abs(x));
            for (double x : p.beta) b = std::max(b, std::abs(x));
            if (std::isfinite(std::abs(p.scale * a) * b)) continue;  // as PartValues forms them
            const auto stated = acc.stated_kron.find(i);
            if (stated != acc.stated_kron.end()) {
                const auto& [s, sa, sb] = stated->second;
                why << " (|scale|·max|λ(A)|·max|λ(B)| = " << std::abs(s) << " · " << sa << " · " << sb << ")";
            }
        } else if (std::all_of(p.values.begin(), p.values.end(), [](double v) { return std::isfinite(v); })) {
            continue;
        }
        throw NumericError(info.source() + ": part " + acc.paths[i] + ": an eigenvalue overflowed float64" +
                           why.str() + "; rescale the Hessian");
    }
}

// ‖H‖_F = ‖values‖₂ (Eigenvalues::norm). A value that is not finite is an
// error (the products of large factors).
double frobenius_of(const Eigenvalues& values, const HessianInfo& info) {
    const double f = values.norm();
    if (!std::isfinite(f)) throw NumericError(info.source() + ": an eigenvalue overflowed float64; rescale the Hessian");
    return f;
}

}  // namespace

StructuredSpectrum structured_spectrum(const HessianInfo& info, const ReadOptions& opt, SideBySide side_by_side,
                                       const GramBuilder* gram) {
    const auto t0 = detail::Clock::now();
    const StructurePart root = describe_structure(info, opt);
    StructuredSpectrum out;
    Accumulator acc;
    auto span = [&](const StructurePart& p, const std::string& name) {
        BlockSpan b;
        b.name = name;
        b.n = p.n;
        b.begin = acc.parts.size();
        part_values(info, p, opt, gram, acc);
        b.end = acc.parts.size();
        out.blocks.push_back(b);
    };
    // A part that fails in the walk (a diagonal, a factor) ends it; the
    // square parts before it are still solved, and one of them failing is
    // the first failure in the structure's order.
    std::exception_ptr walk_failed;
    try {
        if (root.kind == PartKind::blocks)
            for (const auto& child : root.parts) span(child, child.path.substr(child.path.rfind('/') + 1));
        else
            span(root, root.path == "/" ? "/" : root.path.substr(root.path.rfind('/') + 1));
    } catch (...) {
        walk_failed = std::current_exception();
    }
    out.side_by_side = solve_squares(info, root, opt, side_by_side, acc);
    fold_squares(info, acc);
    if (walk_failed) std::rethrow_exception(walk_failed);
    reject_overflowed_part(info, acc);
    out.parts = std::move(acc.parts);
    out.frobenius = frobenius_of(out.values(), info);
    // Every value 0 while the factors are not: the products fell under
    // float64's smallest subnormal (entries of 1e-200 in A and B), and the
    // Hessian would read as the zero matrix, flat for certain.
    if (out.frobenius == 0 && acc.nonzero_products)
        throw NumericError(info.source() + ": every eigenvalue underflowed float64 (the products of the stored "
                                           "values, AᵢⱼBₖₗ or GᵀG, are under 4.9e-324, though the values are not "
                                           "zero); rescale the Hessian");
    out.asymmetry = acc.asymmetry;
    out.symmetric_frobenius = std::hypot(out.frobenius, acc.skew_products);
    out.value_error = acc.value_error;
    out.stored_underflow = acc.stored_underflow;
    out.float32_values = acc.float32_values;
    for (const Square& q : acc.squares) out.float32_values = out.float32_values || q.float32_values;
    // A bound past DBL_MAX would make the floor infinite and every direction flat.
    if (!std::isfinite(out.frobenius) || !std::isfinite(out.asymmetry) || !std::isfinite(out.value_error))
        reject_norm_overflow(info.source());
    if (out.asymmetry > 0) {
        try {
            check_symmetry(info, relative_asymmetry(out.asymmetry, out.symmetric_frobenius), opt);
        } catch (const InputError& e) {
            if (acc.most_skew_part.empty()) throw;
            throw InputError(std::string(e.what()) + "; the most of it from " + acc.most_skew_part);
        }
    }
    // Factors both far from symmetric (A ⊗ B of two skew matrices is
    // symmetric): the values, A_s ⊗ B_s's, miss the twin's A_k ⊗ B_k, which
    // would only raise the floor of the whole. Not an asymmetry (the twin
    // may be symmetric), so refused past max_asymmetry or 0.001, whichever
    // is smaller, however far max_asymmetry is raised.
    if (const double limit = std::min(opt.max_asymmetry, kron_skew_share); acc.skew_share > limit) {
        const auto [share, over] = texts_apart(acc.skew_share, limit);
        throw InputError(info.file + ":" + acc.skew_share_part + ": the Kronecker factors A and B are both far " +
                         "from symmetric: s·A_k ⊗ B_k (their skew parts) is " + share +
                         " of the pair's symmetric part, over " + over +
                         (limit < kron_skew_share ? " (option max_asymmetry)" : "") +
                         "; the kron form solves the factors' symmetric parts: store symmetric factors");
    }
    Spectrum& s = out.spectrum;
    s.n = root.n;
    s.method = "structured";
    s.complete = out.values().size() == s.n;  // the others are exactly zero: nothing is unknown
    s.stats.passes = 1;
    s.stats.seconds = detail::since(t0);
    return out;
}

}  // namespace basinvol
