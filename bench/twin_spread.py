#!/usr/bin/python3
"""How far apart two float64 solves of one Hessian, its parameters relabelled,
put an eigenvalue: the measurement behind twin_reach() (src/measure/cut.cpp,
docs/method.md "When noise decides a ranking").

    /usr/bin/python3 bench/twin_spread.py [--seed S] [--exact]

For each n, random symmetric matrices of four spectrum families (low rank
over six decades; Gaussian; ones over a 1e-15 tail; low rank of both signs)
are solved by numpy's eigvalsh (LAPACK dsyevd from the OpenBLAS basinvol
links too) as stored and with rows and columns permuted; prints the largest
difference of sorted eigenvalues in units of ε·‖H‖_F, beside twice LAPACK's
bound as basinvol's error bars take it, 2·max(2·√n, 8). With --exact
(needs mpmath; n ≤ 32), each solve's largest distance from the eigenvalues
mpmath computes at 40 digits instead, beside max(2·√n, 8): the measurement
behind solve_resolution().
"""
import argparse

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--seed", type=int, default=12)
ap.add_argument("--exact", action="store_true")
a = ap.parse_args()
rng = np.random.default_rng(a.seed)
eps = np.finfo(float).eps
if a.exact:
    import mpmath

    mpmath.mp.dps = 40
    sizes = [2, 3, 4, 5, 6, 8, 10, 16, 32]
    print("| n | matrices | largest error / (ε·‖H‖_F) | max(2·√n, 8) |")
else:
    sizes = [2, 3, 4, 5, 8, 16, 50, 200, 1000]
    print("| n | pairs | largest spread / (ε·‖H‖_F) | 2·max(2·√n, 8) |")
print("|---|---|---|---|")
for n in sizes:
    if a.exact:
        trials = 1500 if n <= 5 else (800 if n <= 10 else (200 if n <= 16 else 60))
    else:
        trials = 3000 if n <= 16 else (200 if n <= 200 else 12)
    worst = 0.0
    for t in range(trials):
        k = max(1, (n * (1 + t % 3)) // 4)
        family = t % 4
        if family == 0:
            e = np.concatenate([10 ** rng.uniform(-6, 0, k), np.zeros(n - k)])
        elif family == 1:
            e = rng.standard_normal(n)
        elif family == 2:
            e = np.concatenate([np.ones(k), 1e-15 * rng.standard_normal(n - k)])
        else:
            e = np.concatenate([rng.uniform(-1, 1, k), np.zeros(n - k)])
        q = np.linalg.qr(rng.standard_normal((n, n)))[0]
        h = (q * e) @ q.T
        h = (h + h.T) / 2
        x = np.sort(np.linalg.eigvalsh(h))
        if a.exact:
            y = np.sort([float(v) for v in mpmath.eigsy(mpmath.matrix(h.tolist()), eigvals_only=True)])
        else:
            p = rng.permutation(n)
            y = np.sort(np.linalg.eigvalsh(h[np.ix_(p, p)]))
        worst = max(worst, float(np.max(np.abs(x - y))) / (eps * np.linalg.norm(h)))
    b = max(2 * np.sqrt(n), 8.0) * (1 if a.exact else 2)
    print(f"| {n} | {trials} | {worst:.2f} | {b:.2f} |")
