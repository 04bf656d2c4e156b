// Reading saved rows back: JSON Lines, JSON, TSV, CSV (the inverse of
// report/format.cpp's reporters; the fields themselves in report/schema.cpp).
#include <basinvol/batch/results.hpp>
#include <basinvol/batch/shard.hpp>
#include <basinvol/error.hpp>
#include <basinvol/report/schema.hpp>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <sys/stat.h>

namespace basinvol {
namespace {

using json = nlohmann::ordered_json;

// A saved row. A shard it names must be I/N (the merge counts rows by it);
// the callers prefix the line or record, so the message can point at the row.
Row saved_row(const json& j) {
    Row r = row_from_json(j);
    if (r.shard.empty()) return r;
    try {
        parse_shard(r.shard);
    } catch (const UsageError&) {
        throw InputError("shard must be I/N with 1 <= I <= N, got '" + r.shard + "'");
    }
    return r;
}

// Splits one CSV/TSV record; CSV fields may be quoted (with "" for a quote and
// newlines inside). `pos` advances past the record.
std::vector<std::string> next_record(const std::string& s, std::size_t& pos, char sep, bool quoted,
                                     bool& open_quote) {
    std::vector<std::string> fields(1);
    bool in_quotes = false;
    while (pos < s.size()) {
        char c = s[pos++];
        if (in_quotes) {
            if (c == '"') {
                if (pos < s.size() && s[pos] == '"') {
                    fields.back() += '"';
                    ++pos;
                } else {
                    in_quotes = false;
                }
            } else {
                fields.back() += c;
            }
        } else if (quoted && c == '"') {
            in_quotes = true;
        } else if (c == sep) {
            fields.emplace_back();
        } else if (c == '\n') {
            break;
        } else if (c != '\r') {
            fields.back() += c;
        }
    }
    open_quote = in_quotes;  // the text ended inside a quoted field
    return fields;
}

std::vector<Row> parse_table(const std::string& s, char sep, const std::string& what) {
    std::size_t pos = 0, line = 1;
    for (;;) {  // blank lines before the header
        const std::size_t nl = s.find('\n', pos);
        if (nl == std::string::npos || s.find_first_not_of(" \t\r", pos) < nl) break;
        pos = nl + 1;
        ++line;
    }
    const bool quoted = sep == ',';
    bool open_quote = false;
    auto head = next_record(s, pos, sep, quoted, open_quote);
    if (open_quote) throw InputError(what + ": the header ends inside a quoted field (a file cut off in mid-write?)");
    bool has_source = false, has_status = false, has_eigenvalue = false;
    for (const auto& h : head) {
        has_source = has_source || h == "source";
        has_status = has_status || h == "status";
        has_eigenvalue = has_eigenvalue || h == "eigenvalue";
    }
    if (!has_source) throw InputError(what + ": the header has no 'source' column: not basinvol output");
    if (has_eigenvalue && !has_status)
        throw InputError(what + ": this is `basinvol spectrum` output, one line per eigenvalue, not rows: "
                                "save `basinvol volume` output (or `spectrum -f jsonl`) to rank it");
    std::vector<Row> rows;
    while (pos < s.size()) {
        auto f = next_record(s, pos, sep, quoted, open_quote);
        ++line;
        if (open_quote)
            throw InputError(what + ": record " + std::to_string(line) +
                             " ends inside a quoted field (a row cut off in mid-write?)");
        if (f.size() == 1 && f[0].empty()) continue;
        if (f.size() != head.size())
            throw InputError(what + ": record " + std::to_string(line) + " has " + std::to_string(f.size()) +
                             " fields, the header " + std::to_string(head.size()) + " (a cut-off row?)");
        // A row cut within its last field keeps its field count ("kron" as
        // "kro", a last column's number short of digits): a record must end
        // with its newline, as every row basinvol writes does.
        if (pos >= s.size() && s.back() != '\n')
            throw InputError(what + ": record " + std::to_string(line) +
                             " has no newline at its end (a row cut off in mid-write? add the newline if it is whole)");
        try {
            json j = json::object();
            for (std::size_t i = 0; i < head.size(); ++i) j[head[i]] = flat_value(head[i], f[i]);
            rows.push_back(saved_row(j));
        } catch (const InputError& e) {
            throw InputError(what + ": record " + std::to_string(line) + ": " + e.what());
        }
    }
    return rows;
}

}  // namespace

Row row_from_json(const json& j) { return fields_from_json(j); }

namespace {

// Why `text` is not JSON, as the parser says it (where, and what it read
// last: a NaN or Infinity written by hand shows there; a number past
// double's range), its bytes past ASCII as '?' (they may not be UTF-8).
std::string json_syntax_error(const std::string& text) {
    try {
        const json ignored = json::parse(text);
        (void)ignored;
    } catch (const json::exception& e) {
        std::string why = e.what();
        if (const auto end = why.find("] "); why.rfind("[json.exception", 0) == 0 && end != std::string::npos)
            why = why.substr(end + 2);
        for (auto& c : why)
            if (static_cast<unsigned char>(c) >= 0x80) c = '?';
        return why;
    }
    return "unreadable";
}

// The parser's message about one line of JSON Lines: its column, not "line 1".
std::string in_line(std::string why) {
    const std::string first = "parse error at line 1, column";
    if (why.rfind(first, 0) == 0) why = "at column" + why.substr(first.size());
    return why;
}

}  // namespace

std::optional<Format> detect_format(const std::string& s) {
    std::size_t i = s.find_first_not_of(" \t\r\n");
    if (i == std::string::npos) return std::nullopt;
    if (s[i] == '{') {
        // A JSON document spans lines, or is one line with "rows" (json.dump,
        // jq -c); JSON Lines has one complete object, a row, on the first line.
        const std::string first = s.substr(i, s.find('\n', i) - i);
        const json j = json::parse(first, nullptr, false);
        if (j.is_discarded()) return Format::json;
        return j.is_object() && j.contains("rows") && !j.contains("source") ? Format::json : Format::jsonl;
    }
    // Tables: the header is the first line that is not blank.
    const std::size_t line = s.rfind('\n', i) == std::string::npos ? 0 : s.rfind('\n', i) + 1;
    const std::string head = s.substr(line, s.find('\n', line) - line);
    if (head.find('\t') != std::string::npos) return Format::tsv;
    if (head.find(',') != std::string::npos) return Format::csv;
    return std::nullopt;
}

std::vector<Row> parse_rows(const std::string& s, Format format, const std::string& what) {
    std::vector<Row> rows;
    switch (format) {
        case Format::jsonl: {
            std::istringstream in(s);
            std::string line;
            std::size_t n = 0;
            while (std::getline(in, line)) {
                ++n;
                if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
                json j = json::parse(line, nullptr, false);
                if (j.is_discarded())
                    throw InputError(what + ": line " + std::to_string(n) + " is not a JSON object (a cut-off row?): " +
                                     in_line(json_syntax_error(line)));
                try {
                    rows.push_back(saved_row(j));
                } catch (const InputError& e) {
                    throw InputError(what + ": line " + std::to_string(n) + ": " + e.what());
                }
            }
            return rows;
        }
        case Format::json: {
            json doc = json::parse(s, nullptr, false);
            if (doc.is_discarded())
                throw InputError(what + ": not a basinvol JSON document (not JSON: " + json_syntax_error(s) + ")");
            if (!doc.is_object() || !doc.contains("rows") || !doc["rows"].is_array())
                throw InputError(what + ": not a basinvol JSON document (no \"rows\" array)");
            for (const auto& j : doc["rows"]) {
                try {
                    rows.push_back(saved_row(j));
                } catch (const InputError& e) {
                    throw InputError(what + ": " + e.what());
                }
            }
            return rows;
        }
        case Format::tsv: return parse_table(s, '\t', what);
        case Format::csv: return parse_table(s, ',', what);
        case Format::table: break;
    }
    throw InputError(what + ": the human table cannot be read back; save rows as jsonl, json, tsv or csv (option format)");
}

std::vector<Row> parse_saved(const std::string& text, const std::string& what) {
    const std::string s = text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? text.substr(3) : text;  // a byte order mark
    auto f = detect_format(s);
    if (!f) {
        if (s.find_first_not_of(" \t\r\n") == std::string::npos) return {};
        throw InputError(what + ": not basinvol output in jsonl, json, tsv or csv");
    }
    return parse_rows(s, *f, what);
}

std::string read_saved_text(const std::string& file) {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0)
        throw InputError(file + ": cannot open results file: " + std::strerror(errno));
    if (S_ISDIR(st.st_mode)) throw InputError(file + ": is a directory, not a results file");
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) throw InputError(file + ": is a device, not a results file");
    std::ifstream in(file, std::ios::binary);
    if (!in) throw InputError(file + ": cannot open results file: " + std::strerror(errno));
    // Read as a stream (a pipe or FIFO cannot seek back), then look at the head.
    std::string text(std::istreambuf_iterator<char>(in), {});
    if (text.compare(0, 8, "\x89HDF\r\n\x1a\n") == 0)
        throw InputError(file + ": is an HDF5 file, not saved rows (give it as a SOURCE)");
    // A UTF-8 byte order mark (spreadsheets write one before a CSV's header).
    if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);
    return text;
}

std::vector<Row> read_rows(const std::string& file) { return parse_saved(read_saved_text(file), file); }

}  // namespace basinvol
