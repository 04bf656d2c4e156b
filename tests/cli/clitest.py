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


def _hdf5_library():
    """The HDF5 library h5py runs on (its identifiers are valid there), through ctypes."""
    import ctypes
    with open("/proc/self/maps") as maps:
        libs = {line.split()[-1] for line in maps if "libhdf5" in line and "_hl" not in line}
    assert len(libs) == 1, libs
    return ctypes.CDLL(libs.pop())


def write_raw_partial_edge_chunks(file, data, shuffle=False, colliding=False):
    """Writes `data` (n x n, 32 < n < 64, not a multiple of 16) as FILE:/hessian
    in deflated 16 x 16 chunks with HDF5's H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS:
    the chunks that reach past the edge are stored unfiltered while their
    filter mask says none was skipped. Returns the values HDF5 reads back.
    `colliding`: every partial edge chunk starts with a zlib stream
    inflating to exactly a chunk's bytes (all 0x3F), which a reader
    inflating it takes for the chunk without an error; the values the
    stream overlays are set to what it makes of them, mirrored, so the
    matrix stays symmetric."""
    import ctypes
    import zlib
    import h5py
    import numpy as np
    data = np.array(data)
    n = data.shape[0]
    assert 32 < n < 64 and n % 16
    edge = n // 16 * 16
    chunk_bytes = 16 * 16 * data.itemsize
    rle = zlib.compressobj(6, zlib.DEFLATED, 15, 8, zlib.Z_RLE)  # its first values are small (about 1e-210)
    stream = rle.compress(bytes([0x3F]) * chunk_bytes) + rle.flush()
    edges = [(r, edge) for r in range(0, edge, 16)] + [(edge, c) for c in range(0, edge + 1, 16)]
    if colliding:
        assert data.dtype == np.float64 and not shuffle and len(stream) < 16 * 8
        k = (len(stream) + 7) // 8  # values of a chunk's first row the stream reaches
        for r, c in edges:
            row = np.zeros(16)
            row[:min(16, n - c)] = data[r, c:c + 16]
            raw = bytearray(row.tobytes())
            raw[:len(stream)] = stream
            for j, v in enumerate(np.frombuffer(bytes(raw), "<f8")[:k]):
                if c + j < n:
                    data[r, c + j] = data[c + j, r] = v
        assert np.isfinite(data).all()
    with h5py.File(file, "w", libver="latest") as f:
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((16, 16))
        if shuffle:
            dcpl.set_shuffle()
        dcpl.set_deflate(6)
        assert _hdf5_library().H5Pset_chunk_opts(ctypes.c_int64(dcpl.id), ctypes.c_uint(2)) >= 0
        d = h5py.h5d.create(f.id, b"hessian", h5py.h5t.py_create(data.dtype), h5py.h5s.create_simple(data.shape),
                            dcpl=dcpl)
        d.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(data))
        for at in edges:
            mask, raw = d.read_direct_chunk(at)
            assert mask == 0 and len(raw) == chunk_bytes  # stored raw, with a mask of "all filters applied"
            if colliding:
                d.write_direct_chunk(at, stream + raw[len(stream):], filter_mask=0)
    with h5py.File(file, "r") as f:
        read = f["hessian"][...]
    assert np.array_equal(read, data)
    return read


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
