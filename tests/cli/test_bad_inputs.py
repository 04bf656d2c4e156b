#!/usr/bin/python3
"""Broken and awkward inputs, end to end through the command line.

Every broken file is written here with h5py (or by damaging a valid file) in a
temporary directory and run through `basinvol volume`, once on its own and once
mixed with every good file in one command. A broken source must:

  - exit 1 (never a signal: returncode >= 0), within seconds;
  - print one error line on stderr that names the file (and the dataset where
    there is one), the rule broken and the value that broke it;
  - leave every other source of the same run reported.

Every awkward but valid file (big-endian, float32, soft and external links,
chunked and compressed layouts, deep groups, near-symmetric matrices, odd
attribute types) has a clean twin (the same matrix as a plain little-endian
contiguous dataset) and must give the twin's numbers.

The catalogue of messages is docs/errors.md.

Usage: /usr/bin/python3 tests/cli/test_bad_inputs.py PATH/TO/basinvol [unittest options]
Needs Debian's python3-numpy and python3-h5py.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import zlib

import clitest

import h5py
import numpy as np

BIN = None  # set from argv[1] in __main__
TIMEOUT = 30  # seconds; every case here finishes in well under one
DIR = None  # the temporary directory holding every file


def run(*args, preexec=None, user=None):
    cmd = [BIN] + [str(a) for a in args]
    if user is not None:
        cmd = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user, "--clear-groups"] + cmd
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, preexec_fn=preexec)
    p.seconds = time.monotonic() - t0
    return p


def rows_of(p):
    return [json.loads(line, parse_constant=_no_constants) for line in p.stdout.splitlines() if line.strip()]


def _no_constants(name):
    raise ValueError("non-finite number %s in JSON output" % name)


def path(name):
    return os.path.join(DIR, name)


def with_spectrum(eigs, seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(eigs), len(eigs))))
    q = q * np.sign(np.diag(r))
    h = (q * np.asarray(eigs, dtype=float)) @ q.T
    return (h + h.T) / 2


H = with_spectrum(np.concatenate([np.geomspace(5, 0.05, 12), [-0.3], np.zeros(7)]), 1)  # n = 20
H_LARGE = with_spectrum(np.concatenate([np.geomspace(10, 0.1, 30), np.zeros(20)]), 2)  # n = 50


def h5(name, build):
    with h5py.File(path(name), "w") as f:
        build(f)
    return path(name)


def plain(name, data, dtype=None):
    return h5(name, lambda f: f.create_dataset("hessian", data=data, dtype=dtype))


def float_type(size, exponent_bits, mantissa_bits, ebias=127):
    """An HDF5 float type of `size` bytes: sign, exponent, mantissa from the top bit down."""
    t = h5py.h5t.IEEE_F32LE.copy()
    precision = 1 + exponent_bits + mantissa_bits
    t.set_fields(precision - 1, mantissa_bits, exponent_bits, 0, mantissa_bits)
    t.set_offset(0)
    t.set_precision(precision)
    t.set_size(size)
    t.set_ebias(ebias)
    return t


def flip_bytes(file, offset, count):
    with open(file, "r+b") as f:
        f.seek(offset)
        b = bytearray(f.read(count))
        f.seek(offset)
        f.write(bytes(x ^ 0x5A for x in b))


def corrupt_chunks(name, **dataset_options):
    """A chunked dataset whose stored chunks have bytes flipped in the middle."""
    file = h5(name, lambda f: f.create_dataset("hessian", data=H_LARGE, chunks=(16, 16), **dataset_options))
    with h5py.File(file, "r") as f:
        d = f["hessian"]
        chunks = [d.id.get_chunk_info(i) for i in range(d.id.get_num_chunks())]
    for c in chunks:
        flip_bytes(file, c.byte_offset + c.size // 2, min(16, c.size // 4))
    return file


def replaced_chunk(name, raw, dtype="<f8"):
    """A gzip dataset whose chunk at [16, 0] (not the first) holds `raw` as
    its stored bytes."""
    def build(f):
        d = f.create_dataset("hessian", data=H_LARGE.astype(dtype), chunks=(16, 16), compression="gzip")
        d.id.write_direct_chunk((16, 0), raw)
    return h5(name, build)


# --------------------------------------------------------------------------
# The catalogue: name -> (make the file, return the SOURCE; pieces the message must hold)
# --------------------------------------------------------------------------

def _text():
    with open(path("text.h5"), "w") as f:
        f.write("this is not an HDF5 file\n" * 10)
    return path("text.h5")


def _zero_bytes():
    open(path("zero_bytes.h5"), "wb").close()
    return path("zero_bytes.h5")


def _truncated(keep):
    def make():
        name = "truncated_%s.h5" % str(keep).replace(".", "_")
        file = plain(name, H_LARGE)
        os.truncate(file, int(os.path.getsize(file) * keep))
        return file
    return make


def _corrupt_superblock():
    file = plain("corrupt_superblock.h5", H)
    flip_bytes(file, 8, 40)  # keep the 8-byte signature, wreck what follows
    return file


def _nan_fill_missing_chunk():
    def build(f):
        d = f.create_dataset("hessian", shape=(20, 20), dtype="f8", chunks=(10, 10), fillvalue=np.nan)
        d[:10, :10] = H[:10, :10]  # three of four chunks are never written
    return h5("missing_chunk.h5", build)


def _netcdf_fill_missing_chunk():
    # netCDF's default fill value where chunks were never written.
    def build(f):
        d = f.create_dataset("hessian", shape=(20, 20), dtype="f8", chunks=(10, 10), fillvalue=9.969209968386869e36)
        d[:10, :10] = H[:10, :10]
    return h5("netcdf_fill.h5", build)


def _scalar():
    return h5("scalar.h5", lambda f: f.create_dataset("hessian", data=3.0)) + ":/hessian"


def _null_space():
    return h5("null_space.h5", lambda f: f.create_dataset("hessian", data=h5py.Empty("f8"))) + ":/hessian"


def _typed(name, data, dtype=None):
    return lambda: plain(name, data, dtype) + ":/hessian"


def _enum():
    dt = h5py.enum_dtype({"a": 0, "b": 1}, basetype="i1")
    return plain("enum.h5", np.zeros((3, 3), dtype="i1"), dt) + ":/hessian"


def _vlen():
    def build(f):
        d = f.create_dataset("hessian", shape=(2, 2), dtype=h5py.vlen_dtype(np.float64))
        d[0, 0] = np.arange(3.0)
    return h5("vlen.h5", build) + ":/hessian"


def _reference():
    def build(f):
        f.create_dataset("target", data=1.0)
        d = f.create_dataset("hessian", shape=(2, 2), dtype=h5py.ref_dtype)
        d[0, 0] = f["target"].ref
    return h5("reference.h5", build) + ":/hessian"


def _opaque():
    return plain("opaque.h5", np.zeros((2, 2), dtype="V8")) + ":/hessian"


def _array_type():
    # h5py turns numpy sub-arrays into extra dimensions; the low-level API makes a true H5T_ARRAY.
    def build(f):
        h5py.h5d.create(f.id, b"hessian", h5py.h5t.array_create(h5py.h5t.IEEE_F64LE, (2,)),
                        h5py.h5s.create_simple((2, 2)))
    return h5("array_type.h5", build) + ":/hessian"


def _int64_inexact():
    m = np.array([[2**60 + 1, 1], [1, 2]], dtype=np.int64)
    return plain("int64_inexact.h5", m)


def _int64_just_past():
    # 2^53 + 1 reads as 2^53 in float64: a check of the converted value
    # against "> 2^53" let it through, rounded.
    m = np.array([[2, 1], [1, 2**53 + 1]], dtype=np.int64)
    return plain("int64_just_past.h5", m)


def _nan():
    m = H.copy()
    m[3, 7] = np.nan
    return plain("nan.h5", m)


def _inf():
    m = H.copy()
    m[5, 2] = -np.inf
    return plain("inf.h5", m)


def _asymmetric():
    m = H.copy()
    m[0, 1] += 1.0
    return plain("asymmetric.h5", m)


def _huge_chunked():
    return h5("huge_chunked.h5", lambda f: f.create_dataset("hessian", shape=(300000, 300000), dtype="f8",
                                                             chunks=(1000, 1000), compression="gzip"))


def _huge_contiguous():
    return h5("huge_contiguous.h5", lambda f: f.create_dataset("hessian", shape=(2**31 + 3, 2**31 + 3), dtype="i1"))


def _group_without_hessian():
    def build(f):
        f.create_group("checkpoints/empty")
        f.create_dataset("checkpoints/losses", data=np.arange(5.0))
    return h5("group_without_hessian.h5", build) + ":/checkpoints"


def _missing_path():
    return plain("missing_path.h5", H) + ":/no/such/hessian"


def _dangling_soft():
    def build(f):
        f["hessian"] = h5py.SoftLink("/nowhere")
    return h5("dangling_soft.h5", build) + ":/hessian"


def _dangling_external():
    def build(f):
        f["hessian"] = h5py.ExternalLink("no_such_file.h5", "/hessian")
    return h5("dangling_external.h5", build) + ":/hessian"


def _vds_missing_source():
    # HDF5 reads the part of a virtual dataset whose source it cannot open as
    # the fill value: a Hessian of zeros there, unless refused.
    n = H.shape[0]
    layout = h5py.VirtualLayout(shape=(n, n), dtype="f8")
    layout[:, :] = h5py.VirtualSource("vds_gone.h5", "hessian", shape=(n, n))
    return h5("vds_missing_source.h5", lambda f: f.create_virtual_dataset("hessian", layout, fillvalue=0))


def _eoa_inside_data():
    # The superblock's end of allocated space (offset 40 of a version-0
    # superblock) inside a contiguous dataset, as a writer killed before it
    # rewrote the superblock leaves it: HDF5 reads the rest as zeros.
    import struct
    file = plain("eoa_inside_data.h5", np.diag(np.arange(1.0, 33.0)))
    with h5py.File(file, "r") as f:
        offset = f["hessian"].id.get_offset()
    b = bytearray(open(file, "rb").read())
    struct.pack_into("<Q", b, 40, offset + 100)
    open(file, "wb").write(b)
    return file


def _vds_string_source():
    # A source of text under a float64 virtual dataset: refused as the source
    # alone is, not as an unreadable read.
    n = H.shape[0]
    src = h5("vds_text_source.h5", lambda f: f.create_dataset("s", data=np.full((n, n), b"x")))
    layout = h5py.VirtualLayout(shape=(n, n), dtype="f8")
    layout[:, :] = h5py.VirtualSource(os.path.basename(src), "s", shape=(n, n))
    return h5("vds_string_source.h5", lambda f: f.create_virtual_dataset("hessian", layout, fillvalue=0))


def _vds_loop():
    # A virtual dataset mapped onto itself: HDF5 recurses until it crashes.
    n = H.shape[0]
    layout = h5py.VirtualLayout(shape=(n, n), dtype="f8")
    layout[:, :] = h5py.VirtualSource(".", "hessian", shape=(n, n))
    return h5("vds_loop.h5", lambda f: f.create_virtual_dataset("hessian", layout, fillvalue=0))


def _vds_unmapped():
    # A quarter mapped to no source: HDF5 reads it as the fill value.
    n, h = H.shape[0], H.shape[0] // 2
    plain("vds_quarters.h5", H)
    layout = h5py.VirtualLayout(shape=(n, n), dtype="f8")
    for rows, cols in ((slice(0, h), slice(0, n)), (slice(h, n), slice(0, h))):
        layout[rows, cols] = h5py.VirtualSource("vds_quarters.h5", "hessian", shape=(n, n))[rows, cols]
    return h5("vds_unmapped.h5", lambda f: f.create_virtual_dataset("hessian", layout, fillvalue=1.5))


def _vds_unwritten_source():
    # A source whose chunks were not all written: HDF5 reads those as the fill value.
    n = H.shape[0]

    def source(f):
        d = f.create_dataset("hessian", shape=(n, n), dtype="f8", chunks=(5, 5))
        d[:10, :10] = H[:10, :10]
    h5("vds_partial_source.h5", source)
    layout = h5py.VirtualLayout(shape=(n, n), dtype="f8")
    layout[:, :] = h5py.VirtualSource("vds_partial_source.h5", "hessian", shape=(n, n))
    return h5("vds_unwritten_source.h5", lambda f: f.create_virtual_dataset("hessian", layout, fillvalue=0))


def _cf_packed():
    # netCDF's packing: int16 values that stand for stored · scale_factor.
    def build(f):
        scale = np.abs(H).max() / 32000
        d = f.create_dataset("hessian", data=np.round(H / scale).astype(np.int16))
        d.attrs["scale_factor"] = scale
    return h5("cf_packed.h5", build)


def _dense_with_scale():
    # A structure's scale on a dense dataset, which holds its values as they are.
    def build(f):
        d = f.create_dataset("hessian", data=H)
        d.attrs["scale"] = 1e6
    return h5("dense_with_scale.h5", build)


def _vds_packed_source():
    # A virtual dataset over a source that holds packed values: refused as the source alone is.
    n = H.shape[0]

    def source(f):
        scale = np.abs(H).max() / 32000
        d = f.create_dataset("hessian", data=np.round(H / scale).astype(np.int16))
        d.attrs["scale_factor"] = scale
    h5("cf_packed_source.h5", source)
    layout = h5py.VirtualLayout(shape=(n, n), dtype="f8")
    layout[:, :] = h5py.VirtualSource("cf_packed_source.h5", "hessian", shape=(n, n))
    return h5("vds_packed.h5", lambda f: f.create_virtual_dataset("hessian", layout, fillvalue=0))


def _vds_short_external_source():
    # A source whose external raw-data file is short: HDF5 would read past its end as zeros.
    n = H.shape[0]
    H[: n // 2].tofile(path("vds_external_raw.bin"))
    h5("vds_external.h5", lambda f: f.create_dataset("hessian", shape=(n, n), dtype="f8",
                                                    external=[("vds_external_raw.bin", 0, H.nbytes)]))
    layout = h5py.VirtualLayout(shape=(n, n), dtype="f8")
    layout[:, :] = h5py.VirtualSource("vds_external.h5", "hessian", shape=(n, n))
    return h5("vds_short_external.h5", lambda f: f.create_virtual_dataset("hessian", layout, fillvalue=0))


def _vds_lossy_source():
    # A source kept to six decimals by the scale-offset filter: its rounding
    # would not reach the floor through the virtual dataset.
    n = H.shape[0]
    h5("vds_lossy_source.h5", lambda f: f.create_dataset("hessian", data=H, chunks=(n, n), scaleoffset=6))
    layout = h5py.VirtualLayout(shape=(n, n), dtype="f8")
    layout[:, :] = h5py.VirtualSource("vds_lossy_source.h5", "hessian", shape=(n, n))
    return h5("vds_lossy.h5", lambda f: f.create_virtual_dataset("hessian", layout, fillvalue=0))


def _int_scaleoffset_few_bits():
    # The integer scale-offset filter told to keep 4 bits wraps larger values.
    return h5("int_scaleoffset.h5", lambda f: f.create_dataset(
        "hessian", data=np.round(H * 100).astype(np.int32), chunks=(10, 10), scaleoffset=4))


def _one_plain_chunk(f, plain_bytes):
    # gzip on every chunk but the one at [16, 0], which a filter mask says is
    # stored uncompressed (HDF5 writes a chunk so when an optional filter
    # fails on it), holding its first plain_bytes bytes.
    d = f.create_dataset("hessian", shape=H_LARGE.shape, dtype="<f8", chunks=(16, 16), compression="gzip")
    n = H_LARGE.shape[0]
    for i in range(0, n, 16):
        for j in range(0, n, 16):
            block = np.zeros((16, 16))
            block[:min(16, n - i), :min(16, n - j)] = H_LARGE[i:i + 16, j:j + 16]
            raw = np.ascontiguousarray(block).tobytes()
            if (i, j) == (16, 0):
                d.id.write_direct_chunk((i, j), raw[:plain_bytes], filter_mask=1)
            else:
                d.id.write_direct_chunk((i, j), zlib.compress(raw), filter_mask=0)


def _short_plain_chunk():
    # Stored uncompressed in half its size: HDF5 would read it as a whole chunk.
    return h5("short_plain_chunk.h5", lambda f: _one_plain_chunk(f, 1024))


def _dangling_in_group():
    def build(f):
        f.create_group("checkpoints")["step_1"] = h5py.SoftLink("/deleted")
    return h5("dangling_in_group.h5", build) + ":/checkpoints"


def _directory():
    os.makedirs(path("a_directory.h5"), exist_ok=True)
    return path("a_directory.h5")


def _dangling_file_link():
    # `ls` lists it; "No such file or directory" alone would puzzle.
    link = path("dangling_link.h5")
    if not os.path.lexists(link):
        os.symlink(path("moved_away.h5"), link)
    return link


def _lzf():
    # h5py's own LZF filter: HDF5 itself does not ship it, so the data cannot be decoded.
    return h5("lzf.h5", lambda f: f.create_dataset("hessian", data=H, chunks=(10, 10), compression="lzf"))


def _bad_attribute(key, value):
    def make():
        label = ("array" if isinstance(value, np.ndarray) else "nan" if value != value
                 else str(value).replace("-", "minus"))
        name = "%s_%s.h5" % (key, label)
        def build(f):
            d = f.create_dataset("hessian", data=H)
            d.attrs[key] = value
        return h5(name, build)
    return make


def _corrupt_fourth_attribute():
    """Four attributes, the fourth with an invalid dataspace version byte.
    HDF5 1.10 fails to decode it while building its attribute table and then
    closes table slots it never filled (a crash under AddressSanitizer; in a
    plain build the three good attributes, loss_threshold among them, were
    silently dropped). Attribute message version 1: version, reserved, name
    size, datatype size, dataspace size, then name, datatype and dataspace,
    each padded to 8 bytes; a dataspace message starts with its version."""
    import struct

    def build(f):
        d = f.create_dataset("hessian", data=H)
        d.attrs["step"] = 7.0
        d.attrs["loss"] = 0.25
        d.attrs["loss_threshold"] = 0.5
        d.attrs["zz_corrupt"] = 2.0

    file = h5("corrupt_attribute.h5", build)
    with open(file, "r+b") as f:
        b = bytearray(f.read())
        at = b.find(b"zz_corrupt\x00")
        version, _, name_size, type_size, _ = struct.unpack("<BBHHH", b[at - 8:at])
        assert version == 1, version
        pad = lambda x: (x + 7) // 8 * 8
        dataspace = at + pad(name_size) + pad(type_size)
        assert b[dataspace] in (1, 2), b[dataspace]
        f.seek(dataspace)
        f.write(bytes([9]))
    return file


def _fuzz_regression(regression, name):
    """A file the fuzzer found (fuzz/regressions/fuzz_reader), as a file on disk."""
    def make():
        here = os.path.dirname(os.path.abspath(__file__))
        file = path(name)
        shutil.copyfile(os.path.join(here, "..", "..", "fuzz", "regressions", "fuzz_reader", regression), file)
        return file
    return make


def _scaleoffset_fletcher32_tiny_chunk():
    # A pipeline the chunk check cannot follow (scale-offset) ending in a
    # checksum: HDF5 1.10 checksums a chunk of under 4 bytes past the end
    # of memory (SIGSEGV).
    def build(f):
        plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        plist.set_chunk((16, 16))
        plist.set_scaleoffset(h5py.h5z.SO_FLOAT_DSCALE, 6)
        plist.set_fletcher32()
        d = h5py.h5d.create(f.id, b"hessian", h5py.h5t.IEEE_F64LE, h5py.h5s.create_simple(H_LARGE.shape), dcpl=plist)
        d.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(H_LARGE))
        d.write_direct_chunk((16, 0), bytes(2))
    return h5("scaleoffset_fletcher32_tiny.h5", build)


def _float_exponent_of_70_bits():
    # No real layout; HDF5 1.10 converts an exponent of over 64 bits through
    # a 64-bit integer on its stack.
    def build(f):
        t = h5py.h5t.IEEE_F64LE.copy()
        t.set_size(16)
        t.set_precision(128)
        t.set_fields(127, 52, 70, 0, 52)
        d = h5py.h5d.create(f.id, b"hessian", t, h5py.h5s.create_simple((3, 3)))
        d.write(h5py.h5s.ALL, h5py.h5s.ALL, np.zeros((3, 3), dtype="V16"), mtype=t)
    return h5("float_exponent_70_bits.h5", build)


# The properties of IEEE float64's type message (bit offset 0, precision
# 64, exponent at 52 of 11 bits, mantissa at 0 of 52, bias 1023).
F64_FIELDS = bytes([0, 0, 64, 0, 52, 11, 0, 52, 0xFF, 0x03, 0, 0])


def _float64_fields_patched(name, build, at, value):
    """A file whose one float64 type message has byte `at` of its
    properties set to `value`: a layout H5Tset_fields would refuse (fields
    that overlap or run past the value), which HDF5 reads all the same."""
    f = h5(name, build)
    b = bytearray(open(f, "rb").read())
    assert b.count(F64_FIELDS) == 1, "test data: one float64 type in the file"
    b[b.index(F64_FIELDS) + at] = value
    open(f, "wb").write(bytes(b))
    return f


def _hessian_with_float64_threshold(f):
    d = f.create_dataset("hessian", data=np.diag(np.arange(1.0, 7.0)).astype(np.float32))
    d.attrs["loss_threshold"] = np.float64(0.5)


BAD = {
    # name: (make, pieces of the message; the file name is always checked)
    # One flipped byte of a type message: the mantissa moved into the
    # exponent read 0.5 as 0.9375 and a rank-10 Hessian as rank 44; an
    # exponent at bit 50 read 0.5 as 1.4e306.
    "float64_mantissa_over_exponent": (
        lambda: _float64_fields_patched("mantissa_at_4.h5", lambda f: f.create_dataset(
            "hessian", data=np.diag(np.arange(1.0, 7.0))), 6, 4),
        [":/hessian", "the stored type is corrupt: float fields sign 63, exponent 52+11, mantissa 4+52 in 64 bits"]),
    "float64_mantissa_of_60_bits": (
        lambda: _float64_fields_patched("mantissa_60.h5", lambda f: f.create_dataset(
            "hessian", data=np.diag(np.arange(1.0, 7.0))), 7, 60),
        [":/hessian", "the stored type is corrupt: float fields sign 63, exponent 52+11, mantissa 0+60 in 64 bits"]),
    "attribute_exponent_over_mantissa": (
        lambda: _float64_fields_patched("threshold_exponent_50.h5", _hessian_with_float64_threshold, 4, 50),
        [":/hessian", "attribute loss_threshold must be one number, got a value of a corrupt type (float fields "
                      "sign 63, exponent 50+11, mantissa 0+52 in 64 bits (8 bytes))"]),
    "attribute_exponent_past_the_value": (
        lambda: _float64_fields_patched("threshold_exponent_41_bits.h5", _hessian_with_float64_threshold, 5, 41),
        [":/hessian", "attribute loss_threshold must be one number, got a value of a corrupt type (float fields "
                      "sign 63, exponent 52+41"]),
    "text": (_text, ["not an HDF5 file"]),
    "zero_bytes": (_zero_bytes, ["not an HDF5 file"]),
    "truncated_half": (_truncated(0.5), ["cannot open HDF5 file", "truncated"]),
    "truncated_header": (_truncated(0.02), ["truncated"]),
    "corrupt_superblock": (_corrupt_superblock, ["HDF5"]),
    "corrupt_gzip_chunks": (lambda: corrupt_chunks("corrupt_gzip.h5", compression="gzip"),
                            [":/hessian", "chunk", "corrupt"]),
    # A chunk index that claims over twice a chunk's plain size (16·16
    # doubles): refused before a buffer of that size is asked for.
    "vds_missing_source": (_vds_missing_source, [":/hessian", "virtual dataset's source vds_gone.h5:hessian",
                                                 "cannot be found", "fill value"]),
    "netcdf_fill_missing_chunk": (_netcdf_fill_missing_chunk, [":/hessian", "chunks never written read as the "
                                  "dataset's fill value 9.969209968386869e+36, which is no Hessian's entry"]),
    "vds_lossy_source": (_vds_lossy_source, [":/hessian", "source vds_lossy_source.h5:hessian: it is stored with the "
                                                          "lossy scale-offset filter"]),
    "dense_with_scale": (_dense_with_scale, [":/hessian", "attribute scale applies to factor and kron structures only"]),
    "cf_packed": (_cf_packed, [":/hessian", "packed by the netCDF/CF convention (attribute scale_factor)"]),
    "vds_loop": (_vds_loop, [":/hessian", "source .:hessian leads back to the virtual dataset itself"]),
    "eoa_inside_data": (_eoa_inside_data, [":/hessian", "bytes at offset", "past the end of the space the file says it "
                                                "allocated", "HDF5 would read the rest as zeros"]),
    "vds_string_source": (_vds_string_source, [":/hessian", "source vds_text_source.h5:s: dataset type is string, "
                                                            "not a number"]),
    "vds_unmapped": (_vds_unmapped, [":/hessian", "of its 400 entries are mapped to no source", "fill value 1.5"]),
    "vds_unwritten_source": (_vds_unwritten_source, [":/hessian", "source vds_partial_source.h5:hessian has storage "
                                                     "that was never written", "fill value"]),
    "vds_packed_source": (_vds_packed_source, [":/hessian", "source cf_packed_source.h5:hessian: the values are packed"]),
    "vds_short_external_source": (_vds_short_external_source, [":/hessian", "source vds_external.h5:hessian:",
                                                               "external raw-data file"]),
    "int_scaleoffset_few_bits": (_int_scaleoffset_few_bits, [":/hessian", "scale-offset filter keeping 4 bits",
                                                             "lossy"]),
    "short_plain_chunk": (_short_plain_chunk, [":/hessian", "chunk at [16, 0] is stored uncompressed in 1024 bytes; "
                                               "it holds 2048 (corrupt data)"]),
    "dangling_in_group": (_dangling_in_group, [":/checkpoints/step_1", "dangling link to /deleted"]),
    "oversized_gzip_chunk": (lambda: replaced_chunk("oversized_chunk.h5", np.random.default_rng(3).bytes(65536)),
                             [":/hessian", "chunk at [16, 0] claims 65536 compressed bytes, over twice its 2048",
                              "corrupt data"]),
    # A well-formed zlib stream of fewer bytes than the chunk holds.
    "short_gzip_chunk": (lambda: replaced_chunk("short_chunk.h5", zlib.compress(bytes(100))),
                         [":/hessian", "chunk at [16, 0]: it inflates to 100 bytes; it holds 2048 (corrupt data)"]),
    # The same in a type HDF5 converts (big-endian), which the parallel
    # inflater leaves to HDF5: checked all the same.
    "short_gzip_chunk_big_endian": (lambda: replaced_chunk("short_chunk_be.h5", zlib.compress(bytes(100)), ">f8"),
                                    [":/hessian", "chunk at [16, 0]: it inflates to 100 bytes; it holds 2048 (corrupt data)"]),
    "corrupt_fletcher32_chunks": (lambda: corrupt_chunks("corrupt_fletcher32.h5", fletcher32=True),
                                  [":/hessian", "cannot read dataset values", "checksum"]),
    # Chunks of the wrong size under filters that do not compress: HDF5
    # 1.10 copies a whole chunk out of a short one (zeros pass the
    # checksum), and checksums one of under 4 bytes past the end of memory.
    "short_fletcher32_chunk": (lambda: replaced_raw_chunk("short_fletcher32.h5", bytes(100), fletcher32=True),
                               [":/hessian", "chunk at [16, 0] is stored in 100 bytes, 96 without its checksum; it "
                                             "holds 2048 (corrupt data)"]),
    "tiny_fletcher32_chunk": (lambda: replaced_raw_chunk("tiny_fletcher32.h5", bytes(2), fletcher32=True),
                              [":/hessian", "chunk at [16, 0] is stored in 2 bytes, fewer than its 4-byte Fletcher-32 "
                                            "checksum (corrupt data)"]),
    "scaleoffset_fletcher32_tiny_chunk": (_scaleoffset_fletcher32_tiny_chunk,
                                          [":/hessian", "chunk at [16, 0] is stored in 2 bytes, fewer than its 4-byte "
                                                        "Fletcher-32 checksum (corrupt data)"]),
    "float_exponent_of_70_bits": (_float_exponent_of_70_bits,
                                  [":/hessian", "the stored type is corrupt: float fields sign 127, exponent 52+70"]),
    # Without filters HDF5 reads a chunk's plain size from where it starts,
    # past a short one's end (values from whatever follows).
    "short_unfiltered_chunk": (lambda: replaced_raw_chunk("short_unfiltered.h5", bytes(100)),
                               [":/hessian", "its chunk index gives its 16 chunks 30820 bytes in all, where each holds "
                                             "2048 stored as it is (corrupt data)"]),
    "short_shuffle_chunk": (lambda: replaced_raw_chunk("short_shuffle.h5", bytes(100), shuffle=True),
                            [":/hessian", "chunk at [16, 0] is stored uncompressed in 100 bytes; it holds 2048"]),
    "short_gzip_fletcher32_chunk": (lambda: replaced_raw_chunk("short_gzip_fletcher32.h5",
                                                               zlib.compress(bytes(100)) + bytes(4),
                                                               compression="gzip", fletcher32=True),
                                    [":/hessian", "chunk at [16, 0]: it inflates to 100 bytes; it holds 2048"]),
    "missing_filter": (_lzf, [":/hessian", "filter 32000 (lzf)", "cannot decode", "HDF5_PLUGIN_PATH"]),
    "missing_chunk_nan_fill": (_nan_fill_missing_chunk, [":/hessian", "chunks never written read as the "
                                                         "dataset's fill value nan, which is no Hessian's entry"]),
    # Created, never written (a writer that died): a Hessian of fill values
    # would be an ok row of zeros, ranked first.
    "never_written": (lambda: h5("never_written.h5", lambda f: f.create_dataset("hessian", shape=(6, 6))),
                      [":/hessian", "the dataset was never written (no storage is allocated"]),
    "never_written_chunked": (lambda: h5("never_written_chunked.h5", lambda f: f.create_dataset(
        "hessian", shape=(6, 6), chunks=(3, 3), compression="gzip")), [":/hessian", "the dataset was never written"]),
    "missing_file": (lambda: path("does_not_exist.h5"), ["No such file or directory"]),
    "dangling_file_link": (_dangling_file_link, ["cannot open file: it is a symbolic link to", "moved_away.h5, "
                                                 "which leads nowhere"]),
    "missing_path": (_missing_path, [":/no", "no such object"]),
    "dangling_soft_link": (_dangling_soft, [":/hessian", "dangling"]),
    "dangling_external_link": (_dangling_external, [":/hessian", "dangling"]),
    "group_without_hessian": (_group_without_hessian, [":/checkpoints", "no Hessian found", "losses is 1-D"]),
    "directory": (_directory, ["it is a directory"]),
    "scalar": (_scalar, [":/hessian", "not a 2-D matrix", "scalar"]),
    "null_dataspace": (_null_space, [":/hessian", "not a 2-D matrix"]),
    "one_d": (_typed("one_d.h5", np.arange(4.0)), [":/hessian", "1-D with shape 4"]),
    "three_d": (_typed("three_d.h5", np.ones((2, 3, 3))), [":/hessian", "3-D with shape 2x3x3"]),
    "non_square": (_typed("non_square.h5", np.ones((3, 5))), [":/hessian", "not square: shape 3x5"]),
    "zero_by_zero": (_typed("zero_by_zero.h5", np.zeros((0, 0))), [":/hessian", "empty: shape 0x0"]),
    "string": (_typed("string.h5", np.array([[b"a", b"b"], [b"c", b"d"]])), [":/hessian", "type is string"]),
    "vlen_string": (_typed("vlen_string.h5", np.array([["a", "b"], ["c", "d"]], dtype=object),
                           h5py.string_dtype()), [":/hessian", "type is string"]),
    "compound": (_typed("compound.h5", np.zeros((2, 2), dtype=[("a", "<f8"), ("b", "<i4")])),
                 [":/hessian", "type is compound"]),
    "complex": (_typed("complex.h5", np.eye(2, dtype=np.complex128)), [":/hessian", "type is compound"]),
    "enum": (_enum, [":/hessian", "type is enum"]),
    "bool": (_typed("bool.h5", np.eye(3, dtype=bool)), [":/hessian", "type is enum"]),
    "vlen": (_vlen, [":/hessian", "type is variable-length"]),
    "reference": (_reference, [":/hessian", "type is reference"]),
    "opaque": (_opaque, [":/hessian", "type is opaque"]),
    "array_type": (_array_type, [":/hessian", "type is array"]),
    "int64_inexact": (_int64_inexact, [":/hessian", "int64 value of about 1152921504606846976 at [0, 0] is at or beyond 2^53"]),
    "int64_just_past": (_int64_just_past, [":/hessian", "int64 value of about 9007199254740992 at [1, 1] is at or beyond 2^53"]),
    "nan": (_nan, [":/hessian", "non-finite value nan at [3, 7]"]),
    "inf": (_inf, [":/hessian", "non-finite value -inf at [5, 2]"]),
    "asymmetric": (_asymmetric, [":/hessian", "not symmetric", "exceeds 0.001"]),
    "huge_chunked": (_huge_chunked, [":/hessian", "n = 300000 needs", "over the memory budget"]),
    "huge_contiguous": (_huge_contiguous, [":/hessian", "n = 2147483651"]),
    "threshold_negative": (_bad_attribute("loss_threshold", -1.0),
                           [":/hessian", "loss_threshold must be a positive number"]),
    "threshold_nan": (_bad_attribute("loss_threshold", float("nan")),
                      [":/hessian", "loss_threshold must be a positive number"]),
    "threshold_text": (_bad_attribute("loss_threshold", "abc"),
                       [":/hessian", "attribute loss_threshold must be one number, got the string 'abc'"]),
    "threshold_array": (_bad_attribute("loss_threshold", np.array([1.0, 2.0])),
                        [":/hessian", "attribute loss_threshold must be one number, got an array of 2 values"]),
    "hessian_error_negative": (_bad_attribute("hessian_error", -1.0),
                               [":/hessian", "attribute hessian_error must be a finite number >= 0, got -1"]),
    "hessian_error_nan": (_bad_attribute("hessian_error", float("nan")),
                          [":/hessian", "attribute hessian_error must be a finite number >= 0, got nan"]),
    "corrupt_attribute": (_corrupt_fourth_attribute, [":/hessian", "an attribute cannot be decoded",
                                                      "wrong version number in dataspace message"]),
    # The root group's symbol-table B-tree points past the end of the file:
    # HDF5 1.10's H5Literate crashed in its metadata accumulator (SIGSEGV in a
    # plain build too); counting the links first fails cleanly.
    "symbol_table_outside_file": (
        _fuzz_regression("hdf5-symbol-table-outside-file-crashes-accumulator", "symbol_table_outside_file.h5"),
        [":/", "cannot list group", "attempting I/O in temporary file space"]),
    # A B-tree node on which HDF5 1.10 crashes even while counting links: the
    # listing's child process dies and the file becomes one error row.
    "hdf5_crash_while_listing": (
        _fuzz_regression("hdf5-btree-node-crashes-group-info", "hdf5_crash_while_listing.h5"),
        ["the HDF5 library failed while reading this file's structure", "corrupt file"]),
    # A string attribute whose global-heap entry is corrupt: HDF5 1.10's
    # H5HG_read copies between overlapping ranges and dies (found by a bounded
    # fuzz run, 2026-12-02); the listing's child dies, the file is one error row.
    "hdf5_crash_reading_string_attribute": (
        _fuzz_regression("hdf5-corrupt-string-attribute-crashes-global-heap", "hdf5_crash_string_attribute.h5"),
        ["the HDF5 library failed while reading this file's structure", "corrupt file"]),
    # A 3 KB file whose dataset's type claims 2 GB elements (1.4e19 bytes of
    # storage): HDF5 was handed, and filled, a 2 GB buffer before the read
    # failed. Its type's layout is refused at listing (and storage past the
    # end of the file would be too).
    "contiguous_past_end_of_file": (
        lambda: _fuzz_regression("hdf5-contiguous-size-past-end-of-file", "contiguous_past_end.h5")() + ":/large",
        [":/large", "the stored type is corrupt", "in 2046820360 bytes"]),
    # An integer dataset whose corrupt type made HDF5 1.10's conversion
    # (H5T__bit_copy) die of SIGBUS, and the tool with it: its type's bit
    # layout is checked at listing.
    "corrupt_integer_type": (
        lambda: _fuzz_regression("hdf5-corrupt-integer-type-crashes-conversion", "crash_converting.h5")() + ":/int64",
        [":/int64", "the stored type is corrupt"]),
}


# --------------------------------------------------------------------------
# Awkward but valid: name -> (make the file, return the SOURCE; the clean twin's SOURCE)
# --------------------------------------------------------------------------

def _twin(name, data):
    return plain("twin_" + name + ".h5", data)


def _good(name, build, data=H, source_path="", twin_dtype=None):
    def make():
        file = h5(name + ".h5", build)
        twin = _twin(name, data if twin_dtype is None else data.astype(twin_dtype))
        return file + source_path, twin
    return make


def _float16():
    # float16 carries its own eps (2^-10), so the default cut differs from the
    # float32 twin's; an explicit cut compares the numbers themselves.
    source, twin = _good("float16", lambda f: f.create_dataset("hessian", data=H.astype(np.float16)),
                         data=H.astype(np.float16).astype(np.float32))()
    return source, twin, ["--atol", "0.02"]


def _fletcher32_inside_gzip(f):
    # The checksum applied before deflate (h5py puts it after): a chunk
    # inflates to its values and their 4-byte checksum.
    plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    plist.set_chunk((16, 16))
    plist.set_shuffle()
    plist.set_fletcher32()
    plist.set_deflate(6)
    d = h5py.h5d.create(f.id, b"hessian", h5py.h5t.IEEE_F64LE, h5py.h5s.create_simple(H_LARGE.shape), dcpl=plist)
    d.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(H_LARGE))


def replaced_raw_chunk(name, raw, **filters):
    """A dataset with `filters` whose chunk at [16, 0] holds `raw` as its stored bytes."""
    def build(f):
        d = f.create_dataset("hessian", data=H_LARGE, chunks=(16, 16), **filters)
        d.id.write_direct_chunk((16, 0), raw)
    return h5(name, build)


def _skipped_filter_chunks(f):
    _one_plain_chunk(f, 16 * 16 * 8)


def _optional_unknown_filter(f):
    # An optional filter this HDF5 lacks, skipped on every chunk when written.
    plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    plist.set_chunk((10, 10))
    plist.set_filter(30001, h5py.h5z.FLAG_OPTIONAL, ())
    d = h5py.h5d.create(f.id, b"hessian", h5py.h5t.IEEE_F64LE, h5py.h5s.create_simple(H.shape), dcpl=plist)
    d.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(H))


def _raw_partial_edge_chunks(name, dtype, shuffle, colliding=False):
    """H_LARGE (n = 50) in 16 x 16 chunks whose partial edge chunks are
    stored unfiltered (clitest.write_raw_partial_edge_chunks)."""
    def make():
        data = clitest.write_raw_partial_edge_chunks(path(name + ".h5"), H_LARGE.astype(dtype), shuffle, colliding)
        return path(name + ".h5"), _twin(name, data)
    return make


def _virtual_blocks():
    # A virtual dataset of two sources (beside it, named relatively) and a
    # block of its own file.
    n = H.shape[0]
    plain("vds_part_top.h5", H[:12])
    layout = h5py.VirtualLayout(shape=(n, n), dtype="f8")
    layout[:12, :] = h5py.VirtualSource("vds_part_top.h5", "hessian", shape=(12, n))
    layout[12:, :] = h5py.VirtualSource(".", "bottom", shape=(n - 12, n))

    def build(f):
        f["bottom"] = H[12:]
        f.create_virtual_dataset("hessian", layout, fillvalue=0)
    return h5("vds_blocks.h5", build) + ":/hessian", _twin("vds_blocks", H)


def _virtual_compressed_source():
    # A virtual dataset over a gzip-compressed source (every chunk written).
    n = H.shape[0]
    h5("vds_gzip_source.h5", lambda f: f.create_dataset("hessian", data=H, chunks=(8, 8), compression="gzip"))
    layout = h5py.VirtualLayout(shape=(n, n), dtype="f8")
    layout[:, :] = h5py.VirtualSource("vds_gzip_source.h5", "hessian", shape=(n, n))
    return h5("vds_gzip.h5", lambda f: f.create_virtual_dataset("hessian", layout, fillvalue=0)) + ":/hessian", \
        _twin("vds_gzip", H)


def _virtual_nested_fan():
    # Virtual datasets six deep, each of ten row bands over the one below:
    # every source is checked once, not once per path to it (10^6).
    n = H.shape[0]
    plain("vds_fan0.h5", H)
    for level in range(1, 7):
        layout = h5py.VirtualLayout(shape=(n, n), dtype="f8")
        for band in range(10):
            rows = slice(2 * band, 2 * band + 2)
            layout[rows, :] = h5py.VirtualSource(f"vds_fan{level - 1}.h5", "hessian", shape=(n, n))[rows, :]
        h5(f"vds_fan{level}.h5", lambda f: f.create_virtual_dataset("hessian", layout, fillvalue=0))
    return path("vds_fan6.h5") + ":/hessian", _twin("vds_fan", H)


def _virtual_checkerboard():
    # Strided mappings of 80,200 blocks between them, covering every entry.
    n = 400
    A = np.random.default_rng(5).standard_normal((n, 40))
    big = A @ A.T
    plain("vds_board_source.h5", big)
    layout = h5py.VirtualLayout(shape=(n, n), dtype="f8")
    source = h5py.VirtualSource("vds_board_source.h5", "hessian", shape=(n, n))
    for rows, cols in ((slice(0, n, 2), slice(0, n, 2)), (slice(1, n, 2), slice(0, n)), (slice(0, n, 2), slice(1, n, 2))):
        layout[rows, cols] = source[rows, cols]
    return h5("vds_board.h5", lambda f: f.create_virtual_dataset("hessian", layout, fillvalue=0)) + ":/hessian", \
        _twin("vds_board", big)


def _virtual_partly_written_source():
    # The source's unmapped half was never written; the mapped half was.
    n = H.shape[0]

    def source(f):
        d = f.create_dataset("hessian", shape=(2 * n, n), dtype="f8", chunks=(n // 2, n))
        d[:n] = H
    h5("vds_half_source.h5", source)
    layout = h5py.VirtualLayout(shape=(n, n), dtype="f8")
    layout[:, :] = h5py.VirtualSource("vds_half_source.h5", "hessian", shape=(2 * n, n))[:n, :]
    return h5("vds_half.h5", lambda f: f.create_virtual_dataset("hessian", layout, fillvalue=0)) + ":/hessian", \
        _twin("vds_half", H)


def _virtual_nested_through_a_link():
    # A virtual dataset over a link to a virtual dataset in a subfolder,
    # whose sources lie beside it (not beside the first).
    n, h = H.shape[0], H.shape[0] // 2
    os.makedirs(path("vds_sub"), exist_ok=True)
    plain(os.path.join("vds_sub", "parts.h5"), H)
    inner = h5py.VirtualLayout(shape=(n, n), dtype="f8")
    inner[:h, :] = h5py.VirtualSource("parts.h5", "hessian", shape=(n, n))[:h, :]
    inner[h:, :] = h5py.VirtualSource("parts.h5", "hessian", shape=(n, n))[h:, :]
    h5(os.path.join("vds_sub", "inner.h5"), lambda f: f.create_virtual_dataset("hessian", inner, fillvalue=0))
    h5("vds_link.h5", lambda f: f.__setitem__("hessian", h5py.ExternalLink(os.path.join("vds_sub", "inner.h5"),
                                                                           "/hessian")))
    outer = h5py.VirtualLayout(shape=(n, n), dtype="f8")
    outer[:, :] = h5py.VirtualSource("vds_link.h5", "hessian", shape=(n, n))
    return h5("vds_outer.h5", lambda f: f.create_virtual_dataset("hessian", outer, fillvalue=0)) + ":/hessian", \
        _twin("vds_outer", H)


def _virtual_float32_sources():
    # A float64 virtual dataset over float32 sources holds float32 values:
    # cut and measured as its float32 twin.
    n, h = H.shape[0], H.shape[0] // 2
    H32 = H.astype(np.float32)
    plain("vds_f32_top.h5", H32[:h])
    plain("vds_f32_bottom.h5", H32[h:])
    layout = h5py.VirtualLayout(shape=(n, n), dtype="f8")
    layout[:h, :] = h5py.VirtualSource("vds_f32_top.h5", "hessian", shape=(h, n))
    layout[h:, :] = h5py.VirtualSource("vds_f32_bottom.h5", "hessian", shape=(n - h, n))
    return h5("vds_f32.h5", lambda f: f.create_virtual_dataset("hessian", layout, fillvalue=0)) + ":/hessian", \
        _twin("vds_f32", H32)


NEAR = H.copy()
NEAR[0, 1] += 1e-9  # relative asymmetry ~1e-10: symmetrized, like its twin (H + Hᵀ)/2


def _near_symmetric():
    # The asymmetry is the input's own noise and raises the noise floor; the
    # symmetric twin states the same error as its hessian_error attribute.
    def twin(f):
        d = f.create_dataset("hessian", data=(NEAR + NEAR.T) / 2)
        d.attrs["hessian_error"] = float(np.linalg.norm(NEAR - NEAR.T))
    return h5("near_symmetric.h5", lambda f: f.create_dataset("hessian", data=NEAR)), h5("twin_near_symmetric.h5", twin)


def _external_link():
    target = plain("external_target.h5", H)

    def build(f):
        f["hessian"] = h5py.ExternalLink(os.path.basename(target), "/hessian")
    return h5("external_link.h5", build) + ":/hessian", _twin("external_link", H)


def _odd_attributes(f):
    d = f.create_dataset("hessian", data=H)
    d.attrs["step"] = "not a number"
    d.attrs["loss"] = np.array([1.0, 2.0, 3.0])
    d.attrs["name"] = np.array([1, 2], dtype="i4")
    d.attrs["loss_threshold_note"] = np.zeros(2, dtype=[("a", "f8"), ("b", "i4")])
    d.attrs["epoch"] = np.nan
    d.attrs.create("blob", np.void(b"\x00\x01\x02"))
    d.attrs["bytes"] = np.bytes_(b"\xff\xfe not utf-8")


def _non_utf8_names():
    with h5py.File(path("non_utf8.h5"), "w") as f:
        g = f.create_group(b"run\xff")
        d = g.create_dataset(b"hessian\xfe", data=H)
        d.attrs["name"] = np.bytes_(b"\xc3\x28")
    return path("non_utf8.h5"), _twin("non_utf8", H)


def _partly_written_zero_fill(f):
    d = f.create_dataset("hessian", shape=(20, 20), dtype="f8", chunks=(10, 10))
    d[:10, :10] = H[:10, :10]


GOOD = {
    "big_endian_f64": _good("big_endian_f64", lambda f: f.create_dataset("hessian", data=H, dtype=">f8")),
    "big_endian_f32": _good("big_endian_f32", lambda f: f.create_dataset("hessian", data=H, dtype=">f4"),
                            twin_dtype=np.float32),
    "float32": _good("float32", lambda f: f.create_dataset("hessian", data=H.astype(np.float32)),
                     twin_dtype=np.float32),
    "float16": _float16,
    "int16": _good("int16", lambda f: f.create_dataset("hessian", data=np.round(H * 100).astype(np.int16)),
                   data=np.round(H * 100)),
    "soft_link": _good("soft_link", lambda f: (f.create_dataset("data/h", data=H),
                                               f.__setitem__("hessian", h5py.SoftLink("/data/h"))),
                       source_path=":/hessian"),
    "external_link": _external_link,
    "deep_groups": _good("deep_groups", lambda f: f.create_dataset("a/b/c/d/e/f/g/hessian", data=H)),
    "chunked_gzip_shuffle": _good("chunked_gzip_shuffle", lambda f: f.create_dataset(
        "hessian", data=H_LARGE, chunks=(16, 16), compression="gzip", compression_opts=9, shuffle=True),
        data=H_LARGE),
    "chunked_fletcher32_edge": _good("chunked_fletcher32_edge", lambda f: f.create_dataset(
        "hessian", data=H_LARGE, chunks=(7, 13), fletcher32=True), data=H_LARGE),
    "fletcher32_inside_gzip": _good("fletcher32_inside_gzip", _fletcher32_inside_gzip, data=H_LARGE),
    "shuffle_gzip_fletcher32": _good("shuffle_gzip_fletcher32", lambda f: f.create_dataset(
        "hessian", data=H_LARGE, chunks=(16, 16), shuffle=True, compression="gzip", fletcher32=True), data=H_LARGE),
    "shuffle_only": _good("shuffle_only", lambda f: f.create_dataset(
        "hessian", data=H_LARGE, chunks=(7, 13), shuffle=True), data=H_LARGE),
    "chunked_one_row": _good("chunked_one_row", lambda f: f.create_dataset(
        "hessian", data=H_LARGE, chunks=(1, 50), compression="gzip"), data=H_LARGE),
    "missing_chunks_zero_fill": _good("missing_chunks_zero_fill", _partly_written_zero_fill,
                                      data=np.pad(H[:10, :10], ((0, 10), (0, 10)))),
    "skipped_filter_chunk": _good("skipped_filter_chunk", _skipped_filter_chunks, data=H_LARGE),
    "raw_partial_edge_chunks": _raw_partial_edge_chunks("raw_partial_edge_chunks", np.float64, False),
    # A type HDF5 converts: its chunks checked, then read by HDF5.
    "raw_partial_edge_chunks_big_endian": _raw_partial_edge_chunks("raw_partial_edge_chunks_be", ">f8", False),
    "raw_partial_edge_chunks_shuffled_f32": _raw_partial_edge_chunks("raw_partial_edge_chunks_f32", np.float32, True),
    "raw_partial_edge_chunk_holding_a_stream": _raw_partial_edge_chunks("raw_partial_edge_chunk_stream", np.float64,
                                                                        False, colliding=True),
    "optional_unknown_filter": _good("optional_unknown_filter", _optional_unknown_filter),
    "virtual_blocks": _virtual_blocks,
    "virtual_float32_sources": _virtual_float32_sources,
    "virtual_compressed_source": _virtual_compressed_source,
    "virtual_nested_fan": _virtual_nested_fan,
    "virtual_partly_written_source": _virtual_partly_written_source,
    "virtual_nested_through_a_link": _virtual_nested_through_a_link,
    "virtual_checkerboard": _virtual_checkerboard,
    "near_symmetric": _near_symmetric,
    "odd_attributes": _good("odd_attributes", _odd_attributes),
    "non_utf8_names": _non_utf8_names,
}


def setUpModule():
    global DIR
    DIR = tempfile.mkdtemp(prefix="basinvol-bad-")
    os.chmod(DIR, 0o755)  # the permission check runs the tool as another user


def tearDownModule():
    shutil.rmtree(DIR, ignore_errors=True)


def make_bad_sources():
    """Every bad input written, by name (the good ones it is paired with first)."""
    if not GOOD_SOURCES:
        AwkwardInputs.setUpClass()
    return {name: make() for name, (make, _) in BAD.items()}


class BadInputs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sources = make_bad_sources()

    def check_one_error(self, name, source, p, pieces):
        self.assertGreaterEqual(p.returncode, 0, "%s: killed by signal %d" % (name, -p.returncode))
        self.assertEqual(p.returncode, 1, "%s: %s" % (name, p.stderr))
        lines = [l for l in p.stderr.splitlines() if l.startswith("basinvol: error:")]
        self.assertEqual(len(lines), 1, "%s: %s" % (name, p.stderr))
        file = source.split(".h5")[0] + ".h5" if ".h5" in source else source
        self.assertIn(file, lines[0])
        for piece in pieces:
            self.assertIn(piece, lines[0], name)
        rows = rows_of(p)
        self.assertEqual(len(rows), 1, name)
        self.assertEqual(rows[0]["status"], "error")
        self.assertEqual(rows[0]["error"], lines[0][len("basinvol: error: "):])

    def test_each_bad_input_alone(self):
        for name, (_, pieces) in BAD.items():
            with self.subTest(name):
                source = self.sources[name]
                p = run("volume", source, "-f", "jsonl")
                self.check_one_error(name, source, p, pieces)
                self.assertLess(p.seconds, 10, name)

    def test_every_subcommand_survives_bad_inputs(self):
        for name in BAD:
            with self.subTest(name):
                for cmd in (["rank"], ["spectrum"]):
                    p = run(*cmd, self.sources[name], "-f", "json")
                    self.assertEqual(p.returncode, 1, "%s %s: %s" % (cmd, name, p.stderr))
                    json.loads(p.stdout, parse_constant=_no_constants)
                p = run("compare", self.sources[name], GOOD_SOURCES["float32"][0])
                self.assertEqual(p.returncode, 2, "compare %s: %s" % (name, p.stderr))
                self.assertIn("error", p.stderr)

    def test_unreadable_permissions(self):
        file = plain("no_permission.h5", H)
        os.chmod(file, 0)
        try:
            if os.geteuid() == 0:
                # Permission bits do not stop root: run the tool as `nobody` instead.
                if shutil.which("setpriv") is None:
                    self.skipTest("running as root without setpriv: cannot drop privileges to test permissions")
                p = run("volume", file, "-f", "jsonl", user=65534)
            else:
                p = run("volume", file, "-f", "jsonl")
            self.check_one_error("no_permission", file, p, ["Permission denied"])
        finally:
            os.chmod(file, 0o644)

    def test_a_pipe_as_a_source_is_named_as_one(self):
        # `basinvol volume <(cat run.h5)`: HDF5 cannot seek in a pipe; its own
        # message was a failed read at offset 2^64 - 1.
        with open(plain("through_a_pipe.h5", H), "rb") as fh:
            data = fh.read()
        self.assertLess(len(data), 60000)  # the pipe's buffer holds it whole
        r, w = os.pipe()
        try:
            os.write(w, data)
            os.close(w)
            source = "/dev/fd/%d" % r
            p = subprocess.run([BIN, "volume", source, "-f", "jsonl"], pass_fds=(r,), capture_output=True,
                               text=True, timeout=TIMEOUT)
        finally:
            os.close(r)
        self.check_one_error("pipe", source, p, ["cannot read file as HDF5: it is a pipe, and HDF5 reads a file it "
                                                 "can seek in; save the stream to a file first"])

    def test_out_of_memory_is_an_error_row(self):
        # An address-space limit far below what the matrix needs: the allocation
        # fails inside the tool and becomes an error row, not a kill.
        if os.environ.get("BASINVOL_SANITIZE"):
            self.skipTest("AddressSanitizer reserves terabytes of address space: RLIMIT_AS cannot apply")
        # 10000 x 10000 float64 (800 MB in memory) stored as never-written chunks: a tiny file.
        big = h5("big_for_ulimit.h5", lambda f: f.create_dataset("hessian", shape=(10000, 10000), dtype="f8",
                                                                  chunks=(500, 500)))
        small = GOOD_SOURCES["float32"][0]
        import resource

        def limit():
            resource.setrlimit(resource.RLIMIT_AS, (400 << 20, 400 << 20))
            os.environ["OPENBLAS_NUM_THREADS"] = "1"

        env_before = os.environ.get("OPENBLAS_NUM_THREADS")
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        try:
            p = subprocess.run([BIN, "volume", small, big, small, "-f", "jsonl", "--max-memory", "64G"],
                               capture_output=True, text=True, timeout=TIMEOUT, preexec_fn=limit)
        finally:
            if env_before is None:
                del os.environ["OPENBLAS_NUM_THREADS"]
            else:
                os.environ["OPENBLAS_NUM_THREADS"] = env_before
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = rows_of(p)
        self.assertEqual([r["status"] for r in rows], ["ok", "error", "ok"], p.stderr)
        self.assertIn("big_for_ulimit.h5:/hessian", rows[1]["error"])
        self.assertIn("out of memory", rows[1]["error"])


GOOD_SOURCES = {}


class AwkwardInputs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for name, make in GOOD.items():
            GOOD_SOURCES[name] = make()

    def assert_same(self, name, row, twin):
        self.assertEqual(row["status"], "ok", "%s: %s" % (name, row.get("error")))
        for key in ("n", "rank", "dim", "negative"):
            self.assertEqual(row[key], twin[key], "%s: %s" % (name, key))
        # The same values stored another way: the same answer to rounding of
        # the sums (in practice to the bit), far inside the error bars.
        self.assertAlmostEqual(row["log_volume"], twin["log_volume"], delta=1e-13 * (1 + abs(twin["log_volume"])),
                               msg=name)

    def test_each_awkward_input_equals_its_clean_twin(self):
        for name, (source, twin, *extra) in GOOD_SOURCES.items():
            with self.subTest(name):
                p = run("volume", source, twin, "-f", "jsonl", *(extra[0] if extra else []))
                self.assertEqual(p.returncode, 0, "%s: %s" % (name, p.stderr))
                self.assertEqual(p.stderr, "")
                rows = rows_of(p)
                self.assertEqual(len(rows), 2)
                self.assert_same(name, rows[0], rows[1])

    def test_a_float_type_not_of_ieee_layout_is_named_as_it_is(self):
        # bfloat16, and a float32 kept in 8 bytes: read exactly, and named so
        # (not float16 and float64), with their own eps in the cut.
        bfloat16 = float_type(2, 8, 7)
        wide32 = h5py.h5t.IEEE_F32LE.copy()
        wide32.set_size(8)
        for name, stored, label, eps in ((b"bf16", bfloat16, "bfloat16", 2.0 ** -7),
                                         (b"wide32", wide32, "float64 (8 exponent bits, 23 mantissa bits)", 2.0 ** -23)):
            with self.subTest(label):
                file = path(name.decode() + ".h5")
                with h5py.File(file, "w") as f:
                    d = h5py.h5d.create(f.id, b"hessian", stored, h5py.h5s.create_simple(H.shape))
                    d.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(H), mtype=h5py.h5t.NATIVE_DOUBLE)
                with h5py.File(file, "r") as f:
                    values = f["hessian"][...].astype(np.float64)
                self.assertGreater(np.abs(values - H).max(), 0)  # rounded to the stored type
                p = run("volume", file, _twin(name.decode(), values), "-f", "jsonl")
                self.assertEqual(p.returncode, 0, p.stderr)
                row, twin = rows_of(p)
                self.assertEqual(row["stored_type"], label)
                lam = np.linalg.eigvalsh(values)
                self.assertAlmostEqual(row["tol"], 20 * eps * np.abs(lam).max(), delta=1e-9 * row["tol"])
                self.assertEqual(row["rank"], int((np.abs(lam) > row["tol"]).sum()))
                self.assertEqual(row["negative"], int((lam < -row["tol"]).sum()))

    def test_a_trace_that_overflows_makes_no_rank_claim(self):
        # Two diagonal entries of 1e308: the trace overflows though ‖H‖_F does
        # not, and trace²/‖H‖_F² read as a rank of 1e9 ("rank likely above 130
        # by its trace"). No guess is taken from it; every method's row is
        # dense's.
        n = 520
        m = np.zeros((n, n))
        m[0, 0] = m[1, 1] = 1e308
        m[2, 2] = 1.0
        file = plain("trace_overflows.h5", m)
        dense = rows_of(run("volume", file, "--method", "dense", "-f", "jsonl"))[0]
        for method in ("auto", "cholesky", "sketch", "lanczos"):
            with self.subTest(method):
                row = rows_of(run("volume", file, "--method", method, "-f", "jsonl"))[0]
                self.assertEqual((row["status"], row["rank"], row["dim"]), ("ok", dense["rank"], dense["dim"]))
                self.assertAlmostEqual(row["log_volume"], dense["log_volume"], delta=1e-9 * abs(dense["log_volume"]))
                self.assertNotIn("by its trace", json.dumps(row.get("solver")))

    def test_an_asymmetry_just_over_the_limit_is_told_in_the_digits_that_show_it(self):
        # ‖H − Hᵀ‖_F / ‖H‖_F of 0.001001 against --max-asymmetry 0.0010005:
        # three digits would say "0.001 exceeds 0.001".
        m = np.eye(20)
        a = np.zeros((20, 20))
        a[0, 1], a[1, 0] = 1, -1
        m += a * (0.001001 * np.sqrt(20) / np.linalg.norm(a)) / 2
        asym = np.linalg.norm(m - m.T) / np.linalg.norm(m)
        self.assertGreater(asym, 0.0010005)
        p = run("volume", plain("just_asymmetric.h5", m), "--max-asymmetry", "0.0010005", "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        err = rows_of(p)[0]["error"]
        self.assertRegex(err, r"= 0\.0010010?\d* exceeds 0\.0010005 \(--max-asymmetry\)")
        self.assertIn("exceeds 0.001 (--max-asymmetry)", run("volume", plain("asymmetric.h5", m + a), "-f",
                                                            "jsonl").stdout)

    def test_a_chunk_far_larger_than_its_dataset_counts_against_the_memory_budget(self):
        # HDF5 inflates a chunk whole: a 20x20 Hessian in one 4000x4000
        # chunk (a 1-row-of-chunks file of a few MB) takes 128 MB per chunk
        # to read. Under a budget it does not fit: an error row naming the
        # chunks, before they are inflated; with room, the values as stored.
        import zlib
        n, c = H.shape[0], 4000
        def build(f):
            d = f.create_dataset("hessian", shape=(n, n), maxshape=(None, None), dtype="f8", chunks=(c, c),
                                 compression="gzip")
            z = zlib.compressobj(1)
            parts = []
            for i in range(c):
                row = np.zeros(c)
                if i < n:
                    row[:n] = H[i]
                parts.append(z.compress(row.tobytes()))
            parts.append(z.flush())
            d.id.write_direct_chunk((0, 0), b"".join(parts))
        file = h5("one_big_chunk.h5", build)
        self.assertLess(os.path.getsize(file), 1 << 22)
        p = run("volume", file, "--max-memory", "100M", "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("its chunks of 4000x4000 values are inflated whole: reading them needs 0.256 GB beside the "
                      "3.2e-06 GB of values, over the budget of 0.105 GB (--max-memory)", rows_of(p)[0]["error"])
        p = run("volume", file, _twin("one_big_chunk", H), "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assert_same("one_big_chunk", *rows_of(p))
        # Within the budget but over what `ulimit -v` leaves: the same row,
        # naming the limit (it was "out of memory (n = 20)").
        if not os.environ.get("BASINVOL_SANITIZE"):  # ASan reserves terabytes of address space
            import resource
            limit = lambda: resource.setrlimit(resource.RLIMIT_AS, (300 << 20, 300 << 20))
            p = subprocess.run([BIN, "volume", file, "--max-memory", "64G", "-f", "jsonl"], capture_output=True,
                               text=True, timeout=TIMEOUT, preexec_fn=limit)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertRegex(rows_of(p)[0]["error"], r"its chunks of 4000x4000 values are inflated whole: reading "
                             r"them needs 0\.256 GB beside the 3\.2e-06 GB of values, over what the address-space "
                             r"limit \(ulimit -v\) leaves \(0\.[0-2]\d* GB\); rechunk the dataset")
        # A chunk stored without filters is read in place: no budget for it.
        raw = h5("one_big_raw_chunk.h5", lambda f: f.create_dataset("hessian", data=H, maxshape=(None, None),
                                                                  chunks=(c, c)))
        p = run("volume", raw, "--max-memory", "100M", "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assert_same("one_big_raw_chunk", rows_of(p)[0], rows_of(run("volume", _twin("raw", H), "-f", "jsonl"))[0])

    def test_float_layouts_beyond_float64s_range_or_of_unknown_rounding(self):
        # A long double (15 exponent bits) is computed in float64: a finite
        # value past float64's range would read as inf, and a Hessian whose
        # values all lie under its normal range as zeros (dim n, ranked
        # first): each is refused with the value as stored. Values in range
        # are read, and a few that underflow beside larger ones are noise.
        # A layout whose subnormal step is none of the known types' (TF32:
        # 8 exponent bits, 10 mantissa bits) would get a floor decades off.
        ld = np.longdouble
        tiny_diag = np.array([1.0, 2.0, 3.0]).astype(ld) * ld("1e-400")
        def build(f):
            f["tiny"] = np.diag(tiny_diag)
            f["huge"] = np.diag([1.0, 2.0, 3.0]).astype(ld) * ld("1e400")
            f["zero"] = np.zeros((3, 3), ld)
            f["in_range"] = H.astype(ld)
            m = np.diag([1.0, 2.0, 3.0]).astype(ld)
            m[2, 2] = ld("1e-400")
            f["one_underflows"] = m
            d = f.create_dataset("diag", data=tiny_diag)
            d.attrs["structure"] = "diagonal"
            g = f.create_group("kron")
            g.attrs["structure"] = "kron"
            g["A"] = np.eye(2).astype(ld)
            g["B"] = np.diag([1.0, 2.0]).astype(ld) * ld("1e400")
            h5py.h5d.create(f.id, b"tf32", float_type(3, 8, 10), h5py.h5s.create_simple(H.shape)).write(
                h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(H))
        file = h5("long_double.h5", build)
        p = run("volume", file, "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = {r["source"].split(":")[-1]: r for r in rows_of(p)}
        ranged = "(float128 (15 exponent bits, 64 mantissa bits) holds it"
        for name, words in (("/tiny", "its largest value, 3e-400 at [2, 2], lies under float64's normal range"),
                            ("/diag", "its largest value, 3e-400 at [2], lies under float64's normal range"),
                            ("/huge", "value 1e+400 at [0, 0] is beyond float64's range " + ranged),
                            ("/kron", "/kron/B: value 1e+400 at [0, 0] is beyond float64's range"),
                            ("/tf32", "dataset type is float24 (8 exponent bits, 10 mantissa bits) with exponent "
                                      "bias 127, a float layout whose rounding basinvol does not count")):
            with self.subTest(name):
                self.assertEqual(rows[name]["status"], "error")
                self.assertIn(words, rows[name]["error"])
        self.assertEqual((rows["/zero"]["status"], rows["/zero"]["dim"]), ("ok", 3))
        self.assertEqual((rows["/one_underflows"]["rank"], rows["/one_underflows"]["dim"]), (2, 1))
        twin = run("volume", _twin("in_range", H), "-f", "jsonl")
        self.assert_same("in_range", rows["/in_range"], rows_of(twin)[0])

    def test_chunks_never_written_are_the_fill_value_and_the_row_says_so(self):
        # A writer that died partway (or one that wrote only some blocks)
        # leaves chunks unallocated: HDF5 reads them as the fill value, which
        # may be zeros that add flat directions. The row keeps the numbers of
        # the matrix as read (its twin holds the zeros) and warns
        # unwritten_chunks; a dataset with every chunk written does not.
        def build(f):
            d = f.create_dataset("partial", shape=(20, 20), dtype="f8", chunks=(5, 5), compression="gzip")
            d[:10, :10] = H[:10, :10]  # 12 of the 16 chunks never written
            f.create_dataset("full", data=H, chunks=(5, 5), compression="gzip")
            d = f.create_dataset("contiguous", shape=(20, 20), dtype="f8")
            d[:10, :10] = H[:10, :10]  # allocated whole at the first write: nothing to tell
            d = f.create_dataset("one_sided", shape=(20, 20), dtype="f8", chunks=(10, 10))
            d[:10, 10:] = 1.0  # above the diagonal only: the unwritten chunks make it asymmetric
        file = h5("unwritten_chunks.h5", build)
        # Refused as not symmetric, the row names the likelier cause.
        p = run("volume", file + ":/one_sided", "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("matrix is not symmetric: ‖H − Hᵀ‖_F / ‖H‖_F = 1.41 exceeds 0.001 (--max-asymmetry); 3 of "
                      "its chunks were never written (read as the fill value): a writer that did not finish?",
                      rows_of(p)[0]["error"])
        read = np.zeros_like(H)
        read[:10, :10] = H[:10, :10]
        p = run("volume", file + ":/partial", file + ":/full", file + ":/contiguous", _twin("unwritten", read),
                "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        partial, full, contiguous, twin = rows_of(p)
        self.assert_same("partial", partial, twin)
        self.assertEqual(partial["dim"], 10 + int((np.abs(np.linalg.eigvalsh(H[:10, :10])) <= partial["tol"]).sum()))
        self.assertIn("unwritten_chunks", partial["warnings"])
        self.assertNotIn("unwritten_chunks", full["warnings"])
        self.assertNotIn("unwritten_chunks", contiguous["warnings"])
        self.assertNotIn("unwritten_chunks", twin["warnings"])
        # rank carries it, and a row read back from saved results keeps it
        saved = path("unwritten_rows.jsonl")
        with open(saved, "w") as out:
            out.write(p.stdout)
        r = run("rank", "--from-results", saved, "-f", "jsonl")
        self.assertEqual(r.returncode, 0, r.stderr)
        ranked = {row["dataset"]: row for row in rows_of(r)}
        self.assertIn("unwritten_chunks", ranked["/partial"]["warnings"])
        self.assertNotIn("unwritten_chunks", ranked["/full"]["warnings"])

    def test_a_matrix_of_tiny_chunks_is_read_in_bounded_memory(self):
        # HDF5 keeps a few KB for each chunk one read touches: 250,000 chunks
        # of 4x4 (n = 2000, a 32 MB matrix) took 1.1 GB in one read, and a
        # 16000 x 16000 block of 8x8 chunks was killed for memory. Read in
        # bands of chunk rows: the twin's numbers, dense and a factor's G,
        # well under that.
        rng = np.random.default_rng(9)
        a = rng.standard_normal((2000, 30))
        def build(f):
            f.create_dataset("h", data=a @ a.T, chunks=(4, 4))
            g = f.create_group("factor")
            g.attrs["structure"] = "factor"
            g.create_dataset("G", data=a.T.copy(), chunks=(1, 4))
        file = h5("tiny_chunks.h5", build)
        twin = _twin("tiny_chunks", a @ a.T)
        for source in (file + ":/h", file + ":/factor"):
            # GNU time's peak RSS of basinvol alone (a child forked from this
            # process would count this process's pages until its exec).
            p = subprocess.run(["/usr/bin/time", "-f", "peak %M KB", BIN, "volume", source, twin, "-f", "jsonl"],
                               capture_output=True, text=True, timeout=TIMEOUT)
            self.assertEqual(p.returncode, 0, p.stderr)
            peak = int(p.stderr.splitlines()[-1].split()[1])
            if not os.environ.get("BASINVOL_SANITIZE"):  # AddressSanitizer's shadow and quarantine add their own
                self.assertLess(peak, 600 * 1024, source)  # 1.1 GB before
            row, clean = rows_of(p)
            self.assert_same(source, row, clean)

    def test_many_compressed_chunks_are_read_in_time_linear_in_their_count(self):
        # HDF5 1.10 finds a chunk's address by walking every chunk of the
        # dataset: mapping each of 90,000 gzip chunks of 1x1 from the page
        # cache cost a minute for a 300 x 300 matrix (160,000: three). Past
        # a thousand chunks they are read through HDF5, in a fraction of a second.
        rng = np.random.default_rng(23)
        a = rng.standard_normal((400, 400))
        file = h5("gzip_1x1.h5", lambda f: f.create_dataset("h", data=a + a.T, chunks=(1, 1), compression="gzip"))
        t0 = time.monotonic()
        p = subprocess.run([BIN, "volume", file, _twin("gzip_1x1", a + a.T), "-f", "jsonl"], capture_output=True,
                           text=True, timeout=120)
        self.assertLess(time.monotonic() - t0, 60)  # a pathology guard, not a speed claim: 190 s before
        self.assertEqual(p.returncode, 0, p.stderr)
        row, clean = rows_of(p)
        self.assert_same("gzip_1x1", row, clean)

    def test_chunks_each_claiming_twice_their_size_are_read_in_bounded_memory(self):
        # An index may claim up to 2x + 4096 bytes for each chunk: 40,000
        # chunks of 2x2 float32 claiming 4128 bytes each are 165 MB raw,
        # which the reader took in one batch (a batch counted 64 MB of
        # plain values). Batches are cut at 64 MB of stored bytes too.
        n = 400
        def build(f):
            d = f.create_dataset("hessian", shape=(n, n), dtype="<f4", chunks=(2, 2), compression="gzip")
            for i in range(0, n, 2):
                for j in range(0, n, 2):
                    d.id.write_direct_chunk((i, j), bytes(2 * 16 + 4096))
        file = h5("bloated_chunks.h5", build)
        p = subprocess.run(["/usr/bin/time", "-f", "peak %M KB", BIN, "volume", file, "-f", "jsonl"],
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(file + ":/hessian: cannot decompress chunk at [0, 0]: data error (corrupt data)", p.stderr)
        peak = int(p.stderr.splitlines()[-1].split()[1])
        if not os.environ.get("BASINVOL_SANITIZE"):  # AddressSanitizer's shadow and quarantine add their own
            self.assertLess(peak, 150 * 1024)  # 197 MB before
        os.remove(file)

    @unittest.skipIf(os.environ.get("BASINVOL_SANITIZE"), "AddressSanitizer's shadow needs an uncapped address space")
    def test_a_listing_that_asks_for_gigabytes_is_capped_and_one_error_row(self):
        # A 6 KB file of the fuzz runs whose group walk has HDF5 1.10
        # allocate and clear 23 GB (then die on a signal): the listing
        # child's address space is capped (half the machine's memory,
        # at most 4 GB), so the allocation fails and the file is one row.
        file = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "testdata",
                            "bad.listing_asks_gigabytes.h5")
        t0 = time.monotonic()
        p = subprocess.run(["/usr/bin/time", "-f", "peak %M KB", BIN, "volume", file, "-f", "jsonl"],
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 1, p.stderr)
        (row,) = [json.loads(line) for line in p.stdout.splitlines()]
        self.assertEqual(row["status"], "error")
        self.assertIn("bad.listing_asks_gigabytes.h5", row["error"])
        peak = int(p.stderr.splitlines()[-1].split()[1])  # the largest of the tool and its children
        self.assertLess(peak, 5 * 1024 * 1024)  # 23 GB before
        self.assertLess(time.monotonic() - t0, 60)

    def test_a_lossy_scale_offset_step_is_part_of_the_noise_floor(self):
        # scaleoffset=6 keeps each float to 1e-6: a rank-20 Hessian's 10 flat
        # directions get rounding values of both signs up to ~1e-6, which
        # the floor (n·step/2) must take for noise, as its exact twin's.
        rng = np.random.default_rng(4)
        a = rng.standard_normal((30, 20))
        exact = a @ a.T / 30
        file = h5("scaleoffset.h5", lambda f: f.create_dataset("hessian", data=exact, chunks=(30, 30),
                                                               scaleoffset=6))
        with h5py.File(file) as f:
            stored = f["hessian"][...]
        self.assertGreater(np.abs(stored - exact).max(), 1e-7)
        self.assertGreater(np.abs(np.linalg.eigvalsh((stored + stored.T) / 2))[:10].max(), 1e-7)
        p = run("volume", file, _twin("scaleoffset", exact), "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        row, twin = rows_of(p)
        for key in ("rank", "dim", "negative"):
            self.assertEqual(row[key], twin[key], key)
        self.assertAlmostEqual(row["noise_floor"], 30 * 1e-6 / 2, delta=1e-12)
        self.assertAlmostEqual(row["log_volume"], twin["log_volume"], delta=1e-4)

    def test_an_unusable_loss_threshold_is_not_refused_when_T_replaces_it(self):
        # docs/method.md: -T replaces the attribute, so it is not read.
        (clean,) = rows_of(run("volume", plain("threshold_clean.h5", H), "-T", "3", "-f", "jsonl"))
        for key in ("threshold_negative", "threshold_nan", "threshold_text", "threshold_array"):
            make, _ = BAD[key]
            p = run("volume", make(), "-T", "3", "-f", "jsonl")
            self.assertEqual(p.returncode, 0, (key, p.stderr))
            (row,) = rows_of(p)
            self.assertEqual(row["threshold"], 3.0, key)
            self.assertEqual(row["log_volume"], clean["log_volume"], key)

    def test_odd_attributes_are_kept_or_ignored_never_fatal(self):
        p = run("volume", GOOD_SOURCES["odd_attributes"][0], "-f", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        row = json.loads(p.stdout, parse_constant=_no_constants)["rows"][0]
        self.assertIsNone(row["step"])  # a string step is not a step
        self.assertIsNone(row["loss"])  # neither is an array
        for fmt in ("table", "tsv", "csv", "jsonl"):
            self.assertEqual(run("volume", GOOD_SOURCES["odd_attributes"][0], "-f", fmt).returncode, 0, fmt)

    def test_an_integer_attribute_float64_cannot_hold_is_left_out_not_rounded(self):
        # A step of 2^53 + 1 came out as 9007199254740992, another step.
        f = path("big_step.h5")
        with h5py.File(f, "w") as h:
            for name, step in (("past", np.int64(2**53 + 1)), ("unsigned", np.uint64(2**64 - 1)),
                               ("below", np.int64(-(2**53) - 5)), ("last_exact", np.int64(2**53 - 1))):
                h.create_dataset(name, data=H).attrs["step"] = step
            h.create_dataset("error", data=H).attrs["hessian_error"] = np.int64(2**60 + 1)
        p = run("volume", f, "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = {r["dataset"]: r for r in (json.loads(line) for line in p.stdout.splitlines())}
        for name in ("past", "unsigned", "below"):
            self.assertEqual((rows["/" + name]["status"], rows["/" + name]["step"]), ("ok", None), name)
        self.assertEqual(rows["/last_exact"]["step"], 2**53 - 1)
        self.assertIn("hessian_error must be one number, got an integer at or past 2^53", rows["/error"]["error"])

    def test_non_utf8_names_print_as_valid_json(self):
        p = run("volume", GOOD_SOURCES["non_utf8_names"][0], "-f", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        row = json.loads(p.stdout)["rows"][0]
        self.assertEqual(row["status"], "ok")


class Links(unittest.TestCase):
    """Groups walked through links: every Hessian they reach is one row."""

    def test_externally_linked_datasets_at_one_address_are_each_a_row(self):
        # Files written alike put their first dataset at one address: the walk
        # must tell them apart by file, not take them for one object.
        spectra = [with_spectrum(np.r_[np.geomspace(3, 0.3, k), np.zeros(10 - k)], k) for k in range(5, 10)]
        for k, m in enumerate(spectra):
            plain("linked_step_%d.h5" % k, m)

        def build(f):
            f["own"] = spectra[0]
            for k in range(len(spectra)):
                f["checkpoints/step_%d" % k] = h5py.ExternalLink("linked_step_%d.h5" % k, "/hessian")
        master = h5("linked_master.h5", build)
        with h5py.File(master) as f:
            self.assertEqual(len({f["checkpoints/step_%d" % k].id.get_offset() for k in range(5)}), 1)
        with h5py.File(master, "a") as f:
            f["checkpoints/step_4_again"] = h5py.ExternalLink("linked_step_4.h5", "/hessian")
        p = run("volume", master, "-f", "jsonl")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = rows_of(p)
        # Two links to one dataset are one Hessian, as two hard links are.
        self.assertEqual([r["dataset"] for r in rows],
                         ["/checkpoints/step_%d" % k for k in range(5)] + ["/own"])
        self.assertEqual([r["rank"] for r in rows], [5, 6, 7, 8, 9, 5])

    def test_a_dataset_reached_by_a_link_too_is_listed_under_its_own_name(self):
        # `latest` sorts before `step_0300`: the row is still step_0300's
        # (scripts join rows on checkpoint names). A link to a dataset
        # outside the walked group is that dataset's only name there.
        spectra = {s: with_spectrum(np.r_[np.geomspace(3, 0.3, s), np.zeros(3)], s) for s in (1, 2, 3)}

        def build(f):
            for s, m in spectra.items():
                f["ck/step_%04d" % (100 * s)] = m
            f["ck/latest"] = h5py.SoftLink("/ck/step_0300")
            f["ck/a_copy"] = h5py.ExternalLink("linked_twice.h5", "/ck/step_0200")  # this very file
            f["elsewhere"] = spectra[1]
            f["ck/z_other"] = h5py.SoftLink("/elsewhere")
        file = h5("linked_twice.h5", build)
        for source, want in ((file, [("/ck/step_0100", 1), ("/ck/step_0200", 2), ("/ck/step_0300", 3),
                                     ("/elsewhere", 1)]),
                             (file + ":/ck", [("/ck/step_0100", 1), ("/ck/step_0200", 2), ("/ck/step_0300", 3),
                                              ("/ck/z_other", 1)])):
            p = run("volume", source, "-f", "jsonl")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual([(r["dataset"], r["rank"]) for r in rows_of(p)], want)

    def test_a_dangling_link_beside_good_datasets_is_an_error_row(self):
        def build(f):
            f["checkpoints/step_0"] = H
            f["checkpoints/step_1"] = h5py.ExternalLink("not_copied_yet.h5", "/hessian")
        file = h5("one_link_missing.h5", build)
        p = run("volume", file, "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = rows_of(p)
        self.assertEqual([(r["dataset"], r["status"]) for r in rows],
                         [("/checkpoints/step_0", "ok"), ("/checkpoints/step_1", "error")])
        self.assertIn("external link to not_copied_yet.h5:/hessian cannot be followed", rows[1]["error"])

    def test_soft_links_that_dangle_loop_or_chain_past_hdf5s_limit_say_which(self):
        # HDF5 follows 16 soft links at most: a 17th is neither dangling nor
        # missing. Each case names its rule, walked or given as a path.
        def build(f):
            f["l0"] = H
            for i in range(1, 18):
                f["l%d" % i] = h5py.SoftLink("/l%d" % (i - 1))
            f["a"] = h5py.SoftLink("/b")
            f["b"] = h5py.SoftLink("/a")
            f["g/to_nothing"] = h5py.SoftLink("missing")
        file = h5("soft_links.h5", build)
        loop = "soft links that loop, or a chain of more than 16 links, as many as HDF5 follows: link to the " \
               "object itself (HDF5: too many links)"
        want = {"/l17": loop, "/a": loop, "/g/to_nothing": "link points to nothing (dangling link to missing)"}
        p = run("volume", file, "-f", "jsonl")
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = {r["dataset"]: r for r in rows_of(p)}
        self.assertEqual(rows["/l0"]["status"], "ok")  # l1..l16 lead to it: the same Hessian, one row
        self.assertEqual(rows_of(run("volume", file + ":/l16", "-f", "jsonl"))[0]["status"], "ok")
        for name, words in want.items():
            with self.subTest(name):
                self.assertIn(words, rows[name]["error"])
                q = run("volume", file + ":" + name, "-f", "jsonl")
                self.assertEqual(q.returncode, 1, q.stderr)
                self.assertIn(words, rows_of(q)[0]["error"])

    def test_output_never_replaces_a_file_read_through_a_link_or_a_virtual_dataset(self):
        target = plain("link_target_kept.h5", H)
        linking = h5("links_to_target.h5", lambda f: f.__setitem__(
            "hessian", h5py.ExternalLink(os.path.basename(target), "/hessian")))
        virtual, _ = _virtual_blocks()
        for output, source in ((target, linking), (path("vds_part_top.h5"), virtual)):
            with self.subTest(output=output):
                before = open(output, "rb").read()
                p = run("volume", source, "-o", output)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn("is an input of this run", p.stderr)
                self.assertEqual(open(output, "rb").read(), before)


class Mixed(unittest.TestCase):
    """Every bad and every good source in one command."""

    @classmethod
    def setUpClass(cls):
        cls.bad = make_bad_sources()

    def test_one_command_reports_every_source(self):
        sources = []
        for name in sorted(set(GOOD_SOURCES) | set(self.bad)):
            if name in GOOD_SOURCES:
                sources += [GOOD_SOURCES[name][0], GOOD_SOURCES[name][1]]
            if name in self.bad:
                sources.append(self.bad[name])
        p = run("volume", *sources, "-f", "jsonl")
        self.assertGreaterEqual(p.returncode, 0, "killed by signal %d" % -p.returncode)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertLess(p.seconds, 20)
        rows = rows_of(p)
        errors = [l for l in p.stderr.splitlines() if l.startswith("basinvol: error:")]
        self.assertEqual(len(errors), len(self.bad), p.stderr)
        self.assertEqual(len(rows), len(sources))
        for source, row in zip(sources, rows):
            bad = source in self.bad.values()
            self.assertEqual(row["status"], "error" if bad else "ok", "%s: %s" % (source, row.get("error")))
        by_source = dict(zip(sources, rows))
        for name, (good, twin, *extra) in GOOD_SOURCES.items():
            if extra:
                continue  # compared under its own options above
            AwkwardInputs.assert_same(self, name, by_source[good], by_source[twin])
        for name, source in self.bad.items():
            file = source.split(".h5")[0] + ".h5"
            self.assertEqual(sum(file in e and BAD[name][1][0] in e for e in errors), 1, name)

    def test_rank_puts_every_bad_source_after_the_ranked_rows(self):
        good = [s for pair in GOOD_SOURCES.values() for s in pair[:2]]
        p = run("rank", *good, *self.bad.values(), "-f", "json")
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = json.loads(p.stdout, parse_constant=_no_constants)["rows"]
        status = [r["status"] for r in rows]
        self.assertEqual(status, ["ok"] * len(good) + ["error"] * len(self.bad))


if __name__ == "__main__":
    clitest.main()
