#!/usr/bin/python3
"""Writes the seed corpus of the fuzz targets into fuzz/corpus/. Deterministic.

fuzz_reader: small HDF5 files covering the layouts and types the reader meets
(contiguous, chunked, gzip, shuffle, Fletcher32, links, groups, attributes,
old and new file-format versions), plus the small test-data files.
fuzz_source: SOURCE strings.

Usage: /usr/bin/python3 fuzz/make_corpus.py
Needs Debian's python3-numpy and python3-h5py."""
import os
import shutil

import h5py
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
reader = os.path.join(here, "corpus", "fuzz_reader")
source = os.path.join(here, "corpus", "fuzz_source")
os.makedirs(reader, exist_ok=True)
os.makedirs(source, exist_ok=True)

h = np.array([[2.0, 1.0, 0.0, 0.0], [1.0, 2.0, 0.0, 0.0], [0.0, 0.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]])
h8 = np.kron(np.eye(2), h)

for libver in ("earliest", "latest"):
    def f(name):
        return h5py.File(os.path.join(reader, "%s.%s.h5" % (name, libver)), "w", libver=libver)

    with f("contiguous") as g:
        d = g.create_dataset("hessian", data=h)
        d.attrs["step"] = 3
        d.attrs["loss"] = 0.25
        d.attrs["loss_threshold"] = 0.5
        d.attrs["name"] = "first"
    with f("chunked_filters") as g:
        g.create_dataset("gzip", data=h8, chunks=(4, 4), compression="gzip", shuffle=True)
        g.create_dataset("fletcher", data=h8.astype(np.float32), chunks=(3, 5), fletcher32=True)
    with f("groups_links") as g:
        g.create_dataset("run/a/hessian", data=h, dtype=">f8")
        g["soft"] = h5py.SoftLink("/run/a/hessian")
        g["dangling"] = h5py.SoftLink("/nowhere")
        g["external"] = h5py.ExternalLink("other.h5", "/x")
        g.create_dataset("run/losses", data=np.arange(3.0))
    with f("types") as g:
        g.create_dataset("int64", data=np.array([[2, 1], [1, 2]], dtype=np.int64))
        g.create_dataset("float16", data=h.astype(np.float16))
        g.create_dataset("nan", data=np.array([[1.0, np.nan], [np.nan, 1.0]]))
        g.create_dataset("strings", data=np.array([[b"a", b"b"], [b"c", b"d"]]))
        g.create_dataset("compound", data=np.zeros((2, 2), dtype=[("a", "<f8"), ("b", "<i4")]))
        g.create_dataset("huge", shape=(300000, 300000), dtype="f8", chunks=(1000, 1000))
    with f("attributes") as g:
        d = g.create_dataset("hessian", data=h)
        d.attrs["step"] = "text"
        d.attrs["loss"] = np.arange(3.0)
        d.attrs["name"] = np.bytes_(b"\xff\xfe")
        d.attrs["blob"] = np.void(b"\x00\x01")

for name in sorted(os.listdir(os.path.join(here, "..", "testdata"))):
    full = os.path.join(here, "..", "testdata", name)
    if name.endswith(".h5") and os.path.getsize(full) < 7000:
        shutil.copy(full, os.path.join(reader, "testdata." + name))

for i, text in enumerate(["run.h5", "run.h5:/checkpoints/step_0100", "a:b:c", ":", "::/x", "run.h5:",
                          "/tmp", "/tmp:/x", "dir/with:colon.h5:/a//b/", "\xff\x00:/"]):
    with open(os.path.join(source, "seed_%02d" % i), "wb") as out:
        out.write(text.encode("utf-8", "surrogateescape"))
print("wrote the fuzz seed corpus into", os.path.join(here, "corpus"))
