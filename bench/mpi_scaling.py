#!/usr/bin/python3
"""basinvol-mpi on 1, 2 and 4 ranks against the serial tool, one dense Hessian.

    /usr/bin/python3 bench/mpi_scaling.py [--dir DIR] [--n 4000,8000] [--ranks 1,2,4]

Writes (once, into DIR, default a temporary directory outside the
repository) a random symmetric float64 matrix of each n, then times
`basinvol volume --method dense` and `mpirun -n P basinvol-mpi volume`
(whole job, wall clock) with every process's peak RSS (/usr/bin/time -f %M),
checks that the rows agree (rank, dim, negative exactly; log-volume to 1e-9
relative) and prints a table for docs/cluster.md. BASINVOL and BASINVOL_MPI
name the binaries (default build/). More ranks than cores oversubscribe: the
times then show the cost of messages, the memory what one rank holds.
"""
import argparse
import json
import os
import re
import subprocess
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(HERE, "..", "build")
BASINVOL = os.environ.get("BASINVOL", os.path.join(BUILD, "basinvol"))
BASINVOL_MPI = os.environ.get("BASINVOL_MPI", os.path.join(BUILD, "basinvol-mpi"))
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_btl_vader_single_copy_mechanism="none", OMPI_MCA_rmaps_base_oversubscribe="1")


def matrix_file(d, n):
    import h5py
    f = os.path.join(d, f"dense_{n}.h5")
    if not os.path.exists(f):
        rng = np.random.default_rng(n)
        A = rng.standard_normal((n, n))
        with h5py.File(f, "w") as h:
            h["hessian"] = (A + A.T) / 2
    return f


def timed(cmd):
    """(wall seconds, [peak RSS MB of each process], stdout)."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV, check=True)
    wall = time.perf_counter() - t0
    rss = [int(x) / 1024 for x in re.findall(r"^peak_rss_kb (\d+)$", p.stderr, re.M)]
    return wall, rss, p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir")
    ap.add_argument("--n", default="4000,8000")
    ap.add_argument("--ranks", default="1,2,4")
    a = ap.parse_args()
    tmp = None if a.dir else tempfile.TemporaryDirectory()
    d = a.dir or tmp.name
    os.makedirs(d, exist_ok=True)
    timer = ["/usr/bin/time", "-f", "peak_rss_kb %M"]
    print("| n | run | wall (s) | peak RSS per process (MB) | rows agree |")
    print("|---|---|---|---|---|")
    for n in (int(x) for x in a.n.split(",")):
        f = matrix_file(d, n)
        wall, rss, out = timed([*timer, BASINVOL, "volume", f, "--method", "dense", "-f", "jsonl"])
        ref = json.loads(out)
        print(f"| {n} | basinvol (serial, dsyevd) | {wall:.1f} | {rss[0]:.0f} | – |", flush=True)
        for p in (int(x) for x in a.ranks.split(",")):
            wall, rss, out = timed(["mpirun", "-n", str(p), *timer, BASINVOL_MPI, "volume", f, "-f", "jsonl"])
            row = json.loads(out)
            same = all(row[k] == ref[k] for k in ("rank", "dim", "negative")) and \
                abs(row["log_volume"] - ref["log_volume"]) <= 1e-9 * abs(ref["log_volume"])
            print(f"| {n} | basinvol-mpi, P = {p} | {wall:.1f} | {min(rss):.0f}–{max(rss):.0f} | "
                  f"{'yes' if same else 'NO'} |", flush=True)
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
