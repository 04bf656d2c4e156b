#pragma once
// Ranking basins: fewest curved directions first (r = n − dim; at equal n
// this is "most flat directions first"), then log-volume (larger wins). One
// rule, shared by `rank` and `compare`; ties are an equivalence (transitive).
#include <basinvol/result.hpp>

#include <string>
#include <vector>

namespace basinvol {

struct RankOptions {
    // Log-volumes are compared on a grid of this many nats (rounded to the
    // nearest multiple): equal multiples share a place. 0 compares exactly.
    double tie_tol = 1e-6;
    bool saddles_last = false;  // --negatives last
};

struct Ranking {
    bool mixed_n = false;  // rows of different n: ordered by curved directions r, then log-volume
    bool mixed_threshold = false;  // rows measured at different T: their log-volumes are not in one unit
    // Rows computed under --negatives abs (or last) and drop, each with
    // negative values: one keeps them in its rank and volume, the other not.
    bool mixed_negatives = false;
    // Rows cut lower, against their largest value, than another row cut
    // relative to its own (dtype, gap, rtol), which keep a value under its
    // level: how many.
    std::size_t mixed_level = 0;
    // Rows cut by different rules: explicit (atol, rtol) and automatic
    // (dtype, gap), or atol at different tol.
    bool mixed_cut = false;
    // The automatic rows' largest tol/spectral_norm: an rtol there counts them at one level.
    double largest_relative_cut = 0;
    // Rows read back without log_volume_noise (saved before it): their reach is unbounded.
    std::size_t without_noise = 0;
    // Rows of a relative cut read back without spectral_norm (saved before
    // it): mixed_level cannot place their cuts, and does not mark them.
    std::size_t without_norm = 0;
};

// What decided the order of two rows.
enum class Decider { saddle, curved, volume, tie };

struct Comparison {
    int sign = 0;            // +1: a ranks strictly above b; −1: below; 0: they share a place
    Decider by = Decider::tie;
    // The deciding quantity can change within the rows' tolerance bands
    // (dim_low..dim_high), their dim_lifted, an ambiguous rank, or their
    // log-volumes' reach (log_volume_error + log_volume_noise): noise may
    // decide this order.
    bool noise_decides = false;
    // What noise may decide it by, when it may: "dim" (a cut within a band,
    // a dim_lifted under it, an ambiguous rank), "log_volume" (the
    // log-volumes' reach) and "negative" (option negatives last: a saddle
    // that may be a minimum, or a minimum a saddle).
    std::vector<std::string> uncertain_by;
    std::string reason;      // one line: what decided, with the numbers
    // The mixed_ warnings each row would carry ranked with the other
    // (mixed_threshold, mixed_negatives, mixed_cut, mixed_level).
    Warnings warnings_a, warnings_b;
};

// Compares two ok rows by the ranking rule.
Comparison compare_rows(const Row& a, const Row& b, const RankOptions& options);

// Orders `rows` in place (ranked ok rows first, then error rows in input
// order) and sets `place` on the ok rows; a row whose order against another
// row noise may decide gets the warning `place_uncertain`.
Ranking rank_rows(std::vector<Row>& rows, const RankOptions& options);

// Sets `place_regularized` from log_volume_regularized (larger wins), on rows
// that have it. Returns false, and sets no place, when those rows have
// different n (their regularized volumes are in different units).
bool rank_regularized(std::vector<Row>& rows, double tie_tol);

}  // namespace basinvol
