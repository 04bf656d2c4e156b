#!/usr/bin/python3
"""basinvol-mpi against the serial tool: the same rows on 1, 2 and 4 ranks.

    /usr/bin/python3 tests/mpi/test_mpi.py BUILD_DIR SOURCE_DIR [unittest options]

BUILD_DIR holds basinvol and basinvol-mpi. Rows must match the serial tool's
(rank, dim, dim band, negative and the warnings exactly; log-volume, tol, gap
and the noise floor to 1e-9 relative) on dense float64 and float32 files,
gzip-chunked ones, a low-rank one, an asymmetric one (symmetrized),
structured ones (factors wide and tall, float32, mixed blocks: Grams summed
across ranks) and every broken file of testdata/ (error rows,
the same message, no hang); a rank killed mid-run ends the job with a
message. Checkpoints of a trained network agree with the same exact counts,
their log-volume within the row's log_volume_error (python3-torch; skipped
without it). Needs Debian's openmpi-bin, python3-numpy and python3-h5py."""
import json
import math
import os
import shutil
import re
import subprocess
import sys
import tempfile
import unittest

import numpy as np

BUILD = SOURCE = None
RANKS = (1, 2, 4)
# As root (CI), in containers without ptrace (no single-copy transfers).
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_btl_vader_single_copy_mechanism="none", OMPI_MCA_rmaps_base_oversubscribe="1")
EXACT = ("status", "n", "rank", "dim", "dim_low", "dim_high", "negative", "warnings", "cut", "stored_type",
         "structure", "certified", "step", "name")
CLOSE = ("log_volume", "log10_volume", "tol", "gap", "noise_floor", "threshold", "asymmetry")


def serial(*args, status=None, cwd=None):
    p = subprocess.run([os.path.join(BUILD, "basinvol"), *args], capture_output=True, text=True, env=ENV, cwd=cwd)
    if status is not None:
        assert p.returncode == status, p.stderr
    return p


def mpi(ranks, *args, timeout=300, wrapper=(), cwd=None):
    return subprocess.run(["mpirun", "-n", str(ranks), *wrapper, os.path.join(BUILD, "basinvol-mpi"), *args],
                          capture_output=True, text=True, env=ENV, timeout=timeout, cwd=cwd)


def rows(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def with_spectrum(values, seed):
    n = len(values)
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return (Q * np.asarray(values, dtype=float)) @ Q.T


class SameRowsAsSerial(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        sys.path.insert(0, os.path.join(SOURCE, "python"))
        import basinvol.export as bx
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.files = {}

        def put(key, H, **kw):
            f = os.path.join(d, key + ".h5")
            bx.write_hessian(f, H, **kw)
            cls.files[key] = f

        put("dense", with_spectrum(list(np.logspace(-2, 2, 150)) + [-0.5, -3.0] + [0.0] * 49, 1), step=7, name="d")
        put("float32", with_spectrum(list(np.logspace(-2, 2, 100)) + [0.0] * 31, 2), dtype="float32")
        # float32 data saved as float64: measured at float32's floor on every rank count.
        put("float32_as64", with_spectrum(list(np.logspace(-2, 2, 100)) + [0.0] * 31, 2).astype(np.float32)
            .astype(np.float64), dtype="float64")
        # n >= 1024: written chunked with shuffle + gzip (a partial last block too).
        put("chunked", with_spectrum(list(np.logspace(-3, 1, 500)) + [0.0] * 533, 3))
        put("lowrank", with_spectrum([10.0 * 0.7 ** i for i in range(12)] + [0.0] * 300, 4))
        H = with_spectrum(list(np.logspace(-1, 1, 40)) + [0.0] * 9, 5)
        H[0, 1] += 1e-9  # within --max-asymmetry: symmetrized, like the serial reader does
        put("asymmetric", H, hessian_error=1e-9)
        put("small", with_spectrum([2.0, 1.0, 0.0], 6))
        # n >= 500, low rank: sketched across ranks (float32 stored, and
        # chunked); large enough that 4 ranks' sketch budget n/20 holds it.
        curved = [10.0 * 0.8 ** i for i in range(28)] + [-2.0, -0.5]
        put("sketch", with_spectrum(curved + [0.0] * 1170, 12), step=3)
        put("sketch32", with_spectrum(curved + [0.0] * 1070, 13), dtype="float32")
        put("sketch32_as64", with_spectrum(curved + [0.0] * 1070, 13).astype(np.float32).astype(np.float64),
            dtype="float64")
        put("sketch_chunked", with_spectrum(curved + [0.0] * 1270, 14))
        # Adversarial: eigenvalues running down through the cut (10·0.35^i
        # reaches 1e-13 near i = 27), a hidden saddle among the small ones,
        # and a float32 one spanning nine decades.
        steep = [10.0 * 0.35 ** i for i in range(34)]
        steep[20] = -steep[20]
        put("sketch_at_cut", with_spectrum(steep + [0.0] * 1166, 16))
        put("sketch32_wide", with_spectrum(list(np.logspace(1, -8, 40)) + [-1e-3] + [0.0] * 1159, 17), dtype="float32")
        # Certifiable: seven decades down to a clear gap, two small negatives.
        put("sketch_small_saddle", with_spectrum([10.0 * 0.5 ** i for i in range(27)] + [-1e-6, -3e-7]
                                                 + [0.0] * 1171, 18))
        f = os.path.join(d, "structured.h5")
        bx.write_structure(f, "model", {"0_g": bx.Factor(np.random.default_rng(7).standard_normal((5, 30))),
                                        "1_d": bx.Diagonal(np.array([1.0, 0.0, 2.0]))})
        cls.files["structured"] = f
        rng = np.random.default_rng(8)
        for key, part, dtype in (
                ("factor_wide", bx.Factor(rng.standard_normal((23, 301)), 0.5), "float64"),   # m < n: GGᵀ
                ("factor_tall", bx.Factor(rng.standard_normal((97, 13))), "float64"),         # m > n: GᵀG
                ("factor32", bx.Factor(rng.standard_normal((17, 211))), "float32"),
                # s·GᵀG ordinary, GᵀG subnormal or past DBL_MAX: G is scaled by
                # a power of two over every rank's slab before its Gram is summed
                ("factor_tiny_gram", bx.Factor(1e-162 * rng.standard_normal((6, 40)), 1e308), "float64"),
                ("factor_huge_gram", bx.Factor(1e160 * rng.standard_normal((40, 6)), 1e-300), "float64"),
                ("mixed", {"0_g": bx.Factor(rng.standard_normal((9, 50))),
                           "1_k": bx.Kron(with_spectrum([2.0, 1.0, 0.0], 9), with_spectrum([1.0, 0.5], 10)),
                           "2_dense": with_spectrum([3.0, 0.0, 0.0, 1.0], 11),
                           "3_g": bx.Factor(rng.standard_normal((60, 7)))}, "float64"),
                # float32 data widened to float64: G weighed over every rank's
                # slab, the Kronecker factors on each rank, as the serial reader does
                ("widened32", {"0_g": bx.Factor(rng.standard_normal((9, 50)).astype(np.float32).astype(np.float64)),
                               "1_k": bx.Kron(*[(a @ a.T).astype(np.float32).astype(np.float64)
                                                for a in (rng.standard_normal((12, 9)), rng.standard_normal((7, 5)))])},
                 "float64")):
            f = os.path.join(d, key + ".h5")
            bx.write_structure(f, "hessian", part, dtype=dtype)
            cls.files[key] = f

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def same(self, got, ref, where):
        self.assertEqual(len(got), len(ref), where)
        for g, r in zip(got, ref):
            self.assertEqual(g["source"], r["source"], where)
            if r["status"] == "error":
                self.assertEqual(g["status"], "error", where)
                if "over the memory budget" in r["error"]:  # the distributed budget is per rank
                    self.assertRegex(g["error"], r"needs .* GB per rank on a \d+x\d+ grid, over the budget")
                else:
                    self.assertEqual(g["error"], r["error"], where)
                continue
            for k in EXACT:
                self.assertEqual(g[k], r[k], f"{where} {r['source']} {k}")
            for k in CLOSE:
                if r[k] is None:
                    self.assertIsNone(g[k], k)
                    continue
                delta = 1e-9 * abs(r[k]) + 1e-300
                if r["method"] != "dense" and (k == "gap" or (k == "tol" and r["cut"] == "gap")):
                    # A partial row's gap reaches down to its rest bound, and
                    # a gap cut sits at its middle: a bound whose rounding
                    # differs between reductions (~1e-6 of it for float32).
                    # 1e-5 decades is 2e-5 of it (the cut: half as much).
                    delta += 1e-5 if k == "gap" else 2e-5 * abs(r[k])
                self.assertAlmostEqual(g[k], r[k], delta=delta, msg=f"{where} {r['source']} {k}")

    def same_on_every_rank_count(self, srcs, ref, status, timeout=300):
        for p in RANKS:
            with self.subTest(ranks=p):
                r = mpi(p, "volume", *srcs, "-f", "jsonl", timeout=timeout)
                self.assertEqual(r.returncode, status, r.stderr)
                got = rows(r.stdout)
                self.same(got, ref, f"-n {p}")
                # One line on stderr per error row, as basinvol writes it.
                said = [l for l in r.stderr.splitlines() if l.startswith("basinvol-mpi: error: ")]
                self.assertEqual(said, ["basinvol-mpi: error: " + g["error"] for g in got if g["status"] == "error"])

    def test_volume_rows_equal_the_serial_dense_rows(self):
        names = ["dense", "float32", "float32_as64", "chunked", "lowrank", "asymmetric", "small", "structured", "factor_wide",
                 "factor_tall", "factor32", "factor_tiny_gram", "factor_huge_gram", "mixed", "widened32"]
        srcs = [self.files[k] for k in names]
        ref = rows(serial("volume", *srcs, "--method", "dense", "-f", "jsonl", status=0).stdout)
        flagged = [name for name, r in zip(names, ref) if "float32_values" in r["warnings"]]
        self.assertEqual(flagged, ["float32_as64", "widened32"])
        self.same_on_every_rank_count(srcs, ref, 0)
        # A row's seconds are its read, solve and measure: at least its solver's.
        got = rows(mpi(2, "volume", self.files["dense"], "-f", "jsonl").stdout)
        self.assertGreaterEqual(got[0]["seconds"], got[0]["solver"]["seconds"])

    def test_low_rank_hessians_are_sketched_across_ranks(self):
        """A low-rank Hessian (n >= 500) is sketched across ranks, as the serial
        sketch does it (rows equal to the serial --method sketch rows); one
        whose rank is too high for the sketch gets every eigenvalue."""
        names = ["sketch", "sketch32", "sketch_chunked", "sketch32_as64"]
        srcs = [self.files[k] for k in names]
        ref = rows(serial("volume", *srcs, "--method", "sketch", "-f", "jsonl", status=0).stdout)
        self.assertEqual([r["method"] for r in ref], ["sketch"] * 4)
        self.assertEqual([r["negative"] for r in ref], [2] * 4)
        self.assertEqual([r["rank"] for r in ref], [30] * 4)
        self.assertEqual([r["warnings"] for r in ref], [["saddle"]] * 3 + [["saddle", "float32_values"]])
        for p in RANKS:
            with self.subTest(ranks=p):
                r = mpi(p, "volume", *srcs, self.files["chunked"], "-f", "jsonl")
                self.assertEqual(r.returncode, 0, r.stderr)
                got = rows(r.stdout)
                self.same(got[:4], ref, f"-n {p}")
                self.assertEqual([g["method"] for g in got], ["sketch"] * 4 + ["dense"])
                self.assertTrue(all(g["certified"] for g in got))
        # --regularized needs the unseen eigenvalues within a micro-nat: as in
        # the serial tool, the sketch then hands over to the eigensolve.
        # (The float32 one: its certificate carries float32 rounding, ~1e-6,
        # which certifies the cut but not log det(H + 0.01 I) to a micro-nat.)
        noisy = [self.files["sketch32"], "--regularized", "0.01", "-f", "jsonl"]
        ref = rows(serial("volume", *noisy, status=0).stdout)
        got = rows(mpi(2, "volume", *noisy).stdout)
        self.same(got, ref, "--regularized")
        self.assertEqual((got[0]["method"], ref[0]["method"]), ("dense", "dense"))
        self.assertAlmostEqual(got[0]["log_volume_regularized"], ref[0]["log_volume_regularized"],
                               delta=1e-9 * abs(ref[0]["log_volume_regularized"]))
        # --method sketch asks for it at any n; the rows are the serial sketch's.
        small = rows(serial("volume", self.files["lowrank"], "--method", "sketch", "-f", "jsonl", status=0).stdout)
        got = rows(mpi(2, "volume", self.files["lowrank"], "--method", "sketch", "-f", "jsonl").stdout)
        self.same(got, small, "--method sketch")
        self.assertEqual(got[0]["method"], small[0]["method"])

    def test_sketch_against_the_dense_answer_on_adversarial_spectra(self):
        """Eigenvalues through the cut, a small hidden saddle, float32 over nine
        decades: whatever basinvol-mpi's automatic plan keeps (sketch or
        dense), the counts are the serial dense answer's exactly and the
        log-volume is within the row's own error bar."""
        srcs = [self.files[k] for k in ("sketch_at_cut", "sketch32_wide", "sketch_small_saddle")]
        dense = rows(serial("volume", *srcs, "--method", "dense", "-f", "jsonl", status=0).stdout)
        self.assertEqual([r["negative"] for r in dense], [1, 0, 2])
        sketched = rows(serial("volume", *srcs, "--method", "sketch", "-f", "jsonl", status=0).stdout)
        self.assertEqual([r["method"] for r in sketched], ["dense", "dense", "sketch"])
        for p in RANKS:
            got = rows(mpi(p, "volume", *srcs, "-f", "jsonl").stdout)
            # The first two have no decided cut in the sketch (dense finishes); the third is certified.
            self.assertEqual([g["method"] for g in got], ["dense", "dense", "sketch"])
            # A fallback row says why the sketch was left and counts its work,
            # as the serial tool's row does (the same sketch: the same growth
            # and products). Its certificate here is at rounding level, summed
            # over other tiles: equal to a factor of two, not to the digit.
            note = r"^sketch: the cut is not decided by the partial spectrum \(rest bound (\S+), tol (\S+), band down to (\S+)\)$"
            for g, r in zip(got[:2], sketched[:2]):
                with self.subTest(ranks=p, source=r["dataset"]):
                    mine, theirs = (re.match(note, x["solver"]["note"]) for x in (g, r))
                    self.assertIsNotNone(mine, g["solver"]["note"])
                    self.assertIsNotNone(theirs, r["solver"]["note"])
                    self.assertEqual(mine.group(2), theirs.group(2))  # the same tol
                    self.assertLess(abs(math.log(float(mine.group(1)) / float(theirs.group(1)))), math.log(2))
                    # The same products, unless the distributed budget (k ≤ n/(5P)) stops the growth sooner.
                    if p == 1:
                        self.assertEqual(g["solver"]["matvecs"], r["solver"]["matvecs"])
                        self.assertEqual(g["solver"]["passes"], r["solver"]["passes"])
                    self.assertGreater(g["solver"]["matvecs"], 0)
                    self.assertLessEqual(g["solver"]["matvecs"], r["solver"]["matvecs"])
                    self.assertGreaterEqual(g["solver"]["passes"], 2)  # the sketch's, and the eigensolve
            for g, r in zip(got, dense):
                with self.subTest(ranks=p, source=r["dataset"], method=g["method"]):
                    for k in ("status", "n", "rank", "dim", "dim_low", "dim_high", "negative", "warnings", "cut"):
                        self.assertEqual(g[k], r[k], k)
                    self.assertLessEqual(abs(g["log_volume"] - r["log_volume"]),
                                         max(g["log_volume_error"], r["log_volume_error"]))

    def test_real_checkpoints_agree_within_their_error_bar(self):
        """Checkpoints of a trained network (the digits example, n = 610):
        rank, dim, band and negatives exact; the log-volume within the row's
        own log_volume_error. Kept eigenvalues near the cut are known to
        ε·‖H‖ absolute, so two eigensolvers (or one with other BLAS threads)
        differ there by far more than 1e-9 relative, and by far less than
        the bar."""
        try:
            import torch  # noqa: F401
        except ImportError:
            self.skipTest("torch is not installed (the example trains with it)")
        f = os.path.join(self.tmp.name, "digits.h5")
        subprocess.run([sys.executable, os.path.join(SOURCE, "examples", "digits", "train.py"), "--out", f,
                        "--steps", "25,250"], check=True, capture_output=True, timeout=300)
        ref = rows(serial("volume", f, "-f", "jsonl", status=0).stdout)
        self.assertEqual(len(ref), 2)
        for p in RANKS:
            run = mpi(p, "volume", f, "-f", "jsonl")
            self.assertEqual(run.returncode, 0, run.stderr[-2000:])
            got = rows(run.stdout)
            self.assertEqual([g["source"] for g in got], [r["source"] for r in ref], "ranks %d" % p)
            for g, r in zip(got, ref):
                with self.subTest(ranks=p, checkpoint=r["dataset"]):
                    for k in ("status", "n", "rank", "dim", "dim_low", "dim_high", "negative", "warnings", "cut"):
                        self.assertEqual(g[k], r[k], k)
                    self.assertLessEqual(abs(g["log_volume"] - r["log_volume"]), r["log_volume_error"])
                    self.assertAlmostEqual(g["tol"], r["tol"], delta=1e-9 * r["tol"])

    def test_options_travel(self):
        f = self.files["dense"]
        for flags in (["-T", "0.25", "--negatives", "drop"], ["--cut", "gap"], ["--rtol", "2e-3"],
                      ["--regularized", "0.01"], ["--hessian-error", "1e-6"], ["--no-progress"]):
            ref = rows(serial("volume", f, "--method", "dense", "-f", "jsonl", *flags, status=0).stdout)
            r = mpi(2, "volume", f, "-f", "jsonl", *flags)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.same(rows(r.stdout), ref, " ".join(flags))
            if "--regularized" in flags:
                self.assertAlmostEqual(rows(r.stdout)[0]["log_volume_regularized"], ref[0]["log_volume_regularized"],
                                       delta=1e-9 * abs(ref[0]["log_volume_regularized"]))

    def test_rank_and_output_file(self):
        srcs = [self.files[k] for k in ("dense", "lowrank", "small", "structured")]
        ref = rows(serial("rank", *srcs, "--method", "dense", "-f", "jsonl", status=0).stdout)
        out = os.path.join(self.tmp.name, "ranked.jsonl")
        r = mpi(4, "rank", *srcs, "-f", "jsonl", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "")
        with open(out) as fh:
            got = rows(fh.read())
        self.same(got, ref, "rank")
        self.assertEqual([g["place"] for g in got], [x["place"] for x in ref])
        # -o naming an input is refused before any work; the input stays.
        import shutil
        victim = os.path.join(self.tmp.name, "victim.h5")
        shutil.copy(self.files["small"], victim)
        with open(victim, "rb") as fh:
            before = fh.read()
        r = mpi(2, "volume", victim, "-f", "jsonl", "-o", victim)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("is an input of this run", r.stderr)
        with open(victim, "rb") as fh:
            self.assertEqual(fh.read(), before)

    def test_broken_files_are_error_rows_on_every_rank_count(self):
        data = os.path.join(SOURCE, "testdata")
        bad = sorted(os.path.join(data, f) for f in os.listdir(data) if f.startswith("bad.") and f.endswith(".h5"))
        self.assertGreater(len(bad), 5)
        missing = os.path.join(self.tmp.name, "missing.h5")
        srcs = bad + [missing, self.files["small"]]
        ref = rows(serial("volume", *srcs, "--method", "dense", "-f", "jsonl").stdout)
        self.assertEqual(ref[-1]["status"], "ok")
        self.assertIn("missing.h5", ref[-2]["error"])
        self.same_on_every_rank_count(srcs, ref, 1, timeout=240)

    def test_a_tight_address_space_limit_is_an_error_row_never_a_hang(self):
        # OpenBLAS retries forever for a work buffer it cannot map: under
        # ulimit -v, ranks that spent the room on tiles spun in pdsyev. Each
        # rank's budget is now what the limit leaves beside that buffer.
        # mpirun runs under the limit too: a run it could not start is let
        # be; one that started must end, with its row.
        if os.environ.get("BASINVOL_SANITIZE"):
            self.skipTest("AddressSanitizer reserves terabytes of address space: RLIMIT_AS cannot apply")
        import h5py
        f = os.path.join(self.tmp.name, "address_space.h5")
        g = np.random.default_rng(16).standard_normal((2500, 2500))
        with h5py.File(f, "w") as h:
            h["hessian"] = (g + g.T) / 2
        command = 'ulimit -v "$1" && exec timeout -k 5 100 mpirun -n 1 "$0" volume "$2" -f jsonl'
        started = 0
        for kb in (300000, 340000, 360000, 380000, 400000, 420000, 460000, 2000000):
            p = subprocess.run(["bash", "-c", command, os.path.join(BUILD, "basinvol-mpi"), str(kb), f],
                               capture_output=True, text=True, env=ENV, timeout=150)
            self.assertNotIn(p.returncode, (124, 137), "ulimit -v %d: a hang (%s)" % (kb, p.stderr[-300:]))
            got = rows(p.stdout)
            if not got:
                continue  # mpirun itself could not start under this limit
            started += 1
            self.assertEqual(len(got), 1)
            if got[0]["status"] == "error":
                self.assertIn("memory", got[0]["error"], "ulimit -v %d" % kb)
                # A budget the limit left at nothing is named so: more ranks cannot help.
                if "over the budget of 0 GB" in got[0]["error"]:
                    self.assertIn("the address-space limit (ulimit -v) leaves no memory beside", got[0]["error"])
                    self.assertNotIn("more ranks spread it", got[0]["error"])
            if kb >= 2000000:
                self.assertEqual(got[0]["status"], "ok", "ulimit -v %d: %s" % (kb, p.stderr[-300:]))
        self.assertGreater(started, 3)
        # Factors on 2 and 4 ranks: each rank's room is its own (rank 0 maps
        # less), so the refusal of a structure is agreed, or the ranks that
        # went on wait in the Gram for those that did not.
        two = os.path.join(self.tmp.name, "two_factors.h5")
        rng = np.random.default_rng(16)
        with h5py.File(two, "w") as h:
            for name, shape in (("a", (300, 2500)), ("b", (2500, 1800))):
                g = h.create_group(name)
                g.attrs["structure"] = "factor"
                g["G"] = rng.standard_normal(shape)
        command = 'ulimit -v "$1" && exec timeout -k 5 100 mpirun -n "$3" "$0" volume "$2" -f jsonl'
        for ranks in (2, 4):
            for kb in (600000, 700000, 760000, 800000, 900000):
                p = subprocess.run(["bash", "-c", command, os.path.join(BUILD, "basinvol-mpi"), str(kb), two,
                                    str(ranks)], capture_output=True, text=True, env=ENV, timeout=150)
                self.assertNotIn(p.returncode, (124, 137), "P %d, ulimit -v %d: a hang" % (ranks, kb))
                got = rows(p.stdout)
                if got:
                    self.assertEqual([g["dataset"] for g in got], ["/a", "/b"], "P %d, ulimit -v %d" % (ranks, kb))

    def test_under_an_address_space_limit_every_hessian_has_the_same_budget(self):
        # OpenBLAS's buffer, mapped by the first Hessian's solve, was counted
        # again for the next: a rank's budget fell by 0.134 GB after it, so
        # a Hessian passed or failed by its place in the list. And a
        # structure was held to basinvol's reserve on top of the rank's
        # budget, which already leaves the buffer out: refused while the
        # rank's budget held it many times over. Under one limit, a huge
        # Hessian's refusal names the same budget before and after others,
        # and small structures are analysed wherever they stand.
        if os.environ.get("BASINVOL_SANITIZE"):
            self.skipTest("AddressSanitizer reserves terabytes of address space: RLIMIT_AS cannot apply")
        import h5py
        f = os.path.join(self.tmp.name, "budget_kept.h5")
        rng = np.random.default_rng(17)
        with h5py.File(f, "w") as h:
            h.create_dataset("huge", shape=(100000, 100000), dtype="f8")  # never read: refused by its size
            h["dense"] = with_spectrum(np.linspace(1.0, 2.0, 600), 5)
            d = h.create_dataset("diag", data=np.linspace(1.0, 2.0, 51))
            d.attrs["structure"] = "diagonal"
            g = h.create_group("factor")
            g.attrs["structure"] = "factor"
            g["G"] = rng.standard_normal((300, 2500))
        srcs = [f + ":/huge", f + ":/dense", f + ":/diag", f + ":/factor", f + ":/huge"]
        command = 'ulimit -v "$1" && exec timeout -k 5 100 mpirun -n "$3" "$0" volume "${@:4}" -f jsonl'

        def run(kb, ranks):
            p = subprocess.run(["bash", "-c", command, os.path.join(BUILD, "basinvol-mpi"), str(kb), "", str(ranks),
                                *srcs], capture_output=True, text=True, env=ENV, timeout=150)
            self.assertNotIn(p.returncode, (124, 137), "ulimit -v %d: a hang (%s)" % (kb, p.stderr[-300:]))
            got = rows(p.stdout)
            self.assertEqual(len(got), 5, p.stderr[-500:])
            budgets = [float(re.search(r"over the budget of ([0-9.e+-]+) GB", r["error"]).group(1))
                       for r in (got[0], got[4])]
            return got, budgets

        for ranks in (1, 2):
            _, (first, _) = run(2000000, ranks)
            # A limit that leaves each rank about 90 MB: the serial reserve
            # (0.21 GB) alone is more, the structures' need (under 10 MB) far
            # less. The first solve's own allocations may keep a few MB
            # (measured: up to 2.2); the buffer counted twice took 134.
            kb = int(2000000 - (first - 0.09) * 1e9 / 1024)
            got, (before, after) = run(kb, ranks)
            self.assertLess(before, 0.15, (ranks, kb, before))
            self.assertAlmostEqual(after, before, delta=0.02, msg=(ranks, kb))
            self.assertEqual([r["status"] for r in got[1:4]], ["ok"] * 3, (ranks, kb, [r.get("error") for r in got]))

    def test_entries_whose_sum_overflows_are_symmetrized_without_it(self):
        # (a + b)/2 of 1.5e308 on the diagonal, or of a near-symmetric pair
        # of 9e307, overflows though ‖H‖_F is finite: a/2 + b/2, in both
        # tools, gives the matrix numpy gives.
        import h5py
        f = os.path.join(self.tmp.name, "near_overflow.h5")
        mats = {"diagonal": np.array([[1.5e308, 1e300], [1.000001e300, 1e307]]),
                "pair": np.array([[1e300, 9e307], [9e307 * (1 + 4e-16), 1e300]])}
        with h5py.File(f, "w") as h:
            for name, m in mats.items():
                h[name] = m
        ref = rows(serial("volume", f, "-f", "jsonl", status=0).stdout)
        for row in ref:
            m = mats[row["dataset"][1:]]
            lam = np.linalg.eigvalsh(m / 2 / 1e300 + m.T / 2 / 1e300) * 1e300
            self.assertEqual((row["rank"], row["negative"]), (2, int((lam < 0).sum())))
            # log ω₂ + (r/2)·log 2T − ½·Σ log|λ| with r = 2, T = 1
            want = math.log(math.pi) + math.log(2) - 0.5 * sum(math.log(abs(x)) for x in lam)
            self.assertAlmostEqual(row["log_volume"], want, delta=1e-9 * abs(want))
        for p in (1, 2):
            got = rows(mpi(p, "volume", f, "-f", "jsonl").stdout)
            self.assertEqual([(g["dataset"], g["rank"], g["negative"]) for g in got],
                             [(r["dataset"], r["rank"], r["negative"]) for r in ref])
            for g, r in zip(got, ref):
                self.assertAlmostEqual(g["log_volume"], r["log_volume"], delta=1e-9 * abs(r["log_volume"]))

    def test_a_long_double_hessian_is_refused_not_read_as_zeros(self):
        # Tiles read as float64 would hold zeros for values under float64's
        # range (a Hessian read entirely flat) or inf past it: refused by
        # type on every rank count; the serial tool checks the values.
        import h5py
        f = os.path.join(self.tmp.name, "long_double.h5")
        with h5py.File(f, "w") as h:
            h["hessian"] = np.diag([1.0, 2.0, 3.0]).astype(np.longdouble) * np.longdouble("1e-400")
            g = h.create_group("factor")
            g.attrs["structure"] = "factor"
            g["G"] = np.arange(1.0, 13.0).reshape(3, 4).astype(np.longdouble) * np.longdouble("1e-400")
        for p in (1, 2, 4):
            r = mpi(p, "volume", f, "-f", "jsonl")
            self.assertEqual(r.returncode, 1, r.stderr)
            got = rows(r.stdout)
            self.assertEqual([row["dataset"] for row in got], ["/factor", "/hessian"])
            for row in got:
                self.assertEqual(row["status"], "error")
                self.assertIn("whose range reaches past float64's; basinvol-mpi reads float64 and narrower",
                              row["error"])

    def test_a_file_one_rank_cannot_open_is_an_error_row_not_a_hang(self):
        # A node-local path or a missing copy: rank 0 lists and opens the
        # file, rank 1 (another working directory) finds nothing; or the file
        # opens on both but an external link in it points at a file only
        # rank 0's directory holds (HDF5 would open the target collectively,
        # and rank 1 fails there). A dense Hessian and a factor are each an
        # error row naming that rank; the next source is analysed; nobody
        # waits in a collective call.
        import h5py
        seen, empty = (os.path.join(self.tmp.name, d) for d in ("seen", "empty"))
        os.makedirs(seen)
        os.makedirs(empty)
        rng = np.random.default_rng(7)

        def hessians(path):
            with h5py.File(path, "w") as f:
                a = rng.standard_normal((65, 65))
                f["H"] = a @ a.T
                g = f.create_group("F")
                g.attrs["structure"] = "factor"
                g["G"] = rng.standard_normal((5, 40))

        hessians(os.path.join(seen, "h.h5"))
        hessians(os.path.join(seen, "target.h5"))
        for where in (seen, empty):
            with h5py.File(os.path.join(where, "main.h5"), "w") as f:
                f["H"] = h5py.ExternalLink("target.h5", "/H")
                f["F"] = h5py.ExternalLink("target.h5", "/F")
        # A FIFO where rank 1's copy should be: HDF5's open of it waits for a
        # writer forever, and rank 1 walks a structure itself (rank 0's
        # listing alone is timed). A dense Hessian, a factor and a blocks
        # model are each an error row naming rank 1; the next source is analysed.
        with h5py.File(os.path.join(seen, "p.h5"), "w") as f:
            a = rng.standard_normal((40, 40))
            f["H"] = a @ a.T
            g = f.create_group("F")
            g.attrs["structure"] = "factor"
            g["G"] = rng.standard_normal((5, 40))
            b = f.create_group("B")
            b.attrs["structure"] = "blocks"
            b["d"] = np.eye(3)
            b.create_dataset("v", data=np.arange(1.0, 4.0)).attrs["structure"] = "diagonal"
        os.mkfifo(os.path.join(empty, "p.h5"))
        # Rank 1's copy of main.h5 whose external links' target is a FIFO there.
        piped = os.path.join(self.tmp.name, "piped")
        os.makedirs(piped)
        shutil.copy(os.path.join(empty, "main.h5"), piped)
        os.mkfifo(os.path.join(piped, "target.h5"))
        good = os.path.abspath(self.files["small"])
        exe = os.path.abspath(os.path.join(BUILD, "basinvol-mpi"))
        for src, words, other in (("h.h5:/H", "cannot open file", empty), ("h.h5:/F", "cannot open file", empty),
                                  ("main.h5:/H", "cannot open dataset", empty), ("main.h5:/F", "cannot open", empty),
                                  ("p.h5:/H", "is not a regular file", empty), ("p.h5:/F", "is not a regular file", empty),
                                  ("p.h5:/B", "is not a regular file", empty),
                                  ("main.h5:/H", "main.h5:/H: external link to target.h5:/H leads to target.h5, "
                                   "which is not a regular file", piped),
                                  ("main.h5:/F", "main.h5:/F: external link to target.h5:/F leads to target.h5, "
                                   "which is not a regular file", piped)):
            p = subprocess.run(["mpirun", "-n", "1", "--wdir", seen, exe, "volume", src, good, "-f", "jsonl", ":",
                                "-n", "1", "--wdir", other, exe, "volume", src, good, "-f", "jsonl"],
                               capture_output=True, text=True, env=ENV, timeout=120)
            self.assertEqual(p.returncode, 1, p.stderr)
            got = rows(p.stdout)
            self.assertEqual([r["status"] for r in got], ["error", "ok"], p.stdout)
            self.assertIn(words, got[0]["error"])
            self.assertIn("MPI rank 1 of 2", got[0]["error"])
            if src.startswith("h.h5"):
                self.assertIn("No such file or directory", got[0]["error"])
        # External raw data that rank 1 finds short or as a FIFO (rank 0's
        # listing refuses both), and a copy chunked where rank 0's is
        # contiguous (one rank reading collectively, the other not): error
        # rows, never a hang. A copy of another shape or layout on rank 1 is
        # named as rank 1's copy, not as a file that changed or corrupt data.
        H = rng.standard_normal((40, 40))
        H = H @ H.T
        for case in ("short", "fifo", "layout", "shape"):
            a_dir, b_dir = (os.path.join(self.tmp.name, case + d) for d in ("A", "B"))
            for where in (a_dir, b_dir):
                os.makedirs(where)
                with h5py.File(os.path.join(where, "x.h5"), "w") as f:
                    if case == "shape":
                        f["H"] = H if where == a_dir else H[:30, :30]
                    elif case == "layout":
                        f.create_dataset("H", data=H, chunks=(8, 8) if where == b_dir else None)
                    else:
                        f.create_dataset("H", shape=H.shape, dtype="f8", external=[("raw.bin", 0, h5py.h5f.UNLIMITED)])
                        H.tofile(os.path.join(where, "raw.bin"))
            if case == "short":
                os.truncate(os.path.join(b_dir, "raw.bin"), H.nbytes - 8)
            elif case == "fifo":
                os.remove(os.path.join(b_dir, "raw.bin"))
                os.mkfifo(os.path.join(b_dir, "raw.bin"))
            p = subprocess.run(["mpirun", "-n", "1", "--wdir", a_dir, exe, "volume", "x.h5", good, "-f", "jsonl", ":",
                                "-n", "1", "--wdir", b_dir, exe, "volume", "x.h5", good, "-f", "jsonl"],
                               capture_output=True, text=True, env=ENV, timeout=120)
            got = rows(p.stdout)
            self.assertEqual([r["status"] for r in got][1:], ["ok"], (case, p.stdout, p.stderr))
            if case in ("shape", "layout"):
                self.assertEqual(got[0]["status"], "error", case)
                self.assertIn("(on MPI rank 1 of 2, where rank 0 reads the listed one: every rank must read the "
                              "same file, and this rank's copy differs)", got[0]["error"])
                if case == "layout":  # it read as corrupt data: "addr overflow"
                    self.assertIn("x.h5:/H: dataset is chunked in 8x8 here, contiguous in rank 0's copy",
                                  got[0]["error"])
            else:
                self.assertEqual(got[0]["status"], "error", case)
                self.assertIn("external raw-data file 'raw.bin'", got[0]["error"])
                self.assertIn("on MPI rank 1 of 2", got[0]["error"])

    def test_a_structure_whose_copy_fails_on_some_ranks_is_an_error_row_not_a_hang(self):
        # Every rank walks its own copy of a structure; a diagonal with a NaN,
        # or a factor missing, on one node only ends that rank's walk while
        # the others go on to sum a factor's Gram. The row is an error naming
        # the failing rank (or the differing walks) on every split of the
        # ranks between the two copies, and the next source is analysed.
        import h5py
        rng = np.random.default_rng(11)
        G, d = rng.standard_normal((5, 40)), rng.random(7) + 0.5
        good = os.path.abspath(self.files["small"])
        exe = os.path.abspath(os.path.join(BUILD, "basinvol-mpi"))
        for case in ("nan before the factor", "nan after the factor", "factor missing", "factor of another shape"):
            dirs = [os.path.join(self.tmp.name, case.replace(" ", "_") + side) for side in ("A", "B")]
            for where in dirs:
                os.makedirs(where)
                broken = where == dirs[1]
                with h5py.File(os.path.join(where, "x.h5"), "w") as f:
                    m = f.create_group("S")
                    m.attrs["structure"] = "blocks"
                    values = d.copy()
                    if broken and case.startswith("nan"):
                        values[3] = np.nan
                    x = m.create_dataset("2_diag" if "after" in case else "0_diag", data=values)
                    x.attrs["structure"] = "diagonal"
                    if not (broken and case == "factor missing"):
                        g = m.create_group("1_factor")
                        g.attrs["structure"] = "factor"
                        g["G"] = G[:4] if broken and case == "factor of another shape" else G
            for first, second in ((1, 1), (2, 1), (1, 2)):
                p = subprocess.run(["mpirun", "-n", str(first), "--wdir", dirs[0], exe, "volume", "x.h5:/S", good,
                                    "-f", "jsonl", ":", "-n", str(second), "--wdir", dirs[1], exe, "volume",
                                    "x.h5:/S", good, "-f", "jsonl"],
                                   capture_output=True, text=True, env=ENV, timeout=120)
                got = rows(p.stdout)
                self.assertEqual([r["status"] for r in got], ["error", "ok"], (case, first, second, p.stderr))
                self.assertEqual(p.returncode, 1, p.stderr)
                if case.startswith("nan"):
                    self.assertIn("non-finite value nan at [3]", got[0]["error"])
                    self.assertIn(f"(on MPI rank {first} of {first + second})", got[0]["error"])
                else:
                    self.assertIn("walks of the structure differ", got[0]["error"])
                    if "shape" in case:
                        self.assertIn("factors of different shapes: G's rows from 4 to 5, its columns 40", got[0]["error"])

    def test_ranks_with_different_memory_budgets_agree_on_the_smallest(self):
        # Nodes with less memory, or more ranks, have smaller budgets: a rank
        # that alone found a structure over its budget skipped it while the
        # others summed its factor's Gram (MPI_ERR_TRUNCATE). Every rank
        # holds the smallest budget.
        import h5py
        f = os.path.join(self.tmp.name, "budget.h5")
        with h5py.File(f, "w") as h:
            s = h.create_group("S")
            s.attrs["structure"] = "blocks"
            g = s.create_group("0_factor")
            g.attrs["structure"] = "factor"
            g["G"] = np.random.default_rng(3).standard_normal((6, 30))
            s["1_dense"] = np.eye(10)
        exe = os.path.abspath(os.path.join(BUILD, "basinvol-mpi"))
        good = os.path.abspath(self.files["small"])
        p = subprocess.run(["mpirun", "-n", "1", exe, "volume", f, good, "-f", "jsonl", ":", "-n", "1", exe, "volume",
                            f, good, "-f", "jsonl", "--max-memory", "10B"],
                           capture_output=True, text=True, env=ENV, timeout=120)
        got = rows(p.stdout)
        self.assertEqual([r["status"] for r in got], ["error", "error"], p.stderr)
        self.assertIn("budget", got[0]["error"])
        self.assertEqual(p.returncode, 1, p.stderr)

    def test_an_unusable_loss_threshold_of_a_structure_is_the_serial_row_on_every_rank_count(self):
        # Rank 0 alone holds the attributes: it must refuse before the ranks
        # sum the factor's Gram together, or the others wait there forever.
        import h5py
        f = os.path.join(self.tmp.name, "threshold.h5")
        with h5py.File(f, "w") as h:
            for name, value in (("F", -1.0), ("S", "half")):
                g = h.create_group(name)
                g.attrs["structure"] = "factor"
                g.attrs["loss_threshold"] = value
                g["G"] = np.random.default_rng(1).standard_normal((4, 9))
        srcs = [f, self.files["small"]]
        ref = rows(serial("volume", *srcs, "-f", "jsonl", status=1).stdout)
        self.assertEqual([r["status"] for r in ref], ["error", "error", "ok"])
        self.same_on_every_rank_count(srcs, ref, 1, timeout=120)

    def test_values_that_break_the_rules(self):
        import h5py
        d = self.tmp.name
        cases = {"nan": np.eye(70), "asym": with_spectrum(np.linspace(1, 2, 70), 8)}
        cases["nan"][37, 12] = np.nan
        cases["asym"][3, 50] += 0.5
        srcs = []
        for name, H in cases.items():
            f = os.path.join(d, name + ".h5")
            with h5py.File(f, "w") as h:
                h["hessian"] = H
            srcs.append(f)
        for name, shape, at in (("g_wide_nan", (6, 90), (4, 71)), ("g_tall_inf", (90, 6), (63, 2))):
            G = np.ones(shape)
            G[at] = np.nan if "nan" in name else np.inf
            G[at[0] + 1, at[1]] = np.nan  # a later one: the first in row-major order is reported
            f = os.path.join(d, name + ".h5")
            with h5py.File(f, "w") as h:
                grp = h.create_group("hessian")
                grp.attrs["structure"] = "factor"
                grp["G"] = G
            srcs.append(f)
        # 64-bit integers at or past 2^53, in one rank's part of a dense Hessian and of G.
        big = np.eye(70, dtype=np.int64)
        big[60, 65] = big[65, 60] = -(2**53 + 1)
        G = np.ones((6, 90), dtype=np.int64)
        G[5, 80] = 2**60
        for name, H, factor in (("int64_dense", big, False), ("int64_factor", G, True)):
            f = os.path.join(d, name + ".h5")
            with h5py.File(f, "w") as h:
                if factor:
                    grp = h.create_group("hessian")
                    grp.attrs["structure"] = "factor"
                    grp["G"] = H
                else:
                    h["hessian"] = H
            srcs.append(f)
        # Entries near DBL_MAX whose ‖H‖_F (and an eigenvalue) overflow: the
        # serial message, not the eigensolver's failure to converge.
        f = os.path.join(d, "overflow.h5")
        with h5py.File(f, "w") as h:
            h["hessian"] = np.full((3, 3), 7e307)
        srcs.append(f)
        ref = rows(serial("volume", *srcs, "-f", "jsonl", status=1).stdout)
        self.assertIn("‖H‖_F overflows float64", ref[6]["error"])
        self.assertIn("non-finite value nan at [37, 12]", ref[0]["error"])
        self.assertIn("not symmetric", ref[1]["error"])
        self.assertIn("/hessian/G: non-finite value nan at [4, 71]", ref[2]["error"])
        self.assertIn("/hessian/G: non-finite value inf at [63, 2]", ref[3]["error"])
        self.assertIn("int64 value of about -9007199254740992 at [60, 65] is at or beyond 2^53", ref[4]["error"])
        self.assertIn("/hessian/G: int64 value of about 1152921504606846976 at [5, 80] is at or beyond 2^53", ref[5]["error"])
        self.same_on_every_rank_count(srcs, ref, 1)

    def test_memory_budget_per_rank(self):
        f = self.files["chunked"]  # n = 1033: 2 · 8 · n² / P bytes of tiles
        r = mpi(2, "volume", f, "-f", "jsonl", "--max-memory", "4M")
        self.assertEqual(r.returncode, 1, r.stderr)
        (row,) = rows(r.stdout)
        self.assertIn("GB per rank on a 1x2 grid, over the budget", row["error"])
        r = mpi(4, "volume", f, "-f", "jsonl", "--max-memory", "5M")
        self.assertEqual(r.returncode, 0, r.stderr)
        # A factor: each rank's slab of G and the Gram (23 x 301 G: 2 ranks hold 23 x 150 each).
        f = self.files["factor_wide"]
        r = mpi(2, "volume", f, "-f", "jsonl", "--max-memory", "20K")
        self.assertEqual(r.returncode, 1, r.stderr)
        (row,) = rows(r.stdout)
        self.assertRegex(row["error"], r"/hessian/G: G of 23 x 301 needs .* GB per rank \(a slab of 15[01] and the 23 x 23 Gram\)")
        r = mpi(2, "volume", f, "-f", "jsonl", "--max-memory", "40K")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_json_context_names_the_tool_and_its_ranks(self):
        r = mpi(2, "volume", self.files["small"], "-f", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        context = json.loads(r.stdout)["context"]
        self.assertEqual((context["tool"], context["ranks"]), ("basinvol-mpi", 2))

    def test_usage_errors_stop_every_rank(self):
        r = mpi(2, "volume", self.files["small"], "--method", "lanczos")
        self.assertEqual(r.returncode, 2)
        self.assertIn("not available across ranks", r.stderr)
        # Worded as basinvol words a usage error, once (rank 0), with where to look.
        # An empty SOURCE (a shell variable left unset) as well.
        for bad in (["-T", "-1"], ["--cut", "zz"], ["-o", self.files["small"]], [""]):
            r = mpi(2, "volume", self.files["small"], *bad)
            s = serial("volume", self.files["small"], *bad, status=2)
            self.assertEqual(r.returncode, 2)
            ours = [l for l in r.stderr.splitlines() if l.startswith(("basinvol-mpi", "Run "))]  # not mpirun's notice
            self.assertEqual([l.replace("basinvol-mpi", "basinvol") for l in ours], s.stderr.splitlines())
        r = mpi(2, "volume")
        self.assertEqual(r.returncode, 2)
        # A globbed checkpoint named like an option (-ojunk.h5: -o junk.h5) is
        # refused on every rank, as basinvol refuses it.
        where = os.path.dirname(self.files["small"])
        shutil.copy(self.files["small"], os.path.join(where, "-ojunk.h5"))
        r = mpi(2, "volume", "-ojunk.h5", cwd=where)
        s = serial("volume", "-ojunk.h5", status=2, cwd=where)
        self.assertEqual(r.returncode, 2)
        self.assertEqual([l.replace("basinvol-mpi", "basinvol") for l in r.stderr.splitlines()
                          if l.startswith("basinvol-mpi")], s.stderr.splitlines())
        self.assertIn("reads as an option (-o junk.h5)", s.stderr)
        self.assertFalse(os.path.exists(os.path.join(where, "junk.h5")))
        # basinvol's other commands are named as its alone; a typo as unknown.
        for word, said in (("compare", "'compare' is basinvol's alone: run basinvol compare"),
                           ("spectrum", "'spectrum' is basinvol's alone: run basinvol spectrum"),
                           ("volum", "unknown command 'volum'")):
            r = mpi(2, word, self.files["small"])
            self.assertEqual(r.returncode, 2)
            self.assertEqual([l for l in r.stderr.splitlines() if l.startswith(("basinvol-mpi", "Run "))],
                             ["basinvol-mpi: %s (basinvol-mpi runs volume and rank)" % said,
                              "Run 'basinvol-mpi --help' for usage."])
        # --read-timeout (a child process per read) is not offered, and refused by name.
        help_text = subprocess.run([os.path.join(BUILD, "basinvol-mpi"), "volume", "--help"], capture_output=True,
                                   text=True, env=ENV).stdout
        self.assertIn("--max-memory", help_text)
        self.assertNotIn("--read-timeout", help_text)
        r = mpi(2, "volume", self.files["small"], "--read-timeout", "5")
        self.assertEqual(r.returncode, 2)
        self.assertIn("read_timeout", r.stderr.replace("--read-timeout", "read_timeout"))
        self.assertIn("not available in basinvol-mpi", r.stderr)

    def test_a_killed_rank_ends_the_job(self):
        """Rank 1 is killed (SIGKILL) a second into a run of many Hessians:
        mpirun ends the job with a message naming the rank, no hang."""
        wrapper = os.path.join(self.tmp.name, "kill_rank1.sh")
        with open(wrapper, "w") as fh:
            fh.write('#!/bin/sh\nif [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then\n'
                     '  "$@" & pid=$!; sleep 1; kill -9 $pid; wait $pid; exit 137\nfi\nexec "$@"\n')
        os.chmod(wrapper, 0o755)
        srcs = [self.files["chunked"]] * 200
        r = mpi(2, "volume", *srcs, "-f", "jsonl", timeout=120, wrapper=(wrapper,))
        self.assertNotEqual(r.returncode, 0)
        self.assertLess(len(rows(r.stdout)), 200)
        self.assertRegex(r.stderr, r"(?i)mpirun")

    def test_a_corrupt_chunk_names_what_hdf5_found(self):
        import h5py
        d = tempfile.mkdtemp(dir=self.tmp.name)
        f = os.path.join(d, "corrupt.h5")
        H = with_spectrum(list(np.logspace(-2, 2, 600)), 6)
        with h5py.File(f, "w") as h:
            h.create_dataset("h", data=H, chunks=(100, 100), compression="gzip")
        with h5py.File(f, "r") as h:
            info = h["h"].id.get_chunk_info(7)
        with open(f, "r+b") as fh:
            fh.seek(info.byte_offset + 10)
            fh.write(bytes(50))
        ref = rows(serial("volume", f, "-f", "jsonl", status=1).stdout)[0]
        self.assertIn(f + ":/h: cannot decompress chunk at [", ref["error"])
        for ranks in (1, 2, 3):
            with self.subTest(ranks=ranks):
                r = mpi(ranks, "volume", f, "-f", "jsonl")
                self.assertEqual(r.returncode, 1, r.stderr)
                row = rows(r.stdout)[0]
                self.assertEqual(row["status"], "error")
                self.assertEqual(row["error"], ref["error"])

    def test_a_chunk_that_inflates_to_another_size_is_an_error_row(self):
        """HDF5's deflate filter keeps the head of a chunk that inflates to
        more than its size and leaves the tail of a shorter one unwritten:
        each rank checks its share of the chunks, as the serial reader does."""
        import h5py
        import zlib
        d = tempfile.mkdtemp(dir=self.tmp.name)
        H = with_spectrum(list(np.logspace(-2, 2, 50)) + [0.0] * 150, 7)
        for name, factor in (("long", 2), ("short", 0.5)):
            with self.subTest(name):
                f = os.path.join(d, name + ".h5")
                with h5py.File(f, "w") as h:
                    ds = h.create_dataset("h", shape=H.shape, dtype="f8", chunks=(50, 50), compression="gzip")
                    for i in range(0, 200, 50):
                        for j in range(0, 200, 50):
                            block = np.ascontiguousarray(H[i:i + 50, j:j + 50])
                            if (i, j) == (150, 150):
                                block = np.resize(block, int(block.size * factor))
                            ds.id.write_direct_chunk((i, j), zlib.compress(block.tobytes()))
                why = ("it inflates to more than the 20000 bytes it holds" if factor > 1 else
                       "it inflates to 10000 bytes; it holds 20000")
                self.assert_serial_error_row(f, "cannot decompress chunk at [150, 150]: " + why + " (corrupt data)")

    def test_a_checksummed_chunk_of_another_size_is_the_serial_error_row(self):
        """HDF5 1.10 copies a whole chunk out of a short Fletcher-32 one
        (zeros pass the checksum) and checksums one of under 4 bytes past
        the end of memory: each rank checks its share, as the serial reader does."""
        import h5py
        d = tempfile.mkdtemp(dir=self.tmp.name)
        H = with_spectrum(list(np.logspace(-2, 2, 50)) + [0.0] * 150, 7)
        for name, raw, why in (("short", bytes(100), "is stored in 100 bytes, 96 without its checksum; it holds 20000"),
                               ("tiny", bytes(2), "is stored in 2 bytes, fewer than its 4-byte Fletcher-32 checksum")):
            with self.subTest(name):
                f = os.path.join(d, "fletcher_" + name + ".h5")
                with h5py.File(f, "w") as h:
                    ds = h.create_dataset("h", data=H, chunks=(50, 50), fletcher32=True)
                    ds.id.write_direct_chunk((150, 100), raw)
                self.assert_serial_error_row(f, "the chunk at [150, 100] " + why + " (corrupt data)")
        # Without filters: the index's sizes must add up to whole chunks.
        f = os.path.join(d, "unfiltered_short.h5")
        with h5py.File(f, "w") as h:
            h.create_dataset("h", data=H, chunks=(50, 50)).id.write_direct_chunk((150, 100), bytes(100))
        self.assert_serial_error_row(f, "its chunk index gives its 16 chunks 300100 bytes in all, where each holds "
                                        "20000 stored as it is (corrupt data)")

    def test_a_factor_chunk_that_inflates_to_another_size_is_the_serial_error_row(self):
        import h5py
        import zlib
        d = tempfile.mkdtemp(dir=self.tmp.name)
        G = np.random.default_rng(5).standard_normal((30, 60))
        for name, factor in (("long", 2), ("short", 0.5)):
            with self.subTest(name):
                f = os.path.join(d, "factor_" + name + ".h5")
                with h5py.File(f, "w") as h:
                    g = h.create_group("h")
                    g.attrs["structure"] = "factor"
                    ds = g.create_dataset("G", data=G, chunks=(10, 20), compression="gzip")
                    ds.id.write_direct_chunk((20, 40), zlib.compress(np.zeros(int(200 * factor)).tobytes()))
                why = ("it inflates to more than the 1600 bytes it holds" if factor > 1 else
                       "it inflates to 800 bytes; it holds 1600")
                self.assert_serial_error_row(f, "/h/G: cannot decompress chunk at [20, 40]: " + why + " (corrupt data)")

    def test_a_part_created_and_never_written_is_the_serial_error_row(self):
        # A factor's G (read in slabs across ranks) and a diagonal, created
        # and never written: fill values read as zeros were an ok row.
        import h5py
        d = tempfile.mkdtemp(dir=self.tmp.name)
        for kind in ("factor", "diagonal"):
            with self.subTest(kind):
                f = os.path.join(d, "never_written_" + kind + ".h5")
                with h5py.File(f, "w") as h:
                    if kind == "factor":
                        g = h.create_group("h")
                        g.attrs["structure"] = "factor"
                        g.create_dataset("G", shape=(30, 60), dtype="f8", chunks=(10, 20), compression="gzip")
                    else:
                        h.create_dataset("h", shape=(40,), dtype="f4").attrs["structure"] = "diagonal"
                part = "/h/G" if kind == "factor" else "/h"
                self.assert_serial_error_row(f, f + ":" + part + ": the dataset was never written")

    def test_chunks_never_written_are_told_as_the_serial_tool_tells_them(self):
        # Read as the fill value on every rank, and the row warns
        # unwritten_chunks (EXACT compares warnings), dense and a factor.
        import h5py
        f = os.path.join(tempfile.mkdtemp(dir=self.tmp.name), "unwritten.h5")
        H = with_spectrum(list(np.logspace(-1, 1, 30)) + [0.0] * 10, 21)
        with h5py.File(f, "w") as h:
            d = h.create_dataset("dense", shape=(40, 40), dtype="f8", chunks=(10, 10), compression="gzip")
            d[:20, :20] = H[:20, :20]
            g = h.create_group("factor")
            g.attrs["structure"] = "factor"
            d = g.create_dataset("G", shape=(8, 40), dtype="f8", chunks=(4, 10))
            d[:4, :] = np.random.default_rng(22).standard_normal((4, 40))
            h.create_dataset("full", data=H, chunks=(10, 10), compression="gzip")
        ref = rows(serial("volume", f, "-f", "jsonl").stdout)
        self.assertEqual([("unwritten_chunks" in r["warnings"]) for r in ref], [True, True, False])
        self.same_on_every_rank_count([f], ref, 0)

    def test_names_that_are_not_utf8_are_the_serial_rows(self):
        # A file, group or dataset name of any bytes: rank 0 sends the names
        # to the other ranks, which open them (the rows print U+FFFD).
        import h5py
        d = tempfile.mkdtemp(dir=self.tmp.name).encode()
        H = with_spectrum([2.0, 1.0, 0.0], 23)
        files = [os.path.join(d, b"dataset.h5"), os.path.join(d, b"group.h5"), os.path.join(d, b"bad\xffname.h5")]
        with h5py.File(files[0], "w") as h:
            h.create_dataset(b"\xff\xfeH", data=H)
        with h5py.File(files[1], "w") as h:
            h.create_group(b"g\xe9")["H"] = H
        with h5py.File(files[2], "w") as h:
            h["h"] = H
        srcs = [os.fsdecode(f) for f in files] + [self.files["small"]]
        ref = rows(serial("volume", *srcs, "-f", "jsonl").stdout)
        self.assertEqual([r["status"] for r in ref], ["ok"] * 4)
        self.same_on_every_rank_count(srcs, ref, 0)

    def test_a_matrix_of_one_value_chunks_is_read_in_bands_as_the_serial_tool_reads_it(self):
        # Chunks of 1x1: each rank reads its tiles, and its slab of a
        # factor's G, in bands of chunk rows (several here), bounding what
        # HDF5 keeps per chunk a read touches.
        import h5py
        f = os.path.join(tempfile.mkdtemp(dir=self.tmp.name), "one_value_chunks.h5")
        with h5py.File(f, "w") as h:
            h.create_dataset("h", data=with_spectrum(list(np.logspace(-2, 1, 40)) + [-0.5] + [0.0] * 259, 24),
                             chunks=(1, 1))
            g = h.create_group("factor")
            g.attrs["structure"] = "factor"
            g.create_dataset("G", data=np.random.default_rng(25).standard_normal((600, 100)), chunks=(1, 1))
        ref = rows(serial("volume", f, "--method", "dense", "-f", "jsonl").stdout)
        self.same_on_every_rank_count([f], ref, 0)

    def test_partial_edge_chunks_stored_unfiltered_are_read_as_hdf5_reads_them(self):
        """A file written with HDF5's H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS keeps
        its partial edge chunks unfiltered under a mask of "all filters
        applied": read as HDF5 reads them (dense and as a Kronecker factor),
        the rows equal those of the values written plainly, on every rank count."""
        import h5py
        sys.path.insert(0, os.path.join(SOURCE, "tests", "cli"))
        import clitest
        d = tempfile.mkdtemp(dir=self.tmp.name)
        H = with_spectrum(list(np.logspace(-2, 2, 30)) + [0.0] * 20, 9)
        srcs, twins = [], []
        for name, colliding in (("plain", False), ("stream", True)):
            f, twin = os.path.join(d, name + ".h5"), os.path.join(d, name + "_twin.h5")
            data = clitest.write_raw_partial_edge_chunks(f, H, colliding=colliding)
            with h5py.File(f, "a") as h, h5py.File(twin, "w") as t:
                t["hessian"] = data
                for g in (h, t):
                    g["kron/A"] = g["hessian"]
                    g["kron/B"] = np.diag([2.0, 0.5])
                    g["kron"].attrs["structure"] = "kron"
            srcs.append(f)
            twins.append(twin)
        ref = rows(serial("volume", *twins, "-f", "jsonl", status=0).stdout)
        self.assertEqual(len(ref), 4)
        for r in ref:
            r["source"], r["file"] = r["source"].replace("_twin", ""), r["file"].replace("_twin", "")
        self.same(rows(serial("volume", *srcs, "-f", "jsonl", status=0).stdout), ref, "serial")
        self.same_on_every_rank_count(srcs, ref, 0)

    def assert_serial_error_row(self, f, words):
        """The serial tool's error row for f holds `words`; 1, 2 and 4 ranks give that row."""
        ref = rows(serial("volume", f, "-f", "jsonl", status=1).stdout)[0]
        self.assertIn(words, ref["error"])
        for ranks in (1, 2, 4):
            r = mpi(ranks, "volume", f, "-f", "jsonl")
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertEqual(rows(r.stdout)[0]["error"], ref["error"], f"{ranks} ranks")

    def test_inputs_parallel_hdf5_cannot_read_or_must_not_replace(self):
        import h5py
        d = tempfile.mkdtemp(dir=self.tmp.name)
        src = self.files["small"]
        vds = os.path.join(d, "vds.h5")
        layout = h5py.VirtualLayout(shape=(3, 3), dtype="f8")
        layout[:, :] = h5py.VirtualSource(src, "hessian", shape=(3, 3))
        with h5py.File(vds, "w") as h:
            h.create_virtual_dataset("h", layout)
        self.assertEqual(rows(serial("volume", vds, "-f", "jsonl", status=0).stdout)[0]["rank"], 2)
        r = mpi(2, "volume", vds, src, "-f", "jsonl")
        self.assertEqual(r.returncode, 1, r.stderr)
        bad, good = rows(r.stdout)
        self.assertIn("vds.h5:/h: a virtual dataset cannot be read by parallel HDF5", bad["error"])
        self.assertEqual(good["status"], "ok")
        # -o naming an input (here a virtual dataset's source): a usage error, as in basinvol.
        with open(src, "rb") as fh:
            before = fh.read()
        r = mpi(2, "volume", vds, "-o", src)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("is an input of this run", r.stderr)
        with open(src, "rb") as fh:
            self.assertEqual(fh.read(), before)

    def test_a_factor_shares_the_node_budget_like_a_dense_hessian(self):
        import h5py
        d = tempfile.mkdtemp(dir=self.tmp.name)
        f = os.path.join(d, "huge.h5")
        with h5py.File(f, "w") as h:
            g = h.create_group("fac")
            g.attrs["structure"] = "factor"
            # The m x m Gram alone (8 TB) is over any machine's budget.
            g.create_dataset("G", shape=(2**20, 2**30), dtype="f8", chunks=(64, 4096))
            h.create_dataset("dense", shape=(400000, 400000), dtype="f8", chunks=(64, 64))
        r = mpi(2, "volume", f, "-f", "jsonl")
        self.assertEqual(r.returncode, 1, r.stderr)
        budgets = [re.search(r"over the (?:memory )?budget of ([0-9.e+]+) GB", row["error"]).group(1)
                   for row in rows(r.stdout)]
        self.assertEqual(len(budgets), 2)
        self.assertEqual(budgets[0], budgets[1])

    def test_every_part_but_a_factor_is_held_against_each_ranks_budget(self):
        # Every rank reads and solves these whole: basinvol's working set and
        # its error row, not an out-of-memory kill on every rank. A dense
        # block of n = 300 needs 16·n² = 1.44 MB (its values and LAPACK's
        # copy): over 1M though its values alone (0.72 MB) are not.
        import h5py
        d = tempfile.mkdtemp(dir=self.tmp.name)
        f = os.path.join(d, "structures.h5")
        with h5py.File(f, "w") as h:
            b = h.create_group("blk")
            b.attrs["structure"] = "blocks"
            b["big"] = with_spectrum(np.linspace(1.0, 2.0, 300), 3)
            b["small"] = with_spectrum(np.linspace(1.0, 2.0, 5), 4)
            g = b.create_group("wide")  # a factor: its G is spread, only its 3 x 3 Gram counts
            g.attrs["structure"] = "factor"
            g["G"] = np.random.default_rng(5).standard_normal((3, 20000))
            diag = h.create_dataset("diag", data=np.linspace(1.0, 2.0, 200000))
            diag.attrs["structure"] = "diagonal"
            k = h.create_group("kron")
            k.attrs["structure"] = "kron"
            k["A"] = with_spectrum(np.linspace(1.0, 2.0, 300), 1)
            k["B"] = with_spectrum(np.linspace(1.0, 2.0, 200), 2)
        for budget, status in (("1M", "error"), ("100M", "ok")):
            ref = serial("volume", f, "-f", "jsonl", "--max-memory", budget)
            r = mpi(2, "volume", f, "-f", "jsonl", "--max-memory", budget)
            self.assertEqual(r.returncode, ref.returncode, r.stderr)
            got, want = rows(r.stdout), rows(ref.stdout)
            self.assertEqual([w["status"] for w in want], [status] * 3, ref.stderr)
            self.assertEqual([g["status"] for g in got], [status] * 3, r.stderr)
            if status == "error":
                self.assertRegex(got[0]["error"], r"/blk: n = 20305 needs about 0.0014\d GB to analyze \(its largest part: /blk/big, 300x300\), over the memory budget")
                self.assertRegex(got[1]["error"], r"/diag: n = 200000 needs about .* GB to analyze, over the memory budget")
                # basinvol holds the factor's G whole (0.48 MB as float64): more than a rank does.
                self.assertEqual([g.get("error") for g in got[1:]], [w.get("error") for w in want[1:]], budget)
            else:
                for g, w in zip(got, want):
                    self.assertEqual((g["rank"], g["dim"], g["negative"]), (w["rank"], w["dim"], w["negative"]))
                    self.assertAlmostEqual(g["log_volume"], w["log_volume"], delta=1e-9 * abs(w["log_volume"]))

    def test_o_file_is_locked_as_basinvol_locks_it_and_mixed_n_is_noted(self):
        import fcntl
        out = os.path.join(self.tmp.name, "locked.jsonl")
        with open(out + ".lock", "w") as held:  # another run writing out
            held.write("4242\n")
            held.flush()
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            r = mpi(2, "volume", self.files["small"], "-f", "jsonl", "-o", out)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(out + ": another basinvol run is writing it (pid 4242", r.stderr)
            self.assertFalse(os.path.exists(out))
        os.remove(out + ".lock")
        r = mpi(2, "rank", self.files["small"], self.files["dense"], "-f", "jsonl", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.exists(out))
        self.assertFalse(os.path.exists(out + ".lock"))
        ref = serial("rank", self.files["small"], self.files["dense"], "-f", "jsonl", status=0)
        note = [l for l in ref.stderr.splitlines() if "different n" in l]
        self.assertEqual(len(note), 1, ref.stderr)
        self.assertIn(note[0].replace("basinvol:", "basinvol-mpi:", 1), r.stderr.splitlines())

    def test_a_listing_that_hangs_stops_at_list_timeout(self):
        d = tempfile.mkdtemp(dir=self.tmp.name)
        fifo = os.path.join(d, "fifo.h5")
        os.mkfifo(fifo)
        r = mpi(2, "volume", fifo, self.files["small"], "--list-timeout", "1", "-f", "jsonl", timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        bad, good = rows(r.stdout)
        self.assertIn("took longer than the listing limit of 1 s", bad["error"])
        self.assertIn("--list-timeout", bad["error"])
        self.assertEqual(good["status"], "ok")

    def test_sigterm_leaves_the_previous_output_and_no_temporary_file(self):
        """SIGTERM to mpirun (a Slurm time limit) mid-run: rank 0 removes its
        temporary -o file; FILE keeps the previous run's rows."""
        import glob
        import signal
        import time
        d = tempfile.mkdtemp(dir=self.tmp.name)
        out = os.path.join(d, "rows.jsonl")
        with open(out, "w") as fh:
            fh.write("previous\n")
        srcs = [self.files["chunked"]] * 200
        p = subprocess.Popen(["mpirun", "-n", "2", os.path.join(BUILD, "basinvol-mpi"), "volume", *srcs,
                              "-f", "jsonl", "-o", out], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=ENV)
        deadline = time.monotonic() + 60
        while not glob.glob(out + ".tmp-*") and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.05)
        self.assertTrue(glob.glob(out + ".tmp-*"), "the run never opened its temporary file")
        time.sleep(0.5)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=120)
        self.assertNotEqual(p.returncode, 0, err)
        with open(out) as fh:
            self.assertEqual(fh.read(), "previous\n")
        if glob.glob(out + ".tmp-*"):
            # Now and then (under load, in about one run in ten) mpirun ends
            # the ranks before it forwards the signal: the temporary stays,
            # FILE is untouched (above), and the next basinvol run on FILE
            # removes it (docs/cluster.md).
            serial("volume", self.files["small"], "-f", "jsonl", "-o", out)
        else:  # the signal reached rank 0, which says what became of FILE
            self.assertIn("basinvol-mpi: interrupted by SIGTERM: the Hessians in progress are abandoned; "
                          + out + " is left as it was", err)
        self.assertEqual(glob.glob(out + ".tmp-*"), [])


if __name__ == "__main__":
    if len(sys.argv) < 3:
        print("usage: test_mpi.py BUILD_DIR SOURCE_DIR [unittest options]", file=sys.stderr)
        sys.exit(2)
    BUILD, SOURCE = sys.argv.pop(1), sys.argv.pop(1)
    unittest.main()
