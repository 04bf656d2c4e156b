#pragma once
// Structured Hessians as stored (docs/structured.md): a group with attribute
// `structure` = "blocks" (direct sum of its members, in name order),
// "factor" (H = scale·GᵀG, dataset G of m×n) or "kron" (H = scale·A⊗B), or a
// 1-D dataset with `structure` = "diagonal" (H = diag(values)). The parts
// are described first (shapes, types) and their values read one at a time,
// so a solver holds one part in memory at once (two square parts, when it
// solves them side by side within the memory budget).
#include <basinvol/hessian.hpp>
#include <basinvol/io/reader.hpp>

#include <Eigen/Dense>

#include <cstddef>
#include <string>
#include <vector>

namespace basinvol {

enum class PartKind { dense, blocks, factor, kron, diagonal };

// Whether an attribute `structure` names a structure basinvol reads.
inline bool is_structure_kind(const std::string& s) {
    return s == "blocks" || s == "factor" || s == "kron" || s == "diagonal";
}

// The path of `name` inside the object at `path` (or after "FILE:" + path
// in a message): "/A" under the root "/", not "//A".
inline std::string member_of(const std::string& path, const std::string& name) {
    return (!path.empty() && path.back() == '/' ? path : path + "/") + name;
}

struct StructurePart {
    PartKind kind = PartKind::dense;
    std::string path;           // absolute HDF5 path of the group or dataset
    std::size_t n = 0;          // the part's share of the parameters
    std::size_t m = 0;          // factor: rows of G
    std::size_t a = 0, b = 0;   // kron: sizes of A and B
    double scale = 1;           // factor, kron
    std::string stored_type;    // the coarsest stored type under this part
    double stored_eps = 0;
    std::size_t work_bytes = 0;    // the most memory one part under this one, not square, needs while solved
    // The two largest square parts under this one (dense members, Kronecker
    // factors: stored and LAPACK's copy), which may be solved at once.
    std::size_t square_bytes[2] = {0, 0};
    // What holds work_bytes and square_bytes[0] ("/m/G, 1000000000 x 3"):
    // an over-budget row names it.
    std::string work_part, square_part;
    std::vector<StructurePart> parts;  // blocks: the members in name order
};

// The structure of a listed structured Hessian (info.structure not empty).
// Throws InputError naming the file, the object and the rule broken.
StructurePart describe_structure(const HessianInfo& info, const ReadOptions& options = {});

// The memory a structure's analysis needs on each rank of basinvol-mpi, which
// reads a factor's G in slabs across the ranks (that slab is checked as it
// is read) and holds every other part whole: info.working_bytes without G.
std::size_t spread_working_bytes(const StructurePart& root);

// A square dataset of a structure (a dense block, a Kronecker factor), read,
// checked and symmetrized like a dense Hessian. Throws InputError.
Hessian read_square_part(const HessianInfo& info, const std::string& path, const ReadOptions& options);

// A factor's G as stored (m×n row-major), returned as Gᵀ (n×m, column-major,
// the same bytes); float32 storage stays float32. Finite values checked.
struct FactorValues {
    Eigen::MatrixXf t32;
    Eigen::MatrixXd t64;
    bool is_f32() const { return t32.size() > 0; }
};
FactorValues read_factor(const HessianInfo& info, const StructurePart& part, const ReadOptions& options);

// A diagonal's values. Finite values checked.
Eigen::VectorXd read_diagonal(const HessianInfo& info, const StructurePart& part, const ReadOptions& options);

}  // namespace basinvol
