#!/usr/bin/python3
"""End-to-end test of examples/digits/run_structured.sh, shrunk (a CNN of 706
parameters, two checkpoints), in a temporary directory.

    /usr/bin/python3 tests/python/test_digits_structured_example.py BASINVOL

Checks that the example trains, writes each checkpoint as per-layer K-FAC and
Gauss-Newton-factor structures, that basinvol ranks both runs with and
without the det(H + δI) regularizer, that one layer's rank equals numpy's
from its stored Kronecker factors, that the softmax's flat directions are
found in the last layer, and that the per-layer plots are real PNG files.
Exits non-zero on any failure."""
import csv
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = ["--steps", "3,12", "--width", "2", "--hidden", "8", "--ggn-samples", "4"]
TENSORS = ["0000_0.weight", "0001_0.bias", "0002_2.weight", "0003_2.bias",
           "0004_6.weight", "0005_6.bias", "0006_8.weight", "0007_8.bias"]


def main():
    if len(sys.argv) != 2 or not os.access(sys.argv[1], os.X_OK):
        print("usage: test_digits_structured_example.py BASINVOL", file=sys.stderr)
        return 2
    binary = os.path.abspath(sys.argv[1])
    failures = []

    def check(cond, what):
        print(("ok    " if cond else "FAIL  ") + what)
        if not cond:
            failures.append(what)

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
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
