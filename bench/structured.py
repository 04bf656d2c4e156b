#!/usr/bin/python3
"""Structured Hessians at scale against the numpy script a user would write.

    /usr/bin/python3 bench/structured.py [--dir DIR] [--n-factor N] [--m M] [--kron-a A] [--kron-b B]
                                         [--net-pairs P] [--net-side S] [--rounds R] [--workloads LIST]

Writes (once, into DIR, default a temporary directory outside the
repository) a float32 factor G of M x N, a Kronecker pair A (a x a),
B (b x b) of rank 3/4 each, and a network of P such pairs S x S (a
`blocks` group; n = P·S², 10^7 by default), then times, alternately in each
round, `basinvol volume` and the peer script (h5py read, then
np.linalg.svd(G, compute_uv=False), or eigvalsh of each Kronecker factor and
the outer product), whole process, with peak RSS from /usr/bin/time, and
the stored datasets' size beside it.
Checks that both report the same rank and log-volume, and prints the
ratios. Which OpenBLAS kernels each side ran is printed by the peer
(threadpoolctl, when installed) and by basinvol's context block.
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BASINVOL = os.environ.get("BASINVOL", os.path.join(HERE, "..", "build", "basinvol"))

PEER = r'''
import sys, math, json, h5py, numpy as np
path, kind = sys.argv[1], sys.argv[2]
eps32 = float(np.finfo(np.float32).eps)
with h5py.File(path, "r") as f:
    if kind == "factor":
        G = f["factor/G"][...]
        lam = np.linalg.svd(G.astype(np.float64), compute_uv=False) ** 2
        n = G.shape[1]
        frob = math.sqrt(float(np.sum(lam ** 2)))
    else:
        pairs = [f["kron"]] if kind == "kron" else [f["net"][k] for k in sorted(f["net"])]
        lam = []
        for g in pairs:
            A = g["A"][...].astype(np.float64); B = g["B"][...].astype(np.float64)
            lam.append(np.outer(np.linalg.eigvalsh(A), np.linalg.eigvalsh(B)).ravel())
        lam = np.concatenate(lam)
        n = lam.size
        frob = math.sqrt(float(np.sum(lam ** 2)))
a = np.abs(lam)
# The workloads have a clean gap between their smallest nonzero eigenvalue
# and the exact zeros: everything above the float32 noise floor is curved.
floor = max(eps32 * frob, 8 * math.sqrt(n) * np.finfo(np.float64).eps * frob)
kept = a[a > floor]
r = len(kept)
logv = r / 2 * math.log(math.pi) - math.lgamma(r / 2 + 1) + r / 2 * math.log(2) - 0.5 * float(np.sum(np.log(kept)))
print(json.dumps({"rank": r, "log_volume": logv}))
'''


def timed(cmd, env=None):
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "RSS %M"] + cmd, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit("failed: %s\n%s" % (" ".join(cmd), p.stderr))
    rss = int(re.findall(r"RSS (\d+)", p.stderr)[-1]) / 1024
    return dt, rss, p.stdout


def stored_mb(path):
    """The bytes the file's datasets hold (the factors basinvol reads), in MB."""
    import h5py
    total = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda _, o: total.append(o.id.get_storage_size()) if isinstance(o, h5py.Dataset) else None)
    return sum(total) / 2**20


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir")
    ap.add_argument("--n-factor", type=int, default=200_000)
    ap.add_argument("--m", type=int, default=500)
    ap.add_argument("--kron-a", type=int, default=500)
    ap.add_argument("--kron-b", type=int, default=1000)
    ap.add_argument("--net-pairs", type=int, default=10)
    ap.add_argument("--net-side", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workloads", default="factor,kron,net", help="comma-separated subset of factor,kron,net")
    ap.add_argument("--peer-coretype", help="OPENBLAS_CORETYPE for the peer (basinvol picks SkylakeX/Haswell "
                    "itself on CPUs Debian's OpenBLAS 0.3.21 does not know): equal kernels on both sides")
    a = ap.parse_args()
    import h5py
    d = a.dir or tempfile.mkdtemp(prefix="basinvol-bench-structured-")
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(1)
    files = {}
    f = os.path.join(d, "factor_%d_%d.h5" % (a.m, a.n_factor))
    if not os.path.exists(f):
        with h5py.File(f, "w") as h5:
            g = h5.create_group("factor")
            g.attrs["structure"] = "factor"
            G = g.create_dataset("G", shape=(a.m, a.n_factor), dtype="float32")
            scale = np.logspace(0, -2, a.m)[:, None]
            for r0 in range(0, a.m, 50):
                G[r0:r0 + 50] = (rng.standard_normal((min(50, a.m - r0), a.n_factor)) * scale[r0:r0 + 50]).astype(np.float32)
    files["factor"] = f

    def psd(k):
        q = np.linalg.qr(rng.standard_normal((k, k)))[0]
        e = np.r_[np.logspace(0, -1, 3 * k // 4), np.zeros(k - 3 * k // 4)]
        h = (q * e) @ q.T
        return ((h + h.T) / 2).astype(np.float32)

    f = os.path.join(d, "kron_%d_%d.h5" % (a.kron_a, a.kron_b))
    if not os.path.exists(f):
        with h5py.File(f, "w") as h5:
            g = h5.create_group("kron")
            g.attrs["structure"] = "kron"
            g["A"] = psd(a.kron_a)
            g["B"] = psd(a.kron_b)
    files["kron"] = f
    f = os.path.join(d, "kron_net_%dx%d.h5" % (a.net_pairs, a.net_side))
    if not os.path.exists(f):
        with h5py.File(f, "w") as h5:
            net = h5.create_group("net")
            net.attrs["structure"] = "blocks"
            for i in range(a.net_pairs):
                g = net.create_group("layer%02d" % i)
                g.attrs["structure"] = "kron"
                g["A"] = psd(a.net_side)
                g["B"] = psd(a.net_side)
    files["net"] = f
    print("| workload | stored | basinvol | RSS | numpy script | RSS | ratio | answers |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, path in files.items():
        if kind not in a.workloads.split(","):
            continue
        tb, tp = [], []
        for _ in range(a.rounds):
            t, rb, out = timed([BASINVOL, "volume", path, "-f", "jsonl"])
            row = json.loads(out.splitlines()[0])
            tb.append(t)
            env = dict(os.environ)
            if a.peer_coretype:
                env["OPENBLAS_CORETYPE"] = a.peer_coretype
            t, rp, out = timed(["/usr/bin/python3", "-c", PEER, path, kind], env)
            peer = json.loads(out)
            tp.append(t)
            print("%s round %d: basinvol %.2f s, numpy %.2f s (%.1fx)" % (kind, len(tb), tb[-1], tp[-1], tp[-1] / tb[-1]),
                  file=sys.stderr)
        same = row["rank"] == peer["rank"] and abs(row["log_volume"] - peer["log_volume"]) <= 1e-6 * abs(peer["log_volume"])
        mb, mp = sorted(tb)[len(tb) // 2], sorted(tp)[len(tp) // 2]
        stored = stored_mb(path)
        print("| %s (n %d) | %.0f MB | %.2f s | %.0f MB (%.2fx) | %.2f s | %.0f MB | %.1fx | %s (rank %d, log V %.6g) |" % (
            kind, row["n"], stored, mb, rb, rb / stored, mp, rp, mp / mb, "equal" if same else "DIFFER", row["rank"],
            row["log_volume"]))


if __name__ == "__main__":
    main()
