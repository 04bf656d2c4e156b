#!/usr/bin/python3
"""End-to-end tests of the digits examples, each in a temporary directory.

    /usr/bin/python3 tests/python/test_digits_example.py BASINVOL [dense|structured]

dense (examples/digits/run.sh): the example trains, writes 5 checkpoints with
their attributes and parameter blocks, basinvol ranks all of them, and both
plots are real PNG files.

structured (examples/digits/run_structured.sh, shrunk: a CNN of 706
parameters, two checkpoints): each checkpoint is written as per-layer K-FAC
and Gauss-Newton-factor structures, basinvol ranks both runs with and without
the det(H + δI) regularizer, one layer's rank equals numpy's from its stored
Kronecker factors, the softmax's flat directions are found in the last layer,
and the per-layer plots are real PNG files.

Exits non-zero on any failure."""
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = ["--steps", "3,12", "--width", "2", "--hidden", "8", "--ggn-samples", "4"]
TENSORS = ["0000_0.weight", "0001_0.bias", "0002_2.weight", "0003_2.bias",
           "0004_6.weight", "0005_6.bias", "0006_8.weight", "0007_8.bias"]


def dense_example(binary, check):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out")
        t0 = time.time()
        p = subprocess.run(["bash", os.path.join(ROOT, "examples", "digits", "run.sh"), out, binary],
                           cwd=tmp, capture_output=True, text=True)
        seconds = time.time() - t0
        sys.stdout.write(p.stdout)
        sys.stderr.write(p.stderr)
        check(p.returncode == 0, f"run.sh exits 0 (got {p.returncode})")
        check(seconds < 120, f"run.sh takes under 2 minutes ({seconds:.1f} s)")
        if p.returncode != 0:
            return 1
        with h5py.File(os.path.join(out, "digits.h5"), "r") as f:
            names = sorted(f["checkpoints"])
            check(names == ["step_00025", "step_00100", "step_00250", "step_00500", "step_01000"],
                  f"five checkpoints {names}")
            d = f["checkpoints/step_01000"]
            check(d.shape == (610, 610) and d.dtype == "float64", f"610 x 610 float64 ({d.shape}, {d.dtype})")
            check(int(d.attrs["step"]) == 1000 and 0 < float(d.attrs["loss"]) < 0.1, "step and loss attributes")
            check(list(d.attrs["param_offsets"]) == [0, 512, 520, 600], "parameter block offsets")
        with open(os.path.join(out, "rank.json")) as fh:
            rows = json.load(fh)["rows"]
        check(len(rows) == 5 and all(r["status"] == "ok" for r in rows), "basinvol ranks all 5 checkpoints")
        check(sorted(r["place"] for r in rows) == [1, 2, 3, 4, 5], "places 1..5")
        # One run's checkpoints share its name: plot_run groups by name, one line.
        check(len({r["name"] for r in rows}) == 1 and rows[0]["name"], "the checkpoints carry the run's one name")
        check(all(r["n"] == 610 and r["dim"] + r["rank"] == 610 and r["dim"] >= 9 for r in rows),
              "dim + rank = n, and at least the 9 flat directions of the softmax")
        with open(os.path.join(out, "spectrum.json")) as fh:
            spec = json.load(fh)["rows"][0]
        check(spec["dataset"] == "/checkpoints/step_01000" and len(spec["eigenvalues"]) == 610,
              "spectrum of the last checkpoint")
        for png in ("run.png", "spectrum.png"):
            with open(os.path.join(out, png), "rb") as fh:
                data = fh.read()
            check(data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, f"{png} is a PNG of {len(data)} bytes")
    check(not os.path.exists(os.path.join(ROOT, "examples", "digits", "digits_out")), "nothing written to the source tree")


def structured_example(binary, check):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out")
        p = subprocess.run(["bash", os.path.join(ROOT, "examples", "digits", "run_structured.sh"), out, binary,
                            "--"] + SMALL, cwd=tmp, capture_output=True, text=True)
        sys.stdout.write(p.stdout)
        sys.stderr.write(p.stderr)
        check(p.returncode == 0, f"run_structured.sh exits 0 (got {p.returncode})")
        if p.returncode != 0:
            return 1
        h5 = os.path.join(out, "cnn.h5")
        with h5py.File(h5, "r") as f:
            for kind in ("kfac", "ggn"):
                check(sorted(f[kind]) == ["step_00003", "step_00012"], f"{kind}: two checkpoints")
                g = f[kind + "/step_00012"]
                check(g.attrs["structure"] == "blocks" and int(g.attrs["step"]) == 12, f"{kind}: a blocks structure at step 12")
                check(sorted(g) == TENSORS, f"{kind}: one block per parameter tensor {sorted(g)}")
            last = f["kfac/step_00012/0006_8.weight"]
            check(last.attrs["structure"] == "kron" and last["A"].shape == (10, 10) and last["B"].shape == (8, 8),
                  "the last layer's weight is Kron(10x10, 8x8)")
            alpha, beta = np.linalg.eigvalsh(last["A"][()]), np.linalg.eigvalsh(last["B"][()])
        runs = {}
        for kind in ("kfac", "ggn"):
            with open(os.path.join(out, kind + ".json")) as fh:
                runs[kind] = {r["step"]: r for r in json.load(fh)["rows"]}
            rows = list(runs[kind].values())
            check(len(rows) == 2 and all(r["status"] == "ok" and r["n"] == 706 for r in rows), f"{kind}: 2 rows of n = 706")
            check(sorted(r["place"] for r in rows) == [1, 2] and sorted(r["place_regularized"] for r in rows) == [1, 2],
                  f"{kind}: places with and without the regularizer")
            check(all([b["name"] for b in r["blocks"]] == TENSORS for r in rows), f"{kind}: rows carry the 8 blocks")
        row = runs["kfac"][12]
        blocks = {b["name"]: b for b in row["blocks"]}
        want = int((np.abs(np.outer(alpha, beta)) > row["tol"]).sum())
        check(blocks["0006_8.weight"]["rank"] == want, f"last layer's K-FAC rank {blocks['0006_8.weight']['rank']} = numpy's {want}")
        # Cross-entropy does not see a constant added to every logit: the last
        # layer's output factor has the all-ones null vector, so its weight has
        # at least `hidden` flat directions and its bias one.
        for kind in ("kfac", "ggn"):
            b = {x["name"]: x for x in runs[kind][12]["blocks"]}
            check(b["0006_8.weight"]["dim"] >= 8 and b["0007_8.bias"]["dim"] >= 1, f"{kind}: softmax flat directions found")
        with open(os.path.join(out, "layers.tsv"), newline="") as fh:
            table = list(csv.DictReader(fh, delimiter="\t"))
        check(len(table) == 2 * (1 + len(TENSORS)), f"layers.tsv: 2 wholes and their 8 blocks ({len(table)} rows)")
        for kind in ("kfac", "ggn"):
            with open(os.path.join(out, kind + "_layers.png"), "rb") as fh:
                data = fh.read()
            check(data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, f"{kind}_layers.png is a PNG of {len(data)} bytes")
    check(not os.path.exists(os.path.join(ROOT, "examples", "digits", "digits_cnn_out")), "nothing written to the source tree")


def main():
    which = sys.argv[2] if len(sys.argv) == 3 else "dense"
    if len(sys.argv) not in (2, 3) or not os.access(sys.argv[1], os.X_OK) or which not in ("dense", "structured"):
        print("usage: test_digits_example.py BASINVOL [dense|structured]", file=sys.stderr)
        return 2
    failures = []

    def check(cond, what):
        print(("ok    " if cond else "FAIL  ") + what)
        if not cond:
            failures.append(what)

    run = dense_example if which == "dense" else structured_example
    if run(os.path.abspath(sys.argv[1]), check) or failures:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
