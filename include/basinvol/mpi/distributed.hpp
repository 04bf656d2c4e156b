#pragma once
// One dense Hessian across MPI ranks (basinvol-mpi; built with
// -DBASINVOL_MPI=ON): each rank reads its block-cyclic tiles with parallel
// HDF5, the values are checked and symmetrized across ranks by the serial
// reader's rules and messages, and ScaLAPACK's pdsyev computes the
// eigenvalues only. No rank holds the whole matrix. docs/mpi.md.
#include <basinvol/hessian.hpp>
#include <basinvol/io/reader.hpp>

#include <mpi.h>

#include <cstddef>
#include <string>
#include <vector>

namespace basinvol::mpi {

struct DistributedSpectrum {
    std::string error;                // empty on success; else the error row's message (the same on every rank)
    std::vector<double> eigenvalues;  // all n, ascending, on every rank
    double frobenius = 0;             // ‖H‖_F after symmetrizing
    double asymmetry = 0;             // ‖H − Hᵀ‖_F / ‖H‖_F as stored
    double seconds = 0;               // read, check and solve
    std::size_t local_bytes = 0;      // this rank's matrix storage at its peak (tiles and their transpose)
    int grid_rows = 1, grid_cols = 1; // the process grid
    int block = 0;                    // the block-cyclic block size
};

// Collective over `comm`: every rank calls it with the same info (file,
// dataset, n, stored_type) and options, and every rank gets the same result.
// Failures of the input (missing file, non-finite value, asymmetry, the
// memory budget per rank) are returned as `error`, never thrown, so that no
// rank is left waiting in a collective call.
DistributedSpectrum distributed_dense(MPI_Comm comm, const HessianInfo& info, const ReadOptions& options);

}  // namespace basinvol::mpi
