#pragma once
// The three kinds of failure a caller needs to tell apart. Everything the
// library throws derives from basinvol::Error; messages name the rule that was
// broken and the value that broke it.
#include <basinvol/c_locale.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace basinvol {

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The input (a file, a dataset, its values) breaks a rule.
struct InputError : Error {
    using Error::Error;
};

// The caller asked for something that cannot be done (bad option values).
// An option's error names the option by its library name (the options
// struct's field, Python's keyword: "max_memory"), never by a front end's
// spelling; a front end maps option() to its own (the CLI: --max-memory).
struct UsageError : Error {
    using Error::Error;
    // what(): "OPTION RULE", e.g. "max_memory must be positive".
    UsageError(const std::string& option, const std::string& rule)
        : Error(option + " " + rule), option_(option), rule_(rule) {}
    const std::string& option() const noexcept { return option_; }
    const std::string& rule() const noexcept { return rule_; }

private:
    std::string option_, rule_;
};

// A numerical method failed to produce a trustworthy answer.
struct NumericError : Error {
    using Error::Error;
};

// A number as a message shows it: the shortest text that reads back as the
// same double (-1e-09, not std::to_string's -0.000000), nan and inf as such.
inline std::string value_text(double v) {
    const CLocale c;
    char buf[32];
    if (v == std::trunc(v) && std::abs(v) < 1e15) {  // a whole number as one: 100, not 1e+02
        std::snprintf(buf, sizeof buf, "%.0f", v);
        return buf;
    }
    for (int digits = 1; digits <= 17; ++digits) {
        std::snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (std::strtod(buf, nullptr) == v) break;
    }
    return buf;
}

}  // namespace basinvol
