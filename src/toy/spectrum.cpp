#include <basinvol/error.hpp>
#include <basinvol/hessian.hpp>
#include <basinvol/toy/spectrum.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

namespace basinvol::toy {

double Rng::uniform() { return static_cast<double>(g_() >> 11) * 0x1.0p-53; }

double Rng::normal() {
    if (has_spare_) {
        has_spare_ = false;
        return spare_;
    }
    // Box–Muller on (0, 1]: 1 − uniform() is never 0.
    const double u = 1 - uniform(), v = uniform();
    const double rad = std::sqrt(-2 * std::log(u));
    spare_ = rad * std::sin(2 * M_PI * v);
    has_spare_ = true;
    return rad * std::cos(2 * M_PI * v);
}

Eigen::MatrixXd random_orthogonal(Eigen::Index n, std::uint64_t seed) {
    Rng rng(seed);
    Eigen::MatrixXd a(n, n);
    for (Eigen::Index j = 0; j < n; ++j)
        for (Eigen::Index i = 0; i < n; ++i) a(i, j) = rng.normal();
    Eigen::HouseholderQR<Eigen::MatrixXd> qr(a);
    Eigen::MatrixXd q = qr.householderQ();
    // Q·diag(sign R_jj) is Haar-distributed (plain QR is not).
    for (Eigen::Index j = 0; j < n; ++j)
        if (qr.matrixQR()(j, j) < 0) q.col(j) *= -1;
    return q;
}

namespace {
std::string num(double v) {
    std::ostringstream s;
    s << v;
    return s.str();
}
}  // namespace

std::vector<double> recipe_spectrum(const Recipe& r) {
    if (r.negative > r.curved)
        throw UsageError("negative", "must be at most option curved, got " + std::to_string(r.negative) + " > " +
                         std::to_string(r.curved));
    if (r.flat + r.curved == 0) throw UsageError("curved", "plus option flat must be >= 1, got 0");
    if (r.curved > 0 && !(r.lo > 0 && r.hi >= r.lo && std::isfinite(r.hi)))
        throw UsageError("recipe bounds must satisfy 0 < lo <= hi, got lo " + num(r.lo) + ", hi " + num(r.hi));
    if (r.distribution == Distribution::clustered && r.clusters == 0)
        throw UsageError("clusters", "must be >= 1, got 0");
    if (!(r.spread >= 0 && r.spread < 1)) throw UsageError("spread", "must be in [0, 1), got " + num(r.spread));
    Rng rng(r.seed);
    std::vector<double> v;
    v.reserve(r.flat + r.curved);
    const double a = std::log(r.lo), b = std::log(r.hi);
    for (std::size_t i = 0; i < r.curved; ++i) {
        double x;
        if (r.distribution == Distribution::loguniform) {
            x = std::exp(a + (b - a) * rng.uniform());
        } else {
            // Centres log-evenly spaced, values round-robin, jitter within ±spread.
            const std::size_t c = i % r.clusters;
            const double t = r.clusters == 1 ? 0.5 : static_cast<double>(c) / static_cast<double>(r.clusters - 1);
            const double centre = std::exp(a + (b - a) * t);
            x = centre * (1 + r.spread * (2 * rng.uniform() - 1));
            x = std::clamp(x, r.lo, r.hi);
        }
        v.push_back(x);
    }
    // The first `negative` of a random order change sign.
    std::vector<std::size_t> idx(r.curved);
    for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    for (std::size_t i = idx.size(); i > 1; --i)
        std::swap(idx[i - 1], idx[static_cast<std::size_t>(rng.uniform() * static_cast<double>(i))]);
    for (std::size_t k = 0; k < r.negative; ++k) v[idx[k]] = -v[idx[k]];
    v.insert(v.end(), r.flat, 0.0);
    return v;
}

std::vector<double> parse_list(const std::string& text) {
    std::vector<double> v;
    std::string item;
    std::istringstream in(text);
    // (getline drops a trailing empty entry: "1,2," is refused as "1,,2" is)
    const auto last = text.find_last_not_of(" \t");
    if (last != std::string::npos && text[last] == ',')
        throw UsageError("eigenvalues", "has an empty entry in '" + text + "'");
    while (std::getline(in, item, ',')) {
        item.erase(0, item.find_first_not_of(" \t"));
        item.erase(item.find_last_not_of(" \t") + 1);
        if (item.empty()) throw UsageError("eigenvalues", "has an empty entry in '" + text + "'");
        const std::optional<double> x = parse_finite(item);
        if (!x) throw UsageError("eigenvalues", "has '" + item + "', which is not a finite number");
        v.push_back(*x);
    }
    if (v.empty()) throw UsageError("eigenvalues", "needs at least one number, got '" + text + "'");
    return v;
}

const Names<StoredType>& stored_type_names() {
    static const Names<StoredType> names = {{"float32", StoredType::float32}, {"float64", StoredType::float64}};
    return names;
}

const Names<Distribution>& distribution_names() {
    static const Names<Distribution> names = {{"loguniform", Distribution::loguniform},
                                              {"clustered", Distribution::clustered}};
    return names;
}

double stored_eps(StoredType type) {
    return type == StoredType::float32 ? std::numeric_limits<float>::epsilon()
                                       : std::numeric_limits<double>::epsilon();
}

Expected expected_answer(const std::vector<double>& eigenvalues, double threshold) {
    if (!(threshold > 0) || !std::isfinite(threshold))
        throw UsageError("the loss threshold T must be a positive number, got " + num(threshold));
    Expected e;
    e.n = eigenvalues.size();
    long double sum_log = 0;
    for (double x : eigenvalues) {
        if (x == 0) continue;
        ++e.rank;
        if (x < 0) ++e.negative;
        sum_log += std::log(static_cast<long double>(std::abs(x)));
    }
    e.dim = e.n - e.rank;
    const double h = static_cast<double>(e.rank) / 2;
    // log V = (r/2)·log π − lgamma(r/2 + 1) + (r/2)·log(2T) − ½ Σ log|λ|
    e.log_volume = h * std::log(M_PI) - std::lgamma(h + 1) + h * (M_LN2 + std::log(threshold)) -
                   static_cast<double>(sum_log / 2);
    return e;
}

void check_resolvable(const std::vector<double>& eigenvalues, StoredType type, double margin) {
    double top = 0, low = std::numeric_limits<double>::infinity();
    for (double x : eigenvalues) {
        if (!std::isfinite(x)) throw UsageError("eigenvalues must be finite, got " + num(x));
        if (x == 0) continue;
        top = std::max(top, std::abs(x));
        low = std::min(low, std::abs(x));
    }
    if (top == 0) return;
    if (type == StoredType::float32 && top > 1e30)
        throw UsageError("max|lambda| " + num(top) + " is over 1e30, the most a float32 toy holds (its entries and "
                         "norm must stay well inside float32's range, which ends at 3.4e38)");
    // The dtype cut n·ε·max|λ|, never under the floor's subnormal term
    // n·η/2 (η the stored type's smallest step), where ε·max|λ| underflows.
    // In long double: n·η/2 of float64 at n = 1 rounds to 0 in double (a tie
    // to even), which let a toy of 5e-324 through.
    const long double n = static_cast<long double>(eigenvalues.size());
    const long double tol = std::max(top * (n * stored_eps(type)),  // top·n overflows near DBL_MAX
                                     n * static_cast<long double>(subnormal_step(stored_eps(type))) / 2);
    if (low < margin * tol) {
        std::ostringstream s;
        s << "the smallest nonzero |lambda| " << low << (low > tol ? " is not far enough above" : " is not above")
          << " the " << (type == StoredType::float32 ? "float32" : "float64")
          << " cut max(n*eps*max|lambda|, n*step/2) = " << tol
          << " (it must be at least " << margin << "x that, " << margin * tol
          << "): its rank would be ambiguous; narrow the spectrum"
          << (type == StoredType::float32 ? " or store float64" : "");
        throw UsageError(s.str());
    }
}

Eigen::MatrixXd toy_matrix(const std::vector<double>& eigenvalues, std::optional<std::uint64_t> rotation_seed) {
    const auto n = static_cast<Eigen::Index>(eigenvalues.size());
    Eigen::VectorXd d = Eigen::Map<const Eigen::VectorXd>(eigenvalues.data(), n);
    if (!rotation_seed) return d.asDiagonal();
    Eigen::MatrixXd q = random_orthogonal(n, *rotation_seed);
    Eigen::MatrixXd h = q * d.asDiagonal() * q.transpose();
    return (h + h.transpose()) / 2;
}

}  // namespace basinvol::toy
