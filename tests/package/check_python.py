"""The installed Python package: `import basinvol` from PREFIX (not the source
or build tree), analyze() on a matrix equal to the installed command line's
row on the same matrix, and the module entry points.

    PYTHONPATH=PREFIX/lib/python3.X/dist-packages /usr/bin/python3 check_python.py PREFIX"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

prefix = os.path.realpath(sys.argv[1])
import basinvol  # noqa: E402
import basinvol.export  # noqa: E402

assert os.path.realpath(basinvol.__file__).startswith(prefix), basinvol.__file__
assert os.path.realpath(basinvol._core.__file__).startswith(prefix), basinvol._core.__file__

rng = np.random.default_rng(2026)
Q, _ = np.linalg.qr(rng.standard_normal((80, 80)))
H = (Q * np.r_[np.logspace(-3, 1, 50), np.zeros(30)]) @ Q.T
H = (H + H.T) / 2  # exactly symmetric: the file then states no error of its own
with tempfile.TemporaryDirectory() as tmp:
    f = os.path.join(tmp, "h.h5")
    basinvol.export.write_hessian(f, H)
    out = subprocess.run([os.path.join(prefix, "bin", "basinvol"), "volume", f, "--format", "jsonl"],
                         capture_output=True, text=True, check=True).stdout
    ref = json.loads(out)
    r = basinvol.analyze(H)
    for k in ("n", "rank", "dim", "negative", "cut", "method", "certified", "warnings"):
        assert r[k] == ref[k], (k, r[k], ref[k])
    assert abs(r.log_volume - ref["log_volume"]) <= 1e-9 * abs(ref["log_volume"]), (r.log_volume, ref["log_volume"])
    assert (r.dim, r.rank) == (30, 50)
for module in ("basinvol.export", "basinvol.plot"):
    subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, check=True)
print("installed package ok:", os.path.dirname(basinvol.__file__), basinvol.__version__)
