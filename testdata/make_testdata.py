#!/usr/bin/python3
"""Writes basinvol's test data into this folder (or DIR). Deterministic.

Files are named for what they expect: ok.* read and measure cleanly, bad.*
must be refused with a clear error, example_* is the README's example.

Usage: /usr/bin/python3 testdata/make_testdata.py [DIR]
Needs Debian's python3-numpy and python3-h5py."""
import os
import sys

import h5py
import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
os.makedirs(out, exist_ok=True)


def path(name):
    return os.path.join(out, name)


def rotation(n, seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def with_spectrum(eigs, seed):
    q = rotation(len(eigs), seed)
    h = (q * np.asarray(eigs, dtype=float)) @ q.T
    return (h + h.T) / 2


def write(name, data, dataset="hessian", **attrs):
    with h5py.File(path(name), "w") as f:
        d = f.create_dataset(dataset, data=data)
        for k, v in attrs.items():
            d.attrs[k] = v


# --- The README's example: five checkpoints of one training run (n = 40). ---
# Later checkpoints gain flat directions and widen; step 300 is a saddle.
with h5py.File(path("example_checkpoints.h5"), "w") as f:
    g = f.create_group("checkpoints")
    plan = [  # (step, flat, curved spectrum lo..hi, negatives, loss)
        (0, 4, (1e-1, 5e1), 0, 2.31),
        (100, 10, (1e-2, 2e1), 0, 0.92),
        (200, 16, (1e-2, 1e1), 0, 0.41),
        (300, 16, (1e-3, 1e1), 3, 0.38),
        (400, 22, (1e-3, 5e0), 0, 0.17),
    ]
    for i, (step, flat, (lo, hi), neg, loss) in enumerate(plan):
        n = 40
        curved = n - flat
        rng = np.random.default_rng(100 + i)
        eigs = np.exp(rng.uniform(np.log(lo), np.log(hi), curved))
        eigs[:neg] *= -1
        eigs = np.concatenate([eigs, np.zeros(flat)])
        d = g.create_dataset(f"step_{step:04d}", data=with_spectrum(eigs, 200 + i))
        d.attrs["step"] = step
        d.attrs["loss"] = loss

# --- ok: closed forms and awkward but valid layouts. ---
# L = x² + y² in R³: H = diag(2, 2, 0), dimension 1, log V = log(πT).
write("ok.parabola_xy_in_r3.h5", np.diag([2.0, 2.0, 0.0]), loss_threshold=1.0)
# The same basin, rotated, at T = 0.5: log V = log(π/2).
write("ok.parabola_rotated_T05.h5", with_spectrum([2.0, 2.0, 0.0], 1), loss_threshold=0.5)
# Big-endian float64 and float32.
with h5py.File(path("ok.big_endian.h5"), "w") as f:
    h = with_spectrum([5.0, 3.0, 1.0, 0.5, 0, 0], 2)
    f.create_dataset("f64be", data=h, dtype=">f8")
    f.create_dataset("f32be", data=h.astype(np.float32), dtype=">f4")
# Chunked, gzip, deep in groups, and a soft link to it.
with h5py.File(path("ok.chunked_gzip.h5"), "w") as f:
    h = with_spectrum(np.concatenate([np.geomspace(1e2, 1e-2, 30), np.zeros(34)]), 3)
    f.create_dataset("run/a/b/hessian", data=h, chunks=(16, 16), compression="gzip")
    f["link_to_hessian"] = h5py.SoftLink("/run/a/b/hessian")
    f.create_dataset("run/losses", data=np.linspace(1, 0, 10))  # 1-D metadata: not a Hessian
# Chunked with shuffle + gzip and partial edge chunks (n = 50, chunks 16x16),
# next to contiguous twins: both must read to the same numbers.
with h5py.File(path("ok.shuffle_gzip_edges.h5"), "w") as f:
    h = with_spectrum(np.concatenate([np.geomspace(10, 0.1, 20), -np.geomspace(1, 0.5, 3), np.zeros(27)]), 16)
    f.create_dataset("chunked/f64", data=h, chunks=(16, 16), shuffle=True, compression="gzip")
    f.create_dataset("chunked/f32", data=h.astype(np.float32), chunks=(16, 16), shuffle=True, compression="gzip")
    f.create_dataset("plain/f64", data=h)
    f.create_dataset("plain/f32", data=h.astype(np.float32))
# A saddle: 2 negative eigenvalues.
write("ok.saddle.h5", with_spectrum([4.0, 2.0, 1.0, -0.5, -0.25, 0.0, 0.0], 4))
# Float32-stored low-rank matrix.
write("ok.float32_lowrank.h5", with_spectrum(np.concatenate([np.geomspace(10, 0.1, 12), np.zeros(20)]), 5).astype(np.float32))
# Two Hessians of different n in one file (rank compares them by dimension only).
with h5py.File(path("ok.mixed_n.h5"), "w") as f:
    f.create_dataset("small", data=with_spectrum([1.0, 2.0, 0.0], 6))
    f.create_dataset("large", data=with_spectrum([1.0, 2.0, 3.0, 0.0, 0.0], 7))
# Slightly asymmetric (relative 1e-9): symmetrized, reported.
h = with_spectrum([3.0, 2.0, 1.0, 0.0], 8)
h[0, 1] += 1e-9
write("ok.near_symmetric.h5", h)
# Integer data: read exactly.
write("ok.integer.h5", np.array([[2, 1, 0], [1, 2, 0], [0, 0, 0]], dtype=np.int32))

# --- bad: each must be refused with a clear one-line error. ---
h = with_spectrum([1.0, 2.0, 3.0], 9)
h[1, 2] = np.nan
write("bad.nan.h5", h)
h = with_spectrum([1.0, 2.0, 3.0], 10)
h[0, 2] = np.inf
write("bad.inf.h5", h)
h = with_spectrum([1.0, 2.0, 3.0], 11)
h[0, 1] += 0.5
write("bad.asymmetric.h5", h)
write("bad.nonsquare.h5", np.ones((3, 4)))
write("bad.3d.h5", np.ones((2, 2, 2)))
write("bad.empty.h5", np.zeros((0, 0)))
with h5py.File(path("bad.string.h5"), "w") as f:
    f.create_dataset("hessian", data=np.array([[b"a", b"b"], [b"c", b"d"]]))
with h5py.File(path("bad.compound.h5"), "w") as f:
    f.create_dataset("hessian", data=np.zeros((2, 2), dtype=[("a", "<f8"), ("b", "<i4")]))
with h5py.File(path("bad.empty_group.h5"), "w") as f:
    f.create_group("checkpoints")
    f.create_dataset("checkpoints_meta", data=np.arange(3))
with h5py.File(path("bad.huge_declared.h5"), "w") as f:
    f.create_dataset("hessian", shape=(300000, 300000), dtype="f8", chunks=(1000, 1000))
with open(path("bad.not_hdf5.h5"), "w") as f:
    f.write("this is not an HDF5 file\n")
# A checkpoint file with one broken member among good ones.
with h5py.File(path("bad.one_broken_member.h5"), "w") as f:
    f.create_dataset("checkpoints/step_0000", data=with_spectrum([3.0, 1.0, 0.0, 0.0], 12))
    h = with_spectrum([3.0, 1.0, 0.5, 0.0], 13)
    h[2, 3] = np.nan
    f.create_dataset("checkpoints/step_0001", data=h)
    f.create_dataset("checkpoints/step_0002", data=with_spectrum([2.0, 1.0, 0.0, 0.0], 14))
# Truncated: a valid file cut short.
full = path("bad.truncated.h5")
with h5py.File(full, "w") as f:
    f.create_dataset("hessian", data=with_spectrum(np.arange(1.0, 65.0), 15))
data = open(full, "rb").read()
open(full, "wb").write(data[: len(data) // 2])
print("wrote test data into", out)
