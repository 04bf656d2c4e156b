#!/usr/bin/python3
"""End-to-end test of examples/digits/run.sh, in a temporary directory.

    /usr/bin/python3 tests/python/test_digits_example.py BASINVOL

Checks that the example trains, writes 5 checkpoints with their attributes and
parameter blocks, that basinvol ranks all of them, and that both plots are
real PNG files. Exits non-zero on any failure."""
import json
import os
import subprocess
import sys
import tempfile
import time

import h5py

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    if len(sys.argv) != 2 or not os.access(sys.argv[1], os.X_OK):
        print("usage: test_digits_example.py BASINVOL", file=sys.stderr)
        return 2
    binary = os.path.abspath(sys.argv[1])
    failures = []

    def check(cond, what):
        print(("ok    " if cond else "FAIL  ") + what)
        if not cond:
            failures.append(what)

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
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
