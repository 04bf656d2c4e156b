#include <basinvol/report/text.hpp>

#include <basinvol/error.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace basinvol {

namespace {

// Bytes that are not UTF-8 (a file or dataset name) as U+FFFD, replaced as
// the JSON writer and the journal replace them, so that a TSV or CSV file
// is UTF-8 (pandas reads it) and a row kept by --resume is written alike.
std::string utf8_text(const std::string& s) {
    if (std::all_of(s.begin(), s.end(), [](char ch) { return static_cast<unsigned char>(ch) < 0x80; })) return s;
    using nlohmann::json;
    return json::parse(json(s).dump(-1, ' ', false, json::error_handler_t::replace)).get<std::string>();
}

}  // namespace

std::string format_number(double v, int digits) {
    if (!std::isfinite(v)) return "";
    if (digits >= 17) return value_text(v);  // every digit that matters, no more (0.018018779, not ...8999999)
    char buf[64];
    const CLocale c;
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    return buf;
}

std::string join(const std::vector<std::string>& parts, const char* sep) {
    std::string s;
    for (std::size_t i = 0; i < parts.size(); ++i) s += (i ? sep : "") + parts[i];
    return s;
}

std::string tsv_cell(const std::string& text) {
    std::string s = utf8_text(text);
    for (auto& ch : s)
        if (ch == '\t' || ch == '\n' || ch == '\r') ch = ' ';
    return s;
}

std::string csv_cell(const std::string& text) {
    const std::string s = utf8_text(text);
    if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
    std::string q = "\"";
    for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return q + "\"";
}

void write_flat_line(std::ostream& out, const std::vector<std::string>& cells, bool csv) {
    for (std::size_t i = 0; i < cells.size(); ++i)
        out << (i ? (csv ? "," : "\t") : "") << (csv ? csv_cell(cells[i]) : tsv_cell(cells[i]));
    out << '\n';
}

std::string one_line(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    static const char hex[] = "0123456789abcdef";
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char ch = text[i];
        const auto c = static_cast<unsigned char>(ch);
        // U+0080..U+009F in UTF-8 (C2 80..C2 9F): the C1 controls, CSI among them.
        const auto next = i + 1 < text.size() ? static_cast<unsigned char>(text[i + 1]) : 0;
        if (c == 0xC2 && next >= 0x80 && next <= 0x9F) {
            out += "\\u00";
            out += hex[next >> 4];
            out += hex[next & 15];
            ++i;
        } else if (c >= 0x20 && c != 0x7f) out += ch;
        else if (ch == '\t') out += "\\t";
        else if (ch == '\n') out += "\\n";
        else if (ch == '\r') out += "\\r";
        else {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

namespace {

// Columns a cell takes: one per UTF-8 character (continuation bytes take none).
std::size_t columns_of(const std::string& cell) {
    std::size_t n = 0;
    for (unsigned char ch : cell) n += (ch & 0xC0) != 0x80;
    return n;
}

}  // namespace

void write_aligned(std::ostream& out, const std::vector<std::string>& head,
                   const std::vector<std::vector<std::string>>& given) {
    std::vector<std::vector<std::string>> rows = given;
    for (auto& r : rows)
        for (auto& c : r) c = one_line(c);
    std::vector<std::size_t> width(head.size());
    for (std::size_t i = 0; i < head.size(); ++i) width[i] = columns_of(head[i]);
    for (const auto& r : rows)
        for (std::size_t i = 0; i + 1 < r.size() && i < width.size(); ++i)
            width[i] = std::max(width[i], columns_of(r[i]));
    auto line = [&](const std::vector<std::string>& c) {
        std::string s;
        for (std::size_t i = 0; i < c.size(); ++i) {
            s += c[i];
            if (i + 1 < c.size() && i < width.size()) s += std::string(width[i] - columns_of(c[i]) + 2, ' ');
        }
        while (!s.empty() && s.back() == ' ') s.pop_back();
        out << s << '\n';
    };
    line(head);
    for (const auto& r : rows) line(r);
}

}  // namespace basinvol
