#include <basinvol/solve/rounding.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

namespace basinvol {

double solve_resolution(std::size_t n, double frobenius) {
    return std::max(2 * std::sqrt(static_cast<double>(n)), 8.0) * std::numeric_limits<double>::epsilon() * frobenius;
}

double twin_reach(std::size_t n, double frobenius) {
    return std::min(4 * std::sqrt(static_cast<double>(n)), 16.0) * std::numeric_limits<double>::epsilon() * frobenius;
}

double rounding_allowance(std::size_t n, double frobenius) {
    return 4 * std::sqrt(static_cast<double>(n)) * std::numeric_limits<double>::epsilon() * frobenius;
}

}  // namespace basinvol
