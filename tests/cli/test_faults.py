#!/usr/bin/python3
"""Faults of the environment, applied from outside: SIGKILL at random moments
of a batch followed by --resume, two runs on one -o, a closed pipe, a full
stdout, a full disk, few file descriptors, 10^4 sources, a file truncated
while it is read, a listing that never ends.

Usage: /usr/bin/python3 tests/cli/test_faults.py PATH/TO/basinvol [unittest options]
Needs Debian's python3-numpy and python3-h5py. Writes only into temporary
directories. BASINVOL_FAULT_SEED fixes the random kill moments (the seed in
use is printed on a failure).
"""
import csv
import glob
import io
import json
import math
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest

import clitest

import h5py
import numpy as np

BIN = None  # set from argv[1] in __main__
SEED = int(os.environ.get("BASINVOL_FAULT_SEED", str(int(time.time()) % 100000)))
# Fields that measure time, not the Hessian: excluded when rows are compared.
TIMING = {"seconds"}


def gram(rng, n, r):
    j = rng.standard_normal((r, n)) / math.sqrt(n)
    h = j.T @ j
    return (h + h.T) / 2


def write_checkpoints(path, count, n, seed, broken=()):
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        g = f.create_group("checkpoints")
        for i in range(count):
            h = gram(rng, n, 2 + (i * 7) % (n - 2))
            if i in broken:
                h[1, 2] = h[2, 1] = np.nan
            g.create_dataset("step_%04d" % i, data=h).attrs["step"] = i
    return path


def jsonl(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def table(text, fmt):
    """TSV/CSV rows as dicts of strings."""
    return list(csv.DictReader(io.StringIO(text), delimiter="\t" if fmt == "tsv" else ","))


def parse(text, fmt):
    return jsonl(text) if fmt == "jsonl" else table(text, fmt)


def deterministic(row):
    """A row without its timing fields (solver.seconds included)."""
    out = {}
    for k, v in row.items():
        if k in TIMING or k.endswith("seconds"):
            continue
        if isinstance(v, dict):
            v = {kk: vv for kk, vv in v.items() if not kk.endswith("seconds")}
        out[k] = v
    return out


def by_source(rows):
    d = {}
    for r in rows:
        if r["source"] in d:
            raise AssertionError("%s appears twice" % r["source"])
        d[r["source"]] = deterministic(r)
    return d


def slurp(path):
    with open(path) as fh:
        return fh.read()


class FaultBase(clitest.TempDirTest):
    prefix = "basinvol-faults-"

    def leftovers(self, out):
        return sorted(glob.glob(out + ".tmp-*") + glob.glob(out + ".journal") + glob.glob(out + ".lock"))

    # ------------------------------------------------------------- SIGKILL + --resume

    def kill_and_resume(self, fmt, sources, reference, rng, want, command="volume"):
        """Trials from an empty directory: up to three runs killed at random
        moments, each with --resume, then one --resume to the end, whose rows
        must equal the uninterrupted run's. Stops when `want` kills have hit a
        running process; returns (kills that hit, of them with journal rows)."""
        landed = with_rows = 0
        base = [BIN, command] + sources + ["-f", fmt, "-j", "2", "--no-progress"]
        for trial in range(60):
            if landed >= want:
                break
            out = self.path("%s-%d.%s" % (command, trial, fmt))
            journaled = set()  # ok rows in the journal when a kill struck
            for k in range(3):
                # Any moment of the run: start-up, listing, rows, the final rename.
                delay = rng.uniform(0, 1.1 * self.full_seconds)
                proc = subprocess.Popen(base + ["-o", out, "--resume"], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
                try:
                    proc.wait(timeout=delay)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGKILL)
                _, err = proc.communicate(timeout=60)
                self.assertIn(proc.returncode, (-signal.SIGKILL, 1),
                              "seed %d trial %d kill %d: %s" % (SEED, trial, k, err))
                if proc.returncode == -signal.SIGKILL:
                    landed += 1
                    journal = out + ".journal"
                    if os.path.exists(journal):  # (-f json's journal starts with its options)
                        with open(journal) as fh:
                            done = [line for line in fh if line.endswith("\n") and '"status":"ok"' in line]
                        with_rows += 1 if done else 0
                        journaled.update(done)
            p = subprocess.run(base + ["-o", out, "--resume"], capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 1, "seed %d: %s" % (SEED, p.stderr))  # the broken member
            self.assertEqual(p.stdout, "")
            final = slurp(out)
            got = by_source(parse(final, fmt))
            self.assertEqual(got, reference, "seed %d trial %d: the resumed rows differ" % (SEED, trial))
            if fmt == "jsonl" and command == "volume":
                # Only the Hessians in flight are redone: a journaled row is kept byte for byte
                # (its `seconds` too), never computed again.
                redone = journaled - set(final.splitlines(keepends=True))
                self.assertEqual(redone, set(), "seed %d trial %d: journaled rows were computed again" %
                                 (SEED, trial))
            self.assertEqual(self.leftovers(out), [], "seed %d trial %d" % (SEED, trial))
        return landed, with_rows


class ProcessFaults(FaultBase):
    """How the process meets kills, locks, pipes, full disks and limits (run
    once, in the plain build)."""

    def test_sigkill_at_random_moments_then_resume_loses_nothing_and_repeats_nothing(self):
        rng = random.Random(SEED)
        a = write_checkpoints(self.path("a.h5"), 48, 400, seed=1, broken=(5,))
        b = write_checkpoints(self.path("b.h5"), 16, 300, seed=2)
        sources = [a, b]
        reference = {}
        for command, fmt in (("volume", "jsonl"), ("volume", "tsv"), ("rank", "jsonl")):
            t0 = time.monotonic()
            p = subprocess.run([BIN, command] + sources + ["-f", fmt, "-j", "2"], capture_output=True, text=True,
                               timeout=120)
            self.full_seconds = max(0.2, time.monotonic() - t0)
            self.assertEqual(p.returncode, 1, p.stderr)
            reference[command, fmt] = by_source(parse(p.stdout, fmt))
            self.assertEqual(len(reference[command, fmt]), 64)
        landed, with_rows = self.kill_and_resume("jsonl", sources, reference["volume", "jsonl"], rng, want=20)
        more, more_rows = self.kill_and_resume("tsv", sources, reference["volume", "tsv"], rng, want=4)
        # rank: every row is ranked at the end, the journaled ones with the new.
        ranked, ranked_rows = self.kill_and_resume("jsonl", sources, reference["rank", "jsonl"], rng, want=4,
                                                   command="rank")
        more += ranked
        more_rows += ranked_rows
        self.assertGreaterEqual(landed + more, 28, "seed %d" % SEED)
        # Kills after rows were journaled are the ones that test the journal.
        self.assertGreaterEqual(with_rows + more_rows, 8, "seed %d: %d kills with rows journaled" %
                                (SEED, with_rows + more_rows))

    def test_rows_finished_behind_a_slow_one_are_journaled_at_once(self):
        # In input order (the default) a row waits to be written for the rows
        # before it; its journal line must not: a run killed while one slow
        # Hessian runs keeps every row finished beside it.
        rng = np.random.default_rng(23)
        f = self.path("slow_first.h5")
        with h5py.File(f, "w") as h:
            h["a_slow"] = gram(rng, 3000, 3000)  # about 2 s of dense solve on one core
            for i in range(6):
                h["b%d" % i] = gram(rng, 30, 10)
        for command in ("volume", "rank"):
            out = self.path(command + ".jsonl")
            proc = subprocess.Popen([BIN, command, f, "-f", "jsonl", "-j", "2", "--no-progress", "-o", out],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            journaled, deadline = [], time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None and len(journaled) < 6:
                if os.path.exists(out + ".journal"):
                    journaled = [l for l in slurp(out + ".journal").splitlines(keepends=True) if l.endswith("\n")]
                time.sleep(0.01)
            running = proc.poll() is None
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
            self.assertTrue(running, "%s: the run ended before its journal held the six small rows" % command)
            self.assertEqual(sorted(json.loads(l)["dataset"] for l in journaled), ["/b%d" % i for i in range(6)])
            p = subprocess.run([BIN, command, f, "-f", "jsonl", "-j", "2", "--no-progress", "-o", out, "--resume"],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("kept 6 row(s)", p.stderr)
            rows = jsonl(slurp(out))
            self.assertEqual(sorted(r["dataset"] for r in rows), ["/a_slow"] + ["/b%d" % i for i in range(6)])
            if command == "volume":  # the journaled rows byte for byte, never computed again
                self.assertEqual(sorted(l for l in slurp(out).splitlines(keepends=True) if "/a_slow" not in l),
                                 sorted(journaled))
            self.assertEqual(self.leftovers(out), [])

    def test_a_fresh_run_discards_the_journal_and_says_so(self):
        a = write_checkpoints(self.path("a.h5"), 3, 30, seed=4)
        out = self.path("rows.jsonl")
        with open(out + ".journal", "w") as fh:
            fh.write('{"source": "elsewhere.h5:/x", "status": "ok", "n": 3, "rank": 2, "dim": 1, "negative": 0, '
                     '"log_volume": 1}\n')
        p = subprocess.run([BIN, "volume", a, "-f", "jsonl", "-o", out], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("unfinished run", p.stderr)
        self.assertEqual(len(jsonl(slurp(out))), 3)
        self.assertEqual(self.leftovers(out), [])

    # ------------------------------------------------------------- two runs, one -o

    def test_a_second_run_on_the_same_output_is_refused_naming_the_first(self):
        a = write_checkpoints(self.path("a.h5"), 4, 30, seed=5)
        out = self.path("rows.jsonl")
        # The first run holds the lock while it waits for its SOURCE list on stdin.
        first = subprocess.Popen([BIN, "volume", "--files-from", "-", "-f", "jsonl", "-o", out],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and first.poll() is None:
            if os.path.exists(out + ".lock") and slurp(out + ".lock").strip() == str(first.pid):
                break
            time.sleep(0.01)
        self.assertEqual(slurp(out + ".lock").strip(), str(first.pid))
        for extra in ([], ["--resume"]):
            second = subprocess.run([BIN, "volume", a, "-f", "jsonl", "-o", out] + extra, capture_output=True,
                                    text=True, timeout=60)
            self.assertEqual(second.returncode, 1, second.stderr)
            self.assertEqual(second.stdout, "")
            lines = second.stderr.splitlines()
            self.assertEqual(len(lines), 1, second.stderr)
            self.assertIn("another basinvol run is writing it (pid %d" % first.pid, lines[0])
            self.assertTrue(os.path.exists(out + ".lock"))  # the refused run leaves the holder's lock alone
        self.assertIsNone(first.poll())
        _, err = first.communicate(a + "\n", timeout=60)
        self.assertEqual(first.returncode, 0, err)
        self.assertEqual(len(jsonl(slurp(out))), 4)
        self.assertEqual(self.leftovers(out), [])
        # Free again: the next run goes ahead.
        p = subprocess.run([BIN, "volume", a, "-f", "jsonl", "-o", out, "--resume"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_a_lock_left_by_a_killed_run_does_not_block(self):
        a = write_checkpoints(self.path("a.h5"), 2, 20, seed=6)
        out = self.path("rows.jsonl")
        with open(out + ".lock", "w") as fh:
            fh.write("999999\n")  # the file of a run that is gone: flock(2) died with it
        p = subprocess.run([BIN, "volume", a, "-f", "jsonl", "-o", out], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.leftovers(out), [])

    # ------------------------------------------------------------- stdout

    def test_closed_pipe_exits_quietly(self):
        a = write_checkpoints(self.path("a.h5"), 200, 8, seed=7)  # far more rows than a pipe holds
        err = self.path("stderr")
        p = subprocess.run(["bash", "-c", '"$0" volume "$1" -f jsonl 2>"$2" | head -n1; echo "${PIPESTATUS[0]}"',
                            BIN, a, err], capture_output=True, text=True, timeout=60)
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), 2, p.stdout)
        self.assertTrue(lines[0].startswith("{"))
        self.assertEqual(lines[1], "141")  # SIGPIPE, as for any Unix filter
        self.assertEqual(slurp(err), "")

    def test_a_closed_stderr_reader_does_not_stop_a_run_into_an_output_file(self):
        # `... -o rows.jsonl 2>&1 | head -n1`, or a log reader that a closed
        # session took away: the first message after it was gone killed the
        # run by SIGPIPE (141), and rows.jsonl was never renamed into place.
        a = write_checkpoints(self.path("a.h5"), 60, 8, seed=7)
        missing = [self.path("missing%d.h5" % i) for i in range(40)]  # an error line each
        out = self.path("rows.jsonl")
        p = subprocess.run(["bash", "-c", '"$0" volume "$@" -f jsonl -j 1 -o "$OUT" 2>&1 | head -n1; '
                            'echo "${PIPESTATUS[0]}"', BIN, *missing, a], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, OUT=out))
        lines = p.stdout.splitlines()
        self.assertEqual(lines[-1], "1", p.stdout)  # the missing files' rows failed; the run ended
        rows = jsonl(slurp(out))
        self.assertEqual(len(rows), 100)
        self.assertEqual(sum(r["status"] == "ok" for r in rows), 60)
        self.assertEqual(glob.glob(out + ".*"), [])
        # Results on standard output stay a filter's: 141 when their reader is gone (the test above).

    def test_full_stdout_is_one_line_and_exit_1(self):
        a = write_checkpoints(self.path("a.h5"), 3, 20, seed=8)
        with open("/dev/full", "w") as full:
            p = subprocess.run([BIN, "volume", a, "-f", "jsonl"], stdout=full, stderr=subprocess.PIPE, text=True,
                               timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr, "basinvol: error: cannot write the results to standard output\n")
        # compare: a failed write is an error (2), not "A does not rank above B" (1), whichever the answer.
        for first, second in (("step_0000", "step_0001"), ("step_0001", "step_0000")):
            with open("/dev/full", "w") as full:
                p = subprocess.run([BIN, "compare", a + ":/checkpoints/" + first, a + ":/checkpoints/" + second,
                                    "-f", "json"], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("cannot write the results to standard output", p.stderr)

    def test_help_and_version_that_cannot_be_written_exit_1(self):
        # A full disk or a closed stdout: one line and exit 1, never a silent 0.
        for args in (["--help"], ["--version"], ["volume", "--help"]):
            for how in ("full", "closed"):
                if how == "full":
                    with open("/dev/full", "w") as full:
                        p = subprocess.run([BIN, *args], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
                else:
                    p = subprocess.run([BIN, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                       timeout=60, preexec_fn=lambda: os.close(1))
                self.assertEqual(p.returncode, 1, (args, how, p.stderr))
                self.assertTrue(p.stderr.startswith("basinvol: error: cannot write to standard output"), p.stderr)
                self.assertEqual(p.stderr.count("\n"), 1, p.stderr)
            self.assertEqual(subprocess.run([BIN, *args], stdout=subprocess.DEVNULL, timeout=60).returncode, 0)

    def test_a_process_limit_runs_the_batch_on_the_threads_that_start(self):
        # ulimit -u (or a pids cgroup): a worker thread that cannot start
        # ended the whole batch with "Resource temporarily unavailable" and
        # no row. The limit binds a user other than root: the run is
        # nobody's, and nobody runs nothing else here.
        if os.geteuid() != 0 or shutil.which("setpriv") is None:
            self.skipTest("needs root and setpriv to run as nobody, whom ulimit -u binds")
        os.chmod(self.dir, 0o755)
        a = write_checkpoints(self.path("a.h5"), 6, 30, seed=12)
        os.chmod(a, 0o644)
        want = jsonl(subprocess.run([BIN, "volume", a, "-f", "jsonl"], capture_output=True, text=True).stdout)
        for limit, jobs in ((2, 1), (3, 2), (2, 8)):
            with self.subTest(limit=limit, jobs=jobs):
                p = subprocess.run(["bash", "-c", 'ulimit -u "$1" && exec setpriv --reuid=65534 --regid=65534 '
                                    '--clear-groups "$0" volume "$2" -f jsonl -j "$3"', BIN, str(limit), a, str(jobs)],
                                   capture_output=True, text=True, timeout=120)
                self.assertEqual(p.returncode, 0, p.stderr)
                got = jsonl(p.stdout)
                self.assertEqual([(r["source"], r["status"], r["rank"]) for r in got],
                                 [(r["source"], "ok", r["rank"]) for r in want])
                for g, w in zip(got, want):  # BLAS on fewer threads sums in another order
                    self.assertAlmostEqual(g["log_volume"], w["log_volume"], delta=1e-9 * abs(w["log_volume"]))

    def test_too_few_open_files_is_named_once_with_the_limit(self):
        # ulimit -n 6 with -o FILE: the rows said `F:/h: F: cannot read file
        # as HDF5 (HDF5: ... errno = 24 ...)`.
        files = [write_checkpoints(self.path("c%d.h5" % i), 1, 8, seed=20 + i) for i in range(3)]
        out = self.path("rows.jsonl")
        p = subprocess.run(["bash", "-c", 'ulimit -n 6 && out="$1" && shift && exec "$0" volume "$@" -f jsonl -o "$out"', BIN, out, *files],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 1, p.stderr)
        lines = p.stderr.splitlines()
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^basinvol: error: [^ ]*/c\d\.h5:/checkpoints/step_0000: cannot open file: Too many "
                                   r"open files \(the limit of open files, ulimit -n\)$")

    def test_a_small_stack_limit_is_not_the_threads_stack(self):
        # ulimit -s 128: glibc sized every thread's stack by it, and a
        # worker's 64 x 64 tiles overflowed it (SIGSEGV, no row).
        a = write_checkpoints(self.path("a.h5"), 4, 300, seed=13)
        want = jsonl(subprocess.run([BIN, "volume", a, "-f", "jsonl"], capture_output=True, text=True).stdout)
        for jobs in ("1", "2"):
            with self.subTest(jobs=jobs):
                p = subprocess.run(["bash", "-c", 'ulimit -s 128 && exec "$0" volume "$1" -f jsonl -j "$2"',
                                    BIN, a, jobs], capture_output=True, text=True, timeout=120)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual([(r["source"], r["status"], r["rank"]) for r in jsonl(p.stdout)],
                                 [(r["source"], "ok", r["rank"]) for r in want])

    def test_a_file_size_limit_is_a_failed_write_not_a_signal(self):
        # ulimit -f: SIGXFSZ ended the process (exit 153) with FILE.tmp-*
        # and FILE.lock left; it is a failed write like a full disk, and an
        # earlier FILE stays as it was.
        a = write_checkpoints(self.path("a.h5"), 60, 8, seed=11)  # about 60 kB of JSON Lines
        out = self.path("rows.jsonl")
        with open(out, "w") as f:
            f.write("EARLIER\n")
        for target in ("-o", ">"):
            with self.subTest(target):
                command = ('ulimit -f 8 && exec "$0" volume "$1" -f jsonl -o "$2"' if target == "-o" else
                           'ulimit -f 8 && exec "$0" volume "$1" -f jsonl > "$2.stdout"')
                p = subprocess.run(["bash", "-c", command, BIN, a, out], capture_output=True, text=True, timeout=60)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn("basinvol: error: ", p.stderr)
                self.assertIn("cannot write the results", p.stderr)
                self.assertEqual(slurp(out), "EARLIER\n")
                self.assertEqual(glob.glob(out + ".tmp-*") + glob.glob(out + ".lock"), [])

    def test_a_failed_stdout_stops_the_batch(self):
        # Nothing reads the rows (a full device, or a closed pipe with SIGPIPE
        # ignored): the batch starts nothing new. The missing file at the end
        # would print its error line if the batch went on to it.
        a = write_checkpoints(self.path("a.h5"), 40, 8, seed=9)
        missing = self.path("missing.h5")
        with open("/dev/full", "w") as full:
            p = subprocess.run([BIN, "volume", a, missing, "-f", "jsonl", "-j", "1"], stdout=full,
                               stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr, "basinvol: error: cannot write the results to standard output\n")
        # The pipe's reader is gone before the first row (SIGPIPE ignored, as
        # Python leaves it with restore_signals=False): every write fails.
        proc = subprocess.Popen([BIN, "volume", a, missing, "-f", "jsonl", "-j", "1"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, restore_signals=False)
        proc.stdout.close()
        err = proc.stderr.read()
        self.assertEqual(proc.wait(timeout=60), 1)
        self.assertNotIn("missing.h5", err)
        self.assertIn("cannot write the results to standard output", err)

    def test_a_failed_write_to_an_output_device_stops_the_batch(self):
        # -o /dev/full is written in place, as standard output is: once a
        # write fails the batch starts nothing new (the missing file at the
        # end would print its line if it went on).
        a = write_checkpoints(self.path("a.h5"), 200, 8, seed=9)  # about 200 kB of JSON Lines
        missing = self.path("missing.h5")
        p = subprocess.run([BIN, "volume", a, missing, "-f", "jsonl", "-j", "1", "-o", "/dev/full"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertNotIn("missing.h5", p.stderr)
        self.assertIn("/dev/full: cannot write the results", p.stderr)

    def test_closed_standard_descriptors_keep_messages_out_of_the_output_file(self):
        # With 1 and 2 closed, -o FILE would take descriptor 1 or 2 and the
        # messages would land in it; 0 closed is not an empty list.
        a = write_checkpoints(self.path("a.h5"), 2, 8, seed=10)
        out = self.path("out.jsonl")
        for closing in (">&- 2>&-", "0<&- 2>&-", "0<&- >&- 2>&-"):
            p = subprocess.run(["bash", "-c", '"$0" volume "$1" "$2" -f jsonl -o "$3" ' + closing + '; echo "$?"',
                                BIN, a, self.path("missing.h5"), out], capture_output=True, text=True, timeout=60)
            self.assertEqual(p.stdout, "1\n", closing)
            rows = [json.loads(line) for line in slurp(out).splitlines()]  # every line a row, no message
            self.assertEqual(len(rows), 3, closing)
        for args in (("volume", "-"), ("rank", "--from-results", "-"), ("volume", "--files-from", "-")):
            p = subprocess.run(["bash", "-c", '"$0" "$@" 0<&-', BIN, *args], capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn("'-' reads standard input, which is closed", p.stderr)

    def test_full_disk_for_the_output_file_is_one_error_and_leaves_the_previous_file(self):
        a = write_checkpoints(self.path("a.h5"), 120, 8, seed=13)  # ~70 kB of rows for a 16 kB disk
        prev = self.path("prev.jsonl")
        with open(prev, "w") as fh:
            fh.write(subprocess.run([BIN, "volume", a + ":/checkpoints/step_0000", "-f", "jsonl"],
                                    capture_output=True, text=True, timeout=60).stdout)
        mnt = self.path("small")
        os.mkdir(mnt)
        script = ('mount -t tmpfs -o size=16k tmpfs "$1" || exit 99; cp "$2" "$1/rows.jsonl"; '
                  '"$0" volume "$3" -f jsonl -o "$1/rows.jsonl"; echo "rc=$?"; '
                  'cmp -s "$2" "$1/rows.jsonl" && echo intact; ls "$1"')
        unshare = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-rm"]
        p = subprocess.run(unshare + ["bash", "-c", script, BIN, mnt, prev, a], capture_output=True, text=True,
                           timeout=120)
        if p.returncode == 99 or "rc=" not in p.stdout:
            self.skipTest("cannot mount a small tmpfs here (%s)" % p.stderr.strip()[:200])
        out = p.stdout.splitlines()
        self.assertIn("rc=1", out, p.stderr)
        self.assertIn("intact", out)  # the previous results are untouched
        self.assertIn("basinvol: error: %s/rows.jsonl: cannot write the results (disk full?)" % mnt,
                      p.stderr.splitlines())
        self.assertFalse([f for f in out if ".tmp-" in f or f.endswith(".lock")], out)  # no half file, no lock
        self.assertNotIn("Traceback", p.stderr)

    # ------------------------------------------------------------- limits

    def test_300_sources_under_64_file_descriptors(self):
        rng = np.random.default_rng(9)
        names = []
        for i in range(300):
            name = self.path("s%03d.h5" % i)
            with h5py.File(name, "w") as f:
                f.create_dataset("h", data=gram(rng, 6, 3))
            names.append(name)
        listing = self.path("list.txt")
        with open(listing, "w") as fh:
            fh.write("\n".join(names) + "\n")
        out = self.path("rows.jsonl")
        p = subprocess.run(["bash", "-c", 'ulimit -n 64 && exec "$0" volume --files-from "$1" -f jsonl -j 2 -o "$2"',
                            BIN, listing, out], capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        rows = jsonl(slurp(out))
        self.assertEqual(len(rows), 300)
        self.assertTrue(all(r["status"] == "ok" for r in rows))

    def test_ten_thousand_sources_through_the_journal(self):
        many = self.path("many.h5")
        with h5py.File(many, "w") as f:
            for i in range(10000):
                f.create_dataset("d%05d" % i, data=np.eye(3) * (1 + i % 7))
        listing = self.path("list.txt")
        with open(listing, "w") as fh:
            fh.write("".join("%s:/d%05d\n" % (many, i) for i in range(10000)))
        out = self.path("rows.jsonl")
        p = subprocess.run([BIN, "volume", "--files-from", listing, "-f", "jsonl", "-j", "2", "-o", out],
                           capture_output=True, text=True, timeout=240)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        rows = by_source(jsonl(slurp(out)))  # each source once
        self.assertEqual(len(rows), 10000)
        self.assertTrue(all(r["status"] == "ok" and r["rank"] == 3 for r in rows.values()))
        self.assertEqual(self.leftovers(out), [])

    def test_a_tight_address_space_limit_is_error_rows_never_a_hang(self):
        # OpenBLAS retries forever for a work buffer it cannot map: under
        # ulimit -v that was a hang at the first fork, at exit or in the solve.
        if os.environ.get("BASINVOL_SANITIZE"):
            self.skipTest("AddressSanitizer reserves terabytes of address space: RLIMIT_AS cannot apply")
        a = write_checkpoints(self.path("a.h5"), 12, 300, seed=14)
        rng = np.random.default_rng(15)
        dense = self.path("dense.h5")
        with h5py.File(dense, "w") as f:
            g = rng.standard_normal((1500, 1500))
            f.create_dataset("h", data=(g + g.T) / 2)  # 18 MB stored, full rank: the dense solver
        for kb in (100000, 200000, 300000, 450000, 700000):
            p = subprocess.run(["bash", "-c", 'ulimit -v "$1" && exec "$0" volume "$2" "$3" -f jsonl',
                                BIN, str(kb), a, dense], capture_output=True, text=True, timeout=120)
            self.assertIn(p.returncode, (0, 1), "ulimit -v %d: %s" % (kb, p.stderr[-500:]))
            rows = jsonl(p.stdout)
            self.assertEqual(len(rows), 13, "ulimit -v %d" % kb)
            for r in rows:
                if r["status"] == "error":
                    self.assertIn("memory", r["error"], "ulimit -v %d" % kb)
            if kb >= 450000:  # room enough for all of it
                self.assertEqual(p.returncode, 0, "ulimit -v %d: %s" % (kb, p.stderr[-500:]))
            s = subprocess.run(["bash", "-c", 'ulimit -v "$1" && exec "$0" spectrum "$2" -f tsv',
                                BIN, str(kb), a + ":/checkpoints/step_0001"], capture_output=True, text=True,
                               timeout=120)
            self.assertIn(s.returncode, (0, 1), "ulimit -v %d: %s" % (kb, s.stderr[-500:]))
            if s.returncode:
                self.assertIn("address-space limit (ulimit -v)", s.stderr)

    def test_room_a_read_takes_beyond_its_count_is_error_rows_never_a_hang_or_a_crash(self):
        # Reading a matrix of 250,000 chunks of 1 x 1 maps about 40 MB of
        # HDF5's own (its chunk index, a few KB per chunk a read touches)
        # that no budget counts; under ulimit -v that left no room for
        # OpenBLAS's buffer (a hang SIGTERM could not end), or HDF5 crashed
        # on the failed allocation. And the allocator kept what one float32
        # Hessian freed, so the same Hessian after it ran out of memory.
        if os.environ.get("BASINVOL_SANITIZE"):
            self.skipTest("AddressSanitizer reserves terabytes of address space: RLIMIT_AS cannot apply")
        rng = np.random.default_rng(17)
        f = self.path("tiny_chunks.h5")
        g = rng.standard_normal((500, 20))
        x = rng.standard_normal((3000, 3000)).astype(np.float32)
        with h5py.File(f, "w") as h:
            h.create_dataset("h", data=g @ g.T, chunks=(1, 1))
            h["d"] = (x + x.T) / 2
        sources = [f + ":/h", f + ":/h", f + ":/d", f + ":/d"]
        for kb in (280000, 330000, 400000, 600000):
            p = subprocess.run(["bash", "-c", 'ulimit -v "$1" && exec "$0" volume "${@:2}" -j 2 -f jsonl',
                                BIN, str(kb), *sources], capture_output=True, text=True, timeout=120)
            self.assertIn(p.returncode, (0, 1), "ulimit -v %d: %s" % (kb, p.stderr[-500:]))
            rows = jsonl(p.stdout)
            self.assertEqual(len(rows), 4, "ulimit -v %d" % kb)
            for r in rows:
                if r["status"] == "error":
                    self.assertIn("limit", r["error"], "ulimit -v %d" % kb)
                else:
                    self.assertEqual(r["rank"], 20 if r["dataset"] == "/h" else 3000, "ulimit -v %d" % kb)
            if kb >= 600000:  # room enough for all of it, one Hessian after another
                self.assertEqual([r["status"] for r in rows], ["ok"] * 4, p.stderr[-500:])

    def peak_kb(self, *args):
        """The peak resident set (kB) of one basinvol run, and its rows."""
        wrapper = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
                   "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); print(p.stdout, end='')")
        p = subprocess.run([sys.executable, "-c", wrapper, BIN, *args], capture_output=True, text=True, timeout=300)
        first, _, rest = p.stdout.partition("\n")
        return int(first), jsonl(rest)

    def test_the_lanczos_working_set_bounds_what_it_holds(self):
        # --method lanczos holds Spectra's basis and Ritz blocks beside the
        # matrix: 48 MB at n = 1500, where the dense working set the
        # scheduler counted was 37 MB. Under ulimit -v between the two,
        # OpenBLAS retried forever for a buffer it could not map (a hang).
        if os.environ.get("BASINVOL_SANITIZE"):
            self.skipTest("AddressSanitizer's shadow memory is in the resident set")
        rng = np.random.default_rng(16)
        psd = self.path("psd.h5")
        with h5py.File(psd, "w") as f:
            g = rng.standard_normal((1500, 1000)) / 40
            f.create_dataset("h", data=g @ g.T)  # rank 1000: Lanczos grows to its n/4 pairs
        tiny = self.path("tiny.h5")
        with h5py.File(tiny, "w") as f:
            f["h"] = np.diag([1.0, 2.0])
        base, _ = self.peak_kb("volume", tiny, "--method", "lanczos", "-f", "jsonl")
        peak, rows = self.peak_kb("volume", psd, "--method", "lanczos", "-f", "jsonl")
        self.assertEqual(rows[0]["status"], "ok", rows)
        refused = jsonl(subprocess.run([BIN, "volume", psd, "--method", "lanczos", "--max-memory", "1K", "-f", "jsonl"],
                                       capture_output=True, text=True).stdout)[0]
        need_gb = float(re.search(r"needs about ([0-9.]+) GB", refused["error"]).group(1))
        self.assertLessEqual((peak - base) * 1024, need_gb * 1e9 * 1.01, (peak, base, refused["error"]))

    def memory_cgroup(self, limit_bytes):
        """A memory cgroup of its own with a hard limit (v2 memory.max, or v1
        memory.limit_in_bytes), removed at cleanup; its cgroup.procs path."""
        name = "basinvol-test-%d" % os.getpid()
        tried = []
        for root, limit_file in (("/sys/fs/cgroup", "memory.max"),
                                 ("/sys/fs/cgroup/unified", "memory.max"),
                                 ("/sys/fs/cgroup/memory", "memory.limit_in_bytes")):
            group = os.path.join(root, name)
            try:
                os.mkdir(group)
            except OSError as e:
                tried.append("%s: %s" % (root, e.strerror))
                continue
            if not os.path.exists(os.path.join(group, limit_file)):  # not a cgroup file system, or no memory controller
                os.rmdir(group)
                tried.append("%s: no %s" % (root, limit_file))
                continue
            self.addCleanup(os.rmdir, group)
            try:
                with open(os.path.join(group, limit_file), "w") as fh:
                    fh.write(str(limit_bytes))
                for swap, value in (("memory.swap.max", "0"), ("memory.memsw.limit_in_bytes", str(limit_bytes))):
                    if os.path.exists(os.path.join(group, swap)):  # no swapping past the limit
                        with open(os.path.join(group, swap), "w") as fh:
                            fh.write(value)
                return os.path.join(group, "cgroup.procs")
            except OSError as e:
                tried.append("%s: %s" % (limit_file, e.strerror))
        self.skipTest("cannot make a memory cgroup here (%s)" % "; ".join(tried))

    def run_in_cgroup(self, procs, args):
        def enter():
            with open(procs, "w") as fh:
                fh.write(str(os.getpid()))
        return subprocess.run([BIN] + args, capture_output=True, text=True, timeout=240, preexec_fn=enter)

    def test_a_cgroup_memory_limit_is_an_error_row_naming_the_need_not_an_oom_kill(self):
        # A Slurm job's or a container's limit: 200 MB for a batch holding a
        # 6000 x 6000 float64 Hessian (288 MB stored, about 0.6 GB to analyze).
        # Chunked, so that its values are read into memory (a contiguous
        # one's are mapped from the page cache, which the kernel may evict).
        rng = np.random.default_rng(16)
        f = self.path("limit.h5")
        with h5py.File(f, "w") as h:
            g = rng.standard_normal((6000, 40))
            h.create_dataset("big", data=g @ g.T, chunks=(100, 6000))
            h.create_dataset("small", data=gram(rng, 300, 20))
        procs = self.memory_cgroup(200 * 2 ** 20)
        # The limit is real: told to ignore it, the process is killed by the
        # kernel; reading in a child process (--read-timeout), the child is,
        # and that is an error row.
        forced = self.run_in_cgroup(procs, ["volume", f + ":/big", "-f", "jsonl", "--max-memory", "4G"])
        self.assertEqual(forced.returncode, -signal.SIGKILL, "the cgroup's limit is not enforced here")
        isolated = self.run_in_cgroup(procs, ["volume", f + ":/big", "-f", "jsonl", "--max-memory", "4G",
                                              "--read-timeout", "100"])
        self.assertEqual(isolated.returncode, 1, isolated.stderr[-500:])
        self.assertIn("the process reading the values was killed (SIGKILL: out of memory",
                      jsonl(isolated.stdout)[0]["error"])
        # Left to read the limit, every row is there: the one that cannot fit
        # is an error row before it is read, the other is measured.
        p = self.run_in_cgroup(procs, ["volume", f, "-f", "jsonl"])
        self.assertEqual(p.returncode, 1, p.stderr[-2000:])
        rows = by_source(jsonl(p.stdout))
        self.assertEqual(set(rows), {f + ":/big", f + ":/small"})
        self.assertEqual(rows[f + ":/small"]["status"], "ok")
        self.assertEqual(rows[f + ":/small"]["rank"], 20)
        big = rows[f + ":/big"]
        self.assertEqual(big["status"], "error")
        self.assertRegex(big["error"], r"n = 6000 needs about [0-9.]+ GB to analyze, over the memory budget of "
                                       r"0\.[01][0-9]* GB \(--max-memory\)")

    # ------------------------------------------------------------- listings

    def test_a_listing_that_never_ends_is_stopped_and_is_one_error_row(self):
        good = write_checkpoints(self.path("good.h5"), 2, 20, seed=11)
        fifo = self.path("stuck.h5")
        os.mkfifo(fifo)  # opening it for reading waits for a writer that never comes
        t0 = time.monotonic()
        p = subprocess.run([BIN, "volume", fifo, good, "-f", "jsonl", "--list-timeout", "0.5"], capture_output=True,
                           text=True, timeout=60)
        self.assertLess(time.monotonic() - t0, 30)
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = jsonl(p.stdout)
        self.assertEqual([r["status"] for r in rows], ["error", "ok", "ok"])
        self.assertIn("took longer than the listing limit of 0.5 s", rows[0]["error"])
        self.assertTrue(rows[0]["error"].startswith(fifo + ": "))
        for limit in ("0", "-1", "inf", "nan"):
            bad = subprocess.run([BIN, "volume", good, "--list-timeout", limit], capture_output=True, text=True,
                                 timeout=60)
            self.assertEqual(bad.returncode, 2, limit)
            self.assertEqual(bad.stdout, "", limit)

    def test_sources_listed_together_keep_their_own_rows_around_a_hang_and_a_crash(self):
        # Several SOURCEs are listed in one child: a SOURCE that hangs it or
        # kills it is its own error row, and every other SOURCE, before and
        # after it, is listed and measured as when each had a child of its own.
        here = os.path.dirname(os.path.abspath(__file__))
        crash = self.path("crash.h5")
        shutil.copyfile(os.path.join(here, "..", "..", "fuzz", "regressions", "fuzz_reader",
                                     "hdf5-btree-node-crashes-group-info"), crash)
        fifo = self.path("stuck_too.h5")
        os.mkfifo(fifo)
        goods = [write_checkpoints(self.path("g%d.h5" % i), 1, 12, seed=40 + i) for i in range(5)]
        order = [goods[0], crash, goods[1], fifo, goods[2], goods[3], crash, goods[4]]
        p = subprocess.run([BIN, "volume", *order, "-f", "jsonl", "--list-timeout", "0.5"], capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = jsonl(p.stdout)
        self.assertEqual([r["file"] for r in rows], order)
        for r, f in zip(rows, order):
            if f == crash:
                self.assertIn("the HDF5 library failed while reading this file's structure (corrupt file", r["error"])
            elif f == fifo:
                self.assertIn("took longer than the listing limit of 0.5 s", r["error"])
            else:
                alone = jsonl(subprocess.run([BIN, "volume", f, "-f", "jsonl"], capture_output=True, text=True,
                                             timeout=60).stdout)[0]
                self.assertEqual(r["status"], "ok", r)
                for k in ("source", "rank", "dim"):
                    self.assertEqual(r[k], alone[k], k)
                # (solved beside another row, on another count of BLAS threads)
                self.assertAlmostEqual(r["log_volume"], alone["log_volume"], delta=r["log_volume_error"] + 1e-12)

    def test_a_listing_child_dies_with_its_killed_parent(self):
        fifo = self.path("stuck.h5")
        os.mkfifo(fifo)
        out = self.path("rows.jsonl")
        proc = subprocess.Popen([BIN, "volume", fifo, "-f", "jsonl", "-o", out], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        child = None
        deadline = time.monotonic() + 60
        while child is None and time.monotonic() < deadline:
            child = next((pid for pid in children_of(proc.pid)), None)
            time.sleep(0.01)
        self.assertIsNotNone(child, "no listing child appeared")
        proc.kill()
        proc.communicate(timeout=60)
        # The child held the parent's FILE.lock (inherited over fork): it must go too.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and alive(child):
            time.sleep(0.01)
        self.assertFalse(alive(child), "the listing child outlived its parent")
        good = write_checkpoints(self.path("good.h5"), 2, 20, seed=12)
        p = subprocess.run([BIN, "volume", good, "-f", "jsonl", "-o", out], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("unfinished run", p.stderr)  # the killed run's journal held no row: nothing to say


def children_of(parent):
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                yield int(entry)


def alive(pid):
    """Running, not a zombie (a zombie has closed its files)."""
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class ReadingFaults(FaultBase):
    """Torn journals and files changing under the reader: the parsing and
    reading code on damaged input, run under the sanitizers too."""

    def test_a_file_a_writer_holds_is_named_so_not_corrupt(self):
        # A training job's checkpoint still open for writing: its lock, or
        # SWMR's mark (also left by a writer that died), said "truncated or
        # corrupt?".
        locked = self.path("locked.h5")
        with h5py.File(locked, "w") as f:
            f["h"] = np.eye(3)
            f.flush()
            p = subprocess.run([BIN, "volume", locked, "-f", "jsonl"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn(locked + ": cannot open HDF5 file: a process that writes it holds its lock", p.stderr)
        swmr = self.path("swmr.h5")
        with h5py.File(swmr, "w", libver="latest") as f:
            f["h"] = np.eye(3)
            f.swmr_mode = True
            f.flush()
            p = subprocess.run([BIN, "volume", swmr, "-f", "jsonl"], capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, HDF5_USE_FILE_LOCKING="FALSE"))
        self.assertEqual(p.returncode, 1)
        self.assertIn(swmr + ": cannot open HDF5 file: it is open for writing (SWMR), or its writer died without "
                      "closing it; once no process writes it, `h5clear -s " + swmr + "` clears the mark", p.stderr)
        # Closed by its writer: read.
        p = subprocess.run([BIN, "volume", locked, swmr, "-f", "jsonl"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_values_behind_a_fifo_are_an_error_row_not_a_hang(self):
        # A dataset whose values lie in an external raw-data file that is a
        # FIFO nobody writes: HDF5 would block in its open forever.
        fifo = self.path("values.raw")
        f = self.path("fifo.h5")
        with h5py.File(f, "w") as h:
            h.create_dataset("h", shape=(20, 20), dtype="f8", external=[(fifo, 0, 20 * 20 * 8)])
            h.create_dataset("ok", data=gram(np.random.default_rng(17), 20, 5))
        os.mkfifo(fifo)
        p = subprocess.run([BIN, "volume", f, "-f", "jsonl"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = by_source(jsonl(p.stdout))
        self.assertEqual(rows[f + ":/ok"]["rank"], 5)
        self.assertEqual(rows[f + ":/h"]["error"], "%s:/h: external raw-data file '%s' is not a regular file (a FIFO "
                         "or a device would block the read or never end)" % (f, fifo))

    def test_a_fifo_where_hdf5_follows_a_link_is_an_error_row_not_a_hang(self):
        # HDF5 opens an external link's target and a virtual dataset's source
        # itself, trying in turn the name under $HDF5_EXT_PREFIX (or
        # $HDF5_VDS_PREFIX), beside the file and from the current directory,
        # passing over what is missing or not HDF5. A FIFO nobody writes on
        # that way would hold its open forever.
        rng = np.random.default_rng(21)
        H = gram(rng, 12, 4)
        work, first, plain = self.path("links"), self.path("first"), self.path("plain")
        for d in (work, first, plain):
            os.makedirs(d)
        os.mkfifo(os.path.join(work, "fifo.h5"))
        with h5py.File(os.path.join(work, "real.h5"), "w") as h:
            h["h"] = H
        # Under the prefix: an HDF5 file of the FIFO's name (taken first, so
        # the FIFO beside it is never opened), and a text file of another.
        with h5py.File(os.path.join(first, "fifo.h5"), "w") as h:
            h["h"] = H
        with open(os.path.join(plain, "fifo.h5"), "w") as fh:
            fh.write("not HDF5\n")
        f = os.path.join(work, "top.h5")
        with h5py.File(f, "w") as h:
            h["ok"] = H
            h["linked"] = h5py.ExternalLink("real.h5", "/h")
            h["to_fifo"] = h5py.ExternalLink("fifo.h5", "/h")
            g = h.create_group("run")
            g["step_1"] = h5py.ExternalLink("fifo.h5", "/h")
            s = h.create_group("model")
            s.attrs["structure"] = "blocks"
            s["a"] = H
            s["b"] = h5py.ExternalLink("fifo.h5", "/h")
            layout = h5py.VirtualLayout(shape=H.shape, dtype="f8")
            layout[:] = h5py.VirtualSource("fifo.h5", "/h", shape=H.shape)
            h.create_virtual_dataset("virtual", layout)
        blocked = "external link to fifo.h5:/h leads to %s, which is not a regular file (a FIFO or a device: " \
                  "HDF5's open of it may never return)"

        def run(*args, prefix=None):
            env = dict(os.environ)
            for name in ("HDF5_EXT_PREFIX", "HDF5_VDS_PREFIX"):
                env.pop(name, None)
                if prefix:
                    env[name] = prefix
            p = subprocess.run([BIN, "volume", *args, "-f", "jsonl"], capture_output=True, text=True, timeout=60,
                               env=env, cwd=self.dir)
            return p.returncode, by_source(jsonl(p.stdout))

        fifo = os.path.join(work, "fifo.h5")
        for prefix in (None, plain):  # a text file first: HDF5 passes it over and reaches the FIFO
            code, rows = run(f, prefix=prefix)
            self.assertEqual(code, 1)
            self.assertEqual(rows[f + ":/ok"]["rank"], 4)
            self.assertEqual(rows[f + ":/linked"]["rank"], 4)
            self.assertEqual(rows[f + ":/to_fifo"]["error"], f + ":/to_fifo: " + blocked % fifo)
            self.assertEqual(rows[f + ":/run/step_1"]["error"], f + ":/run/step_1: " + blocked % fifo)
            self.assertIn(blocked % fifo, rows[f + ":/model"]["error"])
            self.assertEqual(rows[f + ":/virtual"]["error"], f + ":/virtual: the virtual dataset's source fifo.h5:/h "
                             "is %s, which is not a regular file (a FIFO or a device: HDF5's open of it may never "
                             "return)" % fifo)
            code, rows = run(f + ":/to_fifo", prefix=prefix)
            self.assertEqual((code, rows[f + ":/to_fifo"]["error"]), (1, f + ":/to_fifo: " + blocked % fifo))
        # The prefix's HDF5 file is what HDF5 opens: every link is followed
        # (/to_fifo and /run/step_1 lead to one dataset, listed once).
        code, rows = run(f, prefix=first)
        self.assertEqual(code, 0, rows)
        self.assertEqual({k: r["rank"] for k, r in rows.items()},
                         {f + p: 4 if p != ":/model" else 8 for p in
                          (":/ok", ":/linked", ":/run/step_1", ":/model", ":/virtual")})
        code, rows = run(f + ":/to_fifo", prefix=first)
        self.assertEqual((code, rows[f + ":/to_fifo"]["rank"]), (0, 4))

    def test_a_link_target_is_looked_for_in_hdf5s_own_order(self):
        # Where HDF5 opens a target decides whether a FIFO there holds it:
        # ${ORIGIN} is expanded only in a virtual dataset's whole
        # $HDF5_VDS_PREFIX, never in $HDF5_EXT_PREFIX's folders, and the
        # last place tried is beside the file a symbolic link names.
        rng = np.random.default_rng(22)
        H = gram(rng, 8, 3)
        root = self.path("order")

        def layout(name, fifo_at, real_at, link="ExternalLink"):
            d = os.path.join(root, name)
            os.makedirs(os.path.join(d, "sub"))
            os.mkfifo(os.path.join(d, fifo_at, "t.h5"))
            with h5py.File(os.path.join(d, real_at, "t.h5"), "w") as h:
                h["h"] = H
            with h5py.File(os.path.join(d, "top.h5"), "w") as h:
                if link == "ExternalLink":
                    h["x"] = h5py.ExternalLink("t.h5", "/h")
                else:
                    layout_ = h5py.VirtualLayout(shape=H.shape, dtype="f8")
                    layout_[:] = h5py.VirtualSource("t.h5", "/h", shape=H.shape)
                    h.create_virtual_dataset("x", layout_)
            return os.path.join(d, "top.h5")

        def status(source, **env):
            e = {k: v for k, v in os.environ.items() if k not in ("HDF5_EXT_PREFIX", "HDF5_VDS_PREFIX")}
            e.update(env)
            p = subprocess.run([BIN, "volume", source, "-f", "jsonl"], capture_output=True, text=True, timeout=60,
                               env=e)
            (row,) = jsonl(p.stdout)
            return row["status"] if row["status"] == "ok" else row["error"]

        origin = "${ORIGIN}/sub"
        # $HDF5_EXT_PREFIX's "${ORIGIN}/sub" is no folder: HDF5 opens the FIFO beside the file ...
        beside = layout("ext_fifo_beside", ".", "sub")
        self.assertIn("leads to %s/t.h5, which is not a regular file" % os.path.dirname(beside),
                      status(beside + ":/x", HDF5_EXT_PREFIX=origin))
        self.assertEqual(status(beside + ":/x", HDF5_EXT_PREFIX=os.path.join(os.path.dirname(beside), "sub")), "ok")
        # ... and the HDF5 file beside it, never the FIFO under sub/.
        under = layout("ext_fifo_under", "sub", ".")
        self.assertEqual(status(under + ":/x", HDF5_EXT_PREFIX=origin), "ok")
        # A virtual dataset's whole $HDF5_VDS_PREFIX expands a leading ${ORIGIN}; a list of folders does not.
        vds = layout("vds", ".", "sub", link="virtual")
        self.assertEqual(status(vds + ":/x", HDF5_VDS_PREFIX=origin), "ok")
        self.assertIn("is %s/t.h5, which is not a regular file" % os.path.dirname(vds),
                      status(vds + ":/x", HDF5_VDS_PREFIX="/nowhere:" + origin))
        # Read through a symbolic link from another folder: the FIFO beside
        # the file it names is reached last, and refused.
        real = layout("linked", ".", "sub")
        elsewhere = os.path.join(root, "elsewhere")
        os.makedirs(elsewhere)
        os.symlink(real, os.path.join(elsewhere, "top.h5"))
        self.assertIn("leads to %s/t.h5, which is not a regular file" % os.path.dirname(real),
                      status(os.path.join(elsewhere, "top.h5") + ":/x"))

    def test_values_in_a_truncated_external_file_are_an_error_row_not_zeros(self):
        # HDF5 reads the part of an external segment past the end of its file
        # as zeros: a Hessian of zeros would be an ok row of rank 0.
        rng = np.random.default_rng(19)
        H = gram(rng, 30, 7)
        f = self.path("ext.h5")
        whole, first, second = (self.path(n) for n in ("whole.raw", "first.raw", "second.raw"))
        with h5py.File(f, "w") as h:
            h.create_dataset("whole", shape=H.shape, dtype="f8", external=[(whole, 0, h5py.h5f.UNLIMITED)])
            h["whole"][...] = H
            h.create_dataset("split", shape=H.shape, dtype="f8", external=[(first, 0, 3600), (second, 16, 3600)])
            h["split"][...] = H
        p = subprocess.run([BIN, "volume", f, "-f", "jsonl"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([r["rank"] for r in jsonl(p.stdout)], [7, 7])
        os.truncate(whole, 0)
        os.truncate(second, 1000)
        p = subprocess.run([BIN, "volume", f, "-f", "jsonl"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = by_source(jsonl(p.stdout))
        self.assertEqual(rows[f + ":/whole"]["error"], "%s:/whole: external raw-data file '%s' holds 0 bytes; the "
                         "dataset needs 7200 from byte 0 (truncated?)" % (f, whole))
        self.assertEqual(rows[f + ":/split"]["error"], "%s:/split: external raw-data file '%s' holds 1000 bytes; the "
                         "dataset needs 3600 from byte 16 (truncated?)" % (f, second))

    def test_a_relative_external_file_found_in_two_places_is_refused(self):
        # HDF5 looks for a relative external raw-data file from the current
        # directory: run from elsewhere, it would read an unrelated file of
        # that name. Found both there and beside the HDF5 file, it is refused.
        rng = np.random.default_rng(20)
        H = gram(rng, 20, 5)
        data, other = self.path("data"), self.path("elsewhere")
        os.makedirs(data)
        os.makedirs(other)
        f = os.path.join(data, "e.h5")
        cwd = os.getcwd()
        os.chdir(data)
        try:
            with h5py.File(f, "w") as h:
                h.create_dataset("e", shape=H.shape, dtype="f8", external=[("raw.bin", 0, h5py.h5f.UNLIMITED)])
                h["e"][...] = H
        finally:
            os.chdir(cwd)
        with open(os.path.join(other, "raw.bin"), "wb") as fh:
            fh.write(gram(rng, 20, 12).astype("<f8").tobytes())
        p = subprocess.run([BIN, "volume", f, "-f", "jsonl"], capture_output=True, text=True, timeout=60, cwd=data)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(jsonl(p.stdout)[0]["rank"], 5)
        p = subprocess.run([BIN, "volume", f, "-f", "jsonl"], capture_output=True, text=True, timeout=60, cwd=other)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("external raw-data file 'raw.bin' is found from the current directory and as '%s/raw.bin' "
                      "beside the HDF5 file, two different files" % data, jsonl(p.stdout)[0]["error"])

    def test_an_isolated_read_that_overruns_or_crashes_is_an_error_row(self):
        # --read-timeout reads each Hessian's values in a child process.
        rng = np.random.default_rng(18)
        f = self.path("slow.h5")
        with h5py.File(f, "w") as h:
            g = rng.standard_normal((3000, 30))
            h.create_dataset("big", data=g @ g.T, chunks=(250, 250), compression="gzip", compression_opts=1)
            h.create_dataset("ok", data=gram(rng, 20, 5))
        # Overrun: inflating 72 MB takes far longer than 50 ms.
        p = subprocess.run([BIN, "volume", f + ":/big", "-f", "jsonl", "--read-timeout", "0.05"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 1, p.stderr)
        error = jsonl(p.stdout)[0]["error"]
        self.assertIn(f + ":/big: reading the values took longer than the limit of 0.05 s, so it was stopped", error)
        self.assertIn("--read-timeout", error)
        # Crash: the reading process dies of a signal (sent to it here, as a
        # corrupt file makes HDF5 do): an error row, and the tool goes on.
        # The reading child is the one holding the memory shared for the
        # values (a MAP_SHARED anonymous mapping: "/dev/zero (deleted)"), 72 MB
        # for /big (/ok's is 3 KB; the listing children hold none).
        def shares_big_values(pid):
            try:
                with open("/proc/%d/maps" % pid) as fh:
                    for line in fh:
                        if "/dev/zero (deleted)" in line:
                            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                            if hi - lo >= 50 << 20:
                                return True
            except OSError:
                pass
            return False
        for attempt in range(5):
            proc = subprocess.Popen([BIN, "volume", f + ":/big", f + ":/ok", "-f", "jsonl", "-j", "1",
                                     "--read-timeout", "100"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
            reader = None
            deadline = time.monotonic() + 60
            while reader is None and time.monotonic() < deadline and proc.poll() is None:
                reader = next((pid for pid in children_of(proc.pid) if shares_big_values(pid)), None)
                time.sleep(0.002)
            if reader is not None:
                break
            proc.kill()  # /big was read between two looks (a loaded machine): again
            proc.communicate()
        self.assertIsNotNone(reader, "the reading child of /big was not seen in 5 runs")
        os.kill(reader, signal.SIGSEGV)
        out, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 1, err)
        rows = by_source(jsonl(out))
        self.assertEqual(rows[f + ":/ok"]["rank"], 5, (rows[f + ":/ok"], err[-2000:]))
        # (Under AddressSanitizer its handler turns the SIGSEGV into an abort.)
        self.assertRegex(rows[f + ":/big"]["error"], re.escape(f + ":/big: the HDF5 library failed while reading the "
                                                                "values (corrupt data; it stopped on signal ") +
                         r"\d+\)$")

    def test_journal_keeps_whole_rows_and_skips_a_cut_off_one(self):
        a = write_checkpoints(self.path("a.h5"), 6, 40, seed=3)
        full = subprocess.run([BIN, "volume", a, "-f", "jsonl"], capture_output=True, text=True, timeout=60)
        self.assertEqual(full.returncode, 0, full.stderr)
        lines = full.stdout.splitlines(keepends=True)
        out = self.path("rows.jsonl")
        # What a kill leaves: two whole rows, garbage a power loss can leave, half a row.
        with open(out + ".journal", "w") as fh:
            fh.write(lines[0] + lines[1] + "\0\0\0\0\n" + lines[2][:40])
        p = subprocess.run([BIN, "volume", a, "-f", "jsonl", "-o", out, "--resume"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("1 unreadable line(s) skipped", p.stderr)
        self.assertIn("kept 2 row(s) of a run that did not finish", p.stderr)
        got = slurp(out).splitlines(keepends=True)
        self.assertEqual(got[:2], lines[:2])  # kept as written, not recomputed (same seconds)
        self.assertEqual(by_source(jsonl("".join(got))), by_source(jsonl(full.stdout)))
        self.assertEqual(self.leftovers(out), [])

    def test_file_truncated_while_read_gives_error_rows_not_a_crash(self):
        a = write_checkpoints(self.path("a.h5"), 40, 200, seed=10)
        size = os.path.getsize(a)
        proc = subprocess.Popen([BIN, "volume", a, "-f", "jsonl", "-j", "1"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        first = clitest.first_line(proc)  # listed and reading: now the file shrinks under it
        self.assertTrue(first.startswith("{"))
        os.truncate(a, size // 3)
        rest, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 1, err)  # an exit status, not a signal
        rows = jsonl(first + rest)
        self.assertEqual(len(rows), 40)
        errors = [r for r in rows if r["status"] == "error"]
        self.assertGreater(len(errors), 0)
        for r in errors:
            self.assertIn(a, r["error"])
        # The last datasets lie past the cut: none of them can be an ok row.
        self.assertEqual(rows[-1]["status"], "error")

    def test_a_file_rewritten_while_read_never_gives_a_mixed_answer(self):
        """Another program rewrites the file in place (as cp or rsync --inplace
        do: no HDF5 lock), alternating two versions with different spectra,
        while basinvol reads it again and again: every row is one version's
        answer or an error saying that the file changed; a matrix mixed from
        both versions is never measured. (A writer through HDF5 holds the
        file's lock: the reader's open then fails with an error row.)"""
        n = 1200
        rng = np.random.default_rng(12)
        answers, copies = set(), []
        for i, r in enumerate((40, 700)):
            v = self.path(f"v{i}.h5")
            with h5py.File(v, "w") as h:
                h.create_dataset("hessian", data=gram(rng, n, r))  # contiguous, the same layout in both
            copies.append(v)
            row = jsonl(subprocess.run([BIN, "volume", v, "-f", "jsonl", "--method", "dense"], capture_output=True,
                                       text=True, check=True).stdout)[0]
            answers.add((row["rank"], row["dim"], round(row["log_volume"], 9)))
        self.assertEqual(len(answers), 2)
        self.assertEqual(os.path.getsize(copies[0]), os.path.getsize(copies[1]))
        f = self.path("rewritten.h5")
        shutil.copyfile(copies[0], f)
        proc = subprocess.Popen([BIN, "volume", *([f] * 60), "-f", "jsonl", "--method", "dense", "-j", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = clitest.first_line(proc)  # listed, and one row read before any rewrite
        # The writer runs until every read is done, so that the reads overlap
        # writes however the machine schedules the two processes.
        writer = subprocess.Popen([sys.executable, "-c", (
            "import sys\n"
            "f, vs = sys.argv[1], [open(p, 'rb').read() for p in sys.argv[2:4]]\n"
            "i = 1\n"
            "while True:\n"
            "    with open(f, 'r+b') as out:\n"
            "        for k in range(0, len(vs[0]), 1 << 20): out.write(vs[i % 2][k:k + (1 << 20)])\n"
            "    i += 1\n"), f, *copies])
        try:
            rest, _ = proc.communicate(timeout=300)
        finally:
            writer.kill()
            writer.wait(timeout=60)
        rows = jsonl(first + rest)
        self.assertEqual(rows[0]["status"], "ok")
        self.assertEqual(len(rows), 60)
        changed = 0
        for r in rows:
            if r["status"] == "ok":
                self.assertIn((r["rank"], r["dim"], round(r["log_volume"], 9)), answers, "a mixed matrix was measured")
            else:
                self.assertIn("changed while it was read", r["error"])
                changed += 1
        self.assertGreater(changed, 0)


if __name__ == "__main__":
    clitest.main()
