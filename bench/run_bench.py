#!/usr/bin/python3
"""Times basinvol against the peers in ../shared/bench, side by side.

For each workload, basinvol and each peer run alternately (one round = one
run of each), REPS rounds; the table gives the median wall time, the peak RSS
(from /usr/bin/time) and the peer/basinvol ratio of medians. Every round also
checks that basinvol's rank, dim and negative equal peer_numpy's and that
log_volume agrees to 1e-9 relative. With --read, each round also times
reading and inflating the file alone (h5py reads every dataset, as the numpy
peer does before its eigvalsh), and the table adds basinvol's time as a
multiple of that read.

Usage: /usr/bin/python3 bench/run_bench.py [--data DIR] [--reps N] [--basinvol PATH]
                                           [--workloads a,b,...] [--peer-reps N] [--peer-coretype T] [--read]
The workloads are written by ../shared/bench/make_workloads.py into DIR
(default: bench-data beside the repository) when missing."""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.path.join(os.path.dirname(REPO), "shared", "bench")
PY = "/usr/bin/python3"
# Reads every dataset of a file into memory and nothing more.
READ = """import sys, h5py
def read(name, obj):
    if isinstance(obj, h5py.Dataset):
        obj[...]
with h5py.File(sys.argv[1], "r") as f:
    f.visititems(read)
"""

# name: (file, peers, true rank for the ARPACK peer or None, extra basinvol options)
# The batch workload runs with the peer's rule (--cut dtype): on step_0095 the
# default cut keeps one eigenvalue more, above a 4.5-decade gap that lies under
# the dtype tol; the cost is the same.
WORKLOADS = {
    "lowrank_4k": ("lowrank_4k.h5", ["numpy", "eigsh"], 100, []),
    "lowrank_12k_f32": ("lowrank_12k_f32.h5", ["numpy", "eigsh"], 200, []),
    "dense_4k": ("dense_4k.h5", ["numpy"], None, []),
    "batch_100x1000_f32": ("batch_100x1000_f32.h5", ["numpy"], None, ["--cut", "dtype"]),
}


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time; returns (seconds, peak RSS MB, stdout)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        t0 = time.monotonic()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", tf.name] + cmd, capture_output=True, text=True, env=env)
        wall = time.monotonic() - t0
        if p.returncode != 0:
            sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr}")
        rss_kb = int(tf.read().strip().splitlines()[-1])
    return wall, rss_kb / 1024, p.stdout


def parse_tsv(text):
    lines = [l.split("\t") for l in text.strip().splitlines()]
    head = lines[0]
    return [dict(zip(head, l)) for l in lines[1:]]


def check(bv_out, numpy_out):
    bv = {r["source"]: r for r in parse_tsv(bv_out)}
    ref = {r["source"]: r for r in parse_tsv(numpy_out)}
    assert set(bv) == set(ref), "different sources"
    for src, r in ref.items():
        b = bv[src]
        for k in ("rank", "dim", "negative"):
            assert b[k] == r[k], f"{src}: {k} {b[k]} != numpy {r[k]}"
        lv, lr = float(b["log_volume"]), float(r["log_volume"])
        assert abs(lv - lr) <= 1e-9 * max(1.0, abs(lr)), f"{src}: log_volume {lv} != numpy {lr}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(os.path.dirname(REPO), "bench-data"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--peer-reps", type=int, default=None, help="rounds that include the peers (default: --reps; 0: none, no answer check)")
    ap.add_argument("--basinvol", default=os.path.join(REPO, "build", "basinvol"))
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--peer-coretype", help="OPENBLAS_CORETYPE for the peers (basinvol picks SkylakeX/Haswell "
                    "itself on CPUs Debian's OpenBLAS 0.3.21 does not know): equal kernels on both sides")
    ap.add_argument("--read", action="store_true", help="also time reading and inflating each file alone (h5py)")
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.data, "batch_100x1000_f32.h5")):
        subprocess.run([PY, os.path.join(SHARED, "make_workloads.py"), a.data], check=True)
    peer_reps = a.reps if a.peer_reps is None else a.peer_reps
    peer_env = dict(os.environ)
    if a.peer_coretype:
        peer_env["OPENBLAS_CORETYPE"] = a.peer_coretype
    results = []
    for name in a.workloads.split(","):
        file, peers, k, extra = WORKLOADS[name]
        path = os.path.join(a.data, file)
        cmds = {"basinvol": [a.basinvol, "volume", path, "--format", "tsv", "--no-progress"] + extra,
                "numpy": [PY, os.path.join(SHARED, "peer_numpy.py"), path]}
        if "eigsh" in peers:
            cmds["eigsh"] = [PY, os.path.join(SHARED, "peer_scipy_eigsh.py"), path, str(k)]
        if a.read:
            cmds["read"] = [PY, "-c", READ, path]
        if subprocess.run(cmds["basinvol"][:1] + ["volume", "--help"], capture_output=True, text=True).stdout.find("--no-progress") < 0:
            cmds["basinvol"].remove("--no-progress")
        times = {t: [] for t in cmds}
        rss = {t: [] for t in cmds}
        for rep in range(a.reps):
            outs = {}
            for tool in ["basinvol"] + [p for p in peers if rep < peer_reps] + (["read"] if a.read else []):
                w, m, out = timed(cmds[tool], None if tool == "basinvol" else peer_env)
                times[tool].append(w)
                rss[tool].append(m)
                outs[tool] = out
            if "numpy" in outs:
                check(outs["basinvol"], outs["numpy"])
            print(f"{name} round {rep + 1}: " + ", ".join(f"{t} {times[t][-1]:.2f}s" for t in outs), file=sys.stderr)
        row = {"workload": name}
        for tool in cmds:
            if times[tool]:
                row[tool] = {"median_s": statistics.median(times[tool]), "peak_rss_mb": max(rss[tool]),
                             "runs": len(times[tool])}
        results.append(row)

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
          f"{time.strftime('%Y-%m-%d')}; median of paired runs\n")
    print("| workload | basinvol | RSS | peer_numpy | RSS | numpy/basinvol | peer_scipy_eigsh | eigsh/basinvol |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        b = r["basinvol"]
        cells = [r["workload"], f"{b['median_s']:.2f} s", f"{b['peak_rss_mb']:.0f} MB"]
        for tool in ("numpy", "eigsh"):
            if tool in r:
                p = r[tool]
                cells += ([f"{p['median_s']:.2f} s", f"{p['peak_rss_mb']:.0f} MB"] if tool == "numpy" else
                          [f"{p['median_s']:.2f} s"])
                cells.append(f"{p['median_s'] / b['median_s']:.1f}x")
            else:
                cells += (["-", "-", "-"] if tool == "numpy" else ["-", "-"])
        print("| " + " | ".join(cells) + " |")
    for r in results:
        if "read" in r:
            b, rd = r["basinvol"]["median_s"], r["read"]["median_s"]
            print(f"\n{r['workload']}: reading and inflating the file alone (h5py) {rd:.2f} s; "
                  f"basinvol's whole run {b:.2f} s = {b / rd:.2f}x that read")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
