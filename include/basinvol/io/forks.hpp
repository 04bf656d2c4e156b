#pragma once
// Forks that the embedding program makes itself (Python's os.fork, a
// multiprocessing pool or a torch DataLoader forking workers) while another
// of its threads is inside basinvol. A fork in the middle of a threaded
// OpenBLAS call leaves that call waiting forever on worker threads that
// OpenBLAS's own fork handler stopped; a child forked while a thread holds
// basinvol's HDF5 mutex or its BLAS gate inherits them locked and waits
// forever at its first read.
namespace basinvol {

// Registers (once; later calls do nothing) fork handlers that make every
// fork of this process wait for the HDF5 reads and BLAS calls under way and
// start none during it, and give the child fresh locks. basinvol's own
// forks (listing, isolated reads) already do so and pass through.
void hold_forks_for_work_under_way();

}  // namespace basinvol
