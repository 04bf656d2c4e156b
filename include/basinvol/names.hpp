#pragma once
// The names of a choice's values, as every front end spells them (the
// command line's --cut values, Python's cut= strings), in one table per
// choice; the command line binds them with CLI11 transformers. And the one
// reading of a number written as text.
#include <basinvol/error.hpp>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace basinvol {

template <class T>
using Names = std::vector<std::pair<std::string, T>>;

// "a, b, c": the names in table order.
template <class T>
std::string name_list(const Names<T>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + n.first;
    return out;
}

// The value named `name`; throws UsageError(option, "must be one of ...").
template <class T>
T parse_name(const Names<T>& names, const std::string& option, const std::string& name) {
    for (const auto& n : names)
        if (n.first == name) return n.second;
    throw UsageError(option, "must be one of " + name_list(names) + "; got '" + name + "'");
}

// The name of `value` (every value of the enum has one).
template <class T>
const std::string& name_of(const Names<T>& names, T value) {
    for (const auto& n : names)
        if (n.second == value) return n.first;
    throw Error("a value without a name");
}

// The whole of `text` as a finite decimal number (white space around it
// allowed, the same before as after: strtod skips any before it);
// nullopt for anything else: a value out of float64's range (a subnormal
// such as 1e-320 is in range; 1e-400, which would read as 0, is not), and
// hexadecimal ("0x10", which strtod reads as 16; no one means that by it).
inline std::optional<double> parse_finite(const std::string& text) {
    if (text.find_first_of("xX") != std::string::npos) return std::nullopt;
    const CLocale c;
    const char* begin = text.c_str();
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(begin, &end);
    const bool subnormal = v != 0 && std::abs(v) < std::numeric_limits<double>::min();
    if (end == begin || (errno == ERANGE && !subnormal) || !std::isfinite(v)) return std::nullopt;
    while (*end == ' ' || (*end >= '\t' && *end <= '\r')) ++end;  // C's isspace
    if (end != begin + text.size()) return std::nullopt;  // (defensive: a NUL inside, text after it)
    return v;
}

}  // namespace basinvol
