#include "threads.hpp"
#include "solve/blas_room.hpp"

#include <basinvol/analyze.hpp>
#include <basinvol/error.hpp>
#include <basinvol/io/reader.hpp>
#include <basinvol/io/structure.hpp>
#include <basinvol/solve/rounding.hpp>
#include <basinvol/solve/structured.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <limits>
#include <cmath>
#include <mutex>
#include <new>
#include <sstream>

namespace basinvol {

void validate(const AnalyzeOptions& o) {
    if (o.threshold && !(*o.threshold > 0 && std::isfinite(*o.threshold)))
        throw UsageError("threshold", "must be a positive finite number, got " + value_text(*o.threshold));
    if (o.regularized && !(*o.regularized > 0 && std::isfinite(*o.regularized)))
        throw UsageError("regularized", "must be a positive finite number, got " + value_text(*o.regularized));
    if (o.hessian_error && !(*o.hessian_error >= 0 && std::isfinite(*o.hessian_error)))
        throw UsageError("hessian_error", "must be a finite number >= 0, got " + value_text(*o.hessian_error));
    if (!(o.read.max_asymmetry >= 0))
        throw UsageError("max_asymmetry", "must be >= 0, got " + value_text(o.read.max_asymmetry));
    // An infinite tol would make every direction flat (and JSON's tol null).
    auto finite_non_negative = [](double v) { return v >= 0 && std::isfinite(v); };
    if (o.cut.rtol && !finite_non_negative(*o.cut.rtol))
        throw UsageError("rtol", "must be a finite number >= 0, got " + value_text(*o.cut.rtol));
    if (o.cut.atol && !finite_non_negative(*o.cut.atol))
        throw UsageError("atol", "must be a finite number >= 0, got " + value_text(*o.cut.atol));
    if (!finite_non_negative(o.cut.min_gap))
        throw UsageError("min_gap", "must be a finite number >= 0, got " + value_text(o.cut.min_gap));
}

const Names<CutRule>& cut_rule_names() {
    static const Names<CutRule> names = {{"auto", CutRule::automatic}, {"dtype", CutRule::dtype}, {"gap", CutRule::gap}};
    return names;
}

const Names<Method>& method_names() {
    static const Names<Method> names = {{"auto", Method::automatic},
                                        {"dense", Method::dense},
                                        {"cholesky", Method::cholesky},
                                        {"sketch", Method::sketch},
                                        {"lanczos", Method::lanczos}};
    return names;
}

const Names<NegativePolicy>& negatives_names() {
    static const Names<NegativePolicy> names = {
        {"abs", NegativePolicy::abs}, {"drop", NegativePolicy::drop}, {"last", NegativePolicy::last}};
    return names;
}

CutRule parse_cut_rule(const std::string& name) { return parse_name(cut_rule_names(), "cut", name); }
Method parse_method(const std::string& name) { return parse_name(method_names(), "method", name); }
NegativePolicy parse_negatives(const std::string& name) { return parse_name(negatives_names(), "negatives", name); }

std::size_t parse_memory_size(const std::string& text) {
    if (text.empty()) return 0;
    const std::string bad = "must be a size such as 8G or 500M, got '" + text + "'";
    std::size_t pos = 0;
    double v = 0;
    if (text.find_first_of("xX") != std::string::npos) throw UsageError("max_memory", bad);  // stod reads hex
    const CLocale c;
    try {
        v = std::stod(text, &pos);
    } catch (...) {
        throw UsageError("max_memory", bad);
    }
    std::string unit = text.substr(pos);
    for (auto& ch : unit) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (!unit.empty() && unit.back() == 'B') unit.pop_back();
    if (!unit.empty() && unit.back() == 'I') unit.pop_back();
    const double k = 1024.0;
    const double mult = unit.empty() ? 1 : unit == "K" ? k : unit == "M" ? k * k : unit == "G" ? k * k * k
                        : unit == "T" ? k * k * k * k : -1;
    if (mult < 0 || !(v > 0) || !std::isfinite(v * mult)) throw UsageError("max_memory", bad);
    // Not a budget of 0 bytes (which means "the default"), nor one past
    // what a size_t holds (converting it is undefined).
    if (v * mult < 1) throw UsageError("max_memory", "must be at least 1 byte, got '" + text + "'");
    // A whole number of bytes (bare, or with B) is taken exactly (a double
    // rounds 2^63 - 1 up).
    const std::string number = unit.empty() && !text.empty() && std::toupper(static_cast<unsigned char>(text.back())) == 'B'
                                   ? text.substr(0, text.size() - 1)
                                   : text;
    const bool digits = unit.empty() && !number.empty() && number.find_first_not_of("0123456789") == std::string::npos;
    if (digits && number.size() <= 19) {
        const unsigned long long bytes = std::strtoull(number.c_str(), nullptr, 10);
        if (bytes < (1ULL << 63)) return static_cast<std::size_t>(bytes);
    }
    if (v * mult >= 0x1p63) throw UsageError("max_memory", "must be under 8 EiB (2^63 bytes), got '" + text + "'");
    return static_cast<std::size_t>(v * mult);
}

std::string unitless_size_problem(const std::string& text) {
    const char* s = text.c_str();
    char* end = nullptr;
    const CLocale c;
    const double v = std::strtod(s, &end);
    while (end != s && *end == ' ') ++end;
    const bool bare = end != s && *end == '\0' && text.find_first_of("xX") == std::string::npos;
    if (!bare || !(v >= 1) || v >= 1073741824.0) return {};  // parse_memory_size's own rules say the rest
    return "has no unit: " + text + " bytes is no budget for a Hessian; write " + text +
           "M for megabytes (the unit of Slurm's --mem and $SLURM_MEM_PER_NODE), " + text + "G for gigabytes, or " +
           text + "B for bytes";
}

Row source_error_row(const Source& source, const std::string& message) {
    Row r;
    // An object written as its rows write it (`x.h5://g//d` is x.h5:/g/d),
    // so that --resume keys its row as it keys the object's ok row.
    r.source = source.text;
    r.file = source.file;
    if (!source.path.empty()) {
        r.dataset = normalize_object_path(source.path);
        r.source = source.file + ":" + r.dataset;
    }
    r.ok = false;
    r.error = message;
    return r;
}

std::vector<ListedHessian> expand_source(const Source& source, Row* error_row, const ListOptions& options) {
    try {
        return list_hessians(source, options);
    } catch (const Error& e) {
        if (error_row) *error_row = source_error_row(source, e.what());
    } catch (const std::bad_alloc&) {
        if (error_row) *error_row = source_error_row(source, listing_out_of_memory(source.file));
    }
    return {};
}

namespace {

constexpr double eps64 = std::numeric_limits<double>::epsilon();

// What the cut and the report need to know of a matrix besides its spectrum.
struct MatrixFacts {
    const HessianInfo& info;
    double frobenius = 0;  // ‖H‖_F
    double asymmetry = 0;  // ‖H − Hᵀ‖_F as stored (absolute)
    double computed = 0;   // each eigenvalue's error from how it was computed (structured parts), else 0
    // ‖(H + Hᵀ)/2‖_F when the values leave part of it out (a structure's
    // skew Kronecker factors), else 0: frobenius is that norm.
    double symmetric = 0;
    // A structure's StructuredSpectrum::stored_underflow; NaN for a dense
    // matrix, whose entries are stored as they are: n·step/2.
    double stored_underflow = NAN;
};

MatrixFacts facts_of(const Hessian& h) { return {h.info, h.frobenius(), h.asymmetry_norm(), 0.0}; }

// Under its type's smallest normal number a value is kept to a fixed step
// (the spacing of subnormals), not to ε relative: storing, or computing in
// double, moves each entry by up to half a step, ‖·‖_F by n·step/2. Below
// every other term unless the entries are subnormal (1e-315 in float64,
// 1e-40 in float32), where ε·‖H‖_F underflows to 0 and the rounding residue
// (a few times 5e-324) would otherwise count as curvature. None for the
// zero matrix, which is flat under any cut.
double subnormal_noise(const MatrixFacts& f) {
    if (!(f.frobenius > 0)) return 0;
    // A structure's values are formed in double, whose own step counts too.
    if (!std::isnan(f.stored_underflow))
        return std::max(f.stored_underflow, static_cast<double>(f.info.n) * subnormal_step(eps64) / 2);
    return static_cast<double>(f.info.n) * subnormal_step(f.info.stored_eps) / 2;
}

// The input's own error: the largest of what was stated (option, else the
// dataset's hessian_error attribute), ‖H − Hᵀ‖_F, and the steps of
// subnormal or lossy storage: what another draw of the input may change.
// For an error E with independent entries the symmetric part left after
// symmetrizing has about half the Frobenius norm of H − Hᵀ = E − Eᵀ; taking
// all of it is a factor 2 of margin for an estimate read from one matrix.
double input_error(const MatrixFacts& f, const AnalyzeOptions& opt) {
    const double stated = opt.hessian_error ? *opt.hessian_error : stated_error(f.info.attrs).value_or(0.0);
    // A lossy filter's step q (info.quantum) moves each entry by up to q/2:
    // ‖E‖₂ ≤ ‖E‖_F ≤ n·q/2.
    const double quantized = static_cast<double>(f.info.n) * f.info.quantum / 2;
    return std::max({stated, f.asymmetry, subnormal_noise(f), quantized});
}

// The noise under which no eigenvalue counts, besides the stored type's and
// the solver's: the input's own error, and the computation's of a
// structure's values (a Gram matrix's rounding).
double input_noise(const MatrixFacts& f, const AnalyzeOptions& opt) { return std::max(input_error(f, opt), f.computed); }

// A partial spectrum's bounds carry the rounding of the products, the
// orthogonalization and the small eigenproblem that formed them, and the
// dense reference its own LAPACK error: an allowance of 4·√n·ε·‖H‖_F for both
// (a rounding estimate, far above what is seen, and under the 8·√n of the
// floor), added even to a certificate that rounded to 0.
double partial_allowance(const Spectrum& s, const MatrixFacts& f) {
    return s.partial && !s.complete ? rounding_allowance(s.n, f.frobenius) : 0.0;
}

// What the cut knows of a spectrum, its values aside.
Magnitudes bounds(const Spectrum& s, const MatrixFacts& f, const AnalyzeOptions& opt) {
    Magnitudes m;
    m.n = s.n;
    m.stored_eps = f.info.stored_eps;
    m.frobenius = f.frobenius;
    m.input_noise = input_noise(f, opt);
    m.input_error = input_error(f, opt);
    if (s.partial && !s.complete) {
        m.rest_bound = s.rest_bound + partial_allowance(s, f);
        m.value_error = s.value_error + partial_allowance(s, f);
    }
    return m;
}

Magnitudes magnitudes(const Spectrum& s, const MatrixFacts& f, const AnalyzeOptions& opt) {
    Magnitudes m = bounds(s, f, opt);
    m.known.reserve(s.values.size());
    for (double v : s.values) m.known.push_back(std::abs(v));
    std::sort(m.known.begin(), m.known.end(), std::greater<double>());
    return m;
}

// The spectrum under its second pairing (Spectrum::narrower) and the cut
// that pairing leads to, when that cut is decided: both pairings hold, so
// its answer is the first's wherever that is decided too, with narrower
// error bars. Its list leaves out the dropped values it cannot bound
// closely (its rest bound takes them in), so the whole list, which holds
// them as computed, may bound the gap more tightly: where that list's cut
// keeps the same values by the same rule, the row reports the larger of
// the two least gaps (each is a lower bound on the spectrum's, both
// pairings holding) and, for a gap rule, that gap's cut, which lies inside
// the spectrum's gap. The flag stays the second pairing's: decided, its
// gap range lies on one side of --min-gap, and so do both bounds. Not
// under --regularized, whose count of unseen values each within the rest
// bound of zero the second pairing's wider bound could only loosen.
std::optional<std::pair<Spectrum, Cut>> narrowed(const Spectrum& s, const MatrixFacts& f, const AnalyzeOptions& opt) {
    if (!s.narrower || s.complete || opt.regularized) return std::nullopt;
    Spectrum t = s;
    t.values = std::move(t.narrower->values);
    std::sort(t.values.begin(), t.values.end());
    t.value_error = t.narrower->value_error;
    t.rest_bound = t.narrower->rest_bound;
    t.narrower.reset();
    Cut cut = choose_cut(magnitudes(t, f, opt), opt.cut);
    if (!cut.decided) return std::nullopt;
    const Cut listed = choose_cut(magnitudes(s, f, opt), opt.cut);
    // A positive least gap makes the list's tol the middle of an interval
    // that lies inside the spectrum's gap at that count.
    if (listed.kept == cut.kept && listed.rule == cut.rule && listed.gap && cut.gap && *listed.gap > *cut.gap &&
        *listed.gap > 0) {
        cut.gap = listed.gap;
        if (cut.rule == "gap") {
            cut.tol = listed.tol;
            // What either tol lets another draw of the input lift.
            cut.dim_lifted = std::min(cut.dim_lifted, listed.dim_lifted);
            cut.lift_tol = std::min(cut.lift_tol, listed.lift_tol);
        }
    }
    return std::pair<Spectrum, Cut>{std::move(t), cut};
}

std::string describe_failure(const std::optional<Spectrum>& s, const Cut* cut, Method method) {
    std::ostringstream why;
    why << method_name(method) << ": ";
    if (!s) why << (method == Method::cholesky ? "not applicable (negative diagonal)" : "not applicable (n too small)");
    else if (s->too_large)
        why << "rank " << (s->rank_estimated ? "likely above " : "above ") << s->rank_budget
            << (s->rank_estimated ? " by its trace and ‖H‖_F" : "") << " (cheaper densely)";
    else if (cut->rule == "gap" && cut->tol <= 0)  // its kept side may reach down to 0 (an unlisted or uncertain value)
        why << "rest bound " << s->rest_bound << " places no gap cut (the values over it are known only down to 0)";
    else if (cut->tol < s->rest_bound) why << "rest bound " << s->rest_bound << " above tol " << cut->tol;
    else why << "the cut is not decided by the partial spectrum (rest bound " << s->rest_bound << ", tol " << cut->tol
             << ", band down to " << cut->band_tol_low << ")";
    return why.str();
}

// Why a partial spectrum does not give --regularized's log det(H + λI) to a
// micro-nat (too_coarse_for_regularized).
std::string too_coarse_note(const Spectrum& s, const AnalyzeOptions& opt) {
    std::ostringstream why;
    why << s.method << ": rest bound " << s.rest_bound << " too coarse for option regularized " << *opt.regularized;
    return why.str();
}

// The solvers to try, cheapest first; dense always ends the list.
std::vector<Method> plan(const Hessian& h, Method m) {
    if (m == Method::dense || (m == Method::automatic && h.info.n < dense_below)) return {Method::dense};
    if (m == Method::automatic) return {Method::cholesky, Method::sketch, Method::dense};
    return {m, Method::dense};
}

// A spectrum whose cut is certified: partial methods in turn, each kept only
// when its rest bound is under the cut it leads to; dense finishes otherwise.
std::pair<Spectrum, Cut> certified_spectrum(Hessian& h, const AnalyzeOptions& opt) {
    std::string notes;
    SolverStats spent;  // work of the methods that were left
    auto add = [](SolverStats& to, const SolverStats& from) {
        to.matvecs += from.matvecs;
        to.passes += from.passes;
        to.seconds += from.seconds;
    };
    auto settle = [&](Spectrum s, Cut cut) {
        s.note = notes;
        add(s.stats, spent);
        return std::pair<Spectrum, Cut>{std::move(s), cut};
    };
    for (Method m : plan(h, opt.method)) {
        if (m == Method::dense) break;
        const std::string name = method_name(m);
        std::optional<Spectrum> s;
        try {
            s = m == Method::cholesky ? cholesky_spectrum(h)
                : m == Method::sketch ? sketch_spectrum(h)
                                      : lanczos_spectrum(h);
        } catch (const std::bad_alloc&) {
            throw;
        } catch (const std::exception& e) {
            // A partial solver that breaks down (Spectra throws std::runtime_error
            // on an exactly rank-one operator) hands over to the next method.
            notes += (notes.empty() ? "" : "; ") + name + ": failed (" + e.what() + ")";
            continue;
        }
        std::optional<Cut> cut;
        if (s && s->too_large) {  // no other partial method will fit either
            add(spent, s->stats);
            notes += (notes.empty() ? "" : "; ") + describe_failure(s, nullptr, m);
            break;
        }
        if (s) {
            if (auto narrow = narrowed(*s, facts_of(h), opt)) return settle(std::move(narrow->first), narrow->second);
            cut = choose_cut(magnitudes(*s, facts_of(h), opt), opt.cut);
            if (s->complete || cut->decided) return settle(std::move(*s), *cut);
            add(spent, s->stats);
        }
        notes += (notes.empty() ? "" : "; ") + describe_failure(s, cut ? &*cut : nullptr, m);
    }
    // Never report an unproven rank: finish densely.
    Spectrum d = dense_spectrum(h);
    Cut cut = choose_cut(magnitudes(d, facts_of(h), opt), opt.cut);
    return settle(std::move(d), cut);
}

}  // namespace

namespace {

Row blank_row(const HessianInfo& info) {
    Row r;
    r.source = info.source();
    r.file = info.file;
    r.dataset = info.dataset;
    r.n = info.n;
    r.attrs = info.attrs;
    r.stored_type = info.stored_type;
    // The field holds a structure's kind; an unknown one is the error's to say.
    if (is_structure_kind(info.structure)) r.structure = info.structure;
    return r;
}

// The loss threshold T: option threshold, else the Hessian's attribute
// loss_threshold (refused here, not when listed: -T replaces an unusable
// one), else 1. Throws InputError.
double threshold_of(const HessianInfo& info, const AnalyzeOptions& opt) {
    if (opt.threshold) return *opt.threshold;
    if (const auto why = not_a_number(info.attrs, "loss_threshold"))
        throw InputError(info.source() + ": attribute loss_threshold " + *why);
    const double T = info.attrs.loss_threshold.value_or(1.0);
    if (!(T > 0 && std::isfinite(T)))
        throw InputError(info.source() + ": attribute loss_threshold must be a positive number, got " + value_text(T));
    return T;
}

// A dense Hessian's values are its own: a `scale` on it (which a factor or
// a Kronecker pair applies) would be silently dropped, so it is refused,
// before any reading where the caller can. Throws InputError.
void refuse_scale_on_dense(const HessianInfo& info) {
    if (!info.structure.empty()) return;
    if (info.attrs.numbers.count("scale") == 0 && info.attrs.strings.count("scale") == 0) return;
    throw InputError(info.source() + ": attribute scale applies to factor and kron structures only; a dense " +
                     "Hessian holds its values as they are (scale them when writing, or remove the attribute)");
}

// Measures and reports a solved spectrum under its cut; throws on failure.
// Its eigenvalues are `values`: s.values, or a structure's parts.
void report(Row& r, const Spectrum& s, const Eigenvalues& values, const Cut& cut, const MatrixFacts& f,
            const AnalyzeOptions& opt) {
    r.asymmetry = relative_asymmetry(f.asymmetry, std::max(f.frobenius, f.symmetric));
    // An eigenvalue past DBL_MAX (entries near 1e308 can sum beyond it) would
    // make tol infinite and every direction "flat": a wrong number, so an error.
    bool finite = true;
    values.for_each_span([&](const double* v, std::size_t k) {
        for (std::size_t i = 0; i < k; ++i) finite = finite && std::isfinite(v[i]);
    });
    if (!finite) {
        std::ostringstream msg;
        msg.precision(3);
        msg << f.info.source() << ": an eigenvalue overflowed float64 (‖H‖_F = " << f.frobenius
            << "); rescale the Hessian";
        throw NumericError(msg.str());
    }

    refuse_scale_on_dense(f.info);
    const double T = threshold_of(f.info, opt);
    Measurement m = measure(values, s.n, cut.tol, T, opt.negatives);
    if (!std::isfinite(m.log_volume))
        throw NumericError(f.info.source() + ": log-volume is not finite (eigenvalues out of range?)");

    r.rank = m.rank;
    r.dim = m.dim;
    r.negative = m.negative;
    r.tol = cut.tol;
    r.gap = cut.gap;
    r.noise_floor = cut.floor;
    r.spectral_norm = cut.top;
    r.cut_rule = cut.rule;
    r.threshold = T;
    r.log_volume = m.log_volume;
    r.log10_volume = m.log10_volume;
    r.dim_low = cut.dim_low;
    r.dim_high = cut.dim_high;
    r.dim_lifted = cut.dim_lifted;
    r.negative_low = std::min(m.negative, values.kept(cut.band_tol_high, 0.0).count[1]);
    // Every dim in the band: a value under the floor may have either sign,
    // one over it keeps its own.
    r.negative_high = cut.all_noise || cut.below_floor ? s.n - values.kept(cut.floor, 0.0).count[0]
                                    : std::max(m.negative, values.kept(cut.band_tol_low, 0.0).count[1]);
    // Or another draw of the input keeps: a flat negative value over
    // lift_tol, or, where tol lies within its reach of zero, any flat value.
    r.negative_high = std::max(r.negative_high, cut.lift_tol < 0 ? m.negative + m.dim
                                                                  : values.kept(cut.lift_tol, 0.0).count[1]);
    // Each kept value is within this of the stored matrix's exact eigenvalue:
    // LAPACK's bound p(n)·ε·‖H‖₂ (LAPACK Users' Guide, "Error bounds for the
    // symmetric eigenproblem"; p(n) "a modestly growing function of n", here
    // max(2·√n, 8) with ‖H‖_F for ‖H‖₂, solve_resolution(): dsyevd was off by
    // up to 5.4·ε·‖H‖_F at n = 5 against mpmath), which assumes no
    // underflow; among subnormal numbers each operation rounds to an
    // absolute step η = 4.9e-324, float64's whatever the stored type, n·η/2
    // in all (without it a Hessian scaled to 1e-320 reported an error of 0,
    // off by 1e-4 nats);
    // plus, for a partial spectrum, its pairing error. Then the rounding of
    // the sum of logs itself: a few ε of each term's size.
    const double pairing = s.partial && !s.complete ? s.value_error + partial_allowance(s, f) : 0.0;
    const double lapack = solve_resolution(s.n, f.frobenius);
    const double underflow = static_cast<double>(s.n) * subnormal_step(eps64) / 2;
    const double value_error = lapack + underflow + pairing + f.computed;
    const double half_r = static_cast<double>(m.rank) / 2;
    const double terms = half_r * std::log(M_PI) + std::lgamma(half_r + 1) + std::abs(half_r * (M_LN2 + std::log(T))) +
                         std::abs(m.sum_log) / 2 + std::abs(m.log_volume);
    r.log_volume_error = log_volume_error(values, cut.tol, value_error, opt.negatives) + 4 * eps64 * terms;
    // The input's noise moves each eigenvalue by at most the floor's input
    // part (Weyl: each of its terms bounds ‖H_stored − H_true‖₂, or for the
    // asymmetry estimates it): the error bar's sum with it for the error.
    r.log_volume_noise = log_volume_error(values, cut.tol, cut.input_floor, opt.negatives);
    r.hessian_error = opt.hessian_error ? opt.hessian_error : stated_error(f.info.attrs);
    r.method = s.method;
    r.certified = s.complete || cut.decided;
    r.residual_bound = s.rest_bound;
    r.stats = s.stats;
    r.solver_note = s.note;
    if (opt.regularized) {
        r.log_volume_regularized = regularized_log_volume(values, s.n, T, *opt.regularized);
        // The flat values are rounding of the solve: a λ near them makes
        // their terms, and so the regularized volume, noise. Judged by the
        // dense solve's bound, whatever solver ran (a partial one's unlisted
        // values move it by under a micro-nat: too_coarse_for_regularized),
        // or a structure's own where it is larger: the dense twin's flag
        // wherever the structure's values are as good as dense's.
        if (regularized_log_volume_error(values, s.n, *opt.regularized, std::max(lapack, f.computed) + underflow) > 1e-3)
            r.warnings.add(Warning::regularized_noisy);
    }
    if (m.negative > 0) r.warnings.add(Warning::saddle);
    if (cut.ambiguous) r.warnings.add(Warning::ambiguous_rank);
    if (cut.below_floor) r.warnings.add(Warning::cut_below_floor);
    if (!r.certified) r.warnings.add(Warning::uncertified);
    if (f.info.unwritten_chunks) r.warnings.add(Warning::unwritten_chunks);
    if (f.info.float32_values) r.warnings.add(Warning::float32_values);
    // Symmetrizing moved the matrix by more than rounding of its stored type:
    // ε relative, or among subnormal numbers the step (n·η/2 in ‖·‖_F).
    const double rounding = std::max(10 * f.info.stored_eps * std::sqrt(static_cast<double>(f.info.n)),
                                     f.frobenius > 0 ? 20 * subnormal_noise(f) / f.frobenius : 0.0);
    if (r.asymmetry > rounding) r.warnings.add(Warning::symmetrized);
    if (opt.keep_eigenvalues) {
        r.eigenvalues.reserve(s.n);  // a structure's are padded to n with its exact zeros (fill_structured)
        values.for_each([&](double v) { r.eigenvalues.push_back(v); });
    }
    r.ok = true;
}


// log V_λ counts the eigenvalues a partial spectrum did not find as 0; each
// is within rest_bound of 0, so that moves log V_λ by at most
// ½(n − k)·log(1 + rest_bound/λ). Too coarse (finish densely) when that could
// exceed a micro-nat (the default --tie-tol).
bool too_coarse_for_regularized(const Spectrum& s, const AnalyzeOptions& opt) {
    if (!opt.regularized || s.complete) return false;
    const double unseen = static_cast<double>(s.n - s.values.size());
    return 0.5 * unseen * std::log1p(s.rest_bound / *opt.regularized) > 1e-6;
}

// Solve, cut and measure a dense Hessian; throws on failure.
void fill(Row& r, Hessian& h, const AnalyzeOptions& opt) {
    const HessianInfo& info = h.info;
    // ‖H‖_F bounds every |λ|; past DBL_MAX the solvers cannot scale the matrix
    // (LAPACK stops converging) and eigenvalues may overflow: say so up front.
    if (!std::isfinite(h.frobenius())) reject_norm_overflow(info.source());
    if (!std::isfinite(h.asymmetry_norm())) reject_norm_overflow(info.source(), "‖H − Hᵀ‖_F");
    detail::BlasSection section(detail::fork_gate());  // the solve: no fork while it runs
    detail::BlasRoom room;                             // and room for OpenBLAS's buffer under ulimit -v
    auto [s, cut] = certified_spectrum(h, opt);

    if (too_coarse_for_regularized(s, opt)) {
        const std::string why = too_coarse_note(s, opt);
        SolverStats before = s.stats;
        s = dense_spectrum(h);
        s.note = why;
        s.stats.matvecs += before.matvecs;
        s.stats.passes += before.passes;
        s.stats.seconds += before.seconds;
        cut = choose_cut(magnitudes(s, facts_of(h), opt), opt.cut);
    }

    report(r, s, EigenvalueList(s.values), cut, facts_of(h), opt);
}

// fill, for values that may be mapped from their file: an answer (or a
// failure) computed from values the file no longer holds is the file's
// change, not the answer.
void fill_checked(Row& r, Hessian& h, const AnalyzeOptions& opt) {
    try {
        fill(r, h, opt);
    } catch (...) {
        h.check_unchanged();
        throw;
    }
    h.check_unchanged();
}

// Each top-level block's share of a structured Hessian's answer.
std::vector<BlockRow> block_rows(const StructuredSpectrum& ss, double tol, NegativePolicy policy) {
    std::vector<BlockRow> out;
    for (const BlockSpan& b : ss.blocks) {
        const Measurement m = measure(ss.values(b), b.n, tol, 1.0, policy);
        BlockRow br;
        br.name = b.name;
        br.n = b.n;
        br.rank = m.rank;
        br.dim = m.dim;
        br.negative = m.negative;
        br.log_volume_part = m.sum_log == 0 ? 0.0 : -m.sum_log / 2;  // (no curved direction: 0, not −0)
        out.push_back(br);
    }
    return out;
}

// A structure is measured as its dense twin stored in its coarsest type, so
// a part stored finer (a float64 diagonal beside float32 Kronecker factors)
// may hold values the whole counts as noise, under its floor, that the part
// alone resolves: over the part's own floor, max(its ε·‖part‖_F,
// 8·√n·ε(float64)·‖part‖_F, its values' computed error, its own asymmetry
// and subnormal rounding, a stated error). Where an automatic rule put the
// cut, each block counts those of its parts (nested ones too) and the row
// warns; an explicit cut is the user's own level.
void note_finer_parts(Row& r, const StructuredSpectrum& ss, const Cut& cut, double whole_eps, double stated) {
    if (cut.rule != "dtype" && cut.rule != "gap") return;
    const double noise = std::min(cut.tol, cut.floor);  // the whole's noise: what is flat for want of precision
    for (std::size_t i = 0; i < ss.blocks.size(); ++i) {
        const BlockSpan& b = ss.blocks[i];
        for (std::size_t p = b.begin; p < b.end; ++p) {
            const SpectrumPart& part = ss.parts[p];
            if (!(part.eps < whole_eps)) continue;
            const PartValues values(&part, &part + 1);
            const double frobenius = values.norm();
            const double solver = 8 * std::sqrt(static_cast<double>(part.n)) * std::numeric_limits<double>::epsilon();
            const double own =
                std::max({part.eps * frobenius, solver * frobenius, part.value_error, part.noise, stated});
            std::size_t resolved = 0;
            values.for_each_span([&](const double* v, std::size_t k) {
                for (std::size_t j = 0; j < k; ++j) resolved += std::abs(v[j]) > own && std::abs(v[j]) <= noise;
            });
            r.blocks[i].resolved_flat += resolved;
            if (resolved > 0) r.warnings.add(Warning::finer_part_flat);
        }
    }
}

// Solve, cut and measure a structured Hessian (its parts read one at a time,
// or two square parts side by side: structured_spectrum).
void fill_structured(Row& r, const HessianInfo& info, const AnalyzeOptions& opt) {
    StructuredSpectrum ss = structured_spectrum(info, opt.read, opt.side_by_side, opt.gram);
    HessianInfo measured = info;
    if (ss.float32_values) mark_float32_values(measured);
    // A structure's eigenvalues are computed directly, as dense ones are; the
    // error of how they were computed (a Gram matrix's rounding) is noise
    // under which no eigenvalue counts.
    const MatrixFacts f{measured, ss.frobenius, ss.asymmetry, ss.value_error, ss.symmetric_frobenius, ss.stored_underflow};
    Magnitudes known = bounds(ss.spectrum, f, opt);
    known.sorted = ss.values().magnitudes();
    const Cut cut = choose_cut(known, opt.cut);
    known.sorted.reset();  // frees the cut's sorted copies before measuring
    report(r, ss.spectrum, ss.values(), cut, f, opt);  // exact knowledge: the cut is decided, the row certified
    if (opt.keep_eigenvalues) r.eigenvalues.resize(info.n, 0.0);  // the values a part does not list are exactly 0
    r.blocks = block_rows(ss, cut.tol, opt.negatives);
    note_finer_parts(r, ss, cut, measured.stored_eps,
                     opt.hessian_error ? *opt.hessian_error : stated_error(measured.attrs).value_or(0.0));
}

template <class Body>
Row guarded(const HessianInfo& info, Body body) {
    auto t0 = std::chrono::steady_clock::now();
    const double waited = detail::waited_seconds();  // another Hessian's read is not this row's time
    Row r = blank_row(info);
    try {
        body(r);
    } catch (const Error& e) {
        r.ok = false;
        r.error = e.what();
        // Solvers do not know the source; every error row names it, once
        // (a file that cannot be opened again is named by its Hessian).
        const std::string file = info.file + ": ";
        if (r.error.rfind(file, 0) == 0 && info.source() != info.file)
            r.error = info.source() + ": " + r.error.substr(file.size());
        else if (r.error.rfind(info.source(), 0) != 0)
            r.error = info.source() + ": " + r.error;
    } catch (const std::bad_alloc&) {
        r.ok = false;
        // Under ulimit -v a lower budget cannot help: only a higher limit can.
        r.error = info.source() + ": out of memory (n = " + std::to_string(info.n) + ")" +
                  (detail::address_room() != SIZE_MAX ? " under the address-space limit (ulimit -v): raise the limit"
                                                      : "; try option max_memory");
    } catch (const std::exception& e) {
        // Anything a dependency throws (Eigen, Spectra, the standard library)
        // ends this row, never the batch.
        r.ok = false;
        r.error = info.source() + ": numerical failure: " + e.what();
    } catch (...) {
        r.ok = false;
        r.error = info.source() + ": unexpected failure";
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() -
                (detail::waited_seconds() - waited);
    return r;
}

}  // namespace

Row analyze(const HessianInfo& info, const AnalyzeOptions& opt) {
    return guarded(info, [&](Row& r) {
        threshold_of(info, opt);  // an unusable attribute is refused before any reading
        refuse_scale_on_dense(info);
        // A file rewritten while it is read may give values mixed from two
        // versions: that, not what the mixture breaks, is the error. An
        // in-memory image cannot change.
        auto consistently = [&](const std::function<void()>& read, int passes) {
            std::unique_lock<ReadLock> held;
            if (opt.read.hold) held = std::unique_lock<ReadLock>(*opt.read.hold);
            if (opt.read.image) read();
            else read_consistently(info, read, passes);
        };
        if (!info.structure.empty()) {
            const Row blank = r;
            // Spread across ranks (opt.gram), every rank must make the same
            // number of passes: one, with the stamps compared around it.
            consistently(
                [&] {
                    r = blank;
                    fill_structured(r, info, opt);  // reads its parts as it goes
                },
                opt.gram ? 1 : 3);
            return;
        }
        Hessian h;
        ReadOptions read = opt.read;
        read.map = true;  // checked once the answer is in (fill_checked)
        auto read_values = [&] {
            consistently(
                [&] {
                    h = Hessian{};  // a repeated pass never holds two copies
                    h = read_hessian(info, read);
                },
                3);
        };
        read_values();
        const Row blank = r;
        try {
            fill_checked(r, h, opt);
            return;
        } catch (...) {
            if (h.changes().empty()) throw;
        }
        // The file changed while the row was computed from its mapped values
        // (a training job adding a checkpoint to it, or rewriting this one):
        // the answer is set aside, and the values read again, into memory,
        // as they are now.
        r = blank;
        read.map = false;
        read_values();
        fill(r, h, opt);
    });
}

Row analyze_hessian(Hessian h, const AnalyzeOptions& opt) {
    return guarded(h.info, [&](Row& r) { fill_checked(r, h, opt); });
}

Row error_row(const HessianInfo& info, const std::string& message) {
    return guarded(info, [&](Row&) { throw InputError(message); });
}

Row analyze_listed(const ListedHessian& listed, const AnalyzeOptions& opt) {
    if (!listed.problem.empty()) return error_row(listed.info, listed.problem);
    if (!listed.image) return analyze(listed.info, opt);
    AnalyzeOptions from_image = opt;
    from_image.read.image = listed.image;
    return analyze(listed.info, from_image);
}

std::optional<Row> analyze_partial(const HessianInfo& info, Spectrum s, double frobenius, double asymmetry_norm,
                                   const AnalyzeOptions& opt, std::string* declined) {
    const Method method = s.method == "sketch" ? Method::sketch : s.method == "cholesky" ? Method::cholesky : Method::lanczos;
    auto decline = [&](const std::string& why) {
        if (declined) *declined = why;
        return std::nullopt;
    };
    if (!std::isfinite(frobenius) || !std::isfinite(asymmetry_norm)) return decline("");
    if (s.too_large) return decline(describe_failure(s, nullptr, method));
    if (too_coarse_for_regularized(s, opt)) return decline(too_coarse_note(s, opt));
    std::sort(s.values.begin(), s.values.end());
    const MatrixFacts f{info, frobenius, asymmetry_norm, 0.0};
    if (auto narrow = narrowed(s, f, opt))
        return guarded(info, [&](Row& r) {
            report(r, narrow->first, EigenvalueList(narrow->first.values), narrow->second, f, opt);
        });
    const Cut cut = choose_cut(magnitudes(s, f, opt), opt.cut);
    if (!s.complete && !cut.decided) return decline(describe_failure(s, &cut, method));
    return guarded(info, [&](Row& r) { report(r, s, EigenvalueList(s.values), cut, f, opt); });
}

Row analyze_eigenvalues(const HessianInfo& info, std::vector<double> eigenvalues, double frobenius,
                        double asymmetry_norm, double seconds, const AnalyzeOptions& opt, const std::string& note, const SolverStats& before) {
    return guarded(info, [&](Row& r) {
        if (!std::isfinite(frobenius)) reject_norm_overflow(info.source());
        if (!std::isfinite(asymmetry_norm)) reject_norm_overflow(info.source(), "‖H − Hᵀ‖_F");
        Spectrum s;
        s.n = info.n;
        s.method = "dense";
        s.values = std::move(eigenvalues);
        std::sort(s.values.begin(), s.values.end());
        s.complete = true;
        s.stats.passes = 1 + before.passes;
        s.stats.matvecs = before.matvecs;
        s.stats.seconds = seconds;
        s.note = note;
        const MatrixFacts f{info, frobenius, asymmetry_norm, 0.0};
        report(r, s, EigenvalueList(s.values), choose_cut(magnitudes(s, f, opt), opt.cut), f, opt);
    });
}

}  // namespace basinvol
