// The one field table: every format written and read back, field by field.
#include <basinvol/batch/results.hpp>
#include <basinvol/error.hpp>
#include <basinvol/report/format.hpp>
#include <basinvol/report/schema.hpp>
#include <basinvol/report/text.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>
#include <utility>
#include <sstream>
#include <string>
#include <vector>

using namespace basinvol;

namespace {

// Rows that set every field to a value that is not its default, including
// awkward text (commas, quotes, tabs, a non-ASCII name) and numbers that
// need all 17 digits.
std::vector<Row> sample_rows() {
    Row ok;
    ok.source = "runs/a,b.h5:/checkpoints/step_00400";
    ok.file = "runs/a,b.h5";
    ok.dataset = "/checkpoints/step_00400";
    ok.ok = true;
    ok.n = 530;
    ok.rank = 41;
    ok.dim = 489;
    ok.dim_low = 487;
    ok.dim_high = 492;
    ok.dim_lifted = 486;
    ok.negative = 3;
    ok.negative_low = 2;
    ok.negative_high = 3;
    ok.tol = 1.0 / 3.0 * 1e-7;
    ok.gap = 2.718281828459045;
    ok.noise_floor = 3.0517578125e-09 / 7;
    ok.spectral_norm = 12.5 / 3;
    ok.cut_rule = "gap";
    ok.threshold = 0.125;
    ok.log_volume = -123.45678901234567;
    ok.log10_volume = ok.log_volume / std::log(10.0);
    ok.log_volume_error = 1e-11 / 3;
    ok.log_volume_noise = 2.5e-7 / 3;
    ok.hessian_error = 2e-6;
    ok.log_volume_regularized = -98.7654321;
    ok.method = "sketch";
    ok.certified = true;
    ok.residual_bound = 4.2e-9 / 3;
    ok.stats = SolverStats{};
    ok.stats->matvecs = 152;
    ok.stats->passes = 2;
    ok.stats->restarts = 1;
    ok.stats->seconds = 0.25;
    ok.solver_note = "cholesky: rank above 450, \"tab\"\there";
    ok.stored_type = "float32";
    ok.asymmetry = 1.5e-8;
    ok.warnings.add(Warning::saddle);
    ok.warnings.add(Warning::ambiguous_rank);
    ok.seconds = 1.0 / 7;
    ok.attrs.step = 400;
    ok.attrs.loss = 0.031;
    ok.attrs.loss_threshold = 0.5;
    ok.attrs.name = "wide \xc3\xa9 net";
    ok.place = 2;
    ok.uncertain_by = {"dim", "log_volume"};
    ok.place_regularized = 1;

    Row structured = ok;
    structured.source = "s.h5:/layers";
    structured.structure = "blocks";
    structured.gap.reset();
    structured.hessian_error.reset();
    structured.attrs.step = 2.5;
    structured.warnings = {};
    structured.solver_note.clear();
    structured.blocks = {{"fc1", 400, 30, 370, 2, -80.5}, {"fc2", 130, 11, 119, 1, -40.25}};

    Row error;
    error.source = "bad.h5:/hessian";
    error.file = "bad.h5";
    error.dataset = "/hessian";
    error.n = 12;
    error.error = "bad.h5:/hessian: non-finite value nan at [3, 4]";
    error.seconds = 0.001;
    error.attrs.name = "broken";
    return {ok, structured, error};
}

std::string written(const std::vector<Row>& rows, const ReportSpec& spec) {
    std::ostringstream out;
    RowWriter w(out, spec);
    for (const Row& r : rows) w.write(r);
    w.finish();
    return out.str();
}

}  // namespace

TEST_CASE("every format reads back what it wrote, field by field; what it does not carry reads back as null") {
    for (bool place : {false, true})
        for (bool regularized : {false, true})
            for (Format format : {Format::jsonl, Format::json, Format::tsv, Format::csv}) {
                ReportSpec spec;
                spec.format = format;
                spec.with_place = place;
                spec.with_regularized = regularized;
                const bool flat_format = format == Format::tsv || format == Format::csv;
                CAPTURE(static_cast<int>(format));
                CAPTURE(place);
                CAPTURE(regularized);
                const auto rows = sample_rows();
                const auto back = parse_rows(written(rows, spec), format, "saved");
                REQUIRE(back.size() == rows.size());
                for (std::size_t i = 0; i < rows.size(); ++i) {
                    // Both sides as the JSON a full-shaped writer gives, so
                    // every field is compared, also those this shape omits.
                    const Json want = fields_to_json(rows[i], {true, true});
                    const Json got = fields_to_json(back[i], {true, true});
                    for (const Field& f : row_fields()) {
                        CAPTURE(f.name);
                        const bool carried = shows(f, {place, regularized}) && (f.flat || !flat_format);
                        const Json w = want.contains(f.name) ? want.at(f.name) : Json(nullptr);
                        const Json g = got.contains(f.name) ? got.at(f.name) : Json(nullptr);
                        if (carried) CHECK(g == w);
                        else CHECK(g.is_null());
                    }
                }
            }
}

TEST_CASE("TSV and CSV write each number in the fewest digits that read back exactly") {
    CHECK(flat_cell(Json(0.018018779)) == "0.018018779");
    CHECK(flat_cell(Json(1.0)) == "1");
    CHECK(flat_cell(Json(-1e-9)) == "-1e-09");
    std::uint64_t x = 88172645463325252ULL;  // xorshift64: doubles of every exponent
    for (int i = 0; i < 20000; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v;
        std::memcpy(&v, &x, sizeof v);
        if (!std::isfinite(v)) continue;
        const std::string cell = flat_cell(Json(v));
        CHECK(std::strtod(cell.c_str(), nullptr) == v);
        CHECK(cell.size() <= 24);
    }
}

TEST_CASE("TSV and CSV carry every scalar field; lists never need CSV quotes") {
    const auto columns = flat_columns({true, true});
    const std::set<std::string> flat(columns.begin(), columns.end());
    for (const Field& f : row_fields()) {
        CAPTURE(f.name);
        CHECK(flat.count(f.name) == (f.kind != FieldKind::object ? 1u : 0u));
    }
    ReportSpec spec;
    spec.format = Format::csv;
    const std::string csv = written({sample_rows()[0]}, spec);
    CHECK(csv.find("saddle;ambiguous_rank") != std::string::npos);
    CHECK(csv.find("\"saddle") == std::string::npos);
    CHECK(csv.find("\"runs/a,b.h5:/checkpoints/step_00400\"") != std::string::npos);
    // A whole-number step is an integer in every format.
    spec.format = Format::jsonl;
    CHECK(written({sample_rows()[0]}, spec).find("\"step\":400,") != std::string::npos);
}

TEST_CASE("a saved row with a field of the wrong kind is refused, naming the row and the field") {
    Json j = fields_to_json(sample_rows()[0], {});
    auto refused = [&](const char* field, const Json& value, const char* why) {
        Json bad = j;
        bad[field] = value;
        CHECK_THROWS_WITH_AS(fields_from_json(bad),
                             doctest::Contains((std::string("runs/a,b.h5:/checkpoints/step_00400: ") + why).c_str()),
                             InputError);
    };
    refused("rank", -1, "field 'rank' is negative");
    refused("rank", 1.5, "field 'rank' is not a whole number");
    refused("tol", "small", "field 'tol' is not a number");
    refused("cut", 3, "field 'cut' is not a string");
    refused("certified", "yes", "field 'certified' is not true or false");
    refused("warnings", Json::array({1}), "field 'warnings' holds a value that is not a string");
    refused("warnings", Json::array({"sadle"}), "unknown warning 'sadle'");
    refused("status", "fine", "status must be 'ok' or 'error', got 'fine'");
    refused("log_volume", nullptr, "an ok row has no 'log_volume' (it is null: a missing value, or NaN in a table)");
    for (const char* key : {"n", "rank", "dim", "negative"}) {
        CAPTURE(key);
        Json bad = j;
        bad.erase(key);
        CHECK_THROWS_WITH_AS(fields_from_json(bad), doctest::Contains((std::string("an ok row has no '") + key + "'").c_str()),
                             InputError);
    }
    refused("place", 0, "field 'place' must be a whole number from 1");
    refused("uncertain_by", Json::array({"dim", "volume"}), "unknown cause 'volume' (dim, log_volume or negative)");
    // TSV and CSV cells pass through strtod, which takes "inf", "nan" and 1e400.
    refused("log_volume", flat_value("log_volume", "inf"), "field 'log_volume' is not a finite number");
    refused("log_volume", flat_value("log_volume", "nan"), "field 'log_volume' is not a finite number");
    refused("tol", flat_value("tol", "1e400"), "field 'tol' is not a finite number");
    refused("rank", flat_value("rank", "1e400"), "field 'rank' is not a finite number");
    refused("rank", 1e17, "field 'rank' is not a whole number below 2^53");
    refused("rank", flat_value("rank", "9007199254740993"), "field 'rank' is not a whole number below 2^53");
    // pandas writes booleans back as True/False.
    CHECK(flat_value("certified", "True") == Json(true));
    CHECK(flat_value("certified", "False") == Json(false));
    CHECK_THROWS_AS(flat_value("certified", "yes"), InputError);
    Json no_source = j;
    no_source.erase("source");
    CHECK_THROWS_WITH_AS(fields_from_json(no_source), doctest::Contains("a row has no 'source'"), InputError);
    // A malformed cell names its record.
    ReportSpec spec;
    spec.format = Format::tsv;
    std::string tsv = written({sample_rows()[0]}, spec);
    const auto at = tsv.find("\t530\t");
    REQUIRE(at != std::string::npos);
    tsv.replace(at, 5, "\tmany\t");
    CHECK_THROWS_WITH_AS(parse_rows(tsv, Format::tsv, "saved.tsv"),
                         doctest::Contains("saved.tsv: record 2: column 'n' holds 'many', not a number"), InputError);
}

TEST_CASE("rows saved before a field existed read back without it") {
    // The band arrived after the first release: a row without it may have any
    // dim (0..n), and so as many negatives as those dims allow.
    Json j = fields_to_json(sample_rows()[0], {});
    j.erase("dim_low");
    j.erase("dim_high");
    j.erase("negative_low");
    j.erase("negative_high");
    j.erase("noise_floor");
    j.erase("solver");
    const Row r = fields_from_json(j);
    CHECK(r.dim_low == 0);
    CHECK(r.dim_high == r.n);
    CHECK(r.negative_low == 0);  // any dim: from nothing kept to every flat value negative
    CHECK(r.negative_high == r.negative + r.dim);
    Json banded = fields_to_json(sample_rows()[0], {});  // the band, but not the negative band
    banded.erase("negative_low");
    banded.erase("negative_high");
    const Row b = fields_from_json(banded);
    CHECK(b.negative_low == b.negative);
    CHECK(b.negative_high == b.negative);
    CHECK(b.dim_lifted == 486);
    // Without dim_lifted, any flat value may be one another draw of the input keeps.
    Json unlifted = fields_to_json(sample_rows()[0], {});
    unlifted.erase("dim_lifted");
    CHECK(fields_from_json(unlifted).dim_lifted == 0);
    Json over = fields_to_json(sample_rows()[0], {});
    over["dim_lifted"] = 488;
    CHECK_THROWS_WITH_AS(fields_from_json(over), doctest::Contains("dim_lifted <= dim_low (488, 487)"), InputError);
    CHECK_FALSE(r.stats.has_value());
    CHECK(fields_to_json(r, {}).at("solver").is_null());
    // A number the row did not carry is written back as null, not as 0.
    CHECK(fields_to_json(r, {}).at("noise_floor").is_null());
    for (const char* key : {"tol", "spectral_norm", "threshold", "log10_volume", "log_volume_error", "log_volume_noise",
                            "residual_bound", "asymmetry", "seconds"}) {
        CAPTURE(key);
        Json k = fields_to_json(sample_rows()[0], {});
        REQUIRE_FALSE(k.at(key).is_null());
        k.erase(key);
        CHECK(fields_to_json(fields_from_json(k), {}).at(key).is_null());
    }
}

TEST_CASE("the human table shows the fields the shape carries, error rows aligned") {
    for (const auto& c : table_columns()) CHECK_MESSAGE(find_field(c.field) != nullptr, c.header);
    auto headers = [](const Shape& shape) {
        std::vector<std::string> h;
        for (const auto* c : table_columns(shape)) h.push_back(c->header);
        return h;
    };
    const auto plain = headers({false, false}), ranked = headers({true, true});
    CHECK(std::find(plain.begin(), plain.end(), "place") == plain.end());
    CHECK(std::find(plain.begin(), plain.end(), "logV_reg") == plain.end());
    CHECK(ranked.front() == "place");
    CHECK(std::find(ranked.begin(), ranked.end(), "place_reg") != ranked.end());

    // An error row's cells line up with the header: its status sits under "status".
    ReportSpec spec;
    spec.format = Format::table;
    spec.with_place = true;
    const std::string text = written(sample_rows(), spec);
    std::istringstream in(text);
    std::string header, line;
    std::getline(in, header);
    const std::size_t at = header.find("status");
    REQUIRE(at != std::string::npos);
    bool saw_error = false;
    while (std::getline(in, line))
        if (line.size() > at + 5 && line.compare(at, 5, "error") == 0) saw_error = true;
        else CHECK(line.compare(at, 2, "ok") == 0);
    CHECK(saw_error);
}

TEST_CASE("numbers print as the shortest text that reads back, whole numbers whole") {
    // TSV and CSV cells and messages: 100 and a count of 200 as such (they
    // printed as 1e+02 and 2e+02, which an integer parser refuses).
    for (const auto& [v, text] : std::vector<std::pair<double, std::string>>{
             {100, "100"}, {200, "200"}, {250000, "250000"}, {-3, "-3"}, {0, "0"}, {0.1, "0.1"}, {-1e-9, "-1e-09"},
             {1e15, "1e+15"}, {1.5e300, "1.5e+300"}, {0.018018779, "0.018018779"}}) {
        CAPTURE(v);
        CHECK(format_number(v) == text);
        CHECK(std::strtod(format_number(v).c_str(), nullptr) == v);
    }
}
