#!/usr/bin/python3
"""Contract tests of the basinvol command line.

Every expected number is computed here, independently of the tool, with
numpy.linalg.eigvalsh on exactly the matrix written to HDF5:

    tol    = max|λ| · n · eps(stored dtype)
    curved = |λ| > tol,  negative = λ < −tol
    log V  = log ω_r + (r/2)·log(2T) − ½ Σ_curved log|λ|,
    log ω_r = (r/2)·log π − lgamma(r/2 + 1)

Usage: /usr/bin/python3 tests/cli/test_cli.py PATH/TO/basinvol [unittest options]
Needs Debian's python3-numpy and python3-h5py. Writes only into a temporary
directory.
"""
import csv
import io
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import unittest

import h5py
import numpy as np

BIN = None  # set from argv[1] in __main__
HERE = os.path.dirname(os.path.abspath(__file__))
TESTDATA = os.path.normpath(os.path.join(HERE, "..", "..", "testdata"))

# Fields every result row carries (DESIGN.md, "Output and exit status").
ROW_FIELDS = ["source", "file", "dataset", "n", "rank", "dim", "negative", "tol", "gap", "log_volume",
              "log10_volume", "method", "status", "warnings", "error", "seconds", "step", "loss"]
LOGV_RTOL = 1e-11


# --------------------------------------------------------------------------
# Running the tool
# --------------------------------------------------------------------------

class Result:
    def __init__(self, args, proc):
        self.args = args
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def __repr__(self):
        return "basinvol %s -> rc %d\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            " ".join(self.args), self.rc, self.out[:3000], self.err[:3000])


def run(*args):
    args = [str(a) for a in args]
    proc = subprocess.run([BIN] + args, capture_output=True, text=True, timeout=120)
    return Result(args, proc)


def _no_constants(name):
    raise ValueError("non-finite number %s in JSON output" % name)


def strict_json(text):
    return json.loads(text, parse_constant=_no_constants)


def rows_json(*args):
    """Runs the tool with --format json; returns (result, rows)."""
    r = run(*args, "--format", "json")
    doc = strict_json(r.out)
    return r, doc["rows"]


def by_source(rows):
    return {row["source"]: row for row in rows}


# --------------------------------------------------------------------------
# Independent reference
# --------------------------------------------------------------------------

def log_unit_ball(r):
    return (r / 2) * math.log(math.pi) - math.lgamma(r / 2 + 1)


def log_volume_of(abs_eigs, T):
    r = len(abs_eigs)
    return log_unit_ball(r) + (r / 2) * math.log(2 * T) - 0.5 * float(np.sum(np.log(abs_eigs)))


class Ref:
    """What the contract says the tool must report for matrix `h` (as stored)."""

    def __init__(self, h, T=1.0, negatives="abs", tol=None):
        h = np.asarray(h)
        self.eps = float(np.finfo(h.dtype).eps) if h.dtype.kind == "f" else float(np.finfo(np.float64).eps)
        self.eigs = np.linalg.eigvalsh(h.astype(np.float64))
        a = np.abs(self.eigs)
        self.n = len(self.eigs)
        # The noise floor: the stored type's rounding, what a double-precision
        # solver resolves (8·sqrt(n)·eps64), and the input's own asymmetry.
        h64 = h.astype(np.float64)
        frob = float(np.linalg.norm((h64 + h64.T) / 2))
        self.floor = max(self.eps * frob, 8 * math.sqrt(self.n) * np.finfo(np.float64).eps * frob,
                         float(np.linalg.norm(h64 - h64.T)))
        self.tol = max(float(a.max() * self.n * self.eps), self.floor) if tol is None else tol
        curved = a > self.tol
        neg = self.eigs < -self.tol
        used = curved & ~neg if negatives == "drop" else curved
        self.curved = int(curved.sum())
        self.rank = int(used.sum())
        self.dim = self.n - self.curved
        self.negative = int(neg.sum())
        self.T = T
        self.log_volume = log_volume_of(a[used], T)
        kept, dropped = a[curved], a[~curved]
        if len(kept) == 0 or len(dropped) == 0:
            self.gap = None
        else:  # below the floor a value is noise: the gap's lower side is at least the floor
            self.gap = math.log10(kept.min()) - math.log10(max(dropped.max(), self.floor))
        nz = a[a > 0]
        # Decades between the cut and the nearest eigenvalue: where this is
        # tiny the count depends on rounding, and the test data is unfit.
        self.margin = float(np.min(np.abs(np.log10(nz / self.tol)))) if len(nz) else math.inf


def rotation(n, rng):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def with_spectrum(eigs, rng):
    q = rotation(len(eigs), rng)
    h = (q * np.asarray(eigs, dtype=float)) @ q.T
    return (h + h.T) / 2  # exactly symmetric


def log_uniform(lo, hi, k, rng):
    return np.exp(rng.uniform(math.log(lo), math.log(hi), k))


def write_h5(path, datasets, mode="w"):
    """datasets: {path_in_file: (array, {attr: value})}, written in the given order."""
    with h5py.File(path, mode) as f:
        for name, (data, attrs) in datasets.items():
            d = f.create_dataset(name, data=data)
            for k, v in attrs.items():
                d.attrs[k] = v


# --------------------------------------------------------------------------
# A small real network: tanh MLP, softmax cross-entropy, exact Hessian
# --------------------------------------------------------------------------

class MLP:
    """16 inputs, 12 tanh hidden units, 3 classes: 243 parameters."""

    def __init__(self, seed=7, n_in=16, n_hidden=12, n_out=3, n_samples=64):
        rng = np.random.default_rng(seed)
        self.shapes = [(n_in, n_hidden), (n_hidden,), (n_hidden, n_out), (n_out,)]
        self.X = rng.standard_normal((n_samples, n_in))
        y = rng.integers(0, n_out, n_samples)
        self.Y = np.eye(n_out)[y]
        self.theta = np.concatenate([
            rng.standard_normal(n_in * n_hidden) / math.sqrt(n_in), np.zeros(n_hidden),
            rng.standard_normal(n_hidden * n_out) / math.sqrt(n_hidden), np.zeros(n_out)])
        self.size = len(self.theta)

    def unpack(self, theta):
        out, i = [], 0
        for s in self.shapes:
            k = int(np.prod(s))
            out.append(theta[i:i + k].reshape(s))
            i += k
        return out

    def loss_grad(self, theta):
        """Loss and analytic gradient. Complex-analytic in theta (for the complex step)."""
        W1, b1, W2, b2 = self.unpack(theta)
        N = self.X.shape[0]
        h = np.tanh(self.X @ W1 + b1)
        z = h @ W2 + b2
        z = z - z.real.max(axis=1, keepdims=True)  # any constant shift; softmax is invariant
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        p = e / s
        loss = -np.sum(self.Y * (z - np.log(s))) / N
        dz = (p - self.Y) / N
        dW2 = h.T @ dz
        db2 = dz.sum(axis=0)
        dh = dz @ W2.T
        da = dh * (1 - h * h)
        dW1 = self.X.T @ da
        db1 = da.sum(axis=0)
        return loss, np.concatenate([dW1.ravel(), db1, dW2.ravel(), db2])

    def train(self, steps=300, lr=0.5):
        for _ in range(steps):
            _, g = self.loss_grad(self.theta)
            self.theta = self.theta - lr * g
        return float(self.loss_grad(self.theta)[0])

    def hessian(self):
        """Complex-step derivative of the analytic gradient: exact to rounding (no cancellation)."""
        step = 1e-30
        H = np.empty((self.size, self.size))
        for i in range(self.size):
            t = self.theta.astype(complex)
            t[i] += 1j * step
            H[:, i] = self.loss_grad(t)[1].imag / step
        return H

    def hessian_central_differences(self, step=1e-5):
        H = np.empty((self.size, self.size))
        for i in range(self.size):
            t = self.theta.copy()
            t[i] += step
            gp = self.loss_grad(t)[1]
            t[i] -= 2 * step
            gm = self.loss_grad(t)[1]
            H[:, i] = (gp - gm) / (2 * step)
        return H


# --------------------------------------------------------------------------
# Test data, written once into a temporary directory
# --------------------------------------------------------------------------

class Data:
    tmp = None
    dir = None

    @classmethod
    def build(cls):
        if cls.tmp is not None:
            return
        cls.tmp = tempfile.TemporaryDirectory(prefix="basinvol-cli-")
        cls.dir = cls.tmp.name
        rng = np.random.default_rng(20240611)
        cls.mats = {}  # source text -> (stored matrix, attrs)

        # Known spectra, rotated, float64: flat directions, negatives, 6+ decades.
        plan = {
            "a_small": np.array([5.0, 3.0, 1.0, 0.5, -0.2, 0.0, 0.0]),
            "b_n60": np.concatenate([log_uniform(1e-2, 1e1, 45, rng) * np.r_[-np.ones(5), np.ones(40)],
                                     np.zeros(15)]),
            "c_n150_6dec": np.concatenate([np.geomspace(1e3, 1e-3, 120) * np.r_[np.ones(108), -np.ones(12)],
                                           np.zeros(30)]),
            "d_n300": np.concatenate([log_uniform(1e-4, 1e2, 250, rng) * np.r_[-np.ones(25), np.ones(225)],
                                      [3e-9, -5e-9], np.zeros(48)]),
            "e_n200_psd": np.concatenate([log_uniform(1e-3, 1e3, 170, rng), np.zeros(30)]),
        }
        cls.spectra_file = os.path.join(cls.dir, "spectra.h5")
        ds = {}
        for name, eigs in plan.items():
            ds["/" + name] = (with_spectrum(rng.permutation(eigs), rng), {})
        write_h5(cls.spectra_file, ds)
        cls.spectra = {"%s:/%s" % (cls.spectra_file, k.lstrip("/")): v[0] for k, v in ds.items()}

        # A trained network's exact loss Hessian.
        net = MLP()
        cls.mlp_loss = net.train()
        H = net.hessian()
        cls.mlp_asym = np.linalg.norm(H - H.T) / np.linalg.norm(H)
        cls.mlp_fd_err = np.linalg.norm(H - net.hessian_central_differences()) / np.linalg.norm(H)
        cls.mlp_H = (H + H.T) / 2
        cls.mlp_n_flat_theory = net.shapes[2][0] + 1  # softmax: b2 + c·1 and W2[j,:] + a_j·1
        cls.mlp_file = os.path.join(cls.dir, "mlp.h5")
        write_h5(cls.mlp_file, {"/trained/hessian": (cls.mlp_H, {"step": 300, "loss": cls.mlp_loss,
                                                                  "name": "tanh-mlp"})})
        cls.mlp_source = cls.mlp_file + ":/trained/hessian"

        # A checkpoint file: a group written out of name order, attributes, 1-D metadata.
        cls.ckpt_file = os.path.join(cls.dir, "checkpoints.h5")
        cls.ckpt = {}
        spec = [("step_0300", 300, 0.21, 2.0, 6), ("step_0100", 100, 0.93, 0.5, 2), ("step_0200", 200, 0.40, 1.0, 4)]
        with h5py.File(cls.ckpt_file, "w") as f:
            for name, step, loss, T, flat in spec:
                eigs = np.concatenate([log_uniform(1e-2, 1e1, 24 - flat, rng), np.zeros(flat)])
                h = with_spectrum(eigs, rng)
                d = f.create_dataset("checkpoints/" + name, data=h)
                d.attrs["step"] = step
                d.attrs["loss"] = loss
                d.attrs["loss_threshold"] = T
                d.attrs["name"] = "ckpt-%d" % step
                cls.ckpt["/checkpoints/" + name] = (h, dict(step=step, loss=loss, loss_threshold=T,
                                                           name="ckpt-%d" % step))
            f.create_dataset("checkpoints/losses", data=np.linspace(1, 0, 5))
            h = with_spectrum(np.concatenate([log_uniform(1e-2, 1e1, 20, rng), np.zeros(4)]), rng)
            f.create_dataset("final", data=h)
            cls.ckpt["/final"] = (h, {})

        # float32: low rank 300 of 1000, log-uniform 1e2..3e-3, rotated: the
        # dtype cut (1.2e-2) drops the smallest, the float32 floor (~3e-5)
        # lies two decades under them.
        eigs = np.concatenate([np.exp(np.linspace(math.log(1e2), math.log(3e-3), 300)), np.zeros(700)])
        cls.f32_lowrank = with_spectrum(eigs, rng).astype(np.float32)
        cls.f32_lowrank_file = os.path.join(cls.dir, "f32_lowrank.h5")
        write_h5(cls.f32_lowrank_file, {"/hessian": (cls.f32_lowrank, {})})
        # float32: a continuum across the cut, n = 400, no zeros.
        cls.f32_cont = with_spectrum(log_uniform(1e-8, 1.0, 400, rng), rng).astype(np.float32)
        cls.f32_cont_file = os.path.join(cls.dir, "f32_continuum.h5")
        write_h5(cls.f32_cont_file, {"/hessian": (cls.f32_cont, {})})
        # float64 well conditioned, full rank.
        cls.full = with_spectrum(log_uniform(0.5, 20.0, 120, rng), rng)
        cls.full_file = os.path.join(cls.dir, "full_rank.h5")
        write_h5(cls.full_file, {"/hessian": (cls.full, {})})

    @classmethod
    def path(cls, name):
        return os.path.join(cls.dir, name)

    @classmethod
    def write(cls, name, h, **attrs):
        p = cls.path(name)
        write_h5(p, {"/hessian": (h, attrs)})
        return p


def setUpModule():
    Data.build()


def tearDownModule():
    if Data.tmp is not None:
        Data.tmp.cleanup()


class Base(unittest.TestCase):
    maxDiff = 4000

    def assertRow(self, row, ref, what="", check_tol=True):
        msg = "%s %s" % (what, row.get("source"))
        self.assertEqual(row["status"], "ok", msg + ": " + str(row.get("error")))
        self.assertEqual(row["n"], ref.n, msg)
        self.assertEqual(row["rank"], ref.rank, msg)
        self.assertEqual(row["dim"], ref.dim, msg)
        self.assertEqual(row["negative"], ref.negative, msg)
        self.assertLogV(row["log_volume"], ref.log_volume, msg, bar=row["log_volume_error"])
        self.assertAlmostEqual(row["log10_volume"], row["log_volume"] / math.log(10),
                               delta=1e-12 * max(1.0, abs(row["log_volume"])), msg=msg)
        if check_tol:
            self.assertAlmostEqual(row["tol"], ref.tol, delta=1e-9 * ref.tol, msg=msg)
        self.assertEqual("saddle" in row["warnings"], ref.negative > 0, msg)

    def assertLogV(self, got, want, msg="", bar=None):
        # Within LOGV_RTOL, or within twice the row's own error bar where it
        # reports a larger one: the reference is another dense solve, which
        # errs by as much again. A bar the tool understates fails here.
        self.assertIsInstance(got, (int, float), msg)
        allowed = LOGV_RTOL * max(1.0, abs(want))
        if bar is not None:
            allowed = max(allowed, 2 * bar)
        self.assertLessEqual(abs(got - want), allowed,
                             "%s: log_volume %r, expected %r (bar %r)" % (msg, got, want, bar))

    def assertRc(self, r, rc):
        self.assertEqual(r.rc, rc, repr(r))


# --------------------------------------------------------------------------
# Measurements against numpy
# --------------------------------------------------------------------------

class TestAgainstNumpy(Base):
    def test_rotated_known_spectra(self):
        r, rows = rows_json("volume", Data.spectra_file)
        self.assertRc(r, 0)
        got = by_source(rows)
        self.assertEqual(sorted(got), sorted(Data.spectra))
        for src, h in Data.spectra.items():
            ref = Ref(h)
            self.assertGreater(ref.margin, 1.0, "test data: an eigenvalue sits near the cut in " + src)
            self.assertRow(got[src], ref, "rotated spectrum")
            # float64 with exact zeros rotated: a clear gap, no ambiguity.
            self.assertNotIn("ambiguous_rank", got[src]["warnings"], src)
            self.assertIsNotNone(got[src]["gap"], src)
            self.assertGreater(got[src]["gap"], 1.0, src)

    def test_known_counts_of_the_plan(self):
        # The plan itself, by construction: guards the reference against mistakes.
        expect = {"a_small": (2, 1), "b_n60": (15, 5), "c_n150_6dec": (30, 12), "d_n300": (48, 26),
                  "e_n200_psd": (30, 0)}
        for src, h in Data.spectra.items():
            ref = Ref(h)
            self.assertEqual((ref.dim, ref.negative), expect[src.rsplit("/", 1)[1]], src)

    def test_trained_network_hessian(self):
        self.assertLess(Data.mlp_asym, 1e-12)
        self.assertLess(Data.mlp_fd_err, 1e-5, "complex-step Hessian disagrees with finite differences")
        ref = Ref(Data.mlp_H)
        self.assertEqual(ref.dim, Data.mlp_n_flat_theory, "softmax invariances give the flat directions")
        self.assertGreater(ref.negative, 0, "test data: expected a saddle-like checkpoint")
        self.assertGreater(ref.margin, 1.0, "test data: an eigenvalue sits near the cut")
        r, rows = rows_json("volume", Data.mlp_source)
        self.assertRc(r, 0)
        self.assertEqual(len(rows), 1)
        row = rows[0]
        self.assertRow(row, ref, "MLP")
        self.assertEqual(row["step"], 300)
        self.assertAlmostEqual(row["loss"], Data.mlp_loss, delta=1e-12)
        self.assertEqual(row["name"], "tanh-mlp")
        self.assertEqual(row["file"], Data.mlp_file)
        self.assertEqual(row["dataset"], "/trained/hessian")
        # Threshold: log V moves by (r/2)·log(T2/T1).
        for T in (0.01, 7.5):
            r, rows = rows_json("volume", Data.mlp_source, "-T", T)
            self.assertRc(r, 0)
            self.assertRow(rows[0], Ref(Data.mlp_H, T=T), "MLP -T %g" % T)
            self.assertLogV(rows[0]["log_volume"] - row["log_volume"], (ref.rank / 2) * math.log(T), "shift")
        # Negatives dropped: rank and volume over the positive curvature only.
        r, rows = rows_json("volume", Data.mlp_source, "--negatives", "drop")
        self.assertRc(r, 0)
        d = Ref(Data.mlp_H, negatives="drop")
        self.assertRow(rows[0], d, "MLP --negatives drop")
        self.assertEqual(rows[0]["rank"], ref.curved - ref.negative)

    def test_spectrum_lists_every_eigenvalue(self):
        for src in list(Data.spectra)[:4] + [Data.mlp_source]:
            h = Data.spectra.get(src, Data.mlp_H if src == Data.mlp_source else None)
            ref = Ref(h)
            r = run("spectrum", src, "--format", "json")
            self.assertRc(r, 0)
            row = strict_json(r.out)["rows"][0]
            ev = row["eigenvalues"]
            self.assertEqual(len(ev), ref.n, src)
            vals = np.sort(np.array([e["eigenvalue"] for e in ev]))
            scale = np.abs(ref.eigs).max()
            self.assertLess(np.abs(vals - ref.eigs).max(), 1e-10 * scale, src)
            for e in ev:
                self.assertEqual(e["kept"], abs(e["eigenvalue"]) > row["tol"], "%s %r" % (src, e))
            self.assertEqual(sum(e["kept"] for e in ev), ref.curved, src)
            self.assertEqual(row["rank"], ref.rank, src)
            self.assertEqual("saddle" in row["warnings"], ref.negative > 0, src)
            self.assertAlmostEqual(row["tol"], ref.tol, delta=1e-9 * ref.tol)

    def test_spectrum_under_negatives_drop_marks_what_the_volume_uses(self):
        # --negatives drop: the kept values are the row's rank, λ > tol only.
        src = [s for s in Data.spectra if s.endswith("b_n60")][0]
        ref = Ref(Data.spectra[src], negatives="drop")
        self.assertGreater(ref.negative, 0, "the spectrum must hold a saddle")
        r = run("spectrum", src, "--negatives", "drop", "--format", "json")
        self.assertRc(r, 0)
        row = strict_json(r.out)["rows"][0]
        for e in row["eigenvalues"]:
            self.assertEqual(e["kept"], e["eigenvalue"] > row["tol"], e)
        self.assertEqual(sum(e["kept"] for e in row["eigenvalues"]), row["rank"])
        self.assertEqual(row["rank"], ref.rank)
        for fmt, delim in (("tsv", "\t"), ("csv", ",")):
            r = run("spectrum", src, "--negatives", "drop", "--format", fmt)
            recs = list(csv.DictReader(io.StringIO(r.out), delimiter=delim))
            self.assertEqual(sum(x["kept"] == "true" for x in recs), ref.rank, fmt)
        r = run("spectrum", src, "--negatives", "drop")
        body = [ln.split() for ln in r.out.splitlines() if ln.split() and ln.split()[0].isdigit()]
        self.assertEqual([t[-1] for t in body].count("kept"), ref.rank)

    def test_spectrum_text_formats(self):
        src = [s for s in Data.spectra if s.endswith("b_n60")][0]
        ref = Ref(Data.spectra[src])
        r = run("spectrum", src)
        self.assertRc(r, 0)
        body = [ln.split() for ln in r.out.splitlines() if ln.split() and ln.split()[0].isdigit()]
        marks = [t[-1] for t in body if t[-1] in ("kept", "dropped")]
        self.assertEqual(len(body), ref.n, r)
        vals = np.sort([float(t[1]) for t in body])
        self.assertLess(np.abs(vals - ref.eigs).max(), 1e-10 * np.abs(ref.eigs).max())
        self.assertEqual(len(marks), ref.n, r)
        self.assertEqual(marks.count("kept"), ref.curved, r)
        self.assertIn("saddle", r.out, "the saddle warning is shown with the spectrum")
        for fmt, delim in (("tsv", "\t"), ("csv", ",")):
            r = run("spectrum", src, "--format", fmt)
            self.assertRc(r, 0)
            recs = list(csv.DictReader(io.StringIO(r.out), delimiter=delim))
            self.assertEqual(len(recs), ref.n, r)
            vals = np.sort([float(x["eigenvalue"]) for x in recs])
            self.assertLess(np.abs(vals - ref.eigs).max(), 1e-10 * np.abs(ref.eigs).max())
            kept = [x["kept"] == "true" for x in recs]
            self.assertEqual(sum(kept), ref.curved)
            self.assertGreater(ref.margin, 1.0)
            for x, k in zip(recs, kept):
                self.assertEqual(k, abs(float(x["eigenvalue"])) > ref.tol, x)

    def test_spectrum_tables_say_on_stderr_when_values_were_not_computed(self):
        # A low-rank Hessian (n 800, rank 40) is solved partially by default:
        # TSV and CSV list the 40 values computed and say on stderr how many
        # were not, with their bound; --method dense lists all 800.
        rng = np.random.default_rng(21)
        eigs = np.zeros(800)
        eigs[:40] = np.linspace(1.0, 2.0, 40)
        path = os.path.join(Data.tmp.name, "lowrank_spectrum.h5")
        write_h5(path, {"h": (with_spectrum(eigs, rng), {})})
        for fmt in ("tsv", "csv"):
            r = run("spectrum", path, "-f", fmt)
            self.assertRc(r, 0)
            recs = list(csv.reader(io.StringIO(r.out), delimiter="\t" if fmt == "tsv" else ","))
            self.assertEqual(len(recs) - 1, 40, r)
            m = re.search(r"h: 760 eigenvalues not computed \(method \w+: every one has \|λ\| <= (\S+), certified\)",
                          r.err)
            self.assertIsNotNone(m, r.err)
            self.assertLess(float(m.group(1)), 1e-10)  # the true ones are 0
            r = run("spectrum", path, "-f", fmt, "--method", "dense")
            self.assertRc(r, 0)
            self.assertEqual(len(r.out.splitlines()) - 1, 800)
            self.assertNotIn("not computed", r.err)

    def test_groups_expand_in_name_order_with_attributes(self):
        order = ["/checkpoints/step_0100", "/checkpoints/step_0200", "/checkpoints/step_0300"]
        for source, datasets in ((Data.ckpt_file, order + ["/final"]),
                                 (Data.ckpt_file + ":/checkpoints", order)):
            r, rows = rows_json("volume", source)
            self.assertRc(r, 0)
            self.assertEqual([row["dataset"] for row in rows], datasets, r)
            for row in rows:
                h, attrs = Data.ckpt[row["dataset"]]
                self.assertEqual(row["source"], Data.ckpt_file + ":" + row["dataset"])
                self.assertEqual(row["file"], Data.ckpt_file)
                T = attrs.get("loss_threshold", 1.0)
                self.assertRow(row, Ref(h, T=T), "checkpoint")
                if attrs:
                    self.assertEqual(row["step"], attrs["step"])
                    self.assertAlmostEqual(row["loss"], attrs["loss"], delta=1e-12)
                    self.assertAlmostEqual(row["loss_threshold"], attrs["loss_threshold"], delta=1e-12)
                    self.assertEqual(row["name"], attrs["name"])
                else:
                    for k in ("step", "loss", "loss_threshold", "name"):
                        self.assertIsNone(row[k], k)

    def test_threshold_option_overrides_attribute(self):
        _, base = rows_json("volume", Data.ckpt_file + ":/checkpoints")
        r, rows = rows_json("volume", Data.ckpt_file + ":/checkpoints", "-T", 3)
        self.assertRc(r, 0)
        for b, row in zip(base, rows):
            h, attrs = Data.ckpt[row["dataset"]]
            self.assertRow(row, Ref(h, T=3.0), "-T 3")
            shift = (row["rank"] / 2) * math.log(3.0 / attrs["loss_threshold"])
            self.assertLogV(row["log_volume"] - b["log_volume"], shift, "T shift " + row["dataset"])
        r2, rows2 = rows_json("volume", Data.ckpt_file + ":/checkpoints", "--threshold", 3)
        self.assertEqual([x["log_volume"] for x in rows2], [x["log_volume"] for x in rows])

    def test_large_contiguous_datasets_read_on_threads_give_the_chunked_twin_s_rows(self):
        """A contiguous dataset of the native type past 32 MB is read by
        preads of row bands on several threads, at HDF5's offset for it (past
        a user block); every other layout goes through HDF5. The same matrix
        stored each way gives the same row, bit for bit, and numpy's counts."""
        rng = np.random.default_rng(77)
        for n, dtype, rank in ((2100, "<f8", 40), (3000, "<f4", 30), (2100, "<f8", 2100)):
            G = rng.standard_normal((n, rank))
            H = (G @ G.T / rank).astype(dtype)
            if rank == n:  # full rank, with a not-quite-symmetric float64 twin of autograd's rounding
                H = H + 1e-15 * rng.standard_normal((n, n))
            f = os.path.join(Data.dir, "contiguous_%d_%s.h5" % (n, dtype[1:]))
            with h5py.File(f, "w", userblock_size=4096) as h:
                h["pad"] = np.arange(1001.0)
                h["contiguous"] = H
                h.create_dataset("chunked", data=H, chunks=(256, 256))
                h.create_dataset("big_endian", data=H, dtype=">" + dtype[1:])
            r, rows = rows_json("volume", f, "-j", "1")
            self.assertRc(r, 0)
            got = {row["dataset"]: row for row in rows}
            for row in got.values():
                for key in ("source", "dataset", "seconds", "solver"):
                    row.pop(key)
            self.assertEqual(got["/contiguous"], got["/chunked"], (n, dtype))
            self.assertEqual(got["/contiguous"], got["/big_endian"], (n, dtype))
            w = np.linalg.eigvalsh(H.astype(np.float64))
            tol = got["/contiguous"]["tol"]
            self.assertEqual(got["/contiguous"]["rank"], int((np.abs(w) > tol).sum()), (n, dtype))


# --------------------------------------------------------------------------
# Closed forms and invariances
# --------------------------------------------------------------------------

class TestClosedForms(Base):
    def test_parabola_xy_in_r3(self):
        # L = x² + y² in R³: H = diag(2, 2, 0), dimension 1, log V = log(πT).
        for src, T in ((os.path.join(TESTDATA, "ok.parabola_xy_in_r3.h5"), 1.0),
                       (os.path.join(TESTDATA, "ok.parabola_rotated_T05.h5"), 0.5)):
            r, rows = rows_json("volume", src)
            self.assertRc(r, 0)
            row = rows[0]
            self.assertEqual((row["n"], row["dim"], row["rank"], row["negative"]), (3, 1, 2, 0), src)
            self.assertLogV(row["log_volume"], math.log(math.pi * T), src)
        p = Data.write("parabola_own.h5", np.diag([2.0, 2.0, 0.0]))
        for T in (0.1, 1.0, 4.0):
            r, rows = rows_json("volume", p, "-T", T)
            self.assertRc(r, 0)
            self.assertEqual(rows[0]["dim"], 1)
            self.assertLogV(rows[0]["log_volume"], math.log(math.pi * T), "T=%g" % T)
            # The dropped eigenvalue is exactly zero, but under the noise floor a
            # value is noise: the gap is measured against the floor, here
            # float64's 8·√n·ε·‖H‖_F (n = 3, ‖H‖_F = √8).
            floor = 8 * math.sqrt(3) * 2.0 ** -52 * math.sqrt(8)
            self.assertAlmostEqual(rows[0]["noise_floor"], floor, delta=1e-12 * floor)
            self.assertAlmostEqual(rows[0]["gap"], math.log10(2 / floor), delta=1e-9)
            self.assertEqual((rows[0]["dim_low"], rows[0]["dim_high"]), (1, 1))

    def _logv(self, h, name, *extra):
        p = Data.write(name, h)
        r, rows = rows_json("volume", p, *extra)
        self.assertRc(r, 0)
        self.assertEqual(rows[0]["status"], "ok", r)
        return rows[0]

    def test_rotation_invariance(self):
        rng = np.random.default_rng(5)
        eigs = np.concatenate([log_uniform(1e-2, 1e2, 30, rng) * np.r_[np.ones(27), -np.ones(3)], np.zeros(10)])
        h = np.diag(eigs)
        base = self._logv(h, "diag.h5")
        self.assertEqual((base["rank"], base["dim"], base["negative"]), (30, 10, 3))
        self.assertLogV(base["log_volume"], log_volume_of(np.abs(eigs[:30]), 1.0), "diagonal")
        for k in range(3):
            q = rotation(40, rng)
            hq = q @ h @ q.T
            hq = (hq + hq.T) / 2
            row = self._logv(hq, "rotated_%d.h5" % k)
            self.assertEqual((row["rank"], row["dim"], row["negative"]), (30, 10, 3))
            self.assertLessEqual(abs(row["log_volume"] - base["log_volume"]), 1e-9 * abs(base["log_volume"]))

    def test_scaling_shifts_log_volume(self):
        rng = np.random.default_rng(6)
        h = with_spectrum(np.concatenate([log_uniform(1e-1, 1e1, 25, rng), np.zeros(7)]), rng)
        base = self._logv(h, "scale_1.h5")
        for alpha in (1e-3, 1e3):
            row = self._logv(alpha * h, "scale_%g.h5" % alpha)
            self.assertEqual((row["rank"], row["dim"]), (base["rank"], base["dim"]), alpha)
            r = base["rank"]
            self.assertLessEqual(abs(row["log_volume"] - base["log_volume"] + (r / 2) * math.log(alpha)),
                                 1e-9 * max(1.0, abs(base["log_volume"])), alpha)

    def test_flat_coordinate_adds_one_dimension(self):
        rng = np.random.default_rng(8)
        h = with_spectrum(np.concatenate([log_uniform(1e-1, 1e1, 18, rng) * np.r_[np.ones(16), -np.ones(2)],
                                          np.zeros(3)]), rng)
        base = self._logv(h, "flat_0.h5")
        g = np.zeros((22, 22))
        g[:21, :21] = h
        row = self._logv(g, "flat_1.h5")
        self.assertEqual(row["n"], base["n"] + 1)
        self.assertEqual(row["dim"], base["dim"] + 1)
        self.assertEqual(row["rank"], base["rank"])
        self.assertLessEqual(abs(row["log_volume"] - base["log_volume"]), 1e-9 * max(1.0, abs(base["log_volume"])))


# --------------------------------------------------------------------------
# The cut: float32 data, ambiguity, full rank
# --------------------------------------------------------------------------

class TestCut(Base):
    def test_float32_low_rank_default_cut_finds_rank(self):
        ref_dtype = Ref(Data.f32_lowrank)  # the dtype rule, in float32 eps
        self.assertEqual(ref_dtype.eps, float(np.finfo(np.float32).eps))
        a = np.sort(np.abs(ref_dtype.eigs))[::-1]
        gap300 = math.log10(a[299]) - math.log10(max(a[300], ref_dtype.floor))
        self.assertGreater(gap300, 1.0, "test data: the float32 noise floor must sit well under 3e-3")
        self.assertLess(ref_dtype.rank, 300, "test data: the dtype rule alone drops curved directions")
        r, rows = rows_json("volume", Data.f32_lowrank_file)
        self.assertRc(r, 0)
        row = rows[0]
        self.assertEqual(row["rank"], 300, r.out[:2000])
        self.assertEqual(row["dim"], 700)
        self.assertEqual(row["negative"], 0, "every curved eigenvalue is positive")
        self.assertTrue(max(a[300], row["noise_floor"]) <= row["tol"] < a[299], "the cut lies inside the gap")
        self.assertAlmostEqual(row["noise_floor"], ref_dtype.floor, delta=1e-6 * ref_dtype.floor)
        self.assertLogV(row["log_volume"], log_volume_of(a[:300], 1.0), "float32 low rank")
        self.assertAlmostEqual(row["gap"], gap300, delta=1e-6)
        self.assertNotIn("ambiguous_rank", row["warnings"])
        # The dtype rule on its own keeps fewer (the numpy.linalg.matrix_rank default).
        r, rows = rows_json("volume", Data.f32_lowrank_file, "--cut", "dtype")
        self.assertRc(r, 0)
        self.assertGreater(ref_dtype.margin, 1e-6)
        self.assertEqual(rows[0]["rank"], ref_dtype.rank)
        self.assertLess(ref_dtype.rank, 300)
        self.assertGreater(ref_dtype.rank, 150)
        self.assertAlmostEqual(rows[0]["tol"], ref_dtype.tol, delta=1e-9 * ref_dtype.tol)
        self.assertLogV(rows[0]["log_volume"], ref_dtype.log_volume, "--cut dtype")
        self.assertIn("ambiguous_rank", rows[0]["warnings"], "the dtype cut falls inside the continuum")

    def test_float32_continuum_is_ambiguous(self):
        ref = Ref(Data.f32_cont)
        self.assertLess(ref.gap, 1.0, "test data: continuum across the dtype cut")
        r, rows = rows_json("volume", Data.f32_cont_file)
        self.assertRc(r, 0)
        row = rows[0]
        self.assertIn("ambiguous_rank", row["warnings"], row)
        self.assertIsNotNone(row["gap"])
        self.assertLess(row["gap"], 1.0)
        # The reported gap is that of the reported tol, on the stored matrix's spectrum.
        a = np.abs(ref.eigs)
        g = math.log10(a[a > row["tol"]].min()) - math.log10(a[a <= row["tol"]].max())
        self.assertAlmostEqual(row["gap"], g, delta=1e-6)
        self.assertEqual(row["rank"], int((a > row["tol"]).sum()))
        # The same cut, with a larger --min-gap, is still ambiguous; with --min-gap 0 it is not flagged.
        r, rows = rows_json("volume", Data.f32_cont_file, "--cut", "dtype", "--min-gap", "0")
        self.assertRc(r, 0)
        self.assertNotIn("ambiguous_rank", rows[0]["warnings"])
        self.assertGreater(ref.margin, 1e-6)
        self.assertEqual(rows[0]["rank"], ref.rank)

    def test_full_rank_float64_keeps_everything(self):
        ref = Ref(Data.full)
        self.assertEqual(ref.rank, 120)
        r, rows = rows_json("volume", Data.full_file)
        self.assertRc(r, 0)
        row = rows[0]
        self.assertRow(row, ref, "full rank")
        self.assertEqual((row["rank"], row["dim"]), (120, 0))
        self.assertIsNone(row["gap"], "nothing dropped: gap unbounded (null)")
        self.assertNotIn("ambiguous_rank", row["warnings"])

    def test_explicit_tolerances(self):
        src = [s for s in Data.spectra if s.endswith("c_n150_6dec")][0]
        h = Data.spectra[src]
        amax = np.abs(np.linalg.eigvalsh(h)).max()
        for opt, val, tol in (("--atol", 0.05, 0.05), ("--rtol", 1e-4, 1e-4 * amax)):
            ref = Ref(h, tol=tol)
            self.assertGreater(ref.margin, 1e-6)
            r, rows = rows_json("volume", src, opt, val)
            self.assertRc(r, 0)
            self.assertRow(rows[0], ref, opt)


# --------------------------------------------------------------------------
# Output formats
# --------------------------------------------------------------------------

def parse_cell(field, text):
    if text == "":
        return None
    if field in ("n", "rank", "dim", "negative", "place"):
        return int(text)
    if field == "warnings":
        return text.split(";")  # one cell, no quotes needed
    if field in ("source", "file", "dataset", "method", "status", "error", "name"):
        return text
    return float(text)


class TestFormats(Base):
    @classmethod
    def setUpClass(cls):
        cls.sources = [Data.spectra_file, Data.ckpt_file, os.path.join(TESTDATA, "bad.nan.h5"), Data.mlp_source]

    def _json(self, cmd):
        r = run(cmd, *self.sources, "--format", "json")
        self.assertRc(r, 1)
        doc = strict_json(r.out)
        self.assertIn("schema_version", doc)
        self.assertIn("context", doc)
        self.assertIsInstance(doc["rows"], list)
        return doc["rows"]

    def test_json_rows_fields(self):
        for cmd in ("volume", "rank"):
            rows = self._json(cmd)
            self.assertEqual(len(rows), len(Data.spectra) + len(Data.ckpt) + 2)
            for row in rows:
                for k in ROW_FIELDS + ["loss_threshold", "name"]:
                    self.assertIn(k, row, "%s: field %s" % (cmd, k))
                self.assertIn(row["status"], ("ok", "error"))
                self.assertIsInstance(row["warnings"], list)
                if row["status"] == "ok":
                    self.assertIsNone(row["error"])
                    self.assertGreaterEqual(row["seconds"], 0)
                    for k in ("n", "rank", "dim", "negative"):
                        self.assertIsInstance(row[k], int, k)
                    self.assertEqual(row["rank"] + row["dim"], row["n"])
                    self.assertAlmostEqual(row["log10_volume"], row["log_volume"] / math.log(10), delta=1e-9)
                else:
                    self.assertIn("bad.nan.h5", row["error"])
                if cmd == "rank":
                    self.assertIn("place", row)

    def test_tsv_csv_match_json(self):
        for cmd in ("volume", "rank"):
            rows = self._json(cmd)
            for fmt, delim in (("tsv", "\t"), ("csv", ",")):
                r = run(cmd, *self.sources, "--format", fmt)
                self.assertRc(r, 1)
                lines = r.out.splitlines()
                self.assertEqual(len(lines), 1 + len(rows), r)
                if fmt == "tsv":
                    recs = list(csv.reader(io.StringIO(r.out), delimiter="\t", quoting=csv.QUOTE_NONE))
                else:
                    recs = list(csv.reader(io.StringIO(r.out)))
                header, body = recs[0], recs[1:]
                self.assertEqual(len(body), len(rows))
                for k in ROW_FIELDS + (["place"] if cmd == "rank" else []):
                    self.assertIn(k, header, "%s %s: column %s" % (cmd, fmt, k))
                for rec, row in zip(body, rows):
                    self.assertEqual(len(rec), len(header), rec)
                    cells = dict(zip(header, rec))
                    for k in ROW_FIELDS + (["place"] if cmd == "rank" else []):
                        if k == "seconds":
                            continue
                        got = parse_cell(k, cells[k])
                        want = row[k]
                        if k == "warnings":
                            self.assertEqual(got or [], want, (fmt, k))
                        elif isinstance(want, float) and got is not None:
                            self.assertAlmostEqual(got, want, delta=1e-15 * abs(want), msg=(fmt, k, row["source"]))
                        else:
                            self.assertEqual(got, want, (fmt, k, row["source"]))

    def test_jsonl_one_object_per_line(self):
        rows = self._json("rank")
        r = run("rank", *self.sources, "--format", "jsonl")
        self.assertRc(r, 1)
        lines = r.out.splitlines()
        self.assertEqual(len(lines), len(rows))
        for ln, row in zip(lines, rows):
            obj = strict_json(ln)
            for k in ROW_FIELDS + ["place"]:
                if k != "seconds":
                    self.assertEqual(obj[k], row[k], k)

    def test_table_is_human_text_with_the_same_numbers(self):
        rows = self._json("volume")
        r = run("volume", *self.sources)
        self.assertRc(r, 1)
        lines = r.out.splitlines()
        self.assertIn("source", lines[0])
        for row in rows:
            hit = [ln for ln in lines[1:] if row["source"] in ln.split()]
            self.assertEqual(len(hit), 1, row["source"])
            toks = hit[0].split()
            if row["status"] == "ok":
                self.assertIn(str(row["dim"]), toks)
                self.assertIn(str(row["rank"]), toks)
                floats = []
                for t in toks:
                    try:
                        floats.append(float(t))
                    except ValueError:
                        pass
                self.assertTrue(any(abs(f - row["log_volume"]) <= 1e-8 * max(1, abs(row["log_volume"]))
                                    for f in floats), hit[0])
                for w in row["warnings"]:
                    self.assertIn(w, hit[0])
            else:
                self.assertIn("error", toks)
        with self.assertRaises(ValueError):
            strict_json(r.out)


# --------------------------------------------------------------------------
# Ranking
# --------------------------------------------------------------------------

class TestRanking(Base):
    @classmethod
    def setUpClass(cls):
        rng = np.random.default_rng(11)
        base = np.concatenate([log_uniform(1e-1, 1e1, 30, rng), np.zeros(10)])  # n 40, dim 10
        r = 30
        delta = 0.01  # nats between "big" and "mid"
        cls.files = {
            "mid": Data.write("rk_mid.h5", with_spectrum(base, rng)),
            "big": Data.write("rk_big.h5", with_spectrum(base * math.exp(-2 * delta / r), rng)),
            "big_twin": Data.write("rk_big_twin.h5", with_spectrum(base * math.exp(-2 * delta / r), rng)),
            "small": Data.write("rk_small.h5", with_spectrum(base * 10.0, rng)),
            "flatter": Data.write("rk_flatter.h5", with_spectrum(
                np.concatenate([base[:27] * 100.0, np.zeros(13)]), rng)),
        }
        cls.delta = delta
        cls.refs = {k: Ref(h5py.File(p, "r")["hessian"][()]) for k, p in cls.files.items()}

    def _rank(self, names, *extra):
        r, rows = rows_json("rank", *[self.files[k] for k in names], *extra)
        inv = {v: k for k, v in self.files.items()}
        return r, [(inv.get(row["file"], row["file"]), row) for row in rows]

    def assertPlaces(self, ranked, tie_tol):
        """Places follow dimension, then log-volume; rows within tie_tol share a place."""
        for (ka, a), (kb, b) in zip(ranked, ranked[1:]):
            ra, rb = self.refs[ka], self.refs[kb]
            self.assertTrue(ra.dim > rb.dim or (ra.dim == rb.dim and ra.log_volume >= rb.log_volume - tie_tol),
                            "order %s before %s" % (ka, kb))
            tied = ra.dim == rb.dim and abs(ra.log_volume - rb.log_volume) <= tie_tol
            if tied:
                self.assertEqual(a["place"], b["place"], (ka, kb))
            else:
                self.assertGreater(b["place"], a["place"], (ka, kb))
        self.assertEqual(ranked[0][1]["place"], 1)

    def test_dimension_first_then_volume(self):
        names = ["small", "mid", "flatter", "big"]
        r, ranked = self._rank(names)
        self.assertRc(r, 0)
        self.assertEqual([k for k, _ in ranked], ["flatter", "big", "mid", "small"])
        # "flatter" has the smallest volume but three more flat directions: it ranks first.
        self.assertLess(self.refs["flatter"].log_volume, self.refs["small"].log_volume)
        self.assertPlaces(ranked, 1e-6)
        self.assertEqual(len({row["place"] for _, row in ranked}), 4)
        for k, row in ranked:
            self.assertRow(row, self.refs[k], k)

    def test_ties_share_a_place(self):
        r, ranked = self._rank(["mid", "big", "big_twin", "small"])
        self.assertRc(r, 0)
        self.assertLess(abs(self.refs["big"].log_volume - self.refs["big_twin"].log_volume), 1e-9)
        self.assertPlaces(ranked, 1e-6)
        places = {k: row["place"] for k, row in ranked}
        self.assertEqual(places["big"], places["big_twin"])
        self.assertEqual(places["big"], 1)
        self.assertGreater(places["mid"], places["big"])
        # A tie tolerance wider than the difference merges "mid" with "big".
        for tie_tol, merged in ((2 * self.delta, True), (self.delta / 2, False)):
            r, ranked = self._rank(["mid", "big", "small"], "--tie-tol", tie_tol)
            self.assertRc(r, 0)
            self.assertPlaces(ranked, tie_tol)
            places = {k: row["place"] for k, row in ranked}
            self.assertEqual(places["mid"] == places["big"], merged, tie_tol)
            self.assertGreater(places["small"], places["mid"])

    def test_error_rows_last_without_place(self):
        bad = os.path.join(TESTDATA, "bad.nan.h5")
        r, rows = rows_json("rank", bad, self.files["mid"], os.path.join(TESTDATA, "bad.not_hdf5.h5"),
                            self.files["flatter"])
        self.assertRc(r, 1)
        self.assertEqual([row["status"] for row in rows], ["ok", "ok", "error", "error"])
        self.assertEqual([row["place"] for row in rows], [1, 2, None, None])
        self.assertIn("bad.nan.h5", r.err)
        self.assertIn("bad.not_hdf5.h5", r.err)

    def test_mixed_n_ranks_by_curved_directions(self):
        rng = np.random.default_rng(12)
        x = Data.write("mx_x.h5", with_spectrum(np.r_[log_uniform(0.1, 10, 7, rng), np.zeros(3)], rng))  # n 10 dim 3
        y = Data.write("mx_y.h5", with_spectrum(np.r_[log_uniform(0.1, 10, 9, rng), np.zeros(3)], rng))  # n 12 dim 3
        z = Data.write("mx_z.h5", with_spectrum(np.r_[log_uniform(10, 100, 3, rng), np.zeros(5)], rng))  # n 8 dim 5
        r, rows = rows_json("rank", x, y, z)
        self.assertRc(r, 0)
        got = {row["file"]: row for row in rows}
        # r = n - dim: z 3, x 7, y 9; fewer curved directions first.
        self.assertEqual([row["file"] for row in rows], [z, x, y])
        self.assertEqual([row["place"] for row in rows], [1, 2, 3])
        for row in rows:
            self.assertIn("mixed_n", row["warnings"])
        self.assertIn("curved directions", r.err)
        # compare follows the same rule: x (r 7) ranks above y (r 9) although their dims are equal.
        c = run("compare", x, y)
        self.assertRc(c, 0)
        self.assertIn("curved directions", c.err)
        self.assertTrue(r.err.strip(), "a note on stderr")
        # Equal curved directions at different n: the log-volume decides, and the reason says n differs.
        w = Data.write("mx_w.h5", with_spectrum(np.r_[log_uniform(0.1, 10, 7, rng), np.zeros(5)], rng))  # n 12 r 7
        c = run("compare", x, w)
        self.assertIn("(n differs: A 10, B 12; the dims, A 3 and B 5, are not compared)", c.out)
        self.assertIn("volume: equal curved directions 7", c.err)
        # Same n: no mixed_n warning.
        r, rows = rows_json("rank", self.files["mid"], self.files["big"])
        for row in rows:
            self.assertNotIn("mixed_n", row["warnings"])

    def test_negatives_last_ranks_saddles_after_minima(self):
        rng = np.random.default_rng(13)
        saddle = Data.write("ng_saddle.h5", with_spectrum(np.r_[1.0, 2.0, 3.0, -0.5, np.zeros(6)], rng))  # dim 6
        minimum = Data.write("ng_min.h5", with_spectrum(np.r_[1.0, 2.0, 3.0, 4.0, 5.0, np.zeros(5)], rng))  # dim 5
        r, rows = rows_json("rank", minimum, saddle)
        self.assertRc(r, 0)
        self.assertEqual([row["file"] for row in rows], [saddle, minimum])
        self.assertIn("saddle", rows[0]["warnings"])
        self.assertEqual(rows[0]["negative"], 1)
        r, rows = rows_json("rank", saddle, minimum, "--negatives", "last")
        self.assertRc(r, 0)
        self.assertEqual([row["file"] for row in rows], [minimum, saddle])
        self.assertEqual([row["place"] for row in rows], [1, 2])
        self.assertIn("saddle", rows[1]["warnings"])
        # drop: the negative direction leaves rank and volume, and is still reported.
        h = h5py.File(saddle, "r")["hessian"][()]
        r, rows = rows_json("volume", saddle, "--negatives", "drop")
        self.assertRc(r, 0)
        ref = Ref(h, negatives="drop")
        self.assertEqual(ref.rank, 3)
        self.assertRow(rows[0], ref, "drop")
        self.assertLogV(rows[0]["log_volume"], log_volume_of(np.array([1.0, 2.0, 3.0]), 1.0), "drop closed form")
        # compare follows the same policy.
        self.assertRc(run("compare", saddle, minimum), 0)
        self.assertRc(run("compare", saddle, minimum, "--negatives", "last"), 1)
        self.assertRc(run("compare", minimum, saddle, "--negatives", "last"), 0)


# --------------------------------------------------------------------------
# Exit statuses, errors, usage
# --------------------------------------------------------------------------

# Under AddressSanitizer the listing child's address space cannot be capped
# (ASan's shadow maps terabytes), and bad.listing_asks_gigabytes.h5 has HDF5
# allocate and clear 23 GB until the listing limit stops it: the plain build
# tests it (test_bad_inputs.py); here it would only test the machine.
BAD = sorted(f for f in os.listdir(TESTDATA) if f.startswith("bad.") and f.endswith(".h5")
             and not (os.environ.get("BASINVOL_SANITIZE") and f == "bad.listing_asks_gigabytes.h5")) \
    if os.path.isdir(TESTDATA) else []


class TestExitStatus(Base):
    def test_all_ok_exits_0(self):
        r = run("volume", Data.spectra_file, Data.full_file)
        self.assertRc(r, 0)
        r = run("rank", Data.spectra_file, Data.full_file)
        self.assertRc(r, 0)
        r = run("spectrum", Data.full_file)
        self.assertRc(r, 0)

    def test_messages_name_flags_never_library_option_names(self):
        """The library names options as Python does (option max_memory); the
        command line says its flags, for usage errors and row messages alike."""
        suite = os.path.join(TESTDATA, "toys", "suite.h5")
        for args, flag in [(("volume", Data.full_file, "--min-gap", "-1"), "--min-gap must be a finite number >= 0"),
                           (("volume", Data.full_file, "--rtol", "inf"), "--rtol must be a finite number >= 0"),
                           (("volume", Data.full_file, "--atol", "nan"), "--atol must be a finite number >= 0"),
                           (("rank", Data.full_file, "--tie-tol", "-1"), "--tie-tol: must be a finite number >= 0"),
                           (("volume", Data.full_file, "--max-memory", "lots"), "--max-memory must be a size"),
                           (("volume", Data.full_file, "--max-memory", "0x10G"), "--max-memory must be a size"),
                           # Not 0 bytes (the default budget) nor 2^63 and more (past a size).
                           (("volume", Data.full_file, "--max-memory", "0.4"), "--max-memory must be at least 1 byte"),
                           # Slurm's megabytes, given bare: refused, not read as bytes
                           (("volume", Data.full_file, "--max-memory", "16384"),
                            "--max-memory: has no unit: 16384 bytes is no budget for a Hessian; write 16384M for "
                            "megabytes"),
                           (("validate", Data.full_file, "--max-memory", "512.5"), "write 512.5M for megabytes"),
                           (("volume", Data.full_file, "--max-memory", "99999999999999999999"),
                            "--max-memory must be under 8 EiB"),
                           # An infinite tolerance would pass every check.
                           (("validate", suite, "--logv-tol", "inf"), "--logv-tol must be a finite number >= 0, got inf"),
                           (("validate", suite, "--sigmas", "nan"), "--sigmas must be a finite number > 0, got nan"),
                           # A time limit's message, not DBL_MAX spelled out in 309 digits.
                           (("volume", Data.full_file, "--list-timeout", "0"),
                            "--list-timeout: must be a positive number of seconds, got '0'"),
                           (("volume", Data.full_file, "--read-timeout", "-1"),
                            "--read-timeout: must be a positive number of seconds, got '-1'"),
                           # Positive, under the floor: the floor is named.
                           (("volume", Data.full_file, "--list-timeout", "1e-10"),
                            "--list-timeout: must be at least a nanosecond (1e-9 seconds), got '1e-10'"),
                           (("rank", Data.full_file, "-T", "-2"), "--threshold must be a positive finite number"),
                           # The value as given, not std::to_string's -0.000000.
                           (("rank", Data.full_file, "-T", "-1e-9"), "positive finite number, got -1e-09"),
                           (("spectrum", Data.full_file, "--shard", "3/2"), "--shard must be I/N"),
                           (("validate", suite, "--samples", "1"), "--samples: must be a whole number from 2 to"),
                           # A negative count is refused, not read as 2^64 - 1 (a run without end).
                           (("validate", suite, "--samples", "-1"), "--samples: must be a whole number from 2 to"),
                           (("validate", suite, "--radial-directions", "-1"), "--radial-directions: must be a whole number"),
                           (("validate", suite, "--scan-max-n", "-1"), "--scan-max-n: must be a whole number from 0 to"),
                           # Numbers are decimal and in float64's range: not hexadecimal (strtod
                           # reads "0x10" as 16), not 1e-400 (read as 0), not a word; counts are whole.
                           (("rank", Data.full_file, "-T", "0x10"), "--threshold: must be a decimal number"),
                           (("volume", Data.full_file, "--atol", "1e-400"), "--atol: must be a decimal number"),
                           (("volume", Data.full_file, "--min-gap", ""), "--min-gap: must be a decimal number"),
                           (("rank", Data.full_file, "--tie-tol", "0x1"), "--tie-tol: must be a finite number >= 0"),
                           (("volume", Data.full_file, "-j", "abc"), "--jobs: must be a whole number from 1 to 4096, got 'abc'"),
                           (("volume", Data.full_file, "-j", "1.5"), "--jobs: must be a whole number"),
                           # Enum options take their names only, not the values behind them.
                           (("volume", Data.full_file, "--cut", "1"), "--cut: must be one of auto, dtype, gap"),
                           (("rank", Data.full_file, "-f", "xml"), "--format: must be one of table, tsv"),
                           (("volume", Data.full_file, "--order", "0"), "--order: must be one of input, finish")]:
            r = run(*args)
            self.assertRc(r, 2)
            self.assertIn(flag, r.err)
            self.assertNotIn("option ", r.err)
        # Blanks around a number and a leading + are the number's.
        for args in (("-j", " 2 "), ("-j", "08"), ("-T", " 0.5 "), ("--tie-tol", "+1e-6 "), ("--read-timeout", "30 ")):
            with self.subTest(args=args):
                self.assertRc(run("rank", Data.full_file, *args), 0)
        r, rows = rows_json("volume", Data.full_file, "--max-memory", "1K")
        self.assertRc(r, 1)
        self.assertIn("(--max-memory)", rows[0]["error"])
        self.assertIn("(--max-memory)", r.err)
        self.assertNotIn("option ", r.err + rows[0]["error"])
        # Only option names become flags: a path saying "option a" stays as it is.
        r, rows = rows_json("volume", "/nonexistent/option a/x.h5")
        self.assertRc(r, 1)
        self.assertIn("/nonexistent/option a/x.h5", rows[0]["error"])

    def test_bad_files_mixed_with_good_exit_1_and_report_the_rest(self):
        self.assertGreaterEqual(len(BAD), 10, TESTDATA)
        ok1 = os.path.join(TESTDATA, "ok.parabola_xy_in_r3.h5")
        ok2 = Data.full_file
        single_bad = [os.path.join(TESTDATA, b) for b in BAD if b != "bad.one_broken_member.h5"]
        broken = os.path.join(TESTDATA, "bad.one_broken_member.h5")
        args = [ok1] + single_bad[:6] + [ok2] + single_bad[6:] + [broken]
        for cmd in ("volume", "rank"):
            r, rows = rows_json(cmd, *args)
            self.assertRc(r, 1)
            for b in single_bad:
                mine = [row for row in rows if row["file"] == b]
                self.assertEqual(len(mine), 1, "%s: one row for %s" % (cmd, b))
                self.assertEqual(mine[0]["status"], "error", b)
                self.assertIn(os.path.basename(b), mine[0]["error"])
                self.assertIn(os.path.basename(b), r.err)
                if cmd == "rank":
                    self.assertIsNone(mine[0]["place"])
            good = {row["file"]: row for row in rows if row["status"] == "ok" and row["file"] in (ok1, ok2)}
            self.assertEqual(len(good), 2)
            self.assertRow(good[ok1], Ref(np.diag([2.0, 2.0, 0.0])), cmd)
            self.assertRow(good[ok2], Ref(Data.full), cmd)
            mine = [row for row in rows if row["file"] == broken]
            self.assertEqual([row["status"] for row in sorted(mine, key=lambda x: x["dataset"])],
                             ["ok", "error", "ok"], cmd)
            err = [row for row in mine if row["status"] == "error"][0]
            self.assertIn("step_0001", err["error"])
            self.assertIn("bad.one_broken_member.h5", err["error"])
            if cmd == "rank":
                statuses = [row["status"] for row in rows]
                self.assertEqual(statuses, sorted(statuses, key=lambda s: s == "error"), "error rows last")

    def test_stdout_parses_as_json_when_sources_fail(self):
        srcs = [Data.full_file, os.path.join(TESTDATA, "bad.nan.h5"), os.path.join(TESTDATA, "bad.not_hdf5.h5"),
                Data.mlp_source]
        for cmd in ("volume", "rank", "spectrum"):
            with self.subTest(cmd=cmd, format="json"):
                r = run(cmd, *srcs, "--format", "json")
                self.assertRc(r, 1)
                self.assertIn("bad.nan.h5", r.err)
                self.assertIn("bad.not_hdf5.h5", r.err)
                try:
                    doc = strict_json(r.out)
                except ValueError as e:
                    self.fail("%s --format json: stdout is not one JSON document (%s)\n%r" % (cmd, e, r))
                self.assertEqual(len(doc["rows"]), 4, cmd)
                self.assertEqual(sorted(row["status"] for row in doc["rows"]), ["error", "error", "ok", "ok"])
            with self.subTest(cmd=cmd, format="jsonl"):
                r = run(cmd, *srcs, "--format", "jsonl")
                self.assertRc(r, 1)
                objs = [strict_json(ln) for ln in r.out.splitlines()]
                self.assertEqual(len(objs), 4, cmd)
                self.assertEqual(sorted(o["status"] for o in objs), ["error", "error", "ok", "ok"])

    def test_machine_formats_carry_no_human_text(self):
        srcs = [Data.full_file, os.path.join(TESTDATA, "bad.nan.h5")]
        for fmt in ("tsv", "csv"):
            r = run("rank", *srcs, "--format", fmt)
            self.assertRc(r, 1)
            self.assertNotIn("basinvol:", r.out)
            self.assertNotIn("note", r.out.splitlines()[0])
            self.assertEqual(len(r.out.splitlines()), 3)

    def _usage(self, *args, mention=None):
        r = run(*args)
        self.assertRc(r, 2)
        self.assertEqual(r.out, "", repr(r))
        lines = [ln for ln in r.err.splitlines() if ln.strip()]
        # One line of message; a pointer to --help may follow it.
        message = [ln for ln in lines if "--help" not in ln or ln is lines[0]]
        self.assertEqual(len(message), 1, repr(r))
        if mention:
            self.assertIn(mention, r.err, repr(r))
        return r

    def test_usage_errors_exit_2(self):
        f = Data.full_file
        self._usage("volume", "--bogus", f, mention="--bogus")
        self._usage("rank", f, "--frobnicate", mention="--frobnicate")
        self._usage("volume", f, "--format", "xml", mention="xml")
        self._usage("rank", f, "--format", "yaml", mention="yaml")
        self._usage("volume")
        self._usage("rank")
        self._usage("spectrum")
        self._usage("compare", f)
        # A file of several Hessians as A: the message names it and them.
        r = self._usage("compare", Data.ckpt_file, f,
                        mention="A ('%s') names 4 Hessians (%s:/checkpoints/step_0100, " % (Data.ckpt_file, Data.ckpt_file))
        self.assertIn("compare takes one each: give FILE:PATH of one", r.err)
        self._usage()
        self._usage("volume", f, "--cut", "sideways", mention="sideways")
        self._usage("volume", f, "--negatives", "maybe", mention="maybe")
        self._usage("volume", f, "-T", "0")
        self._usage("volume", f, "-T", "-1")
        self._usage("volume", f, "-T", "abc")

    def test_unknown_subcommand_is_named(self):
        self._usage("frobnicate", Data.full_file, mention="frobnicate")

    def test_help_and_version(self):
        for cmd in ([], ["volume"], ["rank"], ["compare"], ["spectrum"]):
            r = run(*cmd, "--help")
            self.assertRc(r, 0)
            self.assertIn("Example", r.out, cmd)
            self.assertEqual(r.err, "", cmd)
        r = run("--version")
        self.assertRc(r, 0)
        self.assertRegex(r.out, r"\d+\.\d+")


# --------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------

def floats_in(text):
    return [float(x) for x in re.findall(r"[-+]?\d+\.?\d*(?:[eE][-+]?\d+)?", text)]


class TestCompare(Base):
    @classmethod
    def setUpClass(cls):
        rng = np.random.default_rng(21)
        base = np.concatenate([log_uniform(1e-1, 1e1, 12, rng), np.zeros(4)])  # n 16, dim 4
        cls.wide = Data.write("cmp_wide.h5", with_spectrum(base * 0.5, rng))
        cls.narrow = Data.write("cmp_narrow.h5", with_spectrum(base * 2.0, rng))
        cls.narrow_twin = Data.write("cmp_narrow_twin.h5", with_spectrum(base * 2.0, rng))
        cls.flat = Data.write("cmp_flat.h5", with_spectrum(np.r_[base[:10] * 50.0, np.zeros(6)], rng))  # dim 6
        cls.ref = {p: Ref(h5py.File(p, "r")["hessian"][()])
                   for p in (cls.wide, cls.narrow, cls.narrow_twin, cls.flat)}

    def test_dimension_decides(self):
        r = run("compare", self.flat, self.wide)
        self.assertRc(r, 0)
        text = r.out + r.err
        self.assertIn("dimension", text)
        self.assertRegex(text, r"\b%d\b" % self.ref[self.flat].dim)
        self.assertRegex(text, r"\b%d\b" % self.ref[self.wide].dim)
        r = run("compare", self.wide, self.flat)
        self.assertRc(r, 1)
        self.assertIn("dimension", r.out + r.err)

    def test_volume_decides(self):
        a, b = self.ref[self.wide], self.ref[self.narrow]
        self.assertEqual(a.dim, b.dim)
        self.assertGreater(a.log_volume, b.log_volume)
        for x, y, rc in ((self.wide, self.narrow, 0), (self.narrow, self.wide, 1)):
            r = run("compare", x + ":/hessian", y + ":/hessian")
            self.assertRc(r, rc)
            text = r.out + r.err
            self.assertIn("volume", text)
            fl = floats_in(text)
            for want in (a.log_volume, b.log_volume):
                self.assertTrue(any(abs(f - want) <= 1e-8 * max(1, abs(want)) for f in fl),
                                "log-volume %r not printed: %r" % (want, r))

    def test_negatives_last_a_saddle_whose_negative_value_lies_in_its_band_is_noise(self):
        # −2e-14 is kept (tol 6e-15) but a cut a decade up drops it: the
        # saddle may be a minimum, so under --negatives last the order is
        # noise's (exit 3 under --strict), and each row reports its negative band.
        minimum = Data.write("cmp_min.h5", np.diag([1.0, 1, 1, 0]))
        in_noise = Data.write("cmp_saddle_in_noise.h5", np.diag([1.0, 1, 1, -2e-14]))
        clear = Data.write("cmp_saddle_clear.h5", np.diag([1.0, 1, 1, -0.5]))
        r, rows = rows_json("volume", minimum, in_noise, clear)
        self.assertRc(r, 0)
        self.assertEqual([(x["negative_low"], x["negative"], x["negative_high"]) for x in rows],
                         [(0, 0, 0), (0, 1, 1), (1, 1, 1)])
        r = run("compare", minimum, in_noise, "--negatives", "last", "--strict")
        self.assertRc(r, 3)
        self.assertIn("may make a saddle a minimum", r.out + r.err)
        r = run("compare", minimum, clear, "--negatives", "last", "--strict")
        self.assertRc(r, 0)
        # In a ranking the clear saddle is uncertain too: in_noise's dim band
        # (0..1) leaves their order to noise, as it does without --negatives last.
        r, rows = rows_json("rank", minimum, in_noise, clear, "--negatives", "last")
        self.assertEqual([x["dataset"] for x in rows], ["/hessian"] * 3)
        self.assertEqual([("place_uncertain" in x["warnings"]) for x in rows], [True, True, True])
        r, rows = rows_json("rank", minimum, clear, "--negatives", "last")
        self.assertEqual([("place_uncertain" in x["warnings"]) for x in rows], [False, False])

    def test_tie_is_not_above(self):
        r = run("compare", self.narrow, self.narrow_twin)
        self.assertRc(r, 1)
        r = run("compare", self.narrow, self.narrow)
        self.assertRc(r, 1)
        r = run("compare", self.wide, self.narrow)
        self.assertRc(r, 0)
        r = run("compare", self.wide, self.narrow, "--tie-tol", "100")
        self.assertRc(r, 1)

    def test_json_result(self):
        r = run("compare", self.wide, self.narrow, "--format", "json")
        self.assertRc(r, 0)
        doc = strict_json(r.out)
        self.assertEqual(doc["a"]["file"], self.wide)
        self.assertLogV(doc["a"]["log_volume"], self.ref[self.wide].log_volume)
        self.assertLogV(doc["b"]["log_volume"], self.ref[self.narrow].log_volume)

    def test_errors_exit_2(self):
        # A source that cannot be analyzed is an error row: the comparison's
        # result is "error", the other row is still reported, exit 2.
        for a, b, bad in ((os.path.join(TESTDATA, "bad.nan.h5"), self.wide, "a"),
                          (self.wide, os.path.join(TESTDATA, "bad.not_hdf5.h5"), "b"),
                          (self.wide, Data.path("does_not_exist.h5"), "b")):
            r = run("compare", a, b, "--format", "json")
            self.assertRc(r, 2)
            doc = strict_json(r.out)
            self.assertEqual(doc["result"], "error")
            self.assertEqual(doc[bad]["status"], "error")
            good = "b" if bad == "a" else "a"
            self.assertEqual(doc[good]["status"], "ok")
            self.assertLogV(doc[good]["log_volume"], self.ref[self.wide].log_volume)
            self.assertEqual(r.err.count("basinvol: error:"), 1, r.err)
            for fmt in ("table", "tsv", "csv"):
                r = run("compare", a, b, "--format", fmt)
                self.assertRc(r, 2)
                self.assertIn("error", r.out, fmt)
        # Usage errors (several Hessians for one side): nothing on stdout.
        for a, b in ((Data.ckpt_file, self.wide), (self.wide, Data.ckpt_file + ":/checkpoints")):
            r = run("compare", a, b)
            self.assertRc(r, 2)
            self.assertEqual(r.out, "", repr(r))
            self.assertTrue(r.err.strip())


def main():
    global BIN
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.stderr.write("usage: test_cli.py PATH/TO/basinvol [unittest options]\n")
        return 2
    BIN = os.path.abspath(sys.argv[1])
    if not os.access(BIN, os.X_OK):
        sys.stderr.write("test_cli.py: %s is not an executable\n" % BIN)
        return 2
    prog = unittest.main(argv=[sys.argv[0]] + sys.argv[2:], exit=False, verbosity=2)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
