#pragma once
// Reporters: turn rows into a human table, TSV, CSV, JSON or JSON Lines.
// Machine formats carry no human text; JSON never holds NaN or Infinity.
#include <basinvol/names.hpp>
#include <basinvol/rank/ranking.hpp>
#include <basinvol/result.hpp>

#include <nlohmann/json.hpp>

#include <ostream>
#include <string>
#include <vector>

namespace basinvol {

enum class Format { table, tsv, csv, json, jsonl };

// The formats' names (table, tsv, csv, json, jsonl), and the one named;
// parse_format throws UsageError for another name.
const Names<Format>& format_names();
Format parse_format(const std::string& name);

struct ReportSpec {
    Format format = Format::table;
    bool with_place = false;        // `rank` output
    bool with_regularized = false;  // --regularized was given
    bool with_shard = false;        // the rows' `shard` (a --shard run, or saved rows that carry it)
    bool keeps_negatives = true;    // `spectrum`: --negatives drop marks λ < −tol dropped
    nlohmann::ordered_json context;         // the JSON context block (tool, versions, options, date)
};

// The JSON object of one row (every field; null where a value is undefined).
nlohmann::ordered_json row_to_json(const Row& row, const ReportSpec& spec);

// Writes rows as they come (TSV, CSV and JSON Lines flush per row; the table
// is aligned and written by finish()).
class RowWriter {
public:
    RowWriter(std::ostream& out, ReportSpec spec);
    void write(const Row& row);
    void finish();

private:
    void begin();
    std::ostream& out_;
    ReportSpec spec_;
    bool begun_ = false;
    bool finished_ = false;
    std::size_t count_ = 0;
    std::vector<Row> table_;
};

// `spectrum`: every eigenvalue of each row, by magnitude, marked kept or
// dropped (rows carry their eigenvalues; error rows are kept in JSON).
// Rows are written as they come, each eigenvalue as it is formatted: a
// listing of millions of values is never held as one JSON value.
class SpectrumWriter {
public:
    SpectrumWriter(std::ostream& out, ReportSpec spec);
    void write(const Row& row);
    void finish();

private:
    void begin();
    void write_json(const Row& row);
    std::ostream& out_;
    ReportSpec spec_;
    bool begun_ = false;
    bool finished_ = false;
    std::size_t count_ = 0;
};
void write_spectra(std::ostream& out, const std::vector<Row>& rows, const ReportSpec& spec);

// `compare`: "above", "below" or "tie", whether noise may decide it, the
// reason, and (JSON) both rows; TSV/CSV one line with each row's source,
// dim and log-volume; the table two lines for people.
void write_comparison(std::ostream& out, const Row& a, const Row& b, const Comparison& c, const ReportSpec& spec);

// The schema version of the JSON output (docs/output.md).
constexpr int schema_version = 1;

}  // namespace basinvol
