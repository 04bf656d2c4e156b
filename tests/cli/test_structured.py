"""Structured Hessians (docs/structured.md) through the command line: each
structure and a blocks model mixing them agree with their dense twins (the
n×n matrix the structure stands for) and with numpy references computed from
the structure; per-block answers add up; broken layouts are one error row each.

Run: /usr/bin/python3 tests/cli/test_structured.py path/to/basinvol
"""
import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

import clitest

import h5py
import numpy as np

BIN = None


def run(*args):
    return subprocess.run([BIN] + [str(a) for a in args], capture_output=True, text=True, timeout=300)


def rows_of(p):
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def rotated(eigs, rng):
    q = np.linalg.qr(rng.standard_normal((len(eigs), len(eigs))))[0]
    h = (q * np.asarray(eigs, dtype=float)) @ q.T
    return (h + h.T) / 2


def block_diag(*mats):
    n = sum(m.shape[0] for m in mats)
    out = np.zeros((n, n))
    i = 0
    for m in mats:
        k = m.shape[0]
        out[i:i + k, i:i + k] = m
        i += k
    return out


def log_volume_of(abs_kept, T=1.0):
    r = len(abs_kept)
    return (r / 2) * math.log(math.pi) - math.lgamma(r / 2 + 1) + (r / 2) * math.log(2 * T) - 0.5 * float(np.sum(np.log(abs_kept)))


class Structured(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="basinvol-structured-")
        cls.dir = cls.tmp.name
        rng = np.random.default_rng(2026)
        # The parts: a dense block with negative eigenvalues, a scaled factor,
        # a Kronecker pair (A PSD of rank 5, B indefinite), a diagonal with zeros.
        cls.dense = rotated(np.r_[np.logspace(1, -2, 12), [-0.5, -0.03], np.zeros(6)], rng)
        cls.G = rng.standard_normal((7, 30)) * np.logspace(0, -1, 30)
        cls.scale = 0.25
        cls.A = rotated(np.r_[np.logspace(0.5, -1, 5), np.zeros(3)], rng)
        cls.B = rotated(np.r_[[2.0, 1.0, 0.3, -0.2], np.zeros(2)], rng)
        cls.diag = np.r_[np.logspace(1, -3, 9), np.zeros(4)]
        cls.twin = block_diag(cls.dense, cls.scale * cls.G.T @ cls.G, np.kron(cls.A, cls.B), np.diag(cls.diag))
        cls.file = os.path.join(cls.dir, "model.h5")
        with h5py.File(cls.file, "w") as f:
            m = f.create_group("model")
            m.attrs["structure"] = "blocks"
            m.attrs["loss_threshold"] = 0.5
            m["a_dense"] = cls.dense
            g = m.create_group("b_factor")
            g.attrs["structure"] = "factor"
            g.attrs["scale"] = cls.scale
            g["G"] = cls.G
            k = m.create_group("c_kron")
            k.attrs["structure"] = "kron"
            k["A"] = cls.A
            k["B"] = cls.B
            d = m.create_dataset("d_diag", data=cls.diag)
            d.attrs["structure"] = "diagonal"
            t = f.create_dataset("twin", data=cls.twin)
            t.attrs["loss_threshold"] = 0.5

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def assert_same_answer(self, row, twin):
        for k in ("n", "rank", "dim", "negative"):
            self.assertEqual(row[k], twin[k], "%s: structured %s, dense twin %s" % (k, row[k], twin[k]))
        # Within both rows' error bars; a float32 twin is the product rounded
        # to float32, whose eigenvalues move by up to its input noise
        # (log_volume_noise). Where a bar is unbounded (null), a relative
        # bound stands in.
        def bar(x):
            return math.inf if x is None else x
        lv = twin["log_volume"]
        allowed = bar(row["log_volume_error"]) + bar(twin["log_volume_error"]) + 1e-12 * (1 + abs(lv))
        rel = 1e-8
        if twin["stored_type"] == "float32":
            allowed += bar(twin["log_volume_noise"])
            rel = 1e-5
        allowed = min(allowed, rel * (1 + abs(lv)))
        self.assertLessEqual(abs(row["log_volume"] - lv), allowed,
                             "log_volume: structured %r, dense twin %r" % (row["log_volume"], lv))

    def test_a_structure_without_its_attribute_is_named_in_the_error(self):
        # A factor group or a diagonal written without `structure`: the error
        # row says which attribute is missing, not only that the shape is wrong.
        f = self.path("unmarked.h5")
        with h5py.File(f, "w") as h:
            h["net/G"] = self.G
            h["d"] = self.diag
        p = run("volume", f, f + ":/d", "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        errors = {r["source"]: r["error"] for r in rows_of(p)}
        self.assertIn('dataset is not square: shape 7x30 (if it is a Gauss-Newton factor, give its group the '
                      'attribute structure = "factor"', errors[f + ":/net/G"])
        self.assertIn('it is 1-D with shape 13 (if it is a diagonal Hessian, give it the attribute structure = '
                      '"diagonal"',
                      errors[f + ":/d"])

    def test_a_blocks_group_without_its_attribute_is_named_when_ranked(self):
        # Layers of one checkpoint in a group that lacks structure = "blocks"
        # are separate Hessians (a collection); ranked, their different n
        # point at the group.
        f = self.path("no_blocks.h5")
        with h5py.File(f, "w") as h:
            for step in (1, 2):
                g = h.create_group("ck/step_%d" % step)
                g.attrs["step"] = step
                k = g.create_group("0_w")
                k.attrs["structure"] = "kron"
                k["A"], k["B"] = self.A, self.B
                g["2_dense"] = self.dense
        p = run("rank", f, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(rows_of(p)), 4)
        self.assertIn('%s:/ck/step_1 holds Hessians of different n, ranked as separate basins (/ck/step_1/0_w, n 48; '
                      '/ck/step_1/2_dense, n 20); if they are the blocks of one Hessian, rank that Hessian: the '
                      'group, given the attribute structure = "blocks" if it lacks it' % f, p.stderr)
        # Given it: one Hessian per checkpoint, and no such note.
        with h5py.File(f, "a") as h:
            for step in (1, 2):
                h["ck/step_%d" % step].attrs["structure"] = "blocks"
        p = run("rank", f, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([r["n"] for r in rows_of(p)], [68, 68])
        self.assertNotIn("different n", p.stderr)

    def test_parameter_block_attributes_on_a_structure_are_refused_under_per_block(self):
        # The exporter's param_offsets/param_sizes name a dense Hessian's
        # blocks; on a structure (whose blocks are its members) they were
        # left unread without a word, however wrong.
        f = self.path("param_attrs.h5")
        with h5py.File(f, "w") as h:
            g = h.create_group("factor")
            g.attrs["structure"] = "factor"
            g["G"] = self.G
            g.attrs["param_offsets"] = [0, 100]
            g.attrs["param_sizes"] = [100, 7]
            m = h.create_group("model")
            m.attrs["structure"] = "blocks"
            m["a"] = self.dense
            m["b"] = self.dense
            m.attrs["Param_Names"] = ["a", "b"]
            k = h.create_group("clean")
            k.attrs["structure"] = "kron"
            k["A"], k["B"] = self.A, self.B
        p = run("volume", "--per-block", f, "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = {r["source"]: r for r in rows_of(p)}
        self.assertEqual(rows[f + ":/factor[param_offsets]"]["error"],
                         f + ":/factor[param_offsets]: attribute param_offsets is not read on a structure (factor): "
                         'its blocks are the members of a structure "blocks", each a row of --per-block')
        self.assertIn("attribute Param_Names is not read on a structure (blocks)",
                      rows[f + ":/model[param_offsets]"]["error"])
        # The structures themselves, and the members' rows, are measured; the clean one has no extra row.
        for src in ("/factor", "/model", "/model/a", "/model/b", "/clean"):
            self.assertEqual(rows[f + ":" + src]["status"], "ok", src)
        self.assertEqual(len(rows), 7)
        self.assertEqual(run("volume", f, "-f", "jsonl").returncode, 0)  # without --per-block they change nothing

    def test_blocks_model_equals_its_dense_twin(self):
        p = run("volume", self.file + ":/model", self.file + ":/twin", "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        row, twin = rows_of(p)
        self.assertEqual(row["structure"], "blocks")
        self.assertEqual(row["method"], "structured")
        self.assertTrue(row["certified"])
        self.assertIsNone(twin["structure"])
        self.assertEqual(row["n"], 20 + 30 + 48 + 13)
        self.assertEqual(row["threshold"], 0.5)
        self.assert_same_answer(row, twin)
        # Against numpy from the structure itself: the eigenvalues of each part.
        lam = np.r_[np.linalg.eigvalsh(self.dense), self.scale * np.linalg.svd(self.G, compute_uv=False) ** 2,
                    np.zeros(30 - 7), np.outer(np.linalg.eigvalsh(self.A), np.linalg.eigvalsh(self.B)).ravel(), self.diag]
        kept = np.abs(lam) > row["tol"]
        self.assertEqual(row["rank"], int(kept.sum()))
        self.assertEqual(row["negative"], int((lam[kept] < 0).sum()))
        self.assertEqual(row["negative"], 2 + 5 * 1)  # the dense block's two, and A's five positives times B's one negative
        self.assertAlmostEqual(row["log_volume"], log_volume_of(np.abs(lam[kept]), 0.5), delta=1e-11 * abs(row["log_volume"]))

    def test_spectrum_lists_every_eigenvalue_of_the_twin(self):
        # The factor (7×30) lists 7 values and the diagonal's zeros are
        # stored: the 23 the factor does not list are exactly zero, and
        # `spectrum` gives all n, as for the twin.
        p = run("spectrum", self.file + ":/model", "-f", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        (row,) = json.loads(p.stdout)["rows"]
        self.assertTrue(row["eigenvalues_complete"])
        values = np.sort([e["eigenvalue"] for e in row["eigenvalues"]])
        want = np.linalg.eigvalsh(self.twin)
        self.assertEqual(len(values), len(want))
        np.testing.assert_allclose(values, want, rtol=0, atol=1e-12 * np.abs(want).max())
        self.assertGreaterEqual(int((values == 0).sum()), 30 - 7)

    def test_a_spectrum_of_millions_of_values_streams_in_bounded_memory(self):
        # A diagonal of 10^6 values (8 MB): `spectrum` once built one JSON
        # value per eigenvalue (about 600 bytes each, outside any budget:
        # 1.2 GB for 2·10^6), and under ulimit -v the failed allocation
        # ended the process (std::bad_alloc in a destructor). Rows now go
        # out as they come, each value as it is formatted.
        n = 1000000
        f = self.path("million_diag.h5")
        d = np.linspace(-1.0, 2.0, n)
        with h5py.File(f, "w") as h:
            h.create_dataset("diag", data=d).attrs["structure"] = "diagonal"
            h["small"] = np.diag([2.0, 1.0, 0.0])
        for fmt in ("jsonl", "json"):
            p = subprocess.run(["/usr/bin/time", "-f", "peak %M KB", BIN, "spectrum", f, "-f", fmt, "--max-memory",
                                "100M"], capture_output=True, text=True, timeout=600)
            self.assertEqual(p.returncode, 0, p.stderr[-2000:])
            peak = int(p.stderr.splitlines()[-1].split()[1])
            if not os.environ.get("BASINVOL_SANITIZE"):  # AddressSanitizer's shadow and quarantine add their own
                self.assertLess(peak, 250 * 1024, fmt)
            rows = rows_of(p) if fmt == "jsonl" else json.loads(p.stdout)["rows"]
            self.assertEqual([len(r["eigenvalues"]) for r in rows], [n, 3], fmt)
            got = np.sort([e["eigenvalue"] for e in rows[0]["eigenvalues"]])
            np.testing.assert_array_equal(got, d)
            self.assertTrue(all(r["eigenvalues_complete"] for r in rows))
            self.assertEqual([e["index"] for e in rows[0]["eigenvalues"][:3]], [0, 1, 2])

    def test_per_block_answers_add_up(self):
        p = run("volume", self.file + ":/model", "-f", "jsonl")
        row = rows_of(p)[0]
        blocks = row["blocks"]
        self.assertEqual([b["name"] for b in blocks], ["a_dense", "b_factor", "c_kron", "d_diag"])
        self.assertEqual([b["n"] for b in blocks], [20, 30, 48, 13])
        self.assertEqual([b["rank"] for b in blocks], [14, 7, 5 * 4, 9])
        for k in ("rank", "dim", "negative", "n"):
            self.assertEqual(sum(b[k] for b in blocks), row[k], k)
        r = row["rank"]
        head = (r / 2) * math.log(math.pi) - math.lgamma(r / 2 + 1) + (r / 2) * math.log(2 * row["threshold"])
        self.assertAlmostEqual(head + sum(b["log_volume_part"] for b in blocks), row["log_volume"], delta=1e-9)
        # The factor block alone: −½ Σ log(s·σ²) over its 7 curved directions.
        sigma = np.linalg.svd(self.G, compute_uv=False)
        self.assertAlmostEqual(blocks[1]["log_volume_part"], -0.5 * float(np.sum(np.log(self.scale * sigma ** 2))), delta=1e-9)

    def test_each_structure_alone_equals_its_twin_in_both_stored_types(self):
        rng = np.random.default_rng(7)
        G = rng.standard_normal((25, 160))  # m < n: rank 25
        Gtall = rng.standard_normal((90, 40))  # m > n: full rank 40
        cases = {
            "factor": ({"G": G}, {"scale": 2.0}, 2.0 * G.T @ G),
            "factor_tall": ({"G": Gtall}, {}, Gtall.T @ Gtall),
            "kron": ({"A": self.A, "B": self.B}, {"scale": 3.0}, 3.0 * np.kron(self.A, self.B)),
        }
        for dtype in ("float64", "float32"):
            f = self.path("alone_%s.h5" % dtype)
            with h5py.File(f, "w") as h5:
                for name, (members, attrs, twin) in cases.items():
                    g = h5.create_group(name)
                    g.attrs["structure"] = name.split("_")[0]
                    for k, v in attrs.items():
                        g.attrs[k] = v
                    for k, v in members.items():
                        g[k] = v.astype(dtype)
                    # the twin is the matrix the stored values stand for, in the same type
                    stored = {k: v.astype(dtype).astype(np.float64) for k, v in members.items()}
                    t = (attrs.get("scale", 1.0) * stored["G"].T @ stored["G"]) if "G" in stored else \
                        attrs.get("scale", 1.0) * np.kron(stored["A"], stored["B"])
                    h5["twin_" + name] = ((t + t.T) / 2).astype(dtype)
                d = h5.create_dataset("diagonal", data=self.diag.astype(dtype))
                d.attrs["structure"] = "diagonal"
                h5["twin_diagonal"] = np.diag(self.diag).astype(dtype)
            p = run("volume", f, "-f", "jsonl")
            self.assertEqual(p.returncode, 0, p.stderr)
            rows = {r["dataset"]: r for r in rows_of(p)}
            for name in list(cases) + ["diagonal"]:
                with self.subTest(dtype=dtype, structure=name):
                    row, twin = rows["/" + name], rows["/twin_" + name]
                    self.assertEqual(row["stored_type"], dtype)
                    if "ambiguous_rank" in twin["warnings"]:
                        continue  # the contract holds where the twin's answer is unambiguous
                    self.assert_same_answer(row, twin)
            self.assertEqual(rows["/factor"]["rank"], 25)
            self.assertEqual(rows["/factor_tall"]["rank"], 40)

    def test_a_factor_and_its_twin_say_alike_what_a_draw_of_the_input_may_lift(self):
        # A stated error with the cut at it: every flat value of the truth,
        # the factor's exact zeros as its twin's rounding-level ones, may
        # come out over tol (dim_lifted 0, and of either sign); without it,
        # none can.
        rng = np.random.default_rng(5)
        G = rng.standard_normal((5, 30))
        f = self.path("lift_factor.h5")
        with h5py.File(f, "w") as h5:
            for name, g in (("a", G), ("b", 1.1 * G)):
                grp = h5.create_group(name)
                grp.attrs["structure"] = "factor"
                grp["G"] = g
                h5["twin_" + name] = g.T @ g
        for extra, lifted in (((), 25), (("--hessian-error", "1e-6"), 0)):
            with self.subTest(extra=extra):
                p = run("rank", f, "-f", "jsonl", *extra)
                self.assertEqual(p.returncode, 0, p.stderr)
                rows = {r["dataset"]: r for r in rows_of(p)}
                for name in ("a", "b"):
                    row, twin = rows["/" + name], rows["/twin_" + name]
                    self.assertEqual(row["dim_lifted"], lifted)
                    for k in ("dim", "dim_low", "dim_lifted", "negative_high", "place", "warnings"):
                        self.assertEqual(row[k], twin[k], k)

    def test_kronecker_pairs_equal_their_dense_twins_on_adversarial_spectra(self):
        """Kronecker parts are never expanded: their cut, counts and sums come
        from the factors' spectra. Against the expanded twin (eigenvalues of
        np.kron from LAPACK): products running down through the cut, a
        hidden saddle (a small negative β under large α), a negative scale,
        exact zeros with ties, float32 factors over many decades, and a
        blocks network of several pairs with a dense block. Counts, band,
        warnings and rule exact; log-volume within the rows' error bars."""
        rng = np.random.default_rng(2027)
        cases = {
            # 0.3^i from 1 to ~1e-13 in each factor: products fill the range to 1e-26, through the cut
            "through_cut": (rotated(0.3 ** np.arange(25), rng), rotated(0.3 ** np.arange(25), rng), 1.0, "float64"),
            # a tiny negative β times the largest α: a saddle far below the top, above the floor
            "hidden_saddle": (rotated(np.r_[np.logspace(2, -1, 12), np.zeros(4)], rng),
                              rotated(np.r_[np.logspace(0, -2, 10), [-1e-5], np.zeros(5)], rng), 1.0, "float64"),
            # scale < 0 flips every sign; repeated eigenvalues give tied products
            "negative_scale": (rotated([2.0, 2.0, 1.0, 1.0, 0.5, 0.0, 0.0], rng),
                               rotated([3.0, 1.0, 1.0, 0.25, 0.0], rng), -0.7, "float64"),
            # float32 factors over six decades each
            "wide32": (rotated(np.r_[np.logspace(0, -6, 20), np.zeros(4)], rng),
                       rotated(np.r_[np.logspace(1, -5, 18), np.zeros(6)], rng), 1.0, "float32"),
        }
        f = self.path("kron_adversarial.h5")
        with h5py.File(f, "w") as h5:
            for name, (A, B, scale, dtype) in cases.items():
                g = h5.create_group(name)
                g.attrs["structure"] = "kron"
                g.attrs["scale"] = scale
                g["A"], g["B"] = A.astype(dtype), B.astype(dtype)
                a, b = A.astype(dtype).astype(np.float64), B.astype(dtype).astype(np.float64)
                # the matrix the stored factors stand for, stored in their type (as for G)
                h5["twin_" + name] = (scale * np.kron(a, b)).astype(dtype)
            net = h5.create_group("net")
            net.attrs["structure"] = "blocks"
            twins = []
            for i, name in enumerate(["hidden_saddle", "negative_scale", "through_cut"]):
                A, B, scale, _ = cases[name]
                k = net.create_group("p%d" % i)
                k.attrs["structure"] = "kron"
                k.attrs["scale"] = scale
                k["A"], k["B"] = A, B
                twins.append(scale * np.kron(A, B))
            D = rotated(np.r_[np.logspace(1, -3, 8), [-0.2], np.zeros(3)], rng)
            net["p3_dense"] = D
            h5["twin_net"] = block_diag(*twins, D)
        p = run("volume", f, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = {r["dataset"]: r for r in rows_of(p)}
        for name in list(cases) + ["net"]:
            with self.subTest(structure=name):
                row, twin = rows["/" + name], rows["/twin_" + name]
                self.assertEqual(row["method"], "structured")
                self.assertEqual(twin["method"], "dense")
                for k in ("n", "rank", "dim", "dim_low", "dim_high", "dim_lifted", "negative", "warnings", "cut"):
                    self.assertEqual(row[k], twin[k], "%s: structured %s, dense twin %s" % (k, row[k], twin[k]))
                self.assertEqual(row["stored_type"], twin["stored_type"])
                # A float32 twin is the product rounded to float32: its eigenvalues
                # move by that rounding (as in assert_same_answer).
                rel = 1e-5 if twin["stored_type"] == "float32" else 1e-9
                self.assertAlmostEqual(row["tol"], twin["tol"], delta=rel * twin["tol"])
                self.assertLessEqual(abs(row["log_volume"] - twin["log_volume"]),
                                     row["log_volume_error"] + twin["log_volume_error"] + rel * abs(twin["log_volume"]))
                # The input noise's reach: the twin's sum, or a Kronecker
                # part's bound on it (x/(1 − x) for −log(1 − x)), not below it.
                self.assertGreaterEqual(row["log_volume_noise"], (1 - 100 * rel) * twin["log_volume_noise"])
                self.assertLessEqual(row["log_volume_noise"], 2 * twin["log_volume_noise"] + 1e-300)
        self.assertEqual(rows["/hidden_saddle"]["negative"], 12)  # B's one negative times A's twelve positives
        self.assertEqual(rows["/negative_scale"]["negative"], rows["/negative_scale"]["rank"])
        self.assertIn("saddle", rows["/net"]["warnings"])

    def test_per_block_rows_follow_the_whole(self):
        p = run("volume", self.file + ":/model", "--per-block", "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = rows_of(p)
        self.assertEqual([r["dataset"] for r in rows],
                         ["/model", "/model/a_dense", "/model/b_factor", "/model/c_kron", "/model/d_diag"])
        self.assertEqual([r["n"] for r in rows[1:]], [20, 30, 48, 13])
        for r in rows[1:]:
            self.assertEqual(r["threshold"], 0.5, "the whole's loss_threshold holds for its blocks")
        # Each block on its own: its own cut, here the same counts as in the whole.
        self.assertEqual([r["rank"] for r in rows[1:]], [b["rank"] for b in rows[0]["blocks"]])
        self.assertEqual(rows[1]["method"], "dense")
        self.assertEqual(rows[2]["structure"], "factor")
        own = run("volume", self.file + ":/model/c_kron", "-f", "jsonl")
        self.assertEqual(rows_of(own)[0]["rank"], rows[3]["rank"])

    def test_a_ranking_of_per_block_rows_ranks_the_wholes(self):
        # Each part is a Hessian of its own n: ranked among the wholes, a
        # layer of 13 parameters took place 1 before the model it is part of.
        out = os.path.join(self.dir, "parts.jsonl")
        dense = os.path.join(self.dir, "param_blocks.h5")
        with h5py.File(dense, "w") as h:
            d = h.create_dataset("H", data=np.diag(np.arange(1.0, 13.0)))
            d.attrs["param_offsets"] = np.array([0, 6])
            d.attrs["param_sizes"] = np.array([6, 6])
            d.attrs["param_names"] = np.array(["['params']['w']", "b"], dtype=h5py.string_dtype())
        root = os.path.join(self.dir, "root_blocks.h5")  # a blocks structure at the root group: parts "/a", "/b"
        with h5py.File(root, "w") as h:
            h.attrs["structure"] = "blocks"
            h["a"] = np.diag([3.0, 2.0, 0.0])
            h["b"] = np.diag([1.0, 0.0])
        p = run("volume", self.file + ":/model", dense, root, "--per-block", "-f", "jsonl", "-o", out)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(rows_of(run("volume", self.file + ":/model", dense, root, "--per-block", "-f", "jsonl"))), 11)
        p = run("rank", "--from-results", out, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(sorted(r["dataset"] for r in rows_of(p)), ["/", "/H", "/model"])
        self.assertIn("8 row(s) are --per-block parts of Hessians ranked here (e.g. ", p.stderr)
        # Without their wholes, parts are Hessians like any other.
        parts = os.path.join(self.dir, "parts_only.jsonl")
        with open(parts, "w") as fh:
            with open(out) as saved:
                fh.writelines(line for line in saved if json.loads(line)["dataset"] not in ("/model", "/H", "/"))
        p = run("rank", "--from-results", parts, "-f", "jsonl")
        self.assertEqual(len(rows_of(p)), 8)
        self.assertNotIn("parts", p.stderr)

    def test_per_block_rows_take_the_whole_s_error_bound(self):
        """A bound on the whole's error bounds each diagonal block's: a block
        row analysed alone keeps the `hessian_error` the whole states itself
        (1e-6 here, so block b's 1e-8 is flat, as under --hessian-error
        1e-6) unless it states its own (c: 1e-9, its 1e-8 curved; d: 1e-3).
        A sibling's stated error (d's), folded into the whole's row, is not
        another block's: under /m2, which states none, a2 keeps its own
        floor. Block b once fell to its own floor (5e-15) and counted 1e-8
        as curvature."""
        f = self.path("whole_error.h5")
        with h5py.File(f, "w") as h5:
            for group, whole, members in (
                    ("m", 1e-6, (("a", [1.0, 0.5], None), ("b", [2.0, 1e-8], None), ("c", [3.0, 1e-8], 1e-9),
                                 ("d", [1.0, 1e-4], 1e-3))),
                    ("m2", None, (("a2", [2.0, 1e-8], None), ("d2", [1.0, 1e-4], 1e-3)))):
                m = h5.create_group(group)
                m.attrs["structure"] = "blocks"
                if whole is not None:
                    m.attrs["hessian_error"] = whole
                for name, values, own in members:
                    d = m.create_dataset(name, data=np.array(values))
                    d.attrs["structure"] = "diagonal"
                    if own is not None:
                        d.attrs["hessian_error"] = own
            # A member that is a structure stating nothing itself, whose part
            # states 1e-12: the whole's 1e-6 still bounds it.
            e = h5["m"].create_group("e")
            e.attrs["structure"] = "blocks"
            d = e.create_dataset("p", data=np.array([2.0, 1e-8]))
            d.attrs["structure"] = "diagonal"
            d.attrs["hessian_error"] = 1e-12
        p = run("volume", f, "--per-block", "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = {r["dataset"]: r for r in rows_of(p)}
        self.assertEqual(rows["/m"]["hessian_error"], 1e-3, "the largest of the whole's and its parts'")
        self.assertEqual(rows["/m2"]["hessian_error"], 1e-3)
        for name, error, rank in (("m/a", 1e-6, 2), ("m/b", 1e-6, 1), ("m/c", 1e-9, 2), ("m/d", 1e-3, 1), ("m/e", 1e-6, 1),
                                  ("m2/a2", None, 2), ("m2/d2", 1e-3, 1)):
            row = rows["/" + name]
            with self.subTest(block=name):
                self.assertEqual((row["hessian_error"], row["rank"]), (error, rank), row)
                given = ("--hessian-error", str(error)) if error is not None else ()
                alone = rows_of(run("volume", f + ":/" + name, *given, "-f", "jsonl"))[0]
                self.assertEqual((alone["rank"], alone["noise_floor"]), (row["rank"], row["noise_floor"]))

    def test_per_block_rows_of_a_dense_hessian_are_its_parameter_blocks(self):
        # A dense Hessian with cross-block terms, written with the exporter's
        # parameter-block attributes; each block's row is its diagonal block's
        # own answer, from numpy on that block.
        rng = np.random.default_rng(7)
        parts = [rotated(np.r_[np.logspace(1, -2, 6), np.zeros(4)], rng),   # w: rank 6 of 10
                 rotated(np.r_[[3.0, -0.4], np.zeros(2)], rng),             # b: one negative
                 rotated(np.r_[np.logspace(0, -1, 9), np.zeros(7)], rng)]   # v: rank 9 of 16
        H = block_diag(*parts)
        C = rng.standard_normal((10, 16)) * 0.3
        H[:10, 14:] = C
        H[14:, :10] = C.T
        names, offsets, sizes = ["fc.weight", "fc.bias", "out.weight"], [0, 10, 14], [10, 4, 16]
        f = self.path("params.h5")
        with h5py.File(f, "w") as h5:
            for dtype, fixed in (("float64", False), ("float32", True)):
                chunked = dict(chunks=(7, 30), compression="gzip") if fixed else {}
                d = h5.create_dataset("h_" + dtype, data=H.astype(dtype), **chunked)
                d.attrs["loss_threshold"] = 0.5
                d.attrs["step"] = 300
                d.attrs["param_names"] = (np.array(names, dtype="S") if fixed
                                          else np.array(names, dtype=h5py.string_dtype()))
                d.attrs["param_offsets"] = np.array(offsets, dtype=np.int64)
                d.attrs["param_sizes"] = np.array(sizes, dtype=np.int32 if fixed else np.int64)
        p = run("volume", f, "--per-block", "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = {r["dataset"]: r for r in rows_of(p)}
        for dtype in ("float64", "float32"):
            whole = "/h_" + dtype
            self.assertEqual([r["dataset"] for r in rows_of(p) if r["dataset"].startswith(whole)],
                             [whole] + [whole + "[" + k + "]" for k in names])
            for name, o, k in zip(names, offsets, sizes):
                with self.subTest(dtype=dtype, block=name):
                    row = rows[whole + "[" + name + "]"]
                    self.assertEqual((row["n"], row["stored_type"], row["step"], row["threshold"]), (k, dtype, 300, 0.5))
                    lam = np.linalg.eigvalsh(H.astype(dtype).astype(np.float64)[o:o + k, o:o + k])
                    kept = np.abs(lam) > row["tol"]
                    self.assertEqual(row["rank"], int(kept.sum()))
                    self.assertEqual(row["negative"], int((lam[kept] < 0).sum()))
                    rel = 1e-5 if dtype == "float32" else 1e-9
                    self.assertAlmostEqual(row["log_volume"], log_volume_of(np.abs(lam[kept]), 0.5),
                                           delta=rel * (1 + abs(row["log_volume"])))
            self.assertEqual([rows[whole + "[" + k + "]"]["rank"] for k in names], [6, 1 + 1, 9])
        # Without --per-block, one row a dataset.
        self.assertEqual(len(rows_of(run("volume", f, "-f", "jsonl"))), 2)

    def test_broken_parameter_blocks_are_one_error_row_and_the_whole_is_measured(self):
        f = self.path("bad_params.h5")
        H = np.diag(np.arange(1.0, 13.0))
        cases = {
            "overlap": ({"param_offsets": [0, 4], "param_sizes": [6, 6]}, "block 1 starts at 4, before the block before it ends (6)"),
            "past_end": ({"param_offsets": [0, 8], "param_sizes": [8, 5]}, "block 1 ends at 8 + 5, past n = 12"),
            "negative": ({"param_offsets": [-1, 6], "param_sizes": [6, 6]}, "block 0 starts at -1; an offset is at least 0"),
            "empty": ({"param_offsets": [0, 3], "param_sizes": [3, 0]}, "block 1 has size 0"),
            "no_sizes": ({"param_offsets": [0, 6]}, "param_offsets is given without param_sizes"),
            "no_offsets": ({"param_sizes": [6, 6]}, "param_sizes is given without param_offsets"),
            "names_alone": ({"param_names": ["a", "b"]}, "param_names is given without param_offsets"),
            "other_case": ({"Param_offsets": [0, 6], "param_sizes": [6, 6]},
                           "attribute Param_offsets is not read: basinvol reads param_offsets, in lower case"),
            "lengths": ({"param_offsets": [0, 6], "param_sizes": [6]}, "param_sizes lists 1 blocks, param_offsets 2"),
            "floats": ({"param_offsets": [0.0, 6.0], "param_sizes": [6, 6]}, "param_offsets must hold integers, got float"),
            "names": ({"param_offsets": [0, 6], "param_sizes": [6, 6], "param_names": ["a"]}, "param_names lists 1 names for 2 blocks"),
            "same_names": ({"param_offsets": [0, 6], "param_sizes": [6, 6], "param_names": ["w", "w"]},
                           "blocks 0 and 1 have the same name 'w'"),
            "empty_name": ({"param_offsets": [0, 6], "param_sizes": [6, 6], "param_names": ["w", ""]},
                           "block 1 has an empty name"),
            # shown as stored (HDF5's conversion to int64 clamped it to 2^63 − 1)
            "uint64": ({"param_offsets": np.array([0, 2 ** 64 - 1], dtype=np.uint64), "param_sizes": [6, 6]},
                       "param_offsets: block 1's value 18446744073709551615 is past any n"),
        }
        with h5py.File(f, "w") as h5:
            for name, (attrs, _) in cases.items():
                d = h5.create_dataset(name, data=H)
                for k, v in attrs.items():
                    d.attrs[k] = np.array(v, dtype=h5py.string_dtype()) if k == "param_names" else np.array(v)
        p = run("volume", f, "--per-block", "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = {r["dataset"]: r for r in rows_of(p)}
        self.assertEqual(len(rows), 2 * len(cases))
        for name, (_, words) in cases.items():
            with self.subTest(name):
                self.assertEqual(rows["/" + name]["status"], "ok")
                self.assertEqual(rows["/" + name]["rank"], 12)
                err = rows["/" + name + "[param_offsets]"]
                self.assertEqual(err["status"], "error")
                self.assertIn("bad_params.h5:/" + name + "[param_offsets]: ", err["error"])
                self.assertIn(words, err["error"])

    def test_parameter_names_stating_a_huge_length_are_an_error_row_read_by_the_listing_only(self):
        # A corrupt heap ID states 64 MB for a 9-byte name: HDF5 allocates
        # and clears that twice to read it (gigabytes for a 4-byte length
        # near 2^32). The listing, in a child whose memory is capped, reads
        # the names and notes them as unreadable; --per-block does not read
        # them again here, where nothing caps it: the blocks are one error
        # row, the whole is measured.
        import struct
        f = self.path("corrupt_names.h5")
        with h5py.File(f, "w") as h5:
            d = h5.create_dataset("h", data=np.diag(np.arange(1.0, 13.0)))
            d.attrs["param_names"] = np.array(["fc.weight", "fc.b"], dtype=h5py.string_dtype())
            d.attrs["param_offsets"] = np.array([0, 6])
            d.attrs["param_sizes"] = np.array([6, 6])
        with open(f, "rb") as h:
            b = bytearray(h.read())
        pattern = struct.pack("<IQ", len("fc.weight"), b.find(b"GCOL"))
        at = b.find(pattern)
        self.assertTrue(at > 0 and b.find(pattern, at + 1) < 0)
        b[at:at + 4] = struct.pack("<I", 64 << 20)
        with open(f, "wb") as h:
            h.write(bytes(b))
        p = run("volume", f, "--per-block", "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = {r["dataset"]: r for r in rows_of(p)}
        self.assertEqual(sorted(rows), ["/h", "/h[param_offsets]"])
        self.assertEqual((rows["/h"]["status"], rows["/h"]["rank"]), ("ok", 12))
        self.assertIn("corrupt_names.h5:/h[param_offsets]: cannot read attribute param_names (corrupt file)",
                      rows["/h[param_offsets]"]["error"])

    def test_rank_mixes_structured_and_dense_rows(self):
        p = run("rank", self.file, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = rows_of(p)
        self.assertEqual(sorted(r["dataset"] for r in rows), ["/model", "/twin"])
        self.assertEqual(rows[0]["place"], rows[1]["place"], "a structure and its twin share a place")

    def test_csv_and_tsv_rows_round_trip_and_read_with_numpy(self):
        for fmt, delim in (("csv", ","), ("tsv", "\t")):
            out = self.path("rows." + fmt)
            p = run("volume", self.file, "-f", fmt, "-o", out, "--negatives", "abs")
            self.assertEqual(p.returncode, 0, p.stderr)
            table = np.genfromtxt(out, delimiter=delim, names=True, dtype=None, encoding=None)
            self.assertEqual(len(table), 2)
            self.assertIn("structure", table.dtype.names)
            self.assertEqual(sorted(str(v) for v in table["structure"]), ["", "blocks"])
            self.assertTrue(all(";" in str(w) or "," not in str(w) for w in table["warnings"]))
            back = run("rank", "--from-results", out, "-f", "jsonl")
            self.assertEqual(back.returncode, 0, back.stderr)
            rows = {r["dataset"]: r for r in rows_of(back)}
            self.assertEqual(rows["/model"]["structure"], "blocks")
            self.assertIsNone(rows["/twin"]["structure"])
            self.assertIn("saddle", rows["/model"]["warnings"])

    def test_misspelled_attributes_that_change_the_answer_are_error_rows(self):
        # A misspelled scale or structure would otherwise be read as absent:
        # the answer of scale 1, or every member a Hessian of its own.
        f = self.path("misspelled.h5")
        with h5py.File(f, "w") as h:
            for name, attr in (("ok", "scale"), ("Scale", "Scale"), ("scaling", "scaling"), ("SCALE", "SCALE")):
                g = h.create_group(name)
                g.attrs["structure"] = "factor"
                g.attrs[attr] = 1e-3
                g["G"] = self.G
            g = h.create_group("cap")
            g.attrs["Structure"] = "factor"
            g["G"] = self.G
            d = h.create_dataset("dense", data=np.eye(3))
            d.attrs["Hessian_Error"] = 0.1
            # Misspelled otherwise: other separators, a letter or two off.
            for name, attr in (("thresold", "loss_thresold"), ("dashed", "loss-threshold"),
                               ("spaced", "loss_threshold "), ("eror", "hessian_eror"), ("plural", "hessian_errors")):
                h.create_dataset(name, data=np.eye(3)).attrs[attr] = 0.25
            # Names three letters or more away are a user's own.
            for name, attr in (("own1", "hessian_dtype"), ("own2", "loss"), ("own3", "threshold"),
                               ("own4", "loss_thresh"), ("own5", "hessian_eps")):
                h.create_dataset(name, data=np.eye(3)).attrs[attr] = 0.25
            g = h.create_group("part_misspelled")
            g.attrs["structure"] = "blocks"
            g["a"] = np.eye(2)
            g["a"].attrs["hessian-error"] = 0.1
            g = h.create_group("nested")
            g.attrs["structure"] = "blocks"
            g["a"] = np.eye(2)
            g["b"] = self.diag
            g["b"].attrs["Structure"] = "diagonal"
            # A user's own metadata of like names is read as before.
            g = h.create_group("runs")
            g.attrs["Structure"] = "ResNet-18"
            g.attrs["scaling_note"] = "none"
            d = g.create_dataset("step_1", data=np.eye(3))
            d.attrs["STRUCTURE"] = "dense"
            d.attrs["Scale"] = 2.0
            g = h.create_group("noted")
            g.attrs["structure"] = "factor"
            g.attrs["scaling_note"] = "1/N already applied"
            g.attrs["Structure"] = "factor"  # beside structure itself: changes nothing
            g["G"] = self.G
            # Text arrays named Structure are metadata too (read one value only).
            g = h.create_group("layers")
            g.attrs["Structure"] = ["conv%d" % i for i in range(4000)]
            g["step_1"] = np.eye(2)
            g = h.create_group("flagged")
            g.attrs["structure"] = "blocks"
            g["a"] = np.eye(2)
            g["a"].attrs["Structure"] = np.array([b"factor", b"kron", b"diagonal"])
            g["a"].attrs["scaled"] = True
            # netCDF's scale_factor is packing (refused as such); other spellings are a scale.
            g = h.create_group("diag_scale")
            g.attrs["structure"] = "blocks"
            g["a"] = np.eye(2)
            g["d"] = np.array([1.0, 2.0])
            g["d"].attrs["structure"] = "diagonal"
            g["d"].attrs["scale_Factor"] = 2.0
            # Scale written on G instead of its group, in any spelling.
            g = h.create_group("on_G")
            g.attrs["structure"] = "factor"
            g["G"] = self.G
            g["G"].attrs["Scale"] = 1e-3
        p = run("volume", f, "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = {r["dataset"]: r for r in rows_of(p)}
        sigma2 = np.linalg.svd(self.G, compute_uv=False) ** 2
        kept = 1e-3 * sigma2[sigma2 > 1e-8 * sigma2.max()]
        self.assertAlmostEqual(rows["/ok"]["log_volume"], log_volume_of(kept), delta=1e-11 * abs(log_volume_of(kept)))
        for name in ("Scale", "SCALE", "scaling"):
            self.assertIn("attribute %s is not read: a factor or kron part's scale is the attribute scale" % name,
                          rows["/" + name]["error"])
        self.assertIn("attribute Structure is not read: basinvol reads structure, in lower case", rows["/cap"]["error"])
        self.assertNotIn("/cap/G", rows, "the group is one row, not a walk of its members")
        self.assertIn("attribute Hessian_Error is not read: basinvol reads hessian_error", rows["/dense"]["error"])
        for name, attr, key in (("thresold", "loss_thresold", "loss_threshold"),
                                ("dashed", "loss-threshold", "loss_threshold"),
                                ("spaced", "loss_threshold ", "loss_threshold"),
                                ("eror", "hessian_eror", "hessian_error"), ("plural", "hessian_errors", "hessian_error")):
            self.assertIn("attribute '%s' is not read: basinvol reads %s (spelled so" % (attr, key),
                          rows["/" + name]["error"])
        for name in ("own1", "own2", "own3", "own4", "own5"):
            self.assertEqual(rows["/" + name]["status"], "ok", name)
        self.assertIn("/part_misspelled/a: attribute 'hessian-error' is not read", rows["/part_misspelled"]["error"])
        self.assertIn("/nested/b: attribute Structure is not read", rows["/nested"]["error"])
        self.assertIn("/diag_scale/d: attribute scale_Factor is not read: only a factor or kron part has a scale",
                      rows["/diag_scale"]["error"])
        self.assertEqual(rows["/runs/step_1"]["status"], "ok")
        self.assertEqual(rows["/runs/step_1"]["rank"], 3)
        self.assertEqual(rows["/noted"]["status"], "ok")
        self.assertEqual(rows["/layers/step_1"]["status"], "ok")
        self.assertEqual(rows["/flagged"]["status"], "ok")
        self.assertIn("attribute Scale on G is not read: it goes on the factor group", rows["/on_G"]["error"])
        # G named alone: the hint names the structure it belongs to.
        p = run("volume", f + ":/ok/G", f + ":/cap/G", "-f", "jsonl")
        errors = [r["error"] for r in rows_of(p)]
        self.assertIn("it is the Gauss-Newton factor of the structure /ok: name /ok to analyse its H", errors[0])
        self.assertIn("its group's attribute Structure is not read: basinvol reads structure", errors[1])
        # A square factor named alone is refused too: it is a matrix of its
        # Hessian, not the Hessian (it was once analysed as H = G, no note).
        sq = self.path("square_factors.h5")
        with h5py.File(sq, "w") as h:
            g = h.create_group("gn")
            g.attrs["structure"] = "factor"
            g["G"] = np.diag([3.0, 2.0, 1.0])
            k = h.create_group("kr")
            k.attrs["structure"] = "kron"
            k["A"] = np.eye(2)
            k["B"] = np.diag([1.0, 4.0])
            h["plain/G"] = np.eye(2)  # not in a structure: a Hessian named G
        p = run("volume", sq + ":/gn/G", sq + ":/kr/A", sq + ":/kr/B", sq + ":/plain/G", sq + ":/gn", "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = rows_of(p)
        self.assertEqual([r["status"] for r in rows], ["error", "error", "error", "ok", "ok"])
        self.assertIn("/gn/G: dataset is the Gauss-Newton factor of the structure /gn, not a Hessian: name /gn to "
                      "analyse its H = scale·GᵀG", rows[0]["error"])
        for r, name in zip(rows[1:3], "AB"):
            self.assertIn("/kr/%s: dataset is the Kronecker factor %s of the structure /kr, not a Hessian: name /kr "
                          "to analyse its H = scale·(A ⊗ B)" % (name, name), r["error"])
        self.assertEqual(rows[4]["rank"], 3)
        # Reached through soft links (absolute, relative, through a linked
        # group), a factor is recognized the same, named or walked; a soft
        # link to a plain Hessian stays a Hessian.
        with h5py.File(sq, "a") as h:
            h["other/X"] = h5py.SoftLink("/kr/A")
            h["other/rel"] = h5py.SoftLink("X")
            h["alias"] = h5py.SoftLink("/gn")
            h["other/P"] = h5py.SoftLink("/plain/G")
        names = ["/other/X", "/other/rel", "/alias/G", "/other/P"]
        p = run("volume", *[sq + ":" + n for n in names], "-f", "jsonl")
        rows = rows_of(p)
        self.assertEqual([r["status"] for r in rows], ["error", "error", "error", "ok"], p.stderr)
        for r in rows[:2]:
            self.assertIn("dataset is the Kronecker factor A of the structure /kr, not a Hessian", r["error"])
        self.assertIn("dataset is the Gauss-Newton factor of the structure /gn, not a Hessian", rows[2]["error"])
        walked = {r["dataset"]: r for r in rows_of(run("volume", sq + ":/other", "-f", "jsonl"))}
        self.assertEqual(walked["/other/X"]["status"], "error")
        self.assertEqual(walked["/other/P"]["status"], "ok")

    def test_per_block_rows_of_many_members_are_each_member_s_own(self):
        # All members are listed in one walk; each row is the member's answer alone.
        rng = np.random.default_rng(11)
        f = self.path("many.h5")
        members = {}
        with h5py.File(f, "w") as h:
            g = h.create_group("net")
            g.attrs["structure"] = "blocks"
            g.attrs["loss_threshold"] = 0.25
            for i in range(300):
                name = "%04d" % i
                if i % 3 == 0:
                    vals = rng.uniform(0.5, 2.0, size=1 + i % 5)
                    g[name] = vals
                    g[name].attrs["structure"] = "diagonal"
                else:
                    vals = rng.uniform(-1.0, 3.0, size=2 + i % 4) * (rng.random(2 + i % 4) > 0.3)
                    g[name] = rotated(vals, rng)
                if i == 7:
                    g[name].attrs["loss_threshold"] = 2.0
                members["/net/" + name] = vals
        p = run("volume", f, "--per-block", "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = rows_of(p)
        self.assertEqual([r["dataset"] for r in rows], ["/net"] + sorted(members))
        for r in rows[1:]:
            vals = np.abs(members[r["dataset"]])
            T = 2.0 if r["dataset"] == "/net/0007" else 0.25
            self.assertEqual(r["threshold"], T)
            kept = vals[vals > 1e-9]
            self.assertEqual(r["rank"], len(kept), r["dataset"])
            self.assertAlmostEqual(r["log_volume"], log_volume_of(kept, T), delta=1e-11 * (1 + abs(log_volume_of(kept, T))))

    def test_broken_layouts_are_one_error_row_each(self):
        f = self.path("broken.h5")
        with h5py.File(f, "w") as h5:
            g = h5.create_group("no_G")
            g.attrs["structure"] = "factor"
            g["F"] = np.eye(3)
            g["g"] = np.eye(3)
            g = h5.create_group("kron_not_square")
            g.attrs["structure"] = "kron"
            g["A"] = np.ones((2, 3))
            g["B"] = np.eye(2)
            g = h5.create_group("bogus")
            g.attrs["structure"] = "tensor-train"
            g = h5.create_group("numeric_structure")
            g.attrs["structure"] = 5
            g = h5.create_group("negative_error")
            g.attrs["structure"] = "kron"
            g.attrs["hessian_error"] = -2.0
            g["A"] = np.eye(2)
            g["B"] = np.eye(2)
            g = h5.create_group("bad_member")
            g.attrs["structure"] = "blocks"
            g["loss_curve"] = np.ones(5)
            for name, text in (("bad_scale", "large"), ("scale_overflows", "1e400"), ("scale_underflows", "1e-400"),
                               ("scale_inf_text", " -inf")):
                g = h5.create_group(name)
                g.attrs["structure"] = "factor"
                g.attrs["scale"] = text
                g["G"] = np.ones((2, 3))
            g = h5.create_group("scale_array")
            g.attrs["structure"] = "kron"
            g.attrs["scale"] = np.array([3.0, 5.0])
            g["A"] = np.eye(2)
            g["B"] = np.eye(1)
            g = h5.create_group("scale_bool")
            g.attrs["structure"] = "factor"
            g.attrs["scale"] = np.bool_(True)
            g["G"] = np.ones((2, 3))
            d = h5.create_dataset("diag_2d", data=np.eye(3))
            d.attrs["structure"] = "diagonal"
            d = h5.create_dataset("diag_nan", data=np.array([1.0, np.nan]))
            d.attrs["structure"] = "diagonal"
            d = h5.create_dataset("diag_int64", data=np.array([1, 2**53 + 1], dtype=np.int64))
            d.attrs["structure"] = "diagonal"
            g = h5.create_group("factor_int64")
            g.attrs["structure"] = "factor"
            g["G"] = np.array([[1, 2**60], [3, 4]], dtype=np.int64)
            d = h5.create_dataset("diag_scale", data=np.array([1.0, 2.0]))
            d.attrs["structure"] = "diagonal"
            d.attrs["scale"] = 0.5
            g = h5.create_group("blocks_scale")
            g.attrs["structure"] = "blocks"
            g.attrs["scale"] = "abc"
            g["a"] = np.eye(2)
            g = h5.create_group("kron_third_factor")
            g.attrs["structure"] = "kron"
            g["A"] = np.eye(2)
            g["B"] = np.eye(2)
            g["C"] = np.eye(2)
            # products past float64 in one part of several: the part is named
            g = h5.create_group("blocks_overflow")
            g.attrs["structure"] = "blocks"
            g.create_dataset("a", data=np.ones(3)).attrs["structure"] = "diagonal"
            k = g.create_group("k")
            k.attrs["structure"] = "kron"
            k.attrs["scale"] = 2.0
            k["A"] = np.diag([1e200, 1.0])
            k["B"] = np.diag([3e108, 1.0])
            # past 2^800 the factors are rescaled before the products: the
            # message still shows them as stated
            k = h5.create_group("kron_overflow")
            k.attrs["structure"] = "kron"
            k.attrs["scale"] = 3.0
            k["A"] = np.diag([1e250, 1.0])
            k["B"] = np.diag([1e100, 1.0])
            # a part of a type that is not a number, as a dense dataset of it is refused
            d = h5.create_dataset("diag_complex", data=np.ones(3, dtype=np.complex128))
            d.attrs["structure"] = "diagonal"
            g = h5.create_group("factor_complex")
            g.attrs["structure"] = "factor"
            g["G"] = np.ones((2, 2), dtype=np.complex64)
            g = h5.create_group("kron_compound")
            g.attrs["structure"] = "kron"
            g["A"] = np.zeros((2, 2), dtype=[("x", "<f8"), ("y", "<f8")])
            g["B"] = np.eye(2)
            g = h5.create_group("blocks_complex")
            g.attrs["structure"] = "blocks"
            g["a"] = np.eye(2, dtype=np.complex128)
            d = h5.create_dataset("empty_structure", data=np.eye(2))
            d.attrs["structure"] = ""
            g = h5.create_group("structure_list")
            g.attrs["structure"] = np.array([b"factor", b"kron"])
            g = h5.create_group("structure_bool")
            g.attrs["structure"] = True
            g = h5.create_group("structure_long")
            g.attrs["structure"] = "factor" * 100
            # a misspelt kind is told as such, whatever else the group holds
            g = h5.create_group("capital_with_scale")
            g.attrs["structure"] = "Factor"
            g.attrs["scale"] = 0.5
            g["G"] = np.eye(2)
            # attributes of H written on a member would be read by no one
            for kind, member, key, value in (("factor", "G", "scale", 4.0), ("kron", "A", "hessian_error", 1.0),
                                             ("kron", "B", "loss_threshold", 3.0), ("factor", "G", "step", 7)):
                g = h5.create_group(f"{key}_on_{member}")
                g.attrs["structure"] = kind
                for name in ("G",) if kind == "factor" else ("A", "B"):
                    g[name] = np.eye(2)
                g[member].attrs[key] = value
            h5["fine"] = np.diag([1.0, 2.0])
        p = run("volume", f, "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = {r["dataset"]: r for r in rows_of(p)}
        self.assertEqual(rows["/fine"]["status"], "ok")
        expect = {
            "/no_G": "has no dataset G (it holds F, g)",
            "/kron_not_square": "A must be a square 2-D dataset, got shape 2x3",
            "/bogus": "got 'tensor-train'",
            "/numeric_structure": "got (not a string: the number 5)",
            "/structure_list": "got (not a string: an array of 2 values of type string",
            "/structure_bool": "got (not a string: a value of type enum",
            "/structure_long": "got '" + "factor" * 12 + "facto...'",
            "/capital_with_scale": "attribute structure must be blocks, factor, kron or diagonal, got 'Factor'",
            "/negative_error": "attribute hessian_error must be a finite number >= 0, got -2",
            "/bad_member": "loss_curve: a dense part must be a square 2-D dataset, got shape 5 (if it is a diagonal part, give it the attribute structure = \"diagonal\"",
            "/bad_scale": "attribute scale must be one number, got the string 'large'",
            "/scale_overflows": "attribute scale must be one number, got the string '1e400' (beyond the range of a double)",
            "/scale_underflows": "attribute scale must be one number, got the string '1e-400' (under the range of a double)",
            "/scale_inf_text": "attribute scale must be one number, got the string ' -inf' (not a finite number)",
            "/scale_array": "attribute scale must be one number, got an array of 2 values",
            "/scale_bool": "attribute scale must be one number, got a value of type enum",
            "/diag_2d": "non-empty 1-D dataset, got shape 3x3",
            "/diag_nan": "non-finite value nan at [1]",
            "/diag_int64": "int64 value of about 9007199254740992 at [1] is at or beyond 2^53",
            "/factor_int64": "int64 value of about 1152921504606846976 at [0, 1] is at or beyond 2^53",
            "/diag_scale": "attribute scale applies to factor and kron parts only; a diagonal part",
            "/blocks_scale": "attribute scale applies to factor and kron parts only; a blocks part",
            "/kron_third_factor": "holds C; a kron group holds A and B only",
            "/blocks_overflow": "part /blocks_overflow/k: an eigenvalue overflowed float64 "
                                "(|scale|·max|λ(A)|·max|λ(B)| = 2 · 1e+200 · 3e+108); rescale the Hessian",
            "/kron_overflow": "part /kron_overflow: an eigenvalue overflowed float64 "
                              "(|scale|·max|λ(A)|·max|λ(B)| = 3 · 1e+250 · 1e+100); rescale the Hessian",
            "/diag_complex": "diag_complex: dataset type is compound, not a number (a structure's arrays hold floats or "
                            "integers)",
            "/factor_complex": "/G: dataset type is compound, not a number",
            "/kron_compound": "/A: dataset type is compound, not a number",
            "/blocks_complex": "/a: dataset type is compound, not a number",
            "/empty_structure": "attribute structure must be blocks, factor, kron or diagonal, got (empty)",
            "/scale_on_G": "/G: attribute scale on G is not read: it goes on the factor group",
            "/hessian_error_on_A": "/A: attribute hessian_error on A is not read: it goes on the kron group",
            "/loss_threshold_on_B": "/B: attribute loss_threshold on B is not read: it goes on the kron group",
            "/step_on_G": "/G: attribute step on G is not read",
        }
        for name, words in expect.items():
            with self.subTest(name):
                row = rows[name]
                self.assertEqual(row["status"], "error")
                self.assertIn("broken.h5:" + name, row["error"])
                self.assertIn(words, row["error"])
                # The field names a structure's kind or none, never the message's text.
                self.assertIn(row["structure"], (None, "blocks", "factor", "kron", "diagonal"))
        self.assertEqual(len([l for l in p.stderr.splitlines() if l.startswith("basinvol: error")]), len(expect), p.stderr)

    def test_a_member_linked_to_a_factor_and_skew_kronecker_factors_are_refused(self):
        # A blocks member soft-linked to another structure's G (or A, B) is a
        # matrix of that Hessian, refused as the same link is elsewhere; it was
        # taken for a dense block. Two skew factors make a symmetric A ⊗ B
        # whose values the kron form (A_s ⊗ B_s) does not hold: refused, where
        # the row was all flat under a raised floor.
        f = self.path("linked.h5")
        rng = np.random.default_rng(5)
        A, B = rng.standard_normal((5, 5)), rng.standard_normal((4, 4))
        A, B = A + A.T + 1e-4 * np.triu(A, 1), B + B.T + 1e-4 * np.triu(B, 1)  # within max_asymmetry
        with h5py.File(f, "w") as h5:
            g = h5.create_group("F")
            g.attrs["structure"] = "factor"
            g["G"] = np.array([[2.0, 1.0, 0.0], [1.0, 3.0, 0.0], [0.0, 0.0, 1.0]])
            g = h5.create_group("K")
            g.attrs["structure"] = "kron"
            g["A"], g["B"] = np.eye(2), np.diag([1.0, 2.0])
            for name, target in (("S_G", "/F/G"), ("S_B", "/K/B"), ("S_plain", "/plain")):
                g = h5.create_group(name)
                g.attrs["structure"] = "blocks"
                g["a"] = h5py.SoftLink(target)
                g["b"] = np.eye(2)
            h5["plain"] = np.diag([1.0, 2.0, 3.0])
            h5["plain_twin"] = np.diag([1.0, 2.0, 3.0, 1.0, 1.0])
            g = h5.create_group("skew")
            g.attrs["structure"] = "kron"
            g["A"], g["B"] = np.array([[0.0, 1.0], [-1.0, 0.0]]), np.array([[0.0, 2.0], [-2.0, 0.0]])
            g = h5.create_group("nearly")
            g.attrs["structure"] = "kron"
            g["A"], g["B"] = A, B
            h5["nearly_twin"] = np.kron(A, B)
        p = run("volume", f, "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = {r["dataset"]: r for r in rows_of(p)}
        for name, words in (("/S_G", "/S_G/a: dataset is the Gauss-Newton factor of the structure /F, not a Hessian"),
                            ("/S_B", "/S_B/a: dataset is the Kronecker factor B of the structure /K, not a Hessian"),
                            ("/skew", "linked.h5:/skew: the Kronecker factors A and B are both far from symmetric")):
            with self.subTest(name):
                self.assertEqual(rows[name]["status"], "error")
                self.assertIn(words, rows[name]["error"])
        for name, twin in (("/S_plain", "/plain_twin"), ("/nearly", "/nearly_twin")):
            with self.subTest(name):
                a, b = rows[name], rows[twin]
                self.assertEqual(a["status"], "ok", a["error"])
                for key in ("n", "rank", "dim", "negative"):
                    self.assertEqual(a[key], b[key], key)
                self.assertAlmostEqual(a["log_volume"], b["log_volume"], delta=1e-11 * abs(b["log_volume"]))
        self.assertEqual(len([l for l in p.stderr.splitlines() if l.startswith("basinvol: error")]), 3, p.stderr)
        # The same blocks reached through an external link from another file.
        outer = self.path("outer.h5")
        with h5py.File(outer, "w") as h5:
            h5["E"] = h5py.ExternalLink(f, "/S_G")
        (row,) = rows_of(run("volume", outer + ":/E", "-f", "jsonl"))
        self.assertIn("/E/a: dataset is the Gauss-Newton factor of the structure /F", row["error"] or "")
        # Not an asymmetry (A ⊗ B is symmetric): refused however far --max-asymmetry is raised.
        for limit in ("1", "inf"):
            (row,) = rows_of(run("volume", f + ":/skew", "-f", "jsonl", "--max-asymmetry", limit))
            self.assertIn("both far from symmetric", row["error"] or "", limit)

    def test_a_block_with_no_curved_direction_or_unit_values_has_a_part_of_zero_not_minus_zero(self):
        f = self.path("zero_part.h5")
        with h5py.File(f, "w") as h5:
            g = h5.create_group("S")
            g.attrs["structure"] = "blocks"
            g["a"] = np.eye(2)  # Σ log λ = 0
            g.create_dataset("z", data=np.zeros(3)).attrs["structure"] = "diagonal"  # nothing curved
            g["c"] = np.diag([2.0, 3.0])
        text = run("volume", f, "-f", "json").stdout
        parts = [b["log_volume_part"] for b in json.loads(text)["rows"][0]["blocks"]]
        self.assertEqual([parts[0], parts[2]], [0.0, 0.0])  # a and z (members in name order)
        self.assertNotIn("-0.0", text)
        self.assertAlmostEqual(parts[1], -0.5 * np.log(6.0), delta=1e-15)

    def test_a_factor_read_through_a_virtual_dataset_carries_its_sources_type(self):
        # G stored as float32 and mapped by a float64 virtual dataset holds
        # float32 values: the row is the float32 twin's, cut at float32's floor.
        rng = np.random.default_rng(9)
        U, _ = np.linalg.qr(rng.standard_normal((20, 20)))
        V, _ = np.linalg.qr(rng.standard_normal((40, 20)))
        G = ((U * np.geomspace(1, 1e-4, 20)) @ V.T).astype(np.float32)
        source, virtual, twin = self.path("g32.h5"), self.path("g_vds.h5"), self.path("g_twin.h5")
        with h5py.File(source, "w") as h5:
            h5["G"] = G
        layout = h5py.VirtualLayout(shape=G.shape, dtype="f8")
        layout[:, :] = h5py.VirtualSource(source, "G", shape=G.shape)
        for name, build in ((virtual, lambda g: g.create_virtual_dataset("G", layout, fillvalue=0)),
                            (twin, lambda g: g.create_dataset("G", data=G))):
            with h5py.File(name, "w") as h5:
                g = h5.create_group("S")
                g.attrs["structure"] = "factor"
                build(g)
        a, b = rows_of(run("volume", virtual, twin, "-f", "jsonl"))
        self.assertEqual(a["stored_type"], "float32")
        for key in ("rank", "dim", "dim_low", "dim_high", "negative", "tol", "noise_floor", "log_volume"):
            self.assertEqual(a[key], b[key], key)

    def test_a_part_linked_twice_is_two_parts_not_a_cycle(self):
        f = self.path("shared.h5")
        p2 = np.diag([2.0, 3.0])
        g1 = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]])
        with h5py.File(f, "w") as h5:
            g = h5.create_group("cousins")
            g.attrs["structure"] = "blocks"
            s1 = g.create_group("s1")
            s1.attrs["structure"] = "blocks"
            k = s1.create_group("k")
            k.attrs["structure"] = "kron"
            k["A"] = p2
            k["B"] = p2
            s2 = g.create_group("s2")
            s2.attrs["structure"] = "blocks"
            s2["k"] = k  # the same group, hard-linked under a sibling
            g = h5.create_group("siblings")
            g.attrs["structure"] = "blocks"
            x = g.create_group("a")
            x.attrs["structure"] = "factor"
            x["G"] = g1
            g["b"] = x
            h5["cousins_twin"] = block_diag(np.kron(p2, p2), np.kron(p2, p2))
            h5["siblings_twin"] = block_diag(g1.T @ g1, g1.T @ g1)
            loop = h5.create_group("loop")
            loop.attrs["structure"] = "blocks"
            inner = loop.create_group("inner")
            inner.attrs["structure"] = "blocks"
            inner["a"] = np.eye(2)
            inner["up"] = loop
        p = run("volume", f, "-f", "jsonl")
        rows = {r["dataset"]: r for r in rows_of(p)}
        for name in ("cousins", "siblings"):
            with self.subTest(name):
                row, twin = rows["/" + name], rows["/" + name + "_twin"]
                self.assertEqual(row["status"], "ok", row["error"])
                for key in ("n", "rank", "dim", "negative"):
                    self.assertEqual(row[key], twin[key], key)
                self.assertAlmostEqual(row["log_volume"], twin["log_volume"], delta=1e-11 * (1 + abs(twin["log_volume"])))
        self.assertIn("links back to a group above it (a cycle)", rows["/loop"]["error"])
        # Levels of groups, each linking the next in four times: 4^4 parts
        # are fine; 4^9 are refused before they are all walked.
        f = self.path("fanout.h5")
        with h5py.File(f, "w") as h5:
            for name, levels in (("fanout_4", 4), ("fanout_9", 9)):
                below = None
                for level in range(levels):
                    g = h5.create_group("levels/%s_%d" % (name, level))
                    g.attrs["structure"] = "blocks"
                    for member in "wxyz":
                        g[member] = np.eye(1) if below is None else below
                    below = g
                h5[name] = below
        p = run("volume", f + ":/fanout_4", f + ":/fanout_9", "-f", "jsonl")
        rows = {r["dataset"]: r for r in rows_of(p)}
        self.assertEqual((rows["/fanout_4"]["status"], rows["/fanout_4"]["n"]), ("ok", 4**4))
        self.assertIn("the structure has more than 100000 parts", rows["/fanout_9"]["error"])
        self.assertEqual(p.returncode, 1, p.stderr)

    def test_a_part_s_asymmetry_counts_against_the_whole_like_its_dense_twin(self):
        # The bias block's asymmetry is 1% of its own norm but 4e-12 of the
        # whole's: the twin is symmetrized and measured, so is the structure.
        # A whole that is asymmetric beyond the limit is refused by name.
        f = self.path("asymmetric_part.h5")
        big = np.diag([1e3, 2e3, 3e3])
        bias = np.array([[1e-6, 1e-8], [0.0, 1e-6]])
        with h5py.File(f, "w") as h5:
            for name, second in (("small_part", bias), ("whole_asymmetric", np.array([[1.0, 1e3], [0.0, 1.0]]))):
                g = h5.create_group(name)
                g.attrs["structure"] = "blocks"
                g["a"] = big
                g["b"] = second
                h5[name + "_twin"] = block_diag(big, second)
        p = run("volume", f, "-f", "jsonl")
        rows = {r["dataset"]: r for r in rows_of(p)}
        row, twin = rows["/small_part"], rows["/small_part_twin"]
        self.assertEqual(row["status"], "ok", row["error"])
        for key in ("n", "rank", "dim", "negative"):
            self.assertEqual(row[key], twin[key], key)
        self.assertAlmostEqual(row["asymmetry"], twin["asymmetry"], delta=1e-3 * twin["asymmetry"])
        self.assertAlmostEqual(row["log_volume"], twin["log_volume"], delta=1e-11 * abs(twin["log_volume"]))
        for name in ("/whole_asymmetric", "/whole_asymmetric_twin"):
            self.assertIn("asymmetric_part.h5:%s: matrix is not symmetric" % name, rows[name]["error"])
        # the structure's message names the part that makes it so
        self.assertTrue(rows["/whole_asymmetric"]["error"].endswith("; the most of it from /whole_asymmetric/b"))
        f = self.path("asymmetric_factor.h5")
        with h5py.File(f, "w") as h5:
            g = h5.create_group("k")
            g.attrs["structure"] = "kron"
            g["A"] = np.eye(3)
            g["B"] = np.array([[1.0, 1.0], [0.0, 1.0]])
        row = rows_of(run("volume", f, "-f", "jsonl"))[0]
        self.assertIn("asymmetric_factor.h5:/k: matrix is not symmetric", row["error"])
        self.assertTrue(row["error"].endswith("; the most of it from /k/B"), row["error"])

    def test_scales_whose_partial_products_leave_double_s_range_keep_the_twin_s_answer(self):
        # s·GᵀG and s·(A ⊗ B) are ordinary matrices here, but GᵀG, or s·α,
        # is subnormal or past DBL_MAX: each must still equal its dense twin
        # and the closed form (squared singular values, products).
        f = self.path("extreme_scales.h5")
        rng = np.random.default_rng(7)
        G0 = rng.standard_normal((3, 5))
        cases = {}
        with h5py.File(f, "w") as h5:
            for name, g_scale, s in (("gram_subnormal", 1e-162, 1e308), ("gram_underflows", 1e-170, 1e308),
                                     ("gram_overflows", 1e160, 1e-300)):
                g = h5.create_group(name)
                g.attrs["structure"] = "factor"
                g.attrs["scale"] = s
                g["G"] = G0 * g_scale
                lam = s * g_scale * (g_scale * np.linalg.svd(G0, compute_uv=False) ** 2)
                h5[name + "_twin"] = (G0.T @ G0) * (s * g_scale * g_scale)
                cases[name] = lam
            for name, A, B, s in (("s_alpha_subnormal", np.diag([1.2345e-20, 3e-28]), np.diag([1e300, 3e299]), 1e-300),
                                  ("s_alpha_overflows", np.diag([1e10, 3e10]), np.diag([1e-300, 2e-300, 5e-301]), 1e300)):
                g = h5.create_group(name)
                g.attrs["structure"] = "kron"
                g.attrs["scale"] = s
                g["A"] = A
                g["B"] = B
                lam = np.outer(np.diag(A), np.diag(B)).ravel() * s  # α·β in range, then s
                h5[name + "_twin"] = np.diag(lam)
                cases[name] = lam
        p = run("volume", f, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = {r["dataset"]: r for r in rows_of(p)}
        for name, lam in cases.items():
            with self.subTest(name):
                row, twin = rows["/" + name], rows["/" + name + "_twin"]
                self.assertEqual(row["status"], "ok", row["error"])
                self.assert_same_answer(row, twin)
                kept = np.abs(lam) > row["tol"]
                self.assertEqual(row["rank"], int(kept.sum()))
                self.assertEqual(row["rank"], min(3, len(lam)) if name.startswith("gram") else len(lam))
                # within the row's error bar, which is the twin's size (the
                # kept values span up to eight decades above the floor)
                closed = log_volume_of(np.abs(lam[kept]))
                self.assertLessEqual(abs(row["log_volume"] - closed), row["log_volume_error"] + 1e-12 * abs(closed))
                self.assertLess(row["log_volume_error"], 4 * twin["log_volume_error"] + 1e-12)

    def test_float32_parts_saved_as_float64_are_measured_as_float32_parts(self):
        # Each kind of part, and a blocks model of all four, written once in
        # float32 and once widened to float64: the widened structure's row is
        # the float32 one's (float32's ε), with the warning float32_values.
        # Under float64's ε the dense block's and the Kronecker factors'
        # rounding is curvature (false ranks and negatives).
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
        import basinvol.export as bx
        rng = np.random.default_rng(23)
        f32 = lambda a: np.asarray(a, dtype=np.float32)
        G = f32(rng.standard_normal((40, 120)))
        x = f32(rng.standard_normal((60, 30)))
        D = x @ x.T
        D = (D + D.T) / 2
        A = f32(rng.standard_normal((20, 15)))
        A = (A @ A.T + (A @ A.T).T) / 2
        B = f32(rng.standard_normal((12, 8)))
        B = (B @ B.T + (B @ B.T).T) / 2
        d = f32(np.r_[rng.random(80), np.zeros(10)])  # 80 rounded values: about 40 of 24 bits
        kinds = {"blocks": lambda c: {"a": c(D), "b": bx.Diagonal(c(d)), "c": bx.Factor(c(G)), "d": bx.Kron(c(A), c(B))},
                 "dense_block": lambda c: {"a": c(D)}, "diagonal": lambda c: bx.Diagonal(c(d)),
                 "factor": lambda c: bx.Factor(c(G)), "kron": lambda c: bx.Kron(c(A), c(B))}
        f = self.path("widened_parts.h5")
        for name, make in kinds.items():
            bx.write_structure(f, name + "_32", make(lambda a: a))
            bx.write_structure(f, name + "_64", make(lambda a: a.astype(np.float64)))
        p = run("volume", f, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = {r["dataset"][1:]: r for r in rows_of(p)}
        for name in kinds:
            narrow, wide = rows[name + "_32"], rows[name + "_64"]
            self.assertEqual(narrow["stored_type"], "float32", name)
            self.assertEqual(wide["stored_type"], "float64", name)
            self.assertNotIn("float32_values", narrow["warnings"], name)
            self.assertIn("float32_values", wide["warnings"], name)
            for k in ("rank", "dim", "negative", "dim_low", "dim_high", "noise_floor", "tol", "log_volume"):
                self.assertEqual(wide[k], narrow[k], (name, k))
        self.assertEqual(rows["kron_32"]["rank"], 120)
        # What float64's ε would count: the Kronecker factors' rounding.
        la, lb = np.linalg.eigvalsh(A.astype(np.float64)), np.linalg.eigvalsh(B.astype(np.float64))
        prod = np.abs(np.outer(la, lb)).ravel()
        self.assertGreater(int((prod > 8 * math.sqrt(prod.size) * 2.0 ** -52 * np.linalg.norm(prod)).sum()), 120)

    def test_a_part_stored_finer_than_the_whole_counts_what_its_own_floor_resolves(self):
        # A float32 layer beside a float64 part: the whole is measured as its
        # dense twin in float32 (one floor and cut), which counts flat the
        # float64 part's values between its own floor and the whole's tol.
        # Each block counts those (resolved_flat, from the part's own values
        # here) and the row warns finer_part_flat; the all-float32 model,
        # widened float32 data and an explicit cut do not warn.
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
        import basinvol.export as bx
        rng = np.random.default_rng(31)
        x = rng.standard_normal((20, 60)).astype(np.float32)
        layer = x.T @ x * np.float32(50)  # rank 20, ‖·‖_F ~ 1e4: a float32 floor ~ 1e-3
        small = [2.0, 1.0, 1e-5, 1e-9, 1e-12, 1e-17, 0.0]
        q = np.linalg.qr(rng.standard_normal((12, 12)))[0]
        G = np.sqrt(np.array(small[:5]))[:, None] * q[:5]  # GᵀG: σ² = the first five
        A, B = rotated([2.0, 1e-5], rng), rotated([1.0, 1e-2, 1e-13], rng)
        fine = {"diagonal": (bx.Diagonal(np.array(small)), np.array(small)),
                "dense": (rotated(small, rng), np.array(small)),
                "factor": (bx.Factor(G), np.linalg.eigvalsh(G.T @ G)),
                "kron": (bx.Kron(A, B), np.outer(np.linalg.eigvalsh(A), np.linalg.eigvalsh(B)).ravel())}
        f = self.path("finer_parts.h5")
        for name, (part, _) in fine.items():
            bx.write_structure(f, name, {"0_layer": layer, "1_part": part}, dtype=None)
            bx.write_structure(f, name + "_32", {"0_layer": layer, "1_part": part}, dtype="float32")
        widened = np.float32(np.r_[rng.random(40), small]).astype(float)  # 40 rounded values: float32 data
        bx.write_structure(f, "widened", {"0_layer": layer, "1_part": bx.Diagonal(widened)}, dtype=None)
        # The part's own floor is its own: a skew layer beside it (the whole's
        # floor its asymmetry) does not hide its values, and a part nested in
        # a block of the coarse type is counted in that block.
        skew = np.float32(1e-4) * rng.standard_normal(layer.shape).astype(np.float32)
        bx.write_structure(f, "skew", {"0_layer": layer + skew, "1_part": bx.Diagonal(np.array(small))}, dtype=None)
        bx.write_structure(f, "nested", {"0": {"0_layer": layer, "1_part": bx.Diagonal(np.array(small))}}, dtype=None)
        rows = {r["dataset"][1:]: r for r in rows_of(run("volume", f, "-f", "jsonl"))}
        self.assertGreater(rows["skew"]["noise_floor"], 2 * rows["diagonal"]["noise_floor"])  # the skew sets it
        for name in ("skew", "nested"):
            self.assertEqual(rows[name]["blocks"][-1]["resolved_flat"], 3, name)  # 1e-5, 1e-9, 1e-12
            self.assertIn("finer_part_flat", rows[name]["warnings"], name)
        for name, (_, values) in fine.items():
            row, part = rows[name], rows[name]["blocks"][1]
            own = 8 * math.sqrt(len(values)) * 2.0 ** -52 * float(np.linalg.norm(values))
            big = np.abs(values)[np.abs(values) > 10 * own]
            # The values lie far from both edges, so the count is not decided by rounding.
            floor = row["noise_floor"]
            self.assertTrue(np.all((big < floor / 10) | (big > floor * 10)), (name, values, floor))
            self.assertTrue(np.all((np.abs(values) < own / 10) | (np.abs(values) > own * 10)), (name, own))
            expected = int(np.sum((np.abs(values) > own) & (np.abs(values) <= floor)))
            self.assertGreater(expected, 0, name)
            self.assertEqual(part["resolved_flat"], expected, name)
            self.assertEqual(row["blocks"][0]["resolved_flat"], 0, name)
            self.assertIn("finer_part_flat", row["warnings"], name)
            self.assertEqual(row["stored_type"], "float32", name)
            narrow = rows[name + "_32"]
            self.assertNotIn("finer_part_flat", narrow["warnings"], name)
            self.assertEqual([b["resolved_flat"] for b in narrow["blocks"]], [0, 0], name)
        widened = rows["widened"]
        self.assertIn("float32_values", widened["warnings"])
        self.assertNotIn("finer_part_flat", widened["warnings"])
        # The part measured alone (--per-block) keeps what the whole counted flat.
        p = run("volume", f + ":/diagonal", "--per-block", "-f", "jsonl")
        got = {r["dataset"]: r for r in rows_of(p)}
        whole_part = got["/diagonal"]["blocks"][1]
        self.assertEqual(got["/diagonal/1_part"]["rank"], whole_part["rank"] + whole_part["resolved_flat"])
        # A value over the whole's floor that a gap cut drops is the rule's
        # choice, as it would be for a float32 part: not counted.
        wide = np.float32(rotated([1e3] * 10 + [1e-2] * 10 + [0] * 10, rng))
        bx.write_structure(f, "gap", {"0_layer": wide, "1_part": bx.Diagonal(np.array([500.0, 0.05]))}, dtype=None)
        row = rows_of(run("volume", f + ":/gap", "--cut", "gap", "-f", "jsonl"))[0]
        self.assertLess(row["noise_floor"], 0.05 / 10)
        self.assertLess(row["tol"], 500)
        self.assertGreater(row["tol"], 0.05)  # the diagonal's 0.05 is flat, by the gap
        self.assertNotIn("finer_part_flat", row["warnings"])
        # The part's own noise joins its floor: a stated error (here 1e-10),
        # or the part's own asymmetry, leaves 1e-12 uncounted and 1e-9 counted.
        row = rows_of(run("volume", f + ":/diagonal", "--hessian-error", "1e-10", "-f", "jsonl"))[0]
        self.assertEqual(row["blocks"][1]["resolved_flat"], 2)  # 1e-5, 1e-9
        r = rng.standard_normal((7, 7))
        skewed = rotated(small, rng) + 5e-12 * (r - r.T)
        asym = float(np.linalg.norm(skewed - skewed.T))
        self.assertTrue(1e-11 < asym < 1e-10, asym)
        bx.write_structure(f, "skewed_part", {"0_layer": layer, "1_part": skewed}, dtype=None)
        row = rows_of(run("volume", f + ":/skewed_part", "-f", "jsonl"))[0]
        self.assertEqual(row["blocks"][1]["resolved_flat"], 2)  # 1e-5, 1e-9; 1e-12 is under the part's asymmetry
        # An explicit cut is the user's own: no warning, nothing counted.
        p = run("volume", f + ":/diagonal", "--atol", "1e-3", "-f", "jsonl")
        row = rows_of(p)[0]
        self.assertNotIn("finer_part_flat", row["warnings"])
        self.assertEqual(row["blocks"][1]["resolved_flat"], 0)

    def test_a_small_scale_on_float32_or_float16_parts_keeps_their_answer(self):
        # s·GᵀG and s·(A ⊗ B) are formed in double from the stored parts, so
        # what storage rounded is G's (A's, B's) values, not H's: s = 1e-50
        # on float32 or float16 parts must give the answer of s = 1 (numpy's
        # rank from the stored values), log-volumes shifted by −(r/2)·log s.
        # The floor was float32's subnormal step in H's units, n·2⁻¹⁴⁹/2:
        # over every value of 1e-50·GᵀG, which read entirely flat.
        f = self.path("small_scales.h5")
        rng = np.random.default_rng(17)
        G = rng.standard_normal((5, 20))
        A = rng.standard_normal((4, 4))
        B = rng.standard_normal((3, 3))
        A, B = A @ A.T + 0.1 * np.eye(4), B @ B.T + 0.1 * np.eye(3)
        scales = (1.0, 1e-50, 1e-300, 1e200)
        with h5py.File(f, "w") as h5:
            for dt in ("f2", "f4"):
                for s in scales:
                    g = h5.create_group("factor_%s_%g" % (dt, s))
                    g.attrs["structure"] = "factor"
                    g.attrs["scale"] = s
                    g["G"] = G.astype(dt)
                    g = h5.create_group("kron_%s_%g" % (dt, s))
                    g.attrs["structure"] = "kron"
                    g.attrs["scale"] = s
                    g["A"] = A.astype(dt)
                    g["B"] = B.astype(dt)
        p = run("volume", f, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = {r["dataset"]: r for r in rows_of(p)}
        for dt in ("f2", "f4"):
            for kind in ("factor", "kron"):
                base = rows["/%s_%s_1" % (kind, dt)]
                if kind == "factor":
                    lam = np.linalg.svd(G.astype(dt).astype(float), compute_uv=False) ** 2
                else:
                    lam = np.outer(np.linalg.eigvalsh(A.astype(dt).astype(float)),
                                   np.linalg.eigvalsh(B.astype(dt).astype(float))).ravel()
                self.assertEqual(base["rank"], int((np.abs(lam) > base["tol"]).sum()))
                if dt == "f4":
                    self.assertEqual(base["rank"], len(lam), base)
                for s in scales[1:]:
                    with self.subTest(kind=kind, dtype=dt, scale=s):
                        row = rows["/%s_%s_%g" % (kind, dt, s)]
                        self.assertEqual(row["status"], "ok", row["error"])
                        for key in ("rank", "dim", "dim_low", "dim_high", "negative", "warnings"):
                            self.assertEqual(row[key], base[key], (key, row, base))
                        shift = -(base["rank"] / 2) * math.log(s)
                        self.assertLessEqual(abs(row["log_volume"] - base["log_volume"] - shift),
                                             row["log_volume_error"] + base["log_volume_error"] + 1e-12 * abs(shift))
        # Mixed types: each part's rounding is its own type's. A float32 or
        # float16 A beside a float64 B of 1e-50 under s = 1e50 is the same
        # Hessian as B of 1 under s = 1 (the whole structure's coarsest step
        # read it flat); so is a float16 diagonal beside a float64 factor.
        f = self.path("mixed_types.h5")
        with h5py.File(f, "w") as h5:
            for a_type in ("f4", "f2"):
                for s, b in ((1.0, 1.0), (1e50, 1e-50)):
                    g = h5.create_group("kron_%s_%g" % (a_type, s))
                    g.attrs["structure"] = "kron"
                    g.attrs["scale"] = s
                    g["A"] = np.diag([1.0, 2.0]).astype(a_type)
                    g["B"] = np.diag([1.0, 3.0]) * b
            for s, scale_g in ((1.0, 1.0), (1e16, 1e-8)):
                g = h5.create_group("blocks_%g" % s)
                g.attrs["structure"] = "blocks"
                g["d"] = np.array([0.5, 0.25], dtype="f2")
                g["d"].attrs["structure"] = "diagonal"
                fac = g.create_group("f")
                fac.attrs["structure"] = "factor"
                fac.attrs["scale"] = s
                fac["G"] = G[:4, :6] * scale_g
        p = run("volume", f, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = {r["dataset"]: r for r in rows_of(p)}
        for one, other in (("/kron_f4_1", "/kron_f4_1e+50"), ("/kron_f2_1", "/kron_f2_1e+50"), ("/blocks_1", "/blocks_1e+16")):
            with self.subTest(one):
                a, b = rows[one], rows[other]
                self.assertEqual(a["rank"], 4 if one.startswith("/kron") else 6, a)
                for key in ("rank", "dim", "dim_low", "dim_high", "negative", "warnings"):
                    self.assertEqual(a[key], b[key], (key, a, b))
                self.assertLessEqual(abs(a["log_volume"] - b["log_volume"]), a["log_volume_error"] + b["log_volume_error"])

    def test_a_structure_at_the_file_s_root_names_its_parts_from_the_root(self):
        # The root group itself a structure: its parts are /A, /B and /G
        # (messages said //B), and its one block is named "/" (was "").
        kron, factor, bad_g = self.path("root_kron.h5"), self.path("root_factor.h5"), self.path("root_bad_g.h5")
        with h5py.File(kron, "w") as h5:
            h5.attrs["structure"] = "kron"
            h5["A"], h5["B"] = np.eye(2), np.array([[1.0, 2.0], [3.0, 1.0]])
        with h5py.File(factor, "w") as h5:
            h5.attrs["structure"] = "factor"
            h5["G"] = np.eye(2)
        with h5py.File(bad_g, "w") as h5:
            h5.attrs["structure"] = "factor"
            h5["G"] = np.ones(3)
        p = run("volume", kron, factor, bad_g, "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = rows_of(p)
        self.assertTrue(rows[0]["error"].endswith("; the most of it from /B"), rows[0]["error"])
        self.assertEqual([b["name"] for b in rows[1]["blocks"]], ["/"])
        self.assertIn(bad_g + ":/: structure: /G: G must be a non-empty 2-D dataset", rows[2]["error"])
        self.assertNotIn("//", p.stderr.replace("://", ""))

    def test_regularized_noisy_is_the_dense_twin_s_flag(self):
        # s·(A ⊗ B) of exact diagonals, and its dense twin: for λ swept over
        # the rounding of the flat values (a zero of A), the regularized
        # volume and its flag must be the twin's (docs/method.md: the flag is
        # every solver's alike). The structure added its own Kronecker bound
        # to dense's and flagged over a range of λ three times the twin's.
        f = self.path("regularized_twin.h5")
        A, B = np.diag([3.0, 2.0, 0.0]), np.diag([1.0, 1.0, 0.5])
        with h5py.File(f, "w") as h5:
            g = h5.create_group("s")
            g.attrs["structure"] = "kron"
            g.attrs["scale"] = 5.0
            g["A"], g["B"] = A, B
            h5["d"] = 5.0 * np.kron(A, B)
        flagged = 0
        for lam in np.logspace(-16, -8, 33):
            with self.subTest(lam=lam):
                p = run("volume", f + ":/s", f + ":/d", "--regularized", repr(float(lam)), "-f", "jsonl")
                self.assertEqual(p.returncode, 0, p.stderr)
                s, d = rows_of(p)
                self.assertEqual("regularized_noisy" in s["warnings"], "regularized_noisy" in d["warnings"])
                self.assertAlmostEqual(s["log_volume_regularized"], d["log_volume_regularized"], delta=1e-9)
                flagged += "regularized_noisy" in d["warnings"]
        self.assertTrue(0 < flagged < 33, flagged)  # the sweep crosses the flag's edge

    def test_products_that_underflow_float64_whole_are_an_error_row_not_a_zero_hessian(self):
        # Factors of 1e-200 (A, B; or 1e-160 scaled by 1e-10) or 1e-163 (G):
        # every product is under 4.9e-324, so the values read 0 though
        # rank(A ⊗ B) = 12 and rank(GᵀG) = 3. Not the zero matrix (dim n,
        # clean, no flag): an error row, as an overflow is. At 1e-150 the
        # products are normal.
        f = self.path("underflow.h5")
        rng = np.random.default_rng(2)
        A, B, G = rotated([3.0, 1, 0.2], rng), rotated([5.0, 2, 1, 0.5], rng), rng.standard_normal((3, 5))
        with h5py.File(f, "w") as h5:
            for name, a, b in (("kron_tiny", A * 1e-200, B * 1e-200), ("kron_scaled", A * 1e-160, B * 1e-160)):
                g = h5.create_group(name)
                g.attrs["structure"] = "kron"
                g["A"], g["B"] = a, b
            h5["kron_scaled"].attrs["scale"] = 1e-10
            for name, s in (("factor_tiny", 1e-163), ("factor_small", 1e-150)):
                g = h5.create_group(name)
                g.attrs["structure"] = "factor"
                g["G"] = G * s
        p = run("volume", f, "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = {r["dataset"]: r for r in rows_of(p)}
        for name in ("/kron_tiny", "/kron_scaled", "/factor_tiny"):
            self.assertEqual(rows[name]["status"], "error", name)
            self.assertIn("every eigenvalue underflowed float64", rows[name]["error"])
        self.assertEqual(rows["/factor_small"]["status"], "ok")
        self.assertEqual(rows["/factor_small"]["rank"], np.linalg.matrix_rank(G))

    def test_an_asymmetric_kronecker_pair_measures_the_twin_s_asymmetry(self):
        # ‖A⊗B − (A⊗B)ᵀ‖_F is the twin's, not a bound on it: the floor, the
        # asymmetry check and so the dim are the twin's.
        f = self.path("asymmetric_kron.h5")
        rng = np.random.default_rng(3)
        A = rotated([10.0, 8, 5, 0.017], rng)
        B = rotated([10.0, 7, 3, 1], rng)
        A = A + 4e-4 * np.linalg.norm(A) * np.triu(rng.standard_normal((4, 4)), 1) / 2
        B = B + 4e-4 * np.linalg.norm(B) * np.triu(rng.standard_normal((4, 4)), 1) / 2
        H = np.kron(A, B)
        with h5py.File(f, "w") as h5:
            g = h5.create_group("k")
            g.attrs["structure"] = "kron"
            g["A"] = A
            g["B"] = B
            h5["k_twin"] = H
        expected = np.linalg.norm(H - H.T) / np.linalg.norm(H)  # the row's asymmetry is relative to ‖H‖_F
        for extra in ((), ("--max-asymmetry", "0.01")):
            with self.subTest(extra=extra):
                p = run("volume", f, "-f", "jsonl", *extra)
                rows = {r["dataset"]: r for r in rows_of(p)}
                row, twin = rows["/k"], rows["/k_twin"]
                for r in (row, twin):
                    self.assertEqual(r["status"], "ok", r["error"])
                    # (the structure's ‖H‖_F is its symmetric part's: ‖H‖_F·(1 − O(asymmetry²)))
                    self.assertAlmostEqual(r["asymmetry"], expected, delta=1e-6 * expected)
                self.assertAlmostEqual(row["noise_floor"], twin["noise_floor"], delta=1e-6 * twin["noise_floor"])
                for key in ("rank", "dim", "dim_low", "dim_high", "warnings"):
                    self.assertEqual(row[key], twin[key], key)

    def test_a_part_s_stated_error_holds_for_the_whole(self):
        # hessian_error on one member: the whole's error is the direct sum of
        # the parts', so its floor is the twin's that states the same error.
        f = self.path("part_error.h5")
        a = np.diag([3.0, 2.0, 1.0])
        b = np.diag([1.0, 0.02])
        with h5py.File(f, "w") as h5:
            g = h5.create_group("whole")
            g.attrs["structure"] = "blocks"
            g["a"] = a
            g["b"] = b
            g["b"].attrs["hessian_error"] = 0.05
            twin = h5.create_dataset("twin", data=block_diag(a, b))
            twin.attrs["hessian_error"] = 0.05
            g = h5.create_group("bad")
            g.attrs["structure"] = "blocks"
            g["a"] = a
            g["a"].attrs["hessian_error"] = "large"
        p = run("volume", f, "-f", "jsonl")
        rows = {r["dataset"]: r for r in rows_of(p)}
        row, twin = rows["/whole"], rows["/twin"]
        self.assertEqual(row["status"], "ok", row["error"])
        for key in ("rank", "dim", "dim_low", "dim_high", "negative", "noise_floor", "hessian_error"):
            self.assertEqual(row[key], twin[key], key)
        self.assertEqual(row["rank"], 4)  # 0.02 is under the stated error: flat
        self.assertIn("part_error.h5:/bad: structure: /bad/a: attribute hessian_error must be one number",
                      rows["/bad"]["error"])

    def test_a_corrupt_stored_type_in_a_factor_or_diagonal_is_an_error_row(self):
        # An int32 type patched to an impossible bit layout: HDF5 1.10's
        # conversion dies of SIGBUS on it, or reads bytes past each value.
        pattern = bytes([0x10, 0x08, 0, 0, 4, 0, 0, 0, 0, 0, 32, 0])  # int32 LE: offset 0, precision 32
        for kind in ("factor", "diagonal"):
            for offset, precision in ((64, 0), (0, 64)):
                with self.subTest(kind=kind, offset=offset, precision=precision):
                    f = self.path("corrupt_type_%s_%d.h5" % (kind, offset))
                    with h5py.File(f, "w") as h5:
                        if kind == "factor":
                            g = h5.create_group("h")
                            g.attrs["structure"] = "factor"
                            g["G"] = np.ones((3, 3), dtype="<i4")
                        else:
                            d = h5.create_dataset("h", data=np.ones(3, dtype="<i4"))
                            d.attrs["structure"] = "diagonal"
                        h5["fine"] = np.diag([1.0, 2.0])
                    data = bytearray(open(f, "rb").read())
                    at = data.find(pattern)
                    self.assertGreaterEqual(at, 0)
                    self.assertEqual(data.find(pattern, at + 1), -1)
                    data[at + 8:at + 12] = bytes([offset, 0, precision, 0])
                    open(f, "wb").write(bytes(data))
                    p = run("volume", f, "-f", "jsonl")
                    self.assertEqual(p.returncode, 1, p.stderr)
                    rows = {r["dataset"]: r for r in rows_of(p)}
                    self.assertEqual(rows["/fine"]["status"], "ok")
                    self.assertIn("the stored type is corrupt: precision %d at bit offset %d in 4 bytes"
                                  % (precision, offset), rows["/h"]["error"])

    def test_a_part_created_and_never_written_is_an_error_row(self):
        # A writer that died before writing G or the diagonal left storage
        # unallocated: read as fill values (zeros), it was an ok row of flat
        # directions. Each part kind, contiguous and chunked.
        for chunked in (False, True):
            with self.subTest(chunked=chunked):
                f = self.path("never_written_%d.h5" % chunked)
                layout = {"chunks": True, "compression": "gzip"} if chunked else {}
                with h5py.File(f, "w") as h5:
                    g = h5.create_group("factor")
                    g.attrs["structure"] = "factor"
                    g.create_dataset("G", shape=(4, 6), dtype="f8", **layout)
                    d = h5.create_dataset("diagonal", shape=(6,), dtype="f4", **layout)
                    d.attrs["structure"] = "diagonal"
                    g = h5.create_group("kron")
                    g.attrs["structure"] = "kron"
                    g["A"] = np.eye(2)
                    g.create_dataset("B", shape=(3, 3), dtype="f8", **layout)
                    g = h5.create_group("blocks")
                    g.attrs["structure"] = "blocks"
                    g["a"] = np.eye(2)
                    g.create_dataset("b", shape=(3, 3), dtype="f8", **layout)
                    g = h5.create_group("blocks_of_factor")
                    g.attrs["structure"] = "blocks"
                    g["a"] = np.eye(2)
                    c = g.create_group("c")
                    c.attrs["structure"] = "factor"
                    c.create_dataset("G", shape=(2, 3), dtype="f4", **layout)
                    h5["fine"] = np.diag([1.0, 2.0])
                p = run("volume", f, "-f", "jsonl")
                self.assertEqual(p.returncode, 1, p.stderr)
                rows = {r["dataset"]: r for r in rows_of(p)}
                self.assertEqual(rows["/fine"]["status"], "ok")
                for row, part in (("/factor", "/factor/G"), ("/diagonal", "/diagonal"), ("/kron", "/kron/B"),
                                  ("/blocks", "/blocks/b"), ("/blocks_of_factor", "/blocks_of_factor/c/G")):
                    with self.subTest(row=row):
                        self.assertEqual(rows[row]["status"], "error", rows[row])
                        self.assertIn(f + ":" + part + ": the dataset was never written", rows[row]["error"])

    def test_chunks_never_written_in_a_part_or_a_parameter_block_are_told(self):
        # Chunks never written are read as the fill value (zeros): the row of
        # the structure, or of the parameter block whose rows they lie in,
        # warns unwritten_chunks; the others do not.
        rng = np.random.default_rng(12)
        G = rng.standard_normal((6, 12))
        f = self.path("unwritten.h5")
        with h5py.File(f, "w") as h5:
            g = h5.create_group("factor")
            g.attrs["structure"] = "factor"
            d = g.create_dataset("G", shape=(6, 12), dtype="f8", chunks=(3, 4))
            d[:3, :] = G[:3]  # the lower three rows never written
            d = h5.create_dataset("diagonal", shape=(12,), dtype="f8", chunks=(4,))
            d[:8] = np.arange(1.0, 9.0)
            d.attrs["structure"] = "diagonal"
            g = h5.create_group("kron")
            g.attrs["structure"] = "kron"
            g["A"] = np.eye(2)
            d = g.create_dataset("B", shape=(4, 4), dtype="f8", chunks=(2, 2))
            d[:2, :2] = np.diag([1.0, 2.0])
            g = h5.create_group("blocks")
            g.attrs["structure"] = "blocks"
            g["a"] = np.eye(2)
            d = g.create_dataset("b", shape=(4, 4), dtype="f8", chunks=(2, 2))
            d[:2, :2] = np.diag([1.0, 2.0])
            g = h5.create_group("complete")
            g.attrs["structure"] = "factor"
            g.create_dataset("G", data=G, chunks=(3, 4))
            # parameter blocks [0, 8) and [8, 12) with chunks of 4: only the
            # second block's diagonal chunk is never written
            H = rotated(np.r_[np.logspace(0, -1, 9), np.zeros(3)], rng)
            d = h5.create_dataset("params", shape=(12, 12), dtype="f8", chunks=(4, 4))
            d[:8, :] = H[:8]
            d[8:, :8] = H[8:, :8]
            d.attrs["param_offsets"] = np.array([0, 8])
            d.attrs["param_sizes"] = np.array([8, 4])
            d.attrs["param_names"] = np.array(["w", "b"], dtype=h5py.string_dtype())
        p = run("volume", f, "--per-block", "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = {r["dataset"]: r for r in rows_of(p)}
        told = {k: "unwritten_chunks" in r["warnings"] for k, r in rows.items()}
        self.assertEqual(told, {"/factor": True, "/diagonal": True, "/kron": True, "/blocks": True, "/blocks/a": False,
                                "/blocks/b": True, "/complete": False, "/params": True, "/params[w]": False,
                                "/params[b]": True})
        # the fill value is what was read: the zeros count as flat directions
        self.assertEqual(rows["/diagonal"]["dim"], 4)
        self.assertEqual(rows["/factor"]["rank"], 3)
        self.assertEqual(rows["/params[b]"]["rank"], 0)

    def test_a_chunk_that_inflates_to_another_size_is_an_error_row_in_every_part(self):
        # HDF5's deflate filter keeps the head of a chunk that inflates to
        # more than its size and leaves a shorter one's tail unwritten: a
        # factor, diagonal or Kronecker factor holding one was read as ok.
        import zlib
        rng = np.random.default_rng(11)
        G = rng.standard_normal((20, 40))
        A = rotated(np.r_[np.logspace(0, -1, 5), np.zeros(3)], rng)
        for name, factor in (("long", 2), ("short", 0.5)):
            def bad(values):  # the chunk's stored bytes: too many or too few values
                return zlib.compress(np.resize(values, int(values.size * factor)).tobytes())
            f = self.path("chunk_%s.h5" % name)
            with h5py.File(f, "w") as h5:
                g = h5.create_group("factor")
                g.attrs["structure"] = "factor"
                d = g.create_dataset("G", data=G, chunks=(10, 16), compression="gzip")
                d.id.write_direct_chunk((10, 32), bad(np.zeros((10, 16))))
                d = h5.create_dataset("diagonal", data=np.arange(1.0, 41.0), chunks=(16,), compression="gzip")
                d.attrs["structure"] = "diagonal"
                d.id.write_direct_chunk((16,), bad(np.zeros(16)))
                g = h5.create_group("kron")
                g.attrs["structure"] = "kron"
                g["B"] = np.eye(2)
                d = g.create_dataset("A", data=A, chunks=(4, 4), compression="gzip", shuffle=True)
                d.id.write_direct_chunk((4, 0), bad(np.zeros(16)))
                h5["fine"] = np.diag([1.0, 2.0])
            p = run("volume", f, "-f", "jsonl")
            self.assertEqual(p.returncode, 1, p.stderr)
            rows = {r["dataset"]: r for r in rows_of(p)}
            self.assertEqual(rows["/fine"]["status"], "ok")
            for part, at, holds in (("/factor", "/factor/G: cannot decompress chunk at [10, 32]", 10 * 16 * 8),
                                    ("/diagonal", "/diagonal: cannot decompress chunk at [16]", 16 * 8),
                                    ("/kron", "/kron/A: cannot decompress chunk at [4, 0]", 4 * 4 * 8)):
                with self.subTest(name, part=part):
                    self.assertEqual(rows[part]["status"], "error")
                    self.assertIn(at, rows[part]["error"])
                    why = ("it inflates to more than the %d bytes it holds" % holds if factor > 1 else
                           "it inflates to %d bytes; it holds %d" % (holds // 2, holds))
                    self.assertIn(why + " (corrupt data)", rows[part]["error"])

    def test_a_corrupt_chunk_fails_the_parameter_blocks_it_lies_in_only(self):
        import zlib
        rng = np.random.default_rng(12)
        H = block_diag(rotated(np.r_[np.logspace(1, -1, 8), np.zeros(2)], rng),
                       rotated(np.r_[np.logspace(0, -2, 14), np.zeros(6)], rng))
        f = self.path("blocks_chunk.h5")
        with h5py.File(f, "w") as h5:
            d = h5.create_dataset("h", data=H, chunks=(8, 8), compression="gzip")
            d.attrs["param_names"] = np.array(["a", "b"], dtype="S")
            d.attrs["param_offsets"] = np.array([0, 10], dtype=np.int64)
            d.attrs["param_sizes"] = np.array([10, 20], dtype=np.int64)
            d.id.write_direct_chunk((24, 16), zlib.compress(np.zeros(32).tobytes()))  # half a chunk
        p = run("volume", f, "--per-block", "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = {r["dataset"]: r for r in rows_of(p)}
        self.assertEqual(rows["/h[a]"]["status"], "ok")  # rows and columns 0..9: not in the chunk
        lam = np.linalg.eigvalsh(H[:10, :10])
        self.assertEqual(rows["/h[a]"]["rank"], int((np.abs(lam) > rows["/h[a]"]["tol"]).sum()))
        for block in ("/h", "/h[b]"):
            with self.subTest(block):
                self.assertEqual(rows[block]["status"], "error")
                self.assertIn("chunk at [24, 16]: it inflates to 256 bytes; it holds 512 (corrupt data)", rows[block]["error"])

    def test_a_factor_is_budgeted_by_its_stored_size(self):
        # G of 50 x 400,000 float32 (80 MB) under a 200 MB budget: it needs G,
        # a Gram matrix of 50 x 50 and widened panels, not n-sized buffers.
        f = self.path("wide_factor.h5")
        rng = np.random.default_rng(8)
        with h5py.File(f, "w") as h5:
            g = h5.create_group("f")
            g.attrs["structure"] = "factor"
            g["G"] = rng.standard_normal((50, 400_000)).astype(np.float32)
        p = run("volume", f, "--max-memory", "200M", "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(rows_of(p)[0]["rank"], 50)

    def test_memory_budget_refuses_a_factor_before_reading_it(self):
        f = self.path("big_factor.h5")
        with h5py.File(f, "w") as h5:
            g = h5.create_group("f")
            g.attrs["structure"] = "factor"
            g.create_dataset("G", shape=(50, 40000), dtype="float32", fillvalue=1.0)
            b = h5.create_group("b")  # the largest part is named, however deep
            b.attrs["structure"] = "blocks"
            b["small"] = np.eye(3)
            k = b.create_group("k")
            k.attrs["structure"] = "kron"
            k.create_dataset("A", shape=(2000, 2000), dtype="float32", fillvalue=1.0)
            k["B"] = np.eye(2)
        p = run("volume", f, "--max-memory", "4M", "-f", "jsonl")
        self.assertEqual(p.returncode, 1)
        rows = {r["dataset"]: r for r in rows_of(p)}
        row = rows["/f"]
        self.assertIn("budget", row["error"])
        self.assertIn("big_factor.h5:/f", row["error"])
        self.assertIn("(its largest part: /f/G, 50x40000)", row["error"])
        self.assertIn("(its largest part: /b/k/A, 2000x2000)", rows["/b"]["error"])

    def test_absurd_declared_shapes_are_refused_with_their_true_size(self):
        # Never-written chunked datasets: tiny files whose shapes' byte
        # counts pass 2^64. Each must be refused before anything is
        # allocated, with a size that does not wrap round to a small one.
        f = self.path("absurd.h5")
        with h5py.File(f, "w") as h5:
            h5.create_dataset("dense_2p29", shape=(2**29, 2**29), dtype="f4", chunks=(64, 64))
            d = h5.create_dataset("diag_2p61", shape=(2**61,), dtype="f8", chunks=(1024,))
            d.attrs["structure"] = "diagonal"
            g = h5.create_group("factor_1x2p61")
            g.attrs["structure"] = "factor"
            g.create_dataset("G", shape=(1, 2**61), dtype="f8", chunks=(1, 1024))
            g = h5.create_group("kron_2p32")
            g.attrs["structure"] = "kron"
            g.create_dataset("A", shape=(2**32, 2**32), dtype="f8", chunks=(64, 64))
            g["B"] = np.eye(2)
            g = h5.create_group("blocks_sum")
            g.attrs["structure"] = "blocks"
            for k in range(3):
                d = g.create_dataset("d%d" % k, shape=(2**52,), dtype="f8", chunks=(1024,))
                d.attrs["structure"] = "diagonal"
        p = run("volume", f, "-f", "jsonl", "--max-memory", "1000T")
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = {r["dataset"]: r for r in rows_of(p)}
        self.assertIn("n = 536870912 needs about 4.61e+09 GB to analyze, over the memory budget of 1.1e+06 GB",
                      rows["/dense_2p29"]["error"])
        self.assertIn("needs more than 1.84e+10 GB to analyze (its largest part: /kron_2p32/A, 4294967296x4294967296), "
                      "over the memory budget", rows["/kron_2p32"]["error"])
        self.assertIn("/diag_2p61: n = 2305843009213693952 passes 2^53", rows["/diag_2p61"]["error"])
        self.assertIn("/factor_1x2p61/G: n (G's columns) = 2305843009213693952 passes 2^53",
                      rows["/factor_1x2p61"]["error"])
        self.assertIn("/blocks_sum/d2: the structure's n passes 2^53 with this member", rows["/blocks_sum"]["error"])


if __name__ == "__main__":
    clitest.main()
