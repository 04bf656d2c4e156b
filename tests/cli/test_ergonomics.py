"""Command-line ergonomics: a numpy/torch file gets the converter command, a
mistyped dataset path gets the nearest names, '-' as a SOURCE reads SOURCEs
from standard input.

Run: /usr/bin/python3 tests/cli/test_ergonomics.py path/to/basinvol
"""
import os
import subprocess
import sys
import tempfile
import unittest

import clitest

import h5py
import numpy as np

BIN = None


def run(*args, stdin=None):
    return subprocess.run([BIN] + [str(a) for a in args], capture_output=True, text=True, input=stdin, timeout=120)


class Ergonomics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="basinvol-ergonomics-")
        cls.dir = cls.tmp.name
        cls.h5 = os.path.join(cls.dir, "run.h5")
        with h5py.File(cls.h5, "w") as f:
            for step in (3000, 3100, 12000):
                f["checkpoints/step_%05d" % step] = np.diag([2.0, 1.0, 0.0])

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_a_numpy_file_gets_the_converter_command(self):
        npy = os.path.join(self.dir, "H.npy")
        np.save(npy, np.eye(3))
        p = run("volume", npy)
        self.assertEqual(p.returncode, 1)
        self.assertIn("not an HDF5 file (a .npy file?)", p.stderr)
        self.assertIn("python3 -m basinvol.export convert " + npy + " OUT.h5", p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)

    def test_a_mistyped_dataset_gets_the_nearest_names(self):
        p = run("volume", self.h5 + ":/checkpoints/step_3000")
        self.assertEqual(p.returncode, 1)
        self.assertIn("no such object in file; did you mean /checkpoints/step_03000", p.stderr)
        p = run("volume", self.h5 + ":/nothing_like_it_at_all")
        self.assertEqual(p.returncode, 1)
        self.assertIn("no such object in file", p.stderr)
        self.assertNotIn("did you mean", p.stderr)

    def test_control_characters_in_names_keep_each_message_on_one_line(self):
        # A newline, a carriage return or an escape sequence in a dataset or
        # file name is written as \n, \r, \x1b: one message is one line, and
        # a name cannot move the cursor or colour the terminal.
        h5 = os.path.join(self.dir, "names.h5")
        with h5py.File(h5, "w") as f:
            f["non\nsquare"] = np.ones((2, 3))
            f["esc\x1b[31mred\r"] = np.ones((2, 3))
        missing = os.path.join(self.dir, "a\nb.h5")
        for fmt in ("table", "jsonl"):
            p = run("volume", h5, missing, "-f", fmt)
            self.assertEqual(p.returncode, 1)
            lines = p.stderr.splitlines()
            self.assertEqual(len(lines), 3, p.stderr)
            self.assertTrue(all(line.startswith("basinvol: error: ") for line in lines), p.stderr)
            self.assertIn("esc\\x1b[31mred\\r", p.stderr)
            self.assertIn("non\\nsquare", p.stderr)
            self.assertIn("a\\nb.h5", p.stderr)
            self.assertNotIn("\x1b", p.stderr)
        table = run("volume", h5).stdout
        self.assertNotIn("\x1b", table)
        self.assertEqual(len(table.splitlines()), 3, table)  # the header and two rows

    def test_dash_reads_sources_from_stdin(self):
        p = run("volume", "-", "-f", "tsv", stdin=self.h5 + ":/checkpoints/step_03000\n\n" + self.h5 + ":/checkpoints/step_03100\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.strip().splitlines()
        self.assertEqual([line.split("\t")[0] for line in lines[1:]],
                         [self.h5 + ":/checkpoints/step_03000", self.h5 + ":/checkpoints/step_03100"])
        p = run("volume", "-", "--files-from", "-", stdin="")
        self.assertEqual(p.returncode, 2)
        self.assertIn("more than once", p.stderr)


if __name__ == "__main__":
    clitest.main()
