#pragma once
// Shared pieces of the basinvol command line: options common to every
// subcommand, expanding SOURCEs into work, running it, and exit statuses.
#include "words.hpp"

#include <basinvol/analyze.hpp>
#include <basinvol/report/format.hpp>
#include <basinvol/toy/validate.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace cli {

namespace bv = basinvol;

constexpr int exit_ok = 0, exit_failed = 1, exit_usage = 2;
// `compare --strict`: the order is decided by a quantity that noise may change.
constexpr int exit_noise_decides = 3;

// Options shared by every subcommand, as the user gave them.
struct CommonOptions {
    bv::Format format = bv::Format::table;
    bv::CutRule cut = bv::CutRule::automatic;
    bv::NegativePolicy negatives = bv::NegativePolicy::abs;
    bv::Method method = bv::Method::automatic;
    std::string max_memory;
    double min_gap = 1.0;
    double max_asymmetry = 1e-3;
    double tie_tol = 1e-6;
    std::optional<double> rtol, atol, threshold, regularized, hessian_error;
    std::optional<double> read_timeout;  // given: values read in a child process under this limit
    bool strict = false;  // compare: exit 3 when noise may decide
    bool trust_stored_type = false;  // float64 values at float64's rounding, even when they hold float32 data
};

// The library options from the command line's; throws UsageError.
bv::AnalyzeOptions to_analyze(const CommonOptions& o);

// What a JSON report says of the run: tool, version, command, `options`,
// library versions and the date.
nlohmann::ordered_json run_context(const std::string& command, nlohmann::ordered_json options);
// The options that shape an analysis, as a JSON context records them.
nlohmann::ordered_json options_json(const CommonOptions& o);

// How rows are written for `command`.
bv::ReportSpec spec_for(const std::string& command, const CommonOptions& o, bool with_place);

// Flushes stdout; a failed write turns success into failure.
int finish_output(int status);

// Options of `validate` beyond the common ones (its `analyze` is filled
// from CommonOptions when the command runs).
using ValidateCli = basinvol::toy::ValidateOptions;

// The subcommands.
struct BatchCli;

int cmd_volume(const std::vector<std::string>& sources, const CommonOptions& o, const BatchCli& b);
int cmd_rank(const std::vector<std::string>& sources, const CommonOptions& o, const BatchCli& b);
int cmd_compare(const std::string& a, const std::string& b, const CommonOptions& o, const BatchCli& batch);
int cmd_spectrum(const std::vector<std::string>& sources, const CommonOptions& o, const BatchCli& b);
int cmd_validate(const std::vector<std::string>& sources, const CommonOptions& o, const BatchCli& b,
                 const ValidateCli& v);

}  // namespace cli
