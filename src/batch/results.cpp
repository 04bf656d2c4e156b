// Reading saved rows back: JSON Lines, JSON, TSV, CSV (the inverse of
// report/format.cpp's reporters).
#include <basinvol/batch/results.hpp>
#include <basinvol/error.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

namespace basinvol {
namespace {

using json = nlohmann::ordered_json;

std::optional<double> opt_number(const json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::nullopt;
    if (!it->is_number()) throw InputError(std::string("field '") + key + "' is not a number");
    return it->get<double>();
}

double number(const json& j, const char* key, double fallback = 0) { return opt_number(j, key).value_or(fallback); }

std::size_t count(const json& j, const char* key) {
    auto v = opt_number(j, key);
    if (v && *v < 0) throw InputError(std::string("field '") + key + "' is negative");
    return v ? static_cast<std::size_t>(*v) : 0;
}

std::string text(const json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return "";
    if (!it->is_string()) throw InputError(std::string("field '") + key + "' is not a string");
    return it->get<std::string>();
}

// Splits one CSV/TSV record; CSV fields may be quoted (with "" for a quote and
// newlines inside). `pos` advances past the record.
std::vector<std::string> next_record(const std::string& s, std::size_t& pos, char sep, bool quoted) {
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
    return fields;
}

// A TSV/CSV cell back to the JSON value row_to_json had written.
json cell_value(const std::string& column, const std::string& v) {
    static const char* strings[] = {"source", "file", "dataset", "method",    "status",
                                    "error",  "name", "stored_type", "cut", "structure"};
    for (const char* s : strings)
        if (column == s) return v.empty() ? json(nullptr) : json(v);
    if (column == "warnings") {  // ';'-separated (',' in files written before 0.2)
        json a = json::array();
        std::size_t start = 0;
        const char sep = v.find(';') != std::string::npos ? ';' : ',';
        while (!v.empty() && start <= v.size()) {
            auto comma = v.find(sep, start);
            a.push_back(v.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
            if (comma == std::string::npos) break;
            start = comma + 1;
        }
        return a;
    }
    if (column == "certified") return v.empty() ? json(nullptr) : json(v == "true");
    if (v.empty()) return nullptr;
    char* end = nullptr;
    double d = std::strtod(v.c_str(), &end);
    if (end == v.c_str() || *end != '\0') throw InputError("column '" + column + "' holds '" + v + "', not a number");
    return d;
}

std::vector<Row> parse_table(const std::string& s, char sep, const std::string& what) {
    std::size_t pos = 0;
    const bool quoted = sep == ',';
    auto head = next_record(s, pos, sep, quoted);
    bool has_source = false;
    for (const auto& h : head) has_source = has_source || h == "source";
    if (!has_source) throw InputError(what + ": the header has no 'source' column: not basinvol output");
    std::vector<Row> rows;
    std::size_t line = 1;
    while (pos < s.size()) {
        auto f = next_record(s, pos, sep, quoted);
        ++line;
        if (f.size() == 1 && f[0].empty()) continue;
        if (f.size() != head.size())
            throw InputError(what + ": record " + std::to_string(line) + " has " + std::to_string(f.size()) +
                             " fields, the header " + std::to_string(head.size()) + " (a cut-off row?)");
        json j = json::object();
        for (std::size_t i = 0; i < head.size(); ++i) j[head[i]] = cell_value(head[i], f[i]);
        try {
            rows.push_back(row_from_json(j));
        } catch (const InputError& e) {
            throw InputError(what + ": record " + std::to_string(line) + ": " + e.what());
        }
    }
    return rows;
}

}  // namespace

Row row_from_json(const json& j) {
    if (!j.is_object()) throw InputError("a row is not a JSON object");
    Row r;
    r.source = text(j, "source");
    if (r.source.empty()) throw InputError("a row has no 'source'");
    const std::string status = text(j, "status");
    if (status != "ok" && status != "error")
        throw InputError(r.source + ": status must be 'ok' or 'error', got '" + status + "'");
    r.ok = status == "ok";
    r.error = text(j, "error");
    r.file = text(j, "file");
    r.dataset = text(j, "dataset");
    r.n = count(j, "n");
    if (auto it = j.find("warnings"); it != j.end() && it->is_array())
        for (const auto& w : *it)
            if (w.is_string()) r.warnings.push_back(w.get<std::string>());
    r.stored_type = text(j, "stored_type");
    r.structure = text(j, "structure");
    if (auto it = j.find("blocks"); it != j.end() && it->is_array())
        for (const auto& b : *it) {
            BlockRow br;
            br.name = text(b, "name");
            br.n = count(b, "n");
            br.rank = count(b, "rank");
            br.dim = count(b, "dim");
            br.negative = count(b, "negative");
            br.log_volume_part = number(b, "log_volume_part");
            r.blocks.push_back(br);
        }
    r.seconds = number(j, "seconds");
    for (auto [key, place] : {std::pair{"place", &r.place}, std::pair{"place_regularized", &r.place_regularized}})
        if (auto v = opt_number(j, key); v && *v >= 1 && *v == std::floor(*v)) *place = static_cast<std::size_t>(*v);
    r.attrs.step = opt_number(j, "step");
    r.attrs.loss = opt_number(j, "loss");
    r.attrs.loss_threshold = opt_number(j, "loss_threshold");
    if (auto name = text(j, "name"); !name.empty()) r.attrs.name = name;
    r.log_volume_regularized = opt_number(j, "log_volume_regularized");
    if (!r.ok) return r;
    r.rank = count(j, "rank");
    r.dim = count(j, "dim");
    // Rows written before the band existed carry none: a band of one dim.
    r.dim_low = j.contains("dim_low") && !j["dim_low"].is_null() ? count(j, "dim_low") : r.dim;
    r.dim_high = j.contains("dim_high") && !j["dim_high"].is_null() ? count(j, "dim_high") : r.dim;
    r.negative = count(j, "negative");
    r.tol = number(j, "tol");
    r.gap = opt_number(j, "gap");
    r.noise_floor = number(j, "noise_floor");
    r.cut_rule = text(j, "cut");
    r.threshold = number(j, "threshold", 1);
    auto lv = opt_number(j, "log_volume");
    if (!lv) throw InputError(r.source + ": an ok row has no log_volume");
    r.log_volume = *lv;
    r.log10_volume = number(j, "log10_volume");
    r.log_volume_error = number(j, "log_volume_error");
    r.hessian_error = opt_number(j, "hessian_error");
    r.method = text(j, "method");
    if (auto it = j.find("certified"); it != j.end() && it->is_boolean()) r.certified = it->get<bool>();
    r.residual_bound = number(j, "residual_bound");
    r.asymmetry = number(j, "asymmetry");
    if (auto it = j.find("solver"); it != j.end() && it->is_object()) {
        r.stats.matvecs = count(*it, "matvecs");
        r.stats.passes = count(*it, "passes");
        r.stats.restarts = count(*it, "restarts");
        r.stats.seconds = number(*it, "seconds");
        r.solver_note = text(*it, "note");
    }
    return r;
}

std::optional<Format> detect_format(const std::string& s) {
    std::size_t i = s.find_first_not_of(" \t\r\n");
    if (i == std::string::npos) return std::nullopt;
    if (s[i] == '{') {
        // A JSON document spans lines; JSON Lines has one complete object on the first line.
        const std::string first = s.substr(i, s.find('\n', i) - i);
        return json::accept(first) ? Format::jsonl : Format::json;
    }
    const std::string head = s.substr(0, s.find('\n'));
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
                    throw InputError(what + ": line " + std::to_string(n) + " is not a JSON object (a cut-off row?)");
                try {
                    rows.push_back(row_from_json(j));
                } catch (const InputError& e) {
                    throw InputError(what + ": line " + std::to_string(n) + ": " + e.what());
                }
            }
            return rows;
        }
        case Format::json: {
            json doc = json::parse(s, nullptr, false);
            if (doc.is_discarded() || !doc.is_object() || !doc.contains("rows") || !doc["rows"].is_array())
                throw InputError(what + ": not a basinvol JSON document (no \"rows\" array)");
            for (const auto& j : doc["rows"]) {
                try {
                    rows.push_back(row_from_json(j));
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
    throw InputError(what + ": the human table cannot be read back; save rows with --format jsonl, json, tsv or csv");
}

std::vector<Row> parse_saved(const std::string& s, const std::string& what) {
    auto f = detect_format(s);
    if (!f) {
        if (s.find_first_not_of(" \t\r\n") == std::string::npos) return {};
        throw InputError(what + ": not basinvol output in jsonl, json, tsv or csv");
    }
    return parse_rows(s, *f, what);
}

std::vector<Row> read_rows(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw InputError(file + ": cannot open results file");
    std::string s(std::istreambuf_iterator<char>(in), {});
    return parse_saved(s, file);
}

}  // namespace basinvol
