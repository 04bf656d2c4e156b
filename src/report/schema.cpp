// The row's fields, once: name, kind, which outputs carry them, how a Row
// gives and takes each value. A new output field is one entry here (and its
// line in docs/output.md).
#include <basinvol/error.hpp>
#include <basinvol/report/schema.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace basinvol {
namespace {

Json number(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }
Json number(const std::optional<double>& v) { return v ? number(*v) : Json(nullptr); }
Json text(const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); }
Json place(const std::optional<std::size_t>& p) { return p ? Json(*p) : Json(nullptr); }
Json count_or_null(std::size_t c) { return c ? Json(c) : Json(nullptr); }

std::size_t to_count(const Json& v) { return v.get<std::size_t>(); }
std::optional<std::size_t> to_place(const Json& v, const char* name) {
    const double d = v.get<double>();
    if (d < 1 || d != std::floor(d))
        throw InputError(std::string("field '") + name + "' must be a whole number from 1, got " + v.dump());
    return static_cast<std::size_t>(d);
}

Json step(const Row& r) {
    // A whole-number step is written as an integer (400, not 400.0).
    const auto& s = r.attrs.step;
    if (s && std::isfinite(*s) && std::abs(*s) < 9e15 && *s == std::floor(*s)) return static_cast<long long>(*s);
    return number(s);
}

Json solver(const Row& r) {
    if (!r.stats) return nullptr;
    return {{"matvecs", r.stats->matvecs},
            {"passes", r.stats->passes},
            {"restarts", r.stats->restarts},
            {"seconds", number(r.stats->seconds)},
            {"note", text(r.solver_note)}};
}

// A nested object's field: absent or null is `fallback`; else of its kind.
double inner_number(const Json& o, const char* key, double fallback = 0) {
    auto it = o.find(key);
    if (it == o.end() || it->is_null()) return fallback;
    if (!it->is_number()) throw InputError(std::string("field '") + key + "' is not a number");
    return it->get<double>();
}
std::size_t inner_count(const Json& o, const char* key) {
    const double v = inner_number(o, key);
    if (v < 0) throw InputError(std::string("field '") + key + "' is negative");
    return static_cast<std::size_t>(v);
}
std::string inner_text(const Json& o, const char* key) {
    auto it = o.find(key);
    if (it == o.end() || it->is_null()) return "";
    if (!it->is_string()) throw InputError(std::string("field '") + key + "' is not a string");
    return it->get<std::string>();
}

void set_solver(Row& r, const Json& o) {
    SolverStats s;
    s.matvecs = inner_count(o, "matvecs");
    s.passes = inner_count(o, "passes");
    s.restarts = inner_count(o, "restarts");
    s.seconds = inner_number(o, "seconds");
    r.stats = s;
    r.solver_note = inner_text(o, "note");
}

Json blocks(const Row& r) {
    Json a = Json::array();
    for (const BlockRow& b : r.blocks)
        a.push_back({{"name", b.name}, {"n", b.n}, {"rank", b.rank}, {"dim", b.dim}, {"negative", b.negative},
                     {"log_volume_part", number(b.log_volume_part)}, {"resolved_flat", b.resolved_flat}});
    return a;
}

void set_blocks(Row& r, const Json& a) {
    if (!a.is_array()) throw InputError("field 'blocks' is not a list");
    for (const auto& b : a) {
        if (!b.is_object()) throw InputError("field 'blocks' holds a value that is not an object");
        BlockRow br;
        br.name = inner_text(b, "name");
        br.n = inner_count(b, "n");
        br.rank = inner_count(b, "rank");
        br.dim = inner_count(b, "dim");
        br.negative = inner_count(b, "negative");
        br.log_volume_part = inner_number(b, "log_volume_part");
        br.resolved_flat = inner_count(b, "resolved_flat");  // absent in rows of versions before it: 0
        r.blocks.push_back(br);
    }
}

using K = FieldKind;
using S = FieldShown;
constexpr bool ok_only = true, any_row = false, flat = true, json_only = false;

// Shorthands for the common getter/setter pairs of a Row member.
#define BV_TEXT(member) [](const Row& r) { return Json(r.member); }, [](Row& r, const Json& v) { r.member = v.get<std::string>(); }
#define BV_TEXT_OR_NULL(member) [](const Row& r) { return text(r.member); }, [](Row& r, const Json& v) { r.member = v.get<std::string>(); }
#define BV_COUNT(member) [](const Row& r) { return Json(r.member); }, [](Row& r, const Json& v) { r.member = to_count(v); }
#define BV_NUMBER(member) [](const Row& r) { return number(r.member); }, [](Row& r, const Json& v) { r.member = v.get<double>(); }

const std::vector<Field> fields = {
    {"place", K::count, S::ranked, any_row, flat, [](const Row& r) { return place(r.place); },
     [](Row& r, const Json& v) { r.place = to_place(v, "place"); }},
    {"source", K::text, S::always, any_row, flat, BV_TEXT(source)},
    {"file", K::text, S::always, any_row, flat, BV_TEXT_OR_NULL(file)},
    {"dataset", K::text, S::always, any_row, flat, BV_TEXT(dataset)},
    {"n", K::count, S::always, any_row, flat, [](const Row& r) { return count_or_null(r.n); },
     [](Row& r, const Json& v) { r.n = to_count(v); }},
    {"rank", K::count, S::always, ok_only, flat, BV_COUNT(rank)},
    {"dim", K::count, S::always, ok_only, flat, BV_COUNT(dim)},
    {"dim_low", K::count, S::always, ok_only, flat, BV_COUNT(dim_low)},
    {"dim_high", K::count, S::always, ok_only, flat, BV_COUNT(dim_high)},
    {"dim_lifted", K::count, S::always, ok_only, flat, BV_COUNT(dim_lifted)},
    {"negative", K::count, S::always, ok_only, flat, BV_COUNT(negative)},
    {"negative_low", K::count, S::always, ok_only, flat, BV_COUNT(negative_low)},
    {"negative_high", K::count, S::always, ok_only, flat, BV_COUNT(negative_high)},
    {"tol", K::number, S::always, ok_only, flat, BV_NUMBER(tol)},
    {"gap", K::number, S::always, ok_only, flat, BV_NUMBER(gap)},
    {"noise_floor", K::number, S::always, ok_only, flat, BV_NUMBER(noise_floor)},
    {"spectral_norm", K::number, S::always, ok_only, flat, BV_NUMBER(spectral_norm)},
    {"cut", K::text, S::always, ok_only, flat, BV_TEXT(cut_rule)},
    {"log_volume", K::number, S::always, ok_only, flat, BV_NUMBER(log_volume)},
    {"log10_volume", K::number, S::always, ok_only, flat, BV_NUMBER(log10_volume)},
    {"log_volume_error", K::number, S::always, ok_only, flat, BV_NUMBER(log_volume_error)},
    {"log_volume_noise", K::number, S::always, ok_only, flat, BV_NUMBER(log_volume_noise)},
    {"method", K::text, S::always, ok_only, flat, BV_TEXT_OR_NULL(method)},
    {"status", K::text, S::always, any_row, flat, [](const Row& r) { return Json(r.ok ? "ok" : "error"); },
     [](Row& r, const Json& v) {
         const std::string s = v.get<std::string>();
         if (s != "ok" && s != "error") throw InputError("status must be 'ok' or 'error', got '" + s + "'");
         r.ok = s == "ok";
     }},
    {"warnings", K::list, S::always, any_row, flat, [](const Row& r) { return Json(r.warnings.names()); },
     [](Row& r, const Json& v) {
         r.warnings = {};
         for (const auto& name : v.get<std::vector<std::string>>()) {
             const auto w = parse_warning(name);
             if (!w) throw InputError("unknown warning '" + name + "'");
             r.warnings.add(*w);
         }
     }},
    {"error", K::text, S::always, any_row, flat, [](const Row& r) { return r.ok ? Json(nullptr) : Json(r.error); },
     [](Row& r, const Json& v) { r.error = v.get<std::string>(); }},
    {"seconds", K::number, S::always, any_row, flat, BV_NUMBER(seconds)},
    {"step", K::number, S::always, any_row, flat, step, [](Row& r, const Json& v) { r.attrs.step = v.get<double>(); }},
    {"loss", K::number, S::always, any_row, flat, BV_NUMBER(attrs.loss)},
    {"loss_threshold", K::number, S::always, any_row, flat, BV_NUMBER(attrs.loss_threshold)},
    {"name", K::text, S::always, any_row, flat,
     [](const Row& r) { return r.attrs.name ? Json(*r.attrs.name) : Json(nullptr); },
     [](Row& r, const Json& v) { r.attrs.name = v.get<std::string>(); }},
    {"threshold", K::number, S::always, ok_only, flat, BV_NUMBER(threshold)},
    {"certified", K::flag, S::always, ok_only, flat, [](const Row& r) { return Json(r.certified); },
     [](Row& r, const Json& v) { r.certified = v.get<bool>(); }},
    {"residual_bound", K::number, S::always, ok_only, flat, BV_NUMBER(residual_bound)},
    {"hessian_error", K::number, S::always, ok_only, flat, BV_NUMBER(hessian_error)},
    {"asymmetry", K::number, S::always, ok_only, flat, BV_NUMBER(asymmetry)},
    {"stored_type", K::text, S::always, any_row, flat, BV_TEXT_OR_NULL(stored_type)},
    {"structure", K::text, S::always, any_row, flat, BV_TEXT_OR_NULL(structure)},
    {"shard", K::text, S::sharded, any_row, flat, BV_TEXT_OR_NULL(shard)},
    {"split", K::text, S::sharded, any_row, flat, BV_TEXT_OR_NULL(split)},
    {"shard_rows", K::count, S::sharded, any_row, flat, [](const Row& r) { return count_or_null(r.shard_rows); },
     [](Row& r, const Json& v) { r.shard_rows = to_count(v); }},
    {"split_rows", K::count, S::sharded, any_row, flat, [](const Row& r) { return count_or_null(r.split_rows); },
     [](Row& r, const Json& v) { r.split_rows = to_count(v); }},
    {"log_volume_regularized", K::number, S::regularized, any_row, flat, BV_NUMBER(log_volume_regularized)},
    {"place_regularized", K::count, S::ranked_regularized, any_row, flat,
     [](const Row& r) { return place(r.place_regularized); },
     [](Row& r, const Json& v) { r.place_regularized = to_place(v, "place_regularized"); }},
    {"uncertain_by", K::list, S::ranked, ok_only, flat,
     [](const Row& r) { return r.place ? Json(r.uncertain_by) : Json(nullptr); },
     [](Row& r, const Json& v) {
         r.uncertain_by.clear();
         for (const auto& name : v.get<std::vector<std::string>>()) {
             if (name != "dim" && name != "log_volume" && name != "negative")
                 throw InputError("unknown cause '" + name + "' (dim, log_volume or negative)");
             r.uncertain_by.push_back(name);
         }
     }},
    {"solver", K::object, S::always, ok_only, json_only, solver, set_solver},
    {"blocks", K::object, S::when_present, any_row, json_only, blocks, set_blocks},
};

#undef BV_TEXT
#undef BV_TEXT_OR_NULL
#undef BV_COUNT
#undef BV_NUMBER

// The value's JSON type fits the field's kind; else InputError naming it.
void check_kind(const Field& f, const Json& v) {
    const std::string name = std::string("field '") + f.name + "'";
    switch (f.kind) {
        case K::text:
            if (!v.is_string()) throw InputError(name + " is not a string");
            break;
        case K::count:
            if (!v.is_number()) throw InputError(name + " is not a number");
            if (!std::isfinite(v.get<double>())) throw InputError(name + " is not a finite number");  // TSV, CSV
            if (v.get<double>() < 0) throw InputError(name + " is negative");
            if (v.get<double>() != std::floor(v.get<double>()) || v.get<double>() >= 9007199254740992.0)  // 2^53
                throw InputError(name + " is not a whole number below 2^53: " + v.dump());
            break;
        case K::number:
            if (!v.is_number()) throw InputError(name + " is not a number");
            if (!std::isfinite(v.get<double>())) throw InputError(name + " is not a finite number");  // TSV, CSV
            break;
        case K::flag:
            if (!v.is_boolean()) throw InputError(name + " is not true or false");
            break;
        case K::list:
            if (!v.is_array()) throw InputError(name + " is not a list");
            for (const auto& x : v)
                if (!x.is_string()) throw InputError(name + " holds a value that is not a string");
            break;
        case K::object: break;  // the setter checks its own structure
    }
}

}  // namespace

const std::vector<Field>& row_fields() { return fields; }

const Field* find_field(const std::string& name) {
    for (const Field& f : fields)
        if (name == f.name) return &f;
    return nullptr;
}

bool shows(const Field& f, const Shape& shape) {
    switch (f.shown) {
        case S::ranked: return shape.with_place;
        case S::regularized: return shape.with_regularized;
        case S::ranked_regularized: return shape.with_place && shape.with_regularized;
        case S::sharded: return shape.with_shard;
        default: return true;
    }
}

Json fields_to_json(const Row& r, const Shape& shape) {
    Json j = Json::object();
    for (const Field& f : fields) {
        if (!shows(f, shape)) continue;
        if (f.shown == S::when_present && r.blocks.empty()) continue;
        j[f.name] = f.ok_only && !r.ok ? Json(nullptr) : f.get(r);
    }
    return j;
}

std::vector<std::string> flat_columns(const Shape& shape) {
    std::vector<std::string> c;
    for (const Field& f : fields)
        if (f.flat && shows(f, shape)) c.push_back(f.name);
    return c;
}

std::string flat_cell(const Json& v) {
    if (v.is_null()) return "";
    if (v.is_string()) return v.get<std::string>();
    if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
    if (v.is_number_float()) return format_number(v.get<double>());
    if (v.is_array()) {  // ';' keeps a list in one CSV cell without quotes (numpy.genfromtxt, csv)
        std::vector<std::string> parts;
        for (const auto& x : v) parts.push_back(flat_cell(x));
        return join(parts, ";");
    }
    return v.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json flat_value(const std::string& column, const std::string& cell) {
    const Field* f = find_field(column);
    if (!f || f->kind == K::text) return cell.empty() ? Json(nullptr) : Json(cell);
    if (f->kind == K::list) {  // ';'-separated (',' in files written before 0.2)
        Json a = Json::array();
        if (cell.empty()) return a;
        const char sep = cell.find(';') != std::string::npos ? ';' : ',';
        for (std::size_t start = 0;;) {
            const auto end = cell.find(sep, start);
            a.push_back(cell.substr(start, end == std::string::npos ? std::string::npos : end - start));
            if (end == std::string::npos) return a;
            start = end + 1;
        }
    }
    if (cell.empty()) return nullptr;
    if (f->kind == K::flag) {  // true/false as written; True/False as pandas writes them back
        if (cell == "true" || cell == "True" || cell == "TRUE") return true;
        if (cell == "false" || cell == "False" || cell == "FALSE") return false;
        throw InputError("column '" + column + "' holds '" + cell + "', not true or false");
    }
    char* end = nullptr;
    const CLocale c;
    const double d = std::strtod(cell.c_str(), &end);
    if (end == cell.c_str() || *end != '\0')
        throw InputError("column '" + column + "' holds '" + cell + "', not a number");
    return d;
}

namespace {

std::string count_or_dash(std::size_t v, bool known) { return known ? std::to_string(v) : "-"; }
// A number the row does not carry (read back without it) is null: "-".
std::string number_or_dash(double v, int digits) { return std::isfinite(v) ? format_number(v, digits) : "-"; }

}  // namespace

const std::vector<TableColumn>& table_columns() {
    // A place that noise may change is marked "~"; a dim whose band is wider
    // than itself shows the band, and an ambiguous one a "?".
    static const std::vector<TableColumn> columns = {
        {"place", "place", true,
         [](const Row& r) {
             return r.place ? std::to_string(*r.place) + (r.warnings.has(Warning::place_uncertain) ? "~" : "")
                            : std::string("-");
         }},
        {"source", "source", true, [](const Row& r) { return r.source; }},
        {"n", "n", true, [](const Row& r) { return count_or_dash(r.n, r.n > 0); }},
        {"dim", "dim", false,
         [](const Row& r) { return std::to_string(r.dim) + (r.warnings.has(Warning::ambiguous_rank) ? "?" : ""); }},
        {"dim_low", "dim_band", false,
         [](const Row& r) {
             return r.dim_low == r.dim_high ? std::string("-")
                                            : std::to_string(r.dim_low) + ".." + std::to_string(r.dim_high);
         }},
        {"rank", "rank", false, [](const Row& r) { return std::to_string(r.rank); }},
        {"negative", "neg", false, [](const Row& r) { return std::to_string(r.negative); }},
        {"log_volume", "log_volume", false, [](const Row& r) { return number_or_dash(r.log_volume, 10); }},
        {"log10_volume", "log10_V", false, [](const Row& r) { return number_or_dash(r.log10_volume, 6); }},
        {"gap", "gap", false, [](const Row& r) { return r.gap ? number_or_dash(*r.gap, 3) : std::string("-"); }},
        {"method", "method", false, [](const Row& r) { return r.method.empty() ? std::string("-") : r.method; }},
        {"status", "status", true, [](const Row& r) { return std::string(r.ok ? "ok" : "error"); }},
        {"log_volume_regularized", "logV_reg", false,
         [](const Row& r) {
             return r.log_volume_regularized ? format_number(*r.log_volume_regularized, 10) : std::string("-");
         }},
        {"place_regularized", "place_reg", false,
         [](const Row& r) { return r.place_regularized ? std::to_string(*r.place_regularized) : std::string("-"); }},
        // place_uncertain names what noise may decide the place by:
        // place_uncertain(log_volume).
        {"warnings", "warnings / error", true,
         [](const Row& r) {
             if (!r.ok) return r.error;
             std::vector<std::string> names = r.warnings.names();
             for (auto& w : names)
                 if (w == "place_uncertain" && !r.uncertain_by.empty()) w += "(" + join(r.uncertain_by, "/") + ")";
             return join(names, ",");
         }},
    };
    return columns;
}

std::vector<const TableColumn*> table_columns(const Shape& shape) {
    std::vector<const TableColumn*> out;
    for (const auto& c : table_columns()) {
        const Field* f = find_field(c.field);
        if (!f) throw Error(std::string("table column '") + c.header + "' shows an unknown field");
        if (shows(*f, shape)) out.push_back(&c);
    }
    return out;
}

namespace {

// A saved ok row whose counts contradict each other cannot be ranked as if
// just computed (a hand-edited or truncated row): refused, naming the rule.
void check_counts(const Row& r) {
    auto refuse = [&](const std::string& rule) { throw InputError(r.source + ": the row's counts break " + rule); };
    if (r.dim > r.n) refuse("dim <= n (dim " + std::to_string(r.dim) + ", n " + std::to_string(r.n) + ")");
    if (r.rank + r.dim != r.n && r.rank + r.dim + r.negative != r.n)
        refuse("rank + dim = n, or rank + dim + negative = n when negatives are dropped (rank " +
               std::to_string(r.rank) + ", dim " + std::to_string(r.dim) + ", negative " + std::to_string(r.negative) +
               ", n " + std::to_string(r.n) + ")");
    if (r.negative > r.n - r.dim) refuse("negative <= n - dim");
    if (!(r.dim_low <= r.dim && r.dim <= r.dim_high && r.dim_high <= r.n))
        refuse("dim_low <= dim <= dim_high <= n (" + std::to_string(r.dim_low) + ", " + std::to_string(r.dim) + ", " +
               std::to_string(r.dim_high) + ", " + std::to_string(r.n) + ")");
    if (!(r.dim_lifted <= r.dim_low))
        refuse("dim_lifted <= dim_low (" + std::to_string(r.dim_lifted) + ", " + std::to_string(r.dim_low) + ")");
    if (!(r.negative_low <= r.negative && r.negative <= r.negative_high && r.negative_high <= r.n))
        refuse("negative_low <= negative <= negative_high <= n");
    if (r.log_volume_error < 0) refuse("log_volume_error >= 0 (got " + value_text(r.log_volume_error) + ")");
    if (r.log_volume_noise < 0) refuse("log_volume_noise >= 0 (got " + value_text(r.log_volume_noise) + ")");
    // log10_volume is log_volume / ln 10, as written (when both are given).
    const double ln10 = std::log(10.0);
    if (std::isfinite(r.log10_volume) && std::isfinite(r.log_volume) &&
        !(std::abs(r.log10_volume * ln10 - r.log_volume) <= 1e-12 * std::max(1.0, std::abs(r.log_volume))))
        throw InputError(r.source + ": the row's log10_volume is not log_volume / ln 10 (log10_volume " +
                         value_text(r.log10_volume) + ", log_volume " + value_text(r.log_volume) + ")");
}

}  // namespace

Row fields_from_json(const Json& j) {
    if (!j.is_object()) throw InputError("a row is not a JSON object");
    Row r;
    auto take = [&](const Field& f) {
        auto it = j.find(f.name);
        if (it == j.end() || it->is_null()) return false;
        check_kind(f, *it);
        f.set(r, *it);
        return true;
    };
    // The source names the row in every message; the status says whether
    // the ok-only fields are read.
    const Field& source = *find_field("source");
    const Field& status = *find_field("status");
    if (!take(source) || r.source.empty()) throw InputError("a row has no 'source'");
    // A value the saved row did not carry is written back as null, never as
    // a made-up 0 (non-finite numbers are written as null).
    const double unknown = std::numeric_limits<double>::quiet_NaN();
    r.tol = r.noise_floor = r.spectral_norm = r.threshold = r.log10_volume = r.log_volume_error = r.log_volume_noise =
        r.residual_bound = r.asymmetry = r.seconds = unknown;
    try {
        if (!take(status)) throw InputError("a row has no 'status'");
        for (const Field& f : fields)
            if (&f != &source && &f != &status && !(f.ok_only && !r.ok)) take(f);
        // What ranking reads: an ok row without one of them cannot be placed.
        for (const char* key : {"n", "rank", "dim", "negative", "log_volume"})
            if (r.ok && (!j.contains(key) || j.at(key).is_null()))
                throw InputError(std::string("an ok row has no '") + key + "'" +
                                 (j.contains(key) ? " (it is null: a missing value, or NaN in a table)" : ""));
    } catch (const InputError& e) {
        throw InputError(r.source + ": " + e.what());
    }
    // `spectrum` rows (JSON) carry their eigenvalues, as objects by magnitude.
    if (auto ev = j.find("eigenvalues"); r.ok && ev != j.end() && ev->is_array())
        for (const auto& e : *ev) {
            const Json& v = e.is_object() && e.contains("eigenvalue") ? e.at("eigenvalue") : e;
            if (!v.is_number()) throw InputError(r.source + ": field 'eigenvalues' holds a value that is not a number");
            r.eigenvalues.push_back(v.get<double>());
        }
    // A row without its band (saved before the band existed, or a column
    // cut from a table) may have any dim: the band 0..n, as an unknown error
    // counts as unbounded, so that noise may decide every order r decides;
    // its negative band, unless carried, is then every count those dims
    // allow: none (nothing kept) to negative + dim (every flat value
    // negative). With the band but not the negative band (rows saved
    // before that one existed), the negative band is `negative`.
    auto absent = [&](const char* key) { return !j.contains(key) || j.at(key).is_null(); };
    const bool no_band = absent("dim_low") || absent("dim_high");
    if (r.ok && absent("dim_low")) r.dim_low = 0;
    if (r.ok && absent("dim_high")) r.dim_high = r.n;
    if (r.ok && absent("negative_low")) r.negative_low = no_band ? 0 : r.negative;
    if (r.ok && absent("negative_high")) r.negative_high = no_band ? r.negative + r.dim : r.negative;
    // Without dim_lifted (saved before it existed), or without the band it
    // lies under, every flat value may be one another draw of the input keeps.
    if (r.ok && (absent("dim_lifted") || absent("dim_low"))) r.dim_lifted = 0;
    // Without its warnings (a column cut from a table) the rank may have been
    // ambiguous: read so, as a missing band is the widest, so that an order
    // it decides is not told as certain. (An empty cell is no warnings.)
    if (r.ok && !j.contains("warnings")) r.warnings.add(Warning::ambiguous_rank);
    // A log_volume_noise saved as null is an unbounded one (a kept value
    // within the noise of 0), not one saved before the field existed.
    if (r.ok && j.contains("log_volume_noise") && j.at("log_volume_noise").is_null())
        r.log_volume_noise = std::numeric_limits<double>::infinity();
    if (r.ok) check_counts(r);
    return r;
}

}  // namespace basinvol
