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

}  // namespace basinvol
