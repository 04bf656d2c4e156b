#include <basinvol/error.hpp>
#include <basinvol/names.hpp>
#include <basinvol/toy/loss.hpp>
#include <algorithm>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <sstream>

namespace basinvol::toy {

namespace {

[[noreturn]] void bad(const std::string& text, std::size_t at, const std::string& what) {
    throw UsageError("loss '" + text + "': " + what + " at position " + std::to_string(at + 1));
}

}  // namespace

PolyLoss PolyLoss::parse(const std::string& text, std::size_t n) {
    std::string s;
    std::vector<std::size_t> where;  // position in `text` of each char of `s`
    for (std::size_t i = 0; i < text.size(); ++i)
        if (!std::isspace(static_cast<unsigned char>(text[i]))) {
            s += text[i];
            where.push_back(i);
        }
    if (s.empty()) throw UsageError("loss: empty expression");
    auto at = [&](std::size_t i) { return i < where.size() ? where[i] : text.size(); };
    const char* const product = "a product of coordinates is not a term: each term is c*xI^p of one coordinate (the "
                                "toy's Hessian is diagonal; rotate it with --rotate)";
    PolyLoss loss;
    std::vector<double> lost;  // each term's rounding error so far (Neumaier's sum of like terms)
    std::size_t i = 0, used = 0;
    while (i < s.size()) {
        double sign = 1;
        if (s[i] == '+' || s[i] == '-') {
            sign = s[i] == '-' ? -1 : 1;
            ++i;
        } else if (i > 0 && s[i] == '*') {
            bad(text, at(i), product);
        } else if (i > 0) {
            bad(text, at(i), "expected '+' or '-'");
        }
        Term t;
        t.coef = sign;
        if (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) {
            // A decimal number: digits, a point, digits, an exponent (no hex, inf or nan).
            const auto digits = [&](std::size_t j) {
                while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
                return j;
            };
            std::size_t end = digits(i);
            if (end < s.size() && s[end] == '.') end = digits(end + 1);
            if (end < s.size() && (s[end] == 'e' || s[end] == 'E')) {
                std::size_t e = end + 1;
                if (e < s.size() && (s[e] == '+' || s[e] == '-')) ++e;
                if (digits(e) > e) end = digits(e);
            }
            const std::string number = s.substr(i, end - i);
            // "0x10*x^2" would read as 0·x10 followed by '*': say what the
            // writer meant instead. ("0x1^2", a zero term in x1, stays a term.)
            if (end < s.size() && (s[end] == 'x' || s[end] == 'X') && number.find_first_not_of('0') == std::string::npos &&
                end + 1 < s.size() && std::isxdigit(static_cast<unsigned char>(s[end + 1]))) {
                std::size_t j = end + 1;
                bool decimal = true;
                for (; j < s.size() && std::isxdigit(static_cast<unsigned char>(s[j])); ++j)
                    decimal = decimal && std::isdigit(static_cast<unsigned char>(s[j]));
                const bool a_term = s[end] == 'x' && decimal && (j == s.size() || s[j] == '^' || s[j] == '+' || s[j] == '-');
                if (!a_term)
                    bad(text, at(i), "hexadecimal numbers are not accepted, write the coefficient in decimal (got '" +
                                         number + s.substr(end, j - end) + "')");
            }
            const std::optional<double> c = parse_finite(number);
            if (!c) bad(text, at(i), "expected a coefficient within float64's range, got '" + number + "'");
            t.coef *= *c;
            i = end;
            if (i < s.size() && s[i] == '*') ++i;
        }
        if (i >= s.size()) bad(text, at(i), "expected a coordinate (x0, x1, ... or x, y, z, w)");
        const char ch = s[i];
        if (ch == 'x' && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
            std::size_t j = i + 1;
            while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
            if (j - i - 1 > 6) bad(text, at(i), "coordinate index too large");
            t.var = static_cast<std::size_t>(std::stoul(s.substr(i + 1, j - i - 1)));
            i = j;
        } else if (ch == 'x' || ch == 'y' || ch == 'z' || ch == 'w') {
            t.var = ch == 'x' ? 0 : ch == 'y' ? 1 : ch == 'z' ? 2 : 3;
            ++i;
        } else {
            bad(text, at(i), "expected a coordinate (x0, x1, ... or x, y, z, w)");
        }
        t.power = 1;
        if (i < s.size() && s[i] == '^') {
            ++i;
            std::size_t j = i;
            while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
            if (j == i || j - i > 2) bad(text, at(i), "expected an integer power 2..64");
            t.power = std::stoi(s.substr(i, j - i));
            i = j;
        }
        // A product of coordinates (x*y) reads as x, then a '*': each term is one coordinate's.
        if (t.power == 1 && i < s.size() && s[i] == '*') bad(text, at(i), product);
        if (t.power < 2 || t.power > 64)
            bad(text, at(i ? i - 1 : 0),
                t.power == 0 ? std::string("power must be an integer 2..64 (x^0 is a constant, which changes no "
                                           "curvature), got 0")
                             : "power must be an integer 2..64 (a linear term would make the origin not a critical "
                               "point), got " + std::to_string(t.power));
        // A zero term still names its coordinate (a flat direction of the
        // toy), wherever it stands: x^2 + 0*y^2 is a toy in R^2, as 0*x^2 + y^2 is.
        used = std::max(used, t.var + 1);
        // Like terms are one term: x^2 + x^2 - 0.5*x^2 is 1.5*x^2 (a convex
        // coordinate, not one with a negative term), x^2 - x^2 is none. The
        // sum is compensated (Neumaier), so that in the usual cases the
        // order the terms are written in does not decide it (1e16*x^2 + x^2
        // - 1e16*x^2 is x^2); it is not an exact sum.
        const auto like = std::find_if(loss.terms_.begin(), loss.terms_.end(),
                                       [&](const Term& u) { return u.var == t.var && u.power == t.power; });
        if (like == loss.terms_.end()) {
            loss.terms_.push_back(t);
            lost.push_back(0);
        } else {
            double& sum = like->coef;
            const double next = sum + t.coef;
            lost[static_cast<std::size_t>(like - loss.terms_.begin())] +=
                std::abs(sum) >= std::abs(t.coef) ? (sum - next) + t.coef : (t.coef - next) + sum;
            sum = next;
            if (!std::isfinite(sum))
                throw UsageError("loss '" + text + "': the coefficients of x" + std::to_string(t.var) + "^" +
                                 std::to_string(t.power) + " sum past float64's range");
        }
    }
    for (std::size_t k = 0; k < loss.terms_.size(); ++k) {
        Term& t = loss.terms_[k];
        t.coef += lost[k];
        if (!std::isfinite(t.coef))
            throw UsageError("loss '" + text + "': the coefficients of x" + std::to_string(t.var) + "^" +
                             std::to_string(t.power) + " sum past float64's range");
        // Its Hessian entry 2c must be a float64 too.
        if (t.power == 2 && !std::isfinite(2 * t.coef))
            throw UsageError("loss '" + text + "': the coefficient of x" + std::to_string(t.var) +
                             "^2 makes its second derivative 2c pass float64's range (|c| must be under 8.98e307)");
    }
    loss.terms_.erase(std::remove_if(loss.terms_.begin(), loss.terms_.end(), [](const Term& u) { return u.coef == 0; }),
                      loss.terms_.end());
    if (n != 0 && n < used)
        throw UsageError("loss '" + text + "' uses " + std::to_string(used) + " coordinates but n is " +
                         std::to_string(n));
    loss.n_ = n ? n : used;
    if (loss.terms_.empty()) throw UsageError("loss '" + text + "' has no nonzero term");
    return loss;
}

std::string PolyLoss::str() const {
    std::ostringstream s;
    s.precision(17);
    for (std::size_t k = 0; k < terms_.size(); ++k) {
        const Term& t = terms_[k];
        double c = t.coef;
        if (k > 0) {
            s << (c < 0 ? " - " : " + ");
            c = std::abs(c);
        } else if (c < 0) {
            s << "-";
            c = -c;
        }
        if (c != 1) s << c << "*";
        s << "x" << t.var << "^" << t.power;
    }
    return s.str();
}

namespace {

// c·x^p with the exponents kept apart: x^p alone may leave double's range
// where c·x^p does not (1e-320·x⁴ at x = 1e80 is 1). With c = m_c·2^e_c and
// x = m_x·2^e_x (m in [0.5, 1)), m_c·m_x^p lies in [2^-65, 1) for p ≤ 64, and
// one ldexp places it: the rounding of c·x^p where that is in range, inf or
// 0 where the term itself is out of it (inf is above any threshold).
double term(double c, double x, int p) {
    if (c == 0 || x == 0) return 0;  // p ≥ 2
    int ec = 0, ex = 0;
    const double mc = std::frexp(c, &ec), mx = std::frexp(x, &ex);
    return std::ldexp(mc * std::pow(mx, p), ec + p * ex);
}

}  // namespace

double PolyLoss::operator()(const double* x) const {
    double sum = 0;
    for (const Term& t : terms_) sum += term(t.coef, x[t.var], t.power);
    return sum;
}

double PolyLoss::coordinate(std::size_t i, double x) const {
    double sum = 0;
    for (const Term& t : terms_)
        if (t.var == i) sum += term(t.coef, x, t.power);
    return sum;
}

Eigen::VectorXd PolyLoss::hessian_diagonal() const {
    Eigen::VectorXd h = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(n_));
    // d²/dx² (c·x²) = 2c; higher powers vanish at the origin.
    for (const Term& t : terms_)
        if (t.power == 2) h(static_cast<Eigen::Index>(t.var)) += 2 * t.coef;
    return h;
}

bool PolyLoss::nonnegative() const {
    for (const Term& t : terms_)
        if (!(t.coef > 0) || t.power % 2 != 0) return false;
    return true;
}

bool PolyLoss::appears(std::size_t i) const {
    for (const Term& t : terms_)
        if (t.var == i) return true;
    return false;
}

double PolyLoss::half_width(std::size_t i, double T) const {
    // A bracket [hi/2, hi] by doubling or halving from 1 (the width may be
    // anywhere in double's range: 1e130·x² ≤ 1 ends at 1e-65), then bisection
    // to 1e-15 relative.
    double hi = 1;
    if (coordinate(i, hi) <= T) {
        while (coordinate(i, hi) <= T) {
            if (hi >= 0x1p1022) return std::numeric_limits<double>::infinity();  // no box in double's range
            hi *= 2;
        }
    } else {
        while (hi > std::numeric_limits<double>::denorm_min() && coordinate(i, hi / 2) > T) hi /= 2;
    }
    double lo = hi / 2;
    // Bisection on the increasing function |x| ↦ coordinate(i, x).
    for (int k = 0; k < 200 && hi - lo > 1e-15 * hi; ++k) {
        const double mid = lo + (hi - lo) / 2;
        (coordinate(i, mid) <= T ? lo : hi) = mid;
    }
    return hi;
}

// Σ 1/p over the coordinates when each coordinate's terms share one even
// power p with positive coefficients (like terms are summed by parse): then
// {L ≤ T} = T^(1/p) in each coordinate, scaled. A coordinate without a term
// (unbounded) or with terms of two powers (not a power law) has none.
std::optional<double> PolyLoss::learning_coefficient() const {
    std::vector<int> power(n_, 0);
    for (const Term& t : terms_) {
        if (!(t.coef > 0) || t.power % 2 != 0) return std::nullopt;
        if (power[t.var] != 0 && power[t.var] != t.power) return std::nullopt;
        power[t.var] = t.power;
    }
    double sum = 0;
    for (int p : power) {
        if (p == 0) return std::nullopt;
        sum += 1.0 / p;
    }
    return sum;
}

const std::vector<Preset>& presets() {
    static const std::vector<Preset> list = {
        {"parabola", "x0^2 + x1^2", 3,
         "L = x^2 + y^2 in R^3: a 2-D parabola with one flat direction; the slice has area pi*T"},
        {"bowl", "x0^2 + x1^2 + x2^2", 3, "L = x^2 + y^2 + z^2: a round bowl, no flat direction"},
        {"saddle", "x0^2 - x1^2", 2, "L = x^2 - y^2: one negative eigenvalue (a saddle, not a minimum)"},
        {"quartic-valley", "x0^2 + x1^4", 2,
         "L = x^2 + y^4: the Hessian calls y flat, yet {L <= T} is bounded; volume ~ T^(3/4)"},
        {"quartic-bowl", "x0^4 + x1^4", 2,
         "L = x^4 + y^4: the Hessian is zero (dimension 2), the basin is bounded; volume ~ T^(1/2)"},
        {"mixed", "x0^2 + x1^2 + x2^4 + x3^6", 4,
         "L = x^2 + y^2 + z^4 + w^6: volume ~ T^(1/2 + 1/2 + 1/4 + 1/6)"},
    };
    return list;
}

const Preset* find_preset(const std::string& name) {
    for (const auto& p : presets())
        if (p.name == name) return &p;
    return nullptr;
}

}  // namespace basinvol::toy
