"""`import basinvol` against the command line: the same rows from the same
matrices, for every method, input kind and error; results read back; plots
whose content is checked.

    PYTHONPATH=build/python BASINVOL=build/basinvol /usr/bin/python3 -m pytest tests/python/test_package.py

Needs Debian's python3-pytest, python3-numpy, python3-h5py, python3-torch,
python3-matplotlib and python3-pandas (a missing one is a failure)."""
import json
import os
import re
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
try:
    import torch
except ImportError:  # python3-torch is not installed: its tests are skipped, the rest run
    torch = None

import basinvol
import basinvol.export as bx
import basinvol.plot as bp

BASINVOL = os.environ.get("BASINVOL", "basinvol")

# Fields that name where a row came from or how long it took: everything else
# must be equal between the package and the command line.
WHERE = {"source", "file", "dataset", "seconds"}


def cli(*args, status=0):
    p = subprocess.run([BASINVOL, *args], capture_output=True, text=True)
    assert p.returncode == status, p.stderr
    return p.stdout


def cli_rows(*args, status=0):
    return [json.loads(line) for line in cli(*args, "--format", "jsonl", status=status).splitlines()]


def with_spectrum(values, seed=0, dtype=np.float64):
    """Q diag(values) Qᵀ with a random orthogonal Q."""
    rng = np.random.default_rng(seed)
    n = len(values)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return ((Q * np.asarray(values, dtype=float)) @ Q.T).astype(dtype)


# Error bounds computed from residuals (‖H − VΘVᵀ‖, Ritz pairing errors):
# cancellation makes them differ in the leading digits between two processes
# whose BLAS rounds differently (thread split, buffer alignment), while every
# answer they bound agrees to 1e-9. They must agree to within a factor of 2.
BOUNDS = {"log_volume_error", "residual_bound"}


def same_value(x, y, key):
    if isinstance(x, dict) and isinstance(y, dict):
        assert set(x) == set(y), key
        for k in x:
            if k not in ("seconds", "note"):  # solver timing; the note quotes bounds to 6 digits
                same_value(x[k], y[k], key + "." + k)
    elif isinstance(x, list) and isinstance(y, list):
        assert len(x) == len(y), key
        for i, (u, v) in enumerate(zip(x, y)):
            same_value(u, v, f"{key}[{i}]")
    elif isinstance(x, float) and isinstance(y, float) and key in BOUNDS:
        assert y / 2 <= x <= 2 * y, (key, x, y)
    elif isinstance(x, float) and isinstance(y, float):
        assert x == pytest.approx(y, rel=1e-9, abs=1e-300), key
    else:
        assert x == y, key


def same_row(py, ref, skip=()):
    """Every field the same: counts, flags, names and warnings exactly, numbers
    to 1e-9 relative (the package and the command line run the same code on
    the same bytes), error bounds to a factor of 2."""
    a, b = py.to_dict() if hasattr(py, "to_dict") else py, ref
    assert set(a) == set(b), set(a) ^ set(b)
    for k in a:
        if k not in WHERE and k not in skip:
            same_value(a[k], b[k], k)


def written(tmp, H, dtype="float64"):
    """H written as FILE:/hessian by the exporter, and the error it stated
    (its measured asymmetry, the hessian_error attribute) for analyze() to be
    given the same input."""
    import h5py
    f = os.path.join(tmp, "h.h5")
    bx.write_hessian(f, H, dtype=dtype)
    with h5py.File(f, "r") as h:
        stated = h["hessian"].attrs.get("hessian_error")
    return f, (None if stated is None else float(stated))


@pytest.fixture
def tmp(tmp_path):
    return str(tmp_path)


LOW_RANK = [50.0 * 0.8 ** i for i in range(25)] + [0.0] * 275   # partial methods apply
FULL = list(np.logspace(-2, 2, 60)) + [-0.3]                      # a saddle, no flat directions
FLAT = [3.0, 2.0, 1.0, 1e-14, -2e-14] + [0.0] * 40                # exact flat directions


@pytest.mark.parametrize("method", ["auto", "dense", "cholesky", "sketch", "lanczos"])
@pytest.mark.parametrize("spectrum", ["LOW_RANK", "FULL", "FLAT"])
def test_analyze_equals_cli_for_every_method(tmp, method, spectrum):
    H = with_spectrum(globals()[spectrum], seed=len(spectrum))
    f, stated = written(tmp, H)
    (ref,) = cli_rows("volume", f, "--method", method)
    r = basinvol.analyze(H, method=method, hessian_error=stated)
    same_row(r, ref)
    assert r.source == "memory:/"


@pytest.mark.parametrize("options, flags", [
    (dict(threshold=0.25), ["-T", "0.25"]),
    (dict(cut="gap", min_gap=0.5), ["--cut", "gap", "--min-gap", "0.5"]),
    (dict(rtol=2e-3), ["--rtol", "2e-3"]),
    (dict(negatives="drop", regularized=1e-2), ["--negatives", "drop", "--regularized", "1e-2"]),
    (dict(hessian_error=1e-6), ["--hessian-error", "1e-6"]),
])
def test_options_mean_what_the_flags_mean(tmp, options, flags):
    H = with_spectrum(FULL, seed=3)
    f, stated = written(tmp, H)
    (ref,) = cli_rows("volume", f, *flags)
    options.setdefault("hessian_error", stated)
    same_row(basinvol.analyze(H, **options), ref)


def test_float32_stays_float32(tmp):
    H = with_spectrum(LOW_RANK, seed=5, dtype=np.float32)
    f, stated = written(tmp, H, "float32")
    (ref,) = cli_rows("volume", f)
    r = basinvol.analyze(H, hessian_error=stated)
    same_row(r, ref)
    assert r.stored_type == "float32"


def test_a_float64_part_beside_a_float32_layer_says_what_its_own_floor_resolves(tmp):
    # A float32 layer beside float64 diagonal values (a prior, a bias): the
    # whole is cut at float32's floor, which counts the diagonal's 1e-5,
    # 1e-9 and 1e-12 flat; the row says so, as the command line's does, and
    # the diagonal alone keeps them.
    rng = np.random.default_rng(8)
    x = rng.standard_normal((20, 60)).astype(np.float32)
    layer = x.T @ x * np.float32(50)
    d = np.array([2.0, 1.0, 1e-5, 1e-9, 1e-12, 0.0])
    r = basinvol.analyze({"a": layer, "b": basinvol.Diagonal(d)})
    assert "finer_part_flat" in r.warnings
    assert [b["resolved_flat"] for b in r.blocks] == [0, 3]
    assert basinvol.analyze(basinvol.Diagonal(d)).rank == r.blocks[1]["rank"] + 3
    f = os.path.join(tmp, "finer.h5")
    bx.write_structure(f, "h", {"a": layer, "b": basinvol.Diagonal(d)}, dtype=None)
    (ref,) = cli_rows("volume", f)
    assert ref["warnings"] == r.warnings and ref["blocks"] == r.blocks
    narrow = basinvol.analyze({"a": layer, "b": basinvol.Diagonal(d.astype(np.float32))})
    assert "finer_part_flat" not in narrow.warnings


def test_float32_data_widened_is_float32_data_unless_the_stored_type_is_trusted(tmp):
    # float32 values given as float64 (H.double() of a float32 tensor): the
    # float32 answer, with the warning; trust_stored_type=True is the
    # command line's --trust-stored-type.
    H32 = with_spectrum(LOW_RANK, seed=5, dtype=np.float32)
    H32 = (H32 + H32.T) / 2
    narrow = basinvol.analyze(H32)
    wide = basinvol.analyze(H32.astype(np.float64))
    assert "float32_values" in wide.warnings and "float32_values" not in narrow.warnings
    assert (wide.rank, wide.dim, wide.negative, wide.noise_floor) == (narrow.rank, narrow.dim, narrow.negative,
                                                                    narrow.noise_floor)
    f, _ = written(tmp, H32.astype(np.float64))
    (ref,) = cli_rows("volume", f, "--trust-stored-type")
    trusted = basinvol.analyze(H32.astype(np.float64), trust_stored_type=True, hessian_error=ref["hessian_error"])
    assert "float32_values" not in trusted.warnings
    assert trusted.noise_floor < 1e-6 * narrow.noise_floor
    same_row(trusted, ref)
    with pytest.raises(TypeError, match="trust_stored_type must be True or False"):
        basinvol.analyze(H32, trust_stored_type="yes")


needs_torch = pytest.mark.skipif(torch is None, reason="python3-torch is not installed")


@needs_torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_tensors_equal_numpy(dtype):
    H = torch.tensor(with_spectrum(FLAT, seed=7), dtype=getattr(torch, dtype))
    ref = basinvol.analyze(H.numpy())
    same_row(basinvol.analyze(H), ref.to_dict())
    same_row(basinvol.analyze(H.clone().requires_grad_(True)), ref.to_dict())  # detached, not refused
    same_row(basinvol.analyze(H.t()), ref.to_dict(), skip={"asymmetry"})  # a transposed view
    # A view carrying torch's lazy negation (the imaginary part of a
    # conjugate): values like any, its Diagonal too (numpy() refused it).
    z = torch.complex(torch.zeros_like(H), -H)
    lazy = z.conj().imag
    assert lazy.is_neg()
    same_row(basinvol.analyze(lazy), ref.to_dict())
    d = torch.tensor([3.0, 2.0, 0.0], dtype=H.dtype)
    lazy_d = torch.complex(torch.zeros_like(d), -d).conj().imag
    assert basinvol.analyze(basinvol.Diagonal(lazy_d)).log_volume == basinvol.analyze(basinvol.Diagonal(d)).log_volume


@needs_torch
def test_a_structure_of_bfloat16_tensors_names_its_part():
    for make, what in ((lambda t: basinvol.Diagonal(t), "Diagonal values"), (lambda t: basinvol.Factor(t), "Factor G"),
                       (lambda t: basinvol.Kron(t, torch.eye(2)), "Kron A")):
        with pytest.raises(TypeError, match=what + ": torch.bfloat16 values have no numpy type"):
            make(torch.ones(2, 2).to(torch.bfloat16))


def test_non_contiguous_views():
    """Views with strides: the Hessian they show, not the buffer behind them."""
    rng = np.random.default_rng(11)
    big = np.zeros((120, 120))
    H = with_spectrum(FLAT, seed=13)
    n = H.shape[0]
    big[:2 * n:2, 1:2 * n:2] = H  # every other row and column
    view = big[:2 * n:2, 1:2 * n:2]
    assert not view.flags.c_contiguous and not view.flags.f_contiguous
    ref = basinvol.analyze(np.ascontiguousarray(view)).to_dict()
    same_row(basinvol.analyze(view), ref)
    same_row(basinvol.analyze(np.asfortranarray(H)), ref, skip={"asymmetry"})
    # A symmetric permutation (reversed order) has the same spectrum.
    rev = basinvol.analyze(H[::-1, ::-1])
    assert (rev.n, rev.rank, rev.dim, rev.negative) == (ref["n"], ref["rank"], ref["dim"], ref["negative"])
    assert rev.log_volume == pytest.approx(ref["log_volume"], rel=1e-9)
    del rng


def test_reversed_and_broadcast_views_are_read_as_they_are_after_the_budget():
    H = with_spectrum(FLAT, seed=29)
    ref = basinvol.analyze(np.ascontiguousarray(H[::-1, ::-1])).to_dict()
    same_row(basinvol.analyze(H[::-1, ::-1]), ref)
    same_row(basinvol.analyze(np.ascontiguousarray(H[::-1])[::-1]), ref)
    ones = basinvol.analyze(np.broadcast_to(2.0, (50, 50)))  # 2·(all-ones): one value 100, the rest 0
    assert (ones.rank, ones.dim) == (1, 49)
    assert ones.log_volume == pytest.approx(basinvol.analyze(np.full((50, 50), 2.0)).log_volume, rel=1e-12)
    # Over the budget: refused before any copy (a 10^6 x 10^6 view holds 8 bytes).
    with pytest.raises(basinvol.InputError, match="over the memory budget"):
        basinvol.analyze(np.broadcast_to(1.0, (10 ** 6, 10 ** 6)))
    with pytest.raises(basinvol.InputError, match="over the memory budget"):
        basinvol.analyze(np.zeros((400, 400))[::-1], max_memory="100K")
    # Big-endian, or strides between elements, take a native copy: after the
    # budget, which counts it (a 60000² view of big-endian values was copied
    # whole, 28.8 GB, before it was refused).
    with pytest.raises(basinvol.InputError, match="over the memory budget"):
        basinvol.analyze(np.broadcast_to(np.array(1.0, ">f8"), (60000, 60000)), max_memory="1G")
    record = np.zeros((400, 400), dtype=[("h", "f8"), ("g", "f8")])
    with pytest.raises(basinvol.InputError, match="over the memory budget"):
        basinvol.analyze(record["h"], max_memory="1.5M")  # 1.28 MB alone, 2.56 MB with its copy
    record = np.zeros(H.shape, dtype=[("h", "f8"), ("g", "f8")])
    record["h"] = H[::-1, ::-1]
    same_row(basinvol.analyze(record["h"]), ref)
    same_row(basinvol.analyze(H.astype(">f8")[::-1, ::-1]), ref)


def test_a_structure_over_the_budget_is_refused_before_its_values_are_copied(tmp):
    # A structure (and a float16 matrix) is written into an in-memory file
    # before it is analysed: the budget is checked first, on its declared
    # shapes, so a broadcast view of 10⁹ values is refused in place. In a
    # child whose data segment is capped at 1 GiB, copying any of these
    # (1.6 to 24 GB) would fail: each is the budget's InputError instead.
    script = """
import resource
import numpy as np, basinvol
resource.setrlimit(resource.RLIMIT_DATA, (1 << 30, 1 << 30))
big = lambda dtype, shape: np.broadcast_to(np.ones((), dtype), shape)
cases = [(basinvol.Diagonal(big(np.float64, (2 * 10 ** 8,))), "100M"),
         (basinvol.Factor(big(np.float64, (3, 10 ** 9))), "8G"),
         (basinvol.Kron(big(np.float32, (30000, 30000)), np.eye(2)), "1G"),
         ({"a": np.eye(3), "b": big(np.float64, (20000, 20000))}, "1G"),
         (big(np.float16, (20000, 20000)), "100M")]
for H, budget in cases:
    try:
        basinvol.analyze(H, max_memory=budget)
        print("analysed")
    except Exception as e:
        print(type(e).__name__, e)
"""
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 5, p.stdout
    for line in lines:
        assert line.startswith("InputError memory:/") and "over the memory budget" in line, line
    # Within the budget the same structure is analysed as before, the image counted.
    d = np.arange(1.0, 2001.0)
    assert basinvol.analyze(basinvol.Diagonal(d), max_memory="1M").rank == 2000
    with pytest.raises(basinvol.InputError, match="over the memory budget of"):
        basinvol.analyze(basinvol.Diagonal(d), max_memory="10K")


def test_a_copy_the_machine_cannot_hold_is_an_input_error(tmp):
    # Within a budget given as 1T, but past what malloc gives (here a 1 GB
    # RLIMIT_DATA, which the budget does not read, in a child process): the
    # command line's error row, as InputError, not MemoryError. The matrix is
    # a sparse file, mapped read-only: no disk, no memory.
    script = """
import resource, sys
import numpy as np, basinvol
n = 20000
with open(sys.argv[1], "wb") as fh:
    fh.truncate(n * n * 8)
m = np.memmap(sys.argv[1], np.float64, "r", shape=(n, n))
resource.setrlimit(resource.RLIMIT_DATA, (1 << 30, 1 << 30))
try:
    basinvol.analyze(m, max_memory="1T")
except Exception as e:
    print(type(e).__name__, e)
"""
    p = subprocess.run([sys.executable, "-c", script, os.path.join(tmp, "huge.bin")], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "InputError memory:/: out of memory (n = 20000); try option max_memory", p.stdout


def test_structures_that_are_not_hessians_are_clear_errors():
    d = {"a": np.eye(2)}
    d["self"] = d
    with pytest.raises(basinvol.InputError, match="blocks 'self' contains itself"):
        basinvol.analyze(d)
    for bad, kind in ((np.eye(2, dtype=complex), "complex128"), (np.eye(2).astype(object), "object")):
        with pytest.raises(TypeError, match=f"dense block 'x': element type {kind} is not real numbers"):
            basinvol.analyze({"x": bad, "y": np.eye(2)})
    with pytest.raises(TypeError, match="rank\\(\\) takes Results, row dicts or SOURCEs"):
        basinvol.rank({"run.h5": np.eye(2)})
    # A structure among rows is named as what it is, not as JSON it cannot become.
    G = np.arange(6.0).reshape(2, 3)
    for item in ({"a": basinvol.Factor(G)}, basinvol.Factor(G)):
        with pytest.raises(TypeError, match="rank\\(\\) takes Results, row dicts or SOURCEs, got (dict|Factor) "
                                            "\\(analyse a matrix or structure with basinvol.analyze\\(\\) first\\)"):
            basinvol.rank([basinvol.analyze(np.eye(2)), item])
    # Several matrices are not one (numpy's own error said "inhomogeneous shape").
    for several in ([np.eye(2), np.eye(3)], [basinvol.Factor(G), basinvol.Factor(G)]):
        with pytest.raises(TypeError, match="analyze\\(\\) takes one matrix .* got a list"):
            basinvol.analyze(several)
    # One matrix written as nested lists is still one.
    assert basinvol.analyze([[2.0, 0.0], [0.0, 1.0]]).rank == 2
    # None is named as such (numpy made it an array of type object).
    with pytest.raises(TypeError, match="memory: got None, not a matrix"):
        basinvol.analyze(None)
    # A tie's reason reads in Python's words as the command line's reads in its own.
    tie = basinvol.compare(np.diag([2.0, 1.0, 0.0]), np.diag([2.0, 1.0, 0.0]))
    assert tie.result == "tie" and tie.reason.endswith(" round to one multiple of option tie_tol 1e-06"), tie.reason


def test_input_is_not_changed():
    H = with_spectrum(FULL, seed=17)
    H[0, 1] += 1e-9  # a little asymmetry, which the solver symmetrizes in its own copy
    before = H.copy()
    basinvol.analyze(H, method="dense")
    basinvol.analyze(H, method="cholesky")
    assert np.array_equal(H, before)


def test_structured_objects_equal_the_cli_and_the_dense_twin(tmp):
    rng = np.random.default_rng(19)
    G = rng.standard_normal((12, 30))
    A, B = with_spectrum([4.0, 1.0, 0.0], seed=1), with_spectrum([2.0, 0.5], seed=2)
    d = np.array([3.0, 0.0, 1e-3, 2.0])
    D = with_spectrum([1.0, 0.5, 0.0, 0.0], seed=3)
    part = {"0_factor": basinvol.Factor(G, 0.5), "1_kron": basinvol.Kron(A, B, 2.0),
            "2_diag": basinvol.Diagonal(d), "3_dense": D}
    f = os.path.join(tmp, "s.h5")
    bx.write_structure(f, "hessian", part)
    (ref,) = cli_rows("volume", f)
    r = basinvol.analyze(part)
    same_row(r, ref)
    assert r.structure == "blocks"
    twin = np.zeros((30 + 6 + 4 + 4,) * 2)
    blocks = [0.5 * G.T @ G, 2.0 * np.kron(A, B), np.diag(d), D]
    o = 0
    for blk in blocks:
        twin[o:o + len(blk), o:o + len(blk)] = blk
        o += len(blk)
    dense = basinvol.analyze(twin)
    assert (r.rank, r.dim, r.negative) == (dense.rank, dense.dim, dense.negative)
    assert r.log_volume == pytest.approx(dense.log_volume, rel=1e-9)
    # Each structure alone, from torch tensors too (numpy arrays without torch).
    tensor = torch.tensor if torch is not None else np.asarray
    for one, mat in ((basinvol.Factor(tensor(G)), G.T @ G), (basinvol.Kron(A, B), np.kron(A, B)),
                     (basinvol.Diagonal(tensor(d)), np.diag(d))):
        a, b = basinvol.analyze(one), basinvol.analyze(mat)
        assert (a.rank, a.dim) == (b.rank, b.dim)
        assert a.log_volume == pytest.approx(b.log_volume, rel=1e-9)


def test_structured_parts_keep_their_types_as_a_file_does(tmp):
    # Each array is written as h5py writes it, so a structure of mixed types
    # has a file's stored type (the coarsest part's) and its answer, and an
    # array the reader refuses is refused the same way.
    import h5py
    A = np.diag(np.logspace(0, -6, 6))
    B = np.diag(np.logspace(0, -5, 5))
    cases = {
        "f32_f64": (basinvol.Kron(A.astype(np.float32), B), "float32"),
        "f16_f64": (basinvol.Kron(A.astype(np.float16), B), "float16"),
        "i32_f32": (basinvol.Kron(np.diag([3, 2, 0]).astype(np.int32), B.astype(np.float32)), "float32"),
        "blocks": ({"a": np.eye(2, dtype=np.float32), "b": basinvol.Factor(np.eye(2))}, "float32"),
    }
    for name, (part, stored) in cases.items():
        f = os.path.join(tmp, name + ".h5")
        with h5py.File(f, "w") as h:
            if isinstance(part, dict):
                g = h.create_group("hessian")
                g.attrs["structure"] = "blocks"
                g["a"] = part["a"]
                k = g.create_group("b")
                k.attrs["structure"] = "factor"
                k["G"] = part["b"].G
            else:
                g = h.create_group("hessian")
                g.attrs["structure"] = "kron"
                g["A"], g["B"] = part.A, part.B
        (ref,) = cli_rows("volume", f)
        assert ref["stored_type"] == stored, name
        same_row(basinvol.analyze(part), ref)
    # Booleans are refused where the structure is made (h5py would store
    # them as an HDF5 enum, which the reader refuses too).
    with pytest.raises(TypeError, match="Kron A: element type bool is not numbers"):
        basinvol.Kron(np.eye(2, dtype=bool), np.eye(2))
    refused = {"int64_past_2_53": basinvol.Kron(np.array([[2 ** 60]]), np.eye(2))}
    for name, part in refused.items():
        f = os.path.join(tmp, name + ".h5")
        with h5py.File(f, "w") as h:
            g = h.create_group("hessian")
            g.attrs["structure"] = "kron"
            g["A"], g["B"] = part.A, part.B
        (ref,) = cli_rows("volume", f, status=1)
        with pytest.raises(basinvol.InputError) as e:
            basinvol.analyze(part)
        assert str(e.value).split(": ", 1)[1] == ref["error"].split(": ", 1)[1], name


def test_errors_are_exceptions_with_the_cli_message(tmp):
    cases = {
        "nan": np.array([[1.0, np.nan], [np.nan, 1.0]]),
        "nonsquare": np.ones((2, 3)),
        "asymmetric": np.array([[1.0, 2.0], [0.0, 1.0]]),
    }
    for name, H in cases.items():
        f = os.path.join(tmp, name + ".h5")
        import h5py
        with h5py.File(f, "w") as h:
            h["hessian"] = H
        (ref,) = cli_rows("volume", f, status=1)
        assert ref["status"] == "error"
        with pytest.raises(basinvol.InputError) as e:
            basinvol.analyze(H)
        # The same message after the name of the input (FILE:/hessian vs
        # memory:/), an array being a matrix where a file holds a dataset, and
        # an option named as the library names it ("option max_asymmetry")
        # where the command line names its flag (--max-asymmetry).
        cli_rule = ref["error"].split(": ", 1)[1].replace("dataset is", "matrix is")
        assert str(e.value).startswith("memory")
        as_flags = re.sub(r"\boption ([a-z_]+)", lambda m: "--" + m.group(1).replace("_", "-"),
                          str(e.value).split(": ", 1)[1])
        assert as_flags == cli_rule
        assert "--" not in str(e.value)
    with pytest.raises(basinvol.UsageError, match="method must be one of"):
        basinvol.analyze(np.eye(3), method="qr")
    with pytest.raises(basinvol.UsageError, match="threshold must be a positive finite number"):
        basinvol.analyze(np.eye(3), threshold=-1)
    with pytest.raises(TypeError, match="int64 is not float32 or float64"):
        basinvol.analyze(np.eye(3, dtype=np.int64))
    # Big-endian floats are values like any (as in a file, or a Diagonal).
    H = with_spectrum([3.0, 2.0, 0.0], 4)
    for dtype, native in ((">f8", np.float64), (">f4", np.float32)):
        big, own = basinvol.analyze(H.astype(dtype)), basinvol.analyze(H.astype(native))
        assert (big.rank, big.log_volume, big.stored_type) == (own.rank, own.log_volume, own.stored_type)
    with pytest.raises(basinvol.InputError, match="not a matrix: 3 dimensions"):
        basinvol.analyze(np.zeros((2, 2, 2)))
    assert issubclass(basinvol.InputError, basinvol.Error)


def checkpoints(tmp, name, spectra, loss_threshold=None):
    f = os.path.join(tmp, name)
    for step, values in spectra:
        bx.write_checkpoint(f, with_spectrum(values, seed=step), step=step, loss=1.0 / (1 + step),
                            loss_threshold=loss_threshold)
    return f


def test_volume_rank_compare_equal_the_cli(tmp):
    a = checkpoints(tmp, "a.h5", [(0, [5.0, 2.0, 1.0, 0.5]), (100, [5.0, 2.0, 0.0, 0.0]),
                                 (1000, [4.0, 2.0, 1.0, 0.0])])
    b = checkpoints(tmp, "b.h5", [(0, [1.0, 1.0, 0.0, 0.0]), (500, [0.1, 0.0, 0.0, 0.0])], loss_threshold=0.5)
    missing = os.path.join(tmp, "missing.h5")
    rows = basinvol.volume([a, b, missing])
    ref = cli_rows("volume", a, b, missing, status=1)
    assert len(rows) == len(ref) == 6
    # A bytes path, as os.fsencode gives it, wherever a path is taken.
    assert [r.source for r in basinvol.volume(os.fsencode(a))] == [r.source for r in rows[:3]]
    # Paths in a numpy array (a DataFrame's column), as in a list; a matrix,
    # a structure or a number is not a SOURCE, and says where it goes.
    assert [r.source for r in basinvol.volume(np.array([a, b]))] == [r.source for r in rows[:5]]
    for wrong, words in ((np.eye(3), "analyze"), (basinvol.Diagonal(np.ones(2)), "analyze"), (3, "a list of them"),
                         ([a, 3], "a SOURCE is a path")):
        with pytest.raises(TypeError, match=words):
            basinvol.volume(wrong)
    assert sorted(r.source for r in basinvol.rank(os.fsencode(a))) == sorted(r.source for r in rows[:3])
    step = os.fsencode(a + ":/checkpoints/step_00000")
    assert basinvol.compare(step, step).result == "tie"
    for r, x in zip(rows, ref):
        same_row(r, x)
    assert not rows[-1].ok and "missing.h5" in rows[-1].error

    ranked = basinvol.rank([a, b, missing])
    ref_ranked = cli_rows("rank", a, b, missing, status=1)
    assert [r.source for r in ranked] == [x["source"] for x in ref_ranked]
    for r, x in zip(ranked, ref_ranked):
        same_row(r, x)
    # Ranking rows already computed gives the same order and places.
    again = basinvol.rank(rows)
    assert [(r.source, r["place"]) for r in again] == [(x["source"], x["place"]) for x in ref_ranked]

    x, y = a + ":/checkpoints/step_00100", b + ":/checkpoints/step_00500"
    c = basinvol.compare(x, y)
    p = subprocess.run([BASINVOL, "compare", x, y, "--format", "json"], capture_output=True, text=True)
    ref_c = json.loads(p.stdout)
    assert p.returncode == (0 if ref_c["result"] == "above" else 1)
    assert (c.result, c.reason, c.noise_decides) == (ref_c["result"], ref_c["reason"], ref_c["noise_decides"])
    assert (c.uncertain_by, c.warnings) == (ref_c["uncertain_by"], ref_c["warnings"])
    # Any mix of inputs: a Result, a matrix, a SOURCE.
    c2 = basinvol.compare(rows[1], with_spectrum([0.1, 0.0, 0.0, 0.0], seed=500))
    assert (c2.result, c2.by) == (c.result, c.by)
    assert bool(c2) == (c2.sign > 0)
    with pytest.raises(basinvol.UsageError, match="names 3 Hessians"):
        basinvol.compare(a, y)


def test_a_hessian_named_by_two_sources_is_one_row(tmp):
    """As the command line: the file and FILE:PATH of one of its datasets
    list it once, under the name listed first, and say so."""
    a = checkpoints(tmp, "a.h5", [(0, [5.0, 2.0, 1.0, 0.0]), (100, [5.0, 2.0, 0.0, 0.0])])
    first = a + ":/checkpoints/step_00000"
    assert first in [r.source for r in basinvol.volume(a)]
    with pytest.warns(UserWarning, match=r"SOURCE .*step_00000 lists a Hessian listed already by an earlier SOURCE"):
        ranked = basinvol.rank([a, first])
    assert sorted(r.source for r in ranked) == sorted(r.source for r in basinvol.volume(a))
    assert [r.place for r in ranked] == [1, 2]


def test_rank_leaves_per_block_parts_out_beside_their_whole(tmp):
    """As rank --from-results: a --per-block row of a parameter block, beside
    its whole's row, is a Hessian of its own n, not a basin among the wholes."""
    import h5py
    import warnings
    f = os.path.join(tmp, "blocks.h5")
    with h5py.File(f, "w") as h:
        d = h.create_dataset("H", data=np.diag(np.arange(1.0, 13.0)))
        d.attrs["param_offsets"] = np.array([0, 6])
        d.attrs["param_sizes"] = np.array([6, 6])
        h["G"] = np.diag([3.0, 2.0, 0.0])
    saved = os.path.join(tmp, "parts.jsonl")
    cli("volume", f, "--per-block", "--format", "jsonl", "-o", saved)
    rows = basinvol.read_results(saved)
    assert len(rows) == 4
    with pytest.warns(UserWarning, match=r"2 row\(s\) are --per-block parts of Hessians ranked here"):
        ranked = basinvol.rank(rows)
    assert sorted(r["dataset"] for r in ranked) == ["/G", "/H"]
    with warnings.catch_warnings():  # alone, parts rank as any Hessians
        warnings.simplefilter("error")
        assert len(basinvol.rank([r for r in rows if "[" in r["dataset"]])) == 2


def test_rank_warns_of_a_shard_without_rows(tmp):
    """Rows of a --shard run name their shard and count their split's rows:
    ranking those of a split with a shard's results left out, or cut short,
    says so (its Hessians are missing); ranked, rows keep those fields."""
    # Which shard a Hessian falls in follows its path's hash: a name under
    # which each of 3 shards gets some of the 12 (one in 43 paths gives some shard none).
    for attempt in range(50):
        a = checkpoints(tmp, "a%d.h5" % attempt, [(s, [5.0, 2.0 + s / 100, 1.0, 0.0]) for s in range(0, 1200, 100)])
        parts = {k: os.path.join(tmp, "shard%d.jsonl" % k) for k in (1, 2, 3)}
        for k, f in parts.items():
            cli("volume", a, "--shard", "%d/3" % k, "--format", "jsonl", "-o", f)
        rows = {k: basinvol.read_results(f) for k, f in parts.items()}
        if all(rows.values()):
            break
    assert all(rows.values()), "each of 3 shards gets some of 12 Hessians"
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        whole = basinvol.rank(rows[1] + rows[2] + rows[3])
    assert len(whole) == 12
    assert sorted(r["shard"] for r in whole) == sorted(r["shard"] for k in rows for r in rows[k])
    held = len(rows[1]) + len(rows[3])
    with pytest.warns(UserWarning, match=r"the rows ranked hold %d of the 12 rows of their split into 3 shards, "
                                         r"so the ranking lacks some Hessians: shard 2/3 has no rows" % held):
        part = basinvol.rank(rows[1] + rows[3])
    assert len(part) == held
    # (the shards' sizes follow the paths' hashes: cut short the largest, at least 4 of 12)
    k = max(rows, key=lambda i: len(rows[i]))
    with pytest.warns(UserWarning, match=r"shard %d/3 holds %d of its %d rows \(its run was stopped"
                                         % (k, len(rows[k]) - 1, len(rows[k]))):
        basinvol.rank([r for i in rows for r in (rows[i][1:] if i == k else rows[i])])
    # A DataFrame's rows (null counts are NaN there) say the same.
    with pytest.warns(UserWarning, match=r"hold %d of the 12 rows of their split into 3 shards" % held):
        basinvol.rank(basinvol.to_dataframe(rows[1] + rows[3]))
    # A ranking's own "shard I/N" error row is checked again, not kept.
    saved = os.path.join(tmp, "lacking.jsonl")
    cli("rank", "--from-results", parts[1], parts[3], "--format", "jsonl", "-o", saved, status=1)
    assert "shard 2/3" in [r.source for r in basinvol.read_results(saved)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = basinvol.rank(basinvol.read_results(saved) + rows[2])
    assert [r.source for r in again if not r.ok] == [] and len(again) == 12
    # A row dict naming its shard without the counts (hand-made) is not checked.
    bare = {k: v for k, v in rows[1][0].to_dict().items() if k not in ("split", "shard_rows", "split_rows")}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert basinvol.rank([bare])[0].source == bare["source"]
    # Shards given no Hessians have no rows and are not missed.
    b = checkpoints(tmp, "b.h5", [(0, [1.0, 0.0]), (100, [2.0, 0.0])])
    few = []
    for k in range(1, 7):
        f = os.path.join(tmp, "few%d.jsonl" % k)
        cli("volume", b, "--shard", "%d/6" % k, "--format", "jsonl", "-o", f)
        few += basinvol.read_results(f)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(basinvol.rank(few)) == 2
    # A SOURCE that cannot be listed is an error row in every shard, merged
    # to one: it still counts for each shard, so only the shard left out is named.
    gone = os.path.join(tmp, "gone.h5")
    third = {}
    for k in (1, 2, 3):
        third[k] = os.path.join(tmp, "gone%d.jsonl" % k)
        cli("volume", a, gone, "--shard", "%d/3" % k, "--format", "jsonl", "-o", third[k], status=1)
        assert gone in [r.source for r in basinvol.read_results(third[k])]
    merged = os.path.join(tmp, "gone_merged.jsonl")
    cli("rank", "--from-results", third[1], third[3], "--format", "jsonl", "-o", merged, status=1)
    with pytest.warns(UserWarning) as said:
        once = basinvol.rank(basinvol.read_results(merged))
    assert [r.source for r in once].count(gone) == 1
    assert [str(w.message) for w in said if "shard 3/3" in str(w.message) or "shard 1/3" in str(w.message)] == []
    assert any("shard 2/3 has no rows" in str(w.message) for w in said)


@pytest.mark.parametrize("fmt", ["jsonl", "json", "tsv", "csv"])
def test_read_results_of_every_format(tmp, fmt):
    a = checkpoints(tmp, "a.h5", [(0, [5.0, 2.0, 1.0, 0.5]), (100, [5.0, 2.0, 0.0, 0.0])])
    out = os.path.join(tmp, "rows." + fmt)
    cli("rank", a, "--format", fmt, "-o", out)
    rows = basinvol.read_results(out)
    ref = cli_rows("rank", a)
    assert [r.source for r in rows] == [x["source"] for x in ref]
    for r, x in zip(rows, ref):
        for k in ("n", "rank", "dim", "negative", "place", "status", "step"):
            assert r[k] == x[k], (fmt, k)
        assert r.log_volume == x["log_volume"], fmt  # every format writes the shortest exact digits
        assert "shard" not in r.keys(), fmt  # an unsharded run names none
    # A sharded run's rows name their shard, in every format.
    shards = []
    for k in (1, 2):
        cli("volume", a, "--shard", "%d/2" % k, "--format", fmt, "-o", out)
        shards += [(r.source, r["shard"]) for r in basinvol.read_results(out)]
    assert sorted(shards) == sorted((x["source"], x["shard"]) for k in (1, 2)
                                    for x in cli_rows("volume", a, "--shard", "%d/2" % k))
    assert len(shards) == 2  # each Hessian in one shard
    cli("rank", a, "--format", fmt, "-o", out)
    df = basinvol.read_results(out, dataframe=True)
    assert list(df["dim"]) == [x["dim"] for x in ref]
    assert list(df["source"]) == [x["source"] for x in ref]
    # rank() and compare() take the DataFrame (its rows) and its Series as
    # they take the rows; iterated, a DataFrame gave its column names,
    # which were analysed as files.
    by_frame, by_rows = basinvol.rank(df), basinvol.rank(rows)
    assert [(r.source, r.place) for r in by_frame] == [(r.source, r.place) for r in by_rows]
    assert all(r.ok for r in by_frame)
    assert basinvol.compare(df.iloc[0], df.iloc[1]).result == basinvol.compare(rows[0], rows[1]).result
    # A Series of SOURCEs or Results is a list of them, not a row.
    import pandas as pd
    sources = [a + ":/checkpoints/step_00000", a + ":/checkpoints/step_00100"]
    want = [(r.source, r.place) for r in basinvol.rank(sources)]
    assert [(r.source, r.place) for r in basinvol.rank(pd.Series(sources))] == want
    assert [(r.source, r.place) for r in basinvol.rank(pd.Series(basinvol.volume(sources)))] == want


def test_a_file_name_that_is_not_utf8_is_read_as_the_cli_reads_it(tmp):
    # os.listdir gives such a name with surrogate escapes; the file's own
    # bytes are opened, and the row prints U+FFFD, as the command line's.
    a = checkpoints(tmp, "a.h5", [(0, [5.0, 2.0, 1.0, 0.5]), (100, [5.0, 2.0, 0.0, 0.0])])
    odd = os.path.join(os.fsencode(tmp), b"ckpt\xff.h5")
    os.rename(a, odd)
    name = os.fsdecode(odd)
    good = checkpoints(tmp, "good.h5", [(0, [1.0, 0.0])])
    rows = basinvol.volume([name, good])
    ref = cli_rows("volume", name, good)
    assert [r.ok for r in rows] == [True] * 3
    for r, x in zip(rows, ref):
        same_row(r, x)
    assert "\ufffd" in rows[0].source
    out = os.path.join(os.fsencode(tmp), b"rows\xff.jsonl")
    cli("volume", name, "-f", "jsonl", "-o", os.fsdecode(out))
    assert [r.source for r in basinvol.read_results(os.fsdecode(out))] == [r.source for r in rows[:2]]


def test_a_notebook_s_locale_does_not_change_numbers(tmp):
    # After locale.setlocale(LC_ALL, "de_DE.UTF-8") (a decimal comma), text
    # attributes, max_memory, TSV and CSV results and messages read and write
    # numbers as in the C locale. The locale is compiled here (Debian's
    # locales package, which the test command installs).
    import h5py
    here = os.path.join(tmp, "locale")
    os.mkdir(here)
    subprocess.run(["localedef", "-i", "de_DE", "-f", "UTF-8", os.path.join(here, "de_DE.UTF-8")],
                   check=True, capture_output=True)
    f = os.path.join(tmp, "text.h5")
    with h5py.File(f, "w") as h5:
        h5.create_dataset("h", data=np.diag([2.0, 1.0, 0.0])).attrs["loss_threshold"] = "0.5"
    rows = {}
    for fmt in ("tsv", "csv"):
        rows[fmt] = os.path.join(tmp, "rows." + fmt)
        cli("volume", f, "-f", fmt, "-o", rows[fmt])
    script = """
import json, locale, sys
import numpy as np
import basinvol
f, tsv, csv, switch = sys.argv[1:]
if switch == "de":
    locale.setlocale(locale.LC_ALL, "de_DE.UTF-8")
    assert locale.localeconv()["decimal_point"] == ","
out = {}
r = basinvol.volume(f)[0]
out["volume"] = [r.ok, r.error, r.threshold, r.log_volume]
out["memory"] = basinvol.analyze(np.eye(3), max_memory="1.5G").log_volume
out["read"] = [[x.tol, x.log_volume, x.threshold] for p in (tsv, csv) for x in basinvol.read_results(p)]
try:
    basinvol.analyze(np.eye(3), atol=-0.25)
except basinvol.UsageError as e:
    out["message"] = str(e)
print(json.dumps(out))
"""
    env = dict(os.environ, LOCPATH=here)
    got = {}
    for switch in ("C", "de"):
        p = subprocess.run([sys.executable, "-c", script, f, rows["tsv"], rows["csv"], switch],
                           capture_output=True, text=True, env=env)
        assert p.returncode == 0, p.stderr
        got[switch] = json.loads(p.stdout)
    assert got["C"]["volume"][:2] == [True, None] and got["C"]["volume"][2] == 0.5
    assert "-0.25" in got["C"]["message"]
    assert got["de"] == got["C"]


def test_chunks_never_written_warn_and_a_part_never_written_is_an_error_row(tmp):
    import h5py
    f = os.path.join(tmp, "unwritten.h5")
    with h5py.File(f, "w") as h5:
        d = h5.create_dataset("partial", shape=(20, 20), dtype="f8", chunks=(10, 10))
        d[:10, :10] = np.eye(10)
        g = h5.create_group("factor")
        g.attrs["structure"] = "factor"
        g.create_dataset("G", shape=(4, 6), dtype="f8")
    rows = {r["dataset"]: r for r in basinvol.volume(f)}
    ref = {x["dataset"]: x for x in cli_rows("volume", f, status=1)}
    assert rows["/partial"].ok and rows["/partial"].warnings == ["unwritten_chunks"]
    assert rows["/partial"].dim == 10
    assert not rows["/factor"].ok and f + ":/factor/G: the dataset was never written" in rows["/factor"].error
    for k in rows:
        same_row(rows[k], ref[k])


def test_list_timeout_is_the_command_line_s(tmp):
    # A FIFO named as a file blocks HDF5's open: after list_timeout seconds
    # (the message names the option) it is an error row, the rest go on.
    fifo = os.path.join(tmp, "fifo.h5")
    os.mkfifo(fifo)
    good = checkpoints(tmp, "good.h5", [(0, [1.0, 0.0])])
    t0 = time.monotonic()
    rows = basinvol.volume([fifo, good], list_timeout=1)
    assert time.monotonic() - t0 < 30
    assert [r.ok for r in rows] == [False, True]
    assert "listing limit of 1 s" in rows[0].error and "option list_timeout" in rows[0].error
    ranked = basinvol.rank([fifo, good], list_timeout=0.5)
    assert [r.ok for r in ranked] == [True, False]
    # compare: a SOURCE against a matrix in memory, which is not listed
    c = basinvol.compare(good + ":/checkpoints/step_00000", np.diag([1.0, 0.0]), list_timeout=5)
    assert c.result == "tie"
    for bad in (0, -1, float("inf"), float("nan"), "x", True):
        with pytest.raises(basinvol.UsageError, match="list_timeout must be a positive number of seconds"):
            basinvol.volume(good, list_timeout=bad)


def test_a_hung_listing_lets_other_threads_run_and_ctrl_c_stop_it(tmp):
    # A FIFO holds its listing to list_timeout: other threads must run
    # meanwhile (the GIL released), and a SIGINT must stop it at once with
    # KeyboardInterrupt, not at the time limit.
    fifo = os.path.join(tmp, "hung.h5")
    os.mkfifo(fifo)
    ticks, done = [], threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.001)

    t = threading.Thread(target=tick)
    t.start()
    try:
        rows = basinvol.volume(fifo, list_timeout=2)
    finally:
        done.set()
        t.join()
    assert not rows[0].ok and "listing limit of 2 s" in rows[0].error
    assert len(ticks) > 200, len(ticks)  # 1 ms sleeps over 2 s; 16 with the GIL held
    killer = subprocess.Popen(["sh", "-c", f"sleep 0.5; kill -INT {os.getpid()}"])
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        basinvol.volume(fifo, list_timeout=20)
    killer.wait()
    assert time.monotonic() - t0 < 5


def _wait_child(pid, seconds):
    """The child's exit status, or None after killing it when it runs past `seconds`."""
    import signal
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def test_forks_while_another_thread_solves_or_reads_leave_both_sides_working(tmp):
    # A DataLoader's or a fork Pool's workers are forked while another thread
    # may be inside a solve (threaded OpenBLAS) or a volume call (h5py's lock,
    # basinvol's HDF5 lock): the solve must still return, with its answer,
    # and the child must be able to read and solve.
    import h5py
    f = os.path.join(tmp, "forked.h5")
    with h5py.File(f, "w") as h5:
        for i in range(8):
            h5["h%d" % i] = with_spectrum(np.linspace(1, 2, 300), seed=i)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((400, 400))
    H = a @ a.T
    want = basinvol.analyze(H, eigenvalues=True).eigenvalues
    ref = basinvol.volume(f + ":/h0")[0].log_volume
    stop = threading.Event()
    solved, wrong = [0], [0]

    def solve():
        while not stop.is_set():
            got = basinvol.analyze(H, eigenvalues=True).eigenvalues
            solved[0] += 1
            wrong[0] += not np.allclose(got, want, rtol=0, atol=1e-9 * abs(want).max())

    def read():
        while not stop.is_set():
            basinvol.volume(f)

    threads = [threading.Thread(target=solve, daemon=True), threading.Thread(target=read, daemon=True)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    children = []
    try:
        for _ in range(12):
            pid = os.fork()
            if pid == 0:  # the child: one read and solve of its own, then out
                ok = abs(basinvol.volume(f + ":/h0")[0].log_volume - ref) < 1e-9 * abs(ref)
                os._exit(0 if ok else 3)
            children.append(_wait_child(pid, 20))
            if children[-1] is None:
                break
            time.sleep(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join(20)
    assert children == [0] * 12  # None: a child hung
    assert not any(t.is_alive() for t in threads)  # a solve or read never returned
    assert solved[0] > 0 and wrong[0] == 0


def test_inputs_whose_values_would_be_misread_are_type_errors():
    with pytest.raises(TypeError, match="masked array"):
        basinvol.analyze(np.ma.masked_array(np.eye(3), mask=np.eye(3, dtype=bool)))
    if torch is not None:
        with pytest.raises(TypeError, match="sparse tensor"):
            basinvol.analyze(torch.eye(3).to_sparse())
        with pytest.raises(TypeError, match="meta device"):
            basinvol.analyze(torch.empty(3, 3, device="meta"))


@pytest.mark.parametrize("what", ["array", "file"])
def test_a_daemon_thread_still_solving_when_the_program_exits_does_not_abort_it(tmp, what):
    # CPython ends a daemon thread that takes the GIL back while the
    # interpreter finalizes by unwinding it; where that happened in the
    # destructor that takes the GIL back after a solve, the process died by
    # SIGABRT ("terminate called without an active exception"). A
    # sys.stdout whose flush sleeps holds finalization open past the solve.
    f = os.path.join(tmp, "h.h5")
    H = np.random.default_rng(0).standard_normal((2000, 2000))
    bx.write_hessian(f, H + H.T)
    script = """
import os, sys, threading, time
import basinvol, h5py
import numpy as np
class SlowFlush:
    def write(self, text):
        return len(text)
    def flush(self, sleep=time.sleep, finalizing=sys.is_finalizing):
        if finalizing():
            sleep(1.5)
with h5py.File(sys.argv[1], "r") as fh:
    H = fh["hessian"][...]
call = (lambda: basinvol.analyze(H, method="dense")) if sys.argv[2] == "array" else (
    lambda: basinvol.volume(sys.argv[1], method="dense"))
t = time.monotonic()
call()  # the call works, and takes this long
took = time.monotonic() - t
started = threading.Event()
def work():
    started.set()
    call()
threading.Thread(target=work, daemon=True).start()
started.wait()
time.sleep(took / 2)  # into the solve
sys.stdout = SlowFlush()
"""
    # One BLAS thread: the exit waits for the solve to end (OpenBLAS joins
    # its threads), and busy-waiting BLAS threads beside ctest -j2's other
    # tests made that wait 20 s and more; the GIL's hand-over is the same.
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-c", script, f, what], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0 and "terminate" not in p.stderr, (p.returncode, p.stderr)


def test_the_finalizing_thread_itself_may_still_call_basinvol():
    # A __del__ run while the interpreter finalizes (an object in a cycle,
    # collected at exit) calls basinvol on the thread that finalizes: it
    # takes the GIL back and returns, where only other threads must wait.
    script = """
import gc, sys
import basinvol
import numpy as np
gc.set_threshold(10 ** 9)
class C:
    def __del__(self):
        sys.stderr.write("finalizing %s rank %d\\n" % (sys.is_finalizing(), basinvol.analyze(np.eye(3)).rank))
c = C()
c.me = c
del c
"""
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "finalizing True rank 3" in p.stderr, (p.returncode, p.stderr)


def test_ctrl_c_stops_a_list_of_sources_after_the_hessian_being_analysed(tmp):
    # One call lists and analyses the whole list: a SIGINT part-way raises
    # KeyboardInterrupt at the next source or Hessian, not when the list is
    # done. The signal comes from another process (a thread of this one
    # would wait for the GIL).
    import h5py
    f = os.path.join(tmp, "one.h5")
    with h5py.File(f, "w") as h5:
        h5["h"] = with_spectrum(np.linspace(1, 2, 600))
    basinvol.volume(f, method="dense")
    t0 = time.monotonic()
    basinvol.volume([f] * 3, method="dense")
    each = (time.monotonic() - t0) / 3
    for delay in (0.05, 1.0):  # while listing, while analysing
        killer = subprocess.Popen(["sh", "-c", f"sleep {delay}; kill -INT {os.getpid()}"])
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            # About 30 s uninterrupted: long past the signal even when `each`
            # was timed on a busier machine than this call runs on.
            basinvol.volume([f] * (int(30 / each) + 1), method="dense")
        killer.wait()
        # Stopped at the next source or Hessian, not when the list is done
        # (30 s): within a third of it on a machine busy with other tests,
        # where `each` was timed in another load than this call ran in.
        assert time.monotonic() - t0 < max(delay + 1 + 5 * each, 10), delay


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_read_results_keeps_a_spectrum_s_eigenvalues(tmp, fmt):
    spectrum = [5.0, 2.0, -1.0, 0.5, 0.0]
    a = checkpoints(tmp, "a.h5", [(0, spectrum)])
    out = os.path.join(tmp, "spectrum." + fmt)
    with open(out, "w") as fh:
        fh.write(cli("spectrum", a, "--format", fmt))
    (r,) = basinvol.read_results(out)
    assert r.eigenvalues_complete
    want = np.linalg.eigvalsh(with_spectrum(spectrum, seed=0))  # the matrix checkpoints() wrote
    assert r.eigenvalues == pytest.approx(want, abs=1e-12)  # ascending, as analyze(eigenvalues=True) gives
    # A volume row carries none.
    out = os.path.join(tmp, "volume." + fmt)
    cli("volume", a, "--format", fmt, "-o", out)
    assert basinvol.read_results(out)[0].eigenvalues is None


def test_result_is_a_row():
    r = basinvol.analyze(with_spectrum(FLAT, seed=23), step=300, name="run-a", eigenvalues=True)
    d = r.to_dict()
    assert d["step"] == 300 and d["name"] == "run-a"
    assert r.dim == d["dim"] == r["dim"]
    assert np.sort(r.eigenvalues) == pytest.approx(np.sort(FLAT), abs=1e-12)
    with pytest.raises(AttributeError, match="no field 'dimension'"):
        r.dimension
    assert "dim=" in repr(r)
    assert json.loads(json.dumps(d)) == d  # plain JSON types only


def test_the_gil_is_released_during_the_solve():
    """Another Python thread runs while analyze() solves (it would not if the
    GIL were held): it counts during a solve of about a second."""
    H = with_spectrum(np.linspace(1, 2, 1500), seed=29)
    counts, stop = [0], threading.Event()

    def spin():
        while not stop.is_set():
            counts[0] += 1

    t0 = time.perf_counter()
    basinvol.analyze(H, method="dense")
    alone = time.perf_counter() - t0
    t = threading.Thread(target=spin)
    t.start()
    time.sleep(0.05)
    before = counts[0]
    basinvol.analyze(H, method="dense")
    during = counts[0] - before
    stop.set()
    t.join()
    # Held GIL: the spinner gets the interpreter only between calls (≈ 0
    # increments); released: it runs for the whole solve (millions).
    assert alone > 0.05
    assert during > 10_000


def svg_text(path):
    root = ET.parse(path).getroot()
    return [el.text for el in root.iter() if el.tag.endswith("text") and el.text]


def test_run_plot_draws_one_line_per_run(tmp):
    runs = {}
    for name, shift in (("a.h5", 0), ("b.h5", 1), ("c.h5", 2)):
        runs[name] = checkpoints(tmp, name, [(s, [5.0, 2.0, 1.0, 0.5 * (s == 0)][:4 - shift] + [0.0] * shift)
                                             for s in (0, 50, 200, 5000)])
    rows = basinvol.rank(list(runs.values()))
    out = os.path.join(tmp, "run.svg")
    drawn = bp.plot_run(rows, out)
    assert drawn["runs"] == ["a.h5", "b.h5", "c.h5"] and drawn["xscale"] == "symlog"
    text = svg_text(out)
    for name in runs:
        assert text.count(name) >= 2, name  # both legends (and the title)
    assert "training step (symlog scale)" in text
    assert "basin dimension (flat directions)" in text
    assert "place 1 (largest basin)" in text
    lines = [el for el in ET.parse(out).getroot().iter() if el.get("id", "").startswith("line2d")]
    assert len(lines) >= 6  # three runs in two panels
    # Grouped by name: the same rows under two names give two runs.
    named = [dict(r.to_dict(), name="even" if i % 2 == 0 else "odd") for i, r in enumerate(rows)]
    assert bp.plot_run(named, os.path.join(tmp, "named.png"))["runs"] == ["even", "odd"]
    png = os.path.join(tmp, "named.png")
    import matplotlib.image
    img = matplotlib.image.imread(png)
    assert img.shape[0] > 500 and img.shape[1] > 700
    # The command line reads TSV too.
    tsv = os.path.join(tmp, "r.tsv")
    cli("rank", *runs.values(), "--format", "tsv", "-o", tsv)
    p = subprocess.run(["/usr/bin/python3", "-m", "basinvol.plot", "run", tsv, os.path.join(tmp, "t.svg"),
                        "--step-scale", "log"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "training step (log scale)" in svg_text(os.path.join(tmp, "t.svg"))


def test_spectrum_plot_of_an_in_memory_result(tmp):
    r = basinvol.analyze(np.diag([1e3, 10.0, 0.1, -0.5, 0.0, 0.0]), eigenvalues=True)
    out = os.path.join(tmp, "s.svg")
    assert bp.plot_spectrum(r, out) == {"kept": 4, "shown": 6}
    text = " ".join(svg_text(out))
    assert "λ > 0: 3 kept, 0 dropped" in text
    assert "λ < 0: 1 kept, 0 dropped" in text
    assert "λ = 0 exactly: 2" in text
    assert "cut: tol" in text
    with pytest.raises(ValueError, match="eigenvalues=True"):
        bp.plot_spectrum(basinvol.analyze(np.eye(2)), out)
    # negatives="drop": the saddle direction is not in the volume, nor kept on the plot.
    d = basinvol.analyze(np.diag([1e3, 10.0, 0.1, -0.5, 0.0, 0.0]), eigenvalues=True, negatives="drop")
    assert d.rank == 3
    assert bp.plot_spectrum(d, out) == {"kept": 3, "shown": 6}
    assert "λ < 0: 0 kept, 1 dropped" in " ".join(svg_text(out))


def test_spectrum_plot_labels_the_decades_of_subnormal_values(monkeypatch):
    # matplotlib's log labels print subnormal decades as "0" or leave them out.
    seen = {}

    def save(fig, out):
        fig.canvas.draw()
        ax = fig.axes[0]
        lo, hi = ax.get_ylim()
        seen["labels"] = [t.get_text() for t, v in zip(ax.get_yticklabels(), ax.get_yticks()) if lo <= v <= hi]

    monkeypatch.setattr(bp, "_save", save)
    for values in ([1e-318, 1e-320, 1e-322, 0.0], [1e-300, 1e-305, 1e-310, 1e-316, 0.0]):
        bp.plot_spectrum(basinvol.analyze(np.diag(values), eigenvalues=True), "unused.svg")
        labels = seen["labels"]
        assert len(labels) >= 3 and all(re.fullmatch(r"\$10\^\{-3\d\d\}\$", t) for t in labels), labels


def test_results_copy_and_pickle():
    import copy
    import pickle
    r = basinvol.analyze(with_spectrum(FLAT, seed=31), eigenvalues=True)
    for c in (copy.copy(r), copy.deepcopy(r), pickle.loads(pickle.dumps(r))):
        assert c == r and c.dim == r.dim
        assert np.array_equal(c.eigenvalues, r.eigenvalues) and c.eigenvalues_complete


def test_structured_eigenvalues_are_all_n_ascending():
    G = np.random.default_rng(37).standard_normal((3, 6))
    r = basinvol.analyze(basinvol.Factor(G), eigenvalues=True)
    assert r.eigenvalues_complete and len(r.eigenvalues) == 6
    assert np.allclose(r.eigenvalues, np.linalg.eigvalsh(G.T @ G), atol=1e-12)
    k = basinvol.analyze({"a": basinvol.Kron(np.diag([1.0, 2.0]), np.diag([3.0, 0.0])),
                          "b": basinvol.Diagonal([-1.0, 5.0])}, eigenvalues=True)
    assert list(k.eigenvalues) == [-1.0, 0.0, 0.0, 3.0, 5.0, 6.0]
    # A partial method keeps what it computed, and says so.
    big = basinvol.analyze(with_spectrum(LOW_RANK, seed=41), method="sketch", eigenvalues=True)
    if big.method == "sketch":
        assert not big.eigenvalues_complete and len(big.eigenvalues) < big.n


def test_input_rules_for_memory_and_shapes():
    with pytest.raises(basinvol.InputError, match="needs about .* GB to analyze, over the memory budget of .* GB \\(option max_memory\\)"):
        basinvol.analyze(np.eye(100), max_memory="1K")
    with pytest.raises(basinvol.InputError, match="matrix is empty: shape 0x0"):
        basinvol.analyze(np.zeros((0, 0)))
    with pytest.raises(basinvol.InputError, match="matrix is not square: shape 2x3"):
        basinvol.analyze(np.ones((2, 3)))
    with pytest.raises(basinvol.InputError, match="factor 'hessian': G must be a non-empty 2-D array"):
        basinvol.analyze(basinvol.Factor(np.ones(3)), label="net")
    # Empty parts, in numpy's terms as every malformed structure in memory.
    for part, words in ((basinvol.Factor(np.ones((0, 3))), r"factor 'hessian': G must be a non-empty 2-D array, "
                                                            r"got shape \(0, 3\)"),
                        (basinvol.Kron(np.ones((0, 0)), np.eye(2)), r"kron 'hessian': A must be non-empty and square"),
                        (basinvol.Diagonal(np.ones(0)), r"diagonal 'hessian' must be a non-empty 1-D array"),
                        ({"a": np.ones((0, 0))}, r"dense block 'a' must be non-empty and square")):
        with pytest.raises(basinvol.InputError, match="^net: " + words):
            basinvol.analyze(part, label="net")
    # A key used in two blocks: the part is named by its keys' path.
    layers = {"fc1": {"w": basinvol.Kron(np.eye(2), np.eye(3))}, "fc2": {"w": basinvol.Kron(np.eye(2), np.ones((3, 2)))}}
    with pytest.raises(basinvol.InputError, match=r"^net: kron 'fc2/w': B must be non-empty and square"):
        basinvol.analyze(layers, label="net")
    with pytest.raises(basinvol.InputError, match=r"^memory: blocks 'fc1' has no members"):
        basinvol.analyze({"fc1": {}, "fc2": np.eye(2)})
    with pytest.raises(basinvol.InputError, match="member names must be strings"):
        basinvol.analyze({1: np.eye(2)})
    for bad in ("", ".", "a/b", "fc1\0weight"):
        with pytest.raises(basinvol.InputError, match="is not a name an HDF5 group can hold"):
            basinvol.analyze({bad: np.eye(2)})
    # Two names alike up to a NUL were h5py's "name already exists".
    with pytest.raises(basinvol.InputError, match=re.escape("member name 'fc\\x00b' is not a name")):
        basinvol.analyze({"fc": np.eye(2), "fc\0b": np.eye(2)})
    with pytest.raises(TypeError, match=r"Kron scale must be one number, got an array of shape \(2,\)"):
        basinvol.Kron(np.eye(2), np.eye(2), np.array([1.0, 2.0]))
    for flag in (True, np.True_):
        with pytest.raises(TypeError, match="Factor scale must be one number, got bool"):
            basinvol.Factor(np.eye(2), flag)
    with pytest.raises(TypeError, match="is not real numbers"):
        basinvol.Factor(np.ones((2, 2), dtype=complex))
    with pytest.raises(TypeError, match="eigenvalues must be True or False"):
        basinvol.analyze(np.eye(2), eigenvalues="no")
    meta = np.eye(3, dtype=np.dtype(np.float64, metadata={"unit": "nats"}))
    assert basinvol.analyze(meta).rank == 3


def test_rank_and_compare_take_what_they_are_given(tmp):
    a = checkpoints(tmp, "a.h5", [(0, [5.0, 2.0, 1.0, 0.5]), (100, [5.0, 2.0, 0.0, 0.0])])
    rows = basinvol.volume([a, os.path.join(tmp, "missing.h5")])
    (one,) = basinvol.rank(rows[0])  # a single Result
    assert one.place == 1
    (one,) = basinvol.rank(rows[0].to_dict())  # a single row dict
    assert one.place == 1
    df = basinvol.to_dataframe(rows)  # NaN cells and float counts, as pandas makes them
    ranked = basinvol.rank(df.to_dict("records"))
    assert [r.place for r in ranked if r.ok] == [1, 2] and not ranked[-1].ok
    c = basinvol.compare({"blk": with_spectrum([1.0, 1.0, 0.0], 1)}, with_spectrum([1.0, 0.0, 0.0], 2),
                         label=("structure", "matrix"))
    assert c.result == "below" and c.by == "curved" and (c.a.source, c.b.source) == ("structure:/hessian", "matrix:/")
    # Options that shape an analysis are refused for rows computed already
    # (they were ignored); unknown ones are a TypeError; an order applies.
    for call in (lambda **kw: basinvol.rank(rows, **kw), lambda **kw: basinvol.compare(rows[0], rows[0], **kw)):
        for kw in (dict(threshold=5), dict(cut="gap"), dict(negatives="drop"), dict(method="dense")):
            with pytest.raises(basinvol.UsageError, match="computed already"):
                call(**kw)
        with pytest.raises(TypeError, match="bogus"):
            call(bogus=5)
        call(negatives="last")
    assert basinvol.compare(with_spectrum([1.0, 1.0, 0.0], 1), rows[0], threshold=5).a.threshold == 5
    # A Comparison copies and pickles (multiprocessing), read-only as it is.
    import copy
    import pickle
    for again in (copy.copy(c), copy.deepcopy(c), pickle.loads(pickle.dumps(c))):
        assert (again.result, again.by, again.reason, again.a.source) == (c.result, c.by, c.reason, c.a.source)


def test_tied_rows_list_as_the_command_line_lists_them(tmp):
    # Rows that share a place list by log-volume, then by source: the same
    # order from rank() over SOURCEs, over Results and over a results file as
    # from `basinvol rank` (twelve, so that positions 10 and 11 sort past 2).
    import h5py
    names = [f"tie_{c}.h5" for c in "kbjcalhgdfie"]
    for name in names:
        with h5py.File(os.path.join(tmp, name), "w") as h:
            h["h"] = np.diag([1.0, 2.0, 0.0])
    paths = [os.path.join(tmp, name) for name in names]
    cli_order = [r["source"] for r in cli_rows("rank", *paths)]
    assert cli_order == sorted(p + ":/h" for p in paths)
    assert [r.source for r in basinvol.rank(paths)] == cli_order
    rows = basinvol.volume(paths)
    assert [r.source for r in basinvol.rank(rows)] == cli_order
    assert [r.place for r in basinvol.rank(rows)] == [1] * 12
    saved = os.path.join(tmp, "rows.jsonl")
    with open(saved, "w") as out:
        out.write(cli("volume", *paths, "--format", "jsonl"))
    assert [r.source for r in basinvol.rank(basinvol.read_results(saved))] == cli_order
    assert [r["source"] for r in cli_rows("rank", "--from-results", saved)] == cli_order


def test_a_float16_matrix_is_read_as_a_float16_dataset(tmp):
    # Widened to float64 (the advice analyze() gave), float16's rounding
    # counted as curvature: dim 0 and a false saddle.
    import h5py
    import torch
    H16 = with_spectrum([0.0] * 8 + [1.0, 2.0, 3.0, 4.0], 3).astype(np.float16)
    f = os.path.join(tmp, "h16.h5")
    with h5py.File(f, "w") as h:
        h["hessian"] = H16
    (ref,) = cli_rows("volume", f)
    assert ref["stored_type"] == "float16" and ref["dim"] == 8 and ref["negative"] == 0
    for H in (H16, torch.from_numpy(H16), H16.astype(">f2")):  # big-endian too, not refused as "not float32"
        same_row(basinvol.analyze(H), ref)
        r = basinvol.analyze(H, label="lab")  # named as the other matrices are
        assert (r.source, r["dataset"], r["stored_type"]) == ("lab:/", "/", "float16")
    # Shapes are refused in the words the other matrices' are.
    for shape in ((3,), (0, 0), (2, 3), (2, 2, 2)):
        with pytest.raises(basinvol.InputError) as wide:
            basinvol.analyze(np.ones(shape))
        with pytest.raises(basinvol.InputError, match="^" + re.escape(str(wide.value)) + "$"):
            basinvol.analyze(np.ones(shape, np.float16))
    with pytest.raises(TypeError, match="a masked array"):  # as a float32 or float64 one is
        basinvol.analyze(np.ma.masked_array(H16, mask=np.eye(12, dtype=bool)))
    with pytest.raises(basinvol.InputError, match=re.escape("lab:/: non-finite value nan at [1, 1]")):
        basinvol.analyze(np.diag([1.0, np.nan, 0.0]).astype(np.float16), label="lab")
    with pytest.raises(TypeError, match="bfloat16 has no numpy type: give H.float\\(\\) with hessian_error"):
        basinvol.analyze(torch.from_numpy(H16.astype(np.float32)).to(torch.bfloat16))


def test_a_nul_byte_in_a_name_is_refused_not_cut_short(tmp):
    # C strings end at a NUL: 'r.h5:/a\0junk' was read as r.h5:/a, and
    # messages naming it ended there.
    import h5py
    f = os.path.join(tmp, "r.h5")
    with h5py.File(f, "w") as h:
        h["a"] = np.diag([1.0, 0.0])
    assert basinvol.volume(f + ":/a")[0].ok
    for call in (lambda: basinvol.volume(f + ":/a\0junk"), lambda: basinvol.volume([f, "x\0y.h5"]),
                 lambda: basinvol.rank([f + ":/a\0"]), lambda: basinvol.compare(f + ":/a\0", f + ":/a"),
                 lambda: basinvol.volume(os.fsencode(f) + b"\0"), lambda: basinvol.read_results(f + "\0.jsonl")):
        with pytest.raises(basinvol.UsageError, match="contains a NUL byte"):
            call()
    for kw in (dict(label="a\0b"), dict(name="a\0b")):
        with pytest.raises(basinvol.UsageError, match="contains a NUL byte"):
            basinvol.analyze(np.eye(2), **kw)
    # The writers: h5py cut such a name short and wrote under it.
    for write in (lambda: bx.write_structure(f, "s\0junk", basinvol.Diagonal([1.0])),
                  lambda: bx.write_structure(f + "\0x", "s", basinvol.Diagonal([1.0])),
                  lambda: bx.write_hessian(f, np.eye(2), dataset="h\0junk"),
                  lambda: bx.write_structure(f, "s", {"fc1\0weight": basinvol.Diagonal([1.0])})):
        with pytest.raises(ValueError, match="contains a NUL byte|is not a name an HDF5 group can hold"):
            write()
    with h5py.File(f, "r") as h:
        assert sorted(h) == ["a"]


def test_memory_rule_row_keywords_and_kept_eigenvalues(tmp):
    # The memory budget holds the working set, as the command line's does
    # (n = 400: 2.8 MB in float64, 2.1 MB in float32, over a 2 MB budget).
    for dtype in (np.float64, np.float32):
        H = with_spectrum(np.linspace(1.0, 2.0, 400), 3, dtype)
        f = os.path.join(tmp, "budget-%s.h5" % np.dtype(dtype).name)
        bx.write_hessian(f, H, dtype=np.dtype(dtype).name)
        (ref,) = cli_rows("volume", f, "--max-memory", "2M", status=1)
        want = ref["error"].split(": ", 1)[1].replace("--max-memory", "option max_memory")
        with pytest.raises(basinvol.InputError) as e:
            basinvol.analyze(H, max_memory="2M")
        assert str(e.value) == "memory:/: " + want
        (row,) = basinvol.volume(f, max_memory="2M")
        assert row.error == ref["error"].replace("--max-memory", "option max_memory")
        assert basinvol.analyze(H, max_memory="3M").ok
    # Under an address-space limit (ulimit -v) the budget is what the limit
    # leaves, as on the command line: an error row naming the limit, where
    # the solve would fail for memory (or OpenBLAS, refused its buffer, hang).
    code = ("import resource, sys, numpy as np, basinvol\n"
            "H = np.eye(3000)\n"
            "vm = int(open('/proc/self/statm').read().split()[0]) * 4096\n"
            "resource.setrlimit(resource.RLIMIT_AS, (vm + (300 << 20), resource.RLIM_INFINITY))\n"
            "try:\n"
            "    basinvol.analyze(H)\n"
            "except basinvol.InputError as e:\n"
            "    print(e)\n"
            "(row,) = basinvol.volume(sys.argv[1])\n"
            "print(row.error)\n")
    f = os.path.join(tmp, "eye3000.h5")
    bx.write_hessian(f, np.eye(3000))
    p = subprocess.run([sys.executable, "-c", code, f], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 2, p.stdout
    assert re.fullmatch(r"memory:/: n = 3000 needs about 0\.14\d GB to analyze, out of memory under the "
                        r"address-space limit \(ulimit -v\), which leaves 0\.\d+ GB beside what each job.s BLAS needs "
                        r"\(0\.21 GB\): raise the limit", lines[0]), lines[0]
    cut = lines[0].index("which leaves")  # what is left differs: reading the file mapped more
    assert lines[1].startswith(f + ":/hessian" + lines[0][len("memory:/"):cut]), lines
    # The reserve is counted once per process: OpenBLAS's buffer and the
    # malloc arena the first analysis mapped stay mapped and are reused, so
    # the calls after it fit as the first did (the second was refused).
    code = ("import resource, sys, numpy as np, basinvol\n"
            "H = np.diag(np.linspace(1.0, 2.0, 1500))\n"
            "vm = int(open('/proc/self/statm').read().split()[0]) * 4096\n"
            "resource.setrlimit(resource.RLIMIT_AS, (vm + (300 << 20), resource.RLIM_INFINITY))\n"
            "for _ in range(4):\n"
            "    r = basinvol.analyze(H)\n"
            "    print(r.rank, r.log_volume)\n"
            "for _ in range(2):\n"
            "    (row,) = basinvol.volume(sys.argv[1])\n"
            "    print(row.rank, row.log_volume)\n"
            "try:\n"
            "    basinvol.analyze(np.eye(3000))\n"
            "except basinvol.InputError as e:\n"
            "    print(e)\n")
    f = os.path.join(tmp, "diag1500.h5")
    H = np.diag(np.linspace(1.0, 2.0, 1500))
    bx.write_hessian(f, H)
    p = subprocess.run([sys.executable, "-c", code, f], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 7, p.stdout
    want = basinvol.analyze(H)
    assert lines[:6] == ["%d %r" % (want.rank, want.log_volume)] * 6, lines
    assert "n = 3000 needs about 0.14" in lines[6] and "address-space limit (ulimit -v)" in lines[6], lines[6]
    # label, step, loss and name name a Hessian in memory: refused for files,
    # given to the in-memory side of a comparison.
    with pytest.raises(TypeError, match="'name' names a Hessian analysed from memory"):
        basinvol.volume(f, name="run")
    with pytest.raises(TypeError, match="'step' names a Hessian analysed from memory"):
        basinvol.rank([f], step=5)
    c = basinvol.compare(f, with_spectrum([2.0, 1.0, 0.0], 4), label="mine", step=7)
    assert (c.a.source, c.b.source, c.b.step) == (f + ":/hessian", "mine:/", 7)
    # Both sides in memory: a pair names each; one name for both is refused.
    two = (np.diag([2.0, 1.0, 0.0]), with_spectrum([2.0, 1.0, 0.0], 5))
    c = basinvol.compare(*two, label=("before", "after"), step=(1, None))
    assert (c.a.source, c.b.source, c.a.step, c.b.step) == ("before:/", "after:/", 1, None)
    assert basinvol.compare(*two, label=(None, "after")).a.source == "A:/"
    for kw in (dict(label="mine"), dict(label=("x", "x")), dict(name=("a", "b", "c"))):
        with pytest.raises(basinvol.UsageError, match="alike|pair"):
            basinvol.compare(*two, **kw)
    c = basinvol.compare(*two, name="run1", step=500)  # a run's name and a step hold for both
    assert (c.a.name, c.b.name, c.a.step, c.b.step, c.a.source, c.b.source) == ("run1", "run1", 500, 500, "A:/", "B:/")
    with pytest.raises(basinvol.UsageError, match="A is not a Hessian in memory"):
        basinvol.compare(f, two[1], label=("file", "mine"))
    given_row = basinvol.analyze(np.diag([2.0, 1.0, 0.0])).to_dict()
    # A path or a sparse matrix is not a matrix analyze() reads.
    with pytest.raises(TypeError, match="basinvol.volume"):
        basinvol.analyze(f)
    import scipy.sparse
    with pytest.raises(TypeError, match="toarray"):
        basinvol.analyze(scipy.sparse.eye(3).tocsr())
    # Messages name the matrix as its row does.
    with pytest.raises(basinvol.InputError, match="^mine:/: matrix is empty"):
        basinvol.analyze(np.zeros((0, 0)), label="mine")
    # A saved row's message names its source, as the command line's does.
    with pytest.raises(basinvol.InputError, match="^mine.h5:/x: the row's counts break dim <= n"):
        basinvol.rank([dict(given_row, source="mine.h5:/x", dim=5)])
    # Ranked Results keep their eigenvalues (same label, different matrices).
    given = [basinvol.analyze(np.diag(v), eigenvalues=True) for v in ([3.0, 1.0, 0.0], [3.0, 2.0, 0.0], [1.0, 0.0, 0.0])]
    ranked = basinvol.rank(given)
    assert [r.place for r in ranked] == [1, 2, 3]
    for r in ranked:
        (mine,) = [g for g in given if g.log_volume == r.log_volume]
        assert r.eigenvalues is mine.eigenvalues and r.eigenvalues_complete and r.source == "memory:/"
    assert [r.eigenvalues.tolist() for r in ranked] == [[0.0, 0.0, 1.0], [0.0, 1.0, 3.0], [0.0, 2.0, 3.0]]


def test_a_file_on_a_python_object_left_open_while_another_thread_runs(tmp):
    """h5py's file-object driver (a file on io.BytesIO, as analyze() of a
    structure writes one) runs Python under its interpreter lock. A
    listing's forked child that asked HDF5 about such a file waited forever
    for a lock a parent thread held (until the listing limit, 120 s, then an
    error row blaming the file listed). Run in a child process with a time
    limit."""
    a = checkpoints(tmp, "a.h5", [(0, [5.0, 2.0, 1.0, 0.5])])
    script = f"""
import io, threading, time, h5py, numpy as np, basinvol
f = h5py.File(io.BytesIO(), "w"); f["x"] = np.eye(3)  # left open, as in an earlier cell
stop = threading.Event()
def busy():
    while not stop.is_set():
        pass
thread = threading.Thread(target=busy, daemon=True)
thread.start()
t0 = time.time()
rows = basinvol.volume({a!r})
assert [r.status for r in rows] == ["ok"], [r.error for r in rows]
G = np.random.default_rng(0).standard_normal((5, 40))
for _ in range(5):
    assert basinvol.analyze(basinvol.Factor(G)).rank == 5
stop.set()
assert time.time() - t0 < 60, time.time() - t0
# Joined and closed before the interpreter ends: h5py alone (no basinvol)
# crashes at exit with a file on a Python object and a thread still running.
thread.join()
f.close()
print("ok")
"""
    p = subprocess.run(["/usr/bin/python3", "-c", script], capture_output=True, text=True, timeout=240)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr[-2000:]


def test_solves_and_listings_in_two_threads(tmp):
    """One thread solves arrays (OpenBLAS's worker threads busy) while another
    analyzes structures and files, whose listing forks: the fork's handler
    stops OpenBLAS's workers, so it must wait for the solve. Run in a child
    process with a time limit (the failure was a hang or wrong eigenvalues)."""
    a = checkpoints(tmp, "a.h5", [(0, [5.0, 2.0, 1.0, 0.5])])
    script = f"""
import threading, numpy as np, basinvol
rng = np.random.default_rng(0)
Q, _ = np.linalg.qr(rng.standard_normal((400, 400)))
lam = np.zeros(400); lam[:100] = np.exp(rng.uniform(np.log(1e-3), np.log(1e2), 100))
H = (Q * lam) @ Q.T
ref = basinvol.analyze(H)
want = (ref.rank, ref.negative, ref.log_volume)
assert want[:2] == (100, 0)
got = []
def solves():
    for _ in range(25):
        r = basinvol.analyze(H)
        got.append((r.rank, r.negative, r.log_volume))
def listings():
    for i in range(60):
        basinvol.analyze(basinvol.Diagonal(np.arange(1.0, 50.0)) if i % 2 else {{"a": np.eye(30)}})
        basinvol.volume({a!r})
ts = [threading.Thread(target=solves), threading.Thread(target=listings)]
[t.start() for t in ts]; [t.join() for t in ts]
assert got == [want] * 25, sorted(set(got))
print("ok")
"""
    p = subprocess.run(["/usr/bin/python3", "-c", script], capture_output=True, text=True, timeout=240)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr[-2000:]


def test_concurrent_h5py_in_another_thread(tmp):
    """A thread writing with h5py while volume() and analyze() of structures
    run: listing forks a child, which must not inherit HDF5's lock held by
    that thread (it would wait until the listing limit, 120 s), and reading
    must not be inside HDF5 (not thread-safe) while that thread is: every
    answer is the one given alone."""
    import h5py
    a = checkpoints(tmp, "a.h5", [(0, [5.0, 2.0, 1.0, 0.5]), (100, [5.0, 2.0, 0.0, 0.0])])
    alone = [(r.rank, r.dim, r.log_volume) for r in basinvol.volume(a)]
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            with h5py.File(os.path.join(tmp, f"w{i % 4}.h5"), "w") as f:
                f["x"] = np.zeros((50, 50))
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    t0 = time.perf_counter()
    try:
        for _ in range(30):
            assert [(r.rank, r.dim, r.log_volume) for r in basinvol.volume(a)] == alone
            assert basinvol.analyze(basinvol.Factor(np.ones((2, 5)))).rank == 1
    finally:
        stop.set()
        t.join()
    assert time.perf_counter() - t0 < 60


def test_a_file_still_open_in_h5py_is_read_as_written(tmp):
    """h5py shares this process's HDF5 library: a file it holds open with
    unflushed writes is the one volume() opens. Each row is the matrix
    written (no 'file changed' row from the read's own flush), and the file
    stays whole for the writer, who goes on writing."""
    import h5py
    path = os.path.join(tmp, "open.h5")
    f = h5py.File(path, "w")
    try:
        f["H"] = np.diag([2.0, 1.0, 0.0])
        first = basinvol.volume(path)
        assert [(r.status, r.rank) for r in first] == [("ok", 2)], first[0].error
        bx.write_checkpoint(f, np.diag([4.0, 3.0, 2.0, 0.0]), step=7)
        rows = basinvol.volume(path)
        assert [(r.dataset, r.status, r.rank) for r in rows] == [
            ("/H", "ok", 2), ("/checkpoints/step_00007", "ok", 3)], [r.error for r in rows]
        assert rows[0].log_volume == first[0].log_volume
        assert rows[1].step == 7
        f["G"] = np.eye(2)
    finally:
        f.close()
    with h5py.File(path, "r") as g:
        assert sorted(g) == ["G", "H", "checkpoints"]
        assert np.array_equal(g["checkpoints/step_00007"][()], np.diag([4.0, 3.0, 2.0, 0.0]))


def test_h5py_in_another_thread_waits_for_the_reads_not_the_solves(tmp):
    """volume() holds h5py's lock while it lists and reads, not while it
    solves: a thread reading with h5py throughout is never held up for the
    whole call. Its longest wait between two reads must stay well under the
    call's time, most of which is the solve of a dense n = 1600 (with the
    lock held throughout, that wait was the whole call)."""
    import h5py
    rng = np.random.default_rng(5)
    a = rng.standard_normal((1600, 1600))
    big = os.path.join(tmp, "big.h5")
    with h5py.File(big, "w") as f:
        f["h"] = a + a.T
    small = os.path.join(tmp, "small.h5")
    with h5py.File(small, "w") as f:
        f["x"] = np.arange(10.0)
    started, finished = threading.Event(), threading.Event()
    done_at = []

    def reader():
        started.wait()
        with h5py.File(small, "r") as f:
            while not finished.is_set():
                f["x"][...]
                done_at.append(time.perf_counter())

    t = threading.Thread(target=reader)
    t.start()
    started.set()
    t0 = time.perf_counter()
    rows = basinvol.volume(big, method="dense")
    t1 = time.perf_counter()
    finished.set()
    t.join()
    assert rows[0].ok and rows[0].rank == 1600
    marks = [t0] + [x for x in done_at if t0 <= x <= t1] + [t1]
    longest = max(b - a for a, b in zip(marks, marks[1:]))
    assert longest < 0.5 * (t1 - t0), (longest, t1 - t0)


def test_option_values_of_the_wrong_kind_are_refused_by_name():
    H = np.diag([2.0, 1.0, 0.0])
    for kw, words in [(dict(max_memory=1.5), "max_memory"), (dict(max_memory=True), "max_memory"),
                      (dict(max_memory=""), "max_memory needs a size"), (dict(max_memory=" "), "max_memory needs a size"),
                      (dict(step="abc"), "step must be a number"), (dict(step=True), "step must be a number"),
                      (dict(step=np.array("5")), "step must be a number"),
                      (dict(loss=np.array(True)), "loss must be a number"),
                      (dict(step=1.5), "step must be a whole number"),
                      (dict(step=2 ** 53 + 1), "step must be a whole number under 2\\^53"),
                      (dict(step=float("nan")), "step must be a whole number"),
                      (dict(loss=float("inf")), "loss must be a finite number"),
                      # Slurm's megabytes as text ($SLURM_MEM_PER_NODE), as --max-memory 16384 is refused
                      (dict(max_memory="16384"), "max_memory has no unit: 16384 bytes is no budget"),
                      (dict(max_memory=" 16384"), "max_memory has no unit"),
                      (dict(label=b"x"), "label must be text"), (dict(name=b"x"), "name must be text"),
                      (dict(name=["x"]), "name must be text")]:
        with pytest.raises(basinvol.UsageError, match=words):
            basinvol.analyze(H, **kw)
    assert basinvol.analyze(H, max_memory=16384).rank == 2  # an integer is bytes, as documented
    assert basinvol.analyze(H, max_memory="16384B").rank == 2
    assert basinvol.analyze(H, label=None).source == "memory:/"  # the default, as compare() takes it
    for kw in (dict(step="5"), dict(step=[1]), dict(loss="0.1"), dict(max_memory=True)):  # of the wrong kind: both
        with pytest.raises(basinvol.OptionTypeError):
            basinvol.analyze(H, **kw)
    with pytest.raises(basinvol.UsageError, match="max_memory must be at least 1 byte, got -5$"):
        basinvol.analyze(H, max_memory=-5)
    # True is not 1.0, nor text a number, 0-d numpy arrays of them included.
    for kw in (dict(atol=True), dict(threshold=np.True_), dict(hessian_error=False),
               dict(threshold=np.array("1e-3")), dict(rtol=np.array(b"1e-3")), dict(min_gap=np.array(True)),
               dict(threshold=np.array("1e-3", dtype=object)), dict(atol=__import__("torch").tensor(True)),
               dict(threshold=np.array([True], dtype=object))):
        with pytest.raises(TypeError, match="must be a number, got"):
            basinvol.analyze(H, **kw)
        with pytest.raises(basinvol.UsageError, match="must be a number, got"):  # an option value, both
            basinvol.analyze(H, **kw)
    row = basinvol.analyze(H)
    for tie_tol in (True, np.False_, np.array("1e-6")):  # a 1-nat grid is not what True meant
        with pytest.raises(basinvol.OptionTypeError, match="tie_tol must be a number, got"):
            basinvol.rank([row, row], tie_tol=tie_tol)
        with pytest.raises(TypeError, match="tie_tol must be a number, got"):
            basinvol.compare(row, row, tie_tol=tie_tol)
    assert basinvol.analyze(H, eigenvalues=np.bool_(True)).eigenvalues is not None
    assert basinvol.analyze(H, max_memory=np.int64(10**9)).rank == 2
    assert basinvol.analyze(H, max_memory=2 ** 63 - 1).rank == 2  # exact, not rounded up to 2^63
    with pytest.raises(basinvol.UsageError, match="must be under 8 EiB"):
        basinvol.analyze(H, max_memory=2 ** 63)
    row = basinvol.analyze(H).to_dict()
    with pytest.raises(basinvol.UsageError, match="negatives"):
        basinvol.rank([row, row], negatives="bogus")
    with pytest.raises(basinvol.UsageError, match="negatives"):
        basinvol.compare(row, row, negatives="bogus")
    bad = dict(row, log_volume=float("inf"))
    with pytest.raises(basinvol.InputError, match="'log_volume' is not a finite number"):
        basinvol.compare(bad, row)
    with pytest.raises(basinvol.InputError, match=r"no 'log_volume' \(it is null: a missing value, or NaN"):
        basinvol.rank([dict(row, log_volume=float("nan")), row])


def test_a_dataset_changed_between_listing_and_reading_is_an_error_row_not_a_mix(tmp_path):
    # A training job may rewrite a checkpoint while a batch is under way:
    # the listing's stored type and attributes must still be the dataset's
    # when its values are read (a float32 rewrite analysed under float64's
    # cut, or new values beside the old step and loss_threshold, was an ok
    # row of neither). The listing and the read are the batch's two steps.
    import h5py
    core = basinvol._need_core()
    opts = basinvol._options()
    rng = np.random.default_rng(7)
    q, _ = np.linalg.qr(rng.standard_normal((60, 40)))
    a = (q * np.geomspace(1, 100, 40)) @ q.T
    a = (a + a.T) / 2
    cases = {
        "type": (lambda h: h.create_dataset("h", data=a.astype(np.float32)), "type is no longer the float64"),
        "threshold": (lambda h: (h.create_dataset("h", data=a), h["h"].attrs.__setitem__("loss_threshold", 5.0)),
                      "attributes (step, loss_threshold, ...) are no longer"),
        "step": (lambda h: (h.create_dataset("h", data=2 * a), h["h"].attrs.__setitem__("step", 200)),
                 "attributes (step, loss_threshold, ...) are no longer"),
        "shape": (lambda h: h.create_dataset("h", data=np.eye(80)), "no longer the 60 x 60 matrix"),
    }
    for name, (rewrite, words) in cases.items():
        f = str(tmp_path / (name + ".h5"))
        with h5py.File(f, "w") as h:
            h.create_dataset("h", data=a)
            h["h"].attrs["step"] = 100
            h["h"].attrs["loss_threshold"] = 1.0
        listed = core.list_sources([f])
        with h5py.File(f, "a") as h:
            attrs = dict(h["h"].attrs)
            del h["h"]
            rewrite(h)
            for k, v in attrs.items():
                h["h"].attrs.setdefault(k, v)
        (row,) = basinvol._results(core.analyze_listed(listed, opts))
        assert not row.ok, (name, row.to_dict())
        assert words in row.error and "(the file changed after it was listed)" in row.error, (name, row.error)
        # The file as it now is: analysed afresh, its own numbers.
        (fresh,) = basinvol.volume([f])
        assert fresh.ok, (name, fresh.error)
    # Unchanged between the two steps: the row is the fresh one's.
    f = str(tmp_path / "same.h5")
    with h5py.File(f, "w") as h:
        h.create_dataset("h", data=a)
        h["h"].attrs["epoch"] = np.nan
    (row,) = basinvol._results(core.analyze_listed(core.list_sources([f]), opts))
    assert row.ok and row.rank == 40, row.to_dict()


def test_an_attribute_removed_after_listing_is_an_error_row(tmp_path):
    # A stated error or threshold deleted between the listing and the read:
    # the row under the listed value (1e-5 makes 1e-8 flat: rank 2) was not
    # the file's answer now (rank 3). Only a block's inherited attributes
    # may be absent at the read (their object never had them).
    import h5py
    core = basinvol._need_core()
    opts = basinvol._options()
    for key, value in (("hessian_error", 1e-5), ("loss_threshold", 2.0), ("step", 3)):
        f = str(tmp_path / (key + ".h5"))
        with h5py.File(f, "w") as h:
            h["h"] = np.diag([1.0, 1e-3, 1e-8, 0.0, 0.0])
            h["h"].attrs[key] = value
        listed = core.list_sources([f])
        with h5py.File(f, "a") as h:
            del h["h"].attrs[key]
        (row,) = basinvol._results(core.analyze_listed(listed, opts))
        assert not row.ok, (key, row.to_dict())
        assert "(the file changed after it was listed)" in row.error, (key, row.error)
        (fresh,) = basinvol.volume([f])
        assert fresh.ok and fresh.rank == 3, (key, fresh.to_dict())


def test_a_structure_whose_attributes_changed_after_listing_is_an_error_row(tmp_path):
    # A factor's loss_threshold (or a part's stated error) rewritten between
    # the listing and the read: an ok row under the listed T was neither
    # file's answer.
    import h5py
    core = basinvol._need_core()
    opts = basinvol._options()
    G = np.random.default_rng(3).standard_normal((4, 9))
    for name, change in (("threshold", lambda g: g.attrs.__setitem__("loss_threshold", 100.0)),
                         ("step", lambda g: g.attrs.__setitem__("step", 7)),
                         ("part_error", lambda g: g["d"].attrs.__setitem__("hessian_error", 1e-3))):
        f = str(tmp_path / (name + ".h5"))
        with h5py.File(f, "w") as h:
            g = h.create_group("m")
            g.attrs["structure"] = "blocks"
            g.attrs["loss_threshold"] = 1.0
            k = g.create_group("a")
            k.attrs["structure"] = "factor"
            k["G"] = G
            d = g.create_dataset("d", data=np.array([2.0, 1.0]))
            d.attrs["structure"] = "diagonal"
            d.attrs["hessian_error"] = 1e-9
        listed = core.list_sources([f])
        with h5py.File(f, "a") as h:
            change(h["m"])
        (row,) = basinvol._results(core.analyze_listed(listed, opts))
        assert not row.ok, (name, row.to_dict())
        assert "the structure's attributes (step, loss_threshold, ...) are no longer" in row.error, (name, row.error)
        (fresh,) = basinvol.volume([f])
        assert fresh.ok, (name, fresh.error)
    (same,) = basinvol._results(core.analyze_listed(core.list_sources([f]), opts))
    assert same.ok, same.error


def corrupt_string_length(path, text, length):
    """Sets the length the heap ID of the variable-length string attribute
    holding `text` states (HDF5 1.10 allocates and clears it at the read)."""
    import struct
    with open(path, "rb") as f:
        b = bytearray(f.read())
    heap = b.find(b"GCOL")
    pattern = struct.pack("<IQ", len(text), heap)
    at = b.find(pattern)
    assert heap > 0 and at > 0 and b.find(pattern, at + 1) < 0
    b[at:at + 4] = struct.pack("<I", length)
    with open(path, "wb") as f:
        f.write(bytes(b))


def test_a_string_attribute_stating_a_huge_length_is_read_only_by_the_listing(tmp):
    # A corrupt heap ID states 512 MB for an 11-byte string: HDF5 allocates
    # and clears that twice to read it. The listing (a child process whose
    # memory is capped) meets it and says so; the read that checks the file
    # is unchanged must not read it again here, where nothing caps it. The
    # attribute names no answer: the rows are those of the clean file, less
    # the attribute. A dataset, a blocks member and a Kronecker factor (their
    # structure's walk and their own reads) are read again in this process;
    # so is a member in another file at the path its structure has here.
    import h5py
    path = os.path.join(tmp, "corrupt_attribute.h5")
    with h5py.File(path, "w") as f:
        f.create_dataset("h", data=np.diag([3.0, 2.0, 0.0]))
        f["h"].attrs["comment"] = "hello there"
        g = f.create_group("m")
        g.attrs["structure"] = "blocks"
        g.create_dataset("a", data=np.diag([4.0, 1.0]))
        g["a"].attrs["note"] = "hi again"
        g.create_dataset("b", data=np.diag([5.0, 0.0]))
        k = f.create_group("k")
        k.attrs["structure"] = "kron"
        k.create_dataset("A", data=np.diag([2.0, 1.0]))
        k["A"].attrs["label"] = "kron A label"
        k.create_dataset("B", data=np.diag([3.0, 0.0, 1.0]))
        # A member in another file, at the path of its structure here (/s),
        # with a corrupt attribute of the same name as the structure's own.
        s = f.create_group("s")
        s.attrs["structure"] = "blocks"
        s.attrs["comment"] = "the structure's own comment"
        s["x"] = h5py.ExternalLink("member.h5", "/s")
    with h5py.File(os.path.join(tmp, "member.h5"), "w") as f:
        f.create_dataset("s", data=np.diag([6.0, 0.5]))
        f["s"].attrs["comment"] = "member's"
    clean = os.path.join(tmp, "clean.h5")
    import shutil
    shutil.copy(path, clean)
    corrupt_string_length(path, b"hello there", 512 << 20)
    corrupt_string_length(path, b"hi again", 512 << 20)
    corrupt_string_length(path, b"kron A label", 512 << 20)
    shutil.copy(os.path.join(tmp, "member.h5"), os.path.join(tmp, "clean_member.h5"))
    script = ("import resource, sys, basinvol; rows = basinvol.volume(sys.argv[1]); "
              "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); "
              "print('|'.join('%s %s %r %s' % (r.source, r.status, r.log_volume, r.dim) for r in rows))")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    runs = {}
    for name in (path, clean):
        if name == path:
            corrupt_string_length(os.path.join(tmp, "member.h5"), b"member's", 512 << 20)
        else:
            shutil.copy(os.path.join(tmp, "clean_member.h5"), os.path.join(tmp, "member.h5"))
        p = subprocess.run([sys.executable, "-c", script, name], capture_output=True, text=True, timeout=120, env=env)
        assert p.returncode == 0, p.stderr
        peak, rows = p.stdout.splitlines()
        runs[name] = (int(peak), rows.replace(name, "FILE"))
    assert runs[path][1] == runs[clean][1] and runs[path][1].count(" ok ") == 4, runs
    if not os.environ.get("BASINVOL_SANITIZE"):  # ASan's shadow memory is in the resident set
        assert runs[path][0] < runs[clean][0] + 100 * 1024, runs  # 2 GB more before (kB)


def test_a_band_that_only_lifts_the_upper_row_keeps_the_order():
    # diag(1, 1, 5e-3, 0) under atol 1e-3: dim 1, and a cut a decade up
    # makes 5e-3 flat (dim 2), which only lifts it further over diag(1, 1, 1, 0)
    # (dim 1, settled, smaller volume): no cut within the bands reorders them.
    a = basinvol.analyze(np.diag([1.0, 1.0, 5e-3, 0.0]), atol=1e-3, label="A")
    b = basinvol.analyze(np.diag([1.0, 1.0, 1.0, 0.0]), atol=1e-3, label="B")
    assert (a.dim, a["dim_low"], a["dim_high"], b.dim, b["dim_low"], b["dim_high"]) == (1, 1, 2, 1, 1, 1)
    assert a.log_volume > b.log_volume
    c = basinvol.compare(a, b)
    assert (c.result, c.noise_decides) == ("above", False)
    assert not any("place_uncertain" in r.warnings for r in basinvol.rank([a, b]))
    # The same band on the lower volume lifts it over the other: noise decides.
    low = basinvol.analyze(np.diag([100.0, 100.0, 5e-3, 0.0]), atol=1e-3, label="L")
    assert low.log_volume < b.log_volume
    assert basinvol.compare(low, b).noise_decides
    assert basinvol.compare(low, b).uncertain_by == ["dim"]
    assert all("place_uncertain" in r.warnings and r["uncertain_by"] == ["dim"] for r in basinvol.rank([low, b]))
    # Where the band's lower end is the noise floor (a stated error of 1e-6,
    # tol 1.01e-6) a flat value just under it (0.95e-6) is not in the band,
    # and input noise of the floor's size lifts it over tol: A falls under
    # B. Such a band is not taken as one-sided.
    opts = dict(atol=1.01e-6, hessian_error=1e-6)
    up = basinvol.analyze(np.diag([1.0, 1.0, 1.0, 10.05e-6, 0.95e-6, 0.0, 0.0, 0.0]), label="U", **opts)
    other = basinvol.analyze(np.diag([2.0, 1.0, 1.0, 0.5, 0.0, 0.0, 0.0, 0.0]), label="O", **opts)
    twin = basinvol.analyze(np.diag([1.0, 1.0, 1.0, 10.05e-6, 1.03e-6, 0.0, 0.0, 0.0]), label="T", **opts)
    assert (up.dim, up["dim_low"], up["dim_high"], other["dim_low"], other["dim_high"]) == (4, 4, 5, 4, 4)
    assert basinvol.compare(twin, other).result == "below"
    c = basinvol.compare(up, other)
    assert (c.result, c.noise_decides) == ("above", True)
    assert "dim_lifted 3 is under its band" in c.reason
    assert (up["dim_lifted"], other["dim_lifted"]) == (3, 4)
