// HDF5 reading. Every HDF5 call is checked; handles close themselves; HDF5's
// automatic error printing is off while we work, and its innermost message is
// folded into our InputError.
#include "chunk_reader.hpp"
#include "hdf5_detail.hpp"
#include "../address_room.hpp"
#include "../huge_pages.hpp"
#include "mapped_values.hpp"

#include <basinvol/error.hpp>
#include <basinvol/io/reader.hpp>
#include <basinvol/names.hpp>

#include <hdf5.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <tuple>
#include <map>
#include <iomanip>
#include <malloc.h>
#include <limits>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <cstdlib>
#include <sys/stat.h>
#include <type_traits>
#include <vector>
#include <fcntl.h>
#include <unistd.h>

namespace basinvol {
namespace {

using detail::ErrorSilencer;
using detail::fail_at;
using detail::Handle;
using detail::hdf5_message;
using detail::hdf5_mutex;
using detail::TargetFile;

// HDF5 copies a file image into every property list and every file opened
// from it: a structure of k parts held in memory was copied k times (13 s
// for 100 parts beside a 40 MB factor, against 0.2 s from a file). These
// callbacks lend it the image instead, read-only (as H5LTopen_file_image's
// DONT_COPY | DONT_RELEASE does): every "allocation" of the image's size is
// the image, copies onto itself are skipped, and nothing is freed. udata is
// the image, which the caller keeps alive while the file is open.
void* lend_image(std::size_t size, H5FD_file_image_op_t, void* udata) {
    auto* image = static_cast<const std::string*>(udata);
    return size == image->size() ? const_cast<char*>(image->data()) : nullptr;
}
void* copy_image(void* dest, const void* src, std::size_t, H5FD_file_image_op_t, void*) {
    return dest == src ? dest : nullptr;  // only the image onto itself; anything else is a write, refused
}
void* no_realloc(void*, std::size_t, H5FD_file_image_op_t, void*) { return nullptr; }
herr_t no_free(void*, H5FD_file_image_op_t, void*) { return 0; }
void* same_udata(void* udata) { return udata; }
herr_t no_udata_free(void*) { return 0; }

// Opens an in-memory file image through HDF5's core driver (no disk access).
Handle open_image(const std::string& label, const std::string& image) {
    // The signature "\211HDF\r\n\032\n" sits at 0, 512, 1024, 2048, ... (after a user block).
    static const char sig[] = "\211HDF\r\n\032\n";
    bool found = false;
    for (std::size_t at = 0; !found && at + 8 <= image.size(); at = at ? 2 * at : 512)
        found = image.compare(at, 8, sig, 8) == 0;
    if (!found) fail_at(label, "not an HDF5 file (no HDF5 signature found)", false);
    Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    H5FD_file_image_callbacks_t lend = {lend_image, copy_image,    no_realloc,
                                        no_free,    same_udata,    no_udata_free,
                                        const_cast<std::string*>(&image)};
    if (!fapl.valid() || H5Pset_fapl_core(fapl.get(), 1 << 16, 0) < 0 ||
        H5Pset_file_image_callbacks(fapl.get(), &lend) < 0 ||
        H5Pset_file_image(fapl.get(), const_cast<char*>(image.data()), image.size()) < 0)
        fail_at(label, "cannot set up an in-memory HDF5 file");
    // HDF5 refuses an image whose name exists on disk ("file already exists")
    // and takes two open files of one name for one file: the name it gets is
    // one no file can have (under /dev/null), unique to the image's bytes.
    char name[64];
    std::snprintf(name, sizeof name, "/dev/null/basinvol-image-%p", static_cast<const void*>(image.data()));
    hid_t f = H5Fopen(name, H5F_ACC_RDONLY, fapl.get());
    if (f < 0) fail_at(label, "cannot open HDF5 file (truncated or corrupt?)");
    return Handle(f, H5Fclose);
}

Handle open_file(const std::string& file, const std::shared_ptr<const std::string>& image = nullptr) {
    detail::guard_external_links();
    if (image) return open_image(file, *image);
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) {
        const int why = errno;
        // `ls` shows a dangling link: say what it leads to.
        struct stat link {};
        std::string target(4096, '\0');
        const ssize_t len = why == ENOENT && ::lstat(file.c_str(), &link) == 0 && S_ISLNK(link.st_mode)
                                ? ::readlink(file.c_str(), target.data(), target.size())
                                : -1;
        if (len >= 0)
            fail_at(file, "cannot open file: it is a symbolic link to " + target.substr(0, std::size_t(len)) +
                              ", which leads nowhere", false);
        fail_at(file, std::string("cannot open file: ") + std::strerror(why), false);
    }
    if (S_ISDIR(st.st_mode)) fail_at(file, "cannot open file: it is a directory", false);
    if (::access(file.c_str(), R_OK) != 0)
        fail_at(file, std::string("cannot open file: ") + std::strerror(errno), false);
    // A regular file is opened once before HDF5 opens it, whose message
    // would bury the reason (a FIFO or device is left to HDF5: opening one
    // may wait for a writer or take its data).
    if (S_ISREG(st.st_mode)) {
        const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            const int why = errno;
            fail_at(file,
                    std::string("cannot open file: ") + std::strerror(why) +
                        (why == EMFILE || why == ENFILE ? " (the limit of open files, ulimit -n)" : ""),
                    false);
        }
        ::close(fd);
    }
    htri_t is = H5Fis_hdf5(file.c_str());
    if (is == 0) {
        // A matrix saved by numpy or torch: say how to convert it.
        static const char* known[] = {".npy", ".npz", ".pt", ".pth", ".txt", ".csv"};
        for (const char* ext : known) {
            const std::string e = ext;
            if (file.size() > e.size() && file.compare(file.size() - e.size(), e.size(), e) == 0)
                fail_at(file,
                     "not an HDF5 file (a " + e + " file?); convert it with: python3 -m basinvol.export convert " +
                         file + " OUT.h5",
                     false);
        }
        fail_at(file, "not an HDF5 file (no HDF5 signature found)", false);
    }
    // A pipe (`<(cat run.h5)`, a FIFO a writer filled) cannot be read:
    // HDF5 seeks. Its message would be a failed seek at offset 2^64 − 1.
    if (is < 0 && S_ISFIFO(st.st_mode))
        fail_at(file, "cannot read file as HDF5: it is a pipe, and HDF5 reads a file it can seek in; save the "
                      "stream to a file first", false);
    if (is < 0) fail_at(file, "cannot read file as HDF5");
    hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        // A file being written is not a corrupt one: say which it is.
        const std::string hdf5 = hdf5_message();
        const auto says = [&](const char* words) { return hdf5.find(words) != std::string::npos; };
        std::string why = "cannot open HDF5 file (truncated or corrupt?)";
        if (says("unable to lock file") && says("errno = 11,"))  // EAGAIN: another process holds the lock
            why = "cannot open HDF5 file: a process that writes it holds its lock; analyze it once the writer "
                  "has closed it";
        else if (says("unable to lock file"))  // a file system without locks (some NFS, Lustre)
            why = "cannot open HDF5 file: its file system refuses HDF5's file lock; HDF5_USE_FILE_LOCKING=FALSE "
                  "reads it without";
        else if (says("already open for write"))
            why = "cannot open HDF5 file: it is open for writing (SWMR), or its writer died without closing it; "
                  "once no process writes it, `h5clear -s " + file + "` clears the mark";
        else if (says("st_ino or st_dev"))
            why = "cannot open HDF5 file: it was replaced while it was opened";
        fail_at(file, why + (hdf5.empty() ? std::string() : " (HDF5: " + hdf5 + ")"), false);
    }
    return Handle(f, H5Fclose);
}

std::string type_name(hid_t type) {
    H5T_class_t cls = H5Tget_class(type);
    std::size_t size = H5Tget_size(type);
    switch (cls) {
        case H5T_FLOAT: {
            // IEEE's layout for its size is floatN; another says what it is
            // (bfloat16; a float32 kept in 8 bytes is not a float64).
            const std::string name = "float" + std::to_string(8 * size);
            std::size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0;
            if (H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) < 0) return name;
            const bool ieee = (size == 2 && esize == 5 && msize == 10) || (size == 4 && esize == 8 && msize == 23) ||
                              (size == 8 && esize == 11 && msize == 52);
            if (ieee) return name;
            if (size == 2 && esize == 8 && msize == 7) return "bfloat16";
            return name + " (" + std::to_string(esize) + " exponent bits, " + std::to_string(msize) +
                   " mantissa bits)";
        }
        case H5T_INTEGER:
            return std::string(H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(8 * size);
        case H5T_STRING: return "string";
        case H5T_COMPOUND: return "compound";
        case H5T_ENUM: return "enum";
        case H5T_ARRAY: return "array";
        case H5T_VLEN: return "variable-length";
        case H5T_OPAQUE: return "opaque";
        case H5T_REFERENCE: return "reference";
        case H5T_BITFIELD: return "bitfield";
        case H5T_TIME: return "time";
        default: return "unknown";
    }
}

// Attributes whose value changes a row's numbers: never silently dropped.
bool changes_answer(const std::string& key) { return key == "hessian_error"; }

}  // namespace

std::string detail::lower_case(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

namespace {

// Attributes that change an answer only where they apply (expected_* in
// `validate`, a structure's scale, loss_threshold unless -T replaces it):
// when unreadable, kept as unreadable_prefix + why for the reader that uses
// them to refuse (not_a_number, hessian.hpp).
bool kept_when_unreadable(const std::string& key) {
    return key.rfind("expected_", 0) == 0 || key == "scale" || key == "loss_threshold" || key == "toy_loss";
}

// What a kept attribute must be: a toy's loss is text, the others numbers.
std::string one_what(const std::string& key) { return key == "toy_loss" ? "one string (the loss)" : "one number"; }

// Why a number cannot be the attribute `key` ("" when it can): a stated
// error must be finite and >= 0. (loss_threshold is checked where it is used:
// -T overrides it.)
std::string out_of_range(const std::string& key, double v) {
    if (key != "hessian_error" || (v >= 0 && std::isfinite(v))) return "";
    std::ostringstream s;
    s << "attribute hessian_error must be a finite number >= 0, got " << v;
    return s.str();
}

void store_number(Attributes& attrs, const std::string& key, double v) {
    if (key == "step") attrs.step = v;
    else if (key == "loss") attrs.loss = v;
    else if (key == "loss_threshold") attrs.loss_threshold = v;
    else if (key == "hessian_error") attrs.hessian_error = v;
    else if (key == "name") {
        char buf[32];
        const CLocale c;
        std::snprintf(buf, sizeof buf, "%.17g", v);
        attrs.name = buf;
    } else attrs.numbers[key] = v;
}

// This thread's AttributeScope (hdf5_detail.hpp): where unread attributes
// are noted, or which are skipped; by (name, object), the entries noted or
// listed (a structure of 10^5 parts may list one on each).
struct AttributeState {
    std::vector<UnreadAttribute>* into = nullptr;
    const std::vector<UnreadAttribute>* listed = nullptr;
    std::map<std::pair<std::string, std::string>, std::size_t> index;  // into the one of them set
    bool active = false;
};
thread_local AttributeState attribute_state;

// An object as both processes name it: its file's name and its address
// there (a path would not tell an external link's target file from this
// one, and HDF5 finds an externally linked object's path by walking its file).
std::string object_key(hid_t obj) {
    H5O_info_t info{};
    const ssize_t length = H5Fget_name(obj, nullptr, 0);
    if (length < 0 || H5Oget_info2(obj, &info, H5O_INFO_BASIC) < 0) return "";
    std::string key(static_cast<std::size_t>(length) + 1, '\0');
    if (H5Fget_name(obj, key.data(), key.size()) != length) return "";
    key.resize(static_cast<std::size_t>(length));
    return key + "@" + std::to_string(static_cast<unsigned long long>(info.addr));
}

// Whether an entry for attribute `name` of any object is there.
bool has_name(const std::string& name) {
    const auto& index = attribute_state.index;
    const auto it = index.lower_bound({name, std::string()});
    return it != index.end() && it->first.first == name;
}

}  // namespace

const UnreadAttribute* detail::listed_unread(hid_t obj, const std::string& name) {
    if (attribute_state.into || !has_name(name)) return nullptr;
    const auto it = attribute_state.index.find({name, object_key(obj)});
    return it == attribute_state.index.end() ? nullptr : &(*attribute_state.listed)[it->second];
}

void detail::note_unread(hid_t obj, const std::string& name, const std::string& why) {
    auto* into = attribute_state.into;
    if (!into) return;
    std::string key = object_key(obj);
    // Once: an object is walked more than once (linked twice, or read for
    // its structure's kind and then its attributes).
    if (!attribute_state.index.emplace(std::make_pair(name, key), into->size()).second) return;
    into->push_back({std::move(key), name, why});
}

bool detail::recording_attributes() { return attribute_state.into != nullptr; }

bool detail::stated_past_text(const char* s, std::size_t text) {
    return s && ::malloc_usable_size(const_cast<char*>(s)) > 2 * (text + 1) + (std::size_t(1) << 16);
}

namespace {

// Why a numeric type's bit layout cannot be a real one, or "". HDF5 1.10
// converts values by these fields and dies of SIGBUS on corrupt ones
// (H5T__bit_copy, found by fuzzing), or reads past the value when a field
// runs past it; fields that overlap (a flipped byte of the type message)
// convert to a wrong number. So every numeric dataset and attribute is
// checked against the rules H5Tset_fields itself enforces before a read.
std::string layout_problem(hid_t type) {
    const H5T_class_t cls = H5Tget_class(type);
    if (cls != H5T_INTEGER && cls != H5T_FLOAT && cls != H5T_ENUM) return "";  // not a number: the caller says so
    const std::size_t size = H5Tget_size(type);
    const int precision = static_cast<int>(H5Tget_precision(type));
    const int offset = H5Tget_offset(type);
    const long bits = 8 * static_cast<long>(size);
    std::ostringstream s;
    if (size == 0 || size > 16 || precision <= 0 || offset < 0 || offset + precision > bits) {
        s << "precision " << precision << " at bit offset " << offset << " in " << size << " bytes";
        return s.str();
    }
    if (cls != H5T_FLOAT) return "";
    std::size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0;
    if (H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) < 0) return "its float fields cannot be read";
    const auto prec = static_cast<std::size_t>(precision);
    const auto inside = [](std::size_t at, std::size_t from, std::size_t count) { return at >= from && at - from < count; };
    // An exponent of over 62 bits is no real layout (binary256 has 19), and
    // HDF5 1.10 converts one of over 64 through a 64-bit integer on its stack.
    if (esize == 0 || esize > 62 || msize == 0 || spos >= prec || epos + esize > prec || mpos + msize > prec ||
        inside(spos, epos, esize) || inside(spos, mpos, msize) || inside(epos, mpos, msize) ||
        inside(mpos, epos, esize)) {
        s << "float fields sign " << spos << ", exponent " << epos << "+" << esize << ", mantissa " << mpos << "+"
          << msize << " in " << precision << " bits (" << size << " bytes)";
        return s.str();
    }
    return "";
}

// A string attribute's value (fixed or variable length, its character set
// kept), or nothing when HDF5 cannot read it. A variable-length string is
// allocated at the length its heap ID states: one far past its text is a
// corrupt file (HDF5 has then allocated and cleared that length twice) and
// is not read.
std::optional<std::string> read_string_attribute(hid_t a, hid_t type) {
    const bool variable = H5Tis_variable_str(type) > 0;
    const std::size_t size = variable ? 0 : H5Tget_size(type);
    Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
    const H5T_cset_t cset = H5Tget_cset(type);
    if (!mem.valid() || cset < 0 || H5Tset_size(mem.get(), variable ? H5T_VARIABLE : size + 1) < 0 ||
        H5Tset_cset(mem.get(), cset) < 0)
        return std::nullopt;
    if (variable) {
        char* s = nullptr;
        if (H5Aread(a, mem.get(), &s) < 0) return std::nullopt;
        std::string value = s ? s : "";
        const bool corrupt = detail::stated_past_text(s, value.size());
        H5free_memory(s);
        if (corrupt) return std::nullopt;
        return value;
    }
    std::string buf(size + 1, '\0');
    if (H5Aread(a, mem.get(), buf.data()) < 0) return std::nullopt;
    std::string value(buf.c_str());
    // HDF5's conversion ends the text at its first NUL. In a NULLPAD or
    // SPACEPAD string (h5py's numpy bytes) only the trailing padding is not
    // the value: "2\0003" would read as 2. The stored bytes then show the
    // NUL as \0, text no number reads as (a NULLTERM string ends at its NUL).
    if (value.size() < size && H5Tget_strpad(type) != H5T_STR_NULLTERM) {
        std::string raw(size, '\0');
        if (H5Aread(a, type, raw.data()) < 0) return std::nullopt;
        const char pad = H5Tget_strpad(type) == H5T_STR_SPACEPAD ? ' ' : '\0';
        while (!raw.empty() && (raw.back() == pad || raw.back() == '\0')) raw.pop_back();
        if (raw.size() > value.size()) {
            std::string shown;
            for (char c : raw) shown += c == '\0' ? std::string("\\0") : std::string(1, c);
            return shown;
        }
    }
    return value;
}

// Why a string that reads whole as a number is still not one: it lies
// beyond or under double's range, or names an infinity or NaN ("" for
// other text).
std::string beyond_double(const std::string& text) {
    if (text.find_first_of("xX") != std::string::npos) return "";
    const CLocale c;
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(text.c_str(), &end);
    const bool out_of_range = errno == ERANGE;
    if (end == text.c_str()) return "";
    while (*end == ' ' || (*end >= '\t' && *end <= '\r')) ++end;
    if (*end != '\0') return "";
    if (!out_of_range) return " (not a finite number)";
    return std::isinf(v) ? " (beyond the range of a double)" : " (under the range of a double)";
}

// The attributes read so far, and the first that changes an answer and
// cannot be read as one number.
struct AttributeReading {
    Attributes* attrs;
    std::string problem;
};

// One attribute into `into` (an H5Aiterate2 callback's body).
void read_one_attribute(hid_t loc, const char* name, AttributeReading& into) {
    const std::string key = name;
    // Hessian_Error or loss_thresold would otherwise be dropped unread, and the answer with it.
    if (const std::string why = detail::misspelled_answer_attribute(key); !why.empty()) {
        if (into.problem.empty()) into.problem = why;
        return;
    }
    const bool answer = changes_answer(key);
    const bool kept = kept_when_unreadable(key);
    auto refuse = [&](const std::string& why) {
        if (answer && into.problem.empty())
            into.problem = "attribute " + key + " must be one number, got " + why;
        else if (!answer && kept)
            into.attrs->strings[key] = std::string(unreadable_prefix) + "must be " + one_what(key) + ", got " + why;
    };
    // One the listing could not read is refused as it refused it, unread.
    if (const UnreadAttribute* listed = detail::listed_unread(loc, key)) {
        if (!listed->why.empty()) refuse(listed->why);
        return;
    }
    auto unread = [&](const std::string& why) {
        detail::note_unread(loc, key, why);
        if (!why.empty()) refuse(why);
    };
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return unread("");
    Handle attr(a, H5Aclose);
    Handle space(H5Aget_space(a), H5Sclose);
    Handle type(H5Aget_type(a), H5Tclose);
    if (!space.valid() || !type.valid()) return unread("");
    auto keep = [&](double v) {
        if (key == "toy_loss") return refuse("the number " + value_text(v));  // a loss is text, never a number
        const std::string why = out_of_range(key, v);
        if (why.empty()) store_number(*into.attrs, key, v);
        else if (into.problem.empty()) into.problem = why;
    };
    const hssize_t count = H5Sget_simple_extent_npoints(space.get());
    const H5T_class_t cls = H5Tget_class(type.get());
    if (count != 1) {
        refuse(count < 0 ? std::string("an unreadable dataspace") : "an array of " + std::to_string(count) + " values");
    } else if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
        double v = 0;
        if (const std::string why = layout_problem(type.get()); !why.empty())
            unread("a value of a corrupt type (" + why + ")");
        else if (H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0) unread("a value that cannot be read");
        // An integer at or past 2^53 converts rounded (2^53 + 1 reads as
        // 2^53): refused (a step left out), never a neighbouring number.
        else if (cls == H5T_INTEGER && std::abs(v) >= 0x1p53)
            unread("an integer at or past 2^53, which float64 does not hold exactly");
        else keep(v);
    } else if (cls == H5T_STRING) {
        const auto value = read_string_attribute(a, type.get());
        if (!value) return unread("a string that cannot be read");
        // A number written as text ("0.5") is that number; other text is
        // refused where it would change an answer.
        if (key == "name") into.attrs->name = *value;
        else if (key == "toy_loss") into.attrs->strings[key] = *value;
        else if (auto v = parse_finite(*value); v && (answer || kept)) keep(*v);
        else if (answer || kept) refuse("the string '" + value->substr(0, 40) + "'" + beyond_double(*value));
        else into.attrs->strings[key] = *value;
    } else {
        refuse("a value of type " + type_name(type.get()));
    }
}

// Reads scalar (or one-element) attributes into `attrs`; returns why they
// cannot be read ("" when they can): a corrupt attribute list, or an
// attribute that changes an answer (hessian_error) holding
// anything but one number.
std::string read_attributes(hid_t obj, Attributes& attrs) {
    // HDF5 1.10 iterates a compact attribute list through a table it builds
    // first; when a message fails to decode, it then closes table slots it
    // never filled and crashes (found by fuzzing). Looking up a name no
    // attribute has decodes every compact message without that table, so a
    // corrupt one is caught here, as an error.
    if (H5Aexists_by_name(obj, ".", "\x7f basinvol: no attribute has this name", H5P_DEFAULT) < 0) {
        const std::string h = hdf5_message();
        return "an attribute cannot be decoded (corrupt file" + (h.empty() ? std::string() : ": HDF5: " + h) + ")";
    }
    AttributeReading reading{&attrs, {}};
    auto op = [](hid_t loc, const char* name, const H5A_info_t*, void* data) -> herr_t {
        read_one_attribute(loc, name, *static_cast<AttributeReading*>(data));
        return 0;
    };
    // Native order walks a dense (B-tree) attribute store directly, without
    // building such a table.
    hsize_t idx = 0;
    H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, op, &reading);
    H5Eclear2(H5E_DEFAULT);
    return reading.problem;
}

constexpr const char* plugin_hint =
    " (its HDF5 plugin decodes it, found through HDF5_PLUGIN_PATH; or rewrite the dataset with gzip)";

// A filter HDF5 has not loaded names itself only when the file says so:
// the common plugins' registered IDs.
const char* plugin_name(H5Z_filter_t id) {
    switch (id) {
        case 307: return "bzip2";
        case 32000: return "lzf";
        case 32001: return "blosc";
        case 32004: return "lz4";
        case 32008: return "bitshuffle";
        case 32013: return "zfp";
        case 32015: return "zstd";
        case 32017: return "sz";
        case 32026: return "blosc2";
        default: return "";
    }
}

// The first filter of `d`'s pipeline this HDF5 library cannot decode, as
// "ID (name)" and how to read it, or "" when every filter is available.
std::string missing_filter(hid_t d, bool optional_too = false) {
    Handle dcpl(H5Dget_create_plist(d), H5Pclose);
    if (!dcpl.valid()) return "";
    int count = H5Pget_nfilters(dcpl.get());
    for (int i = 0; i < count; ++i) {
        unsigned flags = 0, config = 0;
        std::size_t nvalues = 0;
        char name[64] = {};
        H5Z_filter_t id = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &nvalues, nullptr,
                                         sizeof name, name, &config);
        // An optional filter HDF5 skipped where it failed: a chunk that needs
        // it fails at the read, with HDF5's message.
        if (id >= 0 && (optional_too || !(flags & H5Z_FLAG_OPTIONAL)) && H5Zfilter_avail(id) <= 0) {
            // A registered ID's name first: the name a file stores is the writer's word.
            const std::string known = plugin_name(id)[0] ? std::string(plugin_name(id)) : std::string(name);
            return std::to_string(id) + (known.empty() ? std::string() : " (" + known + ")");
        }
    }
    H5Eclear2(H5E_DEFAULT);
    return "";
}

// The step HDF5's scale-offset filter rounded d's stored values to: with
// a decimal scale factor D (floats), each value is kept to 10^-D. Sets
// `problem` for the integer variant told to keep fewer bits than the values
// need (it wraps them).
double lossy_step(hid_t d, std::string& problem) {
    Handle dcpl(H5Dget_create_plist(d), H5Pclose);
    Handle type(H5Dget_type(d), H5Tclose);
    if (!dcpl.valid() || !type.valid()) {
        H5Eclear2(H5E_DEFAULT);
        return 0;
    }
    const bool is_float = H5Tget_class(type.get()) == H5T_FLOAT;
    const std::size_t bits = 8 * H5Tget_size(type.get());
    const int count = H5Pget_nfilters(dcpl.get());
    for (int i = 0; i < count; ++i) {
        unsigned flags = 0, values[4] = {0, 0, 0, 0}, config = 0;
        std::size_t nvalues = 4;
        const H5Z_filter_t id =
            H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &nvalues, values, 0, nullptr, &config);
        if (id != H5Z_FILTER_SCALEOFFSET || nvalues < 2) continue;
        if (is_float && values[0] == H5Z_SO_FLOAT_DSCALE)
            return std::pow(10.0, -static_cast<double>(static_cast<int>(values[1])));
        if (!is_float && values[0] == H5Z_SO_INT && values[1] != 0 && values[1] < bits) {
            problem = "dataset is stored with the scale-offset filter keeping " + std::to_string(values[1]) +
                      " bits per integer, which can wrap values (lossy): store it exactly";
            return 0;
        }
        if (is_float && values[0] != H5Z_SO_FLOAT_DSCALE)
            problem = "dataset is stored with a scale-offset filter of unknown kind";
    }
    H5Eclear2(H5E_DEFAULT);
    return 0;
}

// Why a numeric type's values cannot be read as the type it is stored as,
// or "": a layout whose rounding the noise floor does not count (after
// layout_problem, which the caller checks first).
std::string type_problem(hid_t type) {
    if (std::string why = layout_problem(type); !why.empty()) return "the stored type is corrupt: " + why;
    if (H5Tget_class(type) != H5T_FLOAT) return "";
    std::size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0;
    if (H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) < 0) return "cannot read the float type's fields";
    // The noise floor counts the rounding of float16, bfloat16, float32 and
    // float64 (ε and the subnormal step), and of layouts at least as fine
    // as float64 (long double, binary128: computed in float64). Another
    // layout's subnormal step (a TF32, an 8-bit float) is not float64's nor
    // one of theirs: its floor would be off by decades.
    const long ebias = static_cast<long>(H5Tget_ebias(type));
    const bool known = (esize == 5 && msize == 10 && ebias == 15) || (esize == 8 && msize == 7 && ebias == 127) ||
                       (esize == 8 && msize == 23 && ebias == 127) || (esize == 11 && msize == 52 && ebias == 1023);
    const bool finer = msize >= 52 && 1 - ebias - static_cast<long>(msize) <= -1074;
    if (!known && !finer)
        return "dataset type is " + type_name(type) + " with exponent bias " + std::to_string(ebias) +
               ", a float layout whose rounding basinvol does not count; store float16, bfloat16, float32 or float64";
    return "";
}

// Why the external raw-data files of a dataset (H5Pset_external) cannot be
// read, or "". HDF5 opens and reads them as they are: a FIFO or a device
// there blocks the read forever (or never ends), so each must be a regular
// file. A relative name is found as HDF5 finds it: under $HDF5_EXTFILE_PREFIX
// (${ORIGIN}: the HDF5 file's folder) when that is set, else from the
// current directory. Each file must also hold its share of the dataset's
// `bytes` (the segments in order): HDF5 reads the part of a segment past the
// end of a truncated file as zeros, and a Hessian of zeros is a wrong
// answer, not an error.
std::string external_problem_of(hid_t dcpl, const std::string& file, hsize_t bytes,
                                std::vector<std::string>* reads = nullptr) {
    const int count = H5Pget_external_count(dcpl);
    if (count < 0) return "cannot read the dataset's list of external raw-data files";
    hsize_t left = bytes;  // of the dataset, not yet placed in a segment
    for (int i = 0; i < count; ++i) {
        char name[4096] = {0};
        off_t offset = 0;
        hsize_t size = 0;
        if (H5Pget_external(dcpl, static_cast<unsigned>(i), sizeof name - 1, name, &offset, &size) < 0)
            return "cannot read external raw-data file " + std::to_string(i) + " of the dataset";
        name[sizeof name - 1] = '\0';  // HDF5 copies with strncpy: a name this long is not terminated
        if (std::strlen(name) >= sizeof name - 2)
            return "external raw-data file " + std::to_string(i) + " has a name of 4094 bytes or more";
        std::string path = name;
        const char* prefix = std::getenv("HDF5_EXTFILE_PREFIX");
        if (!path.empty() && path[0] != '/' && prefix && *prefix) {
            std::string dir = prefix;
            if (dir.rfind("${ORIGIN}", 0) == 0) {
                const std::size_t slash = file.rfind('/');
                dir = (slash == std::string::npos ? std::string(".") : file.substr(0, slash)) + dir.substr(9);
            }
            path = dir + "/" + path;
        }
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) {
            std::string why = "external raw-data file '" + path + "' cannot be opened: " + std::strerror(errno);
            if (path[0] != '/') {
                // HDF5 looks for a relative name from the current directory.
                std::vector<char> cwd(4096);
                if (::getcwd(cwd.data(), cwd.size()))
                    why += " (looked for from the current directory " + std::string(cwd.data()) +
                           "; HDF5_EXTFILE_PREFIX='${ORIGIN}' looks beside the HDF5 file)";
            }
            return why;
        }
        if (reads) reads->push_back(path);
        if (path == name && name[0] != '/') {
            // Found from the current directory: a file of that name beside the
            // HDF5 file, and another, is most likely the one meant.
            const std::size_t slash = file.rfind('/');
            const std::string beside = (slash == std::string::npos ? std::string(".") : file.substr(0, slash)) + "/" + name;
            struct stat other {};
            if (::stat(beside.c_str(), &other) == 0 && (other.st_dev != st.st_dev || other.st_ino != st.st_ino))
                return "external raw-data file '" + path + "' is found from the current directory and as '" + beside +
                       "' beside the HDF5 file, two different files: HDF5 reads the first; run from the HDF5 file's "
                       "folder, or set HDF5_EXTFILE_PREFIX='${ORIGIN}' to read the second";
        }
        if (!S_ISREG(st.st_mode))
            return "external raw-data file '" + path + "' is not a regular file (a FIFO or a device would block the "
                   "read or never end)";
        const hsize_t share = std::min(left, size);  // size is H5F_UNLIMITED for an open-ended segment
        left -= share;
        if (offset < 0 || static_cast<hsize_t>(st.st_size) < static_cast<hsize_t>(offset) + share)
            return "external raw-data file '" + path + "' holds " + std::to_string(st.st_size) +
                   " bytes; the dataset needs " + std::to_string(share) + " from byte " + std::to_string(offset) +
                   " (truncated?)";
    }
    return "";
}

// The bytes a dataset's values take as stored (its points times its type's
// size; a shape past 2^64 bytes is counted as 2^64 - 1).
hsize_t stored_bytes(hid_t d) {
    Handle space(H5Dget_space(d), H5Sclose);
    Handle type(H5Dget_type(d), H5Tclose);
    if (!space.valid() || !type.valid()) return 0;
    const hssize_t points = H5Sget_simple_extent_npoints(space.get());
    const hsize_t size = H5Tget_size(type.get());
    if (points <= 0) return 0;
    const auto p = static_cast<hsize_t>(points);
    return size && p > std::numeric_limits<hsize_t>::max() / size ? std::numeric_limits<hsize_t>::max() : p * size;
}

// A number type's machine epsilon as basinvol counts it: a float's, at most
// float64's (wider ones are computed in double); an integer's float64's.
double type_eps(hid_t type) {
    std::size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0;
    if (H5Tget_class(type) == H5T_INTEGER) return std::ldexp(1.0, -52);
    if (H5Tget_class(type) != H5T_FLOAT || H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) < 0) return 0;
    return std::ldexp(1.0, -static_cast<int>(std::min<std::size_t>(msize, 52)));
}

// The file on disk object `obj` lives in, stat'd into `st`; false for a
// file with no name on disk (an in-memory image).
bool file_on_disk(hid_t obj, struct stat& st) {
    const ssize_t len = H5Fget_name(obj, nullptr, 0);
    std::string path(len > 0 ? static_cast<std::size_t>(len) + 1 : 1, '\0');
    const bool found = len > 0 && H5Fget_name(obj, path.data(), path.size()) > 0 && ::stat(path.c_str(), &st) == 0;
    H5Eclear2(H5E_DEFAULT);
    return found;
}

// A dataset's identity across openings: its file on disk (device, inode;
// HDF5's file number for a file with no name on disk) and its address.
std::array<unsigned long long, 3> dataset_key(hid_t d) {
    H5O_info_t oi{};
    if (H5Oget_info2(d, &oi, H5O_INFO_BASIC) < 0) {  // unknown: never the same as another
        H5Eclear2(H5E_DEFAULT);
        static std::atomic<unsigned long long> unknown{0};
        return {~0ULL, ~0ULL, unknown++};
    }
    struct stat st {};
    if (!file_on_disk(d, st)) return {~0ULL, oi.fileno, oi.addr};
    return {static_cast<unsigned long long>(st.st_dev), static_cast<unsigned long long>(st.st_ino), oi.addr};
}

using DatasetKey = std::array<unsigned long long, 3>;

}  // namespace

std::string detail::object_identity(hid_t obj) {
    H5O_info_t oi{};
    struct stat st {};
    const bool known = H5Oget_info2(obj, &oi, H5O_INFO_BASIC) >= 0 && file_on_disk(obj, st);
    H5Eclear2(H5E_DEFAULT);
    if (!known) return "";  // no file on disk (an image), or no address
    // The file's size and time too: an inode freed and given to another file
    // between two SOURCEs' listings is not the same Hessian.
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
           std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(oi.addr);
}

namespace {

constexpr int virtual_depth = 8;         // virtual datasets over virtual datasets, at most
constexpr std::size_t virtual_checks = 4096;  // sources checked for one dataset, at most

// What a check of a virtual dataset's sources has seen: the virtual
// datasets above the one being checked (a loop), those checked whole
// already (each once), and how many sources were opened.
struct VirtualWalk {
    std::vector<DatasetKey> above;
    std::set<DatasetKey> checked;
    std::size_t opened = 0;
};

std::string values_problem(hid_t d, hid_t type, const std::string& file, std::vector<std::string>* reads);
std::string packing_problem(hid_t d);
std::string home_of(hid_t d, const std::string& file);

// Why some entries of a virtual dataset are mapped to no source, or "": HDF5
// reads them as the fill value, silently.
std::string unmapped_entries(hid_t d, hid_t dcpl, std::size_t count) {
    Handle space(H5Dget_space(d), H5Sclose);
    if (!space.valid()) return "";
    const int rank = H5Sget_simple_extent_ndims(space.get());
    const hssize_t total = H5Sget_simple_extent_npoints(space.get());
    if (rank <= 0 || total <= 0) return "";
    Handle mapped(H5Scopy(space.get()), H5Sclose);
    if (!mapped.valid() || H5Sselect_none(mapped.get()) < 0) return "";
    const std::vector<hsize_t> ones(static_cast<std::size_t>(rank), 1);
    std::size_t blocks_seen = 0;
    for (std::size_t i = 0; i < count; ++i) {
        Handle v(H5Pget_virtual_vspace(dcpl, i), H5Sclose);
        if (!v.valid()) return "cannot read the virtual dataset's mapping " + std::to_string(i);
        const H5S_sel_type type = H5Sget_select_type(v.get());
        if (type == H5S_SEL_ALL) return "";
        if (type != H5S_SEL_HYPERSLABS) continue;
        if (H5Sis_regular_hyperslab(v.get()) > 0) {  // one call for a strided selection, however many blocks
            std::vector<hsize_t> start(static_cast<std::size_t>(rank)), stride(start), cnt(start), block(start);
            if (H5Sget_regular_hyperslab(v.get(), start.data(), stride.data(), cnt.data(), block.data()) >= 0 &&
                H5Sselect_hyperslab(mapped.get(), H5S_SELECT_OR, start.data(), stride.data(), cnt.data(),
                                    block.data()) >= 0)
                continue;
            H5Eclear2(H5E_DEFAULT);
        }
        H5Eclear2(H5E_DEFAULT);
        const hssize_t nblocks = H5Sget_select_hyper_nblocks(v.get());
        if (nblocks < 0) {  // an unlimited mapping: its extent follows its sources'
            H5Eclear2(H5E_DEFAULT);
            return "the virtual dataset has a mapping of unlimited extent (its shape follows its sources'); "
                   "give it a fixed one";
        }
        blocks_seen += static_cast<std::size_t>(nblocks);
        if (blocks_seen > (std::size_t(1) << 16))
            return "the virtual dataset's mappings hold more than 65536 blocks; basinvol does not check that "
                   "many for entries mapped to no source: copy it into a plain dataset";
        std::vector<hsize_t> b(2 * static_cast<std::size_t>(rank) * static_cast<std::size_t>(nblocks));
        if (nblocks > 0 && H5Sget_select_hyper_blocklist(v.get(), 0, static_cast<hsize_t>(nblocks), b.data()) < 0)
            return "cannot read the virtual dataset's mapping " + std::to_string(i);
        for (hssize_t k = 0; k < nblocks; ++k) {
            const hsize_t* lo = &b[2 * static_cast<std::size_t>(rank) * static_cast<std::size_t>(k)];
            const hsize_t* hi = lo + rank;
            std::vector<hsize_t> size(static_cast<std::size_t>(rank));
            for (int j = 0; j < rank; ++j) size[static_cast<std::size_t>(j)] = hi[j] - lo[j] + 1;
            if (H5Sselect_hyperslab(mapped.get(), H5S_SELECT_OR, lo, nullptr, ones.data(), size.data()) < 0) {
                H5Eclear2(H5E_DEFAULT);
                return "cannot read the virtual dataset's mapping " + std::to_string(i);
            }
        }
    }
    const hssize_t covered = H5Sget_select_npoints(mapped.get());
    if (covered >= total) return "";
    double fill = 0;
    const bool known_fill = H5Pget_fill_value(dcpl, H5T_NATIVE_DOUBLE, &fill) >= 0;
    H5Eclear2(H5E_DEFAULT);
    std::ostringstream s;
    s << total - covered << " of its " << total << " entries are mapped to no source (HDF5 would read them as "
      << "the fill value" << (known_fill ? " " + value_text(fill) : std::string()) << ": a wrong Hessian)";
    return s.str();
}

// Why the part of source `src` that mapping i of a virtual dataset reads
// holds storage never written, or "": the chunks that part's bounding box
// touches, or a contiguous source never written. Starts with a space.
std::string unwritten_source_part(hid_t src, hid_t src_dcpl, hid_t dcpl, std::size_t i) {
    const std::string never = " has storage that was never written (HDF5 would read it as the fill value: a wrong "
                              "Hessian); write every chunk, or give the source itself";
    if (H5Pget_layout(src_dcpl) != H5D_CHUNKED) {
        H5D_space_status_t status = H5D_SPACE_STATUS_ERROR;
        if (H5Dget_space_status(src, &status) < 0) H5Eclear2(H5E_DEFAULT);
        return status == H5D_SPACE_STATUS_NOT_ALLOCATED && H5Pget_external_count(src_dcpl) <= 0 ? never : "";
    }
    Handle space(H5Pget_virtual_srcspace(dcpl, i), H5Sclose);
    hsize_t lo[H5S_MAX_RANK] = {}, hi[H5S_MAX_RANK] = {};
    const int rank = space.valid() ? H5Sget_simple_extent_ndims(space.get()) : -1;
    detail::Box box{};
    const detail::Box* part = nullptr;
    if (rank >= 1 && rank <= 2 && H5Sget_select_bounds(space.get(), lo, hi) >= 0) {
        for (int j = 0; j < rank; ++j) box.start[j] = lo[j], box.count[j] = hi[j] - lo[j] + 1;
        if (rank == 1) box.start[1] = 0, box.count[1] = 1;
        part = &box;
    }
    H5Eclear2(H5E_DEFAULT);
    return detail::unwritten_chunks(src, part) > 0 ? never : "";
}

// Why a virtual dataset's values cannot be read whole, or "". HDF5 1.10
// reads the part of a source it cannot open, or a source's chunks never
// written, or entries mapped to no source, as the fill value, silently: a
// Hessian with zeros where a block should be; and it loops forever (or
// crashes) on a virtual dataset whose mappings lead back to itself. Every
// entry must be mapped, and every source must open, with its dataset, be
// written whole and not lead back (sources that are virtual are checked the
// same way, to a depth of 8). The source files go to `reads`; the coarsest
// source type to `coarsest` (its machine epsilon and name).
std::string virtual_problem(hid_t d, hid_t dcpl, const std::string& file, std::vector<std::string>* reads,
                            std::pair<double, std::string>* coarsest, VirtualWalk& walk) {
    if (H5Pget_layout(dcpl) != H5D_VIRTUAL) return "";
    std::size_t count = 0;
    if (H5Pget_virtual_count(dcpl, &count) < 0) {
        H5Eclear2(H5E_DEFAULT);
        return "cannot read the virtual dataset's mappings";
    }
    walk.above.push_back(dataset_key(d));
    auto text = [](auto get, hid_t plist, std::size_t i) {
        const ssize_t len = get(plist, i, nullptr, 0);
        std::string out(len > 0 ? static_cast<std::size_t>(len) + 1 : 1, '\0');
        if (len > 0) get(plist, i, out.data(), out.size());
        return std::string(out.c_str());
    };
    for (std::size_t i = 0; i < count; ++i) {
        const std::string name = text(H5Pget_virtual_filename, dcpl, i);
        const std::string dset = text(H5Pget_virtual_dsetname, dcpl, i);
        H5Eclear2(H5E_DEFAULT);
        const TargetFile target =
            name == "." ? TargetFile{file, TargetFile::hdf5} : detail::target_file(name, file, "HDF5_VDS_PREFIX");
        const std::string& path = target.path;
        const std::string what = "the virtual dataset's source " + name + ":" + dset;
        if (target.kind == TargetFile::none)
            return what + " cannot be found (HDF5 would read its part as the fill value: a wrong Hessian)";
        if (target.kind == TargetFile::blocking)
            return what + " is " + path + ", which is not a regular file (" + detail::blocking_open + ")";
        if (reads && name != ".") reads->push_back(path);
        // "." is the virtual dataset's own file (perhaps an in-memory image).
        Handle f(name == "." ? H5Iget_file_id(d) : H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
        const htri_t has = f.valid() ? H5Oexists_by_name(f.get(), dset.c_str(), H5P_DEFAULT) : -1;
        H5Eclear2(H5E_DEFAULT);
        Handle src(has > 0 ? H5Dopen2(f.get(), dset.c_str(), H5P_DEFAULT) : H5I_INVALID_HID, H5Dclose);
        H5Eclear2(H5E_DEFAULT);
        if (!src.valid())
            return what + " cannot be opened in " + path +
                   " (HDF5 would read its part as the fill value: a wrong Hessian)";
        const DatasetKey key = dataset_key(src.get());
        if (std::find(walk.above.begin(), walk.above.end(), key) != walk.above.end())
            return what + " leads back to the virtual dataset itself (a loop HDF5 cannot read)";
        Handle type(H5Dget_type(src.get()), H5Tclose);
        if (coarsest && type.valid() && type_eps(type.get()) > coarsest->first)
            *coarsest = {type_eps(type.get()), type_name(type.get())};
        H5Eclear2(H5E_DEFAULT);
        Handle src_dcpl(H5Dget_create_plist(src.get()), H5Pclose);
        if (!src_dcpl.valid() || !type.valid()) return what + " cannot be opened in " + path;
        const bool nested = H5Pget_layout(src_dcpl.get()) == H5D_VIRTUAL;
        if (!nested) {  // the part this mapping reads must have been written (another mapping's part may not be)
            if (std::string why = unwritten_source_part(src.get(), src_dcpl.get(), dcpl, i); !why.empty())
                return what + why;
        }
        if (!walk.checked.insert(key).second) continue;  // checked whole already (another mapping's source)
        if (++walk.opened > virtual_checks)
            return "the virtual dataset reaches more than 4096 source datasets; copy it into a plain dataset";
        // The source's own values must be the Hessian's, as a dataset given alone.
        if (std::string why = packing_problem(src.get()); !why.empty()) return what + ": " + why;
        if (nested) {
            if (walk.above.size() >= virtual_depth)
                return what + " is a virtual dataset nested more than 8 deep; copy it into a plain dataset";
            // Its sources are found from the file it lives in (an external link may lead elsewhere).
            std::string why = virtual_problem(src.get(), src_dcpl.get(), home_of(src.get(), path), reads, coarsest, walk);
            walk.above.pop_back();
            if (!why.empty()) return what + ": " + why;
            continue;
        }
        if (const H5T_class_t cls = H5Tget_class(type.get()); cls != H5T_INTEGER && cls != H5T_FLOAT)
            return what + ": dataset type is " + type_name(type.get()) + ", not a number (expected float32 or float64)";
        if (std::string why = values_problem(src.get(), type.get(), path, reads); !why.empty())
            return what + ": " + why;
        // A lossy source's rounding would not reach the noise floor (the
        // virtual dataset has no filter of its own).
        std::string wraps;
        if (lossy_step(src.get(), wraps) > 0 || !wraps.empty())
            return what + ": " + (wraps.empty() ? std::string("it is stored with the lossy scale-offset filter") : wraps) +
                   "; a virtual dataset over it is not read: give the source itself";
    }
    return unmapped_entries(d, dcpl, count);
}

std::string virtual_problem(hid_t d, hid_t dcpl, const std::string& file, std::vector<std::string>* reads,
                            std::pair<double, std::string>* coarsest = nullptr) {
    VirtualWalk walk;
    return virtual_problem(d, dcpl, file, reads, coarsest, walk);
}

// Why the stored bytes of a compact or contiguous dataset cannot hold its
// shape, or "". HDF5 1.10 trusts a compact dataset's size field and copies
// past the end of its buffer (found by fuzzing): check before reading.
std::string storage_problem(hid_t d, const std::string& file, std::vector<std::string>* reads) {
    Handle dcpl(H5Dget_create_plist(d), H5Pclose);
    if (!dcpl.valid()) return "";
    if (std::string why = external_problem_of(dcpl.get(), file, stored_bytes(d), reads); !why.empty()) return why;
    if (std::string why = virtual_problem(d, dcpl.get(), file, reads); !why.empty()) return why;
    H5D_layout_t layout = H5Pget_layout(dcpl.get());
    if (layout != H5D_COMPACT && layout != H5D_CONTIGUOUS) return "";
    const hsize_t stored = H5Dget_storage_size(d);
    const double needed = double(stored_bytes(d));
    if (layout == H5D_CONTIGUOUS && stored == 0) return "";  // never written: refused when read (read_values)
    if (layout == H5D_CONTIGUOUS && H5Pget_external_count(dcpl.get()) == 0) {
        // Its bytes must lie inside the file: a corrupt size or address would
        // have the reader allocate (and HDF5 fill) the whole shape first.
        const haddr_t offset = H5Dget_offset(d);
        hsize_t file_size = 0;
        Handle f(H5Iget_file_id(d), H5Fclose);
        if (offset != HADDR_UNDEF && f.valid() && H5Fget_filesize(f.get(), &file_size) >= 0 &&
            (offset > file_size || stored > file_size - offset)) {
            std::ostringstream s;
            s << "contiguous dataset stores " << stored << " bytes at offset " << offset
              << ", past the end of the file (" << file_size << " bytes; truncated or corrupt file)";
            return s.str();
        }
        // And inside the space the file says it allocated: HDF5 reads the
        // part past that end as zeros (a superblock a writer never updated).
        haddr_t eoa = 0;
        if (offset != HADDR_UNDEF && f.valid() && H5Fget_eoa(f.get(), &eoa) >= 0 &&
            (offset > eoa || stored > eoa - offset)) {
            std::ostringstream s;
            s << "contiguous dataset stores " << stored << " bytes at offset " << offset
              << ", past the end of the space the file says it allocated (" << eoa
              << " bytes; a writer that did not finish, or a corrupt file): HDF5 would read the rest as zeros";
            return s.str();
        }
        H5Eclear2(H5E_DEFAULT);
    }
    if (double(stored) >= needed) return "";
    std::ostringstream s;
    s.precision(15);
    s << (layout == H5D_COMPACT ? "compact" : "contiguous") << " dataset stores " << stored
      << " bytes but its shape needs " << needed << " (corrupt file)";
    return s.str();
}

// The file d lives in (another than `file` when reached through an
// external link): its folder is where HDF5 looks for d's sources.
std::string home_of(hid_t d, const std::string& file) {
    const ssize_t len = H5Fget_name(d, nullptr, 0);
    std::string home(len > 0 ? static_cast<std::size_t>(len) + 1 : 1, '\0');
    home = len > 0 && H5Fget_name(d, home.data(), home.size()) > 0 ? std::string(home.c_str()) : file;
    H5Eclear2(H5E_DEFAULT);
    return home;
}

}  // namespace

namespace {

// Letters and digits only, in lower case: "Loss-Threshold " is "lossthreshold".
std::string letters_of(const std::string& name) {
    std::string out;
    for (unsigned char c : name)
        if (std::isalnum(c)) out += static_cast<char>(std::tolower(c));
    return out;
}

// The edit distance of a and b, a letter inserted, dropped, changed or two
// neighbours swapped costing one each (optimal string alignment).
std::size_t edits(const std::string& a, const std::string& b) {
    const std::size_t n = a.size(), m = b.size();
    std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
    for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= n; ++i)
        for (std::size_t j = 1; j <= m; ++j) {
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    return d[n][m];
}

}  // namespace

std::string detail::misspelled_answer_attribute(const std::string& name) {
    for (const char* key : {"hessian_error", "loss_threshold"}) {
        if (name == key) return "";
        if (lower_case(name) == key)
            return "attribute " + name + " is not read: basinvol reads " + key + ", in lower case";
        // Other separators, or up to two letters off (of 12 and 13).
        if (edits(letters_of(name), letters_of(key)) <= 2)
            return "attribute '" + name + "' is not read: basinvol reads " + key + " (spelled so, in lower case)";
    }
    return "";
}

std::vector<std::string> detail::attribute_names(hid_t obj) {
    std::vector<std::string> names;
    if (H5Aexists_by_name(obj, ".", "\x7f basinvol: no attribute has this name", H5P_DEFAULT) < 0) {
        H5Eclear2(H5E_DEFAULT);
        return names;
    }
    auto collect = [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
        static_cast<std::vector<std::string>*>(data)->emplace_back(name);
        return 0;
    };
    hsize_t idx = 0;
    H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, collect, &names);
    H5Eclear2(H5E_DEFAULT);
    return names;
}

bool detail::meant_as_scale(const std::string& name, bool netcdf_too) {
    std::string key;
    for (char c : lower_case(name))
        if (c != '_' && c != '-' && c != ' ') key += c;
    return name != "scale" && (key == "scale" || key == "scaling" || key == "scalingfactor" || key == "scales" ||
                               (key == "scalefactor" && (netcdf_too || name != "scale_factor")));
}

std::string detail::structure_in_other_case(hid_t obj) {
    for (const auto& name : attribute_names(obj)) {
        if (name == "structure" || lower_case(name) != "structure") continue;
        Handle a(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose);
        Handle type(a.valid() ? H5Aget_type(a.get()) : -1, H5Tclose);
        Handle space(a.valid() ? H5Aget_space(a.get()) : -1, H5Sclose);
        std::optional<std::string> value;  // one string only: the read fills as many as the attribute holds
        if (type.valid() && space.valid() && H5Tget_class(type.get()) == H5T_STRING &&
            H5Sget_simple_extent_npoints(space.get()) == 1)
            value = read_string_attribute(a.get(), type.get());
        H5Eclear2(H5E_DEFAULT);
        const std::string kind = value ? lower_case(*value) : "";
        if (kind == "blocks" || kind == "factor" || kind == "kron" || kind == "diagonal") return name;
    }
    return "";
}

std::string detail::misnamed_attribute(hid_t obj, bool scales) {
    const htri_t has = H5Aexists(obj, "structure");  // beside structure itself, another spelling changes nothing
    H5Eclear2(H5E_DEFAULT);
    if (has == 0)
        if (const std::string name = structure_in_other_case(obj); !name.empty())
            return "attribute " + name + " is not read: basinvol reads structure, in lower case";
    for (const auto& name : attribute_names(obj)) {
        if (const std::string why = misspelled_answer_attribute(name); !why.empty()) return why;
        // (netCDF's scale_factor on a part that is not a factor or kron: its packing message, when read)
        if (meant_as_scale(name, scales))
            return "attribute " + name + " is not read: " +
                   (scales ? std::string("a factor or kron part's scale is the attribute scale")
                           : std::string("only a factor or kron part has a scale (attribute scale); scale the "
                                         "values when writing"));
    }
    return "";
}

std::pair<double, std::string> detail::carried_type(hid_t d, const std::string& file,
                                                    std::pair<double, std::string> own) {
    Handle dcpl(H5Dget_create_plist(d), H5Pclose);
    if (dcpl.valid() && H5Pget_layout(dcpl.get()) == H5D_VIRTUAL)
        virtual_problem(d, dcpl.get(), home_of(d, file), nullptr, &own);
    H5Eclear2(H5E_DEFAULT);
    return own;
}

namespace {

// Why d's stored values are not the Hessian's own, or "": values packed by
// the netCDF/CF convention (stored · scale_factor + add_offset) read as the
// stored integers would be a Hessian off by that scale.
std::string packing_problem(hid_t d) {
    std::string names;
    for (const char* a : {"scale_factor", "add_offset"})
        if (H5Aexists(d, a) > 0) names += (names.empty() ? "" : " and ") + std::string(a);
    H5Eclear2(H5E_DEFAULT);
    if (names.empty()) return "";
    return "the values are packed by the netCDF/CF convention (attribute " + names +
           "): basinvol reads the stored values as they are; store the unpacked values "
           "(stored · scale_factor + add_offset)";
}

// Why dataset d's values (of type `type`) cannot be read safely and whole, or
// "". The files other than `file` the read takes go to `reads`: the file a
// dataset reached through an external link lives in, its external raw-data
// files, a virtual dataset's sources.
std::string values_problem(hid_t d, hid_t type, const std::string& file, std::vector<std::string>* reads) {
    const std::string home = home_of(d, file);
    if (std::string why = packing_problem(d); !why.empty()) return why;
    if (std::string why = type_problem(type); !why.empty()) return why;
    if (std::string why = storage_problem(d, home, reads); !why.empty()) return why;
    if (const std::string filter = missing_filter(d); !filter.empty())
        return "dataset is compressed with filter " + filter + ", which this HDF5 library cannot decode" + plugin_hint;
    if (reads && home != file) reads->push_back(home);
    return "";
}

// The structure attribute of the group at `path` in d's file ("" if none).
std::string group_structure(hid_t d, const std::string& path) {
    const hid_t file = H5Iget_file_id(d);
    std::string kind;
    if (file >= 0) {
        const hid_t g = H5Oopen(file, path.c_str(), H5P_DEFAULT);
        if (g >= 0) {
            kind = detail::structure_kind(g, path);
            H5Oclose(g);
        }
        H5Fclose(file);
    }
    H5Eclear2(H5E_DEFAULT);
    return kind;
}

// `path` (absolute) with each of its soft links replaced by the path it
// holds, a relative one read from the link's group, and "." parts dropped:
// where the object is linked from by hard links. The links are read in d's
// own file, which is the listed one unless an external link led to d (then
// the names rarely exist there, and `path` is kept). External links lead to
// other files and are left as they are, as is a chain past HDF5's own
// limit of 16; a link that cannot be read keeps `path` whole.
std::string soft_links_resolved(hid_t d, const std::string& path) {
    std::string done;  // the resolved components so far
    std::size_t at = 1;
    int hops = 0;
    std::string rest = path;
    while (at <= rest.size()) {
        const std::size_t end = std::min(rest.find('/', at), rest.size());
        if (end == at || rest.compare(at, end - at, ".") == 0) {  // "//" or "/./"
            at = end + 1;
            continue;
        }
        const std::string part = done + "/" + rest.substr(at, end - at);
        H5L_info_t li{};
        if (hops < 16 && H5Lget_info(d, part.c_str(), &li, H5P_DEFAULT) >= 0 && li.type == H5L_TYPE_SOFT) {
            std::vector<char> val(li.u.val_size + 1, '\0');
            if (H5Lget_val(d, part.c_str(), val.data(), li.u.val_size, H5P_DEFAULT) < 0 || !val[0]) {
                H5Eclear2(H5E_DEFAULT);
                return path;
            }
            const std::string target(val.data());
            ++hops;
            rest = (target.front() == '/' ? target : done + "/" + target) + rest.substr(end);
            done.clear();
            at = 1;
            continue;
        }
        done = part;
        at = end + 1;
    }
    H5Eclear2(H5E_DEFAULT);
    return done.empty() ? path : done;
}

}  // namespace

std::string detail::structure_factor_problem(hid_t d, const std::string& path) {
    const std::string resolved = soft_links_resolved(d, path);
    const std::string name = resolved.substr(resolved.rfind('/') + 1);
    if (name != "G" && name != "A" && name != "B") return "";
    const std::string group = resolved.substr(0, std::max<std::size_t>(resolved.rfind('/'), 1));
    const std::string kind = group_structure(d, group);
    if (name == "G" ? kind != "factor" : kind != "kron") return "";
    return name == "G" ? "dataset is the Gauss-Newton factor of the structure " + group +
                             ", not a Hessian: name " + group + " to analyse its H = scale·GᵀG"
                       : "dataset is the Kronecker factor " + name + " of the structure " + group +
                             ", not a Hessian: name " + group + " to analyse its H = scale·(A ⊗ B)";
}

namespace {

// A square factor of a structure listed as a Hessian is a matrix of its
// Hessian, not the Hessian: sets `listed`'s problem so
// (structure_factor_problem). The structure's own reader reads its factors
// through describe, not through this.
void refuse_structure_factor(hid_t d, const std::string& listed_path, ListedHessian& listed) {
    if (listed.problem.empty()) listed.problem = detail::structure_factor_problem(d, listed_path);
}

// Describes dataset `d` at `path`; `problem` says why it is not a readable Hessian.
ListedHessian describe(hid_t d, const std::string& file, const std::string& path) {
    ListedHessian listed;
    HessianInfo& info = listed.info;
    const auto noted = detail::AttributeScope::record(info.unread_attributes);
    std::string& problem = listed.problem;
    info.file = file;
    info.dataset = path;
    info.identity = detail::object_identity(d);
    Handle space(H5Dget_space(d), H5Sclose);
    Handle type(H5Dget_type(d), H5Tclose);
    if (!space.valid() || !type.valid()) fail_at(info.source(), "cannot read dataset shape or type");
    int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 0) fail_at(info.source(), "cannot read dataset shape");
    hsize_t dims[H5S_MAX_RANK] = {};
    if (H5Sget_simple_extent_dims(space.get(), dims, nullptr) < 0) fail_at(info.source(), "cannot read dataset shape");
    std::ostringstream shape;
    for (int i = 0; i < rank; ++i) shape << (i ? "x" : "") << dims[i];
    info.stored_type = type_name(type.get());
    // What a structure looks like without its attribute (docs/structured.md).
    const std::string name = path.substr(path.rfind('/') + 1);
    if (rank != 2) {
        problem = "dataset is not a 2-D matrix: it is " + std::to_string(rank) + "-D" +
                       (rank > 0 ? " with shape " + shape.str() : std::string(" (scalar)"));
        if (rank == 1)
            problem += " (if it is a diagonal Hessian, give it the attribute structure = \"diagonal\": "
                       "docs/structured.md)";
        return listed;
    }
    problem = read_attributes(d, info.attrs);
    if (!problem.empty()) return listed;
    if (dims[0] != dims[1]) {
        problem = "dataset is not square: shape " + shape.str();
        if (name == "G") {
            const std::string group = path.substr(0, std::max<std::size_t>(path.rfind('/'), 1));
            const std::string kind = group_structure(d, group);
            if (kind == "factor")
                problem += " (it is the Gauss-Newton factor of the structure " + group + ": name " + group +
                           " to analyse its H = scale·GᵀG)";
            else if (kind.rfind("(named ", 0) == 0)
                problem += " (its group's attribute " + kind.substr(7, kind.size() - 8) +
                           " is not read: basinvol reads structure, in lower case)";
            else
                problem += " (if it is a Gauss-Newton factor, give its group the attribute structure = \"factor\": "
                           "docs/structured.md)";
        }
        return listed;
    }
    if (dims[0] == 0) {
        problem = "dataset is empty: shape 0x0";
        return listed;
    }
    detail::read_parameter_names(d, static_cast<std::size_t>(dims[0]));
    info.n = static_cast<std::size_t>(dims[0]);
    H5T_class_t cls = H5Tget_class(type.get());
    if (cls == H5T_FLOAT) {
        std::size_t spos, epos, esize, mpos, msize;
        if (H5Tget_fields(type.get(), &spos, &epos, &esize, &mpos, &msize) < 0)
            fail_at(info.source(), "cannot read the float type's fields");
        info.stored_eps = std::ldexp(1.0, -static_cast<int>(msize));
        if (msize > 52) info.stored_eps = std::ldexp(1.0, -52);  // computed in double
    } else if (cls == H5T_INTEGER) {
        // Integers up to 2^53 convert to double exactly: they carry float64's resolution.
        info.stored_eps = std::ldexp(1.0, -52);
    } else {
        problem = "dataset type is " + info.stored_type + ", not a number (expected float32 or float64)";
    }
    if (problem.empty()) problem = values_problem(d, type.get(), info.file, &info.reads_also);
    if (problem.empty())
        std::tie(info.stored_eps, info.stored_type) = detail::carried_type(d, info.file, {info.stored_eps, info.stored_type});
    if (problem.empty()) info.quantum = lossy_step(d, problem);
    if (problem.empty()) info.unwritten_chunks = detail::unwritten_chunks(d);
    if (problem.empty() && info.unwritten_chunks) problem = detail::unwritten_fill_problem(d);
    return listed;
}

// An object's identity: its address within its file, and that file on disk
// (device, inode): an external link's target file puts its objects at the
// addresses the linking file uses, and HDF5 numbers each opening of a
// target anew, so two links to one dataset would look like two.
using ObjectKey = std::tuple<unsigned long long, unsigned long long, haddr_t>;

struct Walker {
    hid_t file;
    std::string filename;
    std::vector<ListedHessian>* out;
    std::set<ObjectKey> seen;
    std::map<unsigned long, std::pair<unsigned long long, unsigned long long>> files;  // HDF5's file number -> id
    std::vector<std::string> skipped;  // datasets that are not 2-D, with why
    // Soft and external links, walked once every hard link has been: an
    // object with a name of its own (`step_0300`) is listed under it, not
    // under a link to it (`latest`) that sorts first.
    struct Link {
        std::shared_ptr<Handle> group;  // kept open: the link resolves from its own group, as HDF5 resolves it
        std::string name, path;
    };
    std::vector<Link> links;
};

ObjectKey key_of(Walker& w, hid_t loc, const char* name, const H5O_info_t& oi) {
    auto it = w.files.find(oi.fileno);
    if (it == w.files.end()) {
        // A file with no name on disk (an in-memory image) is told by its number.
        std::pair<unsigned long long, unsigned long long> id{~0ULL, oi.fileno};
        Handle o(H5Oopen(loc, name, H5P_DEFAULT), H5Oclose);
        struct stat st {};
        if (o.valid() && file_on_disk(o.get(), st))
            id = {static_cast<unsigned long long>(st.st_dev), static_cast<unsigned long long>(st.st_ino)};
        H5Eclear2(H5E_DEFAULT);
        it = w.files.emplace(oi.fileno, id).first;
    }
    return {it->second.first, it->second.second, oi.addr};
}

// The message for a path HDF5 gave up on after 16 links ("too many links"
// on its error stack, read as `hdf5`), or "".
std::string too_many_links(const std::string& hdf5) {
    if (hdf5.find("too many links") == std::string::npos) return "";
    return "soft links that loop, or a chain of more than 16 links, as many as HDF5 follows: link to the object "
           "itself (HDF5: " + hdf5 + ")";
}

// Why the link `name` of `group` leads to no object: a soft link to
// nothing, links that loop or chain past HDF5's limit, or an external link
// whose file or object cannot be opened.
std::string broken_link(hid_t group, const std::string& name) {
    const std::string hdf5 = hdf5_message();
    if (std::string why = detail::blocked_link(group, name); !why.empty()) return why;
    if (std::string why = too_many_links(hdf5); !why.empty()) return why;
    const std::string cause = hdf5.empty() ? std::string() : " (HDF5: " + hdf5 + ")";
    H5L_info_t li{};
    if (H5Lget_info(group, name.c_str(), &li, H5P_DEFAULT) < 0 ||
        (li.type != H5L_TYPE_SOFT && li.type != H5L_TYPE_EXTERNAL))
        return "cannot open object" + cause;
    std::vector<char> val(li.u.val_size + 1, '\0');
    if (H5Lget_val(group, name.c_str(), val.data(), li.u.val_size, H5P_DEFAULT) < 0)
        return "cannot read the link" + cause;
    if (li.type == H5L_TYPE_SOFT) return "link points to nothing (dangling link to " + std::string(val.data()) + ")";
    const char* target_file = nullptr;
    const char* target = nullptr;
    unsigned flags = 0;
    if (H5Lunpack_elink_val(val.data(), li.u.val_size, &flags, &target_file, &target) < 0 || !target_file || !target)
        return "cannot read the external link" + cause;
    return "external link to " + std::string(target_file) + ":" + target +
           " cannot be followed (its file or object is missing or unreadable)" + cause;
}

void walk_group(Walker& w, const std::shared_ptr<Handle>& group, const std::string& prefix);

// One link of a group; a soft or external link is kept for later unless
// `follow` (walk_links following it).
void walk_link(Walker& w, const std::shared_ptr<Handle>& at, const std::string& name, const std::string& path,
               bool follow) {
    const hid_t group = at->get();
    H5O_info_t oi{};
    if (H5Oget_info_by_name2(group, name.c_str(), &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0) {
        // A checkpoint whose link leads nowhere is an error row, not left out.
        ListedHessian broken;
        broken.info.file = w.filename;
        broken.info.dataset = path;
        broken.problem = broken_link(group, name);
        H5Eclear2(H5E_DEFAULT);
        w.out->push_back(std::move(broken));
        return;
    }
    H5L_info_t li{};
    if (!follow && H5Lget_info(group, name.c_str(), &li, H5P_DEFAULT) >= 0 && li.type != H5L_TYPE_HARD) {
        w.links.push_back({at, name, path});
        return;
    }
    H5Eclear2(H5E_DEFAULT);
    if (!w.seen.insert(key_of(w, group, name.c_str(), oi)).second) return;  // a link to something seen
    if (oi.type == H5O_TYPE_GROUP) {
        auto g = std::make_shared<Handle>(H5Gopen2(group, name.c_str(), H5P_DEFAULT), H5Gclose);
        if (!g->valid()) fail_at(w.filename + ":" + path, "cannot open group");
        // A group with a `structure` attribute is one Hessian, not a collection.
        if (!detail::structure_kind(g->get(), w.filename + ":" + path).empty()) {
            w.out->push_back(detail::describe_structured(g->get(), w.filename, path));
            return;
        }
        walk_group(w, g, path);
    } else if (oi.type == H5O_TYPE_DATASET) {
        Handle d(H5Dopen2(group, name.c_str(), H5P_DEFAULT), H5Dclose);
        if (!d.valid()) fail_at(w.filename + ":" + path, "cannot open dataset");
        if (!detail::structure_kind(d.get(), w.filename + ":" + path).empty()) {
            w.out->push_back(detail::describe_structured(d.get(), w.filename, path));
            return;
        }
        ListedHessian listed = describe(d.get(), w.filename, path);
        refuse_structure_factor(d.get(), path, listed);
        // Inside a group, only 2-D datasets are taken for Hessians; others
        // (loss curves, step lists) are metadata.
        const std::string& problem = listed.problem;
        if (problem.rfind("dataset is not a 2-D", 0) == 0) {
            w.skipped.push_back(path + " is " + problem.substr(problem.find("it is ") + 6));
            return;
        }
        w.out->push_back(std::move(listed));
    }
}

// The links walk_group kept for later, each once every hard link has been
// walked (a soft link found below one of them waits its turn in turn).
void walk_links(Walker& w) {
    for (std::size_t i = 0; i < w.links.size(); ++i) {
        const Walker::Link link = w.links[i];  // a copy: following it may add more
        walk_link(w, link.group, link.name, link.path, true);
    }
}

void walk_group(Walker& w, const std::shared_ptr<Handle>& at, const std::string& prefix) {
    const hid_t group = at->get();
    std::vector<std::string> names;
    auto collect = [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
        static_cast<std::vector<std::string>*>(data)->emplace_back(name);
        return 0;
    };
    // Count the links first: on a group whose symbol-table B-tree points
    // outside the file this fails cleanly, while HDF5 1.10's H5Literate
    // goes on to read the group's local heap and crashes in its metadata
    // accumulator (a memcpy from NULL, found by fuzzing).
    H5G_info_t group_info{};
    if (H5Gget_info(group, &group_info) < 0)
        fail_at(w.filename + ":" + (prefix.empty() ? "/" : prefix), "cannot list group");
    hsize_t idx = 0;
    if (H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, &idx, collect, &names) < 0)
        fail_at(w.filename + ":" + (prefix.empty() ? "/" : prefix), "cannot list group");
    for (const auto& name : names) walk_link(w, at, name, prefix + "/" + name, false);
}

// Levenshtein distance, for "did you mean" suggestions.
std::size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diag = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diag = up;
        }
    }
    return row[b.size()];
}

// "; did you mean /a/b?" with the objects of the file nearest to `missing`
// (at most three, each within a third of its length), or "".
std::string nearest_names(hid_t file, const std::string& missing) {
    std::vector<std::string> paths;
    auto visit = [](hid_t, const char* name, const H5O_info_t*, void* data) -> herr_t {
        auto* out = static_cast<std::vector<std::string>*>(data);
        if (out->size() < 100000) out->push_back(std::string("/") + name);
        return 0;
    };
    if (H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_INC, visit, &paths, H5O_INFO_BASIC) < 0) {
        H5Eclear2(H5E_DEFAULT);
        return "";
    }
    std::vector<std::pair<std::size_t, std::string>> near;
    for (const auto& p : paths) {
        if (p == "/.") continue;
        const std::size_t d = edit_distance(missing, p);
        if (d <= std::max<std::size_t>(2, missing.size() / 3)) near.emplace_back(d, p);
    }
    if (near.empty()) return "";
    std::sort(near.begin(), near.end());
    std::string out = "; did you mean " + near[0].second;
    for (std::size_t i = 1; i < near.size() && i < 3; ++i) out += " or " + near[i].second;
    return out + "?";
}

}  // namespace

std::string detail::storage_problem_here(hid_t d, const std::string& file) {
    Handle type(H5Dget_type(d), H5Tclose);
    if (!type.valid()) return "cannot read the dataset's type";
    return basinvol::values_problem(d, type.get(), file, nullptr);
}

std::string detail::unwritten_fill_problem(hid_t d) {
    Handle dcpl(H5Dget_create_plist(d), H5Pclose);
    double fill = 0;
    if (!dcpl.valid() || H5Pget_fill_value(dcpl.get(), H5T_NATIVE_DOUBLE, &fill) < 0) {
        H5Eclear2(H5E_DEFAULT);
        return "";
    }
    if (fill == 0) return "";
    return "chunks never written read as the dataset's fill value " + (std::isnan(fill) ? "nan" : value_text(fill)) +
           ", which is no Hessian's entry (netCDF's default fill is 9.97e36); write every chunk";
}

std::string detail::values_problem(hid_t d, const std::string& file, std::vector<std::string>* reads) {
    Handle type(H5Dget_type(d), H5Tclose);
    if (!type.valid()) return "cannot read the dataset's type";
    std::string why = basinvol::values_problem(d, type.get(), file, reads);
    // A structure's parts are summed from their exact values: its noise
    // floor has no term for a rounding filter.
    if (why.empty() && lossy_step(d, why) > 0)
        why = "a structure part stored with the lossy scale-offset filter (values kept to a decimal step) is not "
              "supported: store it exactly";
    return why;
}
void detail::fail_to_read(hid_t d, const std::string& where) {
    const std::string hdf5 = hdf5_message();
    const bool filter_failed = hdf5.find("filter") != std::string::npos || hdf5.find("plugin") != std::string::npos;
    if (const std::string filter = filter_failed ? missing_filter(d, true) : ""; !filter.empty())
        fail_at(where, "dataset is compressed with filter " + filter + ", which this HDF5 library cannot decode" + plugin_hint,
                false);
    fail_at(where, "cannot read dataset values (truncated or corrupt data?)" +
                       (hdf5.empty() ? std::string() : " (HDF5: " + hdf5 + ")"), false);
}
void detail::fail_at(const std::string& where, const std::string& what, bool with_hdf5) {
    std::string m = where + ": " + what;
    if (with_hdf5) {
        std::string h = hdf5_message();
        if (!h.empty()) m += " (HDF5: " + h + ")";
    }
    throw InputError(m);
}
namespace {
// Calls f(file, fd) for each file this process's HDF5 holds open with
// write intent, through a file handle or only through an object of it (a
// dataset h5py still holds after its File object is gone keeps the file
// open); fd is its descriptor under the default (sec2) driver, else -1.
// A file may come more than once.
template <class F>
void for_each_writer(F f) {
    const ssize_t count = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (count <= 0) return;
    std::vector<hid_t> ids(static_cast<std::size_t>(count));
    const ssize_t got = H5Fget_obj_ids(H5F_OBJ_ALL, H5F_OBJ_ALL, static_cast<std::size_t>(count), ids.data());
    for (ssize_t i = 0; i < got; ++i) {
        Handle file(H5Iget_file_id(ids[static_cast<std::size_t>(i)]), H5Fclose);
        unsigned intent = 0;
        if (!file.valid() || H5Fget_intent(file.get(), &intent) < 0 || !(intent & H5F_ACC_RDWR)) continue;
        f(file.get(), detail::sec2_descriptor(file.get()));
    }
    H5Eclear2(H5E_DEFAULT);
}
}  // namespace

void detail::flush_writers_of(const std::string& file) {
    struct stat want {};
    if (::stat(file.c_str(), &want) != 0) return;
    Hdf5Lock lock;
    ErrorSilencer quiet;
    for_each_writer([&](hid_t id, int fd) {
        struct stat have {};
        if (fd >= 0) {
            if (::fstat(fd, &have) != 0) return;
        } else {
            const ssize_t length = H5Fget_name(id, nullptr, 0);
            if (length <= 0) return;
            std::string name(static_cast<std::size_t>(length) + 1, '\0');
            H5Fget_name(id, name.data(), name.size());
            if (::stat(name.c_str(), &have) != 0) return;
        }
        if (have.st_dev == want.st_dev && have.st_ino == want.st_ino) H5Fflush(id, H5F_SCOPE_LOCAL);
    });
}

std::vector<int> detail::writer_descriptors() {
    Hdf5Lock lock;
    ErrorSilencer quiet;
    std::vector<int> fds;
    for_each_writer([&](hid_t, int fd) {
        if (fd >= 0) fds.push_back(fd);
    });
    return fds;
}

void detail::keep_read_only(const std::vector<int>& fds) {
    for (const int fd : fds) {
        // The same file, opened again read-only: HDF5 reads it as before,
        // and a flush fails (EBADF) instead of writing. Failing that (no
        // /proc), a pipe, on which pread and pwrite both fail (ESPIPE): a
        // read is an error row (/dev/null would read as zeros), and the
        // file is untouched.
        int copy = ::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY | O_CLOEXEC);
        int ends[2] = {-1, -1};
        if (copy < 0 && ::pipe(ends) == 0) {
            copy = ends[0];
            ::close(ends[1]);
        }
        if (copy < 0) continue;  // no descriptor left for either: the child's own open fails first
        ::dup2(copy, fd);
        ::close(copy);
    }
}

Handle detail::open_hdf5(const std::string& file, const std::shared_ptr<const std::string>& image) {
    return open_file(file, image);
}
ListedHessian detail::describe_dataset(hid_t d, const std::string& file, const std::string& path) {
    return describe(d, file, path);
}
std::string detail::read_object_attributes(hid_t obj, Attributes& attrs) { return read_attributes(obj, attrs); }

detail::AttributeScope::AttributeScope(std::vector<UnreadAttribute>* into, const std::vector<UnreadAttribute>* listed) {
    if (attribute_state.active) return;
    attribute_state.into = into;
    attribute_state.listed = listed;
    attribute_state.active = true;
    const auto* entries = into ? into : listed;
    for (std::size_t i = 0; entries && i < entries->size(); ++i)
        attribute_state.index.emplace(std::make_pair((*entries)[i].name, (*entries)[i].object), i);
    owner_ = true;
}
detail::AttributeScope::~AttributeScope() {
    if (owner_) {
        attribute_state.into = nullptr;
        attribute_state.listed = nullptr;
        attribute_state.index.clear();
        attribute_state.active = false;
    }
}
std::string detail::hdf5_type_name(hid_t type) { return type_name(type); }
std::string detail::numeric_layout_problem(hid_t type) { return layout_problem(type); }

namespace {
// Bit for bit (a NaN attribute is the same NaN when the file is unchanged).
bool same_number(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }
bool same_number(const std::optional<double>& a, const std::optional<double>& b) {
    return a.has_value() == b.has_value() && (!a || same_number(*a, *b));
}
// The attributes a dataset has now against those listed for it. A block of
// a `blocks` structure is listed with its whole's step, loss and threshold
// where it has none (Attributes::inherited): those it took may be absent
// now; any other must be as listed. (The whole's stated error is kept
// apart, in whole_error, which is never read from the block.)
bool same_attributes(const Attributes& now, const Attributes& listed) {
    const auto agrees = [&](const std::optional<double>& a, const std::optional<double>& b, const char* name) {
        return same_number(a, b) ||
               (!a && std::find(listed.inherited.begin(), listed.inherited.end(), name) != listed.inherited.end());
    };
    const Attributes& a = now;
    const Attributes& b = listed;
    if (!agrees(a.step, b.step, "step") || !agrees(a.loss, b.loss, "loss") ||
        !agrees(a.loss_threshold, b.loss_threshold, "loss_threshold") ||
        !same_number(a.hessian_error, b.hessian_error) || a.name != b.name || a.strings != b.strings ||
        a.numbers.size() != b.numbers.size())
        return false;
    for (const auto& [key, v] : a.numbers) {
        const auto it = b.numbers.find(key);
        if (it == b.numbers.end() || !same_number(v, it->second)) return false;
    }
    return true;
}
}  // namespace

bool detail::same_attributes_as_listed(const Attributes& now, const Attributes& listed) {
    return same_attributes(now, listed);
}

bool detail::wider_range_than_double(hid_t type) {
    std::size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0;
    if (H5Tget_class(type) != H5T_FLOAT || H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) < 0 || esize > 62)
        return false;
    const double ebias = static_cast<double>(H5Tget_ebias(type));
    return std::ldexp(1.0, static_cast<int>(esize)) - 2 - ebias > 1023 || 1 - ebias < -1022;
}

namespace {

std::string position(std::size_t i, std::size_t j, bool one_d) {
    return one_d ? "[" + std::to_string(i) + "]" : "[" + std::to_string(i) + ", " + std::to_string(j) + "]";
}

std::string long_double_text(long double v) {
    char buf[48];
    const CLocale c;
    std::snprintf(buf, sizeof buf, "%.6Lg", v);
    return buf;
}

}  // namespace

void detail::check_float64_range(hid_t d, const double* values, std::size_t rows, std::size_t cols,
                                 std::size_t start0, std::size_t start1, const std::string& where) {
    Handle type(H5Dget_type(d), H5Tclose);
    if (!type.valid() || !detail::wider_range_than_double(type.get())) return;
    Handle space(H5Dget_space(d), H5Sclose);
    const bool one_d = space.valid() && H5Sget_simple_extent_ndims(space.get()) == 1;
    const std::string stored = type_name(type.get());
    // The stored value at box position (r, c), read as a long double.
    auto stored_at = [&](std::size_t r, std::size_t c) {
        long double v = 0;
        const hsize_t start[2] = {start0 + r, start1 + c}, count[2] = {1, 1};
        read_box(d, H5T_NATIVE_LDOUBLE, start, count, &v, where);
        return v;
    };
    double top = 0;
    for (std::size_t k = 0; k < rows * cols; ++k) {
        if (!std::isfinite(values[k])) {
            const long double v = stored_at(k / cols, k % cols);
            if (std::isfinite(v))
                throw InputError(where + ": value " + long_double_text(v) + " at " +
                                 position(start0 + k / cols, start1 + k % cols, one_d) + " is beyond float64's range (" +
                                 stored + " holds it; basinvol computes in float64): rescale the Hessian when writing");
            return;  // stored as inf or NaN: the values' check names it
        }
        top = std::max(top, std::abs(values[k]));
    }
    if (top >= std::numeric_limits<double>::min()) return;
    // All zeros and subnormals as float64: were they so as stored?
    long double largest = 0;
    std::size_t at = 0;
    const std::size_t band = std::max<std::size_t>(1, (std::size_t(1) << 20) / std::max<std::size_t>(cols, 1));
    std::vector<long double> panel;
    for (std::size_t r = 0; r < rows; r += band) {
        const std::size_t h = std::min(band, rows - r);
        panel.assign(h * cols, 0.0L);
        const hsize_t start[2] = {start0 + r, start1}, count[2] = {h, cols};
        read_box(d, H5T_NATIVE_LDOUBLE, start, count, panel.data(), where);
        for (std::size_t k = 0; k < panel.size(); ++k)
            if (std::fabs(panel[k]) > largest) largest = std::fabs(panel[k]), at = r * cols + k;
    }
    if (largest > 0)
        throw InputError(where + ": its largest value, " + long_double_text(largest) + " at " +
                         position(start0 + at / cols, start1 + at % cols, one_d) +
                         ", lies under float64's normal range (2.2e-308; " + stored +
                         " holds it, basinvol computes in float64): rescale the Hessian when writing");
}

void detail::check_written(hid_t d, const std::string& where) {
    // Created and never written (a writer that died before its first
    // write): every value would be the fill value, a Hessian of zeros that
    // ranks first (or a factor or diagonal of zeros: flat directions).
    // (Some chunks written are read, the rest as the fill value.) Checked
    // at the read, after the memory budget has refused a declared shape
    // that could never be read.
    Handle dcpl(H5Dget_create_plist(d), H5Pclose);
    const H5D_layout_t layout = dcpl.valid() ? H5Pget_layout(dcpl.get()) : H5D_LAYOUT_ERROR;
    H5D_space_status_t status{};
    if ((layout == H5D_CONTIGUOUS || layout == H5D_CHUNKED) && H5Pget_external_count(dcpl.get()) == 0 &&
        H5Dget_space_status(d, &status) >= 0 && status == H5D_SPACE_STATUS_NOT_ALLOCATED)
        throw InputError(where +
                         ": the dataset was never written (no storage is allocated: every value would be its fill "
                         "value); a writer that did not finish? Write its values, zeros included");
}

void detail::check_as_listed(hid_t d, const HessianInfo& info, bool attributes) {
    const auto listed = AttributeScope::skip(info.unread_attributes);
    const std::string changed = " (the file changed after it was listed)";
    const std::size_t whole = info.window ? info.window->of_n : info.n;
    Handle space(H5Dget_space(d), H5Sclose);
    hsize_t dims[2] = {0, 0};
    if (!space.valid() || H5Sget_simple_extent_ndims(space.get()) != 2 ||
        H5Sget_simple_extent_dims(space.get(), dims, nullptr) != 2 || dims[0] != whole || dims[1] != whole)
        throw InputError(info.source() + ": the dataset is no longer the " + std::to_string(whole) + " x " +
                         std::to_string(whole) + " matrix that was listed" + changed);
    Handle type(H5Dget_type(d), H5Tclose);
    const std::string now =
        type.valid() ? detail::carried_type(d, info.file, {type_eps(type.get()), type_name(type.get())}).second : "unreadable";
    if (now != info.stored_type)
        throw InputError(info.source() + ": the dataset's type is no longer the " + info.stored_type +
                         " that was listed (it is " + now + ")" + changed);
    check_written(d, info.source());
    if (info.window || !attributes) return;  // a block's row keeps what its listing made of the dataset's attributes
    Attributes attrs;
    read_attributes(d, attrs);
    if (!same_attributes(attrs, info.attrs))
        throw InputError(info.source() + ": the dataset's attributes (step, loss_threshold, ...) are no longer those "
                                         "that were listed" + changed);
}

std::size_t physical_memory_bytes() {
    long pages = ::sysconf(_SC_PHYS_PAGES);
    long size = ::sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || size <= 0) return 0;
    return static_cast<std::size_t>(pages) * static_cast<std::size_t>(size);
}

std::vector<ListedHessian> detail::list_hessians_here(const Source& source) {
    Hdf5Lock lock;
    ErrorSilencer quiet;
    Handle file = open_file(source.file, source.image);
    std::string path = normalize_object_path(source.path);
    std::string where = source.file + ":" + path;
    if (path != "/") {
        // Check each link on the way so that the message names what is missing.
        for (std::size_t pos = 1; pos <= path.size(); ++pos) {
            if (pos < path.size() && path[pos] != '/') continue;
            std::string part = path.substr(0, pos);
            if (H5Lexists(file.get(), part.c_str(), H5P_DEFAULT) <= 0)
                fail_at(source.file + ":" + part, "no such object in file" + nearest_names(file.get(), part), false);
            if (H5Oexists_by_name(file.get(), part.c_str(), H5P_DEFAULT) <= 0)
                fail_at(source.file + ":" + part, broken_link(file.get(), part), false);
        }
    }
    H5O_info_t oi{};
    if (H5Oget_info_by_name2(file.get(), path.c_str(), &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0)
        fail_at(where, "cannot open object");
    std::vector<ListedHessian> out;
    if (oi.type == H5O_TYPE_DATASET) {
        Handle d(H5Dopen2(file.get(), path.c_str(), H5P_DEFAULT), H5Dclose);
        if (!d.valid()) fail_at(where, "cannot open dataset");
        if (!detail::structure_kind(d.get(), where).empty())
            out.push_back(detail::describe_structured(d.get(), source.file, path));
        else {
            out.push_back(describe(d.get(), source.file, path));
            refuse_structure_factor(d.get(), path, out.back());
        }
        out.back().image = source.image;
        return out;
    }
    if (oi.type != H5O_TYPE_GROUP) fail_at(where, "object is neither a dataset nor a group", false);
    Handle g(H5Gopen2(file.get(), path.c_str(), H5P_DEFAULT), H5Gclose);
    if (!g.valid()) fail_at(where, "cannot open group");
    if (!detail::structure_kind(g.get(), where).empty()) {
        out.push_back(detail::describe_structured(g.get(), source.file, path));
        out.back().image = source.image;
        return out;
    }
    Walker w{file.get(), source.file, &out, {}, {}, {}, {}};
    w.seen.insert(key_of(w, file.get(), path.c_str(), oi));
    walk_group(w, std::make_shared<Handle>(std::move(g)), path == "/" ? "" : path);
    walk_links(w);
    if (out.empty()) {
        std::string why = "no Hessian found: the group holds no 2-D dataset";
        for (std::size_t i = 0; i < w.skipped.size() && i < 3; ++i) why += (i ? "; " : " (") + w.skipped[i];
        if (!w.skipped.empty()) why += w.skipped.size() > 3 ? "; ...)" : ")";
        fail_at(where, why, false);
    }
    std::sort(out.begin(), out.end(),
              [](const ListedHessian& a, const ListedHessian& b) { return a.info.dataset < b.info.dataset; });
    for (auto& listed : out) listed.image = source.image;
    return out;
}

std::size_t memory_budget(const ReadOptions& opt) {
    const std::size_t budget = opt.max_bytes ? opt.max_bytes : physical_memory_bytes() / 2;
    return budget ? budget : std::size_t(1) << 33;
}

void check_memory_budget(const HessianInfo& info, const ReadOptions& opt) {
    const std::size_t n = info.n;
    const bool f32 = held_as_float32(info.stored_type);
    const std::size_t elem = f32 ? sizeof(float) : sizeof(double);
    const std::size_t budget = memory_budget(opt);
    // Refuse before allocating: n² elements must fit the budget (no overflow: n < 2^32 checked first).
    if (n > (std::size_t(1) << 31) || n * n > budget / elem) {
        std::ostringstream s;
        s.precision(3);
        s << "matrix of n = " << n << " needs " << double(n) * double(n) * double(elem) / 1e9
          << " GB in memory, over the budget of " << double(budget) / 1e9 << " GB (option max_memory)";
        throw InputError(info.source() + ": " + s.str());
    }
}

namespace {

// Under an address-space limit, what HDF5 kept for a read (a chunk index's
// nodes, in its free lists once the file closes) goes back to the
// allocator after it: the next Hessian needs that room.
struct CollectAfterRead {
    ~CollectAfterRead() {
        if (detail::address_room() != SIZE_MAX) H5garbage_collect();
    }
};

// The listed dataset's n×n values into buf (float or double), checked to be
// of the listed shape. Throws InputError.
void read_values(const HessianInfo& info, const ReadOptions& opt, bool f32, void* buf) {
    const std::size_t n = info.n;
    detail::Hdf5Lock lock;
    CollectAfterRead collect;
    ErrorSilencer quiet;
    Handle file = open_file(info.file, opt.image);
    const auto& window = info.window;
    Handle d(H5Dopen2(file.get(), (window ? window->dataset : info.dataset).c_str(), H5P_DEFAULT), H5Dclose);
    if (!d.valid()) fail_at(info.source(), "cannot open dataset");
    detail::check_as_listed(d.get(), info);
    detail::check_chunk_memory(d.get(), n * n * (f32 ? sizeof(float) : sizeof(double)), memory_budget(opt),
                               info.source());
    Handle space(H5Dget_space(d.get()), H5Sclose);
    if (!space.valid()) fail_at(info.source(), "cannot read dataset shape");
    const hid_t type = f32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE;
    if (window) {
        // The diagonal block's rows and columns only.
        const hsize_t start[2] = {window->offset, window->offset}, count[2] = {n, n};
        const detail::Box box{{start[0], start[1]}, {count[0], count[1]}};
        detail::check_chunks(d.get(), 0, 1, info.source(), &box);  // as read_chunks_parallel checks them
        detail::read_box(d.get(), type, start, count, buf, info.source());
        if (!f32)
            detail::check_float64_range(d.get(), static_cast<const double*>(buf), n, n, window->offset, window->offset,
                                        info.source());
        return;
    }
    if (!detail::read_chunks_parallel(d.get(), n, f32, buf, info.source()) &&
        !detail::read_contiguous_parallel(d.get(), n, f32, buf, info.source())) {
        detail::check_chunks(d.get(), 0, 1, info.source());  // a layout it does not take, deflated all the same
        const hsize_t start[2] = {0, 0}, count[2] = {n, n};
        detail::read_box(d.get(), type, start, count, buf, info.source());
    }
    if (!f32) detail::check_float64_range(d.get(), static_cast<const double*>(buf), n, n, 0, 0, info.source());
}

// The listed dataset's values mapped from its file (ReadOptions::map), or
// nothing when they cannot be (another layout, type or driver; see
// contiguous_values and MappedValues::map): they are then read.
std::shared_ptr<detail::MappedValues> map_values(const HessianInfo& info, const ReadOptions& opt, bool f32) {
    const std::size_t n = info.n;
    detail::Hdf5Lock lock;
    CollectAfterRead collect;
    ErrorSilencer quiet;
    Handle file = open_file(info.file, opt.image);
    Handle d(H5Dopen2(file.get(), info.dataset.c_str(), H5P_DEFAULT), H5Dclose);
    if (!d.valid()) fail_at(info.source(), "cannot open dataset");
    detail::check_as_listed(d.get(), info);
    const auto at = detail::contiguous_values(d.get(), n, f32);
    if (!at) return nullptr;
    auto values =
        detail::MappedValues::map(info.file, at->fd, at->offset, n * n * (f32 ? sizeof(float) : sizeof(double)));
    if (values && !f32)
        detail::check_float64_range(d.get(), static_cast<const double*>(values->data()), n, n, 0, 0, info.source());
    return values;
}

}  // namespace

Hessian read_hessian(const HessianInfo& info, const ReadOptions& opt) {
    const std::size_t n = info.n;
    const bool f32 = held_as_float32(info.stored_type);
    check_memory_budget(info, opt);
    if (opt.map && !info.window && !opt.image && opt.isolate == ReadOptions::Isolation::never)
        if (auto values = map_values(info, opt, f32)) return Hessian::validated(info, std::move(values), f32, opt);
    const auto N = static_cast<Eigen::Index>(n);
    Eigen::MatrixXf m32;
    Eigen::MatrixXd m64;
    if (f32) m32.resize(N, N);
    else m64.resize(N, N);
    void* buf = f32 ? static_cast<void*>(m32.data()) : static_cast<void*>(m64.data());
    const std::size_t bytes = n * n * (f32 ? sizeof(float) : sizeof(double));
    detail::advise_huge_pages(buf, bytes);
    detail::read_isolated(info.source(), bytes, opt, [&](void* to) { read_values(info, opt, f32, to); }, buf);
    return f32 ? Hessian::validated(info, std::move(m32), opt) : Hessian::validated(info, std::move(m64), opt);
}

}  // namespace basinvol
