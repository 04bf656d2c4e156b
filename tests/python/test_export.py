#!/usr/bin/python3
"""Tests of basinvol.export and basinvol.plot (the package's pure-Python
modules, python/basinvol/), checked against PyTorch, numpy and the basinvol
binary, and of the deprecated tools/ shims that forward to them.

    PYTHONPATH=build/python /usr/bin/python3 tests/python/test_export.py BASINVOL [unittest options]

(without PYTHONPATH the package is taken from the source tree, python/).

BASINVOL is the path of the built binary. Needs Debian's python3-torch,
python3-numpy, python3-h5py and python3-matplotlib; a missing module is a
failure, not a skip. Everything is written to a temporary directory."""
import copy
import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

import h5py
import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, os.path.join(ROOT, "python"))
    os.environ["PYTHONPATH"] = os.path.join(ROOT, "python")  # for the subprocesses
import basinvol.export as bx  # noqa: E402

PLOT = ["-m", "basinvol.plot"]
BASINVOL = None  # set from the command line


def reference_hessian(model, loss_fn, x, y):
    """torch.autograd.functional.hessian over the tuple of parameter tensors, in float64,
    assembled into one matrix in model.parameters() order."""
    from torch.nn.utils import stateless
    m = copy.deepcopy(model).double()
    names = [k for k, _ in m.named_parameters()]
    params = tuple(p.detach() for _, p in m.named_parameters())
    xd = x.double() if x.is_floating_point() else x
    yd = y.double() if y.is_floating_point() else y

    def f(*ps):
        return loss_fn(stateless.functional_call(m, dict(zip(names, ps)), (xd,)), yd)

    blocks = torch.autograd.functional.hessian(f, params)
    sizes = [p.numel() for p in params]
    return np.block([[blocks[i][j].reshape(sizes[i], sizes[j]).numpy() for j in range(len(sizes))]
                     for i in range(len(sizes))])


def with_spectrum(eigs, seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(eigs), len(eigs))))
    q = q * np.sign(np.diag(r))
    h = (q * np.asarray(eigs, dtype=float)) @ q.T
    return (h + h.T) / 2


def expected(H_stored, threshold=1.0):
    """rank, dim, negative, tol and log-volume by numpy, with the dtype cut of the stored type
    (never under the noise floor: stored rounding, 8·sqrt(n)·eps64, and the input's asymmetry)."""
    eps = np.finfo(H_stored.dtype).eps
    H64 = H_stored.astype(np.float64)
    lam = np.linalg.eigvalsh(H64)
    n = len(lam)
    frob = np.linalg.norm((H64 + H64.T) / 2)
    floor = max(eps * frob, 8 * math.sqrt(n) * np.finfo(np.float64).eps * frob, np.linalg.norm(H64 - H64.T))
    tol = max(np.abs(lam).max() * n * eps, floor)
    kept = lam[np.abs(lam) > tol]
    r = len(kept)
    log_omega = (r / 2) * math.log(math.pi) - math.lgamma(r / 2 + 1)
    logv = log_omega + (r / 2) * math.log(2 * threshold) - 0.5 * np.sum(np.log(np.abs(kept)))
    return dict(rank=r, dim=n - r, negative=int(np.sum(kept < 0)), tol=tol, log_volume=float(logv))


def basinvol(*args, expect_status=0):
    p = subprocess.run([BASINVOL, *args], capture_output=True, text=True)
    if p.returncode != expect_status:
        raise AssertionError(f"basinvol {' '.join(args)} exited {p.returncode}:\n{p.stderr}")
    return p.stdout


def rows_of(*args):
    return json.loads(basinvol(*args, "--format", "json"))["rows"]


class Tied(torch.nn.Module):
    """Two layers sharing one weight."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(3, 3, bias=False)
        self.b = torch.nn.Linear(3, 3)
        self.b.weight = self.a.weight

    def forward(self, x):
        return self.b(torch.tanh(self.a(x)))


class HessianOf(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        self.x = torch.randn(30, 5)
        self.y = torch.randint(0, 3, (30,))

    def check(self, model, loss_fn, x, y):
        H = bx.hessian_of(model, loss_fn, x, y)
        R = reference_hessian(model, loss_fn, x, y)
        n = sum(p.numel() for p in model.parameters())
        self.assertEqual(H.shape, (n, n))
        self.assertEqual(H.dtype, np.float64)
        np.testing.assert_allclose(H, R, rtol=0, atol=1e-10)
        self.assertLess(np.abs(H - H.T).max(), 1e-12)
        return H

    def test_mlp_cross_entropy(self):
        model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
        before = [p.detach().clone() for p in model.parameters()]
        self.check(model, torch.nn.functional.cross_entropy, self.x, self.y)
        # the model is left as it was: float32, same values
        for b, p in zip(before, model.parameters()):
            self.assertEqual(p.dtype, torch.float32)
            self.assertTrue(torch.equal(b, p.detach()))

    def test_mse_float_targets_and_vectorize(self):
        model = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
        y = torch.randn(30, 2)
        H = self.check(model, torch.nn.functional.mse_loss, self.x, y)
        Hv = bx.hessian_of(model, torch.nn.functional.mse_loss, self.x, y, vectorize=True)
        np.testing.assert_allclose(Hv, H, rtol=0, atol=1e-12)

    def test_tied_weights(self):
        model = Tied()
        x, y = torch.randn(10, 3), torch.randn(10, 3)
        H = bx.hessian_of(model, torch.nn.functional.mse_loss, x, y)
        w0 = model.a.weight.detach().double()
        b0 = model.b.bias.detach().double()

        def f(w, b):
            return torch.nn.functional.mse_loss(torch.tanh(x.double() @ w.T) @ w.T + b, y.double())

        hb = torch.autograd.functional.hessian(f, (w0, b0))
        R = np.block([[hb[0][0].reshape(9, 9).numpy(), hb[0][1].reshape(9, 3).numpy()],
                      [hb[1][0].reshape(3, 9).numpy(), hb[1][1].numpy()]])
        self.assertEqual(H.shape, (12, 12))
        np.testing.assert_allclose(H, R, rtol=0, atol=1e-10)

    def test_parameter_blocks(self):
        model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
        b = bx.parameter_blocks(model)
        self.assertEqual(b["names"], ["0.weight", "0.bias", "2.weight", "2.bias"])
        self.assertEqual(b["offsets"], [0, 20, 24, 36])
        self.assertEqual(b["sizes"], [20, 4, 12, 3])
        self.assertEqual(b["shapes"], [(4, 5), (4,), (3, 4), (3,)])


class WrittenFilesReadByBasinvol(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def agree(self, row, H_stored, threshold=1.0):
        e = expected(H_stored, threshold)
        self.assertEqual(row["status"], "ok", row.get("error"))
        self.assertEqual(row["n"], H_stored.shape[0])
        self.assertEqual(row["stored_type"], str(H_stored.dtype))
        for k in ("rank", "dim", "negative"):
            self.assertEqual(row[k], e[k], f"{k}: basinvol {row[k]}, numpy {e[k]} ({row['source']})")
        self.assertAlmostEqual(row["tol"] / e["tol"], 1.0, delta=1e-6)
        self.assertLessEqual(abs(row["log_volume"] - e["log_volume"]), 1e-7 * abs(e["log_volume"]),
                             f"log_volume: basinvol {row['log_volume']!r}, numpy {e['log_volume']!r}")
        self.assertEqual(row["threshold"], threshold)

    def cases(self):
        """(name, H, stored dtype, T): saddles, flat directions, a real MLP Hessian."""
        rng = np.random.default_rng(7)
        spec = np.concatenate([np.geomspace(30, 1e-3, 40) * rng.choice([1, 1, 1, -1], 40), np.zeros(20)])
        torch.manual_seed(1)
        model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 4))
        x = torch.randn(50, 6)
        x[:, 0] = 0  # an input that is always zero: exact flat directions
        H_mlp = bx.hessian_of(model, torch.nn.functional.cross_entropy, x, torch.randint(0, 4, (50,)))
        return [("synthetic64", with_spectrum(spec, 1), "float64", 1.0),
                ("synthetic32", with_spectrum(spec, 2), "float32", 0.25),
                ("mlp64", H_mlp, "float64", 1.0)]

    def test_rank_dim_negative_log_volume_match_numpy(self):
        for name, H, dtype, T in self.cases():
            with self.subTest(name):
                f = os.path.join(self.dir, name + ".h5")
                where = bx.write_hessian(f, H, dtype=dtype, loss_threshold=T if T != 1.0 else None,
                                         name=name, step=3, loss=0.5)
                self.assertEqual(where, "/hessian")
                with h5py.File(f, "r") as h:
                    stored = h["hessian"][()]
                self.assertEqual(stored.dtype, np.dtype(dtype))
                for extra in ((), ("--cut", "dtype")):
                    (row,) = rows_of("volume", f, *extra)
                    self.agree(row, stored, T)
                self.assertEqual(row["name"], name)
                self.assertEqual(row["step"], 3)
                self.assertEqual(row["loss"], 0.5)
                self.assertTrue(row["negative"] > 0 or name == "mlp64")

    def test_hessian_error_is_recorded_and_raises_the_floor(self):
        rng = np.random.default_rng(3)
        q, _ = np.linalg.qr(rng.standard_normal((40, 40)))
        H = (q * np.r_[np.logspace(0, -2, 10), np.zeros(30)]) @ q.T
        H = (H + H.T) / 2
        noisy = H + np.triu(1e-12 * rng.standard_normal((40, 40)), 1)  # the computed Hessian's own error
        path = os.path.join(self.dir, "err.h5")
        bx.write_hessian(path, noisy, dataset="noisy")
        bx.write_hessian(path, (noisy + noisy.T) / 2, dataset="symmetrized", hessian_error=float(np.linalg.norm(noisy - noisy.T)))
        bx.write_hessian(path, H, dataset="exact")
        with h5py.File(path) as f:
            self.assertAlmostEqual(f["noisy"].attrs["hessian_error"], np.linalg.norm(noisy - noisy.T), delta=1e-20)
            self.assertNotIn("hessian_error", f["exact"].attrs)  # exactly symmetric: nothing to record
        rows = {r["dataset"]: r for r in rows_of("volume", path)}
        for name in ("noisy", "symmetrized"):
            self.assertEqual(rows["/" + name]["rank"], 10, name)
            self.assertGreaterEqual(rows["/" + name]["noise_floor"], np.linalg.norm(noisy - noisy.T) * 0.999)
        for name in ("noisy", "symmetrized"):  # the row reports the stated error
            self.assertAlmostEqual(rows["/" + name]["hessian_error"], np.linalg.norm(noisy - noisy.T), delta=1e-20)
        self.assertEqual(rows["/exact"]["rank"], 10)

    def test_large_is_chunked_gzip_and_read(self):
        n = bx.CHUNK_FROM
        spec = np.concatenate([np.geomspace(10, 1e-2, 300), -np.geomspace(1, 1e-2, 20), np.zeros(n - 320)])
        H = with_spectrum(spec, 3)
        f = os.path.join(self.dir, "big.h5")
        bx.write_hessian(f, H, dataset="run/hessian")
        with h5py.File(f, "r") as h:
            d = h["run/hessian"]
            self.assertEqual(d.compression, "gzip")
            self.assertIsNotNone(d.chunks)
            self.assertEqual(d.chunks[1], n)
            stored = d[()]
        np.testing.assert_array_equal(stored, H)
        (row,) = rows_of("volume", f + ":/run/hessian")
        self.agree(row, stored)
        small = os.path.join(self.dir, "small.h5")
        bx.write_hessian(small, H[:10, :10] @ H[:10, :10].T)
        with h5py.File(small, "r") as h:
            self.assertIsNone(h["hessian"].chunks)

    def test_checkpoints_and_blocks(self):
        model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
        blocks = bx.parameter_blocks(model)
        x, y = torch.randn(20, 4), torch.randint(0, 2, (20,))
        f = os.path.join(self.dir, "run.h5")
        stored = {}
        for step in (0, 7, 120, 4000):
            with torch.no_grad():
                for p in model.parameters():
                    p.mul_(1.1)
            H = bx.hessian_of(model, torch.nn.functional.cross_entropy, x, y)
            where = bx.write_checkpoint(f, H, step, loss=1.0 / (step + 1), blocks=blocks)
            self.assertEqual(where, f"/checkpoints/step_{step:05d}")
            stored[step] = H
        bx.write_checkpoint(f, stored[7], 7, loss=0.125, blocks=blocks)  # rewriting a step replaces it
        with h5py.File(f, "r") as h:
            self.assertEqual(sorted(h["checkpoints"]), ["step_00000", "step_00007", "step_00120", "step_04000"])
            d = h["checkpoints/step_00120"]
            self.assertEqual(int(d.attrs["step"]), 120)
            self.assertEqual(bx.read_blocks(d)["names"], blocks["names"])
            self.assertEqual(list(d.attrs["param_offsets"]), blocks["offsets"])
            self.assertEqual(list(d.attrs["param_sizes"]), blocks["sizes"])
            self.assertEqual(bx.read_blocks(d)["shapes"], blocks["shapes"])
        rows = rows_of("rank", f)
        self.assertEqual(sorted(r["step"] for r in rows), [0, 7, 120, 4000])
        self.assertEqual(sorted(r["place"] for r in rows), [1, 2, 3, 4])
        for r in rows:
            self.agree(r, stored[int(r["step"])])
            self.assertEqual(r["loss"], 0.125 if r["step"] == 7 else 1.0 / (r["step"] + 1))
        with self.assertRaises(ValueError):
            bx.write_hessian(f, stored[0], dataset="bad", blocks={**blocks, "sizes": [1, 2]})
        with self.assertRaises(ValueError):
            bx.write_hessian(f, np.zeros((3, 4)))
        with self.assertRaises(ValueError):
            bx.write_hessian(f, np.full((2, 2), np.nan))

    def test_cli_convert(self):
        H = with_spectrum([3.0, 1.0, -0.5, 0.0], 5)
        npy = os.path.join(self.dir, "h.npy")
        np.save(npy, H)
        f = os.path.join(self.dir, "c.h5")
        cli = ["-m", "basinvol.export"]
        out = subprocess.run([sys.executable, *cli, "convert", npy, f, "--step", "42", "--loss", "0.2"],
                             capture_output=True, text=True, check=True).stdout
        self.assertEqual(out.strip(), f + ":/checkpoints/step_00042")
        (row,) = rows_of("volume", f)
        self.agree(row, H)
        self.assertEqual(row["step"], 42)
        info = subprocess.run([sys.executable, *cli, "info", f], capture_output=True, text=True, check=True).stdout
        self.assertIn("/checkpoints/step_00042  n 4  float64", info)

    def test_cli_info_of_structures_gives_their_n_type_and_attributes(self):
        rng = np.random.default_rng(8)
        f = os.path.join(self.dir, "s.h5")
        model = {"0_w": bx.Kron(np.eye(4, dtype=np.float32), np.eye(3, dtype=np.float32)),
                 "1_g": bx.Factor(rng.standard_normal((2, 6))), "2_d": bx.Diagonal(np.arange(1.0, 6.0)),
                 "3_h": with_spectrum([2.0, 1.0, 0.0], 4)}
        bx.write_structure(f, "ck/step_5", model, dtype=None, step=5, loss=0.25)
        with h5py.File(f, "a") as h:
            g = h.create_group("typo")
            g.attrs["structure"] = "kronecker"
        (row, bad) = sorted(json.loads(basinvol("volume", f, "--format", "json", expect_status=1))["rows"],
                            key=lambda r: r["source"])
        info = subprocess.run([sys.executable, "-m", "basinvol.export", "info", f, "--blocks"], capture_output=True,
                              text=True, check=True).stdout.splitlines()
        self.assertIn("/ck/step_5  structure blocks  n %d  float32  step 5  loss 0.25  members 4" % row["n"], info)
        self.assertEqual(row["n"], 12 + 6 + 5 + 3)
        for member, n in (("0_w", 12), ("1_g", 6), ("2_d", 5), ("3_h", 3)):
            self.assertIn("    %-30s n %d" % (member, n), info)
        self.assertIn("/typo  structure kronecker  (not a kind basinvol reads: blocks, factor, kron, diagonal)", info)
        self.assertEqual(bad["status"], "error")


    def test_float32_and_half_precision_values_are_stored_as_float32(self):
        # A Hessian computed in float32 carries float32's rounding: stored as
        # float64, that rounding counted as curvature (dim 0, a false saddle).
        H32 = with_spectrum([0.0] * 20 + list(np.geomspace(0.5, 10, 30)), 11).astype(np.float32)
        H32 = (H32 + H32.T) / 2  # exactly symmetric in float32
        self.assertEqual(expected(H32)["dim"], 20)
        f = os.path.join(self.dir, "f32.h5")
        bx.write_hessian(f, H32)
        bx.write_hessian(f, torch.from_numpy(H32), dataset="tensor")
        npy, pt = os.path.join(self.dir, "h32.npy"), os.path.join(self.dir, "h32.pt")
        np.save(npy, H32)
        torch.save(torch.from_numpy(H32), pt)
        for source, dataset in ((npy, "npy"), (pt, "pt")):
            subprocess.run([sys.executable, "-m", "basinvol.export", "convert", source, f, "--dataset", dataset],
                           check=True, capture_output=True)
        for dataset in ("hessian", "tensor", "npy", "pt"):
            (row,) = rows_of("volume", f + ":/" + dataset)
            self.agree(row, H32)
        # The same values widened by hand: basinvol sees float32 data in the
        # float64 dataset and measures them at float32's floor, saying so.
        bx.write_hessian(f, H32.astype(np.float64), dataset="widened")
        (wide,) = rows_of("volume", f + ":/widened")
        self.assertEqual(wide["stored_type"], "float64")
        self.assertIn("float32_values", wide["warnings"])
        (narrow,) = rows_of("volume", f + ":/hessian")
        self.assertNotIn("float32_values", narrow["warnings"])
        for k in ("rank", "dim", "negative", "tol", "noise_floor", "log_volume"):
            self.assertEqual(wide[k], narrow[k], k)
        # Under float64's own floor, that rounding is curvature (dim 0, a
        # false saddle): what the rule saves the widened copy from.
        lam = np.linalg.eigvalsh(H32.astype(np.float64))
        floor64 = 8 * math.sqrt(50) * np.finfo(np.float64).eps * np.linalg.norm(H32.astype(np.float64))
        self.assertGreater(int((np.abs(lam) > floor64).sum()), 30)
        # hessian_of in float32 gives float32, written as such.
        torch.manual_seed(3)
        model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
        H = bx.hessian_of(model, torch.nn.functional.mse_loss, torch.randn(9, 4), torch.randn(9, 2),
                          dtype="float32")
        self.assertEqual(H.dtype, np.float32)
        # Float16 stays float16, down to its subnormals (a spectrum scaled
        # by 1e-5 has entries under float16's smallest normal, 6.1e-5).
        for scale in (1.0, 1e-5):
            H16 = (H32 * scale).astype(np.float16)
            name = f"half_{scale:g}"
            bx.write_hessian(f, H16, dataset=name)
            bx.write_hessian(f, H16, dataset=name + "_as32", dtype="float32")
            with h5py.File(f, "r") as h:
                self.assertEqual((h[name].dtype, h[name + "_as32"].dtype), (np.float16, np.float16))
            for dataset in (name, name + "_as32"):
                (row,) = rows_of("volume", f + ":/" + dataset)
                self.assertEqual((row["dim"], row["rank"], row["negative"]), (20, 30, 0), dataset)
        # A structure's float16 factor too: the pair equals its dense twin.
        A16 = with_spectrum([0.0] * 8 + [1.0, 2.0, 3.0, 4.0], 13).astype(np.float16)
        bx.write_structure(f, "kron16", bx.Kron(A16, np.diag([1.0, 2.0, 3.0])))
        bx.write_hessian(f, np.kron(A16.astype(np.float64), np.diag([1.0, 2.0, 3.0])).astype(np.float16),
                         dataset="kron16_twin")
        with h5py.File(f, "r") as h:
            self.assertEqual(h["kron16/A"].dtype, np.float16)
        (pair,), (twin,) = rows_of("volume", f + ":/kron16"), rows_of("volume", f + ":/kron16_twin")
        self.assertEqual((pair["dim"], pair["rank"], pair["negative"]), (twin["dim"], twin["rank"], twin["negative"]))
        self.assertEqual((pair["dim"], pair["negative"]), (24, 0))
        # bfloat16, which numpy lacks: stored as float32, its rounding (2^-8
        # relative, 2^-134 absolute per entry) as hessian_error, at least
        # what a stated one says.
        t16 = torch.from_numpy(H32).to(torch.bfloat16)
        torch.save(t16, pt)
        subprocess.run([sys.executable, "-m", "basinvol.export", "convert", pt, f, "--dataset", "bf16"],
                       check=True, capture_output=True)
        bx.write_hessian(f, t16, dataset="bf16_stated", hessian_error=1e-12)
        bx.write_hessian(f, t16, dataset="bf16_large", hessian_error=5.0)
        values = t16.float().numpy()
        bound = 2.0 ** -8 * np.linalg.norm(values.astype(float)) + values.size * 2.0 ** -134
        for dataset, stated in (("bf16", bound), ("bf16_stated", bound), ("bf16_large", 5.0)):
            with h5py.File(f, "r") as h:
                d = h[dataset]
                self.assertEqual(d.dtype, np.float32)
                np.testing.assert_array_equal(d[...], values)
                self.assertAlmostEqual(d.attrs["hessian_error"] / stated, 1, delta=1e-12)
        for dataset in ("bf16", "bf16_stated"):
            (row,) = rows_of("volume", f + ":/" + dataset)
            self.assertEqual((row["dim"], row["rank"], row["negative"]), (20, 30, 0), dataset)


class StructuredExport(unittest.TestCase):
    """Gauss-Newton and empirical-Fisher factors from PyTorch, and structured
    files that basinvol reads with the same answer as their dense twins."""

    def setUp(self):
        torch.manual_seed(1)
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_gauss_newton_factor_is_the_exact_hessian_at_a_zero_residual_minimum(self):
        # A two-layer linear network fitted exactly: the residual is zero, so
        # the Hessian is its Gauss-Newton part.
        model = torch.nn.Sequential(torch.nn.Linear(4, 3, bias=False), torch.nn.Linear(3, 2, bias=False)).double()
        x = torch.randn(9, 4, dtype=torch.float64)
        with torch.no_grad():
            y = model(x)
        G = bx.gauss_newton_factor(model, x, y, loss="mse")
        self.assertEqual(G.shape, (9 * 2, 12 + 6))
        H = reference_hessian(model, torch.nn.functional.mse_loss, x, y)
        np.testing.assert_allclose(G.T @ G, H, rtol=0, atol=1e-12 * np.abs(H).max())

    def test_gauss_newton_factor_equals_torch_ggn_away_from_a_minimum(self):
        model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
        x = torch.randn(7, 5)
        y = torch.randint(0, 3, (7,))
        G = bx.gauss_newton_factor(model, x, y, loss="cross_entropy")
        # Independent: J from autograd, Lambda from torch's own Hessian of the loss in the outputs.
        m = copy.deepcopy(model).double()
        with torch.no_grad():
            out = m(x.double())
        J = []
        params = list(m.parameters())
        for i in range(7):
            for c in range(3):
                m.zero_grad()
                o = m(x[i:i + 1].double())[0, c]
                grads = torch.autograd.grad(o, params)
                J.append(torch.cat([g.reshape(-1) for g in grads]))
        J = torch.stack(J).reshape(7, 3, -1)
        lam = torch.autograd.functional.hessian(lambda o: torch.nn.functional.cross_entropy(o, y), out)  # (7,3,7,3)
        ggn = sum(J[i].T @ lam[i, :, i, :] @ J[i] for i in range(7)).numpy()
        np.testing.assert_allclose(G.T @ G, ggn, rtol=0, atol=1e-12 * np.abs(ggn).max())

    def test_empirical_fisher_factor(self):
        model = torch.nn.Sequential(torch.nn.Linear(3, 2)).double()
        x = torch.randn(6, 3, dtype=torch.float64)
        y = torch.randn(6, 2, dtype=torch.float64)
        G = bx.empirical_fisher_factor(model, torch.nn.functional.mse_loss, x, y)
        grads = []
        for i in range(6):
            model.zero_grad()
            torch.nn.functional.mse_loss(model(x[i:i + 1]), y[i:i + 1]).backward()
            grads.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]).numpy())
        F = sum(np.outer(g, g) for g in grads) / 6
        np.testing.assert_allclose(G.T @ G, F, rtol=0, atol=1e-14 * np.abs(F).max())

    def test_kfac_blocks_equal_the_exact_ggn_blocks_for_one_sample(self):
        model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
        x = torch.randn(1, 4)
        for loss, y in (("mse", torch.randn(1, 2)), ("cross_entropy", torch.tensor([1]))):
            blocks = bx.kfac_blocks(model, x, y, loss=loss)
            self.assertEqual(list(blocks), ["0000_0.weight", "0001_0.bias", "0002_2.weight", "0003_2.bias"])
            G = bx.gauss_newton_factor(model, x, y, loss=loss)
            ggn = G.T @ G
            offsets = bx.parameter_blocks(model)["offsets"] + [ggn.shape[0]]
            for j, (name, part) in enumerate(blocks.items()):
                ref = ggn[offsets[j]:offsets[j + 1], offsets[j]:offsets[j + 1]]
                mat = np.kron(part.A, part.B) * part.scale if isinstance(part, bx.Kron) else part
                np.testing.assert_allclose(mat, ref, rtol=0, atol=1e-12 * max(1.0, np.abs(ref).max()), err_msg=f"{loss} {name}")
        # N samples: A is the mean input second moment, S the summed output factor (K-FAC).
        x = torch.randn(5, 4)
        blocks = bx.kfac_blocks(model, x, torch.randn(5, 2), loss="mse")
        a = x.double().numpy()
        np.testing.assert_allclose(blocks["0000_0.weight"].B, a.T @ a / 5, rtol=1e-12)
        path = os.path.join(self.dir, "kfac.h5")
        bx.write_structure(path, "kfac", blocks)
        row = rows_of("volume", path)[0]
        self.assertEqual(row["structure"], "blocks")
        self.assertEqual(row["n"], sum(p.numel() for p in model.parameters()))
        self.assertEqual(len(row["blocks"]), 4)

    def test_kfac_conv2d_blocks(self):
        # A Conv2d whose kernel covers its input has one output location: with
        # one sample its Kronecker block is the exact Gauss-Newton block.
        model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.Tanh(), torch.nn.Flatten(),
                                    torch.nn.Linear(3, 2))
        x = torch.randn(1, 2, 3, 3)
        for loss, y in (("mse", torch.randn(1, 2)), ("cross_entropy", torch.tensor([0]))):
            blocks = bx.kfac_blocks(model, x, y, loss=loss)
            self.assertEqual(list(blocks), ["0000_0.weight", "0001_0.bias", "0002_3.weight", "0003_3.bias"])
            self.assertEqual(blocks["0000_0.weight"].A.shape, (3, 3))
            self.assertEqual(blocks["0000_0.weight"].B.shape, (2 * 3 * 3, 2 * 3 * 3))
            ggn = (lambda G: G.T @ G)(bx.gauss_newton_factor(model, x, y, loss=loss))
            offsets = bx.parameter_blocks(model)["offsets"] + [ggn.shape[0]]
            for j, (name, part) in enumerate(blocks.items()):
                ref = ggn[offsets[j]:offsets[j + 1], offsets[j]:offsets[j + 1]]
                mat = np.kron(part.A, part.B) * part.scale if isinstance(part, bx.Kron) else part
                np.testing.assert_allclose(mat, ref, rtol=0, atol=1e-12 * max(1.0, np.abs(ref).max()),
                                           err_msg=f"{loss} {name}")
        # Many locations (padding, stride): A is the mean patch second moment,
        # patches cut out by hand here; the bias block stays exact.
        conv = torch.nn.Conv2d(2, 3, 2, padding=1, stride=2)
        model = torch.nn.Sequential(conv, torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.Linear(3 * 3 * 3, 2))
        x = torch.randn(2, 2, 5, 5)
        y = torch.randn(2, 2)
        blocks = bx.kfac_blocks(model, x, y, loss="mse")
        padded = np.pad(x.double().numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)))
        patches = [padded[i, :, r:r + 2, c:c + 2].reshape(-1) for i in range(2) for r in (0, 2, 4) for c in (0, 2, 4)]
        A = sum(np.outer(a, a) for a in patches) / len(patches)
        np.testing.assert_allclose(blocks["0000_0.weight"].B, A, rtol=1e-12, atol=1e-15)
        ggn = (lambda G: G.T @ G)(bx.gauss_newton_factor(model, x, y, loss="mse"))
        o = bx.parameter_blocks(model)["offsets"]
        np.testing.assert_allclose(blocks["0001_0.bias"], ggn[o[1]:o[2], o[1]:o[2]], rtol=0,
                                   atol=1e-12 * np.abs(ggn).max())
        # padding="same" (uneven for an even kernel) and "valid": the patches torch convolves.
        for padding, pad in (("same", (0, 1, 0, 1)), ("valid", (0, 0, 0, 0))):
            conv = torch.nn.Conv2d(2, 3, 2, padding=padding)
            model = torch.nn.Sequential(conv, torch.nn.Flatten())
            x = torch.randn(2, 2, 4, 4)
            out = model(x)
            blocks = bx.kfac_blocks(model, x, torch.randn(*out.shape), loss="mse")
            padded = np.pad(x.double().numpy(), ((0, 0), (0, 0), (pad[2], pad[3]), (pad[0], pad[1])))
            side = padded.shape[2] - 1
            patches = [padded[i, :, r:r + 2, c:c + 2].reshape(-1) for i in range(2) for r in range(side)
                       for c in range(side)]
            self.assertEqual(len(patches) // 2, out.shape[1] // 3, padding)
            np.testing.assert_allclose(blocks["0000_0.weight"].B, sum(np.outer(a, a) for a in patches) / len(patches),
                                       rtol=1e-12, atol=1e-15, err_msg=padding)
        with self.assertRaisesRegex(ValueError, "must be \\(N, in\\)"):
            bx.kfac_blocks(torch.nn.Sequential(torch.nn.Linear(3, 2)), torch.randn(4, 5, 3), torch.randn(4, 5, 2))
        for bad in (torch.nn.Conv2d(2, 2, 1, groups=2), torch.nn.BatchNorm1d(3)):
            with self.assertRaises(ValueError):
                bx.kfac_blocks(torch.nn.Sequential(bad), torch.randn(2, 2, 3, 3) if bad.__class__.__name__ == "Conv2d"
                               else torch.randn(2, 3), torch.randn(2, 2), loss="mse")

    def test_written_structures_give_their_dense_twins_answer(self):
        rng = np.random.default_rng(4)
        G = rng.standard_normal((6, 20))
        A = with_spectrum([2.0, 1.0, 0.0], 1)
        B = with_spectrum([1.5, -0.5, 0.2, 0.0], 2)
        d = np.array([3.0, 0.0, 1e-3])
        path = os.path.join(self.dir, "s.h5")
        bx.write_structure(path, "model", {"0_g": bx.Factor(G, 0.5), "1_k": bx.Kron(A, B), "2_d": bx.Diagonal(d)},
                           step=3, loss_threshold=2.0)
        twin = np.zeros((35, 35))
        twin[:20, :20] = 0.5 * G.T @ G
        twin[20:32, 20:32] = np.kron(A, B)
        twin[32:, 32:] = np.diag(d)
        bx.write_hessian(path, (twin + twin.T) / 2, dataset="twin", loss_threshold=2.0)
        rows = {r["dataset"]: r for r in rows_of("volume", path)}
        s, t = rows["/model"], rows["/twin"]
        self.assertEqual(s["structure"], "blocks")
        self.assertEqual(s["step"], 3)
        for k in ("n", "rank", "dim", "negative"):
            self.assertEqual(s[k], t[k], k)
        self.assertAlmostEqual(s["log_volume"], t["log_volume"], delta=1e-9 * abs(t["log_volume"]))
        self.assertEqual([b["rank"] for b in s["blocks"]], [6, 2 * 3, 2])
        with self.assertRaises(ValueError):
            bx.write_structure(path, "bad", bx.Kron(np.ones((2, 3)), np.eye(2)))

    def test_values_past_float32_and_misplaced_attributes_are_refused_before_writing(self):
        path = os.path.join(self.dir, "range.h5")
        huge = np.array([[1e39, 1.0], [1.0, 2.0]])
        with self.assertRaisesRegex(ValueError, "the Hessian has values past the range of float32: 1e\\+39 at \\[0, 0\\] "
                                                "\\(float32 holds magnitudes up to 3.403e\\+38\\)"):
            bx.write_hessian(path, huge, dtype="float32")
        for name, part in (("diagonal 'p'", bx.Diagonal(np.array([1e39, 1.0]))), ("factor 'p'", bx.Factor(huge)),
                           ("kron 'p' B", bx.Kron(np.eye(2), huge)), ("dense block 'x'", {"x": huge})):
            with self.assertRaisesRegex(ValueError, name + " has values past the range of float32"):
                bx.write_structure(path, "p", part, dtype="float32")
        bx.write_structure(path, "p", bx.Diagonal(np.array([1e39, 1.0])))  # float64 holds it
        with h5py.File(path, "r") as f:
            self.assertEqual(sorted(f), ["p"], "nothing was written by the refused calls")
            self.assertEqual(f["p"][0], 1e39)
        with self.assertRaisesRegex(ValueError, "attribute Scale: a structure's scale is Factor\\(G, scale\\)"):
            bx.write_structure(path, "q", bx.Factor(np.ones((2, 3))), Scale=2.0)
        for bad in (-1, 0.0, np.array(-1.0), np.array([-1.0]), np.float32(-2)):
            with self.assertRaisesRegex(ValueError, "loss_threshold must be a positive number, got -?[0-9]"):
                bx.write_structure(path, "q", bx.Diagonal(np.ones(2)), loss_threshold=bad)
        with self.assertRaisesRegex(ValueError, "attribute Loss_Threshold: basinvol reads loss_threshold, in lower case"):
            bx.write_hessian(path, np.eye(2), dataset="q", Loss_Threshold=1e-3)
        for key in ("loss_thresold", "hessian_errors"):
            with self.assertRaisesRegex(ValueError, "attribute '%s': basinvol reads .* \\(spelled so" % key):
                bx.write_hessian(path, np.eye(2), dataset="q", **{key: 1e-3})
        bx.write_hessian(path, np.eye(2), dataset="q", hessian_eps=1e-3)  # a name of the user's own
        with self.assertRaisesRegex(ValueError, "blocks= names the parameter blocks of a dense Hessian"):
            bx.write_structure(path, "q", bx.Diagonal(np.ones(2)), blocks={"names": ["a"], "offsets": [0], "sizes": [2]})


class ExporterSafety(unittest.TestCase):
    """Tied weights, untouched models, writes that fail leaving the file as it
    was, and inputs the command line refuses in one line."""

    def setUp(self):
        torch.manual_seed(3)
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_factors_of_a_model_with_tied_weights(self):
        model = Tied().double()
        x = torch.randn(6, 3, dtype=torch.float64)
        with torch.no_grad():
            y = model(x)  # zero residual: the Hessian is the Gauss-Newton matrix
        G = bx.gauss_newton_factor(model, x, y, loss="mse")
        H = bx.hessian_of(model, torch.nn.functional.mse_loss, x, y)
        self.assertEqual(G.shape[1], 12)
        np.testing.assert_allclose(G.T @ G, H, rtol=0, atol=1e-12 * np.abs(H).max())
        # The empirical Fisher against per-sample gradients taken by hand.
        y2 = torch.randn(6, 3, dtype=torch.float64)
        F = bx.empirical_fisher_factor(model, torch.nn.functional.mse_loss, x, y2)
        rows = []
        for i in range(6):
            model.zero_grad()
            torch.nn.functional.mse_loss(model(x[i:i + 1]), y2[i:i + 1]).backward()
            rows.append(torch.cat([model.a.weight.grad.reshape(-1), model.b.bias.grad]).numpy() / math.sqrt(6))
        np.testing.assert_allclose(F, np.array(rows), rtol=1e-10, atol=1e-14)
        # A float32 model: cast like the others, no dtype clash.
        self.assertEqual(bx.gauss_newton_factor(Tied(), x.float(), y.float(), loss="mse").shape, (18, 12))

    def _assert_exact_kfac(self, model, x, y, loss):
        """With one sample every Linear block is the exact Gauss-Newton block."""
        blocks = bx.kfac_blocks(model, x, y, loss=loss)
        ggn = (lambda G: G.T @ G)(bx.gauss_newton_factor(model, x, y, loss=loss))
        offsets = bx.parameter_blocks(model)["offsets"] + [ggn.shape[0]]
        self.assertEqual(len(blocks), len(offsets) - 1)
        for j, (name, part) in enumerate(blocks.items()):
            ref = ggn[offsets[j]:offsets[j + 1], offsets[j]:offsets[j + 1]]
            mat = np.kron(part.A, part.B) * part.scale if isinstance(part, bx.Kron) else part
            np.testing.assert_allclose(mat, ref, rtol=0, atol=1e-12 * max(1.0, np.abs(ref).max()), err_msg=name)
        return blocks

    def test_kfac_blocks_hold_through_in_place_operations_and_frozen_layers(self):
        # ReLU(inplace=True) rewrites the layer's output after the layer; a
        # frozen first layer has no gradient of its own: neither changes the blocks.
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(inplace=True), torch.nn.Linear(8, 4))
        x, y = torch.randn(1, 6), torch.tensor([1])
        blocks = self._assert_exact_kfac(model, x, y, "cross_entropy")
        self.assertGreater(np.abs(blocks["0001_0.bias"]).max(), 0)
        model[0].requires_grad_(False)
        frozen = bx.kfac_blocks(model, x, y, loss="cross_entropy")
        self.assertEqual(list(frozen), list(blocks))
        for name in blocks:
            a, b = blocks[name], frozen[name]
            if isinstance(a, bx.Kron):
                np.testing.assert_array_equal(a.A, b.A)
                np.testing.assert_array_equal(a.B, b.B)
            else:
                np.testing.assert_array_equal(a, b)
        self.assertFalse(model[0].weight.requires_grad)  # the caller's model is left as it was

    def test_kfac_refuses_batch_statistics_and_a_weight_used_outside_its_layer(self):
        torch.manual_seed(2)
        model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.BatchNorm1d(5, affine=False), torch.nn.Tanh(),
                                    torch.nn.Linear(5, 3))
        x, y = torch.randn(6, 4), torch.randint(0, 3, (6,))
        with self.assertRaisesRegex(ValueError, "'1' normalizes with batch statistics, which mix the samples"):
            bx.kfac_blocks(model.train(), x, y, loss="cross_entropy")
        self._assert_exact_kfac(model.eval(), x[:1], y[:1], "cross_entropy")  # running statistics: no mixing
        # The empirical Fisher runs one sample at a time: under batch
        # statistics its rows would be of another function; in eval() they
        # are each sample's gradient of the mean loss, times 1/sqrt(N).
        ce = torch.nn.functional.cross_entropy
        with self.assertRaisesRegex(ValueError, "empirical_fisher_factor: '1' normalizes with batch statistics"):
            bx.empirical_fisher_factor(model.train(), ce, x, y)
        G = bx.empirical_fisher_factor(model.eval(), ce, x, y)
        grads = [torch.cat([g.reshape(-1) for g in torch.autograd.grad(
            ce(model.double()(x[i:i + 1].double()), y[i:i + 1]), list(model.parameters()))]) for i in range(6)]
        model.float()
        np.testing.assert_allclose(G, torch.stack(grads).numpy() / np.sqrt(6), rtol=1e-12, atol=1e-15)

        class Decoder(torch.nn.Module):  # the encoder's weight, transposed, decodes
            def __init__(self):
                super().__init__()
                self.enc = torch.nn.Linear(6, 4)

            def forward(self, x):
                return torch.nn.functional.linear(torch.tanh(self.enc(x)), self.enc.weight.t())

        with self.assertRaisesRegex(ValueError, "the weight of layer 'enc' acts outside the layer too"):
            bx.kfac_blocks(Decoder(), torch.randn(1, 6), torch.randn(1, 6))

    def test_dropout_in_train_mode_is_refused_by_every_exporter(self):
        # A dropout layer in train() draws a new mask at every call: two
        # exports of one model differed, silently.
        torch.manual_seed(3)
        model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.5), torch.nn.Linear(4, 2))
        x, y = torch.randn(5, 3), torch.randn(5, 2)
        mse = torch.nn.functional.mse_loss
        calls = dict(hessian_of=lambda: bx.hessian_of(model, mse, x, y),
                     gauss_newton_factor=lambda: bx.gauss_newton_factor(model, x, y, loss="mse"),
                     empirical_fisher_factor=lambda: bx.empirical_fisher_factor(model, mse, x, y),
                     kfac_blocks=lambda: bx.kfac_blocks(model, x, y, loss="mse"))
        for who, call in calls.items():
            with self.assertRaisesRegex(ValueError, f"^{who}: '1' drops units at random in train\\(\\) mode"):
                call()
        model.eval()  # no masks: each export is one function's, the same twice
        for who, call in calls.items():
            a, b = call(), call()
            parts = lambda m: [t for v in m.values() for t in ((v.A, v.B) if isinstance(v, bx.Kron) else (v,))]
            for u, v in zip(*(parts(m) if isinstance(m, dict) else [m] for m in (a, b))):
                np.testing.assert_array_equal(u, v)
        model.train()[1].p = 0.0  # p = 0 drops nothing
        np.testing.assert_array_equal(calls["hessian_of"](), bx.hessian_of(model.eval(), mse, x, y))

        class Attend(torch.nn.Module):  # attention's dropout is a number, not a module
            def __init__(self):
                super().__init__()
                self.att = torch.nn.MultiheadAttention(4, 1, dropout=0.5, batch_first=True)

            def forward(self, x):
                return self.att(x, x, x)[0].sum(1)

        with self.assertRaisesRegex(ValueError, "^hessian_of: 'att' drops units at random in train"):
            bx.hessian_of(Attend(), mse, torch.randn(2, 3, 4), torch.randn(2, 4))

        class Recur(torch.nn.Module):  # so is a stacked RNN's, between its layers
            def __init__(self, dropout):
                super().__init__()
                self.gru = torch.nn.GRU(2, 2, num_layers=2, dropout=dropout, batch_first=True)

            def forward(self, x):
                return self.gru(x)[0].sum(1)

        with self.assertRaisesRegex(ValueError, "^empirical_fisher_factor: 'gru' drops units at random in train"):
            bx.empirical_fisher_factor(Recur(0.5), mse, torch.randn(2, 3, 2), torch.randn(2, 2), dtype="float32")
        for fine in (Recur(0.0), Recur(0.5).eval()):  # nothing dropped
            bx._refuse_dropout(fine, "empirical_fisher_factor")

    def test_cross_entropy_over_locations_takes_the_softmax_over_classes(self):
        # Logits (N, C, L): torch's cross-entropy is a softmax over C at each
        # location. The model is linear in its parameters, so the Hessian is
        # its Gauss-Newton matrix.
        torch.manual_seed(3)
        model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.Flatten(2))
        x, y = torch.randn(4, 1, 6, 6), torch.randint(0, 3, (4, 36))
        G = bx.gauss_newton_factor(model, x, y, loss="cross_entropy")
        H = reference_hessian(model, torch.nn.functional.cross_entropy, x, y)
        np.testing.assert_allclose(G.T @ G, H, rtol=0, atol=1e-12 * np.abs(H).max())
        with self.assertRaisesRegex(ValueError, "cross_entropy over logits of shape \\(4, 3, 36\\)"):
            bx.kfac_blocks(model, x, y, loss="cross_entropy")

    def test_float32_factors_are_stored_as_float32(self):
        # Their values carry float32's rounding: stored as float64 that
        # rounding would count as curvature above float64's noise floor.
        torch.manual_seed(4)
        model = torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
        x, y = torch.randn(8, 5), torch.randint(0, 3, (8,))
        self.assertEqual(bx.gauss_newton_factor(model, x, y, loss="cross_entropy", dtype="float32").dtype, np.float32)
        path = os.path.join(self.dir, "f32.h5")
        bx.write_structure(path, "kfac32", bx.kfac_blocks(model, x, y, loss="cross_entropy", dtype="float32"))
        bx.write_structure(path, "kfac64", bx.kfac_blocks(model, x, y, loss="cross_entropy"))
        r32, r64 = rows_of("volume", path + ":/kfac32")[0], rows_of("volume", path + ":/kfac64")[0]
        self.assertEqual((r32["stored_type"], r64["stored_type"]), ("float32", "float64"))
        self.assertEqual(r32["dim"], r64["dim"])

    def test_a_batch_that_is_not_one_tensor_and_other_dtypes_are_clear_errors(self):
        model = torch.nn.Sequential(torch.nn.Linear(3, 2))
        x, y = torch.randn(4, 3), torch.randint(0, 2, (4,))
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=2)
        for f in (lambda: bx.hessian_of(model, torch.nn.functional.cross_entropy, loader, y),
                  lambda: bx.gauss_newton_factor(model, loader, y, loss="cross_entropy"),
                  lambda: bx.kfac_blocks(model, x.numpy(), y, loss="cross_entropy"),
                  lambda: bx.empirical_fisher_factor(model, torch.nn.functional.cross_entropy, loader, y)):
            with self.assertRaisesRegex(TypeError, "must be one torch tensor holding the batch"):
                f()
        with self.assertRaisesRegex(ValueError, "targets must be a tensor of one target per sample \\(4\\)"):
            bx.empirical_fisher_factor(model, torch.nn.functional.cross_entropy, x, torch.randint(0, 2, (6,)))
        with self.assertRaisesRegex(ValueError, "dtype must be 'float32' or 'float64'"):
            bx.gauss_newton_factor(model, x, y, loss="cross_entropy", dtype="float16")
        # torch's own dtype names the same computation as its string.
        np.testing.assert_array_equal(bx.gauss_newton_factor(model, x, y, loss="cross_entropy", dtype=torch.float64),
                                      bx.gauss_newton_factor(model, x, y, loss="cross_entropy"))

    def test_kfac_refuses_tied_weights_and_reused_layers(self):
        with self.assertRaisesRegex(ValueError, "share a parameter"):
            bx.kfac_blocks(Tied(), torch.randn(4, 3), torch.randn(4, 3))

        class Twice(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.l = torch.nn.Linear(3, 3)

            def forward(self, x):
                return self.l(torch.tanh(self.l(x)))

        with self.assertRaisesRegex(ValueError, "called more than once"):
            bx.kfac_blocks(Twice(), torch.randn(1, 3), torch.randn(1, 3))

    def test_dtype_none_casts_the_batch_to_the_model_s_type(self):
        # A float64 model given float32 inputs and targets (torch's default):
        # under None the batch takes the model's type, and the Hessian is
        # the float64 one, as torch computes it on a float64 batch.
        torch.manual_seed(3)
        model = torch.nn.Linear(3, 1).double()
        x, y = torch.randn(4, 3), torch.randn(4, 1)
        H = bx.hessian_of(model, torch.nn.functional.mse_loss, x, y, dtype=None)
        self.assertEqual(H.dtype, np.float64)
        w, b = model.weight.detach().clone(), model.bias.detach().clone()

        def loss(flat):
            return torch.nn.functional.mse_loss(x.double() @ flat[:3].view(1, 3).T + flat[3:], y.double())

        ref = torch.autograd.functional.hessian(loss, torch.cat([w.reshape(-1), b])).numpy()
        np.testing.assert_allclose(H, ref, rtol=1e-12, atol=1e-14)
        # A float32 model keeps float32 inputs float32, and casts float64 ones.
        H32 = bx.hessian_of(torch.nn.Linear(3, 1), torch.nn.functional.mse_loss, x.double(), y.double(), dtype=None)
        self.assertEqual(H32.dtype, np.float32)

    def test_the_model_is_not_changed(self):
        model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2)).double()
        model.train()
        before = {k: v.clone() for k, v in model.state_dict().items()}
        x, y = torch.randn(8, 4, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
        bx.hessian_of(model, torch.nn.functional.mse_loss, x, y, dtype=None)
        bx.gauss_newton_factor(model, x, y, loss="mse")
        for k, v in model.state_dict().items():
            self.assertTrue(torch.equal(v, before[k]), k)

    def test_a_write_that_fails_leaves_the_file_as_it_was(self):
        f = os.path.join(self.dir, "w.h5")
        bx.write_hessian(f, np.eye(3), step=7)
        bx.write_structure(f, "model", {"a": np.eye(2), "b": bx.Diagonal(np.ones(2))})
        bad_blocks = {"names": ["w"], "offsets": [0], "sizes": [5], "shapes": [(5,)]}
        for write in (lambda: bx.write_hessian(f, 10 * np.eye(3), blocks=bad_blocks),
                      lambda: bx.write_hessian(f, 10 * np.eye(3), loss=float("nan")),
                      lambda: bx.write_hessian(f, 10 * np.eye(3), loss=np.float32("nan")),
                      lambda: bx.write_hessian(f, 10 * np.eye(3), step=2**70),
                      lambda: bx.write_structure(f, "model", {"a": np.eye(2), "b": bx.Diagonal(np.ones((2, 2)))})):
            with self.assertRaises(ValueError):
                write()
            with self.assertRaisesRegex(ValueError, "scale must be a finite nonzero number"):
                bx.write_structure(f, "model", bx.Factor(np.eye(2), 0.0))
            with h5py.File(f) as h:
                self.assertEqual(sorted(h), ["hessian", "model"])
                np.testing.assert_array_equal(h["hessian"][...], np.eye(3))
                self.assertEqual(h["hessian"].attrs["step"], 7)
                self.assertEqual(sorted(h["model"]), ["a", "b"])
        # A group of checkpoints is never replaced by a Hessian.
        bx.write_checkpoint(f, np.eye(2), 1)
        with self.assertRaisesRegex(ValueError, "is a group of other objects"):
            bx.write_hessian(f, np.eye(2), dataset="checkpoints")
        for step in (1.7, True):
            with self.assertRaisesRegex(ValueError, "step must be a whole number"):
                bx.write_checkpoint(f, np.eye(2), step)
        with h5py.File(f) as h:
            self.assertEqual(list(h["checkpoints"]), ["step_00001"])
        # Blocks need not cover every parameter, but must lie in order inside n.
        bx.write_hessian(f, np.eye(4), dataset="part", blocks={"names": ["w"], "offsets": [1], "sizes": [2]})
        with self.assertRaisesRegex(ValueError, "must lie after the previous one"):
            bx.write_hessian(f, np.eye(4), dataset="part", blocks={"names": ["w", "v"], "offsets": [2, 0],
                                                                    "sizes": [2, 2]})

    def test_convert_never_unpickles_code_and_refuses_in_one_line(self):
        marker = os.path.join(self.dir, "ran")

        class Payload:
            def __reduce__(self):
                return (os.system, ("touch " + marker,))

        evil = os.path.join(self.dir, "evil.pt")
        torch.save({"t": torch.eye(2), "x": Payload()}, evil)
        complex_npy = os.path.join(self.dir, "c.npy")
        np.save(complex_npy, np.eye(2) * (1 + 1j))
        text_npy = os.path.join(self.dir, "s.npy")
        np.save(text_npy, np.array([["a", "b"], ["c", "d"]]))
        comma = os.path.join(self.dir, "h.csv")
        with open(comma, "w") as fh:
            fh.write("2.0,0.5\n0.5,1.0\n")
        nan_npy = os.path.join(self.dir, "nan.npy")
        np.save(nan_npy, np.array([[1.0, 0.0, 0.0], [0.0, 1.0, np.nan], [0.0, np.nan, 1.0]]))
        wide_npy = os.path.join(self.dir, "wide.npy")
        np.save(wide_npy, np.ones((2, 3)))
        held = os.path.join(self.dir, "dict.pt")
        torch.save({"H": torch.eye(2)}, held)
        out = os.path.join(self.dir, "out.h5")
        # Each refusal names the file and what in it broke the rule.
        for source, words in ((evil, "not a file of tensors torch can load safely"),
                              (complex_npy, "not real numbers"), (text_npy, "not real numbers"),
                              (nan_npy, nan_npy + ": the Hessian has non-finite entries: nan at [1, 2]"),
                              (wide_npy, wide_npy + ": a Hessian must be a non-empty square 2-D array, got shape (2, 3)"),
                              (held, "does not hold a single dense real tensor: it holds a dict of keys ['H']")):
            p = subprocess.run([sys.executable, "-m", "basinvol.export", "convert", source, out],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
            self.assertIn(words, p.stderr)
        self.assertFalse(os.path.exists(marker))
        # A bad option is not the input's fault: the message does not blame it.
        p = subprocess.run([sys.executable, "-m", "basinvol.export", "convert", comma, out, "--loss-threshold", "-1"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("loss_threshold", p.stderr)
        self.assertNotIn(comma, p.stderr)
        subprocess.run([sys.executable, "-m", "basinvol.export", "convert", comma, out], check=True,
                       capture_output=True)
        with h5py.File(out) as h:
            np.testing.assert_array_equal(h["hessian"][...], [[2.0, 0.5], [0.5, 1.0]])


class PlotTool(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        f = os.path.join(self.dir, "run.h5")
        for i, step in enumerate((10, 20, 30)):
            spec = np.concatenate([np.geomspace(5, 1e-2 / (i + 1), 20 - 3 * i), [-0.1] * (i == 1), np.zeros(3 * i)])
            bx.write_checkpoint(f, with_spectrum(np.resize(spec, 20), i), step, loss=1.0 / step)
        self.h5 = f

    def tearDown(self):
        self.tmp.cleanup()

    def plot(self, mode, json_text, out):
        src = os.path.join(self.dir, mode + ".json")
        with open(src, "w") as fh:
            fh.write(json_text)
        subprocess.run([sys.executable, *PLOT, mode, src, out], check=True, capture_output=True)
        with open(out, "rb") as fh:
            return fh.read()

    def assertPng(self, data):
        self.assertEqual(data[:8], b"\x89PNG\r\n\x1a\n")
        self.assertGreater(len(data), 20_000)

    def test_spectrum_png_and_svg(self):
        text = basinvol("spectrum", self.h5 + ":/checkpoints/step_00020", "--format", "json")
        self.assertPng(self.plot("spectrum", text, os.path.join(self.dir, "s.png")))
        svg = self.plot("spectrum", text, os.path.join(self.dir, "s.svg"))
        self.assertIn(b"<svg", svg[:2000])

    def test_spectrum_of_several_sources_takes_one(self):
        text = basinvol("spectrum", self.h5, "--format", "json")
        out = os.path.join(self.dir, "s2.png")
        src = os.path.join(self.dir, "multi.json")
        with open(src, "w") as fh:
            fh.write(text)
        subprocess.run([sys.executable, *PLOT, "spectrum", src, out, "--source", "step_00030"],
                       check=True, capture_output=True)
        with open(out, "rb") as fh:
            self.assertPng(fh.read())

    def test_run_png(self):
        for cmd in ("rank", "volume"):
            with self.subTest(cmd):
                text = basinvol(cmd, self.h5, "--format", "json")
                self.assertPng(self.plot("run", text, os.path.join(self.dir, cmd + ".png")))

    def test_blocks_png_needs_rows_with_blocks(self):
        dense = basinvol("volume", self.h5, "--format", "json")  # dense rows carry no `blocks`
        p = subprocess.run([sys.executable, *PLOT, "blocks", "-", os.path.join(self.dir, "b.png")],
                           input=dense, capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no successful rows with per-block answers", p.stderr)
        rows = [{"status": "ok", "step": s, "source": "m.h5:/k", "file": "m.h5", "dataset": "/k",
                 "blocks": [{"name": "w", "n": 6, "rank": r, "dim": 6 - r, "negative": 0, "log_volume_part": 1.0 * r},
                            {"name": "b", "n": 2, "rank": 2, "dim": 0, "negative": 1, "log_volume_part": -0.5}]}
                for s, r in ((10, 6), (100, 4), (1000, 3))]
        import basinvol.plot as bp
        got = bp.plot_blocks(rows, os.path.join(self.dir, "b.png"))
        self.assertEqual(got, {"blocks": ["w", "b"], "rows": 3, "xscale": "log"})
        with open(os.path.join(self.dir, "b.png"), "rb") as fh:
            self.assertPng(fh.read())

    def test_bad_input_fails(self):
        src = os.path.join(self.dir, "empty.json")
        with open(src, "w") as fh:
            fh.write("{}")
        p = subprocess.run([sys.executable, *PLOT, "run", src, os.path.join(self.dir, "x.png")],
                           capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("basinvol.plot: error", p.stderr)

    def test_deprecated_shims_forward(self):
        """tools/basinvol_export.py and tools/plot_basins.py still work for one
        release, from the source tree, and say what replaces them."""
        H = with_spectrum([2.0, 1.0, 0.0], 6)
        npy, f = os.path.join(self.dir, "s.npy"), os.path.join(self.dir, "s.h5")
        np.save(npy, H)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "basinvol_export.py"), "convert", npy, f],
                           capture_output=True, text=True, env=env, check=True)
        self.assertEqual(p.stdout.strip(), f + ":/hessian")
        self.assertIn("python3 -m basinvol.export", p.stderr)
        (row,) = rows_of("volume", f)
        self.assertEqual((row["n"], row["rank"], row["dim"]), (3, 2, 1))
        src = os.path.join(self.dir, "r.json")
        with open(src, "w") as fh:
            fh.write(basinvol("rank", f, "--format", "json"))
        out = os.path.join(self.dir, "shim.png")
        p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "plot_basins.py"), "run", src, out],
                           capture_output=True, text=True, env=env, check=True)
        self.assertIn("python3 -m basinvol.plot", p.stderr)
        with open(out, "rb") as fh:
            self.assertPng(fh.read())
        # Imported the old way, the shim leaves the package on the path the one
        # imported (it put the source tree first, so `import basinvol` after it
        # loaded the package without the build's compiled core and
        # basinvol.analyze failed), and says what replaces it.
        def imported(shim):
            first = ("import sys; sys.path.insert(0, %r); from basinvol_export import write_hessian; "
                     % os.path.join(ROOT, "tools")) if shim else ""
            return subprocess.run([sys.executable, "-c", first + "import basinvol; print(basinvol.__file__)"],
                                  capture_output=True, text=True, check=True)
        plain, shimmed = imported(False), imported(True)
        self.assertEqual(shimmed.stdout, plain.stdout)
        self.assertIn("use basinvol.export", shimmed.stderr)


if __name__ == "__main__":
    if len(sys.argv) < 2 or not os.access(sys.argv[1], os.X_OK):
        print("usage: test_export.py BASINVOL [unittest options]  (BASINVOL: the built binary)", file=sys.stderr)
        sys.exit(2)
    BASINVOL = sys.argv.pop(1)
    unittest.main()
