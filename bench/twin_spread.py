#!/usr/bin/python3
"""How far apart two float64 solves of one Hessian, its parameters relabelled,
put an eigenvalue: the measurement behind twin_reach() (src/solve/rounding.cpp,
docs/method.md "When noise decides a ranking").

    /usr/bin/python3 bench/twin_spread.py [--seed S] [--exact | --two-stage [lapack|basinvol]]

For each n, random symmetric matrices of five spectrum families (low rank
over six decades; Gaussian; ones over a 1e-15 tail; low rank of both signs;
low rank with three values at 0.3 to 3 times the noise floor 8·√n·ε·‖H‖_F)
are solved by numpy's eigvalsh (LAPACK dsyevd from the OpenBLAS basinvol
links too) as stored and with rows and columns permuted; prints the largest
difference of sorted eigenvalues in units of ε·‖H‖_F, over all values and
over those within a hundred floors of zero (where the band's reach under
the floor matters), beside basinvol's reach, min(4·√n, 16), and twice
LAPACK's bound as its error bars take it, 2·max(2·√n, 8). With --exact
(needs mpmath; n ≤ 32), each solve's largest distance from the eigenvalues
mpmath computes at 40 digits instead, beside max(2·√n, 8): the measurement
behind solve_resolution().
"""
import argparse

import numpy as np


def basinvol_eigvalsh(h):
    """basinvol's dense solve (two stages where it takes them)."""
    import basinvol

    return np.asarray(basinvol.analyze(h, method="dense", eigenvalues=True).eigenvalues)


def two_stage_eigvalsh(h):
    """dsyevd_2stage (eigenvalues only) from the OpenBLAS numpy runs on."""
    import ctypes
    from threadpoolctl import threadpool_info

    lib = ctypes.CDLL(next(i["filepath"] for i in threadpool_info() if i["internal_api"] == "openblas"))
    n = h.shape[0]
    a = np.array(h, dtype=np.float64, order="F")
    w = np.zeros(n)
    i = lambda v: ctypes.byref(ctypes.c_int(v))
    jobz, uplo = ctypes.c_char_p(b"N"), ctypes.c_char_p(b"L")
    query, iquery, info = ctypes.c_double(), ctypes.c_int(), ctypes.c_int()
    ptr = lambda x: x.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
    f = lib.dsyevd_2stage_
    f(jobz, uplo, i(n), ptr(a), i(n), ptr(w), ctypes.byref(query), i(-1), ctypes.byref(iquery), i(-1),
      ctypes.byref(info), ctypes.c_size_t(1), ctypes.c_size_t(1))
    work = np.zeros(int(query.value) + 1)
    iwork = np.zeros(max(1, iquery.value), dtype=np.int32)
    f(jobz, uplo, i(n), ptr(a), i(n), ptr(w), ptr(work), i(work.size), iwork.ctypes.data_as(ctypes.POINTER(ctypes.c_int)),
      i(iwork.size), ctypes.byref(info), ctypes.c_size_t(1), ctypes.c_size_t(1))
    if info.value != 0:
        raise SystemExit("dsyevd_2stage: info = %d" % info.value)
    return w

ap = argparse.ArgumentParser()
ap.add_argument("--seed", type=int, default=12)
ap.add_argument("--exact", action="store_true")
ap.add_argument("--two-stage", nargs="?", const="lapack", choices=["lapack", "basinvol"],
                help="solve each relabelled twin in two stages instead (n = 900..2000): LAPACK's dsyevd_2stage, "
                     "or (basinvol) basinvol's dense solve, whose second stage is its own; run it with "
                     "OPENBLAS_NUM_THREADS=1 and the Python package on PYTHONPATH (build/python), so that "
                     "it takes two stages (from n = 750 with OpenBLAS's SkylakeX kernels)")
a = ap.parse_args()
rng = np.random.default_rng(a.seed)
eps = np.finfo(float).eps
if a.exact:
    import mpmath

    mpmath.mp.dps = 40
    sizes = [2, 3, 4, 5, 6, 8, 10, 16, 32]
    print("| n | matrices | largest error / (ε·‖H‖_F) | max(2·√n, 8) |")
else:
    sizes = [900, 1000, 1500, 2000] if a.two_stage else [2, 3, 4, 5, 8, 16, 50, 200, 1000]
    print("| n | pairs | largest spread / (ε·‖H‖_F) | near the floor | reach min(4·√n, 16) | 2·max(2·√n, 8) |")
print("|---|---|---|---|---|---|" if not a.exact else "|---|---|---|---|")
for n in sizes:
    if a.exact:
        trials = 1500 if n <= 5 else (800 if n <= 10 else (200 if n <= 16 else 60))
    else:
        trials = 3000 if n <= 16 else (200 if n <= 200 else 12)
    worst = near = 0.0
    for t in range(trials):
        k = max(1, (n * (1 + t % 3)) // 4)
        family = t % 5
        if family == 0:
            e = np.concatenate([10 ** rng.uniform(-6, 0, k), np.zeros(n - k)])
        elif family == 1:
            e = rng.standard_normal(n)
        elif family == 2:
            e = np.concatenate([np.ones(k), 1e-15 * rng.standard_normal(n - k)])
        elif family == 3:
            e = np.concatenate([rng.uniform(-1, 1, k), np.zeros(n - k)])
        else:
            e = np.concatenate([10 ** rng.uniform(-3, 0, k), np.zeros(n - k)])
            floor = 8 * np.sqrt(n) * eps * np.linalg.norm(e)
            e[-min(3, n - 1):] = floor * 10 ** rng.uniform(-0.5, 0.5, min(3, n - 1))
        q = np.linalg.qr(rng.standard_normal((n, n)))[0]
        h = (q * e) @ q.T
        h = (h + h.T) / 2
        x = np.sort(np.linalg.eigvalsh(h))
        if a.exact:
            y = np.sort([float(v) for v in mpmath.eigsy(mpmath.matrix(h.tolist()), eigvals_only=True)])
        else:
            p = rng.permutation(n)
            solve = {None: np.linalg.eigvalsh, "lapack": two_stage_eigvalsh, "basinvol": basinvol_eigvalsh}[a.two_stage]
            y = np.sort(solve(h[np.ix_(p, p)]))
        unit = eps * np.linalg.norm(h)
        worst = max(worst, float(np.max(np.abs(x - y))) / unit)
        small = np.abs(x) < 100 * 8 * np.sqrt(n) * unit
        if small.any():
            near = max(near, float(np.max(np.abs(x - y)[small])) / unit)
    b = max(2 * np.sqrt(n), 8.0)
    if a.exact:
        print(f"| {n} | {trials} | {worst:.2f} | {b:.2f} |")
    else:
        print(f"| {n} | {trials} | {worst:.2f} | {near:.2f} | {min(4 * np.sqrt(n), 16):.2f} | {2 * b:.2f} |")
