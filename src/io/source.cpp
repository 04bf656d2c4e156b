#include <basinvol/error.hpp>
#include <basinvol/io/source.hpp>

#include <algorithm>
#include <cstring>

#include <sys/stat.h>

namespace basinvol {
namespace {
bool exists(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0;
}
// What a FILE:PATH's left side may be: anything but a directory (`d:ir/x.h5`
// with a directory `d` is not the file `d`).
bool may_be_file(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && !S_ISDIR(st.st_mode);
}
}  // namespace

Source image_source(std::string bytes, const std::string& label, const std::string& path) {
    Source s;
    s.file = label;
    s.path = path;
    s.text = path.empty() ? label : label + ":" + path;
    s.image = std::make_shared<const std::string>(std::move(bytes));
    return s;
}

std::string normalize_object_path(const std::string& path) {
    // Components between slashes: empty ones (repeated, trailing slashes)
    // and "." (HDF5's own name for the group it is in) are dropped; ".." is
    // an ordinary link name in HDF5, kept.
    std::string out;
    std::size_t at = 0;
    while (at <= path.size()) {
        const std::size_t end = std::min(path.find('/', at), path.size());
        const std::string part = path.substr(at, end - at);
        if (!part.empty() && part != ".") out += "/" + part;
        at = end + 1;
    }
    return out.empty() ? "/" : out;
}

Source parse_source(const std::string& text) {
    if (text.empty()) throw UsageError("a SOURCE must not be empty (expected FILE or FILE:PATH)");
    Source s;
    s.text = text;
    if (exists(text)) {
        s.file = text;
        return s;
    }
    // The last ':' whose left side exists as a file is the split: the
    // longest file name the text starts with (`a:b.h5:/x` is /x in a:b.h5,
    // as its rows are named, even beside a file `a`).
    for (std::size_t pos = text.rfind(':'); pos != std::string::npos; pos = pos ? text.rfind(':', pos - 1) : std::string::npos) {
        std::string left = text.substr(0, pos);
        if (!left.empty() && may_be_file(left)) {
            s.file = left;
            s.path = text.substr(pos + 1);
            return s;
        }
    }
    // Nothing exists: split at the first ':' so the error names the file
    // part, when the text reads as FILE:PATH (an absolute PATH, or a FILE
    // named as HDF5 files are); else the whole text is the missing file
    // (`d:ir/run.h5` is not the file `d`).
    auto pos = text.find(':');
    const auto ends_with = [](const std::string& name, const char* tail) {
        const std::size_t n = std::strlen(tail);
        return name.size() >= n && name.compare(name.size() - n, n, tail) == 0;
    };
    const std::string left = pos == std::string::npos ? text : text.substr(0, pos);
    const bool reads_as_split = pos != std::string::npos && pos > 0 &&
                                (text[pos + 1] == '/' || ends_with(left, ".h5") || ends_with(left, ".hdf5") ||
                                 ends_with(left, ".hdf") || ends_with(left, ".he5"));
    if (!reads_as_split) {
        s.file = text;
    } else {
        s.file = text.substr(0, pos);
        s.path = text.substr(pos + 1);
    }
    return s;
}

}  // namespace basinvol
