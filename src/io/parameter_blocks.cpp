// The exporter's parameter blocks of a dense Hessian (param_offsets,
// param_sizes, param_names), each listed as the diagonal block it covers.

#include "chunk_reader.hpp"
#include "hdf5_detail.hpp"

#include <basinvol/error.hpp>
#include <basinvol/io/reader.hpp>

#include <hdf5.h>

#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace basinvol {

using detail::fail_at;
using detail::Handle;

namespace {

struct ArrayAttribute {
    Handle attr;
    Handle type;
    std::size_t count = 0;
};

// The attribute `key` of `d` when it exists, as a 1-D array of at most
// `most` values; InputError naming it otherwise.
std::optional<ArrayAttribute> open_array(hid_t d, const char* key, std::size_t most, const std::string& where) {
    const htri_t has = H5Aexists(d, key);
    if (has < 0) fail_at(where, std::string("cannot look up attribute ") + key);
    if (has == 0) return std::nullopt;
    ArrayAttribute a;
    a.attr = Handle(H5Aopen(d, key, H5P_DEFAULT), H5Aclose);
    if (!a.attr.valid()) fail_at(where, std::string("cannot open attribute ") + key);
    a.type = Handle(H5Aget_type(a.attr.get()), H5Tclose);
    Handle space(H5Aget_space(a.attr.get()), H5Sclose);
    if (!a.type.valid() || !space.valid()) fail_at(where, std::string("cannot read attribute ") + key);
    const int ndims = H5Sget_simple_extent_ndims(space.get());
    const hssize_t count = H5Sget_simple_extent_npoints(space.get());
    if (ndims < 0 || count < 0) fail_at(where, std::string("cannot read the shape of attribute ") + key);
    if (ndims > 1)
        throw InputError(where + ": attribute " + key + " must be a 1-D array, got " + std::to_string(ndims) +
                         " dimensions");
    if (count == 0 || std::size_t(count) > most)
        throw InputError(where + ": attribute " + key + " must list between 1 and n = " + std::to_string(most) +
                         " blocks, got " + std::to_string(count));
    a.count = std::size_t(count);
    return a;
}

std::vector<long long> read_integers(const ArrayAttribute& a, const char* key, const std::string& where) {
    if (H5Tget_class(a.type.get()) != H5T_INTEGER)
        throw InputError(where + ": attribute " + key + " must hold integers, got " +
                         detail::hdf5_type_name(a.type.get()) + " values");
    if (const std::string why = detail::numeric_layout_problem(a.type.get()); !why.empty())
        throw InputError(where + ": attribute " + key + " has a corrupt type (" + why + ")");
    std::vector<long long> v(a.count);
    if (H5Tget_sign(a.type.get()) == H5T_SGN_NONE) {
        // Read as stored: HDF5's conversion would clamp a uint64 past 2^63 to 2^63 − 1.
        std::vector<unsigned long long> u(a.count);
        if (H5Aread(a.attr.get(), H5T_NATIVE_ULLONG, u.data()) < 0)
            fail_at(where, std::string("cannot read attribute ") + key);
        for (std::size_t i = 0; i < u.size(); ++i) {
            if (u[i] > static_cast<unsigned long long>(std::numeric_limits<long long>::max()))
                throw InputError(where + ": attribute " + key + ": block " + std::to_string(i) + "'s value " +
                                 std::to_string(u[i]) + " is past any n");
            v[i] = static_cast<long long>(u[i]);
        }
        return v;
    }
    if (H5Aread(a.attr.get(), H5T_NATIVE_LLONG, v.data()) < 0)
        fail_at(where, std::string("cannot read attribute ") + key);
    return v;
}

// The strings, or nothing when HDF5 cannot read them (or a variable-length
// one states a length far past its text: a corrupt file).
std::optional<std::vector<std::string>> read_strings(const ArrayAttribute& a, const char* key, const std::string& where) {
    if (H5Tget_class(a.type.get()) != H5T_STRING)
        throw InputError(where + ": attribute " + key + " must hold strings, got " +
                         detail::hdf5_type_name(a.type.get()) + " values");
    std::vector<std::string> out;
    const bool variable = H5Tis_variable_str(a.type.get()) > 0;
    // Fixed-length strings get room for a terminator: a name that fills its
    // stored length (null-padded, not null-terminated) is kept whole.
    const std::size_t size = variable ? 0 : H5Tget_size(a.type.get()) + 1;
    Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
    if (!mem.valid() || H5Tset_size(mem.get(), variable ? H5T_VARIABLE : size) < 0 ||
        H5Tset_cset(mem.get(), H5Tget_cset(a.type.get())) < 0)
        fail_at(where, std::string("cannot read attribute ") + key);
    if (variable) {
        std::vector<char*> p(a.count, nullptr);
        const herr_t st = H5Aread(a.attr.get(), mem.get(), p.data());
        bool corrupt = st < 0;
        for (char* s : p) {
            if (st >= 0) out.emplace_back(s ? s : "");
            corrupt = corrupt || detail::stated_past_text(s, out.empty() ? 0 : out.back().size());
            if (s) H5free_memory(s);
        }
        if (corrupt) return std::nullopt;
        return out;
    }
    if (size < 2 || size > (std::size_t(1) << 16)) fail_at(where, std::string("cannot read attribute ") + key, false);
    std::string buf(a.count * size, '\0');
    if (H5Aread(a.attr.get(), mem.get(), buf.data()) < 0) return std::nullopt;
    for (std::size_t i = 0; i < a.count; ++i) {
        const std::string s = buf.substr(i * size, size);
        out.push_back(s.substr(0, s.find('\0')));
    }
    return out;
}

}  // namespace

void detail::read_parameter_names(hid_t d, std::size_t most) {
    if (!recording_attributes()) return;  // read again, here, only by list_parameter_blocks
    try {
        if (const auto names = open_array(d, "param_names", most, "")) {
            if (!read_strings(*names, "param_names", "")) note_unread(d, "param_names", "");
        }
    } catch (const InputError&) {
        // A rule it breaks is told where its blocks are listed.
    } catch (const std::exception&) {  // out of memory for what its dataspace states
        note_unread(d, "param_names", "");
    }
    H5Eclear2(H5E_DEFAULT);
}

namespace {

std::string block_text(std::size_t i, const std::vector<std::string>& names) {
    return "block " + std::to_string(i) + (names.empty() ? std::string() : " (" + names[i] + ")");
}

}  // namespace

std::vector<ListedHessian> list_parameter_blocks(const HessianInfo& whole, const ReadOptions& opt) {
    const std::string where = whole.source();
    if (!whole.structure.empty()) {
        // A structure's blocks are its members: the exporter's attributes
        // on it would otherwise be left unread without a word.
        detail::Hdf5Lock lock;
        detail::ErrorSilencer quiet;
        Handle file = detail::open_hdf5(whole.file, opt.image);
        Handle o(H5Oopen(file.get(), whole.dataset.c_str(), H5P_DEFAULT), H5Oclose);
        if (o.valid())
            for (const auto& name : detail::attribute_names(o.get()))
                for (const char* key : {"param_offsets", "param_sizes", "param_names"})
                    if (detail::lower_case(name) == key)
                        throw InputError(where + ": attribute " + name + " is not read on a structure (" +
                                         whole.structure + "): its blocks are the members of a structure "
                                         "\"blocks\", each a row of --per-block");
        return {};
    }
    if (whole.window || whole.n == 0) return {};
    std::vector<long long> offsets, sizes;
    std::vector<std::string> names;
    {
        detail::Hdf5Lock lock;
        detail::ErrorSilencer quiet;
        Handle file = detail::open_hdf5(whole.file, opt.image);
        Handle d(H5Dopen2(file.get(), whole.dataset.c_str(), H5P_DEFAULT), H5Dclose);
        if (!d.valid()) fail_at(where, "cannot open dataset");
        // One spelled otherwise, or one without param_offsets, would leave the
        // blocks unlisted without a word.
        for (const auto& name : detail::attribute_names(d.get()))
            for (const char* key : {"param_offsets", "param_sizes", "param_names"})
                if (name != key && detail::lower_case(name) == key)
                    throw InputError(where + ": attribute " + name + " is not read: basinvol reads " + key +
                                     ", in lower case");
        const auto off = open_array(d.get(), "param_offsets", whole.n, where);
        if (!off) {
            for (const char* key : {"param_sizes", "param_names"})
                if (H5Aexists(d.get(), key) > 0)
                    throw InputError(where + ": attribute " + key + " is given without param_offsets");
            H5Eclear2(H5E_DEFAULT);
            return {};
        }
        const auto siz = open_array(d.get(), "param_sizes", whole.n, where);
        if (!siz) throw InputError(where + ": attribute param_offsets is given without param_sizes");
        if (siz->count != off->count)
            throw InputError(where + ": attribute param_sizes lists " + std::to_string(siz->count) +
                             " blocks, param_offsets " + std::to_string(off->count));
        offsets = read_integers(*off, "param_offsets", where);
        sizes = read_integers(*siz, "param_sizes", where);
        if (const auto nam = open_array(d.get(), "param_names", whole.n, where)) {
            if (nam->count != off->count)
                throw InputError(where + ": attribute param_names lists " + std::to_string(nam->count) +
                                 " names for " + std::to_string(off->count) + " blocks");
            // Not again where the listing could not read them (AttributeScope).
            const auto listed = detail::AttributeScope::skip(whole.unread_attributes);
            auto read = detail::listed_unread(d.get(), "param_names") ? std::nullopt
                                                                     : read_strings(*nam, "param_names", where);
            if (!read) fail_at(where, "cannot read attribute param_names (corrupt file)");
            names = std::move(*read);
        }
    }
    // Names label rows (and key --resume's journal): each one, non-empty.
    std::map<std::string, std::size_t> seen;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (names[i].empty())
            throw InputError(where + ": attribute param_names: block " + std::to_string(i) + " has an empty name");
        const auto [it, fresh] = seen.emplace(names[i], i);
        if (!fresh)
            throw InputError(where + ": attribute param_names: blocks " + std::to_string(it->second) + " and " +
                             std::to_string(i) + " have the same name '" + names[i] + "'; names must be unique");
    }
    std::vector<ListedHessian> out;
    long long end = 0;  // where the block before ends
    const auto n = static_cast<long long>(whole.n);
    for (std::size_t i = 0; i < offsets.size(); ++i) {
        const long long o = offsets[i], s = sizes[i];
        auto broken = [&](const std::string& rule) {
            throw InputError(where + ": attribute param_offsets/param_sizes: " + block_text(i, names) + " " + rule);
        };
        if (s < 1) broken("has size " + std::to_string(s) + "; a block holds at least one parameter");
        if (o < 0) broken("starts at " + std::to_string(o) + "; an offset is at least 0");
        if (o < end)
            broken("starts at " + std::to_string(o) + ", before the block before it ends (" + std::to_string(end) +
                   "); blocks must be in order and must not overlap");
        if (o > n - s)
            broken("ends at " + std::to_string(o) + " + " + std::to_string(s) + ", past n = " + std::to_string(n));
        end = o + s;
        ListedHessian b;
        b.info = whole;
        b.info.n = std::size_t(s);
        b.info.window = HessianInfo::Window{whole.dataset, std::size_t(o), whole.n};
        b.info.dataset = whole.dataset + "[" + (names.empty() ? std::to_string(i) : names[i]) + "]";
        b.image = opt.image;
        out.push_back(std::move(b));
    }
    if (whole.unwritten_chunks) {  // the chunks each block's rows and columns lie in
        detail::Hdf5Lock lock;
        detail::ErrorSilencer quiet;
        Handle file = detail::open_hdf5(whole.file, opt.image);
        Handle d(H5Dopen2(file.get(), whole.dataset.c_str(), H5P_DEFAULT), H5Dclose);
        if (!d.valid()) fail_at(where, "cannot open dataset");
        std::uint64_t lookups = std::uint64_t(1) << 22;  // a few seconds in all; past them, the dataset's count
        for (auto& b : out) {
            const hsize_t at = b.info.window->offset, size = b.info.n;
            const detail::Box box{{at, at}, {size, size}};
            b.info.unwritten_chunks = detail::unwritten_chunks(d.get(), &box, &lookups);
        }
    }
    return out;
}

}  // namespace basinvol
