#pragma once
// One result: everything known about one Hessian. A plain value made by
// analysing (analyze.hpp), ordered by ranking (rank/), turned into text and
// read back by the reporting layer through one table of fields
// (report/schema.hpp).
#include <basinvol/hessian.hpp>
#include <basinvol/solver_stats.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace basinvol {

// One top-level block of a structured Hessian: its share of the answer.
struct BlockRow {
    std::string name;
    std::size_t n = 0;
    std::size_t rank = 0;      // its curved directions used in the volume
    std::size_t dim = 0;       // its flat directions
    std::size_t negative = 0;
    double log_volume_part = 0;  // −½ Σ log|λ| over its curved directions (log V = log ω_r + (r/2)·log 2T + Σ parts)
    // Of its flat directions, those whose |λ| lies under the whole's noise
    // floor and over the own floor of a part of it stored finer than the
    // structure's coarsest type (the warning finer_part_flat).
    std::size_t resolved_flat = 0;
};

// What a row warns of (docs/output.md, "Warnings"). The mixed_ warnings and
// place_uncertain come from ranking a row among others, the rest from
// analysing (and reading) one Hessian.
enum class Warning : std::uint8_t {
    saddle,           // negative eigenvalues among the curved directions
    ambiguous_rank,   // the gap at the cut is under min_gap decades, or a value lies within the floor of a rule's tol
    cut_below_floor,  // the cut lies under the noise floor
    uncertified,      // no method proved the dropped eigenvalues small
    symmetrized,      // symmetrizing moved the matrix past its stored type's rounding
    mixed_n,          // ranked among Hessians of different n
    place_uncertain,  // noise may decide the place
    unwritten_chunks, // chunks never written were read as the fill value
    regularized_noisy,  // --regularized's λ is near the values' rounding: log_volume_regularized may be off by over 1e-3
    mixed_threshold,    // ranked among rows measured at other thresholds T
    mixed_negatives,    // ranked among rows computed under another --negatives (abs and drop)
    mixed_level,        // cut lower, against its largest value, than a row it is ranked with, keeping values under its level
    mixed_cut,          // ranked among rows cut by another rule (explicit and automatic, or another atol)
    float32_values,     // float64 values holding float32 data: measured at float32's noise floor
    finer_part_flat,    // a structure's part stored finer than its coarsest type has resolved values counted flat
};
constexpr std::size_t warning_count = 15;

// The name a warning has in every output ("saddle", ...).
const char* warning_name(Warning w);
// The warning of a name; nullopt for a name this version does not know.
std::optional<Warning> parse_warning(const std::string& name);

// A set of warnings, listed in the order of the enum.
class Warnings {
public:
    bool has(Warning w) const { return bits_ & bit(w); }
    void add(Warning w) { bits_ |= bit(w); }
    void remove(Warning w) { bits_ &= static_cast<std::uint16_t>(~bit(w)); }
    void add(const Warnings& o) { bits_ |= o.bits_; }
    bool empty() const { return bits_ == 0; }
    std::vector<std::string> names() const;
    bool operator==(const Warnings& o) const { return bits_ == o.bits_; }
    bool operator!=(const Warnings& o) const { return bits_ != o.bits_; }

private:
    static std::uint16_t bit(Warning w) { return static_cast<std::uint16_t>(1u << static_cast<unsigned>(w)); }
    std::uint16_t bits_ = 0;
};

struct Row {
    std::string source;   // FILE:/dataset/path (or the SOURCE text when it could not be listed)
    std::string file;
    std::string dataset;
    bool ok = false;      // status "ok" or "error"
    std::string error;    // the message on error rows

    std::size_t n = 0;
    std::size_t rank = 0;
    std::size_t dim = 0;
    std::size_t negative = 0;
    double tol = 0;
    std::optional<double> gap;  // decades; empty = unbounded
    double noise_floor = 0;
    // max|λ|, the largest eigenvalue's magnitude (‖H‖₂); NaN when read back
    // from a row saved without it.
    double spectral_norm = 0;
    std::string cut_rule;
    double threshold = 1;       // T
    double log_volume = 0;
    double log10_volume = 0;
    // Bound on |log_volume − its value from the exact eigenvalues of the stored
    // matrix|: the eigen-solver's error (Ritz values, or LAPACK's ε·‖H‖).
    double log_volume_error = 0;
    // Bound on how far the input's own noise moves log_volume while the kept
    // set stays: each kept eigenvalue moves by at most the input's part of
    // the floor, ν = max(ε(stored)·‖H‖_F, asymmetry, stated error, the
    // subnormal and lossy steps) (Weyl), so
    // ½ Σ_kept −log(1 − ν/|λ|), infinite when a kept |λ| ≤ ν. What another
    // draw of the input could change, beside the solve.
    double log_volume_noise = 0;
    // The band: dims at min(tol, max(tol/10, noise_floor)) and at
    // max(tol·10, noise_floor) (dim_low ≤ dim ≤ dim_high).
    std::size_t dim_low = 0;
    std::size_t dim_high = 0;
    // The fewest flat directions another draw of the input may show (each
    // flat value lifted by ν and a relabelled solve's reach; ≤ dim_low).
    std::size_t dim_lifted = 0;
    // The negative directions the band's cuts keep: at dim_high's cut (the
    // fewest) and at dim_low's (the most); negative_low ≤ negative ≤
    // negative_high (which also counts the flat negative values another
    // draw of the input may keep: over tol − ν − t, or all where that is
    // under 0). A saddle with negative_low = 0 may be a minimum.
    std::size_t negative_low = 0;
    std::size_t negative_high = 0;
    std::optional<double> hessian_error;  // the input's stated error (--hessian-error or attribute), absolute
    std::optional<double> log_volume_regularized;

    std::string method;
    bool certified = false;
    double residual_bound = 0;  // every dropped eigenvalue has |λ| ≤ this (partial spectra)
    std::optional<SolverStats> stats;  // empty when read back from a format that does not carry it
    std::string solver_note;    // why a partial method fell back to dense, if it did
    std::string stored_type;
    std::string structure;            // "" for a dense dataset; blocks, factor, kron, diagonal
    std::string shard;                // "I/N" of the --shard run that wrote it (kept rows too); "" when unsharded
    std::string split;                // the fingerprint of its split: N and every shard's sources
    std::size_t shard_rows = 0;       // the split's rows that run writes once every row is in (0: none, or a part)
    std::size_t split_rows = 0;       // the rows of every shard of its split together, --per-block's parts left out
    std::vector<BlockRow> blocks;     // structured Hessians: one per top-level block
    double asymmetry = 0;
    Warnings warnings;
    double seconds = 0;
    Attributes attrs;

    std::optional<std::size_t> place;              // `rank` only: 1 = largest basin
    // `rank` only: what noise may decide the place by (place_uncertain), the
    // union over the rows it may reorder with: "dim", "log_volume", "negative"
    // (Comparison::uncertain_by). Empty when the place is certain.
    std::vector<std::string> uncertain_by;
    std::optional<std::size_t> place_regularized;  // `rank --regularized`

    std::vector<double> eigenvalues;  // kept only when asked for (`spectrum`)
};

}  // namespace basinvol
