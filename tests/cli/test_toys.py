#!/usr/bin/python3
"""Tests of basinvol validate, basinvol-toy and the regularized comparator on
toys made here with numpy/h5py (outside basinvol-toy), with answers computed
independently:

    log V   = log ω_r + (r/2)·log(2T) − ½ Σ_{λ≠0} log|λ|
    log V_λ = log ω_n + (n/2)·log(2T) − ½ Σ log(|λ| + λ_reg)

Usage: /usr/bin/python3 tests/cli/test_toys.py PATH/TO/basinvol PATH/TO/basinvol-toy
Writes only into a temporary directory. Monte Carlo comparisons are in units
of the standard error the tool reports, with the tool's fixed default seed.
"""
import csv
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import h5py
import numpy as np

BIN = TOY = None
HERE = os.path.dirname(os.path.abspath(__file__))
TOYS = os.path.normpath(os.path.join(HERE, "..", "..", "testdata", "toys"))


def run(*args, binary=None):
    p = subprocess.run([binary or BIN] + [str(a) for a in args], capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def log_ball(r):
    return (r / 2) * math.log(math.pi) - math.lgamma(r / 2 + 1)


def exact_log_volume(eigs, T):
    nz = [abs(x) for x in eigs if x != 0]
    r = len(nz)
    return log_ball(r) + r / 2 * math.log(2 * T) - 0.5 * sum(math.log(x) for x in nz)


def rotated(eigs, seed):
    rng = np.random.default_rng(seed)
    q, rr = np.linalg.qr(rng.standard_normal((len(eigs), len(eigs))))
    q = q * np.sign(np.diag(rr))
    h = q @ np.diag(eigs) @ q.T
    return (h + h.T) / 2


def write_toy(path, name, eigs, T=1.0, dtype=np.float64, seed=0, **override):
    eigs = [float(x) for x in eigs]
    attrs = {"expected_rank": sum(1 for x in eigs if x != 0), "expected_dim": sum(1 for x in eigs if x == 0),
             "expected_negative": sum(1 for x in eigs if x < 0), "expected_log_volume": exact_log_volume(eigs, T),
             "loss_threshold": T}
    attrs.update(override)
    with h5py.File(path, "a") as f:
        d = f.create_dataset(name, data=rotated(eigs, seed).astype(dtype))
        for k, v in attrs.items():
            d.attrs[k] = v


def checks(out):
    return json.loads(out)["checks"]


def check(rows, source_end, name):
    for c in rows:
        if c["source"].endswith(source_end) and c["check"] == name:
            return c
    raise KeyError((source_end, name))


class Toys(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.f = os.path.join(self.tmp.name, "toys.h5")

    def tearDown(self):
        self.tmp.cleanup()

    def test_suite_in_testdata_validates(self):
        rc, out, err = run("validate", os.path.join(TOYS, "suite.h5"), "-f", "json")
        self.assertEqual(rc, 0, err)
        s = json.loads(out)["summary"]
        self.assertEqual(s["fail"] + s["error"], 0)
        self.assertGreater(s["pass"], 50)

    def test_wrong_expectations_in_testdata_fail(self):
        rc, out, err = run("validate", os.path.join(TOYS, "bad.wrong_expected.h5"), "-f", "json")
        self.assertEqual(rc, 1)
        rows = checks(out)
        self.assertEqual(check(rows, "/rank", "rank")["status"], "fail")
        self.assertEqual(check(rows, "/log_volume", "log_volume")["status"], "fail")
        self.assertEqual(check(rows, "/learning_coefficient", "learning_coefficient")["status"], "fail")

    def test_outside_toys_pass_and_wrong_ones_fail(self):
        write_toy(self.f, "/parabola", [2, 2, 0], seed=1)
        write_toy(self.f, "/f32", [3, 1, 0.5, 0, 0], T=0.3, dtype=np.float32, seed=2)
        write_toy(self.f, "/saddle", [4, -1, 0.5, 0], seed=3)
        rc, out, err = run("validate", self.f, "-f", "json")
        self.assertEqual(rc, 0, out + err)
        # log V of x^2 + y^2 in R^3 is log(pi T).
        self.assertAlmostEqual(check(checks(out), "/parabola", "log_volume")["measured"], math.log(math.pi), places=12)
        for bad, override in [("rank", {"expected_rank": 3}), ("dim", {"expected_dim": 0}),
                              ("negative", {"expected_negative": 1}), ("log_volume", {"expected_log_volume": 1.0})]:
            g = os.path.join(self.tmp.name, "bad_%s.h5" % bad)
            write_toy(g, "/t", [2, 2, 0], seed=4, **override)
            rc, out, err = run("validate", g, "-f", "json")
            self.assertEqual(rc, 1, bad)
            c = check(checks(out), "/t", bad)
            self.assertEqual(c["status"], "fail")
            if bad != "log_volume":  # the note says what differs (it was empty)
                self.assertRegex(c["note"], r"^%s %d where %d is expected, at the cut tol = " % (
                    bad, c["measured"], list(override.values())[0]))
                self.assertNotIn("as given", c["note"])
        # Under a cut other than the generator's default, a failed count says so.
        g = os.path.join(self.tmp.name, "gap.h5")
        write_toy(g, "/t", [1, 1e-9, 0], seed=4)
        rc, out, err = run("validate", g, "--cut", "gap", "-f", "json")
        self.assertEqual(rc, 1, out)
        self.assertIn("(cut gap, as given; the expected counts are the default cut's, --cut auto)",
                      check(checks(out), "/t", "rank")["note"])
        # Wrong by a little, stored float32: still outside the stored-type bound.
        g = os.path.join(self.tmp.name, "bad_small.h5")
        write_toy(g, "/t", [2, 2, 0], dtype=np.float32, seed=5, expected_log_volume=math.log(math.pi) + 1e-4)
        self.assertEqual(run("validate", g)[0], 1)
        # --logv-tol widens it.
        self.assertEqual(run("validate", g, "--logv-tol", "1e-3")[0], 0)
        # But not the Monte Carlo count's: a volume 15 times its sampling box
        # (log V off by 3 nats, under --logv-tol 5) is refuted by the count.
        g = os.path.join(self.tmp.name, "far.h5")
        write_toy(g, "/t", [2, 2, 0], seed=6, expected_log_volume=math.log(math.pi) + 3)
        rc, out, err = run("validate", g, "--logv-tol", "5", "-f", "json")
        self.assertEqual(rc, 1, out)
        self.assertEqual(check(checks(out), "/t", "log_volume")["status"], "pass")
        mc = check(checks(out), "/t", "mc_log_volume")
        self.assertEqual(mc["status"], "fail")
        self.assertIn("times the box the ellipsoid fills", mc["note"])

    def test_float32_toy_saved_as_float64_validates_and_trust_stored_type_counts_its_rounding(self):
        # A float32 toy widened to float64 (its answers unchanged) is float32
        # data: validated at float32's floor, as the float32 toy is. Under
        # --trust-stored-type its float32 rounding is curvature at float64's
        # floor: the flat directions come out curved, and the dim check fails.
        eigs = [3.0, 2.5, 2.0, 1.5, 1.0, 0.75, 0.5, 0.25] + [0.0] * 32
        write_toy(self.f, "/f32", eigs, dtype=np.float32, seed=12)
        with h5py.File(self.f, "a") as f:
            f32 = f["/f32"]
            wide = f.create_dataset("/wide", data=f32[...].astype(np.float64))
            for k, v in f32.attrs.items():
                wide.attrs[k] = v
        rc, out, err = run("validate", self.f, "--mc-max-rank", "0", "-f", "json")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(check(checks(out), "/wide", "dim")["status"], "pass")
        rc, out, err = run("validate", self.f + ":/wide", "--trust-stored-type", "--mc-max-rank", "0", "-f", "json")
        self.assertEqual(rc, 1, out + err)
        dim = check(checks(out), "/wide", "dim")
        self.assertEqual(dim["status"], "fail")
        self.assertLess(dim["measured"], 32)

    def test_coarse_storage_and_one_curved_direction_pass(self):
        # float16 is allowed its own rounding (ε = 2^-10), not float64's; at
        # r = 1 the ellipsoid fills its box (SE 0) and Monte Carlo is allowed
        # the stored rounding the log_volume check allows.
        write_toy(self.f, "/f16", [3, 2, 0, 0], dtype=np.float16, seed=5)
        write_toy(self.f, "/r1_f32", [3, 0, 0], dtype=np.float32, seed=10)
        rc, out, err = run("validate", self.f, "-f", "json")
        rows = checks(out)
        self.assertEqual(rc, 0, out + err)
        f16 = check(rows, "/f16", "log_volume")
        self.assertGreater(abs(f16["measured"] - f16["expected"]), 1e-6, "float16 rounding is visible")
        self.assertGreater(f16["tolerance"], abs(f16["measured"] - f16["expected"]))
        self.assertEqual(check(rows, "/r1_f32", "mc_log_volume")["se"], 0)
        # Wrong by more than the rounding: still a failure, for both checks.
        g = os.path.join(self.tmp.name, "bad_r1.h5")
        write_toy(g, "/t", [3, 0, 0], dtype=np.float32, seed=10, expected_log_volume=exact_log_volume([3, 0, 0], 1) + 1e-4)
        rc, out, err = run("validate", g, "-f", "json")
        self.assertEqual(rc, 1)
        self.assertEqual(check(checks(out), "/t", "log_volume")["status"], "fail")
        self.assertEqual(check(checks(out), "/t", "mc_log_volume")["status"], "fail")

    def test_extreme_scales_keep_the_default_tolerance_and_expectation_finite(self):
        # ‖H‖_F near 1e200 (its square overflows double), subnormal
        # eigenvalues (1/λ overflows), T near DBL_MAX (2T overflows).
        d = self.tmp.name
        cases = (("big_wrong.h5", ["--eigenvalues", "2e200,2e190", "--set", "expected_log_volume=5"], 1),
                 ("big.h5", ["--eigenvalues", "2e200,2e190"], 0),
                 ("tiny.h5", ["--eigenvalues", "1e-310,1e-310,1e-310", "--rotate", 3], 0),
                 ("huge_T.h5", ["--eigenvalues", "2,2,0", "-T", "1e308"], 0))
        for name, args, status in cases:
            with self.subTest(name):
                f = os.path.join(d, name)
                self.assertEqual(run(f, *args, binary=TOY)[0], 0)
                rc, out, err = run("validate", f, "-f", "json")
                c = check(checks(out), "/toy", "log_volume")
                self.assertIsNotNone(c["tolerance"], out)
                self.assertEqual(c["status"], "pass" if status == 0 else "fail", out + err)
                # Monte Carlo samples a box of finite widths at either end of the scale (2T/λ overflows).
                self.assertEqual(check(checks(out), "/toy", "mc_log_volume")["status"], "pass" if status == 0 else "fail",
                                 out)
        with h5py.File(os.path.join(d, "huge_T.h5"), "r") as h:
            expected = float(h["toy"].attrs["expected_log_volume"])
        self.assertAlmostEqual(expected, math.log(math.pi) + math.log(2) + math.log(1e308) - 0.5 * math.log(4), delta=1e-9)

    def test_an_expectation_validate_cannot_use_is_an_error(self):
        for name, override, words in [
                ("typo", {"expected_volume": 5.0}, "expected_volume is not an expectation validate knows"),
                ("nan", {"expected_log_volume": float("nan")}, "expected_log_volume must be a finite number"),
                ("inf", {"expected_rank": float("inf")}, "expected_rank must be a finite number"),
                # A loss that is not one string was dropped unread: no check, exit 0.
                ("loss_number", {"toy_loss": 3.0}, "attribute toy_loss must be one string (the loss), got the number 3"),
                ("loss_array", {"toy_loss": np.array([b"x^2", b"y^2"])},
                 "attribute toy_loss must be one string (the loss), got an array of 2 values")]:
            g = os.path.join(self.tmp.name, name + ".h5")
            write_toy(g, "/t", [2, 2, 0], seed=4, **override)
            rc, out, err = run("validate", g, "-f", "json")
            self.assertEqual(rc, 1, name)
            self.assertIn(words, err, name)
            self.assertIn("error", [c["status"] for c in checks(out)], name)

    def test_monte_carlo_agrees_within_its_standard_error(self):
        rng = np.random.default_rng(7)
        for r in range(1, 9):
            eigs = list(np.exp(rng.uniform(-2, 2, r))) + [0.0] * 2
            write_toy(self.f, "/r%d" % r, eigs, T=0.5 + r / 4, seed=10 + r)
        rc, out, err = run("validate", self.f, "-f", "json", "--samples", "100000")
        self.assertEqual(rc, 0, err)
        for r in range(1, 9):
            c = check(checks(out), "/r%d" % r, "mc_log_volume")
            self.assertEqual(c["status"], "pass")
            exact = c["expected"]
            # Linear scale: |V_mc - V| <= 4 SE, SE = se_log * V_mc.
            v_mc, se = math.exp(c["measured"]), c["se"] * math.exp(c["measured"])
            self.assertLessEqual(abs(v_mc - math.exp(exact)), 4 * se + 1e-9 * math.exp(exact), r)
        # Toys of one curved rank at one path in different files draw their
        # own samples (they drew the same: one z-score for all); one toy
        # validated again, or copied elsewhere, draws the same.
        hits = []
        for i, eigs in enumerate(([2.0, 1.0, 0.0], [5.0, 0.1, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 0.0])):
            f = os.path.join(self.tmp.name, "same_path_%d.h5" % i)
            write_toy(f, "/toy", eigs, T=1.0 + (i == 3), seed=i)
            rc, out, err = run("validate", f, "-f", "json")
            self.assertEqual(rc, 0, err)
            hits.append(check(checks(out), "/toy", "mc_log_volume")["note"])
        self.assertEqual(len(set(hits)), 4, hits)
        copy = os.path.join(self.tmp.name, "elsewhere.h5")
        shutil.copyfile(os.path.join(self.tmp.name, "same_path_1.h5"), copy)
        rc, out, err = run("validate", copy, "-f", "json")
        self.assertEqual(check(checks(out), "/toy", "mc_log_volume")["note"], hits[1])
        # A curved rank over 8 is not sampled.
        write_toy(self.f, "/r9", [1.0] * 9, seed=1)
        rc, out, err = run("validate", self.f + ":/r9", "-f", "json")
        self.assertEqual(check(checks(out), "/r9", "mc_log_volume")["status"], "info")
        # Samples all inside the set (or none: rank 30 of a box 10^9 times
        # its size) give no spread to judge by: not a check, never a failure
        # of a correct toy.
        write_toy(self.f, "/r30", [1.0] * 30, seed=2)
        for args, where in (((":/r2", "--samples", "2", "--seed", "1"), "/r2"),
                            ((":/r30", "--mc-max-rank", "100", "--samples", "1000"), "/r30")):
            rc, out, err = run("validate", self.f + args[0], *args[1:], "-f", "json")
            self.assertEqual(rc, 0, out + err)
            c = check(checks(out), where, "mc_log_volume")
            self.assertEqual(c["status"], "info", c)
            self.assertIn("not checked", c["note"])

    def test_monte_carlo_never_fails_a_correct_toy_on_few_hits_and_finds_a_wrong_one(self):
        """Rank 8, eigenvalues 1e-2..1: about 1.6% of the box, so 500
        samples expect 7.9 hits and 1,500 expect 24. Judged by the
        estimate's own standard error (small when few samples hit), 5 of 200
        correct toys once failed at 500 samples. The count the reference
        predicts sets the standard error now, an exact binomial tail below
        100 expected hits, and "not checked" below 10: 200 independent
        copies (each draws its own samples) never fail; a volume 1.5 nats
        off fails at 20,000 samples."""
        eigs = list(np.geomspace(1e-2, 1, 8))
        write_toy(self.f, "/r8", eigs, seed=11)
        with h5py.File(self.f, "a") as f:
            for i in range(200):
                f.copy("/r8", "/copy_%03d" % i)
            del f["/r8"]
        for samples, statuses in (("500", {"info"}), ("1500", {"pass"})):
            rc, out, err = run("validate", self.f, "--samples", samples, "-f", "json")
            self.assertEqual(rc, 0, err)
            mc = [c for c in checks(out) if c["check"] == "mc_log_volume"]
            self.assertEqual(len(mc), 200)
            self.assertEqual({c["status"] for c in mc}, statuses, [c["note"] for c in mc if c["status"] == "fail"])
        g = os.path.join(self.tmp.name, "wrong_by_1.5.h5")
        write_toy(g, "/t", eigs, seed=11, expected_log_volume=exact_log_volume(eigs, 1) + 1.5)
        rc, out, err = run("validate", g, "--samples", "20000", "-f", "json")
        self.assertEqual(rc, 1)
        self.assertEqual(check(checks(out), "/t", "mc_log_volume")["status"], "fail")

    def test_a_zero_term_keeps_its_coordinate_wherever_it_stands(self):
        """x^2 + 0*y^2 once dropped y (n = 1, dim 0) where 0*x^2 + y^2
        kept x (n = 2, dim 1); x^2 + 0*y^4 claimed a learning coefficient
        of 0.5 for a set unbounded in y."""
        for loss in ("x^2 + 0*y^2", "0*x^2 + y^2", "x^2 + 0*y^4"):
            f = os.path.join(self.tmp.name, "zero_term.h5")
            if os.path.exists(f):
                os.remove(f)
            rc, out, err = run(f, "--loss", loss, binary=TOY)
            self.assertEqual(rc, 0, err)
            with h5py.File(f, "r") as h:
                d = h["toy"]
                self.assertEqual(d.shape, (2, 2), loss)
                self.assertEqual((d.attrs["expected_rank"], d.attrs["expected_dim"]), (1, 1), loss)
                self.assertNotIn("expected_learning_coefficient", d.attrs, loss)
        rc, out, err = run(os.path.join(self.tmp.name, "none.h5"), "--loss", "0*x^2", binary=TOY)
        self.assertEqual(rc, 2)
        self.assertIn("has no nonzero term", err)

    def test_like_terms_are_one_term(self):
        """x^2 + x^2 - 0.5*x^2 is 1.5*x^2: a convex coordinate whose
        sublevel set scales as T^(1/2). It was once taken for a loss with a
        negative term (no learning coefficient, no scan); x^2 - x^2 is no
        term at all, and coefficients that sum past float64 are refused."""
        f = os.path.join(self.tmp.name, "like.h5")
        rc, out, err = run(f, "--loss", "x^2 + x^2 - 0.5*x^2 + y^4", binary=TOY)
        self.assertEqual(rc, 0, err)
        with h5py.File(f, "r") as h:
            d = h["toy"]
            self.assertEqual(d.shape, (2, 2))
            self.assertEqual(d[0, 0], 3.0)  # d²/dx² of 1.5·x²
            self.assertEqual(d.attrs["expected_learning_coefficient"], 0.5 + 0.25)
        rc, out, err = run("validate", f, "-f", "json")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(check(checks(out), "/toy", "learning_coefficient")["status"], "pass")
        os.remove(f)
        rc, out, err = run(f, "--loss", "x^2 - x^2 + y^2", binary=TOY)
        self.assertEqual(rc, 0, err)
        with h5py.File(f, "r") as h:
            d = h["toy"]
            self.assertEqual(d.shape, (2, 2), "x keeps its coordinate")
            self.assertEqual((d.attrs["expected_rank"], d.attrs["expected_dim"]), (1, 1))
            self.assertNotIn("expected_learning_coefficient", d.attrs)
        # The sum is compensated: cancelling large terms keeps a small one.
        os.remove(f)
        rc, out, err = run(f, "--loss", "1e16*x^2 + x^2 - 1e16*x^2 + y^2", binary=TOY)
        self.assertEqual(rc, 0, err)
        with h5py.File(f, "r") as h:
            self.assertEqual(h["toy"].attrs["expected_rank"], 2)
        rc, out, err = run(os.path.join(self.tmp.name, "big.h5"), "--loss", "1e308*x^2 + 1e308*x^2", binary=TOY)
        self.assertEqual(rc, 2)
        self.assertIn("the coefficients of x0^2 sum past float64's range", err)
        rc, out, err = run(os.path.join(self.tmp.name, "none.h5"), "--loss", "x^2 - x^2", binary=TOY)
        self.assertEqual(rc, 2)
        self.assertIn("has no nonzero term", err)

    def test_a_log_volume_of_another_rank_is_not_passed(self):
        """A cut under the floor keeps noise as curvature: rank 10 where 2 is
        expected, and a tolerance (638 nats) widened by those values. The
        log_volume check once passed a 152-nat difference; volumes of
        different dimensions are not compared."""
        self.assertEqual(run(self.f, "--preset", "parabola", "--n", 10, "--rotate", 1, binary=TOY)[0], 0)
        rc, out, err = run("validate", self.f, "--atol", "1e-20", "-f", "json")
        self.assertEqual(rc, 1)
        c = check(checks(out), "/toy", "log_volume")
        self.assertEqual(c["status"], "fail")
        self.assertRegex(c["note"], r"^the rank is [0-9]+ where 2 is expected: volumes of different dimensions")

    def test_validate_tsv_and_csv_write_every_digit_json_does(self):
        """docs/output.md: a number in TSV or CSV is the shortest text that
        reads back as the same float64. `se` and `tolerance` were cut to 3
        digits (1.15e-12)."""
        self.assertEqual(run(self.f, "--preset", "parabola", binary=TOY)[0], 0)
        rows = {c["check"]: c for c in checks(run("validate", self.f, "-f", "json")[1])}
        for fmt, dialect in (("tsv", "excel-tab"), ("csv", "excel")):
            for cells in csv.DictReader(io.StringIO(run("validate", self.f, "-f", fmt)[1]), dialect=dialect):
                for key in ("expected", "measured", "se", "tolerance"):
                    want = rows[cells["check"]][key]
                    self.assertEqual(float(cells[key]) if cells[key] else None, want, (fmt, cells["check"], key))

    def test_a_refused_toy_of_many_is_named_with_its_seed(self):
        """--count draws toy i from --seed + i; a refusal names the toy and
        the seed that draws it alone (it once said only why)."""
        args = ["--flat", 3, "--curved", 20, "--negative", 7, "--lo", "1e-3", "--hi", "1e1", "--dtype", "float32"]
        rc, out, err = run(os.path.join(self.tmp.name, "many.h5"), "--count", 20, "--seed", 38, *args, binary=TOY)
        self.assertEqual(rc, 2)
        first = err.splitlines()[0]
        self.assertRegex(first, r"^basinvol-toy: toy_0([0-9][0-9]) \(--seed ([0-9]+)\): the smallest nonzero")
        i, seed = [int(x) for x in re.match(r".*toy_0([0-9]+) \(--seed ([0-9]+)\)", first).groups()]
        self.assertEqual(seed, 38 + i)
        rc, out, err = run(os.path.join(self.tmp.name, "alone.h5"), "--seed", seed, *args, binary=TOY)
        self.assertEqual(rc, 2, "the seed named draws the refused toy alone")
        self.assertIn("the smallest nonzero", err)

    def test_a_threshold_that_is_not_positive_and_finite_is_named(self):
        for t in ("0", "-1", "nan", "inf"):
            rc, out, err = run(os.path.join(self.tmp.name, "t.h5"), "--preset", "parabola", "-T", t, binary=TOY)
            self.assertEqual(rc, 2)
            self.assertIn("-T/--threshold must be a positive finite number, got " + t, err)

    def test_radial_gap_on_loguniform_spectrum(self):
        rc, out, err = run(self.f, "--flat", 0, "--curved", 1000, "--lo", "1e-4", "--hi", "1e2", "--seed", 3,
                           binary=TOY)
        self.assertEqual(rc, 0, err)
        with h5py.File(self.f, "r") as f:
            lam = np.abs(np.diag(f["/toy"][...]))
        # Independent closed form: (ln AM - ln GM)/2 of these eigenvalues, and of the log-uniform law.
        sample = 0.5 * (math.log(lam.mean()) - np.log(lam).mean())
        a, b = 1e-4, 1e2
        law = 0.5 * (math.log((b - a) / math.log(b / a)) - 0.5 * math.log(a * b))
        rc, out, err = run("validate", self.f, "-f", "json")
        self.assertEqual(rc, 0, err)
        g = check(checks(out), "/toy", "radial_gap_per_dim")
        self.assertAlmostEqual(g["expected"], sample, places=9)
        self.assertLess(abs(g["measured"] - sample), 0.02)   # finite-r (Jensen) bias ~0.003
        self.assertLess(abs(g["measured"] - law), 0.06)      # sampling of the spectrum itself

    def test_quartic_valley_learning_coefficient(self):
        rc, out, err = run(self.f, "--loss", "x^2 + y^4", "--rotate", 3, binary=TOY)
        self.assertEqual(rc, 0, err)
        with h5py.File(self.f, "r") as f:
            a = dict(f["/toy"].attrs)
        self.assertEqual(a["expected_dim"], 1)   # the Hessian calls y flat
        self.assertAlmostEqual(a["expected_learning_coefficient"], 0.75)
        rc, out, err = run("validate", self.f, "-f", "json")
        self.assertEqual(rc, 0, err)
        lc = check(checks(out), "/toy", "learning_coefficient")
        self.assertLessEqual(abs(lc["measured"] - 0.75), 4 * lc["se"])
        self.assertEqual(check(checks(out), "/toy", "hessian_exponent")["measured"], 0.5)

    def test_a_stored_spectrum_with_the_losss_counts_and_determinant_but_other_values_fails(self):
        # diag(1, 2, 4) rotated, under the loss x² + y² + z² (Hessian 2·I):
        # rank, negatives and the log-determinant agree, every check passed.
        for values, rotate in (("1,2,4", 1), ("1,4,0", 0)):
            rc, out, err = run(self.f, "--eigenvalues", values, "--rotate", rotate, "--set",
                               "toy_loss=x^2 + y^2 + " + ("z^2" if values == "1,2,4" else "z^4"), binary=TOY)
            self.assertEqual(rc, 0, err)
            rc, out, err = run("validate", self.f, "-f", "json")
            self.assertEqual(rc, 1, out)
            c = check(checks(out), "/toy", "hessian_of_loss")
            self.assertEqual(c["status"], "fail", values)
            self.assertIn("the stored matrix's eigenvalues are not the loss's second derivatives at 0: eigenvalue 3 "
                          "(ascending) is ", c["note"])
            self.assertIn("where the loss's is 2,", c["note"])

    def test_a_loss_of_another_dimension_than_the_matrix_is_an_error(self):
        # toy_loss x² + y² (or toy_n 2) on a 3×3 matrix: its learning
        # coefficient was measured in R², where the matrix's sublevel set is
        # unbounded along z, and passed.
        for extra in (("--set", "toy_loss=x^2 + y^2"), ("--set", "toy_loss=x^2 + y^2", "--set", "toy_n=2"),
                      ("--set", "toy_loss=x^2 + y^2", "--set", "toy_n=7")):
            rc, out, err = run(self.f, "--eigenvalues", "2,2,0", *extra, "--set",
                               "expected_learning_coefficient=1", binary=TOY)
            self.assertEqual(rc, 0, err)
            rc, out, err = run("validate", self.f, "-f", "json")
            self.assertEqual(rc, 1, out)
            c = check(checks(out), "/toy", "toy_loss")
            self.assertEqual(c["status"], "error", extra)
            self.assertRegex(c["note"], r"the loss has [27] coordinates \(toy_n or the highest it names\) where the "
                                        r"matrix is 3 x 3")
            self.assertNotIn("learning_coefficient", [x["check"] for x in checks(out)])

    def test_a_stored_hessian_that_is_not_the_losss_fails(self):
        # Stored eigenvalues {200, 0} under the loss x0² + x1⁴ (whose Hessian
        # is diag(2, 0)): every other check passed, exit 0.
        rc, out, err = run(self.f, "--eigenvalues", "200,0", "--rotate", 1, "--set", "toy_loss=x0^2 + x1^4",
                           "--set", "toy_n=2", binary=TOY)
        self.assertEqual(rc, 0, err)
        rc, out, err = run("validate", self.f, "-f", "json")
        self.assertEqual(rc, 1, out)
        c = check(checks(out), "/toy", "hessian_of_loss")
        self.assertEqual(c["status"], "fail")
        self.assertAlmostEqual(c["measured"] - c["expected"], -0.5 * math.log(100), delta=1e-12)  # log V ∝ −½ log λ
        # A loss claiming 100 times the curvature of a toy with a flat
        # direction: the loss's larger norm widened the rounding window past
        # the cut, and the check read "not compared" (exit 0).
        for claimed, shift in (("100*x^2 + 300*y^2", -math.log(100)), ("2*x^2 + 6*y^2", -math.log(2))):
            rc, out, err = run(self.f, "--loss", "x^2 + 3*y^2", "--n", 3, "--set", "toy_loss=" + claimed, binary=TOY)
            self.assertEqual(rc, 0, err)
            rc, out, err = run("validate", self.f, "-f", "json")
            self.assertEqual(rc, 1, out)
            c = check(checks(out), "/toy", "hessian_of_loss")
            self.assertEqual(c["status"], "fail", claimed)
            self.assertAlmostEqual(c["expected"] - c["measured"], shift, delta=1e-12)  # two curvatures, ½ log k each
        # The loss's own Hessian, rotated, passes; so does a float32 copy,
        # with curvatures float32 holds only as subnormals (rounded by 1e-5
        # of themselves: the stored type's bound, not float64's).
        for loss, dtype in (("x^2 + 3*y^2 + y^4", "float64"), ("x^2 + 3*y^2 + y^4", "float32"),
                            ("7e-43*x^2 + 7e-43*y^2", "float32")):
            rc, out, err = run(self.f, "--loss", loss, "--rotate", 1, "--dtype", dtype, binary=TOY)
            self.assertEqual(rc, 0, err)
            rc, out, err = run("validate", self.f, "-f", "json")
            self.assertEqual(rc, 0, out)
            self.assertEqual(check(checks(out), "/toy", "hessian_of_loss")["status"], "pass", (loss, dtype))
            # Both checks bound the same kept curvatures' rounding; over a
            # coarse type that bound holds the solver's error already, so
            # hessian_of_loss adds it only over float64.
            hol, lv = check(checks(out), "/toy", "hessian_of_loss"), check(checks(out), "/toy", "log_volume")
            if dtype == "float32":
                self.assertEqual(hol["tolerance"], lv["tolerance"], loss)
            else:
                self.assertGreaterEqual(hol["tolerance"], lv["tolerance"], loss)
        # A cut drawn at one of the loss's curvatures: either side is its
        # own, so the counts are not compared.
        rc, out, err = run(self.f, "--loss", "x^2 + y^2 + 0.5*z^2", "--rotate", 9, binary=TOY)
        rc, out, err = run("validate", self.f, "--atol", 1, "-f", "json")
        c = check(checks(out), "/toy", "hessian_of_loss")
        self.assertEqual(c["status"], "info")
        self.assertIn("a curvature of the loss lies at the cut", c["note"])
        # Cuts a rotated toy's rounding or the solver can cross: a float32
        # toy's flat directions (stored as ±1e-8) under a cut of 2e-10, and a
        # float64 curvature of 2 under a cut 8 ulps below it.
        for args, toy_args in ((("--rtol", "1e-10"), ("--loss", "x^2 + y^4", "--n", 3, "--dtype", "float32")),
                               (("--atol", "1.9999999999999982"),
                                ("--loss", "+".join("x%d^2" % i for i in range(10)))),):
            rc, out, err = run(self.f, *toy_args, "--rotate", 1, binary=TOY)
            self.assertEqual(rc, 0, err)
            rc, out, err = run("validate", self.f, *args, "-f", "json")
            self.assertEqual(check(checks(out), "/toy", "hessian_of_loss")["status"], "info", (args, out))
        # At a T whose loss values are subnormal the slice is not sampled.
        rc, out, err = run(self.f, "--preset", "quartic-valley", "-T", "5e-324", "--rotate", 2, binary=TOY)
        self.assertEqual(rc, 0, err)
        rc, out, err = run("validate", self.f, "-f", "json")
        self.assertEqual(rc, 0, out)
        self.assertIn("too small for the loss's values to keep their digits",
                      check(checks(out), "/toy", "true_slice_log_volume")["note"])

    def test_learning_coefficient_at_extreme_coefficients_and_past_scan_max_n(self):
        # x^p alone leaves double's range where c·x^p does not (1e-320·x⁴ is 1
        # at x = 1e80): the exponent is still Σ 1/p, 1/4 + 1/2 here.
        # A box of 1e-65 (1e130·x² ≤ 1) was found by bisection from [0, 1] in
        # 200 halvings, 1e4 times too wide: wrong exponents, no hits at 1e135.
        for i, (loss, lc) in enumerate([("1e-320*x^4 + y^2", 0.75), ("1e300*x^8 + 1e-300*y^16", 0.1875),
                                        ("1e-300*x^8 + y^4", 0.375), ("1e130*x^2", 0.5), ("1e300*x^2 + y^4", 0.75)]):
            name = "/l%d" % i
            c = self.learning_coefficient(name, ["--loss", loss], 0)
            with h5py.File(self.f, "r") as f:
                self.assertAlmostEqual(f[name].attrs["expected_learning_coefficient"], lc)
            self.assertEqual(c["status"], "pass", (loss, c))
            self.assertLessEqual(abs(c["measured"] - lc), 4 * c["se"], loss)
        self.assertEqual(self.learning_coefficient("/wrong", ["--loss", "1e130*x^2", "--set",
                                                              "expected_learning_coefficient=1.2"], 1)["status"], "fail")
        # Nine coordinates: past the default --scan-max-n the expectation is
        # checked against the exponent a loss of one power per coordinate has
        # exactly (an impossible one fails); raised, it is sampled and passes.
        loss = " + ".join("x%d^%d" % (i, 4 if i % 4 == 3 else 2) for i in range(9))
        c = self.learning_coefficient("/nine", ["--loss", loss], 0)
        self.assertEqual((c["status"], c["measured"]), ("pass", 4.0))
        self.assertIn("not sampled (n = 9 > --scan-max-n = 8): each coordinate has one power p", c["note"])
        c = self.learning_coefficient("/nine_wrong", ["--loss", loss, "--set", "expected_learning_coefficient=-7"], 1)
        self.assertEqual((c["status"], c["measured"]), ("fail", 4.0))
        c = self.learning_coefficient("/nine_typed", ["--loss", loss, "--set", "expected_learning_coefficient=4.0000001"],
                                      0)  # written to 8 digits: the exponent
        self.assertEqual(c["status"], "pass")
        c = self.learning_coefficient("/nine", None, 0, "--scan-max-n", 9)
        self.assertEqual(c["status"], "pass", c)
        self.assertLessEqual(abs(c["measured"] - 4.0), 4 * c["se"])
        # Two powers on one coordinate (no exact exponent at every T): past the sampler, not checked.
        c = self.learning_coefficient("/nine_mixed", ["--loss", loss + " + x0^4", "--set",
                                                      "expected_learning_coefficient=4"], 0)
        self.assertEqual(c["status"], "info")
        self.assertIn("not checked: n = 9 > --scan-max-n = 8", c["note"])
        # An expectation on a loss whose set is not box-bounded is an error
        # whatever n, not "not checked".
        c = self.learning_coefficient("/odd", ["--loss", "x0^2 - x1^2", "--n", 9,
                                               "--set", "expected_learning_coefficient=1"], 1)
        self.assertEqual(c["status"], "error")
        self.assertIn("negative or odd term", c["note"])
        # A box past double's range (|x| up to 1e310 at T = 1e300) is out of
        # the sampler's reach: checked against the exact exponent.
        c = self.learning_coefficient("/far", ["--loss", "1e-320*x^2", "-T", "1e300"], 0)
        self.assertEqual((c["status"], c["measured"]), ("pass", 0.5))
        self.assertIn("not sampled ({L <= T} reaches past 2^1022", c["note"])
        c = self.learning_coefficient("/far_wrong", ["--loss", "1e-320*x^2", "-T", "1e300", "--set",
                                                     "expected_learning_coefficient=0.1"], 1)
        self.assertEqual(c["status"], "fail")

    def learning_coefficient(self, name, toy_args, status, *validate_args):
        """Writes toy `name` (unless toy_args is None), validates it, expects
        exit `status`, and returns its learning_coefficient check."""
        if toy_args is not None:
            rc, out, err = run(self.f, "--append", "-d", name, *toy_args, binary=TOY)
            self.assertEqual(rc, 0, err)
        rc, out, err = run("validate", self.f + ":" + name, "-f", "json", *validate_args)
        self.assertEqual(rc, status, out + err)
        return check(checks(out), name, "learning_coefficient")

    def test_regularized_and_dimension_first_disagree(self):
        src = os.path.join(TOYS, "regularized.h5")
        rc, out, err = run("rank", src, "--regularized", "1e-3", "-f", "json")
        self.assertEqual(rc, 0, err)
        rows = {r["dataset"]: r for r in json.loads(out)["rows"]}
        self.assertEqual(rows["/valley"]["place"], 1)
        self.assertEqual(rows["/bowl"]["place"], 2)
        self.assertEqual(rows["/valley"]["place_regularized"], 2)
        self.assertEqual(rows["/bowl"]["place_regularized"], 1)
        for name, eigs in [("/valley", [1e4, 1e4, 0, 0]), ("/bowl", [0.01] * 4)]:
            want = log_ball(4) + 2 * math.log(2) - 0.5 * sum(math.log(abs(x) + 1e-3) for x in eigs)
            self.assertAlmostEqual(rows[name]["log_volume_regularized"], want, places=9)
        # A small enough lambda flips the regularized order back: it is lambda that decides.
        rc, out, err = run("rank", src, "--regularized", "1e-10", "-f", "json")
        rows = {r["dataset"]: r for r in json.loads(out)["rows"]}
        self.assertEqual(rows["/valley"]["place_regularized"], 1)

    def test_generator_refuses_unresolvable_spectra_and_bad_usage(self):
        rc, out, err = run(self.f, "--curved", 50, "--lo", "1e-4", "--hi", "1e2", "--dtype", "float32", binary=TOY)
        self.assertEqual(rc, 2)
        self.assertIn("ambiguous", err)
        self.assertFalse(os.path.exists(self.f))
        self.assertEqual(run(self.f, "--loss", "x + y^2", binary=TOY)[0], 2)
        self.assertEqual(run(self.f, "--preset", "nope", binary=TOY)[0], 2)
        self.assertEqual(run(self.f, binary=TOY)[0], 2)
        self.assertEqual(run(self.f, "--preset", "bowl", "-d", "relative", binary=TOY)[0], 2)
        for args, words in [(("--flat", "2000000000"), "over the memory budget"),
                            (("--eigenvalues", "1,0", "--count", "0"), "--count: must be a whole number from 1"),
                            (("--eigenvalues", "1,0", "-d", ""), "needs a path"),
                            (("--eigenvalues", "1,0", "-d", "/"), "must name a dataset, not a group, got '/'"),
                            (("--eigenvalues", "1,0", "-d", "/g/"), "must name a dataset, not a group, got '/g/'"),
                            (("--eigenvalues", "1,0", "--n", "5"), "--eigenvalues excludes --n"),
                            (("--eigenvalues", "2,2,0", "--negative", "1"), "--eigenvalues excludes --negative"),
                            (("--loss", "x^2", "--seed", "5"), "--loss excludes --seed"),
                            (("--loss", "1e400*x^2"), "expected a coefficient within float64's range, got '1e400'"),
                            (("--loss", "1e-400*x^2"), "expected a coefficient within float64's range, got '1e-400'"),
                            (("--loss", "0x10*x^2"), "loss '0x10*x^2'"),
                            (("--preset", "bowl", "--lo", "1e-3"), "--preset excludes --lo"),
                            (("--loss", "x^2", "--n", "100000"), "the loss's dimension (--n) is n = 100000"),
                            (("--loss", "x99999^2"), "over the memory budget"),
                            (("--curved", "3", "--n", "5"), "--n excludes --curved"),
                            (("--eigenvalues", "1e-400,1"), "'1e-400', which is not a finite number"),
                            (("--flat", "3", "--curved", "4", "--spread", "0.1"),
                             "--spread shapes a clustered spectrum; add --spectrum clustered"),
                            (("--flat", "3", "--curved", "4", "--clusters", "2", "--spectrum", "loguniform"),
                             "--clusters shapes a clustered spectrum; add --spectrum clustered")]:
            rc, out, err = run(self.f, *args, binary=TOY)
            self.assertEqual(rc, 2, args)
            self.assertIn(words, err)
            self.assertFalse(os.path.exists(self.f), args)
        # A subnormal eigenvalue is a number (refused here for its ambiguous rank, not as unreadable).
        rc, out, err = run(self.f, "--eigenvalues", "1e-320,1", binary=TOY)
        self.assertEqual(rc, 2)
        self.assertIn("ambiguous", err)
        rc, out, err = run("--list-presets", binary=TOY)
        self.assertEqual(rc, 0)
        self.assertIn("quartic-valley", out)

    def test_subnormal_toys_are_refused_or_validate(self):
        # Among subnormal numbers rounding moves values by the step 4.9e-324,
        # not by ε relative (ε·max|λ| underflows): a spectrum within 100
        # steps of it is refused, and a rotated one above it validates (its
        # tolerance counts the step, as basinvol's floor does).
        rc, out, err = run(self.f, "--eigenvalues", "5e-324,0", binary=TOY)
        self.assertEqual(rc, 2, err)
        self.assertIn("its rank would be ambiguous", err)
        # n = 1 too: n·η/2 rounded to 0 in double, and 5e-324 was written.
        for value, status in (("5e-324", 2), ("2.4e-322", 2), ("2.5e-322", 0)):
            rc, out, err = run(self.f, "--eigenvalues", value, binary=TOY)
            self.assertEqual(rc, status, (value, err))
        for i, args in enumerate((["--eigenvalues", "3e-320,2e-320,1e-320,0", "--rotate", "1"],
                                  ["--flat", "2", "--curved", "5", "--lo", "1e-318", "--hi", "1e-316", "--rotate", "2"])):
            self.assertEqual(run(self.f, "--append", "-d", "/s%d" % i, *args, binary=TOY)[0], 0)
        rc, out, err = run("validate", self.f, "-f", "tsv")
        self.assertEqual(rc, 0, out + err)

    def test_float32_subnormal_toys_validate_and_spectra_near_the_top_of_float64_are_written(self):
        # float32 keeps values under 1.2e-38 to its step 1.4e-45: a toy of
        # 1e-41 moves by 1e-4 relative when stored, which validate's float32
        # tolerance must count (the stored values' answer is basinvol's).
        # Near DBL_MAX, n·max|λ| overflows: the cut n·ε·max|λ| does not.
        for i, args in enumerate((["--eigenvalues", "3e-41"], ["--eigenvalues", "1e-40,1e-41", "--rotate", "1"],
                                  ["--flat", "5", "--curved", "5", "--lo", "1e-42", "--hi", "1e-41", "--rotate", "1"],
                                  ["--flat", "5", "--curved", "5", "--lo", "1e-39", "--hi", "1e-38"])):
            rc, out, err = run(self.f, "--append", "-d", "/f%d" % i, "--dtype", "float32", *args, binary=TOY)
            self.assertEqual(rc, 0, err)
        for i, args in enumerate((["--eigenvalues", "1e308,1e300"], ["--eigenvalues", "8e307,8e307,8e307"],
                                  ["--eigenvalues", "1e308,0", "--rotate", "1"])):
            rc, out, err = run(self.f, "--append", "-d", "/top%d" % i, *args, binary=TOY)
            self.assertEqual(rc, 0, err)
        # Past the top, a toy basinvol would refuse is not written (exit 2):
        # a rotation's sums overflow, or ‖H‖_F does.
        for args, what in ((["--eigenvalues", "1e308,1e308,0", "--rotate", "1"], "the toy's entries"),
                           (["--eigenvalues", "1.3e308,1.3e308"], "the toy's norm")):
            rc, out, err = run(self.f, "--append", "-d", "/over", *args, binary=TOY)
            self.assertEqual(rc, 2, err)
            self.assertIn(what, err)
            self.assertIn(" float64's range (1.8e308): scale its eigenvalues down", err)
        with h5py.File(self.f, "r") as f:
            self.assertNotIn("over", f)
        for method in ("dense", "cholesky", "auto"):
            rc, out, err = run("validate", self.f, "--method", method, "-f", "tsv")
            self.assertEqual(rc, 0, method + "\n" + out + err)
        # The tolerance still catches a wrong answer: 1e-3 nats off.
        with h5py.File(self.f, "a") as f:
            f["/f0"].attrs["expected_log_volume"] += 1e-3
        rc, out, err = run("validate", self.f + ":/f0", "-f", "tsv")
        self.assertEqual(rc, 1, out + err)

    def test_past_a_thousand_toys_names_keep_toy_order_and_preset_lists_report_failed_writes(self):
        rc, out, err = run(self.f, "-d", "/t", "--count", "1001", "--eigenvalues", "1,0", binary=TOY)
        self.assertEqual(rc, 0, err)
        with h5py.File(self.f, "r") as f:
            names = sorted(f["/t"])
            self.assertEqual(names[0], "toy_0000")
            self.assertEqual(names[-1], "toy_1000")
            self.assertEqual(len(names), 1001)
        with open("/dev/full", "w") as full:
            p = subprocess.run([TOY, "--list-presets"], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn("basinvol-toy: error: cannot write to standard output", p.stderr)

    def test_a_count_that_fails_under_a_cut_below_the_floor_says_so(self):
        # The expected answers are a cut over the floor's; an explicit cut
        # under it makes the dim noise's choice, and the failing row says so.
        self.assertEqual(run(self.f, "--eigenvalues", "1,1,0,0", "--rotate", "3", binary=TOY)[0], 0)
        rc, out, err = run("validate", self.f, "--atol", "1e-17", "-f", "tsv")
        self.assertEqual(rc, 1, out + err)
        rows = [line.split("\t") for line in out.splitlines()[1:]]
        failed = [r for r in rows if r[2] == "fail" and r[1] in ("rank", "dim")]
        self.assertTrue(failed, out)
        for r in failed:
            self.assertIn("lies under the noise floor", r[-1])
            self.assertIn("band 0..2", r[-1])

    def test_generator_counts_are_decimal_whole_numbers(self):
        for option in ["--flat", "--curved", "--negative", "--clusters", "--seed", "--rotate", "--count"]:
            for text in ["0x3", "-1", "2.5", "", "1e3"]:
                rc, out, err = run(self.f, "--curved", 4, option, text, binary=TOY)
                self.assertEqual(rc, 2, (option, text))
                self.assertIn(option + ": must be a whole number", err, (option, text))
                self.assertFalse(os.path.exists(self.f), (option, text))
        rc, out, err = run(self.f, "--loss", "x^2", "--n", "0x4", binary=TOY)
        self.assertEqual(rc, 2)
        self.assertIn("--n: must be a whole number", err)
        # A leading zero is decimal (08 is 8, not an octal error) and blanks are trimmed.
        rc, out, err = run(self.f, "--flat", "08", "--curved", " 3 ", "--negative", "01", "--seed", "010", binary=TOY)
        self.assertEqual(rc, 0, err)
        with h5py.File(self.f) as f:
            a = f["/toy"].attrs
            self.assertEqual((a["expected_dim"], a["expected_rank"], a["expected_negative"]), (8, 3, 1))
            self.assertIn("seed=10", a["toy_recipe"])
        os.remove(self.f)
        rc, out, err = run(self.f, "--curved", 2, "--count", "03", binary=TOY)
        self.assertEqual(rc, 0, err)
        with h5py.File(self.f) as f:
            self.assertEqual(sorted(f["/toys"].keys()), ["toy_000", "toy_001", "toy_002"])
        rc, out, err = run("validate", self.f, "--seed", "0x3")
        self.assertEqual(rc, 2)
        self.assertIn("--seed: must be a whole number", err)

    def test_generator_set_overrides_the_attributes_it_writes(self):
        # --set replaces what the generator writes (name, loss_threshold), as text or number.
        rc, out, err = run(self.f, "--preset", "parabola", "--name", "bar", "--set", "name=foo",
                           "--set", "loss_threshold=abc", "--set", "step=7", "--set", "expected_rank=3", binary=TOY)
        self.assertEqual(rc, 0, err)
        with h5py.File(self.f) as f:
            a = f["/toy"].attrs
            self.assertEqual(a["name"], "foo")
            self.assertEqual(a["loss_threshold"], "abc")
            self.assertEqual((a["step"], a["expected_rank"]), (7, 3))
        rc, out, err = run(self.f, "--append", "-d", "/n", "--curved", 2, "--set", "name=42", binary=TOY)
        self.assertEqual(rc, 0, err)
        with h5py.File(self.f) as f:
            self.assertEqual(f["/n"].attrs["name"], "42")
        rc, out, err = run("validate", self.f + ":/n")
        self.assertEqual(rc, 0, out + err)

    def test_a_far_wrong_expectation_fails_with_a_short_note(self):
        # V_mc/V = e^501: the note gives it in exponent form, not 218 digits cut mid-number.
        self.assertEqual(run(self.f, "--preset", "parabola", "--set", "expected_log_volume=-500", binary=TOY)[0], 0)
        rc, out, err = run("validate", self.f, "-f", "json")
        self.assertEqual(rc, 1)
        mc = check(checks(out), "/toy", "mc_log_volume")
        self.assertEqual(mc["status"], "fail")
        self.assertRegex(mc["note"], r"^V_mc/V = [0-9.]+e\+21[0-9] \+- [0-9.]+e\+[0-9]+ \([0-9.e+]+ SE\) from 200000 "
                                     r"samples, [0-9]+ hits where [0-9.]+e-[0-9]+ were expected \(exact binomial test\)$")

    def test_a_failed_write_leaves_out_as_it_was(self):
        # HDF5 refuses a 70,000-character attribute name once the matrix is
        # written: OUT keeps its old toys, and no partial file is left beside it.
        self.assertEqual(run(self.f, "--preset", "parabola", binary=TOY)[0], 0)
        for extra in [(), ("--count", 3)]:
            rc, out, err = run(self.f, "--curved", 2, "--set", "k" * 70000 + "=1", *extra, binary=TOY)
            self.assertEqual(rc, 1, extra)
            self.assertTrue(err.startswith("basinvol-toy: error: " + self.f + ":/toy"), err[:200])
            self.assertEqual(err.count("\n"), 1, err[:300])
            with h5py.File(self.f, "r") as f:
                self.assertEqual(list(f.keys()), ["toy"])
                self.assertEqual(f["/toy"].attrs["toy_preset"], "parabola")
            self.assertEqual(sorted(os.listdir(self.tmp.name)), ["toys.h5"])
        # With --append the earlier toys stay and the failed one is not there, nor its group.
        rc, out, err = run(self.f, "--append", "-d", "/g/sub", "--curved", 2, "--set", "k" * 70000 + "=1", binary=TOY)
        self.assertEqual(rc, 1)
        with h5py.File(self.f, "r") as f:
            self.assertEqual(list(f.keys()), ["toy"])
        # --append --count failing at its second toy (the path is taken) adds none of them.
        self.assertEqual(run(self.f, "--append", "-d", "/g/toy_001", "--curved", 1, binary=TOY)[0], 0)
        rc, out, err = run(self.f, "--append", "-d", "/g", "--count", 3, "--curved", 2, binary=TOY)
        self.assertEqual(rc, 1)
        self.assertTrue(err.startswith("basinvol-toy: error: " + self.f + ":/g/toy_001"), err[:200])
        with h5py.File(self.f, "r") as f:
            self.assertEqual(sorted(f.keys()), ["g", "toy"])
            self.assertEqual(list(f["/g"].keys()), ["toy_001"])
            self.assertEqual(f["/g/toy_001"].shape, (1, 1))
        self.assertEqual(sorted(os.listdir(self.tmp.name)), ["toys.h5"])
        # --append writes through a symbolic link, into the file it names.
        real = os.path.join(self.tmp.name, "real.h5")
        os.rename(self.f, real)
        os.symlink("real.h5", self.f)
        self.assertEqual(run(self.f, "--append", "-d", "/linked", "--curved", 1, binary=TOY)[0], 0)
        self.assertTrue(os.path.islink(self.f))
        with h5py.File(real, "r") as f:
            self.assertEqual(sorted(f.keys()), ["g", "linked", "toy"])
        # A failed --append --count into a file that did not exist leaves no file.
        new = os.path.join(self.tmp.name, "new.h5")
        rc, out, err = run(new, "--append", "-d", "/g", "--count", 2, "--curved", 2, "--set", "k" * 70000 + "=1",
                           binary=TOY)
        self.assertEqual(rc, 1)
        self.assertFalse(os.path.exists(new))

    def test_out_that_is_not_a_file_is_refused_and_a_link_keeps_its_place(self):
        # A FIFO or a directory is refused before anything is written and left
        # as it was (renaming the toys over it would replace it: as root,
        # OUT=/dev/null would replace the machine's). A character device as
        # well, where this user may make one (a copy of /dev/null's numbers).
        import stat
        others = []
        fifo = os.path.join(self.tmp.name, "fifo")
        os.mkfifo(fifo)
        others.append((fifo, stat.S_ISFIFO))
        folder = os.path.join(self.tmp.name, "folder")
        os.mkdir(folder)
        others.append((folder, stat.S_ISDIR))
        sock = os.path.join(self.tmp.name, "sock")
        import socket
        listening = socket.socket(socket.AF_UNIX)
        listening.bind(sock)
        self.addCleanup(listening.close)
        others.append((sock, stat.S_ISSOCK))
        device = os.path.join(self.tmp.name, "null")
        try:
            os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
            others.append((device, stat.S_ISCHR))
        except PermissionError:
            pass
        for path, kind in others:
            for extra in [(), ("--append",)]:
                rc, out, err = run(path, "--preset", "parabola", *extra, binary=TOY)
                self.assertEqual(rc, 2, (path, extra, err))
                self.assertTrue(err.startswith("basinvol-toy: OUT " + path + " is a"), err)
                self.assertTrue(kind(os.lstat(path).st_mode), path)
        # A symbolic link: the file it names gets the toys, the link stays.
        real = os.path.join(self.tmp.name, "real.h5")
        link = os.path.join(self.tmp.name, "link.h5")
        os.symlink("real.h5", link)
        self.assertEqual(run(link, "--preset", "parabola", binary=TOY)[0], 0)
        self.assertTrue(os.path.islink(link))
        with h5py.File(real, "r") as f:
            self.assertEqual(f["/toy"].attrs["toy_preset"], "parabola")
        # /dev/stdout names a descriptor, not a file to replace: a log a
        # shell appends to keeps its inode and its lines.
        log = os.path.join(self.tmp.name, "run.log")
        with open(log, "w") as f:
            f.write("before\n")
        inode = os.stat(log).st_ino
        with open(log, "a") as f:
            p = subprocess.run([TOY, "/dev/stdout", "--preset", "parabola"], stdout=f, stderr=subprocess.PIPE,
                               text=True, timeout=60)
        self.assertEqual(p.returncode, 2)
        self.assertIn("OUT /dev/stdout is descriptor 1 of this process", p.stderr)
        self.assertEqual((os.stat(log).st_ino, open(log).read()), (inode, "before\n"))

    def test_help_that_cannot_be_written_exits_1(self):
        for args in (["--help"], ["--version"]):
            with open("/dev/full", "w") as full:
                p = subprocess.run([TOY, *args], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
            self.assertEqual(p.returncode, 1, (args, p.stderr))
            self.assertTrue(p.stderr.startswith("basinvol-toy: error: cannot write to standard output"), p.stderr)

    def test_an_interrupted_write_leaves_out_as_it_was(self):
        # Ctrl-C part-way through --count: without --append the file beside OUT
        # goes at once; with it the run stops after the toy it is writing and
        # removes the toys it added. Either way OUT holds its old toys only.
        import signal
        import time
        self.assertEqual(run(self.f, "--preset", "parabola", binary=TOY)[0], 0)
        for extra in [(), ("--append", "-d", "/g")]:
            p = subprocess.Popen([TOY, self.f, "--count", "500", "--curved", "600", "--rotate", "1", *extra],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(1.5)  # a toy of n = 600 takes about 0.2 s: some are written
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 128 + signal.SIGINT, (extra, err))
            if extra:
                self.assertEqual(err, "basinvol-toy: interrupted by SIGINT: " + self.f +
                                 " holds the toys it held before\n")
            with h5py.File(self.f, "r") as f:
                self.assertEqual(list(f.keys()), ["toy"], extra)
                self.assertEqual(f["/toy"].attrs["toy_preset"], "parabola")
            self.assertEqual(sorted(os.listdir(self.tmp.name)), ["toys.h5"], extra)

    def test_validate_json_records_the_options_that_shaped_it(self):
        write_toy(self.f, "/t", [2.0, 1.0, 0.0])
        rc, out, err = run("validate", self.f, "--method", "dense", "--atol", "1e-3", "--rtol", "0.01",
                           "--samples", "5000", "-f", "json")
        self.assertEqual(rc, 0, out + err)
        options = json.loads(out)["context"]["options"]
        self.assertEqual((options["method"], options["atol"], options["rtol"], options["samples"]),
                         ("dense", 1e-3, 0.01, 5000))

    def test_validate_statuses(self):
        with h5py.File(self.f, "w") as f:
            f["/plain"] = np.eye(3)
        rc, out, err = run("validate", self.f)
        self.assertEqual(rc, 1)
        self.assertIn("nothing to validate", err)
        # One shard of one is the whole run: nothing to validate fails as
        # unsharded (an empty shard of several is a note, test_batch.py).
        rc, out, err = run("validate", self.f, "--shard", "1/1")
        self.assertEqual(rc, 1, err)
        self.assertIn("nothing to validate", err)
        self.assertEqual(run("validate", self.f, "--samples", "x")[0], 2)
        self.assertEqual(run("validate", os.path.join(self.tmp.name, "missing.h5"))[0], 1)
        write_toy(self.f, "/t", [2, 2, 0])
        for fmt in ["table", "tsv", "csv", "jsonl"]:
            rc, out, err = run("validate", self.f + ":/t", "-f", fmt)
            self.assertEqual(rc, 0, fmt)
            self.assertTrue(out.strip())


if __name__ == "__main__":
    BIN, TOY = sys.argv[1], sys.argv[2]
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:])
