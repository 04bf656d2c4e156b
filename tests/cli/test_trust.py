"""The trust contract through the command line: every method gives dense's
rank on Hessians whose rank is known in closed form; attributes that change an
answer are used or refused; ranking and comparing agree and say when noise
decides; extreme thresholds and storage types are handled or flagged.

Run: /usr/bin/python3 tests/cli/test_trust.py path/to/basinvol
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
METHODS = ("auto", "dense", "cholesky", "sketch", "lanczos")


def run(*args):
    p = subprocess.run([BIN] + [str(a) for a in args], capture_output=True, text=True, timeout=300)
    return p


def rows_of(p):
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def deep_linear_hessian(d0, d1, d2, rng):
    """Hessian of L(W1, W2) = ½‖W2 W1 X − Y‖²_F at a zero-residual minimum
    (Y = W2 W1 X), X square and invertible: H = JᵀJ with J the Jacobian of
    (W1, W2) ↦ W2 W1 X. For full-rank W1 (d1×d0), W2 (d2×d1) and
    d1 ≤ min(d0, d2) its rank is d1·(d0 + d2 − d1): the map
    (A, B) ↦ W2 A X + B W1 X has the kernel {(C W1, −W2 C)} of dimension d1²."""
    W1 = rng.standard_normal((d1, d0))
    W2 = rng.standard_normal((d2, d1))
    X = np.linalg.qr(rng.standard_normal((d0, d0)))[0] * np.linspace(1, 3, d0)
    # vec(W2 A X) = (Xᵀ ⊗ W2) vec(A), vec(B W1 X) = ((W1 X)ᵀ ⊗ I) vec(B) (column-major vec)
    J = np.hstack([np.kron(X.T, W2), np.kron((W1 @ X).T, np.eye(d2))])
    H = J.T @ J
    return (H + H.T) / 2, d1 * (d0 + d2 - d1)


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="basinvol-trust-")
        cls.dir = cls.tmp.name

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)


class DeepLinearNetworks(Base):
    def test_every_method_finds_the_closed_form_rank(self):
        rng = np.random.default_rng(5)
        # (16, 12, 30): rank 408 of 552, inside the factored Cholesky's 0.75n;
        # (30, 10, 26): rank 460 of 560, past every partial budget.
        for (d0, d1, d2) in ((16, 12, 30), (30, 10, 26)):
            H, rank = deep_linear_hessian(d0, d1, d2, rng)
            n = H.shape[0]
            self.assertGreaterEqual(n, 500, "large enough for the partial solvers")
            for dtype in ("float64", "float32"):
                f = self.path("dln_%d_%d_%d_%s.h5" % (d0, d1, d2, dtype))
                with h5py.File(f, "w") as h5:
                    h5["hessian"] = H.astype(dtype)
                for method in METHODS:
                    with self.subTest(shape=(d0, d1, d2), dtype=dtype, method=method):
                        p = run("volume", f, "--method", method, "-f", "jsonl")
                        self.assertEqual(p.returncode, 0, p.stderr)
                        row = rows_of(p)[0]
                        flagged = "ambiguous_rank" in row["warnings"]
                        if not flagged:
                            self.assertEqual(row["rank"], rank, row)
                            self.assertEqual(row["dim"], n - rank)
                        self.assertEqual(row["negative"], 0)
                        self.assertTrue(row["certified"])
                        if dtype == "float64":  # eight decades of gap: never ambiguous
                            self.assertFalse(flagged, row)


class Attributes(Base):
    def write(self, name, **attrs):
        f = self.path(name + ".h5")
        with h5py.File(f, "w") as h5:
            d = h5.create_dataset("hessian", data=np.diag([2.0, 2.0, 0.0]))
            for k, v in attrs.items():
                d.attrs[k] = v
        return f

    def test_loss_threshold_as_number_string_or_one_element_array_is_used(self):
        # White space around a number as strtod reads it before: the same after.
        # A fixed-length (NULLPAD) string's trailing NULs are padding.
        for value in (0.5, "0.5", np.array([0.5]), b"0.5", " 0.5 ", "\t0.5", "0.5\n", "\n0.5\r\n",
                      np.bytes_(b"0.5\x00\x00")):
            f = self.write("lt_ok", loss_threshold=value)
            p = run("volume", f, "-f", "jsonl")
            self.assertEqual(p.returncode, 0, (value, p.stderr))
            row = rows_of(p)[0]
            self.assertEqual(row["threshold"], 0.5, value)
            self.assertAlmostEqual(row["log_volume"], math.log(math.pi * 0.5), delta=1e-12)

    def test_an_unreadable_loss_threshold_is_an_error_row_naming_it(self):
        # In a NULLPAD string the bytes after a NUL are the value's: "2\x003"
        # was read as 2.
        for value, words in (("half", "the string 'half'"), ("0x10", "the string '0x10'"),
                             (np.array([0.5, 1.0]), "an array of 2 values"),
                             (np.bytes_(b"2\x003"), "the string '2\\03'"),
                             (np.bytes_(b"1e-3\x00junk\x00"), "the string '1e-3\\0junk'")):
            f = self.write("lt_bad", loss_threshold=value)
            p = run("volume", f, "-f", "jsonl")
            self.assertEqual(p.returncode, 1, p.stderr)
            row = rows_of(p)[0]
            self.assertEqual(row["status"], "error")
            self.assertIn("lt_bad.h5:/hessian", row["error"])
            self.assertIn("loss_threshold", row["error"])
            self.assertIn(words, row["error"])
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)

    def test_validate_never_skips_an_expectation_it_cannot_read(self):
        good = self.write("exp_ok", expected_rank="2", expected_dim=np.array([1]))
        p = run("validate", good, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn('"rank"', p.stdout)
        bad = self.write("exp_bad", expected_rank="two")
        p = run("validate", bad, "-f", "jsonl")
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("expected_rank", p.stdout + p.stderr)

    def test_huge_threshold_does_not_overflow(self):
        f = self.write("huge_T")
        for T in (1e308, 1.7e308):
            p = run("volume", f, "-T", T, "-f", "jsonl")
            self.assertEqual(p.returncode, 0, p.stderr)
            row = rows_of(p)[0]
            self.assertAlmostEqual(row["log_volume"], math.log(math.pi) + math.log(T), delta=1e-9)


class Ranking(Base):
    def test_rank_and_compare_agree_on_every_pair_with_near_ties(self):
        # Volumes 0.9e-6 nats apart: "within --tie-tol of a neighbour" would
        # chain them into one place while compare orders the ends.
        files = []
        for i in range(5):
            s = math.exp(-2 * 0.9e-6 * i)  # log V = const − ½·log(s²)... scale moves log V by 0.9e-6·i
            f = self.path("tie_%d.h5" % i)
            with h5py.File(f, "w") as h5:
                h5["hessian"] = np.diag([2.0 * s, 2.0 * s, 0.0])
            files.append(f)
        p = run("rank", *files, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        place = {r["file"]: r["place"] for r in rows_of(p)}
        for a in files:
            for b in files:
                if a == b:
                    continue
                c = run("compare", a, b)
                if c.returncode == 0:
                    self.assertLess(place[a], place[b], c.stderr)
                elif "tie" in c.stderr:
                    self.assertEqual(place[a], place[b], c.stderr)
                else:
                    self.assertGreaterEqual(place[a], place[b], c.stderr)

    def test_noise_decided_order_is_marked_and_strict_compare_exits_3(self):
        rng = np.random.default_rng(9)
        q = np.linalg.qr(rng.standard_normal((60, 60)))[0]
        clean = (q * np.r_[np.logspace(0, -2, 20), np.zeros(40)]) @ q.T  # dim 40
        # Three eigenvalues within a decade above the cut (~2e-14): dim 37 at
        # the cut, 40 a decade higher; its band reaches the clean basin's dim.
        noisy = (q * np.r_[np.logspace(0, -2, 20), [3e-14, 5e-14, 1e-13], np.zeros(37)]) @ q.T
        a, b = self.path("clean.h5"), self.path("smooth.h5")
        for f, h in ((a, clean), (b, noisy)):
            with h5py.File(f, "w") as h5:
                h5["hessian"] = (h + h.T) / 2
        p = run("rank", a, b, "-f", "jsonl")
        rows = {r["file"]: r for r in rows_of(p)}
        self.assertEqual(rows[a]["dim"], 40)
        self.assertLessEqual(rows[b]["dim_low"], rows[b]["dim"])
        self.assertGreaterEqual(rows[b]["dim_high"], 40, rows[b])
        self.assertEqual(rows[a]["dim_low"], rows[a]["dim_high"])
        self.assertIn("place_uncertain", rows[a]["warnings"])
        self.assertIn("place_uncertain", rows[b]["warnings"])
        c = run("compare", a, b)
        self.assertIn("noise may decide", c.stderr)
        self.assertIn(c.returncode, (0, 1))
        s = run("compare", a, b, "--strict")
        self.assertEqual(s.returncode, 3, s.stderr)
        # Two clean basins: strict changes nothing.
        s = run("compare", a, a, "--strict")
        self.assertEqual(s.returncode, 1, s.stderr)
        # The table shows it in the row: '~' on the place, the band in its column.
        t = run("rank", a, b)
        line = [l for l in t.stdout.splitlines() if "smooth.h5" in l][0]
        self.assertRegex(line, r"^\d+~ ")
        self.assertIn("%d..%d" % (rows[b]["dim_low"], rows[b]["dim_high"]), line)


class InputNoise(Base):
    """log_volume_noise: how far noise of the floor's size moves a
    log-volume, and the rankings it decides."""

    f = 1e-4  # the stated error, over every other term of the floor
    # A cut a decade clear of the floor and of the kept values: the band
    # settles every dim, so only the volumes' reach can decide an order.
    cut = ("--hessian-error", f, "--atol", 1e-3)

    def basin(self, name, shift):
        """A dim-40 basin of n = 60 whose 20 kept values 1 … 0.03 are moved
        by −shift: H − shift·P, P the projector on their directions, a
        perturbation of spectral norm |shift|."""
        rng = np.random.default_rng(21)
        q = np.linalg.qr(rng.standard_normal((60, 60)))[0]
        kept = np.logspace(0, -1.5, 20) - shift
        h = (q * np.r_[kept, np.zeros(40)]) @ q.T
        path = self.path(name + ".h5")
        with h5py.File(path, "w") as h5:
            h5["hessian"] = (h + h.T) / 2
        return path, kept

    def rows(self, *paths):
        p = run("rank", *paths, *self.cut, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        return {r["file"]: r for r in rows_of(p)}

    def test_the_reach_is_the_floor_sum_and_a_shift_of_the_floor_attains_it(self):
        a, kept = self.basin("noise_a", 0.0)
        b, _ = self.basin("noise_b", self.f)  # every kept value lowered by the floor
        rows = self.rows(a, b)
        ra, rb = rows[a], rows[b]
        for r in (ra, rb):
            self.assertEqual((r["dim_low"], r["dim"], r["dim_high"]), (40, 40, 40))
        self.assertEqual(ra["noise_floor"], self.f)
        want = 0.5 * np.sum(-np.log1p(-self.f / kept))
        self.assertAlmostEqual(ra["log_volume_noise"], want, delta=1e-9 * want)
        # B is A moved by noise of the floor's size: its log-volume moves by
        # the whole reach, and no further.
        moved = rb["log_volume"] - ra["log_volume"]
        bars = ra["log_volume_error"] + rb["log_volume_error"]
        self.assertLessEqual(moved, ra["log_volume_noise"] + bars)
        self.assertGreaterEqual(moved, ra["log_volume_noise"] - bars)
        self.assertIn("place_uncertain", ra["warnings"])
        self.assertIn("place_uncertain", rb["warnings"])

    def test_noise_decides_an_order_within_the_reach_and_not_past_it(self):
        a, _ = self.basin("reach_a", 0.0)
        near, _ = self.basin("reach_near", 0.5 * self.f)
        far, _ = self.basin("reach_far", 5 * self.f)
        rows = self.rows(a, near, far)
        self.assertGreater(rows[near]["log_volume"], rows[a]["log_volume"])
        self.assertIn("place_uncertain", rows[near]["warnings"])
        self.assertIn("place_uncertain", rows[a]["warnings"])
        self.assertNotIn("place_uncertain", rows[far]["warnings"])
        self.assertLess(rows[far]["place"], rows[near]["place"])
        # What decides it is named: the rows, the table, compare.
        self.assertEqual(rows[near]["uncertain_by"], ["log_volume"])
        self.assertEqual(rows[far]["uncertain_by"], [])
        t = run("rank", a, near, far, *self.cut)
        lines = {l.split()[1].rsplit(":", 1)[0]: l for l in t.stdout.splitlines()[1:]}
        self.assertIn(" place_uncertain(log_volume)", lines[near])
        self.assertNotIn("place_uncertain", lines[far])
        c = run("compare", near, a, *self.cut, "--strict")
        self.assertEqual(c.returncode, 3, c.stderr)
        self.assertIn("log_volume_noise A", c.stderr)
        c = run("compare", near, a, *self.cut, "-f", "json")
        self.assertEqual(json.loads(c.stdout)["uncertain_by"], ["log_volume"])
        c = run("compare", far, a, *self.cut, "--strict")
        self.assertEqual(c.returncode, 0, c.stderr)
        self.assertNotIn("noise may decide", c.stderr)

    def test_a_cut_at_the_solvers_floor_over_a_clean_gap_is_settled_and_one_at_an_asymmetry_is_not(self):
        # n = 40 float64: the dtype cut n·ε·max|λ| lies under the floor
        # 8·√n·ε·‖H‖_F, so tol is the floor, and the flat values of a
        # rotated spectrum lie at rounding level. Another draw of the input
        # moves them by ε·‖H‖_F, far from tol: two rows of one dim are
        # ordered by their volumes, settled.
        rng = np.random.default_rng(40)
        q = np.linalg.qr(rng.standard_normal((40, 40)))[0]
        paths = []
        for name, scale in (("wide", 1.0), ("narrow", 3.0)):
            h = (q * np.r_[scale * np.logspace(0, -1, 18), np.zeros(22)]) @ q.T
            paths.append(self.path("floor_%s.h5" % name))
            with h5py.File(paths[-1], "w") as h5:
                h5["hessian"] = (h + h.T) / 2
                # The same with an error of 1e-9 in its upper triangle: the
                # floor is the asymmetry, which may lift a flat value over it.
                e = np.triu(rng.standard_normal((40, 40)), 1) * 1e-9
                h5["asymmetric"] = (h + h.T) / 2 + e
        p = run("rank", *[f + ":/hessian" for f in paths], "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = rows_of(p)
        for r in rows:
            self.assertEqual(r["tol"], r["noise_floor"], r)
            self.assertEqual((r["dim_lifted"], r["dim_low"], r["dim"], r["dim_high"]), (22, 22, 22, 22))
            self.assertNotIn("place_uncertain", r["warnings"])
        c = run("compare", paths[0] + ":/hessian", paths[1] + ":/hessian", "--strict")
        self.assertEqual(c.returncode, 0, c.stderr)
        p = run("rank", *[f + ":/asymmetric" for f in paths], "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = rows_of(p)
        for r in rows:
            self.assertEqual((r["dim_low"], r["dim"], r["dim_high"]), (22, 22, 22))
            self.assertLess(r["dim_lifted"], 22)
            self.assertIn("place_uncertain", r["warnings"])
            self.assertEqual(r["uncertain_by"], ["dim"])
        c = run("compare", paths[0] + ":/asymmetric", paths[1] + ":/asymmetric", "--strict")
        self.assertEqual(c.returncode, 3, c.stderr)
        self.assertIn("is under its band", c.stderr)

    def test_a_tie_or_a_status_that_a_lifted_flat_value_changes_is_flagged(self):
        # A stated error of 1e-6 and a cut at 1.01e-6: a flat value at
        # 0.95e-6, under the band, within the input's noise of tol. Each
        # draw beside it (the value at 1.02e-6, ‖E‖₂ = 0.07·ν) reverses the
        # order the stored rows give, so those must be flagged.
        f = self.path("lifted.h5")
        with h5py.File(f, "w") as h5:
            h5["A"] = np.diag([1.0, 1.0, 0.95e-6])
            h5["A_draw"] = np.diag([1.0, 1.0, 1.02e-6])
            h5["B"] = np.diag([1.0, 1.0, 0.0])
            h5["N"] = np.diag([1.0, 1.0, -0.95e-6])  # a minimum whose draw is a saddle
            h5["N_draw"] = np.diag([1.0, 1.0, -1.02e-6])
            h5["S"] = np.diag([-1e-3, 1e-3, 0.0])
        cut = ("--hessian-error", 1e-6, "--atol", 1.01e-6)

        def flagged_and_reversed(a, b, opts, words, by):
            # a above or tied with b, flagged; b strictly above a's draw.
            c = run("compare", f + ":/" + a, f + ":/" + b, *opts, "--strict")
            self.assertEqual(c.returncode, 3, c.stderr)
            for w in words + ("A's dim_lifted 0 is under its band",):
                self.assertIn(w, c.stderr)
            self.assertEqual(run("compare", f + ":/" + b, f + ":/" + a + "_draw", *opts).returncode, 0)
            p = run("rank", f + ":/" + a, f + ":/" + b, *opts, "-f", "jsonl")
            for r in rows_of(p):
                self.assertIn("place_uncertain", r["warnings"], r["dataset"])
                self.assertEqual(r["uncertain_by"], by, r["dataset"])
            return rows_of(p)

        # A tie on a coarse grid: the draw puts B strictly above.
        for r in flagged_and_reversed("A", "B", cut + ("--tie-tol", 0.1), ("tie",), ["dim"]):
            self.assertEqual(r["place"], 1)
        # Under --negatives last a minimum ranks above a saddle; its draw is one.
        flagged_and_reversed("N", "S", cut + ("--negatives", "last"), ("a minimum a saddle",), ["negative"])

    def test_a_saved_row_without_the_reach_is_ranked_as_unbounded(self):
        a, _ = self.basin("saved_a", 0.0)
        far, _ = self.basin("saved_far", 3 * self.f)
        rows = self.rows(a, far)
        for r in rows.values():
            self.assertNotIn("place_uncertain", r["warnings"])  # settled, as computed
        saved = self.path("saved.jsonl")
        # Saved without the field (by an earlier version), or as null (an
        # unbounded reach, by this one): both ranked as unbounded; only the
        # first is noted as an earlier version's.
        for missing in (True, False):
            with open(saved, "w") as out:
                for r in rows.values():
                    r = {k: v for k, v in r.items() if k != "place"}
                    if r["file"] == a:
                        r["log_volume_noise"] = None
                        if missing:
                            del r["log_volume_noise"]
                    out.write(json.dumps(r) + "\n")
            p = run("rank", "--from-results", saved, "-f", "jsonl")
            self.assertEqual(p.returncode, 0, p.stderr)
            back = {r["file"]: r for r in rows_of(p)}
            self.assertIsNone(back[a]["log_volume_noise"])
            self.assertEqual("1 row was saved without log_volume_noise" in p.stderr, missing, p.stderr)
            self.assertEqual("analyse its Hessian again" in p.stderr, missing, p.stderr)
            for path in (a, far):
                self.assertIn("place_uncertain", back[path]["warnings"], path)
                self.assertEqual(back[path]["uncertain_by"], ["log_volume"], path)


class Storage(Base):
    def test_an_asymmetry_at_rounding_level_is_measured_exactly_at_every_scale(self):
        # ‖H − Hᵀ‖_F sets the floor of an asymmetric matrix. Measured in
        # units of 1/max|H|, each scaled entry's rounding (ε of it) was of the
        # size of the difference itself: 1.4e-8 off the exact norm. Against
        # exact rational arithmetic, at scales the one-pass sums hold and
        # past them (the scaled passes), float64 and float32.
        from fractions import Fraction
        rng = np.random.default_rng(5)
        n = 30
        q = np.linalg.qr(rng.standard_normal((n, n)))[0]
        h = (q * np.r_[np.linspace(1, 3, 10), np.zeros(n - 10)]) @ q.T
        h = (h + h.T) / 2
        for dtype, scale in ((np.float64, 1.0), (np.float64, 1e150), (np.float64, 1e-120), (np.float32, 1.0)):
            a = (h * scale).astype(dtype)
            rel = 1e-9 if dtype == np.float64 else 1e-5  # over the solver's floor: the asymmetry sets it
            a = a + np.triu(a * rel * rng.uniform(0.5, 1, (n, n)), 1).astype(dtype)
            exact = math.sqrt(float(sum((Fraction(float(x)) - Fraction(float(y))) ** 2
                                        for x, y in zip(a.ravel().tolist(), a.T.ravel().tolist()))))
            f = self.path("asym.h5")
            with h5py.File(f, "w") as h5:
                h5["hessian"] = a
            p = run("volume", f, "-f", "jsonl")
            self.assertEqual(p.returncode, 0, p.stderr)
            row = rows_of(p)[0]
            self.assertAlmostEqual(row["noise_floor"] / exact, 1, delta=1e-13, msg=(dtype, scale))
        # An asymmetry only in entries so small that their differences'
        # squares underflow, under entries of 1e-100: measured, not read as 0.
        a = np.diag([1e-100, 2e-100, 3e-100, 4e-100])
        a[1, 0] = 1e-163
        with h5py.File(f, "w") as h5:
            h5["hessian"] = a
        row = rows_of(run("volume", f, "-f", "jsonl"))[0]
        self.assertAlmostEqual(row["asymmetry"] / (1e-163 * math.sqrt(2) / math.sqrt(30e-200)), 1, delta=1e-12)

    def test_float32_data_saved_as_float64_is_measured_at_float32s_floor(self):
        # torch's float32 Hessian through .double() or astype(np.float64):
        # contiguous (mapped), chunked with gzip, and read in a child
        # process, every method: the float32 dataset's rank, dim, signs and
        # log-volume, and the warning that says why. Under float64's floor
        # the rounding is curvature: a full rank with false negatives.
        rng = np.random.default_rng(21)
        n, r = 600, 150
        x = rng.standard_normal((n, r)).astype(np.float32)
        s = np.ones(r, dtype=np.float32)
        s[:10] = -1  # a saddle: ten negative directions
        h32 = (x * s) @ x.T
        h32 = (h32 + h32.T) / 2
        h64 = h32.astype(np.float64)
        lam = np.linalg.eigvalsh(h64)
        self.assertGreater(int((np.abs(lam) > n * np.finfo(np.float64).eps * np.abs(lam).max()).sum()), r + 100)
        f = self.path("f32_as_f64.h5")
        with h5py.File(f, "w") as h5:
            h5["f32"] = h32
            h5["f64"] = h64
            h5.create_dataset("f64_chunked", data=h64, chunks=(100, n), compression="gzip", shuffle=True)
            h5["exact"] = np.diag([1.0, 2.0, 0.5, 2.0 ** -30])  # float32 values, but exact: float64's floor
        ref = rows_of(run("volume", f + ":/f32", "--method", "dense", "-f", "jsonl"))[0]
        self.assertEqual((ref["rank"], ref["negative"]), (r, 10))
        for method in METHODS:
            for extra in ([], ["--read-timeout", "60"]):
                p = run("volume", f + ":/f64", f + ":/f64_chunked", "--method", method, *extra, "-f", "jsonl")
                self.assertEqual(p.returncode, 0, p.stderr)
                for row in rows_of(p):
                    where = (method, extra, row["dataset"])
                    self.assertEqual(row["stored_type"], "float64", where)
                    self.assertIn("float32_values", row["warnings"], where)
                    for k in ("rank", "dim", "negative", "dim_low", "dim_high"):
                        self.assertEqual(row[k], ref[k], (k,) + where)
                    self.assertAlmostEqual(row["noise_floor"] / ref["noise_floor"], 1, delta=1e-12)
                    bar = row["log_volume_error"] + ref["log_volume_error"] + 1e-12 * abs(ref["log_volume"])
                    self.assertLessEqual(abs(row["log_volume"] - ref["log_volume"]), bar, where)
        exact = rows_of(run("volume", f + ":/exact", "-f", "jsonl"))[0]
        self.assertEqual(exact["rank"], 4)
        self.assertNotIn("float32_values", exact["warnings"])
        # --trust-stored-type: float64's floor, which counts the rounding
        # (and records the option in the JSON context).
        p = run("volume", f + ":/f64", "--trust-stored-type", "-f", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        doc = json.loads(p.stdout)
        self.assertTrue(doc["context"]["options"]["trust_stored_type"])
        row = doc["rows"][0]
        self.assertNotIn("float32_values", row["warnings"])
        self.assertGreater(row["rank"], r + 100)
        self.assertLess(row["noise_floor"], 1e-6 * ref["noise_floor"])

    def test_float32_data_symmetrized_after_widening_is_float32_data(self):
        # (H + Hᵀ)/2 in float64 of a float32 autograd Hessian whose first
        # parameters have zero curvature (biases before a batch norm): each
        # triangle holds its own float32 noise there, pairs binades apart.
        # Every mean is exact in float64 and is found as float32 data.
        rng = np.random.default_rng(22)
        n, r = 300, 40
        x = rng.standard_normal((n, r)).astype(np.float32)
        x[:6] = 0
        h32 = x @ x.T
        h32[:6, :] = rng.standard_normal((6, n)).astype(np.float32) * np.float32(3e-8)
        h32[:, :6] = rng.standard_normal((n, 6)).astype(np.float32) * np.float32(3e-8)
        wide = h32.astype(np.float64)
        sym = (wide + wide.T) / 2
        f = self.path("sym_far.h5")
        with h5py.File(f, "w") as h5:
            h5["sym"] = sym
            h5["f32"] = h32
        rows = {row["dataset"]: row for row in rows_of(run("volume", f, "-f", "jsonl"))}
        self.assertIn("float32_values", rows["/sym"]["warnings"])
        self.assertEqual(rows["/sym"]["rank"], r)
        self.assertEqual(rows["/sym"]["negative"], 0)
        self.assertEqual(rows["/f32"]["rank"], r)
        trusted = rows_of(run("volume", f + ":/sym", "--trust-stored-type", "-f", "jsonl"))[0]
        self.assertGreater(trusted["rank"], r)

    def test_float16_where_the_dtype_cut_passes_the_spectrum_is_flagged(self):
        rng = np.random.default_rng(11)
        n = 1100
        q = np.linalg.qr(rng.standard_normal((n, n)))[0]
        h = (q * np.linspace(1, 10, n)) @ q.T
        f = self.path("f16.h5")
        with h5py.File(f, "w") as h5:
            h5["hessian"] = ((h + h.T) / 2).astype(np.float16)
        p = run("volume", f, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        row = rows_of(p)[0]
        self.assertEqual(row["stored_type"], "float16")
        self.assertIn("ambiguous_rank", row["warnings"], row)

    def test_a_dtype_cut_that_keeps_nothing_leaves_any_dim_and_the_signs_over_the_floor(self):
        # float16 at n = 1100 (n·ε ≥ 1): the dtype cut passes every value
        # while 1000 of them (0.14..7.4, 20 negative) stand over the floor.
        # Any dim fits (band 0..n: the same values in float32 have dim 100);
        # only values under the floor (the 100 zeros) may be of either sign.
        rng = np.random.default_rng(8)
        n = 1100
        v = np.exp(rng.uniform(-2, 2, n))
        v[:100] = 0
        v[100:120] *= -1
        f = self.path("f16_keeps_nothing.h5")
        with h5py.File(f, "w") as h5:
            h5["h"] = np.diag(v).astype(np.float16)
        p = run("volume", f, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        row = rows_of(p)[0]
        self.assertEqual((row["cut"], row["rank"]), ("dtype", 0), row)
        self.assertGreater(min(abs(v[100:])), row["noise_floor"])
        self.assertIn("ambiguous_rank", row["warnings"])
        self.assertEqual((row["dim_low"], row["dim_high"]), (0, n))
        self.assertEqual((row["negative_low"], row["negative_high"]), (0, 100 + 20))

    def test_a_stated_error_past_every_eigenvalue_gives_every_method_the_same_band(self):
        # Everything is noise: any dim, and any of the n values may be
        # negative, whatever signs one solver computed (dense: about half of
        # the noise) or listed (a partial method: a few).
        rng = np.random.default_rng(0)
        n = 600
        j = rng.standard_normal((25, n))
        f = self.path("noise.h5")
        with h5py.File(f, "w") as h5:
            h5["h"] = (j.T @ j) * 1e-160
        for method in METHODS:
            p = run("volume", f, "--hessian-error", "1e-10", "--method", method, "-f", "jsonl")
            self.assertEqual(p.returncode, 0, p.stderr)
            row = rows_of(p)[0]
            got = [row[k] for k in ("dim", "dim_low", "dim_high", "negative", "negative_low", "negative_high")]
            self.assertEqual(got, [n, 0, n, 0, 0, n], method)
            self.assertIn("ambiguous_rank", row["warnings"])

    def test_a_value_under_the_pivot_stop_near_the_floor_ties_as_dense_ties_it(self):
        # Diagonal float32 Hessians (their eigenvalues are their entries):
        # a value about the floor, which Cholesky never pivots on and a
        # sketch only compresses, ties the gaps beside it (its noise, up to
        # log10 2). Dense flags the rank ambiguous (and in the second case
        # chooses another gap than the values over the floor alone would);
        # every method must give dense's row.
        f = float(np.finfo(np.float32).eps)
        cases = (("bandbreak", 1000, [1.0, 0.1, 28200 * f, 100 * f, 1.0 * f], ["--cut", "gap"]),
                 ("rankbreak", 3000, [1.0, 5122.106473683711 * f, 736.6345673855049 * f, 37.539493474387726 * f,
                                      0.8612909740757745 * f], []))
        for name, n, values, extra in cases:
            file = self.path(name + ".h5")
            H = np.zeros((n, n), np.float32)
            H[np.arange(len(values)), np.arange(len(values))] = values
            with h5py.File(file, "w") as h5:
                h5["H"] = H
            rows = {}
            for method in METHODS:
                p = run("volume", file, "--method", method, "-f", "jsonl", *extra)
                self.assertEqual(p.returncode, 0, p.stderr)
                rows[method] = rows_of(p)[0]
            dense = rows["dense"]
            self.assertIn("ambiguous_rank", dense["warnings"], name)
            for method in METHODS:
                with self.subTest(name, method=method):
                    for key in ("rank", "dim", "dim_low", "dim_high", "negative", "warnings", "cut"):
                        self.assertEqual(rows[method][key], dense[key], key)

    def test_float32_asymmetric_at_rounding_level_is_symmetrized_exactly(self):
        # Autograd in float32 leaves H asymmetric by an ulp here and there.
        # (a + b)/2 of two floats is exact in double; rounded back to float32
        # it moves the small kept eigenvalues by far more than the error bar.
        rng = np.random.default_rng(1)
        n = 200
        q = np.linalg.qr(rng.standard_normal((n, n)))[0]
        e = np.zeros(n)
        e[:10], e[10:20] = 1.0, 2e-5
        h = ((q * e) @ q.T).astype(np.float32)
        step = np.triu(rng.integers(-1, 2, (n, n)), 1)  # ±1 ulp on the upper entries
        h = np.where(step != 0, np.nextafter(h, np.where(step > 0, np.float32(np.inf), -np.float32(np.inf))), h)
        h = h.astype(np.float32)
        h64 = h.astype(np.float64)
        exact = (h64 + h64.T) / 2
        lam = np.linalg.eigvalsh(exact)
        kept = np.abs(lam[np.abs(lam) > 1e-6])
        self.assertEqual(len(kept), 20)
        r = len(kept)
        want = (r / 2) * math.log(math.pi) - math.lgamma(r / 2 + 1) + (r / 2) * math.log(2) - 0.5 * np.log(kept).sum()
        f = self.path("asym32.h5")
        with h5py.File(f, "w") as h5:
            h5["a"] = h
            h5["b"] = exact
        for method in METHODS:
            p = run("volume", f + ":/a", "--atol", "1e-6", "--method", method, "-f", "jsonl")
            self.assertEqual(p.returncode, 0, p.stderr)
            row = rows_of(p)[0]
            self.assertEqual(row["rank"], 20, (method, row))
            self.assertGreater(row["asymmetry"], 0)
            bar = row["log_volume_error"] + 1e-12 * abs(want)
            self.assertLessEqual(abs(row["log_volume"] - want), bar, (method, row["log_volume"], want, bar))
        # The same matrix, stored as its exact symmetric part in float64: a
        # tie, which the float32 copy's noise (its asymmetry, 3.8e-7, beside
        # kept values of 2e-5) may break: --strict says so. The float64 copy
        # is float32 data symmetrized after widening, and carries float32's
        # rounding too (float32_values), where float64's ε would call it exact.
        p = run("compare", f + ":/a", f + ":/b", "--atol", "1e-6", "--method", "dense", "-f", "json")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        c = json.loads(p.stdout)
        self.assertEqual(c["result"], "tie")
        self.assertTrue(c["noise_decides"])
        self.assertGreater(c["a"]["log_volume_noise"], 1e-2)
        self.assertIn("float32_values", c["b"]["warnings"])
        self.assertAlmostEqual(c["b"]["log_volume_noise"] / c["a"]["log_volume_noise"], 1, delta=1e-9)
        self.assertIn("log_volume_noise A", c["reason"])
        p = run("compare", f + ":/a", f + ":/b", "--atol", "1e-6", "--method", "dense", "--strict", "-f", "json")
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)


class RelabelledTwins(Base):
    """A value within a solve's rounding of the noise floor, with the cut at
    the floor (a small float64 Hessian's default): the same Hessian with its
    parameters relabelled may come out with the value on the other side
    (about 6% of these 1000 pairs do). Each twin's dim and sign count lie in
    the other's band; before, the twin with the value under the floor had a
    clean band at its own dim."""

    def twins(self, name, sign):
        n = 10
        rng = np.random.default_rng(7)
        q = np.linalg.qr(rng.standard_normal((n, n)))[0]
        base = np.r_[1.0, 0.5, np.zeros(n - 2)]
        floor = 8 * math.sqrt(n) * np.finfo(float).eps * float(np.linalg.norm(base))
        f = self.path(name)
        with h5py.File(f, "w") as h5:
            for t in range(1000):
                e = base.copy()
                e[2] = sign * floor * (1 + 0.02 * rng.uniform(-1, 1))
                h = (q * e) @ q.T
                h = (h + h.T) / 2
                perm = rng.permutation(n)
                h5["a_%03d" % t] = h
                h5["b_%03d" % t] = h[np.ix_(perm, perm)]
        p = run("volume", f, "-f", "jsonl", "--negatives", "last", "--no-progress")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = {r["dataset"].lstrip("/"): r for r in rows_of(p)}
        self.assertEqual(len(rows), 2000)
        self.assertAlmostEqual(rows["a_000"]["noise_floor"], floor, delta=1e-3 * floor)
        return f, [(rows["a_%03d" % t], rows["b_%03d" % t]) for t in range(1000)]

    def test_a_value_at_the_floor_flips_dim_only_inside_both_bands(self):
        f, pairs = self.twins("twins.h5", 1.0)
        flipped = [(a, b) for a, b in pairs if a["dim"] != b["dim"]]
        self.assertGreater(len(flipped), 0)  # the family does flip
        for a, b in pairs:
            for x, y in ((a, b), (b, a)):
                self.assertLessEqual(x["dim_low"], y["dim"], (x, y))
                self.assertGreaterEqual(x["dim_high"], y["dim"], (x, y))
            # Either side of the floor, the value is near the cut: both flagged.
            self.assertIn("ambiguous_rank", a["warnings"], a)
            self.assertIn("ambiguous_rank", b["warnings"], b)
        a, b = flipped[0]
        p = run("compare", f + ":/" + a["dataset"].lstrip("/"), f + ":/" + b["dataset"].lstrip("/"), "--strict")
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)

    def test_a_negative_value_at_the_floor_may_make_a_saddle_in_both_bands(self):
        _, pairs = self.twins("saddle-twins.h5", -1.0)
        self.assertGreater(sum(a["negative"] != b["negative"] for a, b in pairs), 0)
        for a, b in pairs:
            for x, y in ((a, b), (b, a)):
                self.assertLessEqual(x["negative_low"], y["negative"], (x, y))
                self.assertGreaterEqual(x["negative_high"], y["negative"], (x, y))


class TiedGaps(Base):
    def test_which_of_two_equal_gaps_rounds_larger_does_not_choose_the_cut(self):
        """Two spectra a rounding apart: gaps of 0.8 decades (1 over 10^-0.8),
        exactly 1 (10^-0.8 over 10^-1.8, its noise ~0) and 1 ± 1e-6 next to
        the floor (1.2 floors times 10^(1 ± 1e-6) over 1.2 floors, noise
        ~0.3), the value between them moved by 4e-19 against a floor of
        1.4e-14. Neither 0.8-decade gap can be the largest once values move
        by a floor, so both keep 2 (a Kronecker factor's gap, repeated far
        above the floor and next to it, once chose by which copy rounded
        larger: one of these kept 1)."""
        n = 60

        def spectrum(upper, lower):
            v = [1.0, 10 ** -0.8, *np.logspace(-1.8, np.log10(3e-13), 30), upper, lower]
            return np.diag(np.r_[v, np.zeros(n - len(v))])

        probe = self.path("probe.h5")
        with h5py.File(probe, "w") as h5:
            h5["hessian"] = spectrum(1e-12, 0.0)
        p = run("volume", probe, "-f", "jsonl", "--no-progress")
        self.assertEqual(p.returncode, 0, p.stderr)
        floor = rows_of(p)[0]["noise_floor"]
        f = self.path("rounding_twins.h5")
        with h5py.File(f, "w") as h5:
            for name, delta in (("below", -1e-6), ("above", 1e-6)):
                h5[name] = spectrum(1.2 * floor * 10 ** (1 + delta), 1.2 * floor)
        p = run("volume", f, "-f", "jsonl", "--cut", "gap", "--min-gap", "0.5", "--no-progress")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = rows_of(p)
        self.assertEqual([r["noise_floor"] for r in rows], [floor, floor], "test data: the twins share the floor")
        for r in rows:
            with self.subTest(r["dataset"]):
                self.assertEqual(r["rank"], 2, r)
                self.assertAlmostEqual(r["gap"], 1.0, delta=1e-9)
                # The gap next to the floor ties with the chosen one.
                self.assertIn("ambiguous_rank", r["warnings"])
                self.assertTrue(r["dim_low"] <= r["dim"] <= r["dim_high"], r)


class DenseErrorBar(Base):
    def test_the_dense_error_bar_holds_against_40_digit_eigenvalues_at_small_n(self):
        """log_volume_error against the stored matrix's eigenvalues computed by
        mpmath at 40 digits, n = 3..8, a kept value at 1e-13 whose share of
        the error bar is LAPACK's error over it. A soundness check: the
        former bar, 2·√n·ε·‖H‖_F, was passed by 1 in about 1500 such
        matrices (bench/twin_spread.py --exact), too rare to pin here."""
        import mpmath

        mpmath.mp.dps = 40
        rng = np.random.default_rng(13)
        f = self.path("small.h5")
        exact = {}
        with h5py.File(f, "w") as h5:
            for n in (3, 4, 5, 6, 8):
                for t in range(60):
                    e = np.r_[1.0, -0.7, 1e-13 * rng.uniform(1, 3), 0.5, np.zeros(max(n - 4, 0))][:n]
                    q = np.linalg.qr(rng.standard_normal((n, n)))[0]
                    h = (q * e) @ q.T
                    h = (h + h.T) / 2
                    name = "n%d_%02d" % (n, t)
                    h5[name] = h
                    exact[name] = sorted(float(v) for v in mpmath.eigsy(mpmath.matrix(h.tolist()), eigvals_only=True))
        p = run("spectrum", f, "-f", "jsonl", "--method", "dense", "--no-progress")
        self.assertEqual(p.returncode, 0, p.stderr)
        worst = 0.0
        for r in rows_of(p):
            values = sorted(r["eigenvalues"], key=lambda v: v["eigenvalue"])
            self.assertEqual(r["rank"], min(r["n"], 4), r["dataset"])
            # The same kept positions, their logs swapped for the exact ones.
            shift = sum(0.5 * (math.log(v["abs"]) - math.log(abs(x)))
                        for v, x in zip(values, exact[r["dataset"].lstrip("/")]) if v["kept"])
            worst = max(worst, abs(shift) / r["log_volume_error"])
            self.assertLessEqual(abs(shift), r["log_volume_error"], r["dataset"])
        self.assertGreater(worst, 0.05)  # the bar is not vacuous: errors reach a share of it


class CholeskyErrorBar(Base):
    def test_the_cholesky_error_bar_is_the_same_at_every_scale(self):
        """Rank 5 of n = 100 with a zero-diagonal coupling c·(xyᵀ + yxᵀ) the
        pivots never see (ρ ≈ √2·c, over the stated error's floor), its
        smallest curved value 40ρ: the Ritz values carry the quadratic bound
        ρ²/η. Scaled by 2^e, the row must scale with it:
        the same error bar (once δ = 2ρ²/(η + √(η² + 4ρ²)) squared ρ, which
        underflowed at 2^-520 and overflowed at 2^530, and the bar fell
        10⁴-fold), within which the dense row lies. (2^-600 to 2^532.)"""
        n, k, alpha, c = 100, 5, 0.6, 1e-7
        rng = np.random.default_rng(1)
        wr = np.zeros((n, k))
        wr[k:, :] = np.linalg.qr(rng.standard_normal((n - k, k)))[0]
        w = alpha * np.eye(n, k) + math.sqrt(1 - alpha ** 2) * wr
        idx = np.arange(n)
        s1, s2 = (idx >= k) & (idx % 2 == 1), (idx >= k) & (idx % 2 == 0)
        x = np.where(s1, w[:, k - 1], 0.0)
        x /= np.linalg.norm(x)
        y = np.where(s2, rng.standard_normal(n), 0.0)
        q = np.linalg.qr(w * s2[:, None])[0]
        y -= q @ (q.T @ y)
        y /= np.linalg.norm(y)
        rho = math.sqrt(2) * c
        h = (w * np.r_[np.ones(k - 1), 40 * rho]) @ w.T + c * (np.outer(x, y) + np.outer(y, x))
        h = (h + h.T) / 2
        f = self.path("scales.h5")
        exps = [0, -300, -520, -600, 500, 530, 532]
        with h5py.File(f, "w") as h5:
            for e in exps:
                d = h5.create_dataset("s%+d" % e, data=np.ldexp(h, e))
                d.attrs["hessian_error"] = math.ldexp(2 * rho, e)
        rows = {}
        for method in ("cholesky", "dense"):
            p = run("volume", f, "-f", "jsonl", "--method", method, "--no-progress")
            self.assertEqual(p.returncode, 0, p.stderr)
            rows[method] = {r["dataset"]: r for r in rows_of(p)}
        bar = rows["cholesky"]["/s+0"]["log_volume_error"]
        for e in exps:
            c_row, d_row = rows["cholesky"]["/s%+d" % e], rows["dense"]["/s%+d" % e]
            self.assertEqual(c_row["method"], "cholesky", c_row)
            self.assertEqual(c_row["rank"], k)
            self.assertAlmostEqual(c_row["log_volume_error"] / bar, 1.0, delta=1e-6, msg=(e, c_row["log_volume_error"], bar))
            self.assertLessEqual(abs(c_row["log_volume"] - d_row["log_volume"]),
                                 c_row["log_volume_error"] + d_row["log_volume_error"], e)
        # The quadratic bound was the one in use: far under Weyl's 2ρ over 40ρ.
        self.assertLess(bar, 0.1 * 0.5 * 2 / 40)


class SaddleErrorBar(Base):
    def test_sketch_and_lanczos_bars_use_the_quadratic_bound_past_their_noise_values(self):
        """A float32 saddle of rank 30, n = 1000, |λ| from e⁻³ to e², a third
        negative: float32's rounding leaves the sketch's oversampling and
        Lanczos past the rank with Ritz values at the residual's level, so
        no quadratic bound holds over their whole lists, and their bars
        were Weyl's ½·Σ ρ/|λ|, 10⁴–10⁷ times the error. Over the values
        clear of that noise the quadratic bound holds (docs/method.md): the
        bar must fall 1000-fold under the first-order one the row's own
        residual bound gives, and still hold the log-volume numpy computes
        from float64 eigenvalues of the stored matrix."""
        n, r = 1000, 30
        rng = np.random.default_rng(7)
        q = np.linalg.qr(rng.standard_normal((n, r)))[0]
        lam = np.exp(rng.uniform(-3, 2, r)) * np.where(np.arange(r) % 3 == 0, -1, 1)
        h = ((q * lam) @ q.T).astype(np.float32)
        h = np.triu(h) + np.triu(h, 1).T  # exactly symmetric in float32
        f = self.path("saddle32.h5")
        with h5py.File(f, "w") as h5:
            h5["hessian"] = h
        w = np.linalg.eigvalsh(h.astype(np.float64))
        p = run("volume", f, "-f", "jsonl", "--method", "dense", "--no-progress")
        self.assertEqual(p.returncode, 0, p.stderr)
        dense = rows_of(p)[0]
        kept = np.abs(w[np.abs(w) > dense["tol"]])
        self.assertEqual(len(kept), r)
        k = len(kept)
        exact = (k / 2) * math.log(math.pi) - math.lgamma(k / 2 + 1) + (k / 2) * math.log(2.0) - 0.5 * np.log(kept).sum()
        for method in ("sketch", "lanczos"):
            p = run("volume", f, "-f", "jsonl", "--method", method, "--no-progress")
            self.assertEqual(p.returncode, 0, p.stderr)
            row = rows_of(p)[0]
            self.assertEqual(row["method"], method, row)
            self.assertTrue(row["certified"], row)
            self.assertEqual((row["rank"], row["negative"]), (dense["rank"], dense["negative"]))
            first_order = 0.5 * float(np.sum(row["residual_bound"] / kept))
            self.assertLess(row["log_volume_error"], 1e-3 * first_order, row)
            self.assertLessEqual(abs(row["log_volume"] - exact), row["log_volume_error"] + dense["log_volume_error"], row)

    def test_the_narrower_rows_report_dense_s_gap_and_gap_cut(self):
        """float32, n = 1000: 30 values from 1 to 0.1, and 20 from 1e-6 to
        3e-6, over the floor and under the dtype cut. The rows whose bars
        come from the values clear of the noise (which leaves the 20 out of
        their list) must still report dense's gap, log10(0.1 / 3e-6), and,
        under --cut gap, dense's tol (they measured down to the floor:
        5.5 decades, and a tol three times lower)."""
        n = 1000
        rng = np.random.default_rng(3)
        lam = np.concatenate([np.logspace(0, -1, 30), np.linspace(1e-6, 3e-6, 20)])
        q = np.linalg.qr(rng.standard_normal((n, len(lam))))[0]
        h = ((q * lam) @ q.T).astype(np.float32)
        h = np.triu(h) + np.triu(h, 1).T
        f = self.path("gap32.h5")
        with h5py.File(f, "w") as h5:
            h5["hessian"] = h
        for cut in ([], ["--cut", "gap"]):
            rows = {}
            for method in ("dense", "sketch", "lanczos"):
                p = run("volume", f, "-f", "jsonl", "--method", method, "--no-progress", *cut)
                self.assertEqual(p.returncode, 0, p.stderr)
                rows[method] = rows_of(p)[0]
            d = rows["dense"]
            self.assertAlmostEqual(d["gap"], math.log10(0.1 / 3e-6), delta=0.01)
            for method in ("sketch", "lanczos"):
                with self.subTest(method=method, cut=cut):
                    r = rows[method]
                    self.assertEqual((r["method"], r["rank"]), (method, 30), r)
                    self.assertAlmostEqual(r["gap"], d["gap"], delta=0.02, msg=r)
                    self.assertAlmostEqual(math.log10(r["tol"]), math.log10(d["tol"]), delta=0.01, msg=r)


class PartialGap(Base):
    def test_a_partial_row_s_gap_never_exceeds_the_spectrum_s(self):
        """A negative value pivoted Cholesky never sees (the diagonal stays
        positive) lies anywhere under the row's rest bound: the certified
        row's gap is the least its knowledge allows, never more than dense's
        (it once reported 11 decades where dense has 8, treating the unseen
        values as under the floor), and a gap cut lies inside the true gap."""
        n = 600
        rng = np.random.default_rng(0)
        for neg in (1e-9, 3e-11):
            lam = np.r_[np.logspace(1, -1, 40), -neg, np.zeros(n - 41)]
            q, r = np.linalg.qr(rng.standard_normal((n, n)))
            h = (q * lam) @ q.T
            h = (h + h.T) / 2
            self.assertGreater(h.diagonal().min(), 0, "test data: a diagonal Cholesky accepts")
            f = self.path("hidden_negative.h5")
            with h5py.File(f, "w") as h5:
                h5["hessian"] = h
            a = np.sort(np.abs(np.linalg.eigvalsh(h)))[::-1]
            partial = 0
            for cut in (["--rtol", "1e-5"], ["--cut", "gap"]):
                rows = {}
                for method in ("dense", "cholesky"):
                    p = run("volume", f, "-f", "jsonl", "--method", method, "--no-progress", *cut)
                    self.assertEqual(p.returncode, 0, p.stderr)
                    rows[method] = rows_of(p)[0]
                d, c = rows["dense"], rows["cholesky"]
                self.assertEqual((d["rank"], d["negative"]), (40, 0), d)
                with self.subTest(neg=neg, cut=cut):
                    self.assertEqual((c["rank"], c["dim"], c["negative"]), (d["rank"], d["dim"], d["negative"]))
                    self.assertLessEqual(c["gap"], d["gap"] + 1e-9, c)
                    self.assertTrue(a[39] > c["tol"] > a[40], (c["tol"], a[39], a[40]))
                    if c["method"] == "cholesky":
                        partial += 1
                        self.assertTrue(c["certified"], c)
                        self.assertGreater(c["residual_bound"], a[40], "test data: the bound covers the negative")
                        # The least gap: the smallest kept value over the rest bound.
                        self.assertLessEqual(c["gap"], math.log10(a[39] / c["residual_bound"]) + 1e-9, c)
            self.assertGreater(partial, 0, "test data: Cholesky certifies some of these rows")

    def test_a_certified_row_s_gap_and_flag_agree_at_every_min_gap(self):
        """float32 rank 20 of 600, values 1 down to 1.8e-6, a gap cut whose
        gap (1.11 decades) sits near --min-gap. A certified row reports
        `ambiguous_rank` exactly when its gap is under --min-gap, and never
        a gap over dense's. (The sketch once reported the whole list's
        least gap, 1.097, beside the second pairing's flag: no warning at
        --min-gap 1.106.)"""
        n, r = 600, 20
        rng = np.random.default_rng(3)
        q = np.linalg.qr(rng.standard_normal((n, n)))[0]
        lam = np.r_[np.logspace(0, np.log10(np.logspace(-6.5, -5, 7)[3]), r), np.zeros(n - r)]
        h = ((q * lam) @ q.T)
        h = ((h + h.T) / 2).astype(np.float32)
        f = self.path("near_min_gap.h5")
        with h5py.File(f, "w") as h5:
            h5["hessian"] = h
        partial = 0
        for min_gap in ("1.09", "1.1", "1.103", "1.106", "1.109", "1.111"):
            rows = {}
            for method in ("dense", "sketch", "lanczos"):
                p = run("volume", f, "-f", "jsonl", "--method", method, "--no-progress", "--cut", "gap",
                        "--min-gap", min_gap)
                self.assertEqual(p.returncode, 0, p.stderr)
                rows[method] = rows_of(p)[0]
            d = rows["dense"]
            self.assertEqual(d["rank"], r, d)
            for method in ("sketch", "lanczos"):
                c = rows[method]
                if c["method"] != method:
                    continue  # handed to dense: nothing of its own to check
                partial += 1
                with self.subTest(method=method, min_gap=min_gap):
                    self.assertTrue(c["certified"], c)
                    self.assertEqual(c["rank"], r)
                    self.assertEqual("ambiguous_rank" in c["warnings"], c["gap"] < float(min_gap), c)
                    self.assertLessEqual(c["gap"], d["gap"] + 1e-9, c)
        self.assertGreater(partial, 0, "test data: some partial rows are certified")

    def test_a_gap_cut_placed_among_unlisted_values_is_named_so(self):
        """Ten curved values (1 and 1e-4) in n = 400 under full-rank noise
        of 1e-5: Cholesky's rest bound (about 1e-3) covers every value it
        did not list, so a gap cut may lie among them and has no lower end.
        The fallback note says so; it once read "above tol 0"."""
        n = 400
        rng = np.random.default_rng(1)
        q = np.linalg.qr(rng.standard_normal((n, n)))[0]
        h = (q * np.r_[np.ones(5), np.full(5, 1e-4), np.zeros(n - 10)]) @ q.T
        e = rng.standard_normal((n, n)) * 1e-5 / np.sqrt(n)
        h = h + (e + e.T) / 2
        f = self.path("noisy_gap.h5")
        with h5py.File(f, "w") as h5:
            h5["hessian"] = (h + h.T) / 2
        p = run("volume", f, "-f", "jsonl", "--method", "cholesky", "--cut", "gap", "--no-progress")
        self.assertEqual(p.returncode, 0, p.stderr)
        c = rows_of(p)[0]
        self.assertEqual(c["method"], "dense", "test data: Cholesky hands this row to dense")
        note = c["solver"]["note"]
        self.assertRegex(note, r"^cholesky: rest bound [0-9.e-]+ places no gap cut \(the values over it are known only down to 0\)$")
        self.assertNotIn("tol 0", note)
        # An explicit cut at 0 is a tol of 0, and says so.
        for cut in (["--atol", "0"], ["--rtol", "0"]):
            p = run("volume", f, "-f", "jsonl", "--method", "cholesky", *cut, "--no-progress")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertRegex(rows_of(p)[0]["solver"]["note"], r"^cholesky: rest bound [0-9.e-]+ above tol 0$")


if __name__ == "__main__":
    clitest.main()
