#include <basinvol/error.hpp>
#include <basinvol/report/format.hpp>

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
json number(const std::optional<double>& v) { return v ? number(*v) : json(nullptr); }

std::string fmt(double v, int digits = 17) {
    if (!std::isfinite(v)) return "";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    return buf;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
    std::string s;
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
    return s;
}

// The flat columns of TSV and CSV, in order.
std::vector<std::string> columns(const ReportSpec& spec) {
    std::vector<std::string> c;
    if (spec.with_place) c.push_back("place");
    for (const char* k : {"source", "file", "dataset", "n", "rank", "dim", "dim_low", "dim_high", "negative", "tol",
                          "gap", "noise_floor", "cut", "log_volume", "log10_volume", "log_volume_error", "method",
                          "status", "warnings", "error", "seconds", "step", "loss", "loss_threshold", "name",
                          "threshold", "certified", "residual_bound", "hessian_error", "asymmetry", "stored_type",
                          "structure"})
        c.push_back(k);
    if (spec.with_regularized) {
        c.push_back("log_volume_regularized");
        if (spec.with_place) c.push_back("place_regularized");
    }
    return c;
}

std::string cell(const json& v) {
    if (v.is_null()) return "";
    if (v.is_string()) return v.get<std::string>();
    if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
    if (v.is_number_float()) return fmt(v.get<double>());
    if (v.is_array()) {  // ';' keeps a list in one CSV cell without quotes (numpy.genfromtxt, csv)
        std::vector<std::string> parts;
        for (const auto& x : v) parts.push_back(cell(x));
        return join(parts, ";");
    }
    return v.dump(-1, ' ', false, utf8_replace);
}

std::string tsv_clean(std::string s) {
    for (auto& ch : s)
        if (ch == '\t' || ch == '\n' || ch == '\r') ch = ' ';
    return s;
}

std::string csv_quote(const std::string& s) {
    if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
    std::string q = "\"";
    for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return q + "\"";
}

}  // namespace

Format parse_format(const std::string& name) {
    if (name == "table") return Format::table;
    if (name == "tsv") return Format::tsv;
    if (name == "csv") return Format::csv;
    if (name == "json") return Format::json;
    if (name == "jsonl") return Format::jsonl;
    throw UsageError("--format must be one of table, tsv, csv, json, jsonl; got '" + name + "'");
}

json row_to_json(const Row& r, const ReportSpec& spec) {
    json j = json::object();
    if (spec.with_place) j["place"] = r.place ? json(*r.place) : json(nullptr);
    j["source"] = r.source;
    j["file"] = r.file;
    j["dataset"] = r.dataset;
    j["n"] = r.n ? json(r.n) : json(nullptr);
    j["status"] = r.ok ? "ok" : "error";
    j["warnings"] = r.warnings;
    j["error"] = r.ok ? json(nullptr) : json(r.error);
    if (r.ok) {
        j["rank"] = r.rank;
        j["dim"] = r.dim;
        j["dim_low"] = r.dim_low;
        j["dim_high"] = r.dim_high;
        j["negative"] = r.negative;
        j["tol"] = number(r.tol);
        j["gap"] = number(r.gap);
        j["noise_floor"] = number(r.noise_floor);
        j["cut"] = r.cut_rule;
        j["log_volume"] = number(r.log_volume);
        j["log10_volume"] = number(r.log10_volume);
        j["log_volume_error"] = number(r.log_volume_error);
        j["threshold"] = number(r.threshold);
        j["method"] = r.method;
        j["certified"] = r.certified;
        j["residual_bound"] = number(r.residual_bound);
        j["solver"] = {{"matvecs", r.stats.matvecs},
                       {"passes", r.stats.passes},
                       {"restarts", r.stats.restarts},
                       {"seconds", number(r.stats.seconds)},
                       {"note", r.solver_note.empty() ? json(nullptr) : json(r.solver_note)}};
        j["asymmetry"] = number(r.asymmetry);
        j["hessian_error"] = number(r.hessian_error);
    } else {
        for (const char* k : {"rank", "dim", "dim_low", "dim_high", "negative", "tol", "gap", "noise_floor", "cut",
                              "log_volume", "log10_volume", "log_volume_error", "threshold", "method", "certified",
                              "residual_bound", "solver", "asymmetry", "hessian_error"})
            j[k] = nullptr;
    }
    if (spec.with_regularized) {
        j["log_volume_regularized"] = number(r.log_volume_regularized);
        if (spec.with_place)
            j["place_regularized"] = r.place_regularized ? json(*r.place_regularized) : json(nullptr);
    }
    j["stored_type"] = r.stored_type.empty() ? json(nullptr) : json(r.stored_type);
    j["structure"] = r.structure.empty() ? json(nullptr) : json(r.structure);
    if (!r.blocks.empty()) {
        json blocks = json::array();
        for (const BlockRow& b : r.blocks)
            blocks.push_back({{"name", b.name}, {"n", b.n}, {"rank", b.rank}, {"dim", b.dim},
                              {"negative", b.negative}, {"log_volume_part", number(b.log_volume_part)}});
        j["blocks"] = blocks;
    }
    j["seconds"] = number(r.seconds);
    // A whole-number step is written as an integer (400, not 400.0).
    if (r.attrs.step && std::isfinite(*r.attrs.step) && std::abs(*r.attrs.step) < 9e15 &&
        *r.attrs.step == std::floor(*r.attrs.step))
        j["step"] = static_cast<long long>(*r.attrs.step);
    else
        j["step"] = number(r.attrs.step);
    j["loss"] = number(r.attrs.loss);
    j["loss_threshold"] = number(r.attrs.loss_threshold);
    j["name"] = r.attrs.name ? json(*r.attrs.name) : json(nullptr);
    return j;
}

RowWriter::RowWriter(std::ostream& out, ReportSpec spec) : out_(out), spec_(std::move(spec)) {}

void RowWriter::begin() {
    if (begun_) return;
    begun_ = true;
    switch (spec_.format) {
        case Format::tsv: {
            auto c = columns(spec_);
            out_ << join(c, "\t") << '\n';
            break;
        }
        case Format::csv: {
            auto c = columns(spec_);
            out_ << join(c, ",") << '\n';
            break;
        }
        case Format::json: {
            json head = {{"schema_version", schema_version}, {"context", spec_.context}};
            std::string h = head.dump(2, ' ', false, utf8_replace);
            h.pop_back();  // reopen the object to append the rows
            while (!h.empty() && (h.back() == '\n' || h.back() == ' ')) h.pop_back();
            out_ << h << ",\n  \"rows\": [";
            break;
        }
        default: break;
    }
}

void RowWriter::write(const Row& r) {
    begin();
    switch (spec_.format) {
        case Format::table: table_.push_back(r); return;
        case Format::jsonl: out_ << row_to_json(r, spec_).dump(-1, ' ', false, utf8_replace) << '\n'; break;
        case Format::json: {
            std::string body = row_to_json(r, spec_).dump(2, ' ', false, utf8_replace);
            std::string indented;
            for (char ch : body) {
                indented += ch;
                if (ch == '\n') indented += "    ";
            }
            out_ << (count_ ? ",\n    " : "\n    ") << indented;
            break;
        }
        case Format::tsv:
        case Format::csv: {
            json j = row_to_json(r, spec_);
            auto c = columns(spec_);
            for (std::size_t i = 0; i < c.size(); ++i) {
                std::string v = cell(j.contains(c[i]) ? j[c[i]] : json(nullptr));
                if (spec_.format == Format::tsv) out_ << (i ? "\t" : "") << tsv_clean(v);
                else out_ << (i ? "," : "") << csv_quote(v);
            }
            out_ << '\n';
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
        out_ << (count_ ? "\n  ]\n}\n" : "]\n}\n");
    } else if (spec_.format == Format::table) {
        std::vector<std::string> head;
        if (spec_.with_place) head.push_back("place");
        for (const char* k : {"source", "n", "dim", "dim_band", "rank", "neg", "log_volume", "log10_V", "gap", "method",
                              "status"})
            head.push_back(k);
        if (spec_.with_regularized) {
            head.push_back("logV_reg");
            if (spec_.with_place) head.push_back("place_reg");
        }
        head.push_back("warnings / error");
        std::vector<std::vector<std::string>> cells;
        for (const auto& r : table_) {
            std::vector<std::string> c;
            // A place that noise may change is marked "~"; a dim whose band is
            // wider than itself shows the band, and an ambiguous one a "?".
            const bool uncertain = std::find(r.warnings.begin(), r.warnings.end(), "place_uncertain") != r.warnings.end();
            const bool ambiguous = std::find(r.warnings.begin(), r.warnings.end(), "ambiguous_rank") != r.warnings.end();
            if (spec_.with_place) c.push_back(r.place ? std::to_string(*r.place) + (uncertain ? "~" : "") : "-");
            c.push_back(r.source);
            c.push_back(r.n ? std::to_string(r.n) : "-");
            if (r.ok) {
                c.push_back(std::to_string(r.dim) + (ambiguous ? "?" : ""));
                c.push_back(r.dim_low == r.dim_high ? "-" : std::to_string(r.dim_low) + ".." + std::to_string(r.dim_high));
                c.push_back(std::to_string(r.rank));
                c.push_back(std::to_string(r.negative));
                c.push_back(fmt(r.log_volume, 10));
                c.push_back(fmt(r.log10_volume, 6));
                c.push_back(r.gap ? fmt(*r.gap, 3) : "inf");
                c.push_back(r.method);
            } else {
                for (int i = 0; i < 7; ++i) c.push_back("-");
            }
            c.push_back(r.ok ? "ok" : "error");
            if (spec_.with_regularized) {
                c.push_back(r.log_volume_regularized ? fmt(*r.log_volume_regularized, 10) : "-");
                if (spec_.with_place) c.push_back(r.place_regularized ? std::to_string(*r.place_regularized) : "-");
            }
            c.push_back(r.ok ? join(r.warnings, ",") : r.error);
            cells.push_back(std::move(c));
        }
        std::vector<std::size_t> width(head.size());
        for (std::size_t i = 0; i < head.size(); ++i) width[i] = head[i].size();
        for (const auto& c : cells)
            for (std::size_t i = 0; i + 1 < c.size(); ++i) width[i] = std::max(width[i], c[i].size());
        auto line = [&](const std::vector<std::string>& c) {
            std::string s;
            for (std::size_t i = 0; i < c.size(); ++i) {
                s += c[i];
                if (i + 1 < c.size()) s += std::string(width[i] - c[i].size() + 2, ' ');
            }
            while (!s.empty() && s.back() == ' ') s.pop_back();
            out_ << s << '\n';
        };
        line(head);
        for (const auto& c : cells) line(c);
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

json spectrum_json(const Row& r, const ReportSpec& spec) {
    json j = row_to_json(r, spec);
    json ev = json::array();
    if (r.ok) {
        auto v = by_magnitude(r);
        for (std::size_t i = 0; i < v.size(); ++i)
            ev.push_back({{"index", i}, {"eigenvalue", number(v[i])}, {"abs", number(std::abs(v[i]))},
                          {"kept", std::abs(v[i]) > r.tol}});
    }
    j["eigenvalues"] = ev;
    j["eigenvalues_complete"] = r.ok && r.eigenvalues.size() == r.n;
    return j;
}

}  // namespace

void write_spectra(std::ostream& out, const std::vector<Row>& rows, const ReportSpec& spec) {
    if (spec.format == Format::json) {
        json all = json::array();
        for (const auto& r : rows) all.push_back(spectrum_json(r, spec));
        out << json{{"schema_version", schema_version}, {"context", spec.context}, {"rows", all}}.dump(2, ' ', false, utf8_replace) << '\n';
    } else if (spec.format == Format::jsonl) {
        for (const auto& r : rows) out << spectrum_json(r, spec).dump(-1, ' ', false, utf8_replace) << '\n';
    } else if (spec.format == Format::table) {
        for (const auto& r : rows) {
            if (!r.ok) {
                out << "# " << r.source << "  error: " << r.error << "\n\n";
                continue;
            }
            out << "# " << r.source << "  n " << r.n << "  rank " << r.rank << "  dim " << r.dim << "  negative "
                << r.negative << "  tol " << fmt(r.tol, 6) << "  gap " << (r.gap ? fmt(*r.gap, 3) : "inf")
                << "  cut " << r.cut_rule;
            if (!r.warnings.empty()) out << "  warnings " << join(r.warnings, ",");
            out << '\n';
            if (r.eigenvalues.size() < r.n)
                out << "# " << (r.n - r.eigenvalues.size()) << " eigenvalues not computed: |λ| <= "
                    << fmt(r.residual_bound, 6) << " (certified)\n";
            out << std::left << std::setw(8) << "index" << std::setw(26) << "eigenvalue" << "kept\n";
            auto v = by_magnitude(r);
            for (std::size_t i = 0; i < v.size(); ++i)
                out << std::left << std::setw(8) << i << std::setw(26) << fmt(v[i])
                    << (std::abs(v[i]) > r.tol ? "kept" : "dropped") << '\n';
            out << '\n';
        }
    } else {
        const bool csv = spec.format == Format::csv;
        const char* sep = csv ? "," : "\t";
        auto src = [&](const std::string& s) { return csv ? csv_quote(s) : tsv_clean(s); };
        out << "source" << sep << "index" << sep << "eigenvalue" << sep << "abs" << sep << "kept\n";
        for (const auto& r : rows) {
            if (!r.ok) continue;
            auto v = by_magnitude(r);
            for (std::size_t i = 0; i < v.size(); ++i)
                out << src(r.source) << sep << i << sep << fmt(v[i]) << sep << fmt(std::abs(v[i])) << sep
                    << (std::abs(v[i]) > r.tol ? "true" : "false") << '\n';
        }
    }
    out.flush();
}

}  // namespace basinvol
