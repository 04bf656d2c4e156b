#pragma once
// Ranking basins: dimension first (more flat directions wins), then
// log-volume (larger wins). Rows of different n are comparable by dimension
// only.
#include <basinvol/report/row.hpp>

#include <string>
#include <vector>

namespace basinvol {

struct RankOptions {
    double tie_tol = 1e-6;      // log-volumes within this many nats share a place
    bool saddles_last = false;  // --negatives last
};

struct Ranking {
    bool mixed_n = false;  // rows of different n: ranked by dimension only
};

// Orders `rows` in place (ranked ok rows first, then error rows in input
// order) and sets `place` on the ok rows.
Ranking rank_rows(std::vector<Row>& rows, const RankOptions& options);

// Sets `place_regularized` from log_volume_regularized (larger wins), on rows
// that have it. Returns false, and sets no place, when those rows have
// different n (their regularized volumes are in different units).
bool rank_regularized(std::vector<Row>& rows, double tie_tol);

// Compares two ok rows. Returns +1 when a ranks strictly above b, −1 when b
// ranks strictly above a, 0 when they share a place; `reason` says what decided.
int compare_rows(const Row& a, const Row& b, const RankOptions& options, std::string& reason);

}  // namespace basinvol
