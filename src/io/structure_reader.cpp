// Structured Hessians in HDF5 (docs/structured.md): describing the layout
// (at listing time, in the listing child, and again before analysis) and
// reading each part's values. Every rule the layout breaks is one InputError
// naming the file, the object and the value.
#include "chunk_reader.hpp"
#include "hdf5_detail.hpp"

#include <basinvol/error.hpp>
#include <basinvol/io/structure.hpp>
#include <basinvol/names.hpp>
#include <basinvol/solve/spectrum.hpp>

#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <set>
#include <sstream>

namespace basinvol {
namespace {

using detail::fail_at;
using detail::Handle;

constexpr int max_depth = 16;  // blocks nested deeper than this are refused
constexpr std::size_t max_n = std::size_t(1) << 53;  // a structure's n, exact in a double
// Parts visited in one walk: a member linked in twice is walked twice, so
// nested groups of hard links could otherwise make a walk of k^16 parts.
constexpr std::size_t max_parts = 100000;

// A part's dimension past 2^53 is refused (no real Hessian; sums of them wrap).
void check_dimension(std::size_t n, const std::string& where, const char* what) {
    if (n > max_n) fail_at(where, std::string(what) + " = " + std::to_string(n) + " passes 2^53", false);
}

std::string shape_text(const std::vector<hsize_t>& dims) {
    std::ostringstream s;
    for (std::size_t i = 0; i < dims.size(); ++i) s << (i ? "x" : "") << dims[i];
    return dims.empty() ? std::string("scalar") : s.str();
}

struct DatasetShape {
    std::vector<hsize_t> dims;
    std::string type;
    double eps = 0;
    std::uint64_t unwritten = 0;  // chunks never written (read as the fill value)
};

// Shape and numeric type of dataset `d`; throws when it is not numeric or its
// values lie in external files that cannot be read safely.
DatasetShape dataset_shape(hid_t d, const std::string& where, std::vector<std::string>* reads) {
    DatasetShape s;
    // `where` is FILE:/PATH (a path may hold ':', a path starts with '/').
    if (std::string why = detail::values_problem(d, where.substr(0, where.find(":/")), reads); !why.empty())
        fail_at(where, why, false);
    Handle space(H5Dget_space(d), H5Sclose);
    Handle type(H5Dget_type(d), H5Tclose);
    if (!space.valid() || !type.valid()) fail_at(where, "cannot read dataset shape or type");
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 0) fail_at(where, "cannot read dataset shape");
    s.dims.resize(static_cast<std::size_t>(rank));
    if (rank > 0 && H5Sget_simple_extent_dims(space.get(), s.dims.data(), nullptr) < 0)
        fail_at(where, "cannot read dataset shape");
    s.type = detail::hdf5_type_name(type.get());
    const H5T_class_t cls = H5Tget_class(type.get());
    if (cls == H5T_FLOAT) {
        std::size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0;
        if (H5Tget_fields(type.get(), &spos, &epos, &esize, &mpos, &msize) < 0) fail_at(where, "cannot read float type");
        s.eps = std::ldexp(1.0, -static_cast<int>(std::min<std::size_t>(msize, 52)));
    } else if (cls == H5T_INTEGER) {
        s.eps = std::ldexp(1.0, -52);  // integers up to 2^53 convert exactly
    } else {
        fail_at(where, "dataset type is " + s.type + ", not a number (a structure's arrays hold floats or integers)",
                false);
    }
    std::tie(s.eps, s.type) = detail::carried_type(d, where.substr(0, where.find(":/")), {s.eps, s.type});
    s.unwritten = detail::unwritten_chunks(d);
    if (s.unwritten) {
        if (std::string why = detail::unwritten_fill_problem(d); !why.empty()) fail_at(where, why, false);
    }
    return s;
}

void coarsest(StructurePart& into, const std::string& type, double eps, std::size_t work, const std::string& what = {}) {
    if (eps > into.stored_eps) {
        into.stored_eps = eps;
        into.stored_type = type;
    }
    if (work > into.work_bytes) {
        into.work_bytes = work;
        into.work_part = what;
    }
}

// A square part's working set joins the two largest under `into`.
void add_square(StructurePart& into, std::size_t bytes, const std::string& what) {
    std::size_t* top = into.square_bytes;
    if (bytes > top[0]) {
        top[1] = top[0];
        top[0] = bytes;
        into.square_part = what;
    } else if (bytes > top[1]) {
        top[1] = bytes;
    }
}

std::size_t elem_bytes(double eps) { return eps > std::ldexp(1.0, -30) ? sizeof(float) : sizeof(double); }

// A square part's working set: its stored values, LAPACK's float64 copy and
// the two-stage reduction's workspace.
std::size_t square_bytes(std::size_t n, double eps) {
    return add_bytes(bytes_of(double(n) * double(n) * double(elem_bytes(eps) + sizeof(double))),
                     two_stage_workspace_bytes(n));
}

double scale_of(hid_t obj, const std::string& where) {
    Attributes attrs;
    const std::string problem = detail::read_object_attributes(obj, attrs);
    if (!problem.empty()) fail_at(where, problem, false);
    // A number written as text is read as that number; anything else (text,
    // an array, another type) is not one.
    if (const auto why = not_a_number(attrs, "scale")) fail_at(where, "attribute scale " + *why, false);
    auto it = attrs.numbers.find("scale");
    if (it == attrs.numbers.end()) return 1.0;
    if (!std::isfinite(it->second) || it->second == 0) {
        std::ostringstream s;
        s << "attribute scale must be a finite nonzero number, got " << it->second;
        fail_at(where, s.str(), false);
    }
    return it->second;
}

// The names of group `g`'s members, in name order.
std::vector<std::string> member_names(hid_t g, const std::string& where) {
    std::vector<std::string> names;
    auto collect = [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
        static_cast<std::vector<std::string>*>(data)->emplace_back(name);
        return 0;
    };
    hsize_t idx = 0;
    if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect, &names) < 0) fail_at(where, "cannot list group");
    return names;
}

// Opens the dataset `name` of group `g` (which must exist) with its shape.
std::pair<Handle, DatasetShape> member_dataset(hid_t g, const std::string& name, const std::string& where,
                                               std::vector<std::string>* reads) {
    const std::string at = member_of(where, name);
    if (H5Lexists(g, name.c_str(), H5P_DEFAULT) <= 0) {
        // What the group holds instead: a misspelt name (g for G) shows.
        const auto names = member_names(g, where);
        std::string held;
        for (std::size_t i = 0; i < names.size() && i < 8; ++i) held += (i ? ", " : "") + names[i];
        if (names.size() > 8) held += ", ...";
        fail_at(where, "has no dataset " + name + (names.empty() ? " (the group is empty)" : " (it holds " + held + ")"),
                false);
    }
    Handle d(H5Dopen2(g, name.c_str(), H5P_DEFAULT), H5Dclose);
    if (!d.valid()) {
        if (std::string why = detail::blocked_link(g, name); !why.empty()) fail_at(at, why, false);
        fail_at(at, "cannot open dataset " + name + " (is it a dataset?)");
    }
    // These hold for a Hessian; on G, A or B they would be read by no one and
    // the answer would silently go without them (a scale on G is not H's).
    // (in any letter case, and names meant as scale: Scale, scaling)
    for (const auto& key : detail::attribute_names(d.get())) {
        const std::string lower = detail::lower_case(key);
        for (const char* read : {"scale", "hessian_error", "loss_threshold", "structure", "step", "loss", "name"})
            if (lower == read || detail::meant_as_scale(key))
                fail_at(at, "attribute " + key + " on " + name + " is not read: it goes on the " +
                                (name == "G" ? "factor" : "kron") + " group, whose H it describes", false);
    }
    DatasetShape s = dataset_shape(d.get(), at, reads);
    return {std::move(d), std::move(s)};
}

struct Walk {
    std::string file;
    // The groups from the structure down to the part being walked (file,
    // address): a member linking back to one of them is a cycle, refused;
    // a member linked twice elsewhere is a part twice, like a dataset.
    std::vector<std::pair<unsigned long, haddr_t>> above;
    std::vector<std::string> reads;  // other files the parts' values are read from
    // The largest hessian_error a part below the structure states: the
    // whole's error is a direct sum of the parts', its norm their largest.
    std::optional<double> part_error;
    std::size_t parts = 0;  // visited so far
    std::uint64_t unwritten = 0;  // chunks of the parts' datasets never written
};

// A part's own stated error (hessian_error) into w.part_error; a malformed
// one is refused, as on a whole Hessian.
void note_part_error(Walk& w, hid_t obj, const std::string& where) {
    if (H5Aexists(obj, "hessian_error") <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return;
    }
    Attributes attrs;
    const std::string problem = detail::read_object_attributes(obj, attrs);
    if (!attrs.hessian_error) fail_at(where, problem.empty() ? "attribute hessian_error cannot be read" : problem, false);
    w.part_error = std::max(w.part_error.value_or(0.0), *attrs.hessian_error);
}

StructurePart walk(Walk& w, hid_t obj, const std::string& path, int depth);

// A factor holds G, a Kronecker product A and B, and nothing else: a third
// factor C would be silently left out of the product.
void only_members(hid_t g, const std::string& where, const std::string& expected) {
    for (const auto& name : member_names(g, where))
        if (expected == "G" ? name != "G" : name != "A" && name != "B")
            fail_at(where, "holds " + name + "; a " + (expected == "G" ? "factor" : "kron") + " group holds " +
                               expected + " only", false);
}

// A square part's attributes, which read_square_part's description of it
// reads: one that cannot be read is met here, by the listing (AttributeScope).
void read_as_square_part(hid_t d) {
    Attributes attrs;
    detail::read_object_attributes(d, attrs);
}

StructurePart square_dataset(Walk& w, hid_t d, const std::string& path, const std::string& where) {
    DatasetShape s = dataset_shape(d, where, &w.reads);
    if (s.dims.size() != 2 || s.dims[0] != s.dims[1] || s.dims[0] == 0)
        fail_at(where,
                "a dense part must be a square 2-D dataset, got shape " + shape_text(s.dims) +
                    (s.dims.size() == 1 ? " (if it is a diagonal part, give it the attribute structure = "
                                          "\"diagonal\": docs/structured.md)"
                                        : ""),
                false);
    w.unwritten += s.unwritten;
    read_as_square_part(d);
    StructurePart p;
    p.kind = PartKind::dense;
    p.path = path;
    p.n = static_cast<std::size_t>(s.dims[0]);
    coarsest(p, s.type, s.eps, 0);
    add_square(p, square_bytes(p.n, s.eps), path + ", " + shape_text(s.dims));
    return p;
}

StructurePart blocks(Walk& w, hid_t g, const std::string& path, const std::string& where, int depth) {
    const auto names = member_names(g, where);
    if (names.empty()) fail_at(where, "structure blocks has no members", false);
    StructurePart p;
    p.kind = PartKind::blocks;
    p.path = path;
    for (const auto& name : names) {
        const std::string member = member_of(path, name);
        Handle o(H5Oopen(g, name.c_str(), H5P_DEFAULT), H5Oclose);
        if (!o.valid()) {
            if (std::string why = detail::blocked_link(g, name); !why.empty()) fail_at(w.file + ":" + member, why, false);
            fail_at(w.file + ":" + member, "cannot open blocks member (dangling link?)");
        }
        StructurePart child = walk(w, o.get(), member, depth + 1);
        if (child.n > max_n - p.n)
            fail_at(w.file + ":" + member, "the structure's n passes 2^53 with this member (n = " +
                                               std::to_string(child.n) + ")", false);
        p.n += child.n;
        coarsest(p, child.stored_type, child.stored_eps, child.work_bytes, child.work_part);
        add_square(p, child.square_bytes[0], child.square_part);
        add_square(p, child.square_bytes[1], child.square_part);
        p.parts.push_back(std::move(child));
    }
    return p;
}

// The path obj was opened by in its own file (where an external link led,
// the path there), or `fallback`.
std::string own_name(hid_t obj, const std::string& fallback) {
    const ssize_t len = H5Iget_name(obj, nullptr, 0);
    if (len <= 0) return fallback;
    std::string name(static_cast<std::size_t>(len) + 1, '\0');
    if (H5Iget_name(obj, name.data(), name.size()) < 0) return fallback;
    name.resize(static_cast<std::size_t>(len));
    return name;
}

StructurePart walk(Walk& w, hid_t obj, const std::string& path, int depth) {
    const std::string where = w.file + ":" + path;
    if (depth > max_depth) fail_at(where, "blocks nested more than " + std::to_string(max_depth) + " deep", false);
    if (++w.parts > max_parts) fail_at(where, "the structure has more than " + std::to_string(max_parts) + " parts", false);
    H5O_info_t oi{};
    if (H5Oget_info2(obj, &oi, H5O_INFO_BASIC) < 0) fail_at(where, "cannot open object");
    const bool group = oi.type == H5O_TYPE_GROUP;
    const std::pair<unsigned long, haddr_t> key{oi.fileno, oi.addr};
    if (group && std::find(w.above.begin(), w.above.end(), key) != w.above.end())
        fail_at(where, "blocks member links back to a group above it (a cycle)", false);
    const std::string kind = detail::structure_kind(obj, where);
    if (const std::string why = detail::misnamed_attribute(obj, kind == "factor" || kind == "kron"); !why.empty())
        fail_at(where, why, false);
    if (depth > 0) note_part_error(w, obj, where);
    if (!kind.empty() && !is_structure_kind(kind)) {
        const bool described = kind == "(empty)" || kind.rfind("(not a string", 0) == 0;  // structure_kind's words
        fail_at(where, "attribute structure must be blocks, factor, kron or diagonal, got " +
                           (described ? kind : "'" + kind + "'"), false);
    }
    if (kind != "factor" && kind != "kron" && H5Aexists(obj, "scale") > 0)
        fail_at(where, "attribute scale applies to factor and kron parts only; a " +
                           (kind.empty() ? std::string("dense") : kind) +
                           " part holds its Hessian's values as they are (scale them when writing)", false);
    H5Eclear2(H5E_DEFAULT);
    if (kind.empty()) {
        if (group) fail_at(where, "a group inside a structure needs a structure attribute (blocks, factor or kron)", false);
        // A member linked to another structure's G, A or B is a matrix of that
        // Hessian, not a block: resolved from the name it was opened by in its
        // own file (the structure may have been reached through an external link).
        if (const std::string why = detail::structure_factor_problem(obj, own_name(obj, path)); !why.empty())
            fail_at(where, why + " (a blocks member)", false);
        return square_dataset(w, obj, path, where);
    }
    if (kind == "diagonal") {
        if (group) fail_at(where, "structure diagonal must be a 1-D dataset, not a group", false);
        DatasetShape s = dataset_shape(obj, where, &w.reads);
        if (s.dims.size() != 1 || s.dims[0] == 0)
            fail_at(where, "structure diagonal must be a non-empty 1-D dataset, got shape " + shape_text(s.dims), false);
        w.unwritten += s.unwritten;
        StructurePart p;
        p.kind = PartKind::diagonal;
        p.path = path;
        p.n = static_cast<std::size_t>(s.dims[0]);
        check_dimension(p.n, where, "n");
        coarsest(p, s.type, s.eps, bytes_of(double(p.n) * sizeof(double)), path + ", " + shape_text(s.dims));
        return p;
    }
    if (!group) fail_at(where, "structure " + kind + " must be a group, not a dataset", false);
    if (kind == "blocks") {
        w.above.push_back(key);
        StructurePart p = blocks(w, obj, path, where, depth);
        w.above.pop_back();
        return p;
    }
    StructurePart p;
    p.path = path;
    p.scale = scale_of(obj, where);
    if (kind == "factor") {
        auto [g, s] = member_dataset(obj, "G", where, &w.reads);
        only_members(obj, where, "G");
        w.unwritten += s.unwritten;
        if (s.dims.size() != 2 || s.dims[0] == 0 || s.dims[1] == 0)
            fail_at(member_of(where, "G"), "G must be a non-empty 2-D dataset (m x n), got shape " + shape_text(s.dims), false);
        p.kind = PartKind::factor;
        p.m = static_cast<std::size_t>(s.dims[0]);
        p.n = static_cast<std::size_t>(s.dims[1]);
        check_dimension(p.n, member_of(where, "G"), "n (G's columns)");
        check_dimension(p.m, member_of(where, "G"), "m (G's rows)");
        const std::size_t k = std::min(p.m, p.n);  // G, a widened panel, the Gram matrix
        coarsest(p, s.type, s.eps,
                 bytes_of(double(p.m) * double(p.n) * double(elem_bytes(s.eps)) + 2048.0 * double(k) * sizeof(double) +
                          double(k) * double(k) * sizeof(double)),
                 member_of(path, "G") + ", " + shape_text(s.dims));
        return p;
    }
    p.kind = PartKind::kron;
    for (const char* name : {"A", "B"}) {
        auto [d, s] = member_dataset(obj, name, where, &w.reads);
        if (s.dims.size() != 2 || s.dims[0] != s.dims[1] || s.dims[0] == 0)
            fail_at(member_of(where, name), std::string(name) + " must be a square 2-D dataset, got shape " + shape_text(s.dims), false);
        (name[0] == 'A' ? p.a : p.b) = static_cast<std::size_t>(s.dims[0]);
        w.unwritten += s.unwritten;
        read_as_square_part(d.get());
        coarsest(p, s.type, s.eps, 0);
        add_square(p, square_bytes(s.dims[0], s.eps), member_of(path, name) + ", " + shape_text(s.dims));
    }
    only_members(obj, where, "A and B");
    if (p.a > max_n / p.b)
        fail_at(where, "n = a·b = " + std::to_string(p.a) + " x " + std::to_string(p.b) + " passes 2^53", false);
    p.n = p.a * p.b;
    return p;
}

// Reads a whole numeric dataset as float or double (row-major bytes, `bytes`
// of them), in a child process when opt.isolate says so.
void read_all(const HessianInfo& info, const ReadOptions& opt, const std::string& path, bool f32, std::size_t bytes,
              void* buf) {
    const std::string where = info.file + ":" + path;
    detail::read_isolated(where, bytes, opt, [&](void* to) {
        detail::Hdf5Lock lock;
        detail::ErrorSilencer quiet;
        Handle file = detail::open_hdf5(info.file, opt.image);
        Handle d(H5Dopen2(file.get(), path.c_str(), H5P_DEFAULT), H5Dclose);
        if (!d.valid()) fail_at(where, "cannot open dataset");
        // The size read must be the size listed: a file rewritten in between
        // would otherwise be read into a buffer of another size.
        Handle space(H5Dget_space(d.get()), H5Sclose);
        const hssize_t points = space.valid() ? H5Sget_simple_extent_npoints(space.get()) : -1;
        if (points < 0 || static_cast<std::size_t>(points) * (f32 ? sizeof(float) : sizeof(double)) != bytes)
            throw InputError(where + ": the dataset no longer has the shape that was listed (the file changed "
                                     "after it was listed)");
        detail::check_written(d.get(), where);
        detail::check_chunk_memory(d.get(), bytes, memory_budget(opt), where);
        detail::check_chunks(d.get(), 0, 1, where);  // HDF5's deflate filter takes a corrupt chunk's size on trust
        hsize_t dims[2] = {0, 1};
        const int rank = H5Sget_simple_extent_ndims(space.get());
        const hsize_t start[2] = {0, 0};
        if (rank < 1 || rank > 2 || H5Sget_simple_extent_dims(space.get(), dims, nullptr) != rank)
            detail::fail_to_read(d.get(), where);
        detail::read_box(d.get(), f32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE, start, dims, to, where);
        if (!f32)
            detail::check_float64_range(d.get(), static_cast<const double*>(to), dims[0], rank == 2 ? dims[1] : 1, 0, 0,
                                        where);
    }, buf);
}

// The values of a factor's G or a diagonal as read: finite, and, stored as
// 64-bit integers, under 2^53 (past it float64 may have rounded them, as
// for a dense Hessian). m holds a 2-D dataset transposed (m(i, j) is its
// [j, i]), or a 1-D one.
template <class M>
void check_values(const M& m, const std::string& where, const std::string& stored_type, bool one_d = false) {
    const bool wide = stored_type == "int64" || stored_type == "uint64";
    if (m.allFinite() && !(wide && m.size() > 0 && m.cwiseAbs().maxCoeff() >= std::ldexp(1.0, 53))) return;
    for (Eigen::Index j = 0; j < m.cols(); ++j)
        for (Eigen::Index i = 0; i < m.rows(); ++i)
            if (unreadable_value(stored_type, m(i, j)))
                reject_value(where, stored_type, m(i, j),
                             one_d ? "[" + std::to_string(i) + "]"
                                   : "[" + std::to_string(j) + ", " + std::to_string(i) + "]");
}


}  // namespace

std::string detail::structure_kind(hid_t obj, const std::string& where) {
    // A lookup by name decodes every compact attribute message without
    // building HDF5's attribute table (see read_attributes); a corrupt list
    // fails here and is reported, with its cause, when the object is described.
    (void)where;
    const htri_t has = H5Aexists(obj, "structure");
    if (has <= 0) {
        H5Eclear2(H5E_DEFAULT);
        // (When has < 0 the attributes do not decode: described later, as said.)
        if (has == 0) {
            if (const std::string name = detail::structure_in_other_case(obj); !name.empty())
                return "(named " + name + ")";
        }
        return "";
    }
    Attributes attrs;
    detail::read_object_attributes(obj, attrs);
    auto it = attrs.strings.find("structure");
    if (it != attrs.strings.end()) {
        if (it->second.empty()) return "(empty)";
        // A long value is shown by its head: the message names the rule.
        if (it->second.size() <= 80) return it->second;
        std::size_t cut = 77;  // not inside a UTF-8 character
        while (cut > 0 && (static_cast<unsigned char>(it->second[cut]) & 0xC0) == 0x80) --cut;
        return it->second.substr(0, cut) + "...";
    }
    if (auto number = attrs.numbers.find("structure"); number != attrs.numbers.end()) {
        std::ostringstream s;
        s << "(not a string: the number " << number->second << ")";
        return s.str();
    }
    // Say what it is instead: its type class and how many values.
    std::string what = "a value of another type";
    const hid_t a = H5Aopen(obj, "structure", H5P_DEFAULT);
    if (a >= 0) {
        const hid_t type = H5Aget_type(a), space = H5Aget_space(a);
        const hssize_t count = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
        const std::string name = type >= 0 ? detail::hdf5_type_name(type) : "unknown";
        what = count == 1 ? "a value of type " + name : "an array of " + std::to_string(count) + " values of type " + name;
        if (space >= 0) H5Sclose(space);
        if (type >= 0) H5Tclose(type);
        H5Aclose(a);
    }
    H5Eclear2(H5E_DEFAULT);
    return "(not a string: " + what + ")";
}

// What a structure's spectrum holds once solved, with the cut's sorted copy
// and the measurement's prefix sums: listed values twice (values, the
// sorted copy); a Kronecker part its α and β, a row per α and, per β, its
// sorted copy and prefix sums (about 110 bytes).
std::size_t values_bytes(const StructurePart& p) {
    constexpr std::size_t d = sizeof(double);
    switch (p.kind) {
        case PartKind::blocks: {
            std::size_t sum = 0;
            for (const auto& child : p.parts) sum = add_bytes(sum, values_bytes(child));
            return sum;
        }
        case PartKind::factor: return bytes_of(2.0 * double(std::min(p.m, p.n)) * d);
        case PartKind::kron: return bytes_of((3.0 * double(p.a) + 16.0 * double(p.b)) * d);
        case PartKind::dense:
        case PartKind::diagonal: break;
    }
    return bytes_of(2.0 * double(p.n) * d);
}

namespace {

// The most memory one part that is not square needs on every rank when each
// factor's G is read in slabs across ranks: a factor keeps its k×k Gram.
std::size_t unspread_work_bytes(const StructurePart& p) {
    switch (p.kind) {
        case PartKind::blocks: {
            std::size_t most = 0;
            for (const auto& child : p.parts) most = std::max(most, unspread_work_bytes(child));
            return most;
        }
        case PartKind::factor: {
            const double k = double(std::min(p.m, p.n));
            return bytes_of(k * k * sizeof(double));
        }
        case PartKind::diagonal: return p.work_bytes;
        case PartKind::dense:
        case PartKind::kron: break;  // square parts: square_bytes
    }
    return 0;
}

}  // namespace

std::size_t spread_working_bytes(const StructurePart& root) {
    return add_bytes(std::max(unspread_work_bytes(root), root.square_bytes[0]), values_bytes(root));
}

ListedHessian detail::describe_structured(hid_t obj, const std::string& file, const std::string& path) {
    ListedHessian listed;
    HessianInfo& info = listed.info;
    const auto noted = detail::AttributeScope::record(info.unread_attributes);
    info.file = file;
    info.dataset = path;
    info.identity = detail::object_identity(obj);
    info.structure = detail::structure_kind(obj, file + ":" + path);
    listed.problem = detail::read_object_attributes(obj, info.attrs);
    if (!listed.problem.empty()) return listed;
    try {
        Walk w{file, {}, {}, std::nullopt, 0};
        StructurePart p = walk(w, obj, path, 0);
        info.reads_also = std::move(w.reads);
        info.unwritten_chunks = w.unwritten;
        info.attrs.own_hessian_error = info.attrs.hessian_error;
        if (w.part_error) info.attrs.hessian_error = std::max(info.attrs.hessian_error.value_or(0.0), *w.part_error);
        info.n = p.n;
        info.stored_type = p.stored_type;
        info.stored_eps = p.stored_eps;
        // the largest part while it is solved, and the spectrum's values with
        // the cut's copies (a second square part is solved beside the largest
        // only when the caller's memory holds both: side_by_side_squares)
        info.working_bytes = add_bytes(std::max(p.work_bytes, p.square_bytes[0]), values_bytes(p));
        info.working_part = p.work_bytes >= p.square_bytes[0] ? p.work_part : p.square_part;
    } catch (const InputError& e) {
        // The row names the source; the problem names the part.
        std::string m = e.what();
        const std::string prefix = file + ":";
        listed.problem = m.rfind(prefix, 0) == 0 ? "structure: " + m.substr(prefix.size()) : m;
    }
    return listed;
}

StructurePart describe_structure(const HessianInfo& info, const ReadOptions& opt) {
    detail::Hdf5Lock lock;
    detail::ErrorSilencer quiet;
    const auto listed = detail::AttributeScope::skip(info.unread_attributes);
    Handle file = detail::open_hdf5(info.file, opt.image);
    Handle o(H5Oopen(file.get(), info.dataset.c_str(), H5P_DEFAULT), H5Oclose);
    if (!o.valid()) {
        if (std::string why = detail::blocked_link(file.get(), info.dataset); !why.empty())
            fail_at(info.source(), why, false);
        fail_at(info.source(), "cannot open object");
    }
    Walk w{info.file, {}, {}, std::nullopt, 0};
    StructurePart root = walk(w, o.get(), info.dataset, 0);
    // Its attributes (and its parts' stated errors) must be those listed: a
    // file rewritten in between would be analysed under the old ones.
    Attributes now;
    detail::read_object_attributes(o.get(), now);
    if (w.part_error) now.hessian_error = std::max(now.hessian_error.value_or(0.0), *w.part_error);
    if (!detail::same_attributes_as_listed(now, info.attrs))
        throw InputError(info.source() + ": the structure's attributes (step, loss_threshold, ...) are no longer "
                                         "those that were listed (the file changed after it was listed)");
    return root;
}

Hessian read_square_part(const HessianInfo& info, const std::string& path, const ReadOptions& opt) {
    HessianInfo part;
    {
        detail::Hdf5Lock lock;
        detail::ErrorSilencer quiet;
        const auto skipped = detail::AttributeScope::skip(info.unread_attributes);  // the structure's listing read its parts'
        Handle file = detail::open_hdf5(info.file, opt.image);
        Handle d(H5Dopen2(file.get(), path.c_str(), H5P_DEFAULT), H5Dclose);
        if (!d.valid()) fail_at(info.file + ":" + path, "cannot open dataset");
        ListedHessian listed = detail::describe_dataset(d.get(), info.file, path);
        if (!listed.problem.empty()) throw InputError(listed.info.source() + ": " + listed.problem);
        part = std::move(listed.info);
        part.unread_attributes = info.unread_attributes;
    }
    return read_hessian(part, opt);
}

FactorValues read_factor(const HessianInfo& info, const StructurePart& p, const ReadOptions& opt) {
    const bool f32 = elem_bytes(p.stored_eps) == sizeof(float);
    const std::string path = member_of(p.path, "G"), where = info.file + ":" + path;
    const double bytes = double(p.m) * double(p.n) * double(f32 ? sizeof(float) : sizeof(double));
    if (bytes > double(memory_budget(opt))) {
        std::ostringstream s;
        s.precision(3);
        s << "G of " << p.m << " x " << p.n << " needs " << bytes / 1e9 << " GB in memory, over the budget of "
          << double(memory_budget(opt)) / 1e9 << " GB (option max_memory)";
        throw InputError(where + ": " + s.str());
    }
    FactorValues v;
    const auto n = static_cast<Eigen::Index>(p.n), m = static_cast<Eigen::Index>(p.m);
    if (f32) {
        v.t32.resize(n, m);
        read_all(info, opt, path, true, sizeof(float) * p.m * p.n, v.t32.data());
        check_values(v.t32, where, p.stored_type);
    } else {
        v.t64.resize(n, m);
        read_all(info, opt, path, false, sizeof(double) * p.m * p.n, v.t64.data());
        check_values(v.t64, where, p.stored_type);
    }
    return v;
}

Eigen::VectorXd read_diagonal(const HessianInfo& info, const StructurePart& p, const ReadOptions& opt) {
    Eigen::VectorXd d(static_cast<Eigen::Index>(p.n));
    read_all(info, opt, p.path, false, sizeof(double) * p.n, d.data());
    check_values(d, info.file + ":" + p.path, p.stored_type, true);
    return d;
}

}  // namespace basinvol
