#pragma once
// The one table of a row's fields. The JSON and JSON Lines objects, the TSV
// and CSV columns and the reader of saved rows (--from-results, --resume,
// basinvol.read_results) are all made from it, so a field is named, typed,
// written and read in one place: row_fields() in src/report/schema.cpp.
#include <basinvol/report/text.hpp>
#include <basinvol/result.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace basinvol {

using Json = nlohmann::ordered_json;

// The JSON type of a field's value (null aside).
enum class FieldKind {
    text,    // string
    count,   // non-negative integer
    number,  // finite float (null when not finite)
    flag,    // boolean
    list,    // array of strings; one TSV/CSV cell joined by ';'
    object,  // JSON only (solver, blocks)
};

// Which outputs carry a field.
enum class FieldShown {
    always,
    ranked,                // `rank` output (with place)
    regularized,           // --regularized given
    ranked_regularized,    // both
    when_present,          // only when the row has it (blocks of a structured row)
    sharded,               // a --shard run's rows, and a ranking of saved rows that carry it
};

struct Field {
    const char* name;
    FieldKind kind;
    FieldShown shown;
    bool ok_only;  // null on error rows (and not read from them)
    bool flat;     // a TSV/CSV column
    // The value (null where undefined). Never called with ok_only on an error row.
    Json (*get)(const Row&);
    // Stores a non-null value of the field's kind (checked before the call);
    // throws InputError for a value out of the field's range.
    void (*set)(Row&, const Json&);
};

// Every field, in the order of the TSV/CSV columns and of the JSON object.
const std::vector<Field>& row_fields();

// The field named `name`, or nullptr.
const Field* find_field(const std::string& name);

// What a row's output carries.
struct Shape {
    bool with_place = false;
    bool with_regularized = false;
    bool with_shard = false;
};
bool shows(const Field& f, const Shape& shape);

// The JSON object of one row: every field the shape shows, null where undefined.
Json fields_to_json(const Row& r, const Shape& shape);
// The TSV/CSV header of the shape: its flat fields' names, in order.
std::vector<std::string> flat_columns(const Shape& shape);
// One flat cell's text for a field's JSON value ("" for null; lists joined by ';').
std::string flat_cell(const Json& value);
// A flat cell read back as the JSON value its column's field had; "" is null.
// Unknown columns are kept as text. Throws InputError for a malformed number.
Json flat_value(const std::string& column, const std::string& cell);
// A column of the human table: a view of one field of the table above (its
// `shown` rule says whether the column is there), with a header and the text
// of its cells. Error rows show "-" in columns that are not `any_row`.
struct TableColumn {
    const char* field;
    const char* header;
    bool any_row;
    std::string (*cell)(const Row&);
};

// The human table's columns, in display order.
const std::vector<TableColumn>& table_columns();

// The columns a shape shows.
std::vector<const TableColumn*> table_columns(const Shape& shape);

// A row from its JSON object: each known field type-checked and stored; a
// field the object lacks (or a format did not carry) stays unknown, read
// back as null. Throws InputError naming the field.
Row fields_from_json(const Json& j);

}  // namespace basinvol
