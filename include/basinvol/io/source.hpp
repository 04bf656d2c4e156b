#pragma once
// A SOURCE on the command line: FILE or FILE:PATH.
#include <string>

namespace basinvol {

struct Source {
    std::string file;  // path on disk
    std::string path;  // HDF5 object path; empty means the whole file ("/")
    std::string text;  // what the user wrote
};

// Splits FILE:PATH. File names may contain ':'; the split is at the first ':'
// whose left side names an existing file, and a string that names an existing
// file as a whole is FILE. Throws UsageError on an empty string.
Source parse_source(const std::string& text);

}  // namespace basinvol
