// HDF5 writing. Every call is checked; handles close themselves; HDF5's
// automatic error printing is off while we work.
#include "hdf5_detail.hpp"

#include <basinvol/error.hpp>
#include <basinvol/io/writer.hpp>

#include <hdf5.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <set>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace basinvol {
namespace {

using detail::ErrorSilencer;
using detail::fail_at;
using detail::Handle;
using detail::hdf5_mutex;

void write_number(hid_t obj, const std::string& where, const std::string& key, double v) {
    Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    if (!space.valid()) fail_at(where, "Unable to create attribute space for '" + key + "'");
    const bool integral = std::isfinite(v) && v == std::floor(v) && std::abs(v) < 9007199254740992.0;
    hid_t file_type = integral ? H5T_STD_I64LE : H5T_IEEE_F64LE;
    Handle a(H5Acreate2(obj, key.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    if (!a.valid()) fail_at(where, "Unable to create attribute '" + key + "'");
    herr_t st;
    if (integral) {
        const std::int64_t i = static_cast<std::int64_t>(v);
        st = H5Awrite(a.get(), H5T_NATIVE_INT64, &i);
    } else {
        st = H5Awrite(a.get(), H5T_NATIVE_DOUBLE, &v);
    }
    if (st < 0) fail_at(where, "Unable to write attribute '" + key + "'");
}

void write_string(hid_t obj, const std::string& where, const std::string& key, const std::string& value) {
    Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
    if (!space.valid() || !type.valid()) fail_at(where, "Unable to create attribute type for '" + key + "'");
    if (H5Tset_size(type.get(), H5T_VARIABLE) < 0 || H5Tset_cset(type.get(), H5T_CSET_UTF8) < 0)
        fail_at(where, "Unable to set string type for '" + key + "'");
    Handle a(H5Acreate2(obj, key.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    if (!a.valid()) fail_at(where, "Unable to create attribute '" + key + "'");
    const char* p = value.c_str();
    if (H5Awrite(a.get(), type.get(), &p) < 0) fail_at(where, "Unable to write attribute '" + key + "'");
}

}  // namespace

void write_hessian(const std::string& file, const std::string& dataset, const Eigen::MatrixXd& matrix,
                   bool as_float32, const Attributes& attrs, WriteMode mode) {
    std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
    ErrorSilencer quiet;
    const std::string where = file + ":" + dataset;
    if (dataset.empty() || dataset[0] != '/' || dataset.back() == '/')
        throw InputError(where + ": the dataset path must be absolute and name a dataset, e.g. /hessian");
    if (matrix.rows() != matrix.cols() || matrix.rows() == 0)
        throw InputError(where + ": a Hessian must be square and non-empty");
    {  // each attribute once, checked before anything is written
        std::set<std::string> keys;
        const auto once = [&](const std::string& k) {
            if (!keys.insert(k).second) throw InputError(where + ": attribute '" + k + "' is given twice");
        };
        if (attrs.step) once("step");
        if (attrs.loss) once("loss");
        if (attrs.loss_threshold) once("loss_threshold");
        if (attrs.hessian_error) once("hessian_error");
        if (attrs.name) once("name");
        for (const auto& kv : attrs.numbers) once(kv.first);
        for (const auto& kv : attrs.strings) once(kv.first);
    }

    struct stat st {};
    const bool exists = ::stat(file.c_str(), &st) == 0;
    hid_t f;
    if (mode == WriteMode::append && exists) {
        if (H5Fis_hdf5(file.c_str()) <= 0) fail_at(file, "Unable to append: not an HDF5 file");
        f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    } else {
        f = H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    }
    if (f < 0) fail_at(file, "Unable to open the file for writing");
    Handle fh(f, H5Fclose);

    htri_t there = H5Lexists(f, dataset.c_str(), H5P_DEFAULT);
    if (there > 0) throw InputError(where + ": Unable to write: the object exists already");

    // The dataset is built unnamed, its values and attributes written, and
    // only then linked at its path (with the groups above it): a write that
    // fails leaves no half-written Hessian, nor its groups, for a later run
    // to read; a file this call created is removed again.
    const bool created = !(mode == WriteMode::append && exists);
    try {
        Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
        if (!lcpl.valid() || H5Pset_create_intermediate_group(lcpl.get(), 1) < 0)
            fail_at(where, "Unable to set up group creation");
        const hsize_t dims[2] = {static_cast<hsize_t>(matrix.rows()), static_cast<hsize_t>(matrix.cols())};
        Handle space(H5Screate_simple(2, dims, nullptr), H5Sclose);
        if (!space.valid()) fail_at(where, "Unable to create the dataspace");
        Handle d(H5Dcreate_anon(f, as_float32 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                 H5Dclose);
        if (!d.valid()) fail_at(where, "Unable to create the dataset");

        // HDF5 is row-major, Eigen column-major: write the transpose's bytes.
        herr_t w;
        if (as_float32) {
            Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> m = matrix.cast<float>();
            w = H5Dwrite(d.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, m.data());
        } else {
            Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> m = matrix;
            w = H5Dwrite(d.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, m.data());
        }
        if (w < 0) fail_at(where, "Unable to write the dataset");
        if (attrs.step) write_number(d.get(), where, "step", *attrs.step);
        if (attrs.loss) write_number(d.get(), where, "loss", *attrs.loss);
        if (attrs.loss_threshold) write_number(d.get(), where, "loss_threshold", *attrs.loss_threshold);
        if (attrs.hessian_error) write_number(d.get(), where, "hessian_error", *attrs.hessian_error);
        if (attrs.name) write_string(d.get(), where, "name", *attrs.name);
        for (const auto& [k, v] : attrs.numbers) write_number(d.get(), where, k, v);
        for (const auto& [k, v] : attrs.strings) write_string(d.get(), where, k, v);
        if (H5Olink(d.get(), f, dataset.c_str(), lcpl.get(), H5P_DEFAULT) < 0)
            fail_at(where, "Unable to link the dataset at its path");
    } catch (...) {
        fh = Handle();
        if (created) std::remove(file.c_str());
        throw;
    }
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) fail_at(file, "Unable to flush the file");
}

std::string missing_prefix(const std::string& file, const std::string& path) {
    std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
    ErrorSilencer quiet;
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) return "/";
    if (H5Fis_hdf5(file.c_str()) <= 0) return "";  // the write will say why it cannot add to it
    Handle f(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (!f.valid()) fail_at(file, "Unable to open the file");
    for (std::size_t end = path.find('/', 1);; end = path.find('/', end + 1)) {
        const std::string prefix = path.substr(0, end);
        if (prefix.size() > 1 && H5Lexists(f.get(), prefix.c_str(), H5P_DEFAULT) <= 0) return prefix;
        if (end == std::string::npos) return "";
    }
}

void remove_link(const std::string& file, const std::string& path) {
    if (path == "/") {
        if (std::remove(file.c_str()) != 0) fail_at(file, "Unable to remove the file");
        return;
    }
    std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
    ErrorSilencer quiet;
    Handle f(H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
    if (!f.valid()) fail_at(file, "Unable to open the file for writing");
    if (H5Ldelete(f.get(), path.c_str(), H5P_DEFAULT) < 0) fail_at(file + ":" + path, "Unable to remove it");
}

}  // namespace basinvol
