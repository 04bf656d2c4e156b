#include <basinvol/error.hpp>
#include <basinvol/report/format.hpp>
#include <basinvol/report/schema.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <sstream>

namespace basinvol {
namespace {

using json = nlohmann::ordered_json;
// File, dataset and attribute names come from HDF5 as bytes and need not be
// UTF-8: invalid bytes print as U+FFFD instead of throwing mid-report.
constexpr auto utf8_replace = json::error_handler_t::replace;

json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

Shape shape_of(const ReportSpec& spec) { return {spec.with_place, spec.with_regularized, spec.with_shard}; }

}  // namespace

const Names<Format>& format_names() {
    static const Names<Format> names = {{"table", Format::table},
                                        {"tsv", Format::tsv},
                                        {"csv", Format::csv},
                                        {"json", Format::json},
                                        {"jsonl", Format::jsonl}};
    return names;
}

Format parse_format(const std::string& name) { return parse_name(format_names(), "format", name); }

json row_to_json(const Row& r, const ReportSpec& spec) { return fields_to_json(r, shape_of(spec)); }

namespace {

// A JSON document's text up to its rows ("rows": [), and after them.
std::string document_head(const ReportSpec& spec) {
    json head = {{"schema_version", schema_version}, {"context", spec.context}};
    std::string h = head.dump(2, ' ', false, utf8_replace);
    h.pop_back();  // reopen the object to append the rows
    while (!h.empty() && (h.back() == '\n' || h.back() == ' ')) h.pop_back();
    return h + ",\n  \"rows\": [";
}
const char* document_tail(std::size_t rows) { return rows ? "\n  ]\n}\n" : "]\n}\n"; }

// `text` with `by` after each of its line breaks (a row's lines inside a document).
std::string indented(const std::string& text, const char* by) {
    std::string out;
    for (char ch : text) {
        out += ch;
        if (ch == '\n') out += by;
    }
    return out;
}

}  // namespace

RowWriter::RowWriter(std::ostream& out, ReportSpec spec) : out_(out), spec_(std::move(spec)) {}

void RowWriter::begin() {
    if (begun_) return;
    begun_ = true;
    switch (spec_.format) {
        case Format::tsv: out_ << join(flat_columns(shape_of(spec_)), "\t") << '\n'; break;
        case Format::csv: out_ << join(flat_columns(shape_of(spec_)), ",") << '\n'; break;
        case Format::json: out_ << document_head(spec_); break;
        default: break;
    }
}

void RowWriter::write(const Row& r) {
    begin();
    switch (spec_.format) {
        case Format::table: table_.push_back(r); return;
        case Format::jsonl: out_ << row_to_json(r, spec_).dump(-1, ' ', false, utf8_replace) << '\n'; break;
        case Format::json:
            out_ << (count_ ? ",\n    " : "\n    ") << indented(row_to_json(r, spec_).dump(2, ' ', false, utf8_replace), "    ");
            break;
        case Format::tsv:
        case Format::csv: {
            const json j = row_to_json(r, spec_);
            std::vector<std::string> cells;
            for (const auto& c : flat_columns(shape_of(spec_))) cells.push_back(flat_cell(j.at(c)));
            write_flat_line(out_, cells, spec_.format == Format::csv);
            break;
        }
    }
    ++count_;
    out_.flush();
}

void RowWriter::finish() {
    if (finished_) return;
    finished_ = true;
    begin();
    if (spec_.format == Format::json) {
        out_ << document_tail(count_);
    } else if (spec_.format == Format::table) {
        const auto columns = table_columns(shape_of(spec_));
        std::vector<std::string> head;
        for (const auto* c : columns) head.push_back(c->header);
        std::vector<std::vector<std::string>> cells;
        for (const auto& r : table_) {
            std::vector<std::string> line;
            for (const auto* c : columns) line.push_back(r.ok || c->any_row ? c->cell(r) : "-");
            cells.push_back(std::move(line));
        }
        write_aligned(out_, head, cells);
    }
    out_.flush();
}

namespace {

// Descending by magnitude: the order in which the cut reads the spectrum.
std::vector<double> by_magnitude(const Row& r) {
    std::vector<double> v = r.eigenvalues;
    std::stable_sort(v.begin(), v.end(), [](double a, double b) { return std::abs(a) > std::abs(b); });
    return v;
}

// Whether the volume uses eigenvalue v (it is in the row's rank).
bool kept(double v, const Row& r, const ReportSpec& spec) {
    return std::abs(v) > r.tol && (spec.keeps_negatives || v > 0);
}

// The row's fields and an empty eigenvalue list (filled in as it is written).
json spectrum_head(const Row& r, const ReportSpec& spec) {
    json j = row_to_json(r, spec);
    j["eigenvalues"] = json::array();
    j["eigenvalues_complete"] = r.ok && r.eigenvalues.size() == r.n;
    return j;
}

}  // namespace

SpectrumWriter::SpectrumWriter(std::ostream& out, ReportSpec spec) : out_(out), spec_(std::move(spec)) {}

void SpectrumWriter::begin() {
    if (begun_) return;
    begun_ = true;
    if (spec_.format == Format::json) {
        out_ << document_head(spec_);
    } else if (spec_.format == Format::tsv || spec_.format == Format::csv) {
        write_flat_line(out_, {"source", "index", "eigenvalue", "abs", "kept"}, spec_.format == Format::csv);
    }
}

void SpectrumWriter::write_json(const Row& r) {
    const bool pretty = spec_.format == Format::json;
    // A document's rows sit two levels in: each line of one is indented 4 more.
    const auto emit = [&](const std::string& text) { out_ << (pretty ? indented(text, "    ") : text); };
    const std::string head = spectrum_head(r, spec_).dump(pretty ? 2 : -1, ' ', false, utf8_replace);
    // The list is the last array the row holds: an attribute's own "eigenvalues" comes before it.
    const std::string key = pretty ? "\"eigenvalues\": []" : "\"eigenvalues\":[]";
    const std::size_t at = head.rfind(key), open = at + key.size() - 2;  // the list's '['
    if (pretty) out_ << (count_ ? ",\n    " : "\n    ");
    emit(head.substr(0, open + 1));  // through the list's '['
    if (r.ok && !r.eigenvalues.empty()) {
        const auto v = by_magnitude(r);
        for (std::size_t i = 0; i < v.size(); ++i) {
            const json e = {{"index", i}, {"eigenvalue", number(v[i])}, {"abs", number(std::abs(v[i]))},
                            {"kept", kept(v[i], r, spec_)}};
            const std::string text = e.dump(pretty ? 2 : -1, ' ', false, utf8_replace);
            if (i) out_ << ',';
            emit(pretty ? "\n    " + indented(text, "    ") : text);
        }
        if (pretty) emit("\n  ");
    }
    emit(head.substr(open + 1));
    if (!pretty) out_ << '\n';
}

void SpectrumWriter::write(const Row& r) {
    begin();
    if (spec_.format == Format::json || spec_.format == Format::jsonl) {
        write_json(r);
    } else if (spec_.format == Format::table) {
        if (!r.ok) {
            out_ << "# " << one_line(r.source) << "  error: " << one_line(r.error) << "\n\n";
        } else {
            // The row's cells in the human table (one definition of each), then the cut.
            out_ << "# " << one_line(r.source);
            for (const TableColumn* c : table_columns(shape_of(spec_))) {
                const std::string cell = c->cell(r);
                const std::string field = c->field;
                if (field == "source" || field == "status" || field == "warnings" || cell.empty() || cell == "-")
                    continue;  // said already, or below
                out_ << "  " << c->header << " " << cell;
            }
            out_ << "  tol " << format_number(r.tol, 6) << "  cut " << r.cut_rule;
            if (!r.warnings.empty()) out_ << "  warnings " << join(r.warnings.names(), ",");
            out_ << '\n';
            if (r.eigenvalues.size() < r.n)
                out_ << "# " << (r.n - r.eigenvalues.size()) << " eigenvalues not computed: |λ| <= "
                     << format_number(r.residual_bound, 6) << " (certified)\n";
            out_ << std::left << std::setw(8) << "index" << std::setw(26) << "eigenvalue" << "kept\n";
            auto v = by_magnitude(r);
            for (std::size_t i = 0; i < v.size(); ++i)
                out_ << std::left << std::setw(8) << i << std::setw(26) << format_number(v[i])
                     << (kept(v[i], r, spec_) ? "kept" : "dropped") << '\n';
            out_ << '\n';
        }
    } else if (r.ok) {
        const bool csv = spec_.format == Format::csv;
        auto v = by_magnitude(r);
        for (std::size_t i = 0; i < v.size(); ++i)
            write_flat_line(out_,
                            {r.source, std::to_string(i), format_number(v[i]), format_number(std::abs(v[i])),
                             kept(v[i], r, spec_) ? "true" : "false"},
                            csv);
    }
    ++count_;
    out_.flush();
}

void SpectrumWriter::finish() {
    if (finished_) return;
    finished_ = true;
    begin();
    if (spec_.format == Format::json) out_ << document_tail(count_);
    out_.flush();
}

void write_spectra(std::ostream& out, const std::vector<Row>& rows, const ReportSpec& spec) {
    SpectrumWriter w(out, spec);
    for (const auto& r : rows) w.write(r);
    w.finish();
}

namespace {

// The mixed_ warnings either row of the pair carries against the other.
std::vector<std::string> pair_warnings(const Comparison& c) {
    Warnings both = c.warnings_a;
    both.add(c.warnings_b);
    return both.names();
}

}  // namespace

void write_comparison(std::ostream& out, const Row& a, const Row& b, const Comparison& c, const ReportSpec& spec) {
    const bool failed = !a.ok || !b.ok;
    const char* result = failed ? "error" : c.sign > 0 ? "above" : c.sign < 0 ? "below" : "tie";
    if (spec.format == Format::json || spec.format == Format::jsonl) {
        json j = {{"result", result},
                  {"reason", c.reason},
                  {"noise_decides", c.noise_decides},
                  {"uncertain_by", c.uncertain_by},
                  {"warnings", pair_warnings(c)},
                  {"a", row_to_json(a, spec)},
                  {"b", row_to_json(b, spec)}};
        if (spec.format == Format::json) {
            j["schema_version"] = schema_version;
            j["context"] = spec.context;
        }
        out << j.dump(spec.format == Format::json ? 2 : -1, ' ', false, utf8_replace) << '\n';
    } else if (spec.format == Format::table) {
        auto line = [&](const char* which, const Row& r) {
            if (!r.ok) {
                out << "  " << which << "  " << one_line(r.source) << "  error: " << one_line(r.error) << '\n';
                return;
            }
            out << "  " << which << "  " << one_line(r.source) << "  dim " << r.dim << " (band " << r.dim_low << ".."
                << r.dim_high << ")  log_volume " << format_number(r.log_volume, 10) << '\n';
        };
        if (failed)
            out << "no comparison — " << one_line(c.reason) << '\n';
        else
            out << "A " << (c.sign > 0 ? "ranks above" : c.sign < 0 ? "ranks below" : "ties with") << " B — "
                << one_line(c.reason) << '\n';
        line("A", a);
        line("B", b);
    } else {
        const bool csv = spec.format == Format::csv;
        auto joined = [](const std::vector<std::string>& v) {
            std::string s;
            for (const auto& x : v) s += (s.empty() ? "" : ";") + x;
            return s;
        };
        write_flat_line(out, {"result", "noise_decides", "reason", "a", "a_dim", "a_log_volume", "b", "b_dim",
                              "b_log_volume", "uncertain_by", "warnings"},
                        csv);
        write_flat_line(out,
                        {result, c.noise_decides ? "true" : "false", c.reason, a.source,
                         a.ok ? std::to_string(a.dim) : "", a.ok ? format_number(a.log_volume) : "", b.source,
                         b.ok ? std::to_string(b.dim) : "", b.ok ? format_number(b.log_volume) : "",
                         joined(c.uncertain_by), joined(pair_warnings(c))},
                        csv);
    }
    out.flush();
}

}  // namespace basinvol
