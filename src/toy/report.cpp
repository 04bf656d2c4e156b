#include <basinvol/report/text.hpp>
#include <basinvol/toy/report.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace basinvol {
namespace {

using json = nlohmann::ordered_json;

json number(const std::optional<double>& v) { return v && std::isfinite(*v) ? json(*v) : json(nullptr); }

std::string fmt(const std::optional<double>& v, int digits) { return v ? format_number(*v, digits) : ""; }

json to_json(const toy::Check& c) {
    return {{"source", c.source},      {"check", c.check},       {"status", toy::verdict_name(c.verdict)},
            {"expected", number(c.expected)}, {"measured", number(c.measured)}, {"se", number(c.se)},
            {"tolerance", number(c.tolerance)}, {"note", c.note}};
}

}  // namespace

void write_checks(std::ostream& out, const std::vector<toy::Check>& checks, Format format, const json& context) {
    const std::vector<std::string> head = {"source", "check", "status", "expected", "measured", "se", "tolerance", "note"};
    auto cells = [&](const toy::Check& c, int digits) {
        const int errors = digits == 17 ? 17 : 3;  // machine formats: every digit (docs/output.md); the table: 3
        return std::vector<std::string>{c.source,
                                        c.check,
                                        toy::verdict_name(c.verdict),
                                        fmt(c.expected, digits),
                                        fmt(c.measured, digits),
                                        fmt(c.se, errors),
                                        fmt(c.tolerance, errors),
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
        case Format::csv:
            write_flat_line(out, head, format == Format::csv);
            for (const auto& c : checks) write_flat_line(out, cells(c, 17), format == Format::csv);
            break;
        case Format::table: {
            std::vector<std::vector<std::string>> rows;
            for (const auto& c : checks) rows.push_back(cells(c, 8));
            write_aligned(out, head, rows);
            break;
        }
    }
    out.flush();
}

}  // namespace basinvol
