#pragma once
// Whether rows ranked together count in one unit, as their own fields show
// it: the ranking's mixed_ warnings that are not about n or T
// (docs/method.md, "Warnings"). Shared by rank_rows and compare_rows.
#include <basinvol/result.hpp>

#include <optional>
#include <string>
#include <vector>

namespace basinvol::units {

// The --negatives a row was computed under, as its counts show it: drop
// leaves negative values out of rank (rank + dim + negative = n), abs and
// last keep them (rank + dim = n). A row without negative values reads
// alike under every policy: nullopt.
std::optional<bool> drops_negatives(const Row& r);
// Whether two rows show different policies (each with negative values).
bool mixed_negatives(const Row& a, const Row& b);

// Whether a row was cut where its own precision puts the cut (the rules
// dtype and gap), or at an explicit level (atol, rtol). Unknown: neither.
bool automatic_cut(const Row& r);
bool explicit_cut(const Row& r);

// Whether a row's cut is relative to its own matrix (the automatic rules,
// set by its precision: stored type, stated error, asymmetry; or rtol),
// and where it lies against its largest value, tol / spectral_norm (NaN
// when not known: a row saved without spectral_norm).
bool relative_rule(const Row& r);
double relative_cut(const Row& r);

// Whether a row would count another dim cut at `level` (absolute, over its
// own tol): its smallest kept value, at least max(noise_floor·10^gap, and
// over max(10·tol, noise_floor) when dim_high = dim), may lie at or under
// it. False when nothing is kept.
bool may_count_otherwise(const Row& r, double level);

// The mixed_ warnings of the ok rows of one ranking.
struct Mixed {
    std::vector<bool> negatives;     // per row: a saddle of one policy among saddles of the other
    bool cut = false;                // explicit and automatic cuts, or explicit atol cuts at different tol
    std::vector<bool> level;         // per row: cut lower (relative) than another, keeping a value under its level
    double largest_relative_cut = 0; // over the relative rows: an rtol there counts every row at one level
};
Mixed mixed(const std::vector<Row>& rows);

// The warnings a pair of rows would carry ranked together (of these three),
// and the clauses compare's reason adds for them.
void pair_warnings(const Row& a, const Row& b, Warnings& on_a, Warnings& on_b);
std::string pair_reason(const Row& a, const Row& b);

}  // namespace basinvol::units
