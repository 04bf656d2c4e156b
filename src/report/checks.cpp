#include <basinvol/report/checks.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace basinvol {
namespace {

using json = nlohmann::ordered_json;

json number(const std::optional<double>& v) { return v && std::isfinite(*v) ? json(*v) : json(nullptr); }

std::string fmt(const std::optional<double>& v, int digits) {
    if (!v || !std::isfinite(*v)) return "";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*g", digits, *v);
    return buf;
}

json to_json(const toy::Check& c) {
    return {{"source", c.source},      {"check", c.check},       {"status", toy::verdict_name(c.verdict)},
            {"expected", number(c.expected)}, {"measured", number(c.measured)}, {"se", number(c.se)},
            {"tolerance", number(c.tolerance)}, {"note", c.note}};
}

std::string csv_quote(const std::string& s) {
    if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
    std::string q = "\"";
    for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return q + "\"";
}

std::string tsv_clean(std::string s) {
    for (auto& ch : s)
        if (ch == '\t' || ch == '\n' || ch == '\r') ch = ' ';
    return s;
}

}  // namespace

void write_checks(std::ostream& out, const std::vector<toy::Check>& checks, Format format, const json& context) {
    const std::vector<std::string> head = {"source", "check", "status", "expected", "measured", "se", "tolerance", "note"};
    auto cells = [&](const toy::Check& c, int digits) {
        return std::vector<std::string>{c.source,
                                        c.check,
                                        toy::verdict_name(c.verdict),
                                        fmt(c.expected, digits),
                                        fmt(c.measured, digits),
                                        fmt(c.se, 3),
                                        fmt(c.tolerance, 3),
                                        c.note};
    };
    switch (format) {
        case Format::json: {
            json doc;
            doc["schema_version"] = schema_version;
            doc["context"] = context;
            json arr = json::array();
            json summary = {{"pass", 0}, {"fail", 0}, {"error", 0}, {"info", 0}};
            for (const auto& c : checks) {
                arr.push_back(to_json(c));
                summary[toy::verdict_name(c.verdict)] = summary[toy::verdict_name(c.verdict)].get<int>() + 1;
            }
            doc["checks"] = arr;
            doc["summary"] = summary;
            out << doc.dump(2) << '\n';
            break;
        }
        case Format::jsonl:
            for (const auto& c : checks) out << to_json(c).dump() << '\n';
            break;
        case Format::tsv:
        case Format::csv: {
            const bool tsv = format == Format::tsv;
            auto line = [&](const std::vector<std::string>& v) {
                for (std::size_t i = 0; i < v.size(); ++i)
                    out << (i ? (tsv ? "\t" : ",") : "") << (tsv ? tsv_clean(v[i]) : csv_quote(v[i]));
                out << '\n';
            };
            line(head);
            for (const auto& c : checks) line(cells(c, 17));
            break;
        }
        case Format::table: {
            std::vector<std::vector<std::string>> rows;
            for (const auto& c : checks) rows.push_back(cells(c, 8));
            std::vector<std::size_t> width(head.size());
            for (std::size_t i = 0; i < head.size(); ++i) width[i] = head[i].size();
            for (const auto& r : rows)
                for (std::size_t i = 0; i + 1 < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
            auto line = [&](const std::vector<std::string>& v) {
                std::string s;
                for (std::size_t i = 0; i < v.size(); ++i) {
                    s += v[i];
                    if (i + 1 < v.size()) s += std::string(width[i] - v[i].size() + 2, ' ');
                }
                while (!s.empty() && s.back() == ' ') s.pop_back();
                out << s << '\n';
            };
            line(head);
            for (const auto& r : rows) line(r);
            break;
        }
    }
    out.flush();
}

}  // namespace basinvol
