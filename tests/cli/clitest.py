"""What the command-line test files share: the basinvol binary from the
command line, and a test case with a temporary directory of its own."""
import os
import sys
import tempfile
import unittest


def main():
    """Runs the calling file's tests against the basinvol binary named first
    on the command line (the rest goes to unittest); the binary's path is
    the file's global BIN."""
    script = os.path.basename(sys.argv[0])
    if len(sys.argv) < 2 or not os.access(sys.argv[1], os.X_OK):
        sys.exit("usage: %s PATH/TO/basinvol [unittest options]" % script)
    caller = sys.modules["__main__"]
    caller.BIN = os.path.abspath(sys.argv.pop(1))
    unittest.main(module=caller, verbosity=1)


def first_line(proc):
    """The first line a running process writes to its stdout pipe, read a
    byte at a time so that nothing past it is buffered: communicate() reads
    the pipe's descriptor itself and never sees what a buffered readline()
    took beyond the line (a second row written at once would be lost)."""
    fd, line = proc.stdout.fileno(), bytearray()
    while not line.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            break
        line += byte
    return line.decode()


class TempDirTest(unittest.TestCase):
    """A test case with a fresh temporary directory per test (self.dir)."""
    prefix = "basinvol-test-"

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix=self.prefix)
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)
