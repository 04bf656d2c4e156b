#pragma once
// The three kinds of failure a caller needs to tell apart. Everything the
// library throws derives from basinvol::Error; messages name the rule that was
// broken and the value that broke it.
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
struct UsageError : Error {
    using Error::Error;
};

// A numerical method failed to produce a trustworthy answer.
struct NumericError : Error {
    using Error::Error;
};

}  // namespace basinvol
