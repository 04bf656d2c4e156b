#pragma once
// The validator's reporter: one row per check, as a table, TSV, CSV, JSON or
// JSON Lines. Machine formats carry no human text; JSON never holds NaN.
#include <basinvol/report/format.hpp>
#include <basinvol/toy/validate.hpp>

#include <ostream>
#include <vector>

namespace basinvol {

// Columns: source, check, status, expected, measured, se, tolerance, note.
// JSON: {schema_version, context, checks: [...], summary: {pass, fail, error, info}}.
void write_checks(std::ostream& out, const std::vector<toy::Check>& checks, Format format,
                  const nlohmann::ordered_json& context);

}  // namespace basinvol
