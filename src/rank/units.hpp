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

// ε of a stored type's name as the reader gives it (float64, float32,
// float16, bfloat16, "floatN (E exponent bits, M mantissa bits)", intN);
// NaN for a name not known (or a row read back without one).
double stored_eps(const std::string& type);

// Whether a row was cut where its own precision puts the cut (the rules
// dtype and gap), or at an explicit level (atol, rtol). Unknown: neither.
bool automatic_cut(const Row& r);
bool explicit_cut(const Row& r);

// Whether a row cut at its own precision may count another dim where a
// stored type of ε `coarse` would cut the same matrix: its smallest kept
// value, at least noise_floor·10^gap, may lie under that cut, at most
// max(n·coarse·‖H‖_F, noise_floor) with ‖H‖_F ≤ noise_floor / max(ε,
// 8·√n·ε(float64)) (the floor's own terms). False when nothing is kept.
bool may_count_otherwise(const Row& finer, double coarse);

// The mixed_ warnings of the ok rows of one ranking.
struct Mixed {
    bool negatives = false;          // some drop rows and some abs rows, each with negative values
    bool cut = false;                // explicit and automatic cuts, or explicit atol cuts at different tol
    std::vector<bool> precision;     // per row: finer than another automatic row, and may count otherwise
    double largest_floor = 0;        // over the rows: an atol over it counts every row at one level
};
Mixed mixed(const std::vector<Row>& rows);

// The warnings a pair of rows would carry ranked together (of these three),
// and the clauses compare's reason adds for them.
void pair_warnings(const Row& a, const Row& b, Warnings& on_a, Warnings& on_b);
std::string pair_reason(const Row& a, const Row& b);

}  // namespace basinvol::units
