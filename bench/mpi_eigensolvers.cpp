// The distributed eigenvalue-only solvers basinvol-mpi could use, side by
// side on one block-cyclic matrix: ScaLAPACK pdsyev (what basinvol-mpi runs)
// and pdsyevr, and ELPA's one- and two-stage solvers (Debian's libelpa-dev).
//
//   mpirun -n P build/bench_mpi_eigensolvers N [REPEATS]
//
// Every solver gets the same matrix (a symmetric N×N matrix with eigenvalues
// of both signs, blocks of 64 on basinvol-mpi's process grid); rank 0 prints
// each one's best wall time of REPEATS (default 1) and the largest difference
// of its eigenvalues from pdsyev's, relative to max|λ|. Run with
// OPENBLAS_NUM_THREADS=1 and OMP_NUM_THREADS=1 so that P ranks use P cores.

#include "../src/mpi/scalapack.hpp"

#include <elpa/elpa.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace {

struct Layout {
    int n = 0, nb = 64, rows = 1, cols = 1, row = 0, col = 0, context = -1, local_rows = 0, local_cols = 0;
    int desc[9] = {};
};

Layout layout(int n) {
    Layout l;
    l.n = n;
    int p = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &p);
    l.rows = static_cast<int>(std::sqrt(static_cast<double>(p)));  // basinvol-mpi's grid: as square as p allows
    while (l.rows > 1 && p % l.rows != 0) --l.rows;
    l.cols = p / l.rows;
    l.context = Csys2blacs_handle(MPI_COMM_WORLD);
    Cblacs_gridinit(&l.context, "Row", l.rows, l.cols);
    Cblacs_gridinfo(l.context, &l.rows, &l.cols, &l.row, &l.col);
    const int zero = 0;
    l.local_rows = numroc_(&n, &l.nb, &l.row, &zero, &l.rows);
    l.local_cols = numroc_(&n, &l.nb, &l.col, &zero, &l.cols);
    int lld = std::max(1, l.local_rows), info = 0;
    descinit_(l.desc, &n, &n, &l.nb, &l.nb, &zero, &zero, &l.context, &lld, &info);
    return l;
}

// This rank's tiles of a fixed symmetric matrix (column-major local storage).
std::vector<double> tiles(const Layout& l) {
    std::vector<double> a(static_cast<std::size_t>(l.local_rows) * static_cast<std::size_t>(l.local_cols));
    for (int jl = 0; jl < l.local_cols; ++jl) {
        const int j = (jl / l.nb) * l.cols * l.nb + l.col * l.nb + jl % l.nb;
        for (int il = 0; il < l.local_rows; ++il) {
            const int i = (il / l.nb) * l.rows * l.nb + l.row * l.nb + il % l.nb;
            double v = std::sin(0.37 * (i + 1.0) * (j + 1.0)) + std::cos(0.11 * (i + j));
            if (i == j) v += i % 3;
            a[static_cast<std::size_t>(jl) * l.local_rows + il] = v;
        }
    }
    return a;
}

void scalapack_pdsyev(const Layout& l, double* a, double* w) {
    const int one = 1;
    int lwork = -1, info = 0;
    double query = 0;
    pdsyev_("N", "L", &l.n, a, &one, &one, l.desc, w, nullptr, &one, &one, l.desc, &query, &lwork, &info);
    lwork = static_cast<int>(query * 1.1 + 64);
    std::vector<double> work(static_cast<std::size_t>(lwork));
    pdsyev_("N", "L", &l.n, a, &one, &one, l.desc, w, nullptr, &one, &one, l.desc, work.data(), &lwork, &info);
    if (info != 0) std::fprintf(stderr, "pdsyev: info %d\n", info);
}

void scalapack_pdsyevr(const Layout& l, double* a, double* w) {
    const int one = 1;
    int lwork = -1, liwork = -1, found = 0, vectors = 0, iquery = 0, info = 0;
    double query = 0, vl = 0, vu = 0;
    pdsyevr_("N", "A", "L", &l.n, a, &one, &one, l.desc, &vl, &vu, &one, &l.n, &found, &vectors, w, nullptr, &one,
             &one, l.desc, &query, &lwork, &iquery, &liwork, &info);
    lwork = static_cast<int>(query * 1.1 + 64);
    liwork = iquery + 64;
    std::vector<double> work(static_cast<std::size_t>(lwork));
    std::vector<int> iwork(static_cast<std::size_t>(liwork));
    pdsyevr_("N", "A", "L", &l.n, a, &one, &one, l.desc, &vl, &vu, &one, &l.n, &found, &vectors, w, nullptr, &one,
             &one, l.desc, work.data(), &lwork, iwork.data(), &liwork, &info);
    if (info != 0) std::fprintf(stderr, "pdsyevr: info %d\n", info);
}

void elpa_solver(const Layout& l, double* a, double* w, int solver) {
    int err = 0;
    elpa_t h = elpa_allocate(&err);
    elpa_set_integer(h, "na", l.n, &err);
    elpa_set_integer(h, "nev", l.n, &err);
    elpa_set_integer(h, "local_nrows", l.local_rows, &err);
    elpa_set_integer(h, "local_ncols", l.local_cols, &err);
    elpa_set_integer(h, "nblk", l.nb, &err);
    elpa_set_integer(h, "mpi_comm_parent", static_cast<int>(MPI_Comm_c2f(MPI_COMM_WORLD)), &err);
    elpa_set_integer(h, "process_row", l.row, &err);
    elpa_set_integer(h, "process_col", l.col, &err);
    if (elpa_setup(h) != ELPA_OK) std::fprintf(stderr, "elpa_setup failed\n");
    elpa_set_integer(h, "solver", solver, &err);
    elpa_eigenvalues_a_h_a_d(h, a, w, &err);
    if (err != ELPA_OK) std::fprintf(stderr, "elpa_eigenvalues: error %d\n", err);
    elpa_deallocate(h, &err);
}

}  // namespace

int main(int argc, char** argv) {
    MPI_Init(&argc, &argv);
    int ranks[2] = {0, 1};  // this one, and how many
    MPI_Comm_rank(MPI_COMM_WORLD, &ranks[0]);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks[1]);
    const int me = ranks[0], p = ranks[1];
    if (argc < 2 || std::atoi(argv[1]) < 1) {
        if (me == 0) std::fprintf(stderr, "usage: mpirun -n P bench_mpi_eigensolvers N [REPEATS]\n");
        MPI_Finalize();
        return 2;
    }
    const int n = std::atoi(argv[1]);
    const int repeats = argc > 2 ? std::max(1, std::atoi(argv[2])) : 1;
    if (elpa_init(ELPA_API_VERSION) != ELPA_OK) {
        if (me == 0) std::fprintf(stderr, "elpa_init failed\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    const Layout l = layout(n);
    const std::vector<double> matrix = tiles(l);
    const std::vector<std::pair<std::string, std::function<void(double*, double*)>>> solvers = {
        {"scalapack pdsyev", [&](double* a, double* w) { scalapack_pdsyev(l, a, w); }},
        {"scalapack pdsyevr", [&](double* a, double* w) { scalapack_pdsyevr(l, a, w); }},
        {"elpa 1-stage", [&](double* a, double* w) { elpa_solver(l, a, w, ELPA_SOLVER_1STAGE); }},
        {"elpa 2-stage", [&](double* a, double* w) { elpa_solver(l, a, w, ELPA_SOLVER_2STAGE); }},
    };
    std::vector<double> reference;
    if (me == 0) std::printf("n %d, %d ranks (grid %d x %d), blocks of %d\n", n, p, l.rows, l.cols, l.nb);
    for (const auto& [name, solve] : solvers) {
        double best = 1e300;
        std::vector<double> w(static_cast<std::size_t>(n));
        for (int k = 0; k < repeats; ++k) {
            std::vector<double> a = matrix;
            MPI_Barrier(MPI_COMM_WORLD);
            const auto t0 = std::chrono::steady_clock::now();
            solve(a.data(), w.data());
            MPI_Barrier(MPI_COMM_WORLD);
            best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        std::sort(w.begin(), w.end());
        if (reference.empty()) reference = w;
        double diff = 0, top = 0;
        for (std::size_t i = 0; i < w.size(); ++i) {
            diff = std::max(diff, std::abs(w[i] - reference[i]));
            top = std::max(top, std::abs(reference[i]));
        }
        if (me == 0) std::printf("%-18s %8.3f s   max |Δλ| / max|λ| against pdsyev %.1e\n", name.c_str(), best, diff / top);
    }
    int err = 0;
    elpa_uninit(&err);
    Cblacs_gridexit(l.context);
    MPI_Finalize();
    return 0;
}
