#pragma once
// The library names options by their library names ("max_memory", as in
// AnalyzeOptions and Python's keywords), never by a flag; the command-line
// tools say them as their flags (--max-memory). Used by basinvol,
// basinvol-mpi and basinvol-toy.
#include <basinvol/error.hpp>
#include <basinvol/report/text.hpp>  // one_line: a message stays one line
#include <basinvol/result.hpp>

#include <string>

namespace cli {

using basinvol::one_line;

// A library text in the command line's words: each "option NAME" where NAME
// is an option with a flag becomes --NAME (underscores as dashes); any other
// text, a path saying "option x" included, is left as it is.
std::string cli_words(const std::string& text);

// A UsageError as the command line says it: the flag, then the rule broken.
std::string usage_message(const basinvol::UsageError& e);

// A row in the command line's words (its error and solver note).
basinvol::Row cli_row(const basinvol::Row& r);

}  // namespace cli
