#pragma once
// Validators of the command-line tools' numeric options: each names the rule
// and the text that broke it, where CLI11 would say "Could not convert", read
// "0x10" as 16, or read 1e-400 as 0.
#include <basinvol/analyze.hpp>
#include <basinvol/names.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace cli {

namespace detail {
inline std::string trimmed(const std::string& s) {
    const auto b = s.find_first_not_of(" \t");
    return b == std::string::npos ? std::string() : s.substr(b, s.find_last_not_of(" \t") - b + 1);
}
}  // namespace detail

// Each is given with transform(), not check(): CLI11 then converts the text
// as the validator leaves it (trimmed), where check() hands it a copy.

// A decimal number in float64's range (a subnormal such as 1e-320 is one;
// 1e-400 is not). inf and nan pass, for the option's own rule to judge
// (--max-asymmetry inf turns the check off; -T nan is "must be positive").
inline CLI::Validator decimal() {
    return CLI::Validator(
        [](std::string& text) {
            text = detail::trimmed(text);  // as CLI11 then converts it
            std::string word = text.substr(!text.empty() && (text[0] == '+' || text[0] == '-'));
            std::transform(word.begin(), word.end(), word.begin(), [](unsigned char c) { return char(std::tolower(c)); });
            if (word == "inf" || word == "infinity" || word == "nan" || basinvol::parse_finite(text)) return std::string();
            return "must be a decimal number within float64's range, got '" + text + "'";
        },
        "");
}

// A whole number from lo to hi, written in decimal digits.
inline CLI::Validator whole(std::uint64_t lo, std::uint64_t hi) {
    const std::string rule = "a whole number from " + std::to_string(lo) + " to " + std::to_string(hi);
    return CLI::Validator(
        [lo, hi, rule](std::string& text) {
            std::string t = detail::trimmed(text);
            if (!t.empty() && t[0] == '+') t.erase(0, 1);
            bool ok = !t.empty() && t.size() <= 19 &&
                      std::all_of(t.begin(), t.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
            std::uint64_t v = 0;
            if (ok) {
                v = std::stoull(t);
                ok = v >= lo && v <= hi;
            }
            if (!ok) return "must be " + rule + ", got '" + text + "'";
            text = std::to_string(v);  // CLI11 reads a leading 0 as octal: 010 is 10 here
            return std::string();
        },
        "INT in [" + std::to_string(lo) + " - " + std::to_string(hi) + "]");
}

// A value that cannot be empty: `--shard "$SHARD"` with SHARD unset must not
// read as no shard (every task of a job array would analyse everything), nor
// `-o "$OUT"` as standard output.
inline CLI::Validator non_empty(const std::string& what) {
    return CLI::Validator(
        [what](std::string& text) { return text.empty() ? "needs " + what + ", got ''" : std::string(); }, "");
}

// A memory budget: not empty, and with a unit unless a number of bytes a
// budget could be. Slurm's --mem and $SLURM_MEM_PER_NODE count megabytes:
// `--max-memory 16384` read as bytes made every Hessian an error row "over
// the memory budget". Under 1 GiB a bare number must say it counts bytes.
inline CLI::Validator memory_size() {
    return CLI::Validator(
        [](std::string& text) {
            if (text.empty()) return std::string("needs a size such as 8G, got ''");
            return basinvol::unitless_size_problem(text);
        },
        "");
}

// A time limit: a finite decimal number of seconds, at least a nanosecond
// ("must be a positive number of seconds, got 0", where
// CLI::PositiveNumber spells out DBL_MAX).
inline CLI::Validator positive_seconds() {
    return CLI::Validator(
        [](std::string& text) {
            text = detail::trimmed(text);
            const auto v = basinvol::parse_finite(text);
            if (v && *v > 0 && *v < 1e-9)
                return "must be at least a nanosecond (1e-9 seconds), got '" + text + "'";
            return v && *v >= 1e-9 ? std::string() : "must be a positive number of seconds, got '" + text + "'";
        },
        "SECONDS > 0");
}

}  // namespace cli
