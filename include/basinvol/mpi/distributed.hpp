#pragma once
// One dense Hessian across MPI ranks (basinvol-mpi; built with
// -DBASINVOL_MPI=ON): each rank reads its block-cyclic tiles with parallel
// HDF5, the values are checked and symmetrized across ranks by the serial
// reader's rules and messages, and ScaLAPACK's pdsyev computes the
// eigenvalues only. No rank holds the whole matrix. docs/cluster.md.
#include <basinvol/hessian.hpp>
#include <basinvol/io/reader.hpp>
#include <basinvol/solve/spectrum.hpp>
#include <basinvol/solve/structured.hpp>

#include <mpi.h>

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace basinvol::mpi {

struct DistributedSpectrum {
    std::string error;                // empty on success; else the error row's message (the same on every rank)
    std::vector<double> eigenvalues;  // all n, ascending, on every rank
    double frobenius = 0;             // ‖H‖_F after symmetrizing
    double asymmetry = 0;             // ‖H − Hᵀ‖_F / ‖H‖_F as stored
    double asymmetry_norm = 0;        // ‖H − Hᵀ‖_F as stored
    double seconds = 0;               // read, check and solve
    std::size_t local_bytes = 0;      // this rank's matrix storage at its peak (tiles and their transpose)
    int grid_rows = 1, grid_cols = 1; // the process grid
    int block = 0;                    // the block-cyclic block size
    bool sketched = false;            // the sketch certified the cut: no eigenvalues were computed here
    // The info the row is measured by: the caller's, and float32 data saved
    // as float64 marked once the values were checked (mark_float32_values).
    HessianInfo info;
};

// Called on rank 0 with the distributed sketch's spectrum (and ‖H‖_F and
// ‖H − Hᵀ‖_F): true keeps it (the row is the caller's), false has
// ScaLAPACK compute every eigenvalue.
using SketchFirst =
    std::function<bool(const HessianInfo& info, const Spectrum&, double frobenius, double asymmetry_norm)>;

// Collective over `comm`: every rank calls it with the same info (file,
// dataset, n, stored_type) and options, and every rank gets the same result.
// Failures of the input (missing file, non-finite value, asymmetry, the
// memory budget per rank) are returned as `error`, never thrown, so that no
// rank is left waiting in a collective call.
//
// With `sketch_first`, the serial tool's randomized sketch runs first on the
// distributed matrix (products over each rank's tiles, the same growth rule
// and certificate ‖H − VΘVᵀ‖_F, replicated n×k blocks with
// k ≤ min(n/4, n/(5P)), within the memory budgeted for the tiles'
// transpose); when it applies and sketch_first keeps it, no eigensolve runs
// and `sketched` is set.
DistributedSpectrum distributed_dense(MPI_Comm comm, const HessianInfo& info, const ReadOptions& options,
                                      const SketchFirst& sketch_first = {});

// The lowest rank whose `mine` is not empty, and its message, on every rank
// (-1 and "" when every rank's is empty). Collective over comm.
struct Agreed {
    int rank = -1;
    std::string message;
};
Agreed first_failure(MPI_Comm comm, const std::string& mine);

// Why this rank cannot open `path` (info's file, as this rank's working
// directory resolves it) as a regular file, without blocking: missing,
// unreadable, or a FIFO or device, whose open by HDF5 would wait forever
// (rank 0's listing is stopped by its time limit; the other ranks' walks
// and reads are not). "" when it can; `on` follows the reason's first words
// (" on MPI rank 1 of 2"). Not collective: agree on it.
std::string not_a_file_here(const HessianInfo& info, const std::string& path, const std::string& on = {});

// The memory budget of each rank: options.max_bytes (--max-memory), else half
// the memory this node gives (a cgroup's limit when lower than its physical
// memory) shared by its ranks; under an address-space limit, at most what it
// leaves beside OpenBLAS's buffer. The smallest rank's, on every rank.
// Collective over comm.
std::size_t rank_budget(MPI_Comm comm, const ReadOptions& options);

// A structure's row when the working set it needs on each rank (the parts
// every rank reads whole, a factor's Gram) is over that rank's `budget`
// (rank_budget): basinvol's rule and message, or under an address-space
// limit the budget as rank_budget leaves it. nullopt when it fits.
std::optional<Row> structure_over_budget(const HessianInfo& info, std::size_t need, std::size_t budget);

// Factors across ranks: G's longer dimension is split into contiguous slabs,
// one per rank of `comm`, each read with parallel HDF5; each rank forms its
// slab's part of the Gram matrix and one MPI_Allreduce sums them, so no rank
// holds more than its slab and the k×k Gram (k = min(m, n)). Collective:
// every rank analyses the same structured Hessian with this builder in its
// AnalyzeOptions. Value and memory failures are agreed on and thrown as the
// same InputError on every rank.
//
// The ranks walk a structure each on its own copy, and one rank's walk may
// end early (a NaN, a member missing on its node): so that no rank waits in
// a Gram the others never start, each gram() first asks whether a rank has
// left the walk, and every rank calls finish() once when its analysis of the
// structure is over (inside gram() is where the others learn of it, and they
// throw that rank's failure there).
class DistributedGram : public GramBuilder {
public:
    explicit DistributedGram(MPI_Comm comm) : comm_(comm) {}
    Gram gram(const HessianInfo& info, const StructurePart& part, const ReadOptions& options) const override;

    // Collective, once per structured Hessian on every rank, after its
    // analysis (`failure`: this rank's error, "" if its row is ok): why the
    // row is an error on some rank — the lowest failing rank's message and
    // that rank, or that the ranks' walks differed — the same on every rank;
    // "" when no rank failed.
    std::string finish(const HessianInfo& info, const std::string& failure) const;

private:
    MPI_Comm comm_;
    mutable std::optional<std::string> left_;  // why a rank left, learnt inside gram(): finish() has been agreed
};

}  // namespace basinvol::mpi
