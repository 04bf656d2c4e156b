#pragma once
// Writing Hessians to HDF5 (the toy generator's output). Every HDF5 call is
// checked; HDF5's error stack is never printed, its innermost message is
// folded into an InputError that names the file and the dataset.
#include <basinvol/hessian.hpp>

#include <Eigen/Dense>

#include <string>

namespace basinvol {

enum class WriteMode {
    create,  // create the file, truncating an existing one
    append,  // add to an existing file (created when missing)
};

// Writes `matrix` as a 2-D dataset at the absolute path `dataset` (parent
// groups are created), stored as float32 when `as_float32`, else float64,
// with the attributes in `attrs` (step, loss, loss_threshold, name, numbers —
// integral values as int64, others as float64 — and strings). Refuses to
// overwrite an existing object. Throws InputError.
void write_hessian(const std::string& file, const std::string& dataset, const Eigen::MatrixXd& matrix,
                   bool as_float32, const Attributes& attrs, WriteMode mode);

// What a write at the absolute path `path` would add to `file`: the shortest
// prefix of it ("/a", "/a/b", ..., `path`) that the file does not hold, ""
// when it holds the whole path, "/" when there is no such file. With
// remove_link, how a caller takes back what it added when a later write
// fails. Throws InputError.
std::string missing_prefix(const std::string& file, const std::string& path);

// Removes the link `path` from `file` (and what only it leads to); "/"
// removes the file. Throws InputError.
void remove_link(const std::string& file, const std::string& path);

}  // namespace basinvol
