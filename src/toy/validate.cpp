#include <basinvol/error.hpp>
#include <basinvol/io/reader.hpp>
#include <basinvol/toy/loss.hpp>
#include <basinvol/toy/montecarlo.hpp>
#include <basinvol/toy/spectrum.hpp>
#include <basinvol/toy/validate.hpp>

#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <iterator>
#include <limits>
#include <new>
#include <set>
#include <sstream>

namespace basinvol::toy {

const char* verdict_name(Verdict v) {
    switch (v) {
        case Verdict::pass: return "pass";
        case Verdict::fail: return "fail";
        case Verdict::info: return "info";
        case Verdict::error: return "error";
    }
    return "error";
}

bool has_expectations(const Attributes& attrs) {
    for (const auto& [k, v] : attrs.numbers)
        if (k.rfind("expected_", 0) == 0) return true;
    for (const auto& [k, v] : attrs.strings)  // an unreadable expectation is still one: it fails, never skips
        if (k.rfind("expected_", 0) == 0) return true;
    return attrs.strings.count("toy_loss") > 0;
}

// 2·δ·Σ 1/|λ| with δ = max(ε·‖H‖_F, n·η/2): rounding moves each eigenvalue
// by ε·‖H‖_F, and among subnormal numbers (η = 2^-1074, the step there) by
// up to n·η/2, as the noise floor says. Summed in long double, whose range
// holds ‖H‖_F of 1e200 and 1/|λ| of subnormal λ (in double one overflowed to
// inf, the other to 0·inf).
double logv_tolerance(const std::vector<double>& curved_abs, long double frobenius, double eps, std::size_t n,
                      double log_volume) {
    const long double delta = std::max(eps * frobenius, static_cast<long double>(n) * 0x1p-1074L / 2);
    long double ratio = 0;
    for (double x : curved_abs) ratio += delta / x;
    return 1e-12 * std::max(1.0, std::abs(log_volume)) + static_cast<double>(2 * ratio);
}

double entrywise_logv_tolerance(const Eigen::MatrixXd& H, double tol, bool drop_negative, double u, double log_volume,
                                double half_step) {
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(H);
    if (es.info() != Eigen::Success) throw NumericError("eigen-decomposition did not converge");
    const Eigen::Index n = H.rows();
    // M = Σ_curved v vᵀ/λ: the derivative of Σ log|λ| with respect to H.
    Eigen::MatrixXd M = Eigen::MatrixXd::Zero(n, n);
    long double inv = 0;
    for (Eigen::Index i = 0; i < n; ++i) {
        const double v = es.eigenvalues()(i);
        if (!(std::abs(v) > tol) || (drop_negative && v < 0)) continue;
        M.noalias() += es.eigenvectors().col(i) * es.eigenvectors().col(i).transpose() / v;
        inv += 1.0L / std::abs(v);
    }
    const double s = (H.cwiseAbs().array() * M.cwiseAbs().array()).sum();
    const double generation = static_cast<double>(n) * std::numeric_limits<double>::epsilon() * H.norm();
    return 1e-12 * std::max(1.0, std::abs(log_volume)) + u * s + half_step * M.cwiseAbs().sum() +
           generation * static_cast<double>(inv);
}

namespace {

std::string fmt(const char* f, double a, double b = 0, double c = 0, double d = 0) {
    char buf[256];
    const CLocale in_c;
    std::snprintf(buf, sizeof buf, f, a, b, c, d);
    return buf;
}

// An expected_* attribute: its number, nothing when absent; one that is
// present but not one number is an error, never silently skipped.
std::optional<double> attr(const Attributes& a, const char* key) {
    if (const auto why = not_a_number(a, key)) throw InputError(std::string("attribute ") + key + " " + *why);
    auto it = a.numbers.find(key);
    if (it == a.numbers.end()) return std::nullopt;
    if (!std::isfinite(it->second))
        throw InputError(std::string("attribute ") + key + " must be a finite number, got " + fmt("%g", it->second));
    return it->second;
}

// The r curved directions of the stored matrix: M = S·VᵀHV (S = sign of each
// eigenvalue, so --negatives abs measures |λ|), symmetrized.
Eigen::MatrixXd curved_form(const HessianInfo& info, const ReadOptions& read, double tol, bool drop_negative) {
    Hessian h = read_hessian(info, read);
    Eigen::MatrixXd H = h.to_f64();
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(H);
    if (es.info() != Eigen::Success) throw NumericError(info.source() + ": eigen-decomposition did not converge");
    std::vector<Eigen::Index> keep;
    std::vector<double> sign;
    for (Eigen::Index i = 0; i < H.rows(); ++i) {
        const double v = es.eigenvalues()(i);
        if (!(std::abs(v) > tol) || (drop_negative && v < 0)) continue;
        keep.push_back(i);
        sign.push_back(v < 0 ? -1 : 1);
    }
    Eigen::MatrixXd V(H.rows(), static_cast<Eigen::Index>(keep.size()));
    for (std::size_t k = 0; k < keep.size(); ++k) V.col(static_cast<Eigen::Index>(k)) = es.eigenvectors().col(keep[k]);
    Eigen::MatrixXd M = V.transpose() * H * V;
    for (std::size_t k = 0; k < keep.size(); ++k) M.row(static_cast<Eigen::Index>(k)) *= sign[k];
    return (M + M.transpose()) / 2;
}

Check make(const std::string& source, const std::string& name) {
    Check c;
    c.source = source;
    c.check = name;
    return c;
}

// The expectations validate checks; any other expected_* attribute (a
// misspelling such as expected_volume) is an expectation it cannot read.
constexpr const char* known_expectations[] = {"expected_rank", "expected_dim", "expected_negative",
                                              "expected_log_volume", "expected_learning_coefficient"};

// One error check per expected_* attribute validate does not know; the
// dataset's other checks still run.
void unknown_expectations(const std::string& src, const Attributes& a, std::vector<Check>& out) {
    std::string names;
    for (const char* e : known_expectations) names += std::string(names.empty() ? "" : ", ") + e;
    auto known = [](const std::string& k) {
        return std::find(std::begin(known_expectations), std::end(known_expectations), k) !=
               std::end(known_expectations);
    };
    std::set<std::string> keys;
    for (const auto& [k, v] : a.numbers) keys.insert(k);
    for (const auto& [k, v] : a.strings) keys.insert(k);
    for (const auto& k : keys) {
        if (k.rfind("expected_", 0) != 0 || known(k)) continue;
        Check c = make(src, "expectation");
        c.verdict = Verdict::error;
        c.note = "attribute " + k + " is not an expectation validate knows (" + names + ")";
        out.push_back(c);
    }
}

// A toy loss at its minimum: the loss, the threshold and the directions its
// Hessian curves.
struct LossAtMinimum {
    const PolyLoss& loss;
    double T;
    std::vector<std::size_t> curved;
    std::vector<double> curved_h;  // their second derivatives
};

// The slice through the minimum along the Hessian's curved directions: the
// Hessian's volume against the true sublevel volume there.
Check slice_check(const std::string& src, const LossAtMinimum& m, const ValidateOptions& o) {
    Check slice = make(src, "true_slice_log_volume");
    slice.expected = expected_answer(m.curved_h, m.T).log_volume;
    if (!m.loss.nonnegative()) {
        slice.note = "skipped: the loss has a negative or odd term, so {L <= T} is not box-bounded";
    } else if (m.curved.empty()) {
        slice.note = "skipped: the loss's Hessian at 0 has no curved direction";
    } else if (m.curved.size() > o.mc_max_rank) {
        slice.note = "skipped: curved rank " + std::to_string(m.curved.size()) + " > option mc_max_rank";
    } else if (m.T < std::numeric_limits<double>::min() / std::numeric_limits<double>::epsilon()) {
        // Loss values near T would be subnormal or within 2^52 of it: their digits are gone.
        slice.note = fmt("skipped: T = %g is too small for the loss's values to keep their digits in float64", m.T);
    } else {
        std::vector<double> half;
        for (std::size_t i : m.curved) half.push_back(m.loss.half_width(i, m.T));
        if (std::any_of(half.begin(), half.end(), [](double h) { return std::isinf(h); })) {
            slice.note = "skipped: {L <= T} reaches past 2^1022 along a curved coordinate";
            return slice;
        }
        std::vector<double> x(m.loss.n(), 0.0);
        Estimate e = box_volume(
            half,
            [&](const double* z) {
                for (std::size_t k = 0; k < m.curved.size(); ++k) x[m.curved[k]] = z[k];
                return m.loss(x.data()) <= m.T;
            },
            o.samples, o.seed + 3);
        slice.measured = e.log_value;
        slice.se = e.se_log;
        slice.note = fmt("quadratic model's volume minus true sublevel volume on the curved slice at T = %g: %.4g nats",
                         m.T, *slice.expected - e.log_value);
    }
    return slice;
}

// Over all directions: how the sublevel volume scales with T (the learning
// coefficient), checked against expected_learning_coefficient when given.
Check learning_coefficient_check(const std::string& src, const LossAtMinimum& m, std::optional<double> expected,
                                 const ValidateOptions& o) {
    Check lc = make(src, "learning_coefficient");
    lc.expected = expected;
    const std::size_t n = m.loss.n();
    std::string missing;
    // Out of the sampler's reach with these options (more dimensions than a
    // box scan takes, a box past double's range, or no sample inside): not
    // checked, as the Monte Carlo volume is not. A loss whose set is not
    // box-bounded cannot be measured at all, whatever the options.
    bool out_of_reach = false;
    std::string reason, hint;  // why out of reach, and what option may help
    for (std::size_t i = 0; i < n && missing.empty(); ++i)
        if (!m.loss.appears(i)) missing = "x" + std::to_string(i);
    std::vector<std::vector<double>> halves;  // the box at each T of the scan
    if (m.loss.nonnegative() && missing.empty() && n <= o.scan_max_n)
        for (std::size_t k = 0; k < o.scan_factors.size() && !out_of_reach; ++k) {
            halves.emplace_back();
            for (std::size_t i = 0; i < n; ++i) halves.back().push_back(m.loss.half_width(i, m.T * o.scan_factors[k]));
            out_of_reach = std::any_of(halves.back().begin(), halves.back().end(), [](double h) { return std::isinf(h); });
        }
    if (!m.loss.nonnegative()) {
        lc.note = "not measured: the loss has a negative or odd term";
    } else if (!missing.empty()) {
        lc.note = "not measured: " + missing + " does not appear in the loss, so {L <= T} is unbounded";
    } else if (n > o.scan_max_n) {
        out_of_reach = true;
        reason = "n = " + std::to_string(n) + " > option scan_max_n = " + std::to_string(o.scan_max_n);
        hint = "; raise it to check expected_learning_coefficient";
        lc.note = "not measured: " + reason;
    } else if (out_of_reach) {
        reason = "{L <= T} reaches past 2^1022 along a coordinate, where no box fits in float64";
        lc.note = "not measured: " + reason;
    } else {
        std::vector<ScalingPoint> pts;
        for (std::size_t k = 0; k < o.scan_factors.size(); ++k) {
            const double Tk = m.T * o.scan_factors[k];
            const std::vector<double>& half = halves[k];
            ScalingPoint p;
            p.T = Tk;
            p.estimate = box_volume(
                half, [&](const double* z) { return m.loss(z) <= Tk; }, o.samples, o.seed + 10 + k);
            pts.push_back(p);
        }
        ScalingFit fit = fit_scaling(pts);
        if (fit.ok) {
            lc.measured = fit.slope;
            lc.se = fit.se;
            std::ostringstream s;
            s << "V(T) ~ T^" << fit.slope << " over T = " << m.T * o.scan_factors.back() << ".." << m.T
              << "; the Hessian implies r/2 = " << static_cast<double>(m.curved.size()) / 2;
            lc.note = s.str();
        } else {
            reason = lc.note = "no sample hit the sublevel set";
            hint = "; raise option samples to check it";
            out_of_reach = true;
        }
    }
    const auto exact = m.loss.learning_coefficient();
    if (lc.expected) {
        if (!lc.measured && out_of_reach && exact) {
            // Out of the sampler's reach, a loss of one power per coordinate
            // still has its exponent exactly: {L <= T} scales as T^(Σ 1/p).
            lc.measured = *exact;
            lc.tolerance = 1e-7 * std::max(1.0, std::abs(*exact));  // (an expectation written to 8 digits)
            lc.verdict = std::abs(*lc.measured - *lc.expected) <= *lc.tolerance ? Verdict::pass : Verdict::fail;
            lc.note = "not sampled (" + reason + "): each coordinate has one power p, so V(T) ~ T^(sum of 1/p) exactly";
        } else if (!lc.measured && out_of_reach) {  // the note says what to raise, where an option can help
            lc.verdict = Verdict::info;
            lc.note = "not checked: " + reason + hint;
        } else if (!lc.measured) {  // the loss itself cannot be measured: the expectation is wrong for it
            lc.verdict = Verdict::error;
            lc.note = "cannot check expected_learning_coefficient: " + lc.note;
        } else {
            // Exact scaling (one monomial per coordinate): only sampling noise.
            lc.tolerance = o.sigmas * *lc.se;
            lc.verdict = std::abs(*lc.measured - *lc.expected) <= *lc.tolerance ? Verdict::pass : Verdict::fail;
        }
    }
    return lc;
}

// The ε of the values' rounding: the stored type's own (float16's 2^-10,
// float32's 2^-23, 2^-52 for float64 and integers, which convert exactly),
// float32's for float32 data in a float64 dataset, as the row measured it.
double values_eps(const HessianInfo& info, const Row& row) {
    const double own = info.stored_eps > 0 ? info.stored_eps : stored_eps(StoredType::float64);
    return row.warnings.has(Warning::float32_values) ? std::max(own, stored_eps(StoredType::float32)) : own;
}

// How far rounding the values to the stored type can move the row's log V
// from the exact spectrum's: Weyl's bound over float64 storage, the
// entrywise bound (with the solver's own error) over coarser types. One per
// toy: over a coarse type the bound re-reads the matrix and decomposes it,
// so it does that once for every check that asks.
class StoredRounding {
public:
    StoredRounding(const HessianInfo& info, const Row& row, const ValidateOptions& o)
        : info_(info), row_(row), o_(o), eps_(values_eps(info, row)) {}

    // Coarser than float64: the bound is the whole matrix's and already
    // holds the row's log_volume_error.
    bool coarse() const { return eps_ > stored_eps(StoredType::float64); }

    double tolerance(const std::vector<double>& curved_abs, long double frobenius) {
        if (!coarse()) return logv_tolerance(curved_abs, frobenius, eps_, info_.n, row_.log_volume);
        if (!entrywise_) {  // its entrywise rounding dominates (see entrywise_logv_tolerance)
            Hessian h = read_hessian(info_, o_.analyze.read);
            const Eigen::MatrixXd H = h.to_f64();
            const bool drop = o_.analyze.negatives == NegativePolicy::drop;
            entrywise_ = entrywise_logv_tolerance(H, row_.tol, drop, eps_ / 2, row_.log_volume,
                                                  subnormal_step(eps_) / 2) +
                         row_.log_volume_error;
        }
        return *entrywise_;
    }

private:
    const HessianInfo& info_;
    const Row& row_;
    const ValidateOptions& o_;
    double eps_;
    std::optional<double> entrywise_;
};

// The stored matrix must be the loss's Hessian at its minimum (up to the
// rotation the generator may apply, which keeps its spectrum): the curved
// count, the negatives and the volume the row measured are those of the
// loss's second derivatives, cut where the row cut, within the rounding of
// the stored values. (Otherwise every other check passes on a matrix that
// is not this loss's.)
Check hessian_of_loss_check(const HessianInfo& info, const Row& row, const LossAtMinimum& m, const ValidateOptions& o,
                            StoredRounding& rounding) {
    Check c = make(info.source(), "hessian_of_loss");
    const bool drop = o.analyze.negatives == NegativePolicy::drop;
    const double eps = values_eps(info, row);
    std::vector<double> kept, kept_abs;
    long double frob2 = 0;
    for (double v : m.curved_h) frob2 += static_cast<long double>(v) * v;
    // How far the stored matrix's computed eigenvalues may lie from the
    // loss's (Weyl): the rounding to the stored type, twice that for a
    // rotated toy's own arithmetic, and the solver's max(2√n, 8)·ε·‖H‖_F.
    // ‖H‖_F is the loss's, or the stored matrix's (from the row's
    // eigenvalues) when smaller: a loss that claims more curvature than the
    // matrix holds must not widen the window that excuses it (a flat
    // direction then put every curvature "at the cut", and a wrong loss went
    // unchecked). Where the matrix is the loss's Hessian the two agree.
    long double stored2 = 0;
    for (double v : row.eigenvalues) stored2 += static_cast<long double>(v) * v;
    const double norm = static_cast<double>(std::sqrt(std::min(frob2, stored2 * (1 + 1e-6L))));
    const double moved = (2 * eps + std::max(2 * std::sqrt(static_cast<double>(info.n)), 8.0) *
                                        std::numeric_limits<double>::epsilon()) * norm +
                         static_cast<double>(info.n) * subnormal_step(eps);
    // Every eigenvalue, in order, within that of the loss's (Weyl): counts
    // and a log-determinant alone would pass a matrix of another spectrum
    // with the same product (diag(1, 2, 4) for the loss's 2·I).
    std::string wrong_spectrum;
    if (row.eigenvalues.size() == info.n && m.curved_h.size() <= info.n) {
        std::vector<double> loss_values(m.curved_h), stored(row.eigenvalues);
        loss_values.resize(info.n, 0.0);
        std::sort(loss_values.begin(), loss_values.end());
        std::sort(stored.begin(), stored.end());
        std::size_t worst = 0;
        for (std::size_t i = 1; i < info.n; ++i)
            if (std::abs(stored[i] - loss_values[i]) > std::abs(stored[worst] - loss_values[worst])) worst = i;
        if (info.n > 0 && !(std::abs(stored[worst] - loss_values[worst]) <= moved))
            wrong_spectrum = fmt("the stored matrix's eigenvalues are not the loss's second derivatives at 0: "
                                 "eigenvalue %.0f (ascending) is %.17g where the loss's is %.17g, over the %.3g its "
                                 "rounding may move it; ",
                                 static_cast<double>(worst + 1), stored[worst], loss_values[worst], moved);
    }
    // The loss's flat directions (zero curvature) lie at a cut drawn within that of 0.
    bool at_cut = m.curved_h.size() < info.n && row.tol <= moved;
    for (double v : m.curved_h) {
        at_cut = at_cut || std::abs(std::abs(v) - row.tol) <= moved;
        if (!(std::abs(v) > row.tol) || (drop && v < 0)) continue;
        kept.push_back(v);
        kept_abs.push_back(std::abs(v));
    }
    const Expected want = expected_answer(kept, row.threshold);
    c.expected = want.log_volume;
    c.measured = row.log_volume;
    // The row's own solver error on top of the stored rounding (a coarse
    // type's bound holds it already).
    const double tolerance =
        rounding.tolerance(kept_abs, std::sqrt(frob2)) + (rounding.coarse() ? 0.0 : row.log_volume_error);
    const std::string counts =
        fmt("the stored matrix against the loss's second derivatives at 0: rank %.0f vs %.0f, negative %.0f vs %.0f",
            static_cast<double>(row.rank), static_cast<double>(want.rank), static_cast<double>(row.negative),
            static_cast<double>(want.negative));
    // Either side of the cut is the loss's, the row's own count is not
    // decided (its band), or no bound holds: nothing to compare.
    const bool undecided = row.dim_low != row.dim_high || row.warnings.has(Warning::cut_below_floor);
    if (wrong_spectrum.empty() && (at_cut || undecided || !std::isfinite(tolerance))) {
        c.note = "not compared: " +
                 std::string(at_cut      ? "a curvature of the loss lies at the cut, within the rounding"
                             : undecided ? "the row's cut is not decided (its dim band, or a cut under the noise floor)"
                                         : "the row's log_volume_error is unbounded") +
                 "; " + counts;
        return c;
    }
    c.tolerance = tolerance;
    const bool same_counts = row.rank == want.rank && (drop || row.negative == want.negative);
    c.verdict = wrong_spectrum.empty() && same_counts && std::abs(row.log_volume - want.log_volume) <= tolerance
                    ? Verdict::pass
                    : Verdict::fail;
    c.note = wrong_spectrum + counts + fmt(", log-volume difference %.3g nats", row.log_volume - want.log_volume);
    return c;
}

void loss_checks(const HessianInfo& info, const Row& row, const ValidateOptions& o, StoredRounding& rounding,
                 std::vector<Check>& out) {
    const std::string src = info.source();
    const auto expected_lc = attr(info.attrs, "expected_learning_coefficient");
    auto it = info.attrs.strings.find("toy_loss");
    if (it == info.attrs.strings.end()) {
        if (expected_lc) {
            Check c = make(src, "learning_coefficient");
            c.verdict = Verdict::error;
            c.expected = expected_lc;
            c.note = "expected_learning_coefficient needs the loss itself (attribute toy_loss)";
            out.push_back(c);
        }
        return;
    }
    if (it->second.rfind(unreadable_prefix, 0) == 0) {  // not one string: refused as the reader read it
        Check c = make(src, "toy_loss");
        c.verdict = Verdict::error;
        c.note = "attribute toy_loss " + it->second.substr(std::strlen(unreadable_prefix));
        out.push_back(c);
        return;
    }
    std::optional<PolyLoss> loss;
    try {
        const auto n = attr(info.attrs, "toy_n");
        loss = PolyLoss::parse(it->second, n ? static_cast<std::size_t>(*n) : 0);
    } catch (const Error& e) {
        Check c = make(src, "toy_loss");
        c.verdict = Verdict::error;
        c.note = e.what();
        out.push_back(c);
        return;
    }
    // The loss must be the matrix's: its coordinates (or toy_n) are n.
    if (loss->n() != info.n) {
        Check c = make(src, "toy_loss");
        c.verdict = Verdict::error;
        c.note = fmt("the loss has %.0f coordinates (toy_n or the highest it names) where the matrix is %.0f x %.0f: "
                     "its checks would measure another space",
                     static_cast<double>(loss->n()), static_cast<double>(info.n), static_cast<double>(info.n));
        out.push_back(c);
        return;
    }
    LossAtMinimum m{*loss, row.threshold, {}, {}};
    const Eigen::VectorXd h = loss->hessian_diagonal();
    for (Eigen::Index i = 0; i < h.size(); ++i)
        if (h(i) != 0) {
            m.curved.push_back(static_cast<std::size_t>(i));
            m.curved_h.push_back(h(i));
        }
    out.push_back(hessian_of_loss_check(info, row, m, o, rounding));
    out.push_back(slice_check(src, m, o));
    out.push_back(learning_coefficient_check(src, m, expected_lc, o));
    Check he = make(src, "hessian_exponent");
    he.measured = static_cast<double>(m.curved.size()) / 2;
    he.note = "r/2: the volume exponent a quadratic model with r = " + std::to_string(m.curved.size()) +
              " curved directions implies";
    out.push_back(he);
}

// log_volume against expected_log_volume, within what rounding of the
// stored values can move it.
Check log_volume_check(const HessianInfo& info, const Row& row, double expected, const std::vector<double>& curved_abs,
                       long double frobenius, const ValidateOptions& o, StoredRounding& rounding) {
    Check c = make(info.source(), "log_volume");
    c.expected = expected;
    c.measured = row.log_volume;
    c.tolerance = o.logv_tol ? *o.logv_tol : rounding.tolerance(curved_abs, frobenius);
    c.verdict = std::abs(row.log_volume - expected) <= *c.tolerance ? Verdict::pass : Verdict::fail;
    c.note = fmt("difference %.3g nats", row.log_volume - expected);
    // Volumes of different dimensions are not compared: a cut that keeps
    // noise as curvature also widens the tolerance by those values.
    if (const auto rank = attr(info.attrs, "expected_rank"); rank && *rank != static_cast<double>(row.rank)) {
        c.verdict = Verdict::fail;
        c.note = fmt("the rank is %.0f where %.17g is expected: volumes of different dimensions (difference %.3g nats)",
                     static_cast<double>(row.rank), *rank, row.log_volume - expected);
    }
    return c;
}

// The two-sided probability, under Binomial(N, p), of a count at least as
// far from N·p as h on its side: twice that tail, at most 1. The terms are
// summed from h outward (the distribution is unimodal, so they fall).
double binomial_two_sided(std::size_t N, double p, std::size_t h) {
    if (!(p > 0)) return h == 0 ? 1.0 : 0.0;
    if (!(p < 1)) return h == N ? 1.0 : 0.0;
    const double n = static_cast<double>(N), k0 = static_cast<double>(h), odds = p / (1 - p);
    const double log_pmf = std::lgamma(n + 1) - std::lgamma(k0 + 1) - std::lgamma(n - k0 + 1) + k0 * std::log(p) +
                           (n - k0) * std::log1p(-p);
    const bool upper = k0 >= n * p;
    double sum = 0, term = 1;  // relative to pmf(h)
    for (std::size_t k = h;;) {
        sum += term;
        if (upper ? k == N : k == 0) break;
        const double kk = static_cast<double>(k);
        term *= upper ? (n - kk) / (kk + 1) * odds : kk / ((n - kk + 1) * odds);
        k = upper ? k + 1 : k - 1;
        if (term < 1e-17 * sum) break;
    }
    return std::min(1.0, 2 * std::exp(log_pmf + std::log(sum)));
}

// The volume of the curved part's ellipsoid by Monte Carlo, against
// `reference`, which may itself differ from the stored matrix's volume by
// `reference_tol` nats (an expected_log_volume of the exact prescription,
// stored rounded). The test is of the hit count the reference predicts,
// N·p₀ with p₀ = V/|B|, by its exact binomial tail at the two-sided level
// of o.sigmas standard errors; the standard error reported is the
// reference's, sqrt(p₀(1 − p₀)/N), not the estimate's (which a low count
// makes small, failing correct toys).
Check monte_carlo_check(const HessianInfo& info, const Row& row, double reference, double reference_tol,
                        std::size_t r, const ValidateOptions& o) {
    Check mc = make(info.source(), "mc_log_volume");
    mc.expected = reference;
    if (r == 0) {
        mc.note = "skipped: no curved direction (the volume of a point is 1)";
        return mc;
    }
    if (r > o.mc_max_rank || row.n > o.mc_max_n) {
        mc.note = "skipped: curved rank " + std::to_string(r) + " > option mc_max_rank or n > " + std::to_string(o.mc_max_n);
        return mc;
    }
    try {
        const bool drop = o.analyze.negatives == NegativePolicy::drop;
        Eigen::MatrixXd M = curved_form(info, o.analyze.read, row.tol, drop);
        if (!M.allFinite()) {  // eigenvalues near DBL_MAX: VᵀHV's sums overflow
            mc.note = "not checked: the curved part's quadratic form VᵀHV overflows float64";
            return mc;
        }
        Estimate e = ellipsoid_volume(M, row.threshold, o.samples, o.seed + 1);
        mc.measured = e.log_value;
        const double n = static_cast<double>(e.samples), hits = static_cast<double>(e.hits);
        const double p_hat = hits / n;
        // p₀ of the reference, moved toward p̂ by as much as its own tolerance allows.
        const double at = reference - e.log_box;
        const double gap = std::log(p_hat) - at;  // −inf with no hit
        const double p_ref = std::exp(at + std::clamp(gap, -reference_tol, reference_tol));  // past 1: more than the box
        const double p0 = std::min(1.0, p_ref);
        const double expected_hits = n * p0, expected_misses = n * (1 - p0);
        const double se0 = p0 > 0 ? std::sqrt(std::max(0.0, 1 - p0) / (n * p0)) : INFINITY;  // SE of V̂/V₀ and of log V̂
        mc.se = se0;
        const double ratio = e.value_over(reference);
        const double level = std::erfc(o.sigmas / std::sqrt(2.0));  // two-sided, 6.3e-5 at 4
        // A set that fills its box (r = 1) has p₀ = 1 and SE 0: it agrees to
        // the reference's tolerance and rounding. Otherwise the count is
        // judged by its exact binomial tail (the normal approximation's
        // skew near 100 expected hits doubles its level at 4 SE).
        const bool fills_box = !(p0 < 1);
        const bool agree = fills_box ? std::abs(p_hat / p_ref - 1) <= 1e-9
                                     : binomial_two_sided(e.samples, p0, e.hits) >= level;
        if (!fills_box && se0 > 0 && std::min(expected_hits, expected_misses) >= 100) {
            // What acceptance is, near enough, on the log scale on the estimate's side.
            const double w = o.sigmas * se0;
            mc.tolerance = std::isfinite(*mc.measured) && *mc.measured >= reference
                               ? std::log1p(w) + reference_tol
                               : (w < 1 ? -std::log1p(-w) + reference_tol : INFINITY);
        }
        // Not a check when even the most extreme count on the scarce side
        // (no hit, or no miss) would not refute the volume at this level.
        const bool misses_scarce = expected_misses < expected_hits;
        const double extreme = std::log(2.0) + n * std::log(misses_scarce ? p0 : 1 - p0);  // log P(all or none)
        if (agree && !fills_box && extreme >= std::log(level)) {
            mc.verdict = Verdict::info;
            mc.note = fmt(misses_scarce ? "not checked: %.0f of %.0f samples fell outside, %.3g expected: too few to judge"
                                        : "not checked: %.0f of %.0f samples fell inside, %.3g expected: too few to judge",
                          misses_scarce ? n - hits : hits, n, misses_scarce ? expected_misses : expected_hits);
            mc.note += r > 1 ? "; raise option samples or lower option mc_max_rank" : "; raise option samples";
            return mc;
        }
        mc.verdict = agree ? Verdict::pass : Verdict::fail;
        mc.note = fmt("V_mc/V = %.6g +- %.3g (%.3g SE) from %.0f samples", ratio, se0,
                      se0 > 0 ? (p_hat / p_ref - 1) / se0 : 0.0, n);
        if (!agree && p_ref > 1)  // every sample is inside: the count cannot reach the volume
            mc.note += fmt("; the expected volume is %.6g times the box the ellipsoid fills", p_ref);
        if (!fills_box)
            mc.note += fmt(", %.0f hits where %.4g were expected (exact binomial test)", hits, expected_hits);
    } catch (const Error& ex) {
        mc.verdict = Verdict::error;
        mc.note = ex.what();
    }
    return mc;
}

// The random-direction estimator and its gap per dimension (information only).
void radial_checks(const std::string& src, const std::vector<double>& curved_abs, double T, const ValidateOptions& o,
                   std::vector<Check>& out) {
    const std::size_t r = curved_abs.size();
    Radial rd = radial_estimate(curved_abs, T, o.radial_directions, o.seed + 2);
    Check c = make(src, "radial_log_volume");
    c.expected = rd.exact;
    c.measured = rd.log_volume;
    c.se = rd.se;
    c.note = fmt("random-direction estimate, mean log radius over %.0f directions: %.4g nats below exact",
                 static_cast<double>(rd.directions), rd.exact - rd.log_volume);
    out.push_back(c);
    Check g = make(src, "radial_gap_per_dim");
    g.expected = rd.amgm_per_dim;
    g.measured = rd.gap_per_dim;
    g.se = rd.se / static_cast<double>(r);
    g.note = "(exact - radial)/r; expected column: (ln AM - ln GM)/2 of the curved |lambda|";
    out.push_back(g);
}

void spectrum_checks(const HessianInfo& info, const Row& row, const ValidateOptions& o, StoredRounding& rounding,
                     std::vector<Check>& out) {
    const std::string src = info.source();
    auto count = [&](const char* key, const char* name, std::size_t got) {
        auto e = attr(info.attrs, key);
        if (!e) return;
        Check c = make(src, name);
        c.expected = *e;
        c.measured = static_cast<double>(got);
        c.tolerance = 0;
        c.verdict = *e == static_cast<double>(got) ? Verdict::pass : Verdict::fail;
        // The expected answers are those of a cut over the noise floor: one
        // under it keeps noise as curvature (docs/method.md), so say so.
        if (c.verdict == Verdict::fail && row.warnings.has(Warning::cut_below_floor))
            c.note = fmt("the cut %.3g lies under the noise floor %.3g, where the dim is noise's choice (band %.0f..%.0f)",
                         row.tol, row.noise_floor, static_cast<double>(row.dim_low),
                         static_cast<double>(row.dim_high));
        else if (name != std::string("negative") && row.warnings.has(Warning::ambiguous_rank))
            c.note = fmt("ambiguous_rank: the row's band holds dim %.0f..%.0f; the count is the row's own cut's",
                         static_cast<double>(row.dim_low), static_cast<double>(row.dim_high));
        else if (c.verdict == Verdict::fail) {  // say what differs, as the volume checks do
            c.note = name + fmt(" %.0f where %.17g is expected, at the cut tol = %.3g", static_cast<double>(got), *e,
                                row.tol);
            // The generator's expectations are the default cut's.
            const CutOptions& cut = o.analyze.cut;
            if (cut.rule != CutRule::automatic || cut.rtol || cut.atol || cut.min_gap != CutOptions{}.min_gap)
                c.note += " (cut " + row.cut_rule + ", as given; the expected counts are the default cut's, --cut auto)";
        }
        out.push_back(c);
    };
    count("expected_rank", "rank", row.rank);
    count("expected_dim", "dim", row.dim);
    count("expected_negative", "negative", row.negative);

    const bool drop = o.analyze.negatives == NegativePolicy::drop;
    std::vector<double> curved_abs;
    long double frob2 = 0;
    for (double v : row.eigenvalues) {
        frob2 += static_cast<long double>(v) * v;
        if (std::abs(v) > row.tol && !(drop && v < 0)) curved_abs.push_back(std::abs(v));
    }
    const auto expected_logv = attr(info.attrs, "expected_log_volume");
    // Against the expectation the Monte Carlo estimate is allowed the stored
    // rounding's bound (the log_volume check's own, not a --logv-tol that
    // widens that check: the count would then accept volumes past its box);
    // against the row's own log V, its solver error.
    double reference_tol = std::isfinite(row.log_volume_error) ? row.log_volume_error : 0;
    if (expected_logv) {
        out.push_back(
            log_volume_check(info, row, *expected_logv, curved_abs, std::sqrt(frob2), o, rounding));
        reference_tol = rounding.tolerance(curved_abs, std::sqrt(frob2));
    }
    out.push_back(monte_carlo_check(info, row, expected_logv.value_or(row.log_volume), reference_tol,
                                    curved_abs.size(), o));
    if (!curved_abs.empty()) radial_checks(src, curved_abs, row.threshold, o, out);
}

}  // namespace

void check_options(const ValidateOptions& o) {
    // Bounds that keep a run finite (a negative count read as unsigned wraps to 1.8e19).
    if (o.samples < 2 || o.samples > 1000000000)
        throw UsageError("samples", "must be between 2 and 1e9, got " + std::to_string(o.samples));
    if (o.mc_max_rank > 1000) throw UsageError("mc_max_rank", "must be at most 1000, got " + std::to_string(o.mc_max_rank));
    if (o.scan_max_n > 1000000)
        throw UsageError("scan_max_n", "must be at most 1e6, got " + std::to_string(o.scan_max_n));
    // An infinite tolerance passes every check: validation would say nothing.
    if (!(o.sigmas > 0 && std::isfinite(o.sigmas)))
        throw UsageError("sigmas", "must be a finite number > 0, got " + value_text(o.sigmas));
    if (o.logv_tol && !(*o.logv_tol >= 0 && std::isfinite(*o.logv_tol)))
        throw UsageError("logv_tol", "must be a finite number >= 0, got " + value_text(*o.logv_tol));
    if (o.radial_directions < 2 || o.radial_directions > 100000000)
        throw UsageError("radial_directions", "must be between 2 and 1e8, got " + std::to_string(o.radial_directions));
    for (double f : o.scan_factors)
        if (!(f > 0 && std::isfinite(f))) throw UsageError("scan_factors", "must be positive numbers");
}

std::vector<Check> validate_hessian(const HessianInfo& info, const ValidateOptions& options) {
    check_options(options);
    // Each toy draws its own numbers: the seed mixed (FNV-1a) with its path
    // and with what makes it the toy it is, its expected_* and toy_*
    // attributes and T as stored, so that estimates of different toys are
    // independent (toys at one path in different files drew the same
    // samples) yet reproducible, wherever the file lies.
    ValidateOptions o = options;
    std::uint64_t h = 1469598103934665603ULL;
    const auto mix = [&h](const void* bytes, std::size_t size) {
        for (std::size_t i = 0; i < size; ++i) h = (h ^ static_cast<const unsigned char*>(bytes)[i]) * 1099511628211ULL;
    };
    mix(info.dataset.data(), info.dataset.size());
    const auto marks_the_toy = [](const std::string& k) { return k.rfind("expected_", 0) == 0 || k.rfind("toy_", 0) == 0; };
    for (const auto& [k, v] : info.attrs.numbers)
        if (marks_the_toy(k)) {
            mix(k.data(), k.size());
            mix(&v, sizeof v);
        }
    for (const auto& [k, v] : info.attrs.strings)
        if (marks_the_toy(k)) {
            mix(k.data(), k.size());
            mix(v.data(), v.size());
        }
    if (info.attrs.loss_threshold) mix(&*info.attrs.loss_threshold, sizeof(double));
    o.seed = options.seed ^ h;
    std::vector<Check> out;
    AnalyzeOptions a = o.analyze;
    a.keep_eigenvalues = true;
    Row row = analyze(info, a);
    if (!row.ok) {
        Check c = make(info.source(), "analyze");
        c.verdict = Verdict::error;
        c.note = row.error;
        out.push_back(c);
        return out;
    }
    unknown_expectations(info.source(), info.attrs, out);
    try {
        StoredRounding rounding(info, row, o);
        spectrum_checks(info, row, o, rounding, out);
        loss_checks(info, row, o, rounding, out);
    } catch (const UsageError&) {
        throw;
    } catch (const Error& e) {
        Check c = make(info.source(), "validate");
        c.verdict = Verdict::error;
        c.note = e.what();
        out.push_back(c);
    } catch (const std::bad_alloc&) {
        Check c = make(info.source(), "validate");
        c.verdict = Verdict::error;
        c.note = "out of memory";
        out.push_back(c);
    }
    return out;
}

}  // namespace basinvol::toy
