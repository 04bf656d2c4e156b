#pragma once
// A SOURCE on the command line: FILE or FILE:PATH.
#include <memory>
#include <string>

namespace basinvol {

struct Source {
    std::string file;  // path on disk
    std::string path;  // HDF5 object path; empty means the whole file ("/")
    std::string text;  // what the user wrote
    // When set, the file's bytes in memory, read through HDF5's core driver
    // with no disk access; `file` then only names it in messages.
    std::shared_ptr<const std::string> image;
};

// Splits FILE:PATH. File names may contain ':'; the split is at the first ':'
// whose left side names an existing file, and a string that names an existing
// file as a whole is FILE. Throws UsageError on an empty string.
Source parse_source(const std::string& text);

// A SOURCE over an HDF5 file image held in memory (`label` names it in
// messages; `path` as in FILE:PATH). The Hessians it lists keep the image
// beside them (ListedHessian::image); analyze_listed reads from it.
Source image_source(std::string bytes, const std::string& label, const std::string& path = "");

// One spelling per HDF5 object: a leading '/', no repeated or trailing one
// (HDF5 reads `//a` and `/a/` as `/a`; so do rows, keys and shards).
std::string normalize_object_path(const std::string& path);

}  // namespace basinvol
