#pragma once
// Text helpers every reporter shares: numbers, cells, aligned tables.
#include <ostream>
#include <string>
#include <vector>

namespace basinvol {

// %.*g with `digits` significant digits; from 17 on, the shortest text that
// reads back as v (full precision); "" when not finite.
std::string format_number(double v, int digits = 17);
std::string join(const std::vector<std::string>& parts, const char* sep);
// A table cell or a message on one line: tabs and line breaks (of names)
// shown as \t, \n, \r, other control characters as \xHH (an escape
// sequence in a name cannot move a terminal's cursor).
std::string one_line(const std::string& text);
// A TSV cell: tabs and line breaks become spaces. Both kinds of cell are
// UTF-8: bytes that are not are written as U+FFFD.
std::string tsv_cell(const std::string& s);
// A CSV cell: quoted (with "" for a quote) when it holds , " or a line break.
std::string csv_cell(const std::string& s);
// One TSV (csv = false) or CSV line of cells, each made safe for its format.
void write_flat_line(std::ostream& out, const std::vector<std::string>& cells, bool csv);
// A table for people: columns padded to their widest cell and two spaces
// apart (the last column unpadded), trailing spaces trimmed.
void write_aligned(std::ostream& out, const std::vector<std::string>& head,
                   const std::vector<std::vector<std::string>>& rows);

}  // namespace basinvol
