#!/usr/bin/python3
"""How far apart two float64 solves of one Hessian, its parameters relabelled,
put an eigenvalue: the measurement behind twin_reach() (src/measure/cut.cpp,
docs/method.md "When noise decides a ranking").

    /usr/bin/python3 bench/twin_spread.py [--seed S]

For each n, random symmetric matrices of four spectrum families (low rank
over six decades; Gaussian; ones over a 1e-15 tail; low rank of both signs)
are solved by numpy's eigvalsh (LAPACK dsyevd from the OpenBLAS basinvol
links too) as stored and with rows and columns permuted; prints the largest
difference of sorted eigenvalues in units of ε·‖H‖_F, beside LAPACK's bound
as basinvol takes it for the pair, 4·√n.
"""
import argparse

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--seed", type=int, default=12)
a = ap.parse_args()
rng = np.random.default_rng(a.seed)
eps = np.finfo(float).eps
print("| n | pairs | largest spread / (ε·‖H‖_F) | 4·√n |")
print("|---|---|---|---|")
for n in [2, 3, 4, 5, 8, 16, 50, 200, 1000]:
    worst, trials = 0.0, 3000 if n <= 16 else (200 if n <= 200 else 12)
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
        p = rng.permutation(n)
        x = np.sort(np.linalg.eigvalsh(h))
        y = np.sort(np.linalg.eigvalsh(h[np.ix_(p, p)]))
        worst = max(worst, float(np.max(np.abs(x - y))) / (eps * np.linalg.norm(h)))
    print(f"| {n} | {trials} | {worst:.2f} | {4 * np.sqrt(n):.2f} |")
