#pragma once
// Reading rows that basinvol wrote (to resume a run, or to rank saved rows
// without recomputing them). The inverse of the reporters: JSON Lines, JSON,
// TSV and CSV; the human table is not read back.
#include <basinvol/report/format.hpp>
#include <basinvol/result.hpp>

#include <istream>
#include <optional>
#include <string>
#include <vector>

namespace basinvol {

// A Row from the JSON object row_to_json wrote (with its places, when the
// rows were ranked; rank_rows sets them again). Throws InputError when `source` or `status` is
// missing or a field has the wrong type.
Row row_from_json(const nlohmann::ordered_json& object);

// The format of saved output, from its first bytes: a JSON document with
// "rows", JSON Lines, TSV (a tab in the header) or CSV. Empty when the text
// is empty or is the human table.
std::optional<Format> detect_format(const std::string& text);

// Every row of saved output in `format`. `what` names the file in messages.
// Throws InputError on text that is not basinvol output in that format.
std::vector<Row> parse_rows(const std::string& text, Format format, const std::string& what);

// Every row of saved output in its detected format (empty text: no rows).
std::vector<Row> parse_saved(const std::string& text, const std::string& what);

// The text of a file of saved rows. Throws InputError naming FILE when it
// cannot be read, is a directory or a device, or is an HDF5 file (a SOURCE,
// not results).
std::string read_saved_text(const std::string& file);

// Reads FILE and parses it in its detected format. Throws InputError.
std::vector<Row> read_rows(const std::string& file);

}  // namespace basinvol
