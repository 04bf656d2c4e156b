#pragma once
// The pipeline for one Hessian: read → solve → cut → measure → a Row.
#include <basinvol/names.hpp>
#include <basinvol/io/reader.hpp>
#include <basinvol/measure/cut.hpp>
#include <basinvol/measure/volume.hpp>
#include <basinvol/result.hpp>
#include <basinvol/solve/spectrum.hpp>
#include <basinvol/solve/structured.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace basinvol {

struct AnalyzeOptions {
    ReadOptions read;
    CutOptions cut;
    Method method = Method::automatic;
    NegativePolicy negatives = NegativePolicy::abs;
    std::optional<double> threshold;    // -T; else the dataset's loss_threshold; else 1
    std::optional<double> regularized;  // λ of the regularized comparator
    // The input's known error (absolute, a bound on ‖H_stored − H_true‖₂);
    // else the dataset's hessian_error attribute. Raises the noise floor.
    std::optional<double> hessian_error;
    bool keep_eigenvalues = false;      // fill Row::eigenvalues
    // Factors' Gram matrices formed by this builder (basinvol-mpi); none: in this process.
    const GramBuilder* gram = nullptr;
    // Whether a structure's square parts may be solved two at a time, and in
    // how much memory (docs/structured.md). run_batch allows it for a batch
    // of one job, within its memory budget.
    SideBySide side_by_side;
};

// Checks option values; throws UsageError naming the option.
void validate(const AnalyzeOptions& options);

// Option values by name, as the command line and the Python package spell
// them (names.hpp); each parse throws UsageError listing the accepted names.
const Names<CutRule>& cut_rule_names();        // auto, dtype, gap
const Names<Method>& method_names();           // auto, dense, cholesky, sketch, lanczos
const Names<NegativePolicy>& negatives_names(); // abs, drop, last
CutRule parse_cut_rule(const std::string& name);
Method parse_method(const std::string& name);
NegativePolicy parse_negatives(const std::string& name);
// A memory size such as 8G, 500M or 1024 (bytes); "" is 0 (the default budget).
std::size_t parse_memory_size(const std::string& text);
// What is wrong with a size written as a bare number under 1 GiB ("16384",
// " 16384", "+16384", "1e4"), which parse_memory_size reads as bytes: Slurm's
// --mem and $SLURM_MEM_PER_NODE count megabytes, and such a budget made every
// Hessian an error row. Empty for any other text (B says bytes).
std::string unitless_size_problem(const std::string& text);

// One Hessian to one row. Never throws for problems of the input or the
// numerics: those become an error row.
Row analyze(const HessianInfo& info, const AnalyzeOptions& options);

// The same for a Hessian already in memory (checked and symmetric, with
// asymmetry and frobenius filled in; see make_hessian).
Row analyze_hessian(Hessian h, const AnalyzeOptions& options);

// Below this n the automatic plan goes straight to the dense solver.
constexpr std::size_t dense_below = 500;

// A partial spectrum computed elsewhere (basinvol-mpi's distributed sketch):
// its row when the spectrum is complete or certifies the cut by the serial
// rules (rest bound under the cut it leads to), nothing otherwise (the
// caller then computes every eigenvalue). frobenius and asymmetry as for
// analyze_eigenvalues. When it declines, `declined` (if given) gets the
// note the serial tool writes for that method ("sketch: rank above …").
std::optional<Row> analyze_partial(const HessianInfo& info, Spectrum spectrum, double frobenius,
                                   double asymmetry_norm, const AnalyzeOptions& options,
                                   std::string* declined = nullptr);

// A dense Hessian whose every eigenvalue was computed elsewhere (basinvol-mpi's
// distributed solve): the dense method's cut, measurement and row. frobenius
// is ‖H‖_F after symmetrizing, asymmetry_norm ‖H − Hᵀ‖_F as stored,
// seconds the solve's time. `note` and `before` are a declined partial
// method's note and work, carried into the row as the serial tool does.
// Never throws for problems of the numbers.
Row analyze_eigenvalues(const HessianInfo& info, std::vector<double> eigenvalues, double frobenius,
                        double asymmetry_norm, double seconds, const AnalyzeOptions& options, const std::string& note = {},
                        const SolverStats& before = {});

// The error row of a listed Hessian (the message is prefixed with its source
// unless it starts with it).
Row error_row(const HessianInfo& info, const std::string& message);

// The rows of one SOURCE (one per Hessian below it; a single error row when
// the source itself cannot be listed).
std::vector<ListedHessian> expand_source(const Source& source, Row* error_row, const ListOptions& options = {});

// A listed dataset's row: its error row when the listing found a problem,
// else analyze() (reading from the listing's in-memory image, if it was one).
Row analyze_listed(const ListedHessian& listed, const AnalyzeOptions& options);

// An error row for a source that could not be listed.
Row source_error_row(const Source& source, const std::string& message);

}  // namespace basinvol
