#!/usr/bin/python3
"""Contract tests of batch work: many sources, --files-from, -j, --order,
--shard with --from-results, -o through a rename, --resume, Ctrl-C, progress.

Usage: /usr/bin/python3 tests/cli/test_batch.py PATH/TO/basinvol [unittest options]
Needs Debian's python3-numpy and python3-h5py. Writes only into temporary
directories.
"""
import csv
import glob
import io
import json
import re
import math
import os
import socket
import pty
import select
import shutil
import signal
import stat
import shlex
import subprocess
import sys
import tempfile
import time
import unittest

import clitest

import h5py
import numpy as np

BIN = None  # set from argv[1] in __main__
REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
LOGV_RTOL = 1e-9
# The README's GNU parallel line, run as it is (with this build's binary).
GNU_PARALLEL_LINE = ("parallel -j 2 basinvol volume --files-from checkpoints.txt --shard {}/2 -j 1 "
                     "-f jsonl -o shard-{}.jsonl --no-progress ::: 1 2")


def run(*args, stdin=None, timeout=300):
    proc = subprocess.run([BIN] + [str(a) for a in args], input=stdin, capture_output=True, text=True,
                          timeout=timeout)
    return proc


def jsonl(text):
    rows = []
    for line in text.splitlines():
        if line.strip():
            rows.append(json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c))))
    return rows


def slurp(path):
    with open(path) as fh:
        return fh.read()


def gram(rng, n, r, dtype=np.float64):
    j = rng.standard_normal((r, n)) / math.sqrt(n)
    h = j.T @ j
    return ((h + h.T) / 2).astype(dtype)


def write_checkpoints(path, count, n, seed, broken=None, dtype=np.float64):
    """A file of `count` checkpoints /checkpoints/step_XXXX; member `broken` holds a NaN."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        g = f.create_group("checkpoints")
        for i in range(count):
            h = gram(rng, n, 2 + (i * 5) % (n - 2), dtype)
            if i == broken:
                h[1, 2] = h[2, 1] = np.nan
            d = g.create_dataset("step_%04d" % i, data=h)
            d.attrs["step"] = i
    return path


def expected_logv(h, eps):
    w = np.linalg.eigvalsh(h.astype(np.float64))
    tol = np.abs(w).max() * h.shape[0] * eps
    a = np.abs(w[np.abs(w) > tol])
    r = len(a)
    return r, (r / 2) * math.log(math.pi) - math.lgamma(r / 2 + 1) + (r / 2) * math.log(2.0) - 0.5 * np.log(a).sum()


class BatchTest(clitest.TempDirTest):
    prefix = "basinvol-batch-"

    def assertSameRows(self, a, b):
        """Same sources, same statuses, log-volumes equal to LOGV_RTOL."""
        da = {r["source"]: r for r in a}
        db = {r["source"]: r for r in b}
        self.assertEqual(len(da), len(a), "a source appears twice")
        self.assertEqual(len(db), len(b), "a source appears twice")
        self.assertEqual(set(da), set(db))
        for s in da:
            self.assertEqual(da[s]["status"], db[s]["status"], s)
            if da[s]["status"] == "ok":
                self.assertEqual(da[s]["rank"], db[s]["rank"], s)
                self.assertTrue(math.isclose(da[s]["log_volume"], db[s]["log_volume"], rel_tol=LOGV_RTOL,
                                             abs_tol=1e-9), s)

    # ------------------------------------------------------------------ sources

    def test_broken_member_is_an_error_row_and_the_rest_is_reported(self):
        f = write_checkpoints(self.path("ckpt.h5"), 6, 30, seed=1, broken=3)
        p = run("volume", f, "-f", "jsonl", "-j", "2")
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = jsonl(p.stdout)
        self.assertEqual([r["dataset"] for r in rows], ["/checkpoints/step_%04d" % i for i in range(6)])
        self.assertEqual([r["status"] for r in rows], ["ok"] * 3 + ["error"] + ["ok"] * 2)
        self.assertIn("non-finite", rows[3]["error"])
        self.assertIn("step_0003", p.stderr)
        with h5py.File(f, "r") as h:
            for r in rows:
                if r["status"] == "ok":
                    rank, logv = expected_logv(h[r["dataset"]][...], np.finfo(np.float64).eps)
                    self.assertEqual(r["rank"], rank)
                    self.assertTrue(math.isclose(r["log_volume"], logv, rel_tol=1e-7))

    def test_many_sources_and_files_from_stdin_are_one_stream(self):
        a = write_checkpoints(self.path("a.h5"), 3, 20, seed=2)
        b = write_checkpoints(self.path("b.h5"), 2, 25, seed=3)
        listing = "%s\n\n%s:/checkpoints/step_0001\n%s\n" % (a, b, self.path("missing.h5"))
        p = run("volume", "--files-from", "-", "-f", "jsonl", stdin=listing)
        self.assertEqual(p.returncode, 1, p.stderr)  # the missing file fails; the others are reported
        rows = jsonl(p.stdout)
        self.assertEqual([r["source"] for r in rows],
                         [a + ":/checkpoints/step_%04d" % i for i in range(3)] +
                         [b + ":/checkpoints/step_0001", self.path("missing.h5")])
        self.assertEqual([r["status"] for r in rows], ["ok"] * 4 + ["error"])
        # The same as the sources given as arguments.
        q = run("volume", a, b + ":/checkpoints/step_0001", self.path("missing.h5"), "-f", "jsonl")
        self.assertSameRows(jsonl(q.stdout), rows)
        # Arguments and a list file together, arguments first.
        lst = self.path("list.txt")
        with open(lst, "w") as fh:
            fh.write(b + "\n")
        p = run("rank", a, "--files-from", lst, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(jsonl(p.stdout)), 5)
        # A SOURCE after --files-from FILE is a SOURCE, not a second list.
        p = run("volume", "--files-from", lst, a, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([r["file"] for r in jsonl(p.stdout)], [a] * 3 + [b] * 2)
        # A NUL-separated list (find -print0) is the same list, and its names may hold line breaks.
        p = run("volume", "--files-from", "-", "-f", "jsonl", stdin=listing.replace("\n", "\0"))
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual([r["source"] for r in jsonl(p.stdout)], [r["source"] for r in rows])
        odd = write_checkpoints(self.path("two\nlines.h5"), 1, 10, seed=4)
        p = run("volume", "--files-from", "-", "-f", "jsonl", stdin=a + "\0" + odd + "\0")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([r["file"] for r in jsonl(p.stdout)], [a] * 3 + [odd])

    def test_a_list_or_results_file_of_the_wrong_kind_is_one_clear_line(self):
        a = write_checkpoints(self.path("a.h5"), 2, 20, seed=6)
        spectra = []
        for fmt in ["tsv", "csv"]:
            spectra.append(self.path("spectrum." + fmt))
            with open(spectra[-1], "w") as out:
                self.assertEqual(subprocess.run([BIN, "spectrum", a, "-f", fmt], stdout=out).returncode, 0)
        for args, words, status in [
                (("rank", "--from-results", spectra[0]), "this is `basinvol spectrum` output, one line per eigenvalue", 1),
                (("rank", "--from-results", spectra[1]), "this is `basinvol spectrum` output, one line per eigenvalue", 1),
                (("volume", "--files-from", a), "is an HDF5 file, not a list of SOURCEs", 2),
                (("volume", "--files-from", self.dir), "is a directory, not a list of SOURCEs", 2),
                (("rank", "--from-results", self.dir), "is a directory, not a results file", 1),
                (("rank", "--from-results", "/dev/zero"), "is a device, not a results file", 1),
                (("rank", "--from-results", a), "is an HDF5 file, not saved rows", 1),
                (("rank", "--from-results", self.path("none.jsonl")),
                 "cannot open results file: No such file or directory", 1),
                (("volume", a, "-f", "jsonl", "-o", self.dir, "--resume"), "is a directory, not a results file", 2),
                # No row can be written: the user's -o, not a failed source.
                (("volume", a, "-o", self.path("nodir/x.jsonl")), "its directory " + self.path("nodir") +
                 " does not exist", 2),
                (("rank", a, "-o", a + "/x.tsv"), "its directory " + a + " is not one (a part of it is a file)", 2),
                # A directory that takes no new file says ENOENT too: not "does not exist".
                (("volume", a, "-o", "/proc/x.tsv"), "no file can be created in its directory /proc", 2)]:
            p = run(*args, timeout=60)
            self.assertEqual(p.returncode, status, (args, p.stderr))
            self.assertIn(words, p.stderr)
            self.assertNotIn("basic_filebuf", p.stderr)
        # An HDF5 file piped in as the list: one line, not an error row for
        # every fragment of its bytes that read as a name.
        for args in (("volume", "-"), ("volume", "--files-from", "-")):
            with open(a, "rb") as fh:
                p = subprocess.run([BIN, *args], stdin=fh, capture_output=True, timeout=60)
            self.assertEqual(p.returncode, 2, (args, p.stderr))
            self.assertRegex(p.stderr, rb"standard input\)? is an HDF5 file, not a list of SOURCEs")
            self.assertEqual(p.stdout, b"")
        # A list saved with a byte-order mark and CRLF line ends names the file.
        listed = self.path("bom.txt")
        with open(listed, "wb") as fh:
            fh.write(b"\xef\xbb\xbf" + a.encode() + b"\r\n")
        p = run("volume", "--files-from", listed, "-f", "jsonl", timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([r["file"] for r in jsonl(p.stdout)], [a] * 2)
        # Options that would have changed how saved rows were computed are
        # refused, not ignored; the ranking's own options apply.
        rows = self.path("for_options.jsonl")
        with open(rows, "w") as fh:
            fh.write(run("volume", a, "-f", "jsonl").stdout)
        for option in (("-T", "5"), ("--cut", "gap"), ("--regularized", "1e-3"), ("--rtol", "0.1"),
                       ("--method", "dense"), ("--hessian-error", "1"), ("--negatives", "drop")):
            p = run("rank", "--from-results", rows, *option, timeout=60)
            self.assertEqual(p.returncode, 2, (option, p.stderr))
            self.assertIn("--from-results ranks saved rows as they were computed", p.stderr)
        for option in (("--negatives", "last"), ("--tie-tol", "1e-3"), ("-j", "1")):
            p = run("rank", "--from-results", rows, *option, timeout=60)
            self.assertEqual(p.returncode, 0, (option, p.stderr))
        # Saved rows through a pipe (which cannot seek back) are read whole.
        saved = self.path("rows.jsonl")
        with open(saved, "w") as fh:
            fh.write(run("volume", a, "-f", "jsonl").stdout)
        p = subprocess.run(["bash", "-c", '"$0" rank --from-results <(cat "$1") -f jsonl', BIN, saved],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(jsonl(p.stdout)), 2)

    def test_saved_rows_rewritten_on_one_line_or_after_blank_lines_are_read(self):
        # json.dump and jq -c write a JSON document on one line; a table may
        # start with blank lines.
        a = write_checkpoints(self.path("a.h5"), 3, 20, seed=16)
        full = jsonl(run("volume", a, "-f", "jsonl").stdout)
        one_line = self.path("one.json")
        with open(one_line, "w") as fh:
            json.dump(json.loads(run("volume", a, "-f", "json").stdout), fh)
        self.assertEqual(len(slurp(one_line).splitlines()), 1)
        table = self.path("blank.tsv")
        with open(table, "w") as fh:
            fh.write("\n \n" + run("volume", a, "-f", "tsv").stdout)
        for saved in (one_line, table):
            p = run("rank", "--from-results", saved, "-f", "jsonl")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(sorted(r["source"] for r in jsonl(p.stdout)), sorted(r["source"] for r in full))
        p = run("volume", a, "-f", "json", "-o", one_line, "--resume")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(json.loads(slurp(one_line))["rows"]), 3)
        p = run("volume", a, "-f", "tsv", "-o", table, "--resume")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_saved_rows_with_columns_left_out(self):
        # A CSV trimmed by hand: without what ranking reads it is refused,
        # naming the record; other numbers it lacks come back null, never 0.
        import csv as csvmod
        a = write_checkpoints(self.path("a.h5"), 3, 20, seed=7)
        full = list(csvmod.DictReader(io.StringIO(run("volume", a, "-f", "csv").stdout)))
        def trimmed(keys):
            path = self.path("trim-%d.csv" % len(keys))
            with open(path, "w", newline="") as fh:
                w = csvmod.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
                w.writeheader()
                w.writerows(full)
            return path
        p = run("rank", "--from-results", trimmed(["source", "n", "rank", "status", "log_volume"]))
        self.assertEqual(p.returncode, 1)
        self.assertIn("record 2", p.stderr)
        self.assertIn("an ok row has no 'dim'", p.stderr)
        keys = ["source", "n", "rank", "dim", "negative", "status", "log_volume"]
        p = run("rank", "--from-results", trimmed(keys), "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = jsonl(p.stdout)
        self.assertEqual(len(rows), 3)
        for r in rows:
            for key in ("tol", "noise_floor", "threshold", "log10_volume", "log_volume_error", "log_volume_noise",
                        "seconds", "method"):
                self.assertIsNone(r[key], key)
            # Without its band a row may have any dim: noise may decide every order (the full rows' are clean).
            self.assertEqual((r["dim_low"], r["dim_high"]), (0, r["n"]))
            self.assertIn("place_uncertain", r["warnings"])
            self.assertIn("ambiguous_rank", r["warnings"])  # without its warnings, as its rank may have been
        p = run("rank", "--from-results", trimmed(list(full[0].keys())), "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([r["warnings"] for r in jsonl(p.stdout)], [[], [], []])

    def test_saved_rows_without_their_warnings_do_not_rank_as_certain(self):
        # Equal dims, one rank ambiguous (a value at 2e-14 under a spectrum
        # down to 0.2, in float64): noise may decide the order. Its CSV
        # without the warnings column must not tell the order as certain.
        import csv as csvmod
        rng = np.random.default_rng(4)

        def rotated(values):
            q = np.linalg.qr(rng.standard_normal((len(values), len(values))))[0]
            m = q @ np.diag(values) @ q.T
            return (m + m.T) / 2

        base = [3.0, 2.0, 1.5, 1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2]
        f = self.path("w.h5")
        with h5py.File(f, "w") as h:
            h["A"] = rotated([0.9 * x for x in base] + [0.0] * 10)
            h["B"] = rotated(base + [2e-14] + [0.0] * 9)
        direct = {r["dataset"]: r for r in jsonl(run("rank", f, "-f", "jsonl").stdout)}
        self.assertIn("ambiguous_rank", direct["/B"]["warnings"])
        self.assertIn("place_uncertain", direct["/A"]["warnings"])
        full = list(csvmod.DictReader(io.StringIO(run("volume", f, "-f", "csv").stdout)))
        for keep in ([k for k in full[0] if k != "warnings"], list(full[0])):
            path = self.path("w.csv")
            with open(path, "w", newline="") as fh:
                w = csvmod.DictWriter(fh, fieldnames=keep, extrasaction="ignore")
                w.writeheader()
                w.writerows(full)
            p = run("rank", "--from-results", path, "-f", "jsonl")
            self.assertEqual(p.returncode, 0, p.stderr)
            got = {r["dataset"]: r for r in jsonl(p.stdout)}
            for d in ("/A", "/B"):
                self.assertEqual(got[d]["place"], direct[d]["place"])
                self.assertIn("place_uncertain", got[d]["warnings"], (keep, d))
            # Read without the column, /A's rank counts as one that may be ambiguous; with it, as saved.
            self.assertEqual("ambiguous_rank" in got["/A"]["warnings"], "warnings" not in keep)

    def test_a_table_cut_within_its_last_field_is_refused_not_read_short(self):
        # A shard streamed with > and killed mid-row: cut inside the last
        # field, a row keeps its field count and read "kron" as "kro", or a
        # last log_volume column short of its digits, exit 0.
        import csv as csvmod
        a = write_checkpoints(self.path("a.h5"), 2, 20, seed=11)
        full = list(csvmod.DictReader(io.StringIO(run("volume", a, "-f", "csv").stdout)))
        keys = ["source", "n", "rank", "dim", "negative", "status", "log_volume"]
        for sep, name in (("\t", "cut.tsv"), (",", "cut.csv")):
            text = sep.join(keys) + "\n" + "".join(sep.join(r[k] for k in keys) + "\n" for r in full)
            last = len(text.rstrip("\n").rsplit("\n", 1)[1])
            for k in range(2, last + 1):  # the newline and k − 1 bytes of the last row
                path = self.path(name)
                with open(path, "w") as fh:
                    fh.write(text[:-k])
                p = run("rank", "--from-results", path, "-f", "jsonl")
                self.assertEqual(p.returncode, 1, (name, k, p.stdout))
                rows = jsonl(p.stdout)
                self.assertEqual([r["status"] for r in rows], ["error"], (name, k))
                self.assertIn(path, rows[0]["error"])
            with open(path, "w") as fh:  # whole, its newline given back
                fh.write(text)
            p = run("rank", "--from-results", path, "-f", "jsonl")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(sorted(r["log_volume"] for r in jsonl(p.stdout)),
                             sorted(float(r["log_volume"]) for r in full))
        # A CSV cut just after a line break inside a quoted last field ends
        # with a newline, but inside the quotes.
        text = ",".join(keys + ["name"]) + "\n" + "".join(",".join(r[k] for k in keys) + ',"two\nlines"\n'
                                                          for r in full)
        path = self.path("quoted.csv")
        with open(path, "w") as fh:
            fh.write(text[:text.rindex("two\n") + 4])
        p = run("rank", "--from-results", path, "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("ends inside a quoted field", p.stderr)
        with open(path, "w") as fh:
            fh.write(text)
        p = run("rank", "--from-results", path, "-f", "jsonl")
        self.assertEqual((p.returncode, [r["name"] for r in jsonl(p.stdout)]), (0, ["two\nlines"] * 2), p.stderr)

    def test_saved_rows_whose_counts_contradict_each_other_are_refused(self):
        # A hand-edited row cannot be ranked as if just computed: each broken
        # rule is named with the record; the untouched rows rank.
        a = write_checkpoints(self.path("a.h5"), 2, 20, seed=9)
        rows = jsonl(run("volume", a, "-f", "jsonl").stdout)
        self.assertEqual(len(rows), 2)
        good = self.path("good.jsonl")
        with open(good, "w") as fh:
            fh.write("".join(json.dumps(r) + "\n" for r in rows))
        self.assertEqual(run("rank", "--from-results", good).returncode, 0)
        r = rows[0]
        for edit, words in (({"dim_low": r["dim"] + 1}, "dim_low <= dim <= dim_high <= n"),
                            ({"dim": r["n"] + 1, "dim_low": 0, "dim_high": r["n"] + 1}, "dim <= n"),
                            ({"rank": r["rank"] + 1}, "rank + dim = n"),
                            ({"negative_low": r["negative"] + 1}, "negative_low <= negative <= negative_high"),
                            ({"log_volume_error": -1}, "log_volume_error >= 0"),
                            ({"log_volume_noise": -1e-9}, "log_volume_noise >= 0")):
            with self.subTest(edit=edit):
                bad = self.path("bad.jsonl")
                with open(bad, "w") as fh:
                    fh.write(json.dumps(dict(r, **edit)) + "\n" + json.dumps(rows[1]) + "\n")
                p = run("rank", "--from-results", bad)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn("the row's counts break " + words, p.stderr)
        bad = self.path("bad.jsonl")
        with open(bad, "w") as fh:
            fh.write(json.dumps(dict(r, log10_volume=r["log10_volume"] + 1e-6)) + "\n")
        p = run("rank", "--from-results", bad)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("the row's log10_volume is not log_volume / ln 10", p.stderr)
        # Not JSON (NaN, as Python's json.dumps writes it): the parser's words.
        with open(bad, "w") as fh:
            fh.write(json.dumps(rows[1]) + "\n" + json.dumps(dict(r, log_volume=float("nan"))) + "\n")
        p = run("rank", "--from-results", bad)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertRegex(p.stderr, r"line 2 is not a JSON object \(a cut-off row\?\): at column \d+: .*last read: '\"log_volume\": N'")
        # A number past double's range: one error row for the file, the
        # other files' rows ranked.
        with open(bad, "w") as fh:
            fh.write(json.dumps(rows[1]) + "\n" + json.dumps(r).replace(json.dumps(r["log_volume"]), "1e400", 1) + "\n")
        p = run("rank", "--from-results", bad, good, "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("line 2 is not a JSON object (a cut-off row?): number overflow parsing '1e400'", p.stderr)
        self.assertEqual([x["status"] for x in jsonl(p.stdout)], ["ok", "ok", "error"])
        with open(bad, "w") as fh:
            fh.write(json.dumps({"rows": [dict(r, log_volume=float("inf"))]}))
        p = run("rank", "--from-results", bad)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertRegex(p.stderr, r"not a basinvol JSON document \(not JSON: parse error at line 1, column \d+: .*last read: '\"log_volume\": I'")

    def test_a_results_file_that_cannot_be_read_is_one_error_row(self):
        # A missing shard, or one with a broken record, is named on stderr and
        # as an error row; the other files' rows are ranked; exit status 1.
        a = write_checkpoints(self.path("a.h5"), 2, 20, seed=5)
        good = self.path("good.jsonl")
        with open(good, "w") as fh:
            fh.write(run("volume", a, "-f", "jsonl").stdout)
        bad = self.path("bad.jsonl")
        with open(bad, "w") as fh:
            fh.write(json.dumps({"source": "x", "status": "ok", "n": 3, "rank": 4, "dim": 0, "negative": 0,
                                 "log_volume": 1.0}) + "\n")
        missing = self.path("missing.jsonl")
        p = run("rank", "--from-results", missing, good, bad, "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = jsonl(p.stdout)
        self.assertEqual([r["place"] for r in rows], [1, 2, None, None])
        self.assertEqual([r["source"] for r in rows[2:]], [bad, missing])  # error rows last, by source
        self.assertIn("the row's counts break rank + dim = n", rows[2]["error"])
        self.assertIn("cannot open results file", rows[3]["error"])
        errors = [l for l in p.stderr.splitlines() if l.startswith("basinvol: error: ")]
        self.assertEqual(sorted(errors), sorted("basinvol: error: " + r["error"] for r in rows[2:]))  # as read

    def test_saved_csv_with_a_byte_order_mark_and_empty_results(self):
        a = write_checkpoints(self.path("a.h5"), 2, 20, seed=8)
        saved = self.path("excel.csv")
        with open(saved, "w", encoding="utf-8-sig") as fh:  # a spreadsheet's CSV
            fh.write(run("volume", a, "-f", "csv").stdout)
        p = run("rank", "--from-results", saved, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(jsonl(p.stdout)), 2)
        empty = self.path("empty.jsonl")
        open(empty, "w").close()
        p = run("rank", "--from-results", empty)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("hold no rows", p.stderr)

    def test_the_table_keeps_a_name_with_tabs_on_one_aligned_line(self):
        f = self.path("names.h5")
        with h5py.File(f, "w") as h:
            h["a\tb"] = np.diag([3.0, 2.0, 0.0])
            h["c\nd"] = np.diag([3.0, 0.0, 0.0])
            h["\u00e9t\u00e9"] = np.diag([1.0, 0.0, 0.0])
        p = run("volume", f)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), 4, p.stdout)
        self.assertIn("/a\\tb", p.stdout)
        self.assertIn("/c\\nd", p.stdout)
        # Every line's n column starts at the same character.
        cols = {ln.index("  3  ") for ln in lines[1:]}
        self.assertEqual(len(cols), 1, p.stdout)

    def test_output_that_is_an_input_is_refused_before_any_work(self):
        a = write_checkpoints(self.path("a.h5"), 2, 20, seed=4)
        lst = self.path("list.txt")
        with open(lst, "w") as fh:
            fh.write(a + "\n")
        for args, victim in (((a,), a), ((a + ":/checkpoints/step_0001",), a), (("--files-from", lst), lst)):
            before = slurp(victim) if victim == lst else open(victim, "rb").read()
            p = run("volume", *args, "-f", "jsonl", "-o", victim)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("is an input of this run", p.stderr)
            self.assertEqual(before, slurp(victim) if victim == lst else open(victim, "rb").read())
        os.symlink(a, self.path("alias.h5"))  # the same file under another name
        p = run("volume", a, "-f", "jsonl", "-o", self.path("alias.h5"))
        self.assertEqual(p.returncode, 2, p.stderr)
        # Standard input redirected from the file (< FILE): results files and lists read as '-'.
        saved = self.path("saved.jsonl")
        self.assertEqual(run("volume", a, "-f", "jsonl", "-o", saved).returncode, 0)
        for args in (("rank", "--from-results", "-"), ("volume", "--files-from", "-")):
            victim = saved if args[0] == "rank" else lst
            before = slurp(victim)
            with open(victim) as fh:
                p = subprocess.run([BIN, *args, "-f", "jsonl", "-o", victim], stdin=fh, capture_output=True,
                                   text=True, timeout=60)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("-o %s is an input of this run (standard input)" % victim, p.stderr)
            self.assertEqual(slurp(victim), before)

    def test_output_that_is_an_hdf5_file_is_refused_before_any_work(self):
        # `volume -odd.h5 all.h5` reads as `-o dd.h5`: a checkpoint there,
        # not an input of the run, must not be replaced by the results. An
        # HDF5 file with a user block (superblock at 512) is one too.
        a = write_checkpoints(self.path("a.h5"), 2, 20, seed=4)
        other = write_checkpoints(self.path("dd.h5"), 1, 10, seed=5)
        with h5py.File(self.path("ub.h5"), "w", userblock_size=512) as h:
            h["x"] = np.eye(3)
        for victim in (other, self.path("ub.h5")):
            before = open(victim, "rb").read()
            p = subprocess.run([BIN, "volume", "-o" + victim, a], capture_output=True, text=True, timeout=300,
                               cwd=self.dir)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("is an HDF5 file: the results would replace it", p.stderr)
            self.assertIn("write it ./-NAME", p.stderr)
            self.assertEqual(before, open(victim, "rb").read())
        # An earlier run's results are replaced, as before.
        res = self.path("res.jsonl")
        self.assertEqual(run("volume", a, "-f", "jsonl", "-o", res).returncode, 0)
        self.assertEqual(run("volume", a, "-f", "jsonl", "-o", res).returncode, 0)

    def test_a_globbed_source_that_reads_as_an_option_is_refused(self):
        # `volume *.h5` with a checkpoint `-ojunk.h5` read as `-o junk.h5`:
        # exit 0, nothing on stdout, the checkpoint never analysed; one named
        # `-hello.h5` read as --help: exit 0, nothing analysed.
        write_checkpoints(self.path("a.h5"), 1, 10, seed=6)
        write_checkpoints(self.path("-ojunk.h5"), 1, 10, seed=7)
        write_checkpoints(self.path("-hello.h5"), 1, 10, seed=8)
        glob = lambda *args, command="volume": subprocess.run(
            [BIN, command] + (["-f", "jsonl", "--no-progress"] if command == "volume" else []) + list(args),
            capture_output=True, text=True, timeout=300, cwd=self.dir)
        p = glob("-ojunk.h5", "a.h5")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("'-ojunk.h5' names a file here, but reads as an option (-o junk.h5): to read it, write "
                      "./-ojunk.h5 (or give it after --)", p.stderr)
        self.assertFalse(os.path.exists(self.path("junk.h5")))
        p = glob("-o", "rows.out", "-hello.h5", "a.h5")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("'-hello.h5' names a file here, but reads as an option: to read it", p.stderr)
        p = glob("-hello.h5:/checkpoints/step_0000")  # FILE:PATH of one
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("'-hello.h5:/checkpoints/step_0000' names a file here, but reads as an option", p.stderr)
        p = glob("-ojunk.h5", "a.h5", command="compare")  # no -o there: no talk of one
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("'-ojunk.h5' names a file here, but reads as an option: to read it", p.stderr)
        # An option's value may look like one: a list named -olist.txt.
        with open(self.path("-olist.txt"), "w") as fh:
            fh.write("a.h5\n")
        p = glob("--files-from", "-olist.txt")
        self.assertEqual((p.returncode, len(p.stdout.splitlines())), (0, 1), p.stderr)
        # A glob's file named `-o`: the next name would be written over.
        with open(self.path("-o"), "w") as fh:
            fh.write("")
        with open(self.path("b_notes.txt"), "w") as fh:
            fh.write("my notes\n")
        p = glob("-o", "b_notes.txt", "a.h5")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("'-o' names a file here, but reads as an option", p.stderr)
        self.assertEqual(slurp(self.path("b_notes.txt")), "my notes\n")
        os.unlink(self.path("-o"))
        # What the parser reads as a SOURCE is one: a leading digit or space.
        write_checkpoints(self.path("-1.h5"), 1, 10, seed=9)
        write_checkpoints(self.path("- a.h5"), 1, 10, seed=10)
        p = glob("-1.h5", "- a.h5")
        self.assertEqual((p.returncode, len(p.stdout.splitlines())), (0, 2), p.stderr)
        for args in (("./-ojunk.h5", "a.h5"), ("--", "-ojunk.h5", "a.h5")):
            p = glob(*args)
            self.assertEqual(p.returncode, 0, (args, p.stderr))
            self.assertEqual(len(p.stdout.splitlines()), 2, (args, p.stdout))
        # -o's own value may look like one.
        self.assertEqual(glob("-o", "-ojunk.txt", "a.h5").returncode, 0)
        self.assertEqual(len(open(self.path("-ojunk.txt")).read().splitlines()), 1)

    def test_no_source_is_a_usage_error(self):
        p = run("volume", "--files-from", "-", stdin="\n\n")
        self.assertEqual(p.returncode, 2)
        self.assertIn("no SOURCE", p.stderr)
        self.assertEqual(p.stdout, "")
        self.assertEqual(run("volume").returncode, 2)
        self.assertEqual(run("volume", "x.h5", "--shard", "3/2").returncode, 2)
        self.assertEqual(run("volume", "x.h5", "--resume").returncode, 2)  # --resume needs -o
        self.assertEqual(run("volume", "x.h5", "-j", "0").returncode, 2)
        # An empty value (a job array's unset $SHARD or $OUT) is refused, not
        # read as "no shard" (every task analysing everything) or stdout.
        src = os.path.join(REPO, "testdata", "example_checkpoints.h5")
        for option, what in [("--shard", "I/N"), ("-o", "a FILE"), ("--max-memory", "a size such as 8G"),
                             ("--files-from", "a FILE")]:
            p = run("volume", src, option, "")
            self.assertEqual(p.returncode, 2, (option, p.stderr))
            self.assertIn("needs %s, got ''" % what, p.stderr)
            self.assertEqual(p.stdout, "")

    # ------------------------------------------------------------------ parallel, order

    def test_jobs_and_finish_order_give_the_same_rows(self):
        f = write_checkpoints(self.path("ckpt.h5"), 12, 40, seed=4, dtype=np.float32)
        one = run("volume", f, "-f", "jsonl", "-j", "1")
        two = run("volume", f, "-f", "jsonl", "-j", "2")
        fin = run("volume", f, "-f", "jsonl", "-j", "2", "--order", "finish")
        for p in (one, two, fin):
            self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([r["source"] for r in jsonl(one.stdout)], [r["source"] for r in jsonl(two.stdout)])
        self.assertSameRows(jsonl(one.stdout), jsonl(two.stdout))
        self.assertSameRows(jsonl(one.stdout), jsonl(fin.stdout))

    def test_a_hessian_over_the_memory_budget_is_an_error_row(self):
        rng = np.random.default_rng(5)
        f = self.path("sizes.h5")
        with h5py.File(f, "w") as h:
            h["small"] = gram(rng, 20, 5)
            h["large"] = gram(rng, 300, 5)  # 300² doubles × 2 ≈ 1.4 MB
        p = run("volume", f, "-f", "jsonl", "--max-memory", "200K")
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = {r["dataset"]: r for r in jsonl(p.stdout)}
        self.assertEqual(rows["/small"]["status"], "ok")
        self.assertEqual(rows["/large"]["status"], "error")
        self.assertIn("memory budget", rows["/large"]["error"])

    # ------------------------------------------------------------------ shards

    def test_a_file_missing_then_back_heals_every_sharded_resume(self):
        """Files missing at a sharded run's first pass are error rows in the
        shard their names hash to; once they are back, their Hessians hash
        by FILE:/dataset, often to another shard. Each shard's rerun with
        --resume drops its stale error rows: the shards merge to the
        unsharded run, every rerun exits 0. (A shard whose rerun read none
        of the file's Hessians once kept its error row and exited 1.)"""
        names = [self.path("late_%d.h5" % i) for i in range(6)]
        listing = self.path("late.txt")
        with open(listing, "w") as fh:
            fh.write("".join(n + "\n" for n in names))
        outs = [self.path("late_shard_%d.jsonl" % k) for k in (1, 2, 3)]
        first = {}
        for k, out in enumerate(outs, 1):
            p = run("volume", "--files-from", listing, "--shard", "%d/3" % k, "-f", "jsonl", "-o", out, "--resume")
            for r in jsonl(slurp(out)):
                self.assertEqual(r["status"], "error", r)
                first[r["source"]] = k
        self.assertEqual(sorted(first), sorted(names))
        for i, n in enumerate(names):
            write_checkpoints(n, 1, 12, seed=40 + i)
        again = {}
        for k, out in enumerate(outs, 1):
            p = run("volume", "--files-from", listing, "--shard", "%d/3" % k, "-f", "jsonl", "-o", out, "--resume")
            self.assertEqual(p.returncode, 0, (k, p.stderr))
            for r in jsonl(slurp(out)):
                again[r["source"].split(":")[0]] = k
        self.assertTrue(any(first[n] != again[n] for n in names), "test data: some file moves shard")
        merged = run("rank", "--from-results", *outs, "-f", "jsonl")
        self.assertEqual(merged.returncode, 0, merged.stderr)
        self.assertSameRows(jsonl(merged.stdout), jsonl(run("rank", "--files-from", listing, "-f", "jsonl").stdout))

    def test_a_file_missing_in_one_shard_s_run_is_that_shard_s_error(self):
        """A file missing while one shard runs (there when the other ran):
        its Hessians for that shard were dropped without a row, an exit
        status or a word, when its error row was keyed to the other shard.
        Every shard that cannot list a SOURCE says so; the merge keeps
        one error row and exits 1, and the shard's resume heals it."""
        names = [write_checkpoints(self.path("part_%d.h5" % i), 4, 8, seed=60 + i) for i in range(6)]
        listing = self.path("parts.txt")
        with open(listing, "w") as fh:
            fh.write("".join(n + "\n" for n in names))
        full = jsonl(run("volume", "--files-from", listing, "-f", "jsonl").stdout)
        outs = [self.path("part_shard_%d.jsonl" % k) for k in (1, 2)]
        for missing in names:
            os.rename(missing, missing + ".away")
            p = run("volume", "--files-from", listing, "--shard", "2/2", "-f", "jsonl", "-o", outs[1])
            os.rename(missing + ".away", missing)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn(missing + ": cannot open file", p.stderr)
            self.assertEqual(run("volume", "--files-from", listing, "--shard", "1/2", "-f", "jsonl", "-o",
                                 outs[0]).returncode, 0)
            merged = run("rank", "--from-results", *outs, "-f", "jsonl")
            self.assertEqual(merged.returncode, 1, merged.stderr)
            rows = jsonl(merged.stdout)
            self.assertIn(missing, [r["source"] for r in rows if r["status"] == "error"])
            p = run("volume", "--files-from", listing, "--shard", "2/2", "-f", "jsonl", "-o", outs[1], "--resume")
            self.assertEqual(p.returncode, 0, p.stderr)
            healed = run("rank", "--from-results", *outs, "-f", "jsonl")
            self.assertEqual(healed.returncode, 0, healed.stderr)
            self.assertEqual(sorted(r["source"] for r in jsonl(healed.stdout)), sorted(r["source"] for r in full))

    def test_rows_of_equal_log_volume_print_alike_in_any_input_order(self):
        """Copies of one Hessian share a place and a log-volume: rank lists
        them by source, so reordered inputs (or merged shards) print the
        same lines (they once followed the input order)."""
        copies = [write_checkpoints(self.path("copy_%s.h5" % c), 1, 12, seed=50) for c in "bca"]
        other = write_checkpoints(self.path("other.h5"), 1, 12, seed=51)
        runs = [[(r["place"], r["source"], r["log_volume"]) for r in jsonl(run("rank", *order, "-f", "jsonl").stdout)]
                for order in (copies + [other], [other] + copies[::-1], [copies[2], other, copies[0], copies[1]])]
        self.assertEqual(runs[1], runs[0])
        self.assertEqual(runs[2], runs[0])
        tied = [r for r in runs[0] if "copy_" in r[1]]
        self.assertEqual(len({(place, logv) for place, _, logv in tied}), 1, "test data: the copies tie")
        self.assertEqual([r[1] for r in tied], sorted(r[1] for r in tied))

    def test_two_shards_merge_to_the_unsharded_run(self):
        a = write_checkpoints(self.path("a.h5"), 9, 30, seed=6, broken=4)
        b = write_checkpoints(self.path("b.h5"), 7, 24, seed=7)
        full = run("volume", a, b, "-f", "jsonl")
        self.assertEqual(full.returncode, 1)
        s1, s2 = self.path("s1.jsonl"), self.path("s2.jsonl")
        p1 = run("volume", a, b, "--shard", "1/2", "-f", "jsonl", "-o", s1)
        p2 = run("volume", b, a, "--shard", "2/2", "-f", "jsonl", "-o", s2)  # another argument order
        self.assertEqual(p1.stdout + p2.stdout, "")  # results went to the files
        r1, r2 = jsonl(slurp(s1)), jsonl(slurp(s2))
        self.assertTrue(r1 and r2, "each shard gets some of 16 Hessians")
        self.assertFalse({r["source"] for r in r1} & {r["source"] for r in r2}, "a Hessian in both shards")
        self.assertSameRows(r1 + r2, jsonl(full.stdout))
        self.assertEqual(sorted((p1.returncode, p2.returncode)), [0, 1])  # the broken member is in one shard
        # The same shard of a reordered argument list is the same set.
        again = run("volume", b, a, "--shard", "1/2", "-f", "jsonl")
        self.assertEqual({r["source"] for r in jsonl(again.stdout)}, {r["source"] for r in r1})

        merged = run("rank", "--from-results", s1, s2, "-f", "jsonl")
        direct = run("rank", a, b, "-f", "jsonl")
        self.assertEqual(merged.returncode, 1)  # the error row stays an error row
        self.assertEqual(direct.returncode, 1)
        m, d = jsonl(merged.stdout), jsonl(direct.stdout)
        self.assertSameRows(m, d)
        self.assertEqual([r["place"] for r in m], [r["place"] for r in d])
        self.assertEqual([r["source"] for r in m if r["place"] is None], [a + ":/checkpoints/step_0004"])
        # JSON documents and standard input merge the same way.
        j1 = run("volume", a, b, "--shard", "1/2", "-f", "json").stdout
        merged2 = run("rank", "--from-results", "-", s2, "-f", "jsonl", stdin=j1)
        self.assertSameRows(jsonl(merged2.stdout), d)
        # A file given twice: each source once, with a warning.
        twice = run("rank", "--from-results", s1, s1, s2, "-f", "jsonl")
        self.assertEqual(len(jsonl(twice.stdout)), 16)
        self.assertIn("warning", twice.stderr)
        # An empty shard (one that died before its first row) is named; '-'
        # twice is a usage error (the second read would be empty).
        empty = self.path("empty.jsonl")
        open(empty, "w").close()
        p = run("rank", "--from-results", s1, empty, s2, "-f", "jsonl")
        self.assertSameRows(jsonl(p.stdout), d)
        self.assertIn("basinvol: warning: %s is empty: it holds no rows" % empty, p.stderr)
        for twice in (["-", "-"], ["-", "/dev/stdin"]):
            p = run("rank", "--from-results", *twice, "-f", "jsonl", stdin=slurp(s1))
            self.assertEqual(p.returncode, 2, twice)
            self.assertIn("standard input ('-', /dev/stdin) is given more than once", p.stderr)
        # So for lists of SOURCEs (the second read was an empty list, silently).
        for twice in (["--files-from", "-", "--files-from", "/dev/stdin"], ["-", "--files-from", "/dev/fd/0"]):
            p = run("volume", *twice, "-f", "jsonl", stdin=s1 + "\n")
            self.assertEqual(p.returncode, 2, twice)
            self.assertIn("standard input ('-', /dev/stdin) is given more than once", p.stderr)

    def test_a_shard_missing_from_the_merge_is_named(self):
        """Each row of a --shard run names its shard and its split (N and
        every shard's sources), and counts the rows its run writes and the
        split's, so merging a split whose rows are not all there names the
        shard: one whose file was left out (a glob just omits a file never
        written), or one stopped before it finished (a Slurm time limit's
        SIGTERM writes the rows done): an error row, exit 1, where the ranking
        used to lack those Hessians without a word. A shard given no Hessians
        writes no rows and is not missed; rows of another split or run do not
        stand in for missing ones."""
        # Which shard a Hessian falls in follows its path's hash: a name under
        # which each of 3 shards gets some of the 12 (one in 43 paths gives
        # some shard none).
        for attempt in range(50):
            a = write_checkpoints(self.path("a%d.h5" % attempt), 12, 20, seed=31)
            if all(jsonl(run("volume", a, "--shard", "%d/3" % k, "-f", "jsonl").stdout) for k in (1, 2, 3)):
                break
        out = {k: self.path("sh%d.jsonl" % k) for k in (1, 2, 3)}
        for k, f in out.items():
            p = run("volume", a, "--shard", "%d/3" % k, "-f", "jsonl", "-o", f)
            self.assertEqual(p.returncode, 0, p.stderr)
            rows = jsonl(slurp(f))
            self.assertTrue(rows, "each of 3 shards gets some of 12 Hessians")
            self.assertEqual({(r["shard"], r["shard_rows"], r["split_rows"]) for r in rows},
                             {("%d/3" % k, len(rows), 12)})
            self.assertRegex(rows[0]["split"], "^[0-9a-f]{16}$")
        self.assertEqual(len({r["split"] for f in out.values() for r in jsonl(slurp(f))}), 1)
        # A resumed shard's kept rows say the same.
        before = slurp(out[1])
        p = run("volume", a, "--shard", "1/3", "-f", "jsonl", "-o", out[1], "--resume")
        self.assertEqual(jsonl(slurp(out[1])), jsonl(before))
        # An unsharded run's rows carry no such fields (nor columns).
        for field in ("shard", "split", "shard_rows", "split_rows"):
            self.assertNotIn(field, jsonl(run("volume", a, "-f", "jsonl").stdout)[0])
            self.assertNotIn(field, run("volume", a, "-f", "tsv").stdout.splitlines()[0].split("\t"))

        whole = run("rank", "--from-results", *out.values(), "-f", "jsonl")
        self.assertEqual(whole.returncode, 0, whole.stderr)
        self.assertNotIn("shard", whole.stderr)
        self.assertEqual(sorted(r["shard"] for r in jsonl(whole.stdout)),
                         sorted(r["shard"] for f in out.values() for r in jsonl(slurp(f))))
        # A shard's file left out.
        p = run("rank", "--from-results", out[1], out[3], "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = jsonl(p.stdout)
        held = len(jsonl(slurp(out[1]))) + len(jsonl(slurp(out[3])))
        self.assertEqual(len(rows), held + 1)
        self.assertTrue(all(r["status"] == "ok" for r in rows[:-1]))
        last = rows[-1]
        self.assertEqual((last["source"], last["file"], last["status"], last["place"]),
                         ("shard 2/3", None, "error", None))
        self.assertIn("none of its rows are in the results files given (its split (%s) of 3 shards has 12 rows, "
                      "the results files given hold %d)" % (rows[0]["split"], held), last["error"])
        self.assertIn("run shard 2/3 again (--shard 2/3 --resume", last["error"])
        self.assertIn("basinvol: error: " + last["error"], p.stderr)
        # A ranking's own such row is checked again, not kept: with the file it lacked, it is whole.
        ranked = self.path("ranked.jsonl")
        self.assertEqual(run("rank", "--from-results", out[1], out[3], "-f", "jsonl", "-o", ranked).returncode, 1)
        p = run("rank", "--from-results", ranked, out[2], "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(jsonl(p.stdout)), 12)
        again = run("rank", "--from-results", ranked, "-f", "jsonl")
        self.assertEqual([r["source"] for r in jsonl(again.stdout) if r["status"] == "error"], ["shard 2/3"])
        # A shard stopped before it finished wrote the rows done, under its own counts.
        cut = self.path("cut.jsonl")
        lines = slurp(out[2]).splitlines(True)
        self.assertGreater(len(lines), 1)
        with open(cut, "w") as fh:
            fh.writelines(lines[:-1])
        p = run("rank", "--from-results", out[1], cut, out[3], "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        (e,) = [r for r in jsonl(p.stdout) if r["status"] == "error"]
        self.assertEqual(e["source"], "shard 2/3")
        self.assertIn("%d of its %d rows are in the results files given" % (len(lines) - 1, len(lines)), e["error"])
        self.assertIn("its run was stopped before it finished", e["error"])

        # More shards than Hessians: a shard given none has no rows, and is not missed,
        # even when the files are joined by cat or the empty ones left out.
        b = write_checkpoints(self.path("b.h5"), 3, 12, seed=32)
        few = [self.path("few%d.jsonl" % k) for k in range(1, 7)]
        for k, f in enumerate(few, 1):
            self.assertEqual(run("volume", b, "--shard", "%d/6" % k, "-f", "jsonl", "-o", f).returncode, 0)
        empty = [f for f in few if not slurp(f).strip()]
        full = [f for f in few if f not in empty]
        self.assertGreaterEqual(len(empty), 3)
        for given, stdin in ((few, None), (full, None), (["-"], "".join(slurp(f) for f in few))):
            p = run("rank", "--from-results", *given, "-f", "jsonl", stdin=stdin)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertNotIn("shard", p.stderr)
        # One that held some left out: every shard without rows is named, since
        # which of them held none cannot be told.
        p = run("rank", "--from-results", *full[1:], "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        named = [r for r in jsonl(p.stdout) if r["status"] == "error"]
        self.assertEqual(sorted(r["source"] for r in named),
                         sorted("shard %d/6" % (few.index(f) + 1) for f in empty + full[:1]))
        held = sum(len(jsonl(slurp(f))) for f in full[1:])
        for r in named:
            self.assertIn("(at most %d of the %d shards without rows held any" % (3 - held, len(empty) + 1),
                          r["error"])
        # JSON documents record the shard in their context too.
        doc = self.path("few1.json")
        self.assertEqual(run("volume", b, "--shard", "1/6", "-f", "json", "-o", doc).returncode, 0)
        self.assertEqual(json.loads(slurp(doc))["context"]["shard"], "1/6")

        # Rows of another split, of an unsharded run, or of another list sharded
        # alike do not stand in for a split's missing rows: which Hessians those
        # are is not known, only how many.
        two = [self.path("two%d.jsonl" % k) for k in (1, 2)]
        for k, f in enumerate(two, 1):
            self.assertEqual(run("volume", a, "--shard", "%d/2" % k, "-f", "jsonl", "-o", f).returncode, 0)
        self.assertEqual(run("rank", "--from-results", *two).returncode, 0)
        unsharded = self.path("all.jsonl")
        self.assertEqual(run("volume", a, "-f", "jsonl", "-o", unsharded).returncode, 0)
        other = [self.path("other%d.jsonl" % k) for k in (1, 2, 3)]
        c = write_checkpoints(self.path("c.h5"), 12, 20, seed=33)
        for k, f in enumerate(other, 1):
            self.assertEqual(run("volume", c, "--shard", "%d/3" % k, "-f", "jsonl", "-o", f).returncode, 0)
        for extra, says in ((two, "rows of 2 splits"),
                            ([unsharded], "rows of 1 split and rows of no shard (unsharded runs, or saved before "
                                          "rows named their shard: --resume each shard once)"),
                            (other, "rows of 2 splits")):
            p = run("rank", "--from-results", out[1], out[3], *extra, "-f", "jsonl")
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertEqual([r["source"] for r in jsonl(p.stdout) if r["status"] == "error"], ["shard 2/3"])
            self.assertIn("the files given hold %s: merge the results of one split" % says, p.stderr)
        # A file missing for every shard: one split, its error row in each
        # shard (merged to one, without a warning per shard); once it is
        # there for one shard only, the shards ran on two lists.
        late = self.path("late.h5")
        lst = self.path("late.txt")
        with open(lst, "w") as fh:
            fh.write(a + "\n" + late + "\n")
        lates = [self.path("late%d.jsonl" % k) for k in (1, 2)]
        for k, f in enumerate(lates, 1):
            self.assertEqual(run("volume", "--files-from", lst, "--shard", "%d/2" % k, "-f", "jsonl", "-o", f).returncode, 1)
        p = run("rank", "--from-results", *lates, "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual([r["source"] for r in jsonl(p.stdout) if r["status"] == "error"], [late])
        self.assertNotIn("is in both", p.stderr)
        self.assertNotIn("shard", p.stderr)
        # A ranking keeps that row once, under one shard's label; read again,
        # it still counts for the other shards: with shard 2 of 3 left out,
        # shard 2 is named, and shard 3, which is whole, is not. (A FILE:PATH
        # SOURCE that cannot be listed alike: its row names a dataset.)
        gone = self.path("gone.h5") + ":/H"
        lst2 = self.path("gone.txt")
        with open(lst2, "w") as fh:
            fh.write(a + "\n" + gone + "\n")
        for listing, missing in ((lst, late), (lst2, gone)):
            thirds = [self.path("late3_%d.jsonl" % k) for k in (1, 2, 3)]
            for k, f in enumerate(thirds, 1):
                self.assertEqual(run("volume", "--files-from", listing, "--shard", "%d/3" % k, "-f", "jsonl",
                                     "-o", f).returncode, 1)
            merged = self.path("late_merged.tsv")
            self.assertEqual(run("rank", "--from-results", thirds[0], thirds[2], "-o", merged).returncode, 1)
            lines = [l.split("\t") for l in slurp(merged).splitlines()]
            self.assertEqual([l[lines[0].index("source")] for l in lines[1:]].count(missing), 1)
            for again in ([merged], [merged, thirds[1]]):
                p = run("rank", "--from-results", *again, "-f", "jsonl")
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertEqual([r["source"] for r in jsonl(p.stdout) if r["status"] == "error"],
                                 [missing] + (["shard 2/3"] if len(again) == 1 else []))
        write_checkpoints(late, 4, 20, seed=35)
        self.assertEqual(run("volume", "--files-from", lst, "--shard", "2/2", "-f", "jsonl", "-o", lates[1]).returncode, 0)
        p = run("rank", "--from-results", *lates, "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("basinvol: error: shard 1/2: none of its rows are in the results files given", p.stderr)
        self.assertIn("its rows in them are of another split: it ran on another list", p.stderr)
        self.assertEqual(run("volume", "--files-from", lst, "--shard", "1/2", "-f", "jsonl", "-o", lates[0],
                             "--resume").returncode, 0)
        p = run("rank", "--from-results", *lates, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(jsonl(p.stdout)), 16)

        # One Hessian named by two SOURCEs is one row of its split.
        dup = [self.path("dup%d.jsonl" % k) for k in (1, 2)]
        for k, f in enumerate(dup, 1):
            self.assertEqual(run("volume", a, a + ":/checkpoints/step_0003", "--shard", "%d/2" % k, "-f", "jsonl",
                                 "-o", f).returncode, 0)
        p = run("rank", "--from-results", *dup, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(jsonl(p.stdout)), 12)

        # --per-block's parts are rows of their shard, not counted in the split.
        # (a name under which both shards get some of the 6: one in 32 gives one none)
        for attempt in range(50):
            pb = self.path("pb%d.h5" % attempt)
            rng = np.random.default_rng(34)
            with h5py.File(pb, "w") as f:
                for i in range(6):
                    d = f.create_dataset("h%d" % i, data=gram(rng, 12, 3 + i))
                    d.attrs["param_offsets"] = np.array([0, 6], dtype=np.int64)
                    d.attrs["param_sizes"] = np.array([6, 6], dtype=np.int64)
            if all(jsonl(run("volume", pb, "--shard", "%d/2" % k, "-f", "jsonl").stdout) for k in (1, 2)):
                break
        parts = [self.path("pb%d.jsonl" % k) for k in (1, 2)]
        for k, f in enumerate(parts, 1):
            self.assertEqual(run("volume", pb, "--per-block", "--shard", "%d/2" % k, "-f", "jsonl", "-o", f).returncode, 0)
            rows = jsonl(slurp(f))
            whole = [r for r in rows if "[" not in r["dataset"]]
            self.assertEqual(len(rows), 3 * len(whole))
            self.assertEqual({(r["shard_rows"], r["split_rows"]) for r in whole}, {(len(whole), 6)})
            self.assertEqual({(r["shard"], r["shard_rows"], r["split_rows"]) for r in rows if r not in whole},
                             {("%d/2" % k, None, None)})
        self.assertEqual(run("rank", "--from-results", *parts).returncode, 0)
        p = run("rank", "--from-results", parts[0], "-f", "jsonl")
        self.assertEqual((p.returncode, [r["source"] for r in jsonl(p.stdout) if r["status"] == "error"]),
                         (1, ["shard 2/2"]))

        # TSV carries them as columns, and merges the same way.
        tsv = [self.path("sh%d.tsv" % k) for k in (1, 2)]
        for k, f in enumerate(tsv, 1):
            self.assertEqual(run("volume", a, "--shard", "%d/2" % k, "-f", "tsv", "-o", f).returncode, 0)
            lines = [l.split("\t") for l in slurp(f).splitlines()]
            cols = [lines[0].index(c) for c in ("shard", "shard_rows", "split_rows")]
            self.assertEqual({tuple(l[c] for c in cols) for l in lines[1:]},
                             {("%d/2" % k, str(len(lines) - 1), "12")})
            self.assertEqual(lines[0].index("split"), cols[0] + 1)
        self.assertEqual(run("rank", "--from-results", *tsv).returncode, 0)
        p = run("rank", "--from-results", tsv[0], "-f", "tsv")
        self.assertEqual(p.returncode, 1)
        self.assertIn("shard 2/2", p.stdout)

        # A row whose shard is not I/N makes its file unreadable, named with the row's line.
        bad = self.path("bad_shard.jsonl")
        rows2 = jsonl(slurp(out[2]))
        self.assertGreaterEqual(len(rows2), 2)
        with open(bad, "w") as fh:
            fh.write(json.dumps(rows2[0]) + "\n" + json.dumps(dict(rows2[1], shard="4/3")) + "\n")
        p = run("rank", "--from-results", out[1], bad, out[3], "-f", "jsonl")
        self.assertEqual(p.returncode, 1)
        self.assertIn("%s: line 2: shard must be I/N with 1 <= I <= N, got '4/3'" % bad, p.stderr)
        self.assertEqual(sorted(r["source"] for r in jsonl(p.stdout) if r["status"] == "error"), [bad, "shard 2/3"])
        # In a table, the record.
        bad_tsv = self.path("bad_shard.tsv")
        lines = slurp(tsv[0]).splitlines()
        col = lines[0].split("\t").index("shard")
        fields = lines[1].split("\t")
        fields[col] = "0/2"
        with open(bad_tsv, "w") as fh:
            fh.write("\n".join([lines[0], "\t".join(fields)] + lines[2:]) + "\n")
        p = run("rank", "--from-results", bad_tsv, tsv[1])
        self.assertEqual(p.returncode, 1)
        self.assertIn("%s: record 2: shard must be I/N with 1 <= I <= N, got '0/2'" % bad_tsv, p.stderr)

    def test_every_command_takes_the_same_input_options(self):
        """spectrum, validate and compare go through the same source listing and
        runner as volume: --files-from, --shard and -j mean the same."""
        a = write_checkpoints(self.path("a.h5"), 6, 20, seed=21, broken=2)
        b = write_checkpoints(self.path("b.h5"), 5, 16, seed=22)
        lst = self.path("list.txt")
        with open(lst, "w") as fh:
            fh.write(a + "\n" + b + "\n")
        full = run("spectrum", a, b, "-f", "jsonl", "-j", "1")
        self.assertEqual(full.returncode, 1)  # the broken member
        self.assertIn("step_0002", full.stderr)
        parts = [run("spectrum", "--files-from", lst, "--shard", "%d/2" % k, "-f", "jsonl", "-j", "2")
                 for k in (1, 2)]
        got = {r["source"]: r for p in parts for r in jsonl(p.stdout)}
        want = {r["source"]: r for r in jsonl(full.stdout)}
        self.assertEqual(sum(len(jsonl(p.stdout)) for p in parts), len(want), "a Hessian in both shards")
        self.assertEqual(set(got), set(want))
        for s, r in want.items():
            self.assertEqual(got[s]["status"], r["status"], s)
            if r["status"] == "ok":
                # -j changes OpenBLAS's thread count, so the last bits may differ.
                mine, theirs = got[s]["eigenvalues"], r["eigenvalues"]
                self.assertEqual([e["kept"] for e in mine], [e["kept"] for e in theirs], s)
                np.testing.assert_allclose([e["eigenvalue"] for e in mine], [e["eigenvalue"] for e in theirs],
                                           rtol=0, atol=1e-12 * abs(theirs[0]["eigenvalue"]), err_msg=s)
        self.assertEqual(sorted(p.returncode for p in parts), [0, 1])

        suite = os.path.join(REPO, "testdata", "toys", "suite.h5")
        whole = run("validate", suite, "-f", "jsonl", "--samples", "2000", "-j", "1")
        # Sources, checks and verdicts equal; measured values to rounding (-j changes OpenBLAS's threads).
        checks = lambda text: sorted(((c["source"], c["check"], c["status"]), c["measured"]) for c in jsonl(text))
        halves = [run("validate", "--files-from", "-", "--shard", "%d/2" % k, "-f", "jsonl", "--samples", "2000",
                      "-j", "2", stdin=suite + "\n") for k in (1, 2)]
        self.assertEqual(whole.returncode, 0, whole.stderr)
        self.assertTrue(all(h.stdout for h in halves), "each shard gets some of the toys")
        mine, theirs = checks(halves[0].stdout + halves[1].stdout), checks(whole.stdout)
        self.assertEqual([c[0] for c in mine], [c[0] for c in theirs])
        for (key, m), (_, t) in zip(mine, theirs):
            self.assertTrue(m == t or math.isclose(m, t, rel_tol=1e-9, abs_tol=1e-12), (key, m, t))

        x, y = a + ":/checkpoints/step_0001", b + ":/checkpoints/step_0003"
        one = run("compare", x, y, "-f", "json", "-j", "1")
        two = run("compare", x, y, "-f", "json", "-j", "2")
        self.assertIn(one.returncode, (0, 1))
        self.assertEqual(one.returncode, two.returncode)
        self.assertEqual((json.loads(one.stdout)["result"], json.loads(one.stdout)["a"]["rank"]),
                         (json.loads(two.stdout)["result"], json.loads(two.stdout)["a"]["rank"]))
        broken = run("compare", x, a + ":/checkpoints/step_0002")
        self.assertEqual(broken.returncode, 2)
        self.assertIn("step_0002", broken.stderr)
        dash = run("compare", x, "-", stdin="")
        self.assertEqual(dash.returncode, 2)
        self.assertIn("not '-'", dash.stderr)
        # A shard without toys (more shards than toys) is not a failure.
        empty = [run("validate", suite, "--shard", "%d/1000" % k, "--samples", "2000") for k in (1, 2, 3)]
        quiet = [e for e in empty if "holds no toy" in e.stderr]
        self.assertTrue(quiet, "one of three shards of 1000 holds none of the suite's toys")
        self.assertEqual([e.returncode for e in quiet], [0] * len(quiet))

    def cluster_inputs(self):
        a = write_checkpoints(self.path("a.h5"), 8, 24, seed=14)
        b = write_checkpoints(self.path("b.h5"), 5, 20, seed=15)
        lst = self.path("checkpoints.txt")
        with open(lst, "w") as fh:
            fh.write(a + "\n" + b + "\n")
        return lst, jsonl(run("volume", a, b, "-f", "jsonl").stdout)

    def test_readme_slurm_array_script_with_two_local_tasks(self):
        lst, full = self.cluster_inputs()
        out = self.path("results")
        for task in ("1", "2"):
            env = dict(os.environ, LIST=lst, OUT=out, BASINVOL=BIN, SLURM_ARRAY_TASK_COUNT="2",
                       SLURM_ARRAY_TASK_ID=task)
            p = subprocess.run(["bash", os.path.join(REPO, "examples", "cluster", "slurm_array.sh")], env=env,
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
        shards = [jsonl(slurp(os.path.join(out, "shard-%s.jsonl" % t))) for t in ("1", "2")]
        self.assertSameRows(shards[0] + shards[1], full)  # nothing twice, nothing missing
        merged = run("rank", "--from-results", *sorted(glob.glob(os.path.join(out, "shard-*.jsonl"))), "-f", "jsonl")
        self.assertEqual(merged.returncode, 0, merged.stderr)
        self.assertSameRows(jsonl(merged.stdout), full)
        # Task 2's file lost: the merge names it; rerun alone (sbatch --array=2,
        # an array of one) with SHARDS, it completes the ranking.
        os.remove(os.path.join(out, "shard-2.jsonl"))
        merged = run("rank", "--from-results", *sorted(glob.glob(os.path.join(out, "shard-*.jsonl"))), "-f", "jsonl")
        self.assertEqual(merged.returncode, 1, merged.stderr)
        self.assertIn("basinvol: error: shard 2/2: none of its rows are in the results files given", merged.stderr)
        env = dict(os.environ, LIST=lst, OUT=out, BASINVOL=BIN, SLURM_ARRAY_TASK_COUNT="1", SLURM_ARRAY_TASK_ID="2",
                   SHARDS="2")
        p = subprocess.run(["bash", os.path.join(REPO, "examples", "cluster", "slurm_array.sh")], env=env,
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        merged = run("rank", "--from-results", *sorted(glob.glob(os.path.join(out, "shard-*.jsonl"))), "-f", "jsonl")
        self.assertEqual(merged.returncode, 0, merged.stderr)
        self.assertSameRows(jsonl(merged.stdout), full)

    def test_readme_shows_the_tested_commands(self):
        readme = slurp(os.path.join(REPO, "README.md"))
        script = slurp(os.path.join(REPO, "examples", "cluster", "slurm_array.sh")).splitlines()
        body = [script[0]] + [l for l in script[1:] if not (l.startswith("# ") or l == "#")]
        self.assertIn("```sh\n" + "\n".join(body) + "\n```", readme)
        self.assertIn(GNU_PARALLEL_LINE, readme)

    @unittest.skipUnless(shutil.which("parallel"), "GNU parallel is not installed")
    def test_readme_gnu_parallel_line_with_two_shards(self):
        lst, full = self.cluster_inputs()
        # The README's line, with this build's binary.
        p = subprocess.run(GNU_PARALLEL_LINE.replace("basinvol", BIN, 1), shell=True, cwd=self.dir, capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        merged = run("rank", "--from-results", self.path("shard-1.jsonl"), self.path("shard-2.jsonl"), "-f", "jsonl")
        self.assertEqual(merged.returncode, 0, merged.stderr)
        self.assertSameRows(jsonl(merged.stdout), full)

    # ------------------------------------------------------------------ -o, --resume

    def test_output_file_and_resume(self):
        a = write_checkpoints(self.path("a.h5"), 4, 30, seed=8)
        b = write_checkpoints(self.path("b.h5"), 3, 30, seed=9)
        for fmt in ("jsonl", "tsv", "csv", "json"):
            out = self.path("rows." + fmt)
            p = run("volume", a, "-f", fmt, "-o", out)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, "")
            first = slurp(out)
            p = run("volume", a, b, "-f", fmt, "-o", out, "--resume")
            self.assertEqual(p.returncode, 0, p.stderr)
            second = slurp(out)
            full = run("volume", a, b, "-f", "jsonl")
            if fmt == "jsonl":
                # The rows of the first run are kept byte for byte (not recomputed: same `seconds`).
                self.assertTrue(second.startswith(first))
                self.assertSameRows(jsonl(second), jsonl(full.stdout))
            elif fmt == "json":
                doc = json.loads(second)
                self.assertSameRows(doc["rows"], jsonl(full.stdout))
            else:
                lines = second.splitlines()
                self.assertEqual(len(lines), 1 + 7, fmt)
                self.assertEqual(lines[:5], first.splitlines(), fmt)
            self.assertEqual(glob.glob(out + ".tmp-*"), [])
        # Resuming with another format than the file's is a usage error, and the file is untouched.
        before = slurp(self.path("rows.tsv"))
        p = run("volume", a, "-f", "jsonl", "-o", self.path("rows.tsv"), "--resume")
        self.assertEqual(p.returncode, 2)
        self.assertEqual(slurp(self.path("rows.tsv")), before)

    def test_output_onto_a_link_a_fifo_or_a_device_keeps_what_is_there(self):
        # -o replaces FILE by a rename; a symbolic link is followed (its target
        # is replaced, the link stays), and a FIFO or a device is written in
        # place (renaming over /dev/null would replace the device for everyone).
        a = write_checkpoints(self.path("a.h5"), 2, 20, seed=3)
        want = jsonl(run("volume", a, "-f", "jsonl").stdout)
        with open(self.path("target.jsonl"), "w") as f:
            f.write("old\n")
        os.symlink("target.jsonl", self.path("link.jsonl"))
        os.symlink("made.jsonl", self.path("dangling.jsonl"))
        for link, target in (("link.jsonl", "target.jsonl"), ("dangling.jsonl", "made.jsonl")):
            p = run("volume", a, "-f", "jsonl", "-o", self.path(link))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(os.path.islink(self.path(link)), link)
            self.assertSameRows(jsonl(slurp(self.path(target))), want)
        fifo = self.path("rows.fifo")
        os.mkfifo(fifo)
        got = []
        reader = __import__("threading").Thread(target=lambda: got.append(slurp(fifo)))
        reader.start()
        p = run("volume", a, "-f", "jsonl", "-o", fifo, timeout=60)
        reader.join(60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(stat.S_ISFIFO(os.lstat(fifo).st_mode))
        self.assertSameRows(jsonl(got[0]), want)
        devices = ["/dev/null"]
        if os.geteuid() == 0:  # a private device node: what -o /dev/null does, without touching /dev
            os.mknod(self.path("null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
            devices.append(self.path("null"))
        for dev in devices:
            before = os.stat(dev)
            p = run("volume", a, "-f", "jsonl", "-o", dev)
            self.assertEqual(p.returncode, 0, p.stderr)
            after = os.stat(dev)
            self.assertTrue(stat.S_ISCHR(after.st_mode), dev)
            self.assertEqual((before.st_ino, before.st_rdev), (after.st_ino, after.st_rdev), dev)
            self.assertEqual(glob.glob(dev + ".*"), [], dev)  # no lock, journal or temporary beside it
        p = run("volume", a, "-f", "jsonl", "-o", devices[-1], "--resume")
        self.assertEqual(p.returncode, 2)
        self.assertIn("not a device or a pipe", p.stderr)
        p = run("volume", a, "-f", "jsonl", "-o", self.dir)
        self.assertEqual(p.returncode, 2)  # a usage error, as every other -o refusal
        self.assertIn("is a directory", p.stderr)
        # /dev/stdout to a pipe is a link the kernel makes ("pipe:[N]"): written through.
        p = subprocess.run([BIN, "volume", a, "-f", "jsonl", "-o", "/dev/stdout"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertSameRows(jsonl(p.stdout), want)
        # A descriptor named as FILE (/dev/stdout, /dev/stderr, /dev/fd/N, a
        # link to one) is written through the descriptor: a log a shell
        # appends stdout or stderr to keeps its lines, its inode and what the
        # script writes after (the log was once replaced through
        # /proc/self/fd/1, losing both).
        log = self.path("run.log")
        os.symlink("/dev/stdout", self.path("out-link"))
        for name, redirect in (("/dev/stdout", ">>"), ("/dev/fd/1", ">>"), (self.path("out-link"), ">>"),
                               ("/dev/stderr", "2>>"), ("/dev/fd/3", "3>>")):
            with open(log, "w") as f:
                f.write("before\n")
            inode = os.stat(log).st_ino
            script = "%s volume %s -f jsonl --no-progress -o %s %s %s; echo rc=$? >> %s" % (
                shlex.quote(BIN), shlex.quote(a), shlex.quote(name), redirect, shlex.quote(log), shlex.quote(log))
            p = subprocess.run(["bash", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               timeout=60)
            lines = slurp(log).splitlines()
            self.assertEqual(os.stat(log).st_ino, inode, name)
            self.assertEqual((lines[0], lines[-1]), ("before", "rc=0"), (name, lines, p.stderr))
            self.assertSameRows(jsonl("\n".join(lines[1:-1])), want)
            self.assertEqual(glob.glob(log + ".*"), [], name)  # no lock, journal or temporary beside it
        # A closed descriptor named so is a failed write, never a silent 0.
        for name, closing in (("/dev/stdout", ">&-"), ("/dev/stderr", "2>&-"), ("/dev/fd/7", "")):
            p = subprocess.run(["bash", "-c", "%s volume %s -f jsonl --no-progress -o %s %s; echo rc=$? >&2" % (
                shlex.quote(BIN), shlex.quote(a), name, closing)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, timeout=60)
            self.assertIn("rc=1", p.stderr, name)
        # A link into another folder, through a relative path, and a loop.
        os.mkdir(self.path("sub"))
        os.symlink("../target.jsonl", self.path("sub/up.jsonl"))
        p = run("volume", a, "-f", "jsonl", "-o", self.path("sub/up.jsonl"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(os.path.islink(self.path("sub/up.jsonl")))
        self.assertSameRows(jsonl(slurp(self.path("target.jsonl"))), want)
        os.symlink("loop2", self.path("loop1"))
        os.symlink("loop1", self.path("loop2"))
        p = run("volume", a, "-f", "jsonl", "-o", self.path("loop1"))
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("too many levels of symbolic links", p.stderr)
        self.assertTrue(os.path.islink(self.path("loop1")))
        # A socket is neither a file nor a stream: refused, a usage error.
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(self.path("sock"))
            p = run("volume", a, "-f", "jsonl", "-o", self.path("sock"))
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("is a block device or a socket", p.stderr)

    def test_resume_of_tsv_keeps_rows_of_names_with_tabs_and_line_breaks(self):
        # TSV writes a tab or line break in a name as a space; --resume must
        # still know those rows (it analysed them again and appended them).
        names = [self.path(n) for n in ("tab\tfile.h5", "new\nline.h5", "plain.h5")]
        for n in names:
            write_checkpoints(n, 2, 10, seed=5)
        out = self.path("rows.tsv")
        p = run("volume", *names, "-f", "tsv", "-o", out)
        self.assertEqual(p.returncode, 0, p.stderr)
        first = slurp(out)
        p = run("volume", *names, "-f", "tsv", "-o", out, "--resume")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(slurp(out), first)

    def test_resume_of_tsv_analyses_again_names_that_share_a_cell(self):
        # `a<TAB>b.h5` and `a b.h5` are one TSV cell: the row FILE keeps cannot
        # say which it was, so both are analysed again and each is in FILE once.
        tab, space = self.path("a\tb.h5"), self.path("a b.h5")
        write_checkpoints(tab, 1, 10, seed=5)
        write_checkpoints(space, 1, 12, seed=6)
        out = self.path("rows.tsv")
        p = run("volume", tab, "-f", "tsv", "-o", out)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = run("volume", tab, space, "-f", "tsv", "-o", out, "--resume")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = slurp(out).splitlines()
        header = lines[0].split("\t")
        rows = [dict(zip(header, line.split("\t"))) for line in lines[1:]]
        self.assertEqual(sorted(r["n"] for r in rows), ["10", "12"])
        # FILE's two rows of that cell cannot be told apart: a rerun on one of
        # the names analyses it again and keeps neither saved row.
        p = run("volume", space, "-f", "tsv", "-o", out, "--resume")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = slurp(out).splitlines()
        self.assertEqual([dict(zip(header, line.split("\t")))["n"] for line in lines[1:]], ["12"])

    def test_resume_of_json_lines_with_names_that_are_not_utf8(self):
        # JSON writes bytes that are not UTF-8 as U+FFFD: two such names read
        # back alike, so both are analysed again, and each Hessian is in FILE once.
        f = self.path("names.h5")
        with h5py.File(f, "w") as h:
            h.create_dataset(b"bad\xff\xfename", data=np.diag([3.0, 2.0, 0.0]))
            h.create_dataset(b"bad\xfe\xffname", data=np.diag([3.0, 0.0, 0.0, 0.0]))  # another n
            h.create_dataset("good", data=np.diag([1.0, 0.0, 0.0]))
        out = self.path("rows.jsonl")
        for resume in ((), ("--resume",), ("--resume",)):
            p = run("volume", f, "-f", "jsonl", "-o", out, *resume)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(sorted(r["dim"] for r in jsonl(slurp(out))), [1, 2, 3], resume)
            if resume:  # the names collide; no n changed
                self.assertIn("cannot be told from another Hessian's", p.stderr)
                self.assertNotIn("n changed", p.stderr)
        # Ranked from the saved rows, two rows of one name and different
        # answers are two Hessians: both rank, and the warning says so (one
        # was dropped). Runs joined by cat (one answer twice) merge.
        p = run("rank", "--from-results", out, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(sorted(r["dim"] for r in jsonl(p.stdout)), [1, 2, 3])
        self.assertIn("holds two rows named", p.stderr)
        twice = self.path("twice.jsonl")
        with open(twice, "w") as fh:
            fh.write(slurp(out) + slurp(out))
        p = run("rank", "--from-results", twice, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(sorted(r["dim"] for r in jsonl(p.stdout)), [1, 2, 3])
        self.assertIn("is in " + twice + " twice; kept the first", p.stderr)

    def test_from_results_of_one_run_saved_as_json_lines_and_tsv_ranks_each_hessian_once(self):
        # TSV writes a tab in a dataset's name as a space: its row is the
        # JSON Lines row of the name with the tab, not another Hessian, and
        # keeps that name. A Hessian named with a real space beside it (its
        # TSV row written alike, its answer another) stays its own, whatever
        # the order of the files and of the TSV's rows (a ranking's).
        f = self.path("tabs.h5")
        with h5py.File(f, "w") as h:
            h["a\tb"] = np.diag([3.0, 2.0, 1.0, 0.0])
            h["a b"] = np.diag([5.0, 5.0, 0.0, 0.0])
            h["c"] = np.diag([1.0, 1.0, 1.0, 0.0])
            h["d"] = np.diag([5.0, 5.0, 5.0, 0.0])
        saved = {fmt: self.path("tabs." + fmt) for fmt in ("jsonl", "tsv", "csv")}
        for fmt, out in saved.items():
            self.assertEqual(run("volume", f, "-f", fmt, "-o", out).returncode, 0)
        saved["ranked.tsv"] = self.path("ranked.tsv")  # the rows in place order: "a b" before "a\tb"
        self.assertEqual(run("rank", f, "-f", "tsv", "-o", saved["ranked.tsv"]).returncode, 0)
        saved["tab.jsonl"], saved["space.tsv"] = self.path("tab.jsonl"), self.path("space.tsv")
        self.assertEqual(run("volume", f + ":/a\tb", "-f", "jsonl", "-o", saved["tab.jsonl"]).returncode, 0)
        self.assertEqual(run("volume", f + ":/a b", "-f", "tsv", "-o", saved["space.tsv"]).returncode, 0)
        direct = {r["source"]: (r["place"], r["rank"]) for r in jsonl(run("rank", f, "-f", "jsonl").stdout)}
        self.assertEqual(len(direct), 4)
        for files in (("jsonl", "tsv"), ("tsv", "jsonl"), ("csv", "tsv"), ("ranked.tsv", "jsonl"),
                      ("jsonl", "ranked.tsv"), ("tab.jsonl", "space.tsv"), ("space.tsv", "tab.jsonl")):
            p = run("rank", "--from-results", *(saved[x] for x in files), "-f", "jsonl")
            self.assertEqual(p.returncode, 0, p.stderr)
            got = {r["source"]: (r["place"], r["rank"]) for r in jsonl(p.stdout)}
            if "tab.jsonl" in files:  # the two Hessians alone, each with its own answer
                self.assertEqual({k: rank for k, (_, rank) in got.items()},
                                 {k: rank for k, (_, rank) in direct.items() if ":/a" in k}, files)
                self.assertEqual(sorted(place for place, _ in got.values()), [1, 2], files)
                continue
            self.assertEqual(got, direct, files)
            self.assertIn(f + ":/a\\tb is in both", p.stderr)  # a tab in a message is written as \\t
            self.assertIn("(TSV writes its name %s:/a b, tabs and line breaks as spaces)" % f, p.stderr)

    def test_from_results_ranks_one_file_under_two_names_once(self):
        # Shards whose lists name one file twice (a symbolic link, a relative
        # and an absolute path): a direct rank lists it once; the merge did
        # too few checks and ranked it twice, shifting every place below.
        d = self.path("two_names")
        os.makedirs(d)
        real = os.path.join(d, "sp ace.h5")
        with h5py.File(real, "w") as h:
            h["a"] = np.diag([3.0, 2.0, 0.0])
            h["b"] = np.diag([1.0, 0.0, 0.0])
        link = os.path.join(d, "new\nline.h5")
        os.symlink("sp ace.h5", link)
        direct = run("rank", real, link, "-f", "jsonl")
        self.assertEqual(direct.returncode, 0, direct.stderr)
        places = {r["source"]: r["place"] for r in jsonl(direct.stdout)}
        self.assertEqual(sorted(places), [real + ":/a", real + ":/b"])
        self.assertEqual(len(direct.stderr.strip().splitlines()), 1, direct.stderr)  # its warning is one line
        saved = self.path("two_names.jsonl")
        self.assertEqual(run("volume", real, link, "-f", "jsonl", "-o", saved).returncode, 0)
        p = run("rank", "--from-results", saved, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        got = jsonl(p.stdout)
        self.assertEqual({r["source"]: r["place"] for r in got}, places)
        self.assertIn("are one Hessian (one file under two names); kept the row of " + real + ":/a", p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 2, p.stderr)
        # Rows that answer otherwise are two Hessians, both kept: the file
        # rewritten between the runs, or a relative name saved in another
        # folder than the one the merge runs in.
        first = self.path("before_rewrite.jsonl")
        self.assertEqual(run("volume", link, "-f", "jsonl", "-o", first).returncode, 0)
        with h5py.File(real, "w") as h:
            h["a"] = np.diag([3.0, 2.0, 1.0])
            h["b"] = np.diag([1.0, 0.0, 0.0])
        second = self.path("after_rewrite.jsonl")
        self.assertEqual(run("volume", real, "-f", "jsonl", "-o", second).returncode, 0)
        p = run("rank", "--from-results", first, second, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        got = {r["source"]: r["rank"] for r in jsonl(p.stdout)}
        self.assertEqual((got[link + ":/a"], got[real + ":/a"]), (2, 3))
        self.assertEqual(len(got), 3)  # /b answers alike under both names: one row
        elsewhere = self.path("elsewhere")
        os.makedirs(elsewhere)
        with h5py.File(os.path.join(elsewhere, "sp ace.h5"), "w") as h:
            h["a"] = np.diag([5.0, 0.0, 0.0])
        relative = self.path("relative.jsonl")
        p = subprocess.run([BIN, "volume", "sp ace.h5:/a", "-f", "jsonl", "-o", relative], cwd=elsewhere,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = subprocess.run([BIN, "rank", "--from-results", relative, second, "-f", "jsonl"], cwd=d,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(sorted((r["source"], r["rank"]) for r in jsonl(p.stdout) if r["dataset"] == "/a"),
                         [(real + ":/a", 3), ("sp ace.h5:/a", 1)])

    def test_from_results_of_runs_at_different_thresholds_warns(self):
        # Shards run with different -T: log V moves by r/2 log T, so rows of
        # one dimension were ordered across units without a word.
        for name in ("a.h5", "b.h5"):
            with h5py.File(self.path(name), "w") as h:
                h["h"] = np.diag([3.0, 2.0, 0.0])
        one, other = self.path("t1.jsonl"), self.path("t2.jsonl")
        self.assertEqual(run("volume", self.path("a.h5"), "-f", "jsonl", "-o", one).returncode, 0)
        self.assertEqual(run("volume", self.path("b.h5"), "-T", "0.01", "-f", "jsonl", "-o", other).returncode, 0)
        p = run("rank", "--from-results", one, other, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("measured at different thresholds T", p.stderr)
        got = jsonl(p.stdout)
        self.assertEqual([r["threshold"] for r in got], [1.0, 0.01])
        self.assertTrue(all("mixed_threshold" in r["warnings"] for r in got), got)
        # The same -T: no warning, and none carried over from the saved rows.
        p = run("rank", "--from-results", one, "-f", "jsonl")
        self.assertNotIn("thresholds", p.stderr)
        self.assertNotIn("mixed_threshold", jsonl(p.stdout)[0]["warnings"])
        p = run("compare", self.path("a.h5"), self.path("b.h5"), "-f", "json")
        self.assertNotIn("thresholds", json.loads(p.stdout)["reason"])

    def test_from_results_of_runs_under_abs_and_drop_warns(self):
        # A saddle run under --negatives drop holds fewer volume directions
        # than the same saddle under abs: merged, it ranked above its twin by
        # the policy alone, without a word.
        for name in ("s.h5", "t.h5"):
            with h5py.File(self.path(name), "w") as h:
                h["h"] = np.diag([3.0, 2.0, -1.0, 0.0])
        kept, dropped = self.path("abs.jsonl"), self.path("drop.jsonl")
        self.assertEqual(run("volume", self.path("s.h5"), "-f", "jsonl", "-o", kept).returncode, 0)
        self.assertEqual(run("volume", self.path("t.h5"), "--negatives", "drop", "-o", dropped).returncode, 0)
        p = run("rank", "--from-results", kept, dropped, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("computed under different --negatives", p.stderr)
        got = jsonl(p.stdout)
        self.assertEqual([(r["rank"], r["negative"]) for r in got], [(2, 1), (3, 1)])
        self.assertTrue(all("mixed_negatives" in r["warnings"] for r in got), got)
        p = run("rank", "--from-results", dropped, "-f", "jsonl")
        self.assertNotIn("--negatives", p.stderr)
        self.assertNotIn("mixed_negatives", jsonl(p.stdout)[0]["warnings"])
        # One Hessian in both: one row is kept, and the warning says the two differ.
        again = self.path("drop_s.jsonl")
        self.assertEqual(run("volume", self.path("s.h5"), "--negatives", "drop", "-o", again).returncode, 0)
        p = run("rank", "--from-results", kept, again, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("; kept the row of %s (their answers differ: rank 3 and 2, dim 1 and 1" % kept, p.stderr)
        # Log-volumes within their error bars are one answer: the last digits
        # move with the BLAS thread count.
        with open(again) as f:
            row = json.loads(f.readline())
        row["log_volume"] += 0.5 * row["log_volume_error"]
        row["log10_volume"] = row["log_volume"] / math.log(10)
        nudged = self.path("nudged.jsonl")
        with open(nudged, "w") as f:
            f.write(json.dumps(row) + "\n")
        p = run("rank", "--from-results", again, nudged, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("; kept the row of %s\n" % again, p.stderr)

    def test_copies_cut_at_different_levels_ranked_together_warn(self):
        # A value at 1e-9 of the largest is flat in float32 (its cut about
        # 5e-7) and curved in float64: the copies' dims differ by storage.
        # The same with float64 copies whose stated errors differ (1e-7 and
        # 1e-14): the floor, and so the cut, is the stated error's.
        values = np.array([1.0, 0.5, 1e-9, 0.0])
        q = np.linalg.qr(np.random.default_rng(3).standard_normal((4, 4)))[0]
        m = q @ np.diag(values) @ q.T
        m = (m + m.T) / 2
        with h5py.File(self.path("c.h5"), "w") as h:
            h["f64"] = m
            h["f32"] = m.astype(np.float32)
        with h5py.File(self.path("e.h5"), "w") as h:
            h["fd"] = m
            h["fd"].attrs["hessian_error"] = 1e-7
            h["ag"] = m
            h["ag"].attrs["hessian_error"] = 1e-14
        for f, finer, coarser in (("c.h5", "/f64", "/f32"), ("e.h5", "/ag", "/fd")):
            p = run("rank", self.path(f), "-f", "jsonl")
            self.assertEqual(p.returncode, 0, p.stderr)
            got = {r["dataset"]: r for r in jsonl(p.stdout)}
            self.assertEqual((got[coarser]["dim"], got[finer]["dim"]), (2, 1))
            for r in got.values():  # max|λ| = 1
                self.assertAlmostEqual(r["spectral_norm"], 1.0, delta=1e-6 if r["stored_type"] == "float32" else 1e-14)
            self.assertIn("1 row is cut lower, against its largest eigenvalue, than another row", p.stderr)
            # The finer row is the one whose dim counts a value the other's level calls flat.
            self.assertIn("mixed_level", got[finer]["warnings"])
            self.assertNotIn("mixed_level", got[coarser]["warnings"])
            rtol = re.search(r"--rtol (\S+) counts every row at one level", p.stderr).group(1)
            self.assertGreaterEqual(float(rtol), got[coarser]["tol"] / got[coarser]["spectral_norm"])
            # Its advice counts both at one level.
            p = run("rank", self.path(f), "--rtol", rtol, "-f", "jsonl")
            self.assertEqual([r["dim"] for r in jsonl(p.stdout)], [2, 2])
            self.assertNotIn("mixed_level", p.stdout + p.stderr)
            p = run("compare", self.path(f) + ":" + coarser, self.path(f) + ":" + finer, "-f", "json")
            c = json.loads(p.stdout)
            self.assertIn("B's cut lies lower against its largest value", c["reason"])
            self.assertIn("--rtol", c["reason"])
            self.assertEqual(c["warnings"], ["mixed_level"])
            self.assertIn("mixed_level", c["b"]["warnings"])
            self.assertNotIn("mixed_level", c["a"]["warnings"])
            # A ranks above B by the dim its coarser cut counts: --strict does not take that as certain.
            self.assertEqual((p.returncode, c["result"], c["noise_decides"]), (0, "above", False))
            p = run("compare", self.path(f) + ":" + coarser, self.path(f) + ":" + finer, "--strict")
            self.assertEqual(p.returncode, 3, p.stderr)
            # At one level only noise is left for --strict to report.
            p = run("compare", self.path(f) + ":" + coarser, self.path(f) + ":" + finer, "--strict", "--rtol", rtol,
                    "-f", "json")
            c = json.loads(p.stdout)
            self.assertEqual(c["warnings"], [])
            self.assertEqual(p.returncode, 3 if c["noise_decides"] else 0 if c["result"] == "above" else 1)
        # A row saved without spectral_norm (by an earlier version): its cut
        # cannot be placed against the others', and the note says so.
        saved = [r for r in jsonl(run("volume", self.path("c.h5"), "-f", "jsonl").stdout)]
        for r in saved:
            del r["spectral_norm"]
        old = self.path("old.jsonl")
        with open(old, "w") as f:
            f.write("".join(json.dumps(r) + "\n" for r in saved))
        p = run("rank", "--from-results", old, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("2 rows were saved without spectral_norm", p.stderr)
        self.assertNotIn("mixed_level", p.stdout)
        # Copies whose values lie far from both cuts count one dim at either
        # level: no warning, whatever their stated errors.
        clean = q @ np.diag([1.0, 0.5, 0.2, 0.0]) @ q.T
        clean = (clean + clean.T) / 2
        with h5py.File(self.path("clean.h5"), "w") as h:
            h["f64"] = clean
            h["f32"] = clean.astype(np.float32)
            h["fd"] = clean
            h["fd"].attrs["hessian_error"] = 1e-9
        p = run("rank", self.path("clean.h5"), "-f", "jsonl")
        self.assertEqual([r["dim"] for r in jsonl(p.stdout)], [1, 1, 1])
        self.assertNotIn("mixed_level", p.stdout + p.stderr)
        # One explicit cut over both floors counts them at one level.
        p = run("rank", self.path("c.h5"), "--atol", "1e-6", "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        got = jsonl(p.stdout)
        self.assertEqual([r["dim"] for r in got], [2, 2])
        self.assertNotIn("mixed_level", p.stdout + p.stderr)

    def test_from_results_of_runs_under_different_cuts_warns(self):
        # One Hessian run at --atol 1e-5 and at the default cut: its values
        # at 1e-8 are flat in one and curved in the other, and the merged
        # ranking put the two dims side by side without a word.
        values = np.r_[np.logspace(1, -3, 10), [1e-8, 1e-8], np.zeros(4)]
        for name in ("a.h5", "b.h5"):
            with h5py.File(self.path(name), "w") as h:
                h["h"] = np.diag(values)
        # JSON Lines records no options: the rows' own cut fields tell.
        cut, auto = self.path("cut.jsonl"), self.path("auto.jsonl")
        self.assertEqual(run("volume", self.path("a.h5"), "--atol", "1e-5", "-o", cut).returncode, 0)
        self.assertEqual(run("volume", self.path("b.h5"), "-o", auto).returncode, 0)
        p = run("rank", "--from-results", cut, auto, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        got = jsonl(p.stdout)
        self.assertEqual(sorted((r["cut"], r["dim"]) for r in got), [("atol", 6), ("dtype", 4)])
        self.assertIn("the rows were cut by different rules", p.stderr)
        self.assertTrue(all("mixed_cut" in r["warnings"] for r in got), got)
        p = run("rank", "--from-results", cut, "-f", "jsonl")
        self.assertNotIn("different rules", p.stderr)
        self.assertNotIn("mixed_cut", jsonl(p.stdout)[0]["warnings"])
        # --cut gap and the default: both automatic rules, which the rows do
        # not tell apart; the JSON files record them. Other options are named.
        gap, threshold, auto = self.path("gap.json"), self.path("t.json"), self.path("auto.json")
        self.assertEqual(run("volume", self.path("b.h5"), "-o", auto).returncode, 0)
        self.assertEqual(run("volume", self.path("a.h5"), "--cut", "gap", "-o", gap).returncode, 0)
        self.assertEqual(run("volume", self.path("a.h5"), "-T", "0.5", "-o", threshold).returncode, 0)
        p = run("rank", "--from-results", gap, auto, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('the results files record different cuts (cut "auto" and "gap")', p.stderr)
        self.assertTrue(all("mixed_cut" in r["warnings"] for r in jsonl(p.stdout)))
        p = run("rank", "--from-results", auto, threshold, "-f", "jsonl")
        self.assertIn("the results files record different options (threshold 0.5 and null)", p.stderr)
        self.assertNotIn("mixed_cut", p.stdout + p.stderr)
        # A file that records none beside one that does: said.
        p = run("rank", "--from-results", gap, cut, "-f", "jsonl")
        self.assertIn("%s records no options" % cut, p.stderr)

    def test_from_results_keeps_two_hessians_tsv_names_alike_and_merges_joined_runs(self):
        # `a b.h5` and `a<TAB>b.h5` are one name in TSV: ranking the saved rows
        # dropped one Hessian (exit 0). Runs of one name joined by cat merge,
        # even when their answers differ (-T changed between them).
        for name, spec in (("a b.h5", [3.0, 2.0, 0.0]), ("a\tb.h5", [0.1, 0.2, 0.0]), ("c.h5", [1.0, 0.0, 0.0])):
            with h5py.File(self.path(name), "w") as h:
                h["h"] = np.diag(spec)
        saved = self.path("r.tsv")
        p = run("volume", self.path("a b.h5"), self.path("a\tb.h5"), "-f", "tsv", "-o", saved)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = run("rank", "--from-results", saved, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        got = jsonl(p.stdout)
        self.assertEqual([r["place"] for r in got], [1, 2])
        self.assertEqual({r["source"] for r in got}, {self.path("a b.h5") + ":/h"})
        self.assertIn("holds two rows named", p.stderr)
        # One of the two failed: its error row stays, and so does exit 1.
        with h5py.File(self.path("x\ty.h5"), "w") as h:
            h["h"] = np.diag([1.0, np.nan, 0.0])
        p = run("volume", self.path("a b.h5"), self.path("x\ty.h5"), "-f", "tsv", "-o", saved)
        self.assertEqual(p.returncode, 1, p.stderr)
        os.rename(self.path("x\ty.h5"), self.path("x y.h5"))
        with open(saved) as fh:
            text = fh.read().replace(self.path("a b.h5"), self.path("x y.h5"))  # a spaced twin, ok
        with open(saved, "w") as fh:
            fh.write(text)
        p = run("rank", "--from-results", saved, "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual([r["status"] for r in jsonl(p.stdout)], ["ok", "error"])
        self.assertIn("note: 1 saved row(s) are error rows", p.stderr)
        joined = self.path("joined.jsonl")
        with open(joined, "w") as fh:
            for T in ("1", "2"):
                fh.write(run("volume", self.path("c.h5"), "-T", T, "-f", "jsonl").stdout)
            fh.write(run("volume", self.path("missing.h5"), "-f", "jsonl").stdout)
        p = run("rank", "--from-results", joined, "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual([r["status"] for r in jsonl(p.stdout)], ["ok", "error"])
        self.assertIn("c.h5:/h is in " + joined + " twice; kept the first", p.stderr)
        self.assertIn("note: 1 saved row(s) are error rows (listed last, exit 1)", p.stderr)
        # JSON Lines writes a tab as \t: a spaced name is one Hessian's. A run
        # that failed, joined with its rerun that did not, is the rerun's row.
        spaced = self.path("c d.h5")
        with h5py.File(spaced, "w") as h:
            h["h"] = np.diag([1.0, np.nan, 0.0])
        with open(joined, "w") as fh:
            fh.write(run("volume", spaced, "-f", "jsonl").stdout)
            with h5py.File(spaced, "a") as h:
                h["h"][...] = np.diag([1.0, 2.0, 0.0])
            for T in ("1", "2"):
                fh.write(run("volume", spaced, "-T", T, "-f", "jsonl").stdout)
        p = run("rank", "--from-results", "-", "-f", "jsonl", stdin=slurp(joined))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([(r["status"], r["threshold"]) for r in jsonl(p.stdout)], [("ok", 1.0)])
        self.assertIn("is in standard input twice; kept the ok row", p.stderr)

    def test_tsv_and_csv_are_utf8_with_names_as_json_writes_them(self):
        # A file and a dataset name that are not UTF-8: every machine format
        # writes their bytes as U+FFFD, so TSV and CSV decode as UTF-8 and
        # name each row as JSON (and the journal, which --resume reads) does.
        d = os.fsencode(self.path(""))
        f = os.path.join(d, b"run\xff.h5")
        with h5py.File(f, "w") as h:
            h.create_dataset(b"bad\xfe\xffname", data=np.diag([3.0, 2.0, 0.0]))
            h.create_dataset("good", data=np.diag([1.0, 0.0, 0.0]))
        p = subprocess.run([BIN, "volume", f, "-f", "jsonl"], capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        want = [r["source"] for r in jsonl(p.stdout.decode("utf-8"))]
        self.assertTrue(all("\ufffd" in s for s in want), want)
        for fmt in ("tsv", "csv"):
            p = subprocess.run([BIN, "volume", f, "-f", fmt], capture_output=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            text = p.stdout.decode("utf-8")  # strict: fails on a byte that is not UTF-8
            rows = list(csv.DictReader(io.StringIO(text), delimiter="\t" if fmt == "tsv" else ","))
            self.assertEqual([r["source"] for r in rows], want, fmt)

    def test_resume_of_json_refuses_other_options(self):
        # A JSON FILE records its options: a rerun under others is refused
        # before any work, and FILE stays as it was.
        a = write_checkpoints(self.path("a.h5"), 2, 20, seed=9)
        out = self.path("rows.json")
        p = run("volume", a, "-f", "json", "-o", out)
        self.assertEqual(p.returncode, 0, p.stderr)
        before = slurp(out)
        for args, words in ((("-T", "2"), "--threshold not given, this run has 2"),
                            (("--cut", "gap"), "--cut auto, this run has gap"),
                            (("--negatives", "drop"), "--negatives abs, this run has drop")):
            p = run("volume", a, "-f", "json", "-o", out, "--resume", *args)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn(words, p.stderr)
            self.assertEqual(slurp(out), before)
        p = run("rank", a, "-f", "json", "-o", out, "--resume", "--tie-tol", "0.5")  # places only
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_a_ranking_of_saved_rows_records_their_options_or_none(self):
        a = write_checkpoints(self.path("a.h5"), 3, 20, seed=15)
        saved = self.path("saved.json")
        self.assertEqual(run("volume", a, "-T", "0.5", "-f", "json", "-o", saved).returncode, 0)
        # One JSON file (or several that agree): its options, with this ranking's tie_tol.
        ranked = self.path("ranked.json")
        p = run("rank", "--from-results", saved, "--tie-tol", "0.25", "-f", "json", "-o", ranked)
        self.assertEqual(p.returncode, 0, p.stderr)
        options = json.loads(slurp(ranked))["context"]["options"]
        self.assertEqual(options["threshold"], 0.5)
        self.assertEqual(options["tie_tol"], 0.25)
        # The saddle order recorded is the one this ranking used: a ranking
        # saved under `last`, ranked again without it, recorded `last`
        # beside rows in `abs` order.
        last = self.path("last.json")
        self.assertEqual(run("rank", a, "--negatives", "last", "-f", "json", "-o", last).returncode, 0)
        for given, recorded in (((), "abs"), (("--negatives", "last"), "last")):
            p = run("rank", "--from-results", last, *given, "-f", "json")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(json.loads(p.stdout)["context"]["options"]["negatives"], recorded, given)
        before = slurp(ranked)
        p = run("rank", a, "-f", "json", "-o", ranked, "--resume")  # -T 1: not the rows' threshold
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("--threshold 0.5, this run has not given", p.stderr)
        self.assertEqual(slurp(ranked), before)
        p = run("rank", a, "-T", "0.5", "-f", "json", "-o", ranked, "--resume", "--tie-tol", "0.25")
        self.assertEqual(p.returncode, 0, p.stderr)
        # Files that do not record them (JSON Lines), or disagree: none (null).
        lines = self.path("saved.jsonl")
        self.assertEqual(run("volume", a, "-f", "jsonl", "-o", lines).returncode, 0)
        for inputs in ((lines,), (saved, lines), (lines, saved)):
            p = run("rank", "--from-results", *inputs, "-f", "json")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIsNone(json.loads(p.stdout)["context"]["options"], inputs)
        other = self.path("other.json")
        self.assertEqual(run("volume", a, "-f", "json", "-o", other).returncode, 0)
        p = run("rank", "--from-results", saved, other, "-f", "json")
        self.assertIsNone(json.loads(p.stdout)["context"]["options"])

    def test_resume_of_a_killed_json_run_refuses_other_options(self):
        # Killed, a JSON run leaves only FILE.journal: it records the options
        # too, and a rerun under others is refused before any work.
        f = self.big_batch()
        out = self.path("rows.json")
        proc = subprocess.Popen([BIN, "volume", f, "-f", "json", "-j", "1", "-o", out],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        journal = out + ".journal"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if os.path.exists(journal) and slurp(journal).count("\n") >= 3:  # the options and two rows
                break
            time.sleep(0.01)
        proc.kill()
        proc.communicate()
        self.assertFalse(os.path.exists(out))
        kept = slurp(journal)
        self.assertTrue(kept.startswith('{"context":{"options":{'), kept[:200])
        p = run("volume", f, "-f", "json", "-o", out, "--resume", "-T", "2")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(journal + "' was written with --threshold not given, this run has 2", p.stderr)
        self.assertEqual(slurp(journal), kept)
        # Whatever -f the rerun gives: the journal's rows were computed under its options.
        p = run("volume", f, "-f", "jsonl", "-o", out, "--resume", "-T", "2")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("was written with --threshold not given, this run has 2", p.stderr)
        self.assertEqual(slurp(journal), kept)
        p = run("volume", f, "-f", "json", "-o", out, "--resume")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = json.loads(slurp(out))["rows"]
        self.assertEqual(len(rows), 60)
        self.assertEqual({r["threshold"] for r in rows}, {1.0})
        self.assertFalse(os.path.exists(journal))

    def test_resume_says_when_a_hessian_changed_size(self):
        f = self.path("chg.h5")
        with h5py.File(f, "w") as h5:
            h5["h"] = np.eye(3)
        out = self.path("chg.jsonl")
        self.assertEqual(run("volume", f, "-f", "jsonl", "-o", out).returncode, 0)
        with h5py.File(f, "w") as h5:
            h5["h"] = np.eye(5)
        p = run("volume", f, "-f", "jsonl", "-o", out, "--resume")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "basinvol: note: %s: 1 saved row(s) are of a Hessian whose n changed since "
                                   "(%s:/h: n was 3, is 5); they are analyzed again\n" % (out, f))
        self.assertEqual([r["n"] for r in jsonl(slurp(out))], [5])

    def test_resume_of_a_hessian_named_twice_keeps_its_row(self):
        a = write_checkpoints(self.path("a.h5"), 1, 10, seed=5)
        src = a + ":/checkpoints/step_0000"
        out = self.path("rows.jsonl")
        self.assertEqual(run("volume", src, src, "-f", "jsonl", "-o", out).returncode, 0)
        fresh = jsonl(slurp(out))
        self.assertEqual(len(fresh), 2)  # volume: a source given twice is two rows (rank: one)
        p = run("volume", src, src, "-f", "jsonl", "-o", out, "--resume")
        self.assertEqual(p.returncode, 0, p.stderr)
        again = slurp(out)
        self.assertEqual(jsonl(again), [fresh[0]] * 2)  # kept (not analysed again), a row per time it is given
        run("volume", src, src, "-f", "jsonl", "-o", out, "--resume")
        self.assertEqual(slurp(out), again)

    def test_one_hessian_named_by_several_sources_is_ranked_once(self):
        """The file and FILE:PATH, a soft link, a hard link met again, a
        symlinked file: one dataset, one row of a ranking (under the name
        listed first); before, `rank` placed it against itself, where
        `rank --from-results` of the same rows kept one. (`volume` gives a
        SOURCE's rows each time it is given.)"""
        f = self.path("d.h5")
        with h5py.File(f, "w") as h:
            h["ckpt/a"] = np.diag([1.0, 0, 0])
            h["ckpt/b"] = np.diag([2.0, 0, 0])
            h["ckpt/c"] = np.diag([1.0, 1.0, 0])
            h["ckpt/latest"] = h5py.SoftLink("/ckpt/b")
            h["best"] = h["ckpt/c"]  # a hard link: the walk meets /best first
        link = self.path("link.h5")
        os.symlink(f, link)
        p = run("rank", f, f + ":/ckpt/a", f + ":/ckpt/latest", link, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = jsonl(p.stdout)
        self.assertEqual([(r["place"], r["dataset"]) for r in rows], [(1, "/ckpt/a"), (2, "/ckpt/b"), (3, "/best")])
        self.assertIn("SOURCE %s:/ckpt/latest lists a Hessian listed already by an earlier SOURCE "
                      "(%s:/ckpt/latest is %s:/ckpt/b)" % (f, f, f), p.stderr)
        self.assertIn("SOURCE %s lists 3 Hessians listed already" % link, p.stderr)
        # Saved and ranked again: the same places.
        saved = self.path("rows.jsonl")
        self.assertEqual(run("rank", f, f + ":/ckpt/a", link, "-f", "jsonl", "-o", saved).returncode, 0)
        p = run("rank", "--from-results", saved, "-f", "jsonl")
        self.assertEqual([(r["place"], r["dataset"]) for r in jsonl(p.stdout)], [(1, "/ckpt/a"), (2, "/ckpt/b"), (3, "/best")])
        self.assertNotIn("warning", p.stderr)
        self.assertEqual(len(jsonl(run("volume", f, f + ":/ckpt/a", "-f", "jsonl").stdout)), 4)
        # Different Hessians of equal values stay two rows.
        g = self.path("twin.h5")
        shutil.copy(f, g)
        self.assertEqual(len(jsonl(run("rank", f + ":/ckpt/a", g + ":/ckpt/a", "-f", "jsonl").stdout)), 2)

    def test_resume_of_tsv_tells_an_error_row_from_an_ok_row_of_one_cell(self):
        tab, space = self.path("a\tb.h5"), self.path("a b.h5")
        write_checkpoints(tab, 1, 10, seed=5)
        with open(space, "w") as fh:
            fh.write("not yet")
        out = self.path("rows.tsv")
        self.assertEqual(run("volume", tab, space, "-f", "tsv", "-o", out).returncode, 1)
        write_checkpoints(space, 1, 12, seed=6)
        p = run("volume", space, "-f", "tsv", "-o", out, "--resume")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = list(csv.DictReader(io.StringIO(slurp(out)), delimiter="\t"))
        self.assertEqual([r["n"] for r in rows], ["12"])

    def test_resume_of_tsv_knows_journal_rows_of_names_that_are_not_utf8(self):
        # The journal is JSON Lines (U+FFFD for bytes that are not UTF-8); a
        # TSV FILE's rerun must still know its rows.
        f = self.path("names.h5")
        with h5py.File(f, "w") as h:
            h.create_dataset(b"bad\xffname", data=np.diag([3.0, 2.0, 0.0]))
        out = self.path("rows.tsv")
        with open(out + ".journal", "w") as fh:
            fh.write(run("volume", f, "-f", "jsonl").stdout)
        p = run("volume", f, "-f", "tsv", "-o", out, "--resume")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("kept 1 row(s)", p.stderr)
        self.assertEqual(len(slurp(out).splitlines()), 2)

    def test_resume_of_an_empty_file_starts_afresh_and_of_another_file_is_a_usage_error(self):
        a = write_checkpoints(self.path("a.h5"), 3, 20, seed=12)
        full = jsonl(run("volume", a, "-f", "jsonl").stdout)
        for fmt in ("jsonl", "json", "tsv", "csv"):
            # An empty FILE (made by the job script, or by `: > FILE`) holds no rows.
            for blank in ("", "\n \n"):
                out = self.path("empty." + fmt)
                with open(out, "w") as fh:
                    fh.write(blank)
                p = run("volume", a, "-f", fmt, "-o", out, "--resume")
                self.assertEqual(p.returncode, 0, (fmt, repr(blank), p.stderr))
                again = run("rank", "--from-results", out, "-f", "jsonl")
                self.assertEqual(again.returncode, 0, again.stderr)
                self.assertEqual(sorted(r["source"] for r in jsonl(again.stdout)),
                                 sorted(r["source"] for r in full), fmt)
            # A FILE in the format asked for that is not basinvol output is the
            # wrong -o: a usage error (exit 2), like one in another format.
            out = self.path("other." + fmt)
            text = {"jsonl": '{"a": 1}\n', "json": '{"context": 5,\n "rows": [5]}\n', "tsv": "x\ty\n1\t2\n",
                    "csv": "x,y\n1,2\n"}[fmt]
            with open(out, "w") as fh:
                fh.write(text)
            p = run("volume", a, "-f", fmt, "-o", out, "--resume")
            self.assertEqual(p.returncode, 2, (fmt, p.stderr))
            self.assertIn("--resume: " + out, p.stderr.splitlines()[0])
            self.assertEqual(slurp(out), text)

    def test_dash_output_is_standard_output(self):
        a = write_checkpoints(self.path("a.h5"), 2, 10, seed=15)
        cwd = self.path("cwd")
        os.mkdir(cwd)
        p = subprocess.run([BIN, "volume", a, "-f", "jsonl", "-o", "-"], capture_output=True, text=True, cwd=cwd,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(jsonl(p.stdout)), 2)
        self.assertEqual(os.listdir(cwd), [])  # no file named '-'

    def test_output_named_for_a_results_format_is_written_in_it_without_f(self):
        # `rank run.h5 -o results.jsonl` wrote the table into results.jsonl,
        # which rank --from-results then refused.
        a = write_checkpoints(self.path("named.h5"), 3, 10, seed=16)
        want = jsonl(run("rank", a, "-f", "jsonl").stdout)
        for ext in ("jsonl", "json", "tsv", "csv", "JSONL", "Csv", "ndjson"):
            with self.subTest(ext=ext):
                out = self.path("named." + ext)
                p = run("rank", a, "-o", out)
                self.assertEqual(p.returncode, 0, p.stderr)
                with open(out) as fh:
                    self.assertFalse(fh.read().startswith("place  source"), ext)
                back = run("rank", "--from-results", out, "-f", "jsonl")
                self.assertEqual(back.returncode, 0, back.stderr)
                self.assertEqual([r["source"] for r in jsonl(back.stdout)], [r["source"] for r in want])
        # -f given, or another name: as asked, the table by default.
        for args, name in ((("-f", "table"), "told.jsonl"), ((), "named.txt")):
            out = self.path(name)
            self.assertEqual(run("volume", a, *args, "-o", out).returncode, 0)
            with open(out) as fh:
                self.assertTrue(fh.read().startswith("source "), name)
        out = self.path("named_volume.tsv")
        self.assertEqual(run("volume", a, "-o", out).returncode, 0)
        with open(out) as fh:
            self.assertTrue(fh.readline().startswith("source\tfile\t"))

    def test_resume_over_fewer_inputs_keeps_the_rows_of_the_others(self):
        a = write_checkpoints(self.path("a.h5"), 2, 20, seed=13)
        b = write_checkpoints(self.path("b.h5"), 2, 20, seed=14)
        out = self.path("rows.jsonl")
        self.assertEqual(run("volume", a, b, "-f", "jsonl", "-o", out).returncode, 0)
        first = slurp(out)
        os.remove(b)
        p = run("volume", a, "-f", "jsonl", "-o", out, "--resume")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(slurp(out), first)
        # An error row of a file the rerun does not read stays too, and the
        # run says FILE holds a failure (exit 1), in every format.
        for fmt in ("jsonl", "tsv", "csv", "json"):
            out = self.path("rows_with_error." + fmt)
            p = run("volume", a, self.path("gone.h5"), "-f", fmt, "-o", out)
            self.assertEqual(p.returncode, 1, p.stderr)
            p = run("volume", a, "-f", fmt, "-o", out, "--resume")
            self.assertEqual(p.returncode, 1, (fmt, p.stderr))
            p = run("rank", "--from-results", out, "-f", "jsonl")
            rows = jsonl(p.stdout)
            self.assertEqual(sorted(r["status"] for r in rows), ["error", "ok", "ok"], fmt)
            self.assertIn("gone.h5", [r["source"] for r in rows if r["status"] == "error"][0])
        # A dataset's error row stays when the rerun names only another
        # dataset of its file; it is tried again when its file is listed.
        x = self.path("x.h5")
        with h5py.File(x, "w") as h:
            h["a"] = np.diag([2.0, 1.0])
            h["b"] = np.ones((2, 3))  # not square: an error row
        out = self.path("rows_x.jsonl")
        self.assertEqual(run("volume", x, "-f", "jsonl", "-o", out).returncode, 1)
        p = run("volume", x + ":/a", "-f", "jsonl", "-o", out, "--resume")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(sorted(r["status"] for r in jsonl(slurp(out))), ["error", "ok"])
        with h5py.File(x, "a") as h:
            del h["b"]
            h["b"] = np.eye(2)
        p = run("volume", x, "-f", "jsonl", "-o", out, "--resume")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(sorted(r["status"] for r in jsonl(slurp(out))), ["ok", "ok"])
        # A group SOURCE that could not be read is retried by its Hessians.
        g = self.path("g.h5")
        out = self.path("rows_g.jsonl")
        self.assertEqual(run("volume", g + ":/grp", "-f", "jsonl", "-o", out).returncode, 1)
        with h5py.File(g, "w") as h:
            h["grp/a"] = np.eye(2)
            h["grp/b"] = np.eye(3)
        p = run("volume", g + ":/grp", "-f", "jsonl", "-o", out, "--resume")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([r["status"] for r in jsonl(slurp(out))], ["ok", "ok"])

    def test_resume_replaces_saved_rows_of_inputs_that_now_fail(self):
        # A dataset no longer a Hessian, or a file now gone, named again:
        # its error row replaces its saved ok rows (FILE held both, and
        # rank --from-results kept the ok one).
        x = self.path("x.h5")
        y = self.path("y.h5")
        for f in (x, y):
            with h5py.File(f, "w") as h:
                h["a"] = np.diag([2.0, 1.0])
                h["b"] = np.diag([3.0, 1.0])
        for fmt in ("jsonl", "tsv"):
            out = self.path("rows." + fmt)
            self.assertEqual(run("volume", x, y, "-f", fmt, "-o", out).returncode, 0)
        with h5py.File(x, "a") as h:
            del h["b"]
            h["b"] = np.ones((2, 3))  # not square
        os.remove(y)
        for fmt in ("jsonl", "tsv"):
            with self.subTest(fmt):
                out = self.path("rows." + fmt)
                p = run("volume", x, y, "-f", fmt, "-o", out, "--resume")
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn("3 saved row(s) are of a Hessian that now fails to read", p.stderr)
                rows = jsonl(run("rank", "--from-results", out, "-f", "jsonl").stdout)
                self.assertEqual(sorted((r["source"], r["status"]) for r in rows),
                                 sorted([(x + ":/a", "ok"), (x + ":/b", "error"), (y, "error")]))

    def test_resume_computes_error_rows_again(self):
        a = write_checkpoints(self.path("a.h5"), 3, 20, seed=10)
        out = self.path("rows.jsonl")
        p = run("volume", a, self.path("later.h5"), "-f", "jsonl", "-o", out)
        self.assertEqual(p.returncode, 1)
        write_checkpoints(self.path("later.h5"), 2, 20, seed=11)
        p = run("volume", a, self.path("later.h5"), "-f", "jsonl", "-o", out, "--resume")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = jsonl(slurp(out))
        self.assertEqual(len(rows), 5)
        self.assertTrue(all(r["status"] == "ok" for r in rows))
        # A missing object's row is keyed as the object's rows are, however
        # the SOURCE spelled it: once it exists, its ok row replaces it.
        out = self.path("rows_spelled.jsonl")
        p = run("volume", a + "://later//h/", "-f", "jsonl", "-o", out)
        self.assertEqual(p.returncode, 1)
        self.assertEqual([(r["source"], r["dataset"]) for r in jsonl(slurp(out))], [(a + ":/later/h", "/later/h")])
        with h5py.File(a, "a") as h:
            h["later/h"] = np.diag([3.0, 2.0])
        p = run("volume", a + ":/later/h", "-f", "jsonl", "-o", out, "--resume")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([(r["source"], r["status"]) for r in jsonl(slurp(out))], [(a + ":/later/h", "ok")])

    # ------------------------------------------------------------------ interrupts

    def big_batch(self):
        # Enough work that a signal lands mid-batch: 60 Hessians of n = 400.
        return write_checkpoints(self.path("big.h5"), 60, 400, seed=12)

    def slow_batch(self):
        # Three Hessians of n = 3000 (seconds each on one CPU, as the tests
        # pin them): a second signal some tenths of a second after the first
        # lands while one runs.
        f = self.path("slow3k.h5")
        rng = np.random.default_rng(21)
        with h5py.File(f, "w") as h5:
            for i in range(3):
                a = rng.standard_normal((3000, 3000)).astype(np.float32)
                h5["h%d" % i] = a + a.T
        return f

    def test_interrupt_ends_the_wait_for_a_fifo_reader(self):
        # -o FIFO: open(2) waits for a reader; the first Ctrl-C must end it.
        a = write_checkpoints(self.path("a.h5"), 1, 10, seed=5)
        fifo = self.path("rows.fifo")
        os.mkfifo(fifo)
        self.assertStoppedBySigint([BIN, "volume", a, "-f", "jsonl", "-o", fifo],
                                   "Ctrl-C did not end the wait for the FIFO's reader")

    def assertStoppedBySigint(self, command, failure, preexec_fn=None):
        """Starts `command`, sends SIGINT half a second later, and checks that it
        ends within 10 s by it (exit 130, or killed by its default action)."""
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=preexec_fn)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            self.fail(failure)
        self.assertIn(proc.returncode, (130, -signal.SIGINT))

    def test_interrupt_stops_a_run_whose_shell_ignored_it(self):
        # A script's background job (`basinvol ... &`) starts with SIGINT
        # ignored: a SIGINT sent to it stops it all the same, while it lists
        # (a FIFO holds the listing) with FILE as it was, and while it analyses.
        a = write_checkpoints(self.path("a.h5"), 1, 10, seed=5)
        fifo = self.path("source.h5")
        os.mkfifo(fifo)
        out = self.path("rows.jsonl")
        with open(out, "w") as fh:
            fh.write("OLD\n")
        ignore = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.assertStoppedBySigint([BIN, "volume", a, fifo, "-f", "jsonl", "-o", out],
                                   "SIGINT did not stop the listing of a run started with SIGINT ignored", ignore)
        self.assertEqual(slurp(out), "OLD\n")
        proc = subprocess.Popen([BIN, "volume", self.big_batch(), "-f", "jsonl", "-j", "1"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, preexec_fn=ignore)
        clitest.first_line(proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 130, err)

    def test_a_row_s_seconds_leave_out_another_hessian_s_read(self):
        # A dataset of 1x1 chunks takes a few tenths of a second to read,
        # holding HDF5's lock; a small Hessian read beside it waits for the
        # lock, which is not its own time (it reported the big one's read).
        slow = self.path("tiny_chunks.h5")
        rng = np.random.default_rng(21)
        a = rng.standard_normal((400, 400))
        with h5py.File(slow, "w") as h5:
            h5.create_dataset("H", data=a + a.T, chunks=(1, 1))
        small = self.path("small.h5")
        with h5py.File(small, "w") as h5:
            for name in "abc":
                h5[name] = np.eye(20)
        p = run("volume", "-j", "2", slow, small, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = jsonl(p.stdout)
        big = rows[0]["seconds"]
        self.assertGreater(big, 0.05)
        for r in rows[1:]:
            self.assertLess(r["seconds"], big / 4, (r["source"], [x["seconds"] for x in rows]))

    def test_interrupt_flushes_rows_done_and_exits_130(self):
        f = self.big_batch()
        proc = subprocess.Popen([BIN, "volume", f, "-f", "jsonl", "-j", "1"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        first = clitest.first_line(proc)  # a row is out: the batch is running
        self.assertTrue(first.startswith("{"))
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 130, err)
        rows = jsonl(first + rest)  # every line a complete row
        self.assertLess(len(rows), 60)
        self.assertEqual([r["dataset"] for r in rows], ["/checkpoints/step_%04d" % i for i in range(len(rows))])
        self.assertIn("interrupted", err)

    def start_writing(self, f, out, fmt, pin=False):
        """Starts `volume F -f FMT -o OUT` on one job (with `pin`, on one CPU)
        and returns it once its temporary output holds a row."""
        proc = subprocess.Popen((["taskset", "-c", "0"] if pin else []) + [BIN, "volume", f, "-f", fmt, "-j", "1", "-o", out],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            temps = glob.glob(out + ".tmp-*")
            if temps and os.path.getsize(temps[0]) > 0:
                return proc
            time.sleep(0.01)
        proc.kill()
        self.fail("no row was written to a temporary beside %s" % out)

    def test_interrupted_output_file_is_complete_and_resumable(self):
        f = self.big_batch()
        out = self.path("rows.jsonl")
        proc = self.start_writing(f, out, "jsonl")
        self.assertFalse(os.path.exists(out))  # nothing at FILE until the rename
        proc.send_signal(signal.SIGINT)
        stdout, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 130, err)
        self.assertEqual(stdout, "")
        self.assertEqual(glob.glob(out + ".tmp-*"), [])
        partial = jsonl(slurp(out))  # complete lines only
        self.assertGreater(len(partial), 0)
        self.assertLess(len(partial), 60)
        p = run("volume", f, "-f", "jsonl", "-o", out, "--resume")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = jsonl(slurp(out))
        self.assertEqual([r["dataset"] for r in rows], ["/checkpoints/step_%04d" % i for i in range(60)])
        self.assertEqual(rows[:len(partial)], partial)

    def test_a_closed_session_s_sighup_stops_cleanly_unless_nohup_ignores_it(self):
        # SIGHUP (the terminal or ssh session gone) stops as SIGTERM does:
        # FILE complete with the rows done, exit 129. Under nohup (SIGHUP
        # ignored when basinvol starts) the run goes on to the end.
        # A closed terminal sends it twice (the shell's, then the kernel's
        # hangup): the second, while a full-rank Hessian of n = 1500 is
        # running (dense: some tenths of a second), does not abandon it.
        slow = self.path("slow.h5")
        rng = np.random.default_rng(13)
        with h5py.File(slow, "w") as h5:
            for i in range(6):
                a = rng.standard_normal((1500, 1500))
                h5["h%d" % i] = a + a.T
        out = self.path("rows.jsonl")
        proc = self.start_writing(slow, out, "jsonl")
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.1)
        proc.send_signal(signal.SIGHUP)
        _, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 128 + signal.SIGHUP, err)
        self.assertEqual(glob.glob(out + ".tmp-*"), [])
        partial = jsonl(slurp(out))
        self.assertGreater(len(partial), 0)
        self.assertLess(len(partial), 6)
        f = self.big_batch()
        ignore = lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN)
        proc = subprocess.Popen([BIN, "volume", f, "-f", "jsonl", "-j", "1"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, preexec_fn=ignore)
        first = clitest.first_line(proc)
        proc.send_signal(signal.SIGHUP)
        rest, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(len(jsonl(first + rest)), 60)

    def test_second_interrupt_abandons_and_leaves_no_half_file(self):
        f = self.slow_batch()
        out = self.path("rows.json")
        proc = self.start_writing(f, out, "json", pin=True)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.7)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 130)
        self.assertEqual(glob.glob(out + ".tmp-*"), [])
        self.assertFalse(os.path.exists(out), err)  # FILE as it was before the run: absent
        # a script's log says why the output stopped
        self.assertIn("basinvol: interrupted again (SIGINT): the Hessians running are abandoned", err)
        # the row done stays for --resume (after the journal's line of options)
        self.assertEqual([r["dataset"] for r in jsonl(slurp(out + ".journal")) if "source" in r], ["/h0"])

    def test_one_stop_delivered_twice_is_one_stop(self):
        # GNU timeout signals its command, then the command's process group:
        # the same SIGTERM twice, microseconds apart. That is one stop, not a
        # second that abandons the run: FILE is whole, and says so. (50 ms
        # apart here, so that the first is handled before the second comes:
        # one sent while the first is pending would merge with it.)
        f = self.slow_batch()
        for fmt in ("json", "jsonl"):
            out = self.path("rows." + fmt)
            proc = self.start_writing(f, out, fmt, pin=True)
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=120)
            self.assertEqual(proc.returncode, 128 + signal.SIGTERM, err)
            self.assertNotIn("interrupted again", err)
            rows = json.loads(slurp(out))["rows"] if fmt == "json" else jsonl(slurp(out))
            self.assertIn(len(rows), (1, 2))
        # Under timeout itself (its default: the process group too).
        out = self.path("timed.json")
        p = subprocess.run(["timeout", "-s", "TERM", "1", "taskset", "-c", "0", BIN, "volume", self.slow_batch(),
                            "-f", "json", "-j", "1", "-o", out],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 124, p.stderr)  # timeout's own status for a command it stopped
        self.assertNotIn("interrupted again", p.stderr)
        json.loads(slurp(out))

    # ------------------------------------------------------------------ progress

    def run_with_tty_stderr(self, *args):
        master, slave = pty.openpty()
        proc = subprocess.Popen([BIN] + list(args), stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        tty = b""
        while True:
            r, _, _ = select.select([master], [], [], 60)
            if not r:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the other end closed
                break
            if not chunk:
                break
            tty += chunk
        out = proc.stdout.read()
        proc.stdout.close()
        proc.wait(timeout=60)
        os.close(master)
        return proc.returncode, out.decode(), tty.decode(errors="replace")

    def test_progress_bar_only_on_a_terminal_and_never_on_stdout(self):
        f = write_checkpoints(self.path("ckpt.h5"), 5, 30, seed=13)
        rc, out, tty = self.run_with_tty_stderr("volume", f, "-f", "jsonl")
        self.assertEqual(rc, 0)
        self.assertEqual(len(jsonl(out)), 5)  # stdout: rows only
        self.assertNotIn("ETA", out)
        self.assertIn("ETA", tty)
        self.assertIn("/5", tty)
        rc, out, tty = self.run_with_tty_stderr("volume", f, "-f", "jsonl", "--no-progress")
        self.assertEqual(rc, 0)
        self.assertNotIn("ETA", tty)
        p = run("rank", f, "-f", "jsonl")  # stderr a pipe: no bar
        self.assertNotIn("ETA", p.stderr)
        self.assertNotIn("\r", p.stderr)


if __name__ == "__main__":
    clitest.main()
