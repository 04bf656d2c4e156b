#pragma once
// A Hessian as read from storage: the matrix in the precision it was stored
// in, plus what the file said about it.
#include <Eigen/Dense>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace basinvol {

// What the file said about a dataset (optional HDF5 attributes).
struct Attributes {
    std::optional<double> step;
    std::optional<double> loss;
    std::optional<double> loss_threshold;
    std::optional<double> hessian_error;  // the exporter's bound on the matrix's own error (absolute)
    std::optional<std::string> name;
    // Other numeric scalar attributes (e.g. expected_rank), by name.
    std::map<std::string, double> numbers;
    // Other string attributes, by name.
    std::map<std::string, std::string> strings;
};

// What the file system says of a file (stamp_file): a read that starts and
// ends with different stamps read a file that was being rewritten.
struct FileStamp {
    bool valid = false;  // false for in-memory images and files that could not be stat'ed
    unsigned long long device = 0, inode = 0, size = 0;
    long long mtime_ns = 0, ctime_ns = 0;
    bool operator==(const FileStamp& o) const {
        return valid == o.valid && device == o.device && inode == o.inode && size == o.size &&
               mtime_ns == o.mtime_ns && ctime_ns == o.ctime_ns;
    }
    bool operator!=(const FileStamp& o) const { return !(*this == o); }
};

struct HessianInfo {
    std::string file;
    std::string dataset;         // absolute HDF5 path
    std::size_t n = 0;
    std::string stored_type;     // "float32", "float64", "int32", ... (structured: the coarsest part's)
    // "" for a dense dataset; else the structure (docs/structured.md):
    // "blocks", "factor", "kron" or "diagonal".
    std::string structure;
    // Structured: the memory its analysis needs at most (the largest part
    // with its solver's workspace, and the n eigenvalues); 0 for dense.
    std::size_t working_bytes = 0;
    double stored_eps = 0;       // unit roundoff of the stored type (machine epsilon)
    Attributes attrs;
    // Why this dataset cannot be read as a Hessian (empty when it can).
    std::string problem;
    // The file's bytes when it was listed from an in-memory image (see image_source).
    std::shared_ptr<const std::string> image;
    std::string source() const { return file + ":" + dataset; }
};

// The matrix lives in exactly one of f32 / f64 (float32-stored data stays
// float32 in memory; products accumulate in double).
struct Hessian {
    HessianInfo info;
    Eigen::MatrixXf f32;
    Eigen::MatrixXd f64;
    bool is_f32() const { return f32.size() > 0; }
    double asymmetry = 0;        // ‖H − Hᵀ‖_F / ‖H‖_F before symmetrizing
    double frobenius = 0;        // ‖H‖_F (after symmetrizing)
};

}  // namespace basinvol
