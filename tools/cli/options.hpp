#pragma once
// The flags of each subcommand, bound to the option structs the commands
// read (CommonOptions, BatchCli, ValidateCli).
#include "batch.hpp"
#include "values.hpp"

#include <CLI/CLI.hpp>

namespace cli {

// Adds --trust-stored-type (volume, rank, compare, spectrum, validate).
void add_trust_stored_type(CLI::App* app, CommonOptions& o);

// Adds --format, --cut, --rtol, --atol and --method.
void add_core_options(CLI::App* app, CommonOptions& o);

// Adds the common options to a subcommand (`ranking`: --tie-tol; `regularized`: --regularized).
void add_common(CLI::App* app, CommonOptions& o, bool ranking, bool regularized);

// Adds -j, --list-timeout, --no-progress and (`lists`: commands whose
// SOURCEs may be many) --files-from and --shard.
void add_input_options(CLI::App* app, BatchCli& b, bool lists = true);

// Adds the input options and those of `volume` and `rank`: -o, --resume;
// `streaming`: --order, --per-block (volume); `ranking`: --from-results (rank).
void add_batch(CLI::App* app, BatchCli& b, bool streaming, bool ranking);

// A SOURCE a shell glob gave that the parser would read as an option: an
// argument that starts with '-', is no option's value and names an existing
// file ("-ojunk.h5" read as `-o junk.h5`, the checkpoint never analysed and
// the rows written to junk.h5; "-hello.h5" read as --help, exit 0). The
// usage error for the first one in `app`'s command line, "" when there is none.
std::string option_like_source(const CLI::App& app, int argc, const char* const* argv);

// `-o FILE` named for a results format (.jsonl, .json, .tsv, .csv) without
// `-f` in `app`'s command line: that format, not the table, which
// `rank --from-results` cannot read back. `format` is left as it is
// otherwise.
void format_from_output(const CLI::App& app, const std::string& output, bv::Format& format);

// Adds `validate`'s options (a subset of the common ones, the input options, and its own).
void add_validate_options(CLI::App* app, CommonOptions& o, BatchCli& b, ValidateCli& v);

}  // namespace cli
