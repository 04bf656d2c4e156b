"""basinvol from Python: basin dimension and log-volume of loss Hessians.

    import basinvol
    r = basinvol.analyze(H)                    # numpy array, torch tensor or structured object
    r.dim, r.rank, r.log_volume, r.warnings    # the fields of a JSON row (docs/output.md)
    rows = basinvol.volume("run.h5")           # every Hessian of a file, as `basinvol volume`
    ranked = basinvol.rank(rows)               # place 1 = the largest basin, as `basinvol rank`
    basinvol.compare(ranked[0], ranked[1])     # as `basinvol compare`
    basinvol.read_results("rows.jsonl")        # rows the command line saved

The numbers come from the same C++ code as the command line (the compiled
module basinvol._core); nothing is written to disk. Submodules that need no
compiled code: basinvol.export (Hessians of PyTorch models to HDF5 and the
structured forms), basinvol.plot (spectrum and run plots). docs/python.md.
"""
import contextlib
import io
import json
import os
import re
import sys
import warnings

from .structures import Diagonal, Factor, Kron
from .structures import resolved as _resolved

__all__ = ["analyze", "volume", "rank", "compare", "read_results", "to_dataframe", "Result", "Comparison",
           "Factor", "Kron", "Diagonal", "Error", "InputError", "UsageError", "OptionTypeError", "NumericError",
           "__version__"]

try:
    from . import _core
except ImportError as _missing:  # the pure-Python submodules still work
    _core = None
    _core_problem = _missing

if _core is not None:
    Error, InputError, UsageError, NumericError = _core.Error, _core.InputError, _core.UsageError, _core.NumericError
    __version__ = _core.version()
else:
    class Error(Exception):
        """Base of basinvol's errors."""

    class InputError(Error):
        """The input (a matrix, a file, its values) breaks a rule."""

    class UsageError(Error):
        """An option value that cannot be used."""

    class NumericError(Error):
        """A numerical method failed to give a trustworthy answer."""

    __version__ = "unknown"


class OptionTypeError(UsageError, TypeError):
    """An option value of the wrong kind (text or a boolean for a number, a
    flag that is not True or False, a label that is not text): a UsageError,
    as every option value that cannot be used is, and a TypeError."""


def _no_nul(text, what):
    """text, refused (UsageError) when it holds a NUL byte: no file, dataset
    or label can, and the C strings behind them would end there."""
    if ("\0" if isinstance(text, str) else b"\0") in text:
        raise UsageError(f"{what} {text!r} contains a NUL byte, which no file or dataset name can hold")
    return text


def _need_core():
    if _core is None:
        raise ImportError("basinvol's compiled core (basinvol._core) is not importable: "
                          f"{_core_problem}. Build with -DBASINVOL_PYTHON=ON (docs/python.md); "
                          "basinvol.export and basinvol.plot work without it.")
    return _core


class Result:
    """One Hessian's row: the fields of a `basinvol ... --format json` row, by
    attribute (`r.dim`) or key (`r["dim"]`); `to_dict()` gives the row itself.
    `eigenvalues` is a numpy array (ascending) when asked for (eigenvalues=True),
    else None; `eigenvalues_complete` says whether it holds all n (a partial
    method's hold the ones it computed)."""

    __slots__ = ("_row", "eigenvalues", "eigenvalues_complete")

    def __init__(self, row, eigenvalues=None, eigenvalues_complete=False):
        object.__setattr__(self, "_row", dict(row))
        object.__setattr__(self, "eigenvalues", eigenvalues)
        object.__setattr__(self, "eigenvalues_complete", bool(eigenvalues_complete))

    def __reduce__(self):  # copy, deepcopy, pickle (multiprocessing, joblib)
        return (Result, (self._row, self.eigenvalues, self.eigenvalues_complete))

    def __getattr__(self, name):
        if name.startswith("_"):  # not a field; also keeps copy/pickle probes from recursing
            raise AttributeError(name)
        try:
            return self._row[name]
        except KeyError:
            raise AttributeError(f"a basinvol row has no field {name!r} (fields: {', '.join(self._row)})") from None

    def __setattr__(self, name, value):
        raise AttributeError("basinvol.Result is read-only; use to_dict() for a copy to change")

    def __getitem__(self, name):
        return self._row[name]

    def __contains__(self, name):
        return name in self._row

    def __eq__(self, other):
        return isinstance(other, Result) and self._row == other._row

    def __dir__(self):
        return sorted(set(self._row) | {"to_dict", "keys", "ok", "eigenvalues", "eigenvalues_complete"})

    def keys(self):
        return self._row.keys()

    @property
    def ok(self):
        """True for a successful row (status "ok")."""
        return self._row.get("status") == "ok"

    def to_dict(self):
        """The row as a dict with the JSON row's fields and names (a copy)."""
        return json.loads(json.dumps(self._row))

    def __repr__(self):
        r = self._row
        if not self.ok:
            return f"Result(source={r.get('source')!r}, status='error', error={r.get('error')!r})"
        head = [f"source={r.get('source')!r}", f"n={r.get('n')}", f"dim={r.get('dim')}", f"rank={r.get('rank')}",
                f"negative={r.get('negative')}", f"log_volume={r.get('log_volume')!r}"]
        if r.get("place") is not None:
            head.insert(1, f"place={r['place']}")
        if r.get("warnings"):
            head.append(f"warnings={r['warnings']!r}")
        return "Result(" + ", ".join(head) + ")"


class Comparison:
    """`basinvol compare`'s verdict: result ("above", "below" or "tie": A against
    B), sign (+1, -1, 0), by (what decided: "saddle", "curved", "volume" or
    "tie"), noise_decides, uncertain_by (what noise may decide it by: "dim",
    "log_volume", "negative"), warnings (the mixed_ warnings the pair would
    carry ranked together), reason (one line), and the two rows a and b."""

    _verdict = ("result", "sign", "by", "noise_decides", "uncertain_by", "warnings", "reason")
    __slots__ = _verdict + ("a", "b")

    def __init__(self, verdict, a, b):
        for k in Comparison._verdict:
            object.__setattr__(self, k, verdict.get(k, []) if k in ("uncertain_by", "warnings") else verdict[k])
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)

    def __setattr__(self, name, value):
        raise AttributeError("basinvol.Comparison is read-only")

    def __bool__(self):
        return self.sign > 0

    def __reduce__(self):  # copy and pickle through __init__ (attributes are read-only)
        verdict = {k: getattr(self, k) for k in Comparison._verdict}
        return (Comparison, (verdict, self.a, self.b))

    def __repr__(self):
        return (f"Comparison(result={self.result!r}, by={self.by!r}, noise_decides={self.noise_decides}, "
                f"reason={self.reason!r})")


def _is_bool(v):
    """True, False, or numpy's booleans (numpy.bool_, named "bool" in numpy 2)."""
    return isinstance(v, bool) or type(v).__module__ == "numpy" and type(v).__name__ in ("bool_", "bool")


def _not_a_number(v):
    """Booleans and text, numpy's 0-d arrays of them included: float() takes
    True as 1 and "1e-3" as 0.001, which is not what was meant."""
    dtype = getattr(v, "dtype", None)
    return (_is_bool(v) or isinstance(v, (str, bytes)) or str(dtype) in ("torch.bool", "torch.complex64",
                                                                            "torch.complex128")
            or getattr(dtype, "kind", None) in ("b", "U", "S")
            or getattr(dtype, "kind", None) == "O" and getattr(v, "size", 0) == 1
            and _not_a_number(v.reshape(-1)[0]))


def _options(threshold=None, cut="auto", method="auto", negatives="abs", rtol=None, atol=None, min_gap=1.0,
             hessian_error=None, max_asymmetry=1e-3, regularized=None, max_memory=None, eigenvalues=False,
             list_timeout=None, trust_stored_type=False):
    if max_memory is not None and not isinstance(max_memory, str):
        # Bytes as a whole number (numpy integers too); 1.5 or True are not sizes.
        whole = hasattr(max_memory, "__index__") and not isinstance(max_memory, bool) or (
            isinstance(max_memory, float) and max_memory.is_integer())
        if not whole:
            raise OptionTypeError(f"max_memory must be a size such as '8G' or a whole number of bytes, "
                                  f"got {max_memory!r}")
        if int(max_memory) < 1:  # (said here: the text passed on would show a B not given)
            raise UsageError(f"max_memory must be at least 1 byte, got {max_memory!r}")
        if int(max_memory) >= 2 ** 63:
            raise UsageError(f"max_memory must be under 8 EiB (2^63 bytes), got {max_memory!r}")
        max_memory = f"{int(max_memory)}B"  # bytes, said so: a bare text under 1 GiB is refused (megabytes meant)
    if isinstance(max_memory, str) and not max_memory.strip():  # the command line refuses --max-memory '' too
        raise UsageError(f"max_memory needs a size such as '8G' (None for the default), got {max_memory!r}")
    for k, v in (("threshold", threshold), ("rtol", rtol), ("atol", atol), ("min_gap", min_gap),
                 ("hessian_error", hessian_error), ("max_asymmetry", max_asymmetry), ("regularized", regularized)):
        if _not_a_number(v):
            raise OptionTypeError(f"{k} must be a number, got {v!r}")
    if _is_bool(eigenvalues):  # numpy's too
        eigenvalues = bool(eigenvalues)
    if not isinstance(eigenvalues, bool):
        raise OptionTypeError(f"eigenvalues must be True or False, got {eigenvalues!r}")
    if _is_bool(trust_stored_type):
        trust_stored_type = bool(trust_stored_type)
    if not isinstance(trust_stored_type, bool):
        raise OptionTypeError(f"trust_stored_type must be True or False, got {trust_stored_type!r}")
    if list_timeout is not None:  # seconds a file's structure walk may take (volume, rank, compare of SOURCEs)
        seconds = None if _not_a_number(list_timeout) else list_timeout
        try:
            seconds = float(seconds)
        except (TypeError, ValueError):
            seconds = None
        if seconds is None or not (0 < seconds < float("inf")):
            raise UsageError(f"list_timeout must be a positive number of seconds, got {list_timeout!r}")
        list_timeout = seconds
    return dict(threshold=threshold, cut=cut, method=method, negatives=negatives, rtol=rtol, atol=atol,
                min_gap=min_gap, hessian_error=hessian_error, max_asymmetry=max_asymmetry,
                regularized=regularized, max_memory=max_memory, eigenvalues=bool(eigenvalues),
                list_timeout=list_timeout, trust_stored_type=trust_stored_type)


_fork_guard = []


def _h5py_lock():
    """h5py's lock around every HDF5 call (importing h5py if it is
    installed; None when it is not: nothing else calls HDF5). basinvol holds it while it lists files
    (listing forks: no h5py thread may be inside HDF5 at the fork) and while
    it reads each Hessian (Debian's HDF5 is not thread-safe: h5py and
    basinvol must not be inside it at once), not while it solves: other
    threads' h5py calls wait for the listing and the reads only. A fork of
    this process (os.fork, multiprocessing's fork start method, a
    DataLoader's workers) takes the lock first, so the child never inherits
    it held by a thread it does not have (h5py 3.7 does not reset it)."""
    try:
        from h5py._objects import phil
    except ImportError:
        return None
    if not _fork_guard:
        _fork_guard.append(phil)
        os.register_at_fork(before=phil.acquire, after_in_parent=phil.release, after_in_child=phil.release)
    return phil


@contextlib.contextmanager
def _hdf5_lock():
    """_h5py_lock() held for the block, counted among the reads under way:
    at exit the core waits for them to give the lock back before the
    interpreter finalizes (which takes it), and starts no new one."""
    lock = _h5py_lock()
    if lock is None:
        yield
        return
    core = _need_core()
    core.reads_begin()
    try:
        with lock:
            yield
    finally:
        core.reads_end()


def _analyze_sources(texts, opts, once=False):
    """once (a ranking): a Hessian an earlier SOURCE listed too is left out,
    with a warning, as `basinvol rank` leaves it out."""
    core = _need_core()
    with _hdf5_lock():
        # As bytes: a name that is not UTF-8 (os.listdir's surrogate escapes) is the file's own bytes.
        limit = {} if opts["list_timeout"] is None else {"list_timeout": opts["list_timeout"]}
        listed = core.list_sources([os.fsencode(t) for t in texts], once=once, **limit)
    return _results(core.analyze_listed(listed, opts, _h5py_lock()))


def _results(triples):
    return [Result(json.loads(text), ev, complete) for text, ev, complete in triples]


def _is_torch(x):
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach")


def _as_array(H, label):
    """A numpy view of H (a torch tensor shares its memory when on the CPU)."""
    import numpy as np
    if _is_torch(H):
        t = H.detach()
        if t.layout != sys.modules["torch"].strided:
            raise TypeError(f"{label}: a sparse tensor ({t.layout}); pass H.to_dense()")
        if t.device.type == "meta":
            raise TypeError(f"{label}: a tensor on the meta device holds no values")
        if t.device.type != "cpu":
            t = t.cpu()
        if str(t.dtype) == "torch.bfloat16":  # widened, its rounding would count as curvature
            raise TypeError(f"{label}: tensor type torch.bfloat16 has no numpy type: give H.float() with "
                            "hessian_error at least 2**-8 * float(H.float().norm()), the rounding its values "
                            "carry (a Hessian computed in bfloat16 carries more, and is as asymmetric: "
                            "hessian_of(..., dtype='float32') computes a bfloat16 model's in float32)")
        if str(t.dtype) not in ("torch.float32", "torch.float64"):
            raise TypeError(f"{label}: tensor type {t.dtype} is not float32 or float64 (use H.double())")
        H = _resolved(t).numpy()
    _refuse_masked(H, label)
    if isinstance(H, (list, tuple)) and any((hasattr(x, "shape") and len(x.shape) == 2)
                                            or isinstance(x, (Factor, Kron, Diagonal, dict)) for x in H):
        # several matrices are not one; numpy's message would not say so
        raise TypeError(f"{label}: analyze() takes one matrix (a numpy array or torch tensor) or a structure, "
                        f"got a {type(H).__name__}; basinvol.rank() compares several")
    if H is None:
        raise TypeError(f"{label}: got None, not a matrix (a numpy array or torch tensor) or a structure")
    a = np.asarray(H)
    if a.dtype.kind != "f" or a.dtype.itemsize not in (4, 8):
        raise TypeError(f"{label}: element type {a.dtype} is not float32 or float64 (use H.astype(np.float64))")
    # Read as it is, after the memory budget is checked (reversed and
    # broadcast views); big-endian values, or strides between elements (a
    # field of a record array), are copied once then, the copy counted in it.
    return a


def _is_float16(H):
    """Whether H is a float16 matrix (either byte order), not a structure."""
    import numpy as np
    dtype = getattr(H, "dtype", None)
    if str(dtype) == "torch.float16":
        return True
    return isinstance(dtype, np.dtype) and dtype.kind == "f" and dtype.itemsize == 2


def _refuse_masked(H, label):
    import numpy as np
    if isinstance(H, np.ma.MaskedArray):
        raise TypeError(f"{label}: a masked array (its mask would be ignored); pass H.filled(value) or H.data")


def _check_matrix_shape(H, label):
    """The shape rules of a matrix, worded as the command line's error rows."""
    shape = tuple(H.shape)
    if len(shape) != 2:
        raise InputError(f"{label}:/: not a matrix: {len(shape)} dimension{'' if len(shape) == 1 else 's'} "
                         "(a Hessian is n x n)")
    if shape[0] != shape[1]:
        raise InputError(f"{label}:/: matrix is not square: shape {shape[0]}x{shape[1]}")
    if shape[0] == 0:
        raise InputError(f"{label}:/: matrix is empty: shape 0x0")


def _named_as_matrix(row, label):
    """A float16 matrix's row, read from an image's /hessian, named as an
    in-memory matrix's rows are: label:/ (its message too)."""
    d = dict(row._row)
    inner, outer = f"{label}:/hessian", f"{label}:/"
    if d.get("source") == inner:
        d["source"], d["dataset"] = outer, "/"
    if isinstance(d.get("error"), str) and d["error"].startswith(inner + ":"):
        d["error"] = outer + d["error"][len(inner):]
    return Result(d, row.eigenvalues, row.eigenvalues_complete)


def _structured_image(part, label, attrs, declare=False):
    """An HDF5 file image (bytes) holding `part` as /hessian in the layout of
    docs/structured.md, written in memory, and the bytes its values take.
    With declare, the datasets have their shapes and stored types but no
    values: a few kilobytes whatever their size, for the budget check."""
    import h5py
    from . import export
    buf = io.BytesIO()
    sizes = []
    try:
        with h5py.File(buf, "w") as f:
            export._write_part(f, "hessian", part, None, check=False, declare=declare)
            for k, v in attrs.items():  # as write_structure stores them
                if v is not None:
                    f["hessian"].attrs[k] = export._attribute(k, v)
            f.visititems(lambda _, o: sizes.append(float(o.size) * o.dtype.itemsize)
                         if isinstance(o, h5py.Dataset) else None)
    except ValueError as e:  # a malformed structure: the part's name and the rule broken
        raise InputError(f"{label}: {e}") from None
    except TypeError as e:  # values that are not real numbers (docs/python.md)
        raise TypeError(f"{label}: {e}") from None
    return buf.getvalue(), sum(sizes)


def analyze(H, *, threshold=None, cut="auto", method="auto", negatives="abs", rtol=None, atol=None, min_gap=1.0,
            hessian_error=None, max_asymmetry=1e-3, regularized=None, max_memory=None, eigenvalues=False,
            label="memory", step=None, loss=None, name=None, trust_stored_type=False):
    """Basin dimension and log-volume of one Hessian, as `basinvol volume` computes them.

    H: a square numpy array or torch tensor (float32 or float64; float32 stays
    float32, as a float32 dataset would), or a structured Hessian: Factor(G),
    Kron(A, B), Diagonal(d), or a dict of name -> part (blocks, in name order).
    The options are those of the command line (docs/method.md): threshold
    (-T), cut, method, negatives, rtol, atol, min_gap, hessian_error,
    max_asymmetry, regularized, max_memory ("8G" or bytes), trust_stored_type
    (--trust-stored-type: float64 values at float64's rounding even where
    they look like float32 data, the warning float32_values). eigenvalues=True
    keeps the computed eigenvalues in Result.eigenvalues. label names the
    matrix in messages and the row's source; step, loss and name are stored in
    the row as the HDF5 attributes would be.

    Returns a Result. Raises InputError (the command line's error-row message)
    when the matrix breaks a rule, UsageError for a bad option value, TypeError
    for an element type other than float32/float64 (a float16 matrix is read
    as a float16 dataset would be). The GIL is released during
    the solve; the array is copied once into the solver's working storage
    (LAPACK overwrites its input), never changed."""
    core = _need_core()
    opts = _options(threshold, cut, method, negatives, rtol, atol, min_gap, hessian_error, max_asymmetry,
                    regularized, max_memory, eigenvalues, trust_stored_type=trust_stored_type)
    if label is None:  # the default, as compare(label=(None, "after")) takes it
        label = "memory"
    if not isinstance(label, str):  # str(b"x") is "b'x'", a name nobody gave
        raise OptionTypeError(f"label must be text, got {label!r}")
    label = _no_nul(label, "label")
    if isinstance(H, (str, bytes, os.PathLike)):
        raise TypeError(f"{label}:/: analyze() takes a matrix or a structure, got the path {H!r}; "
                        "basinvol.volume() reads files")
    if isinstance(H, Result) or (isinstance(H, dict) and isinstance(H.get("status"), str)):  # not blocks
        raise TypeError(f"{label}:/: analyze() takes a matrix or a structure, got a result row; "
                        "basinvol.rank() and basinvol.compare() take rows")
    sparse = sys.modules.get("scipy.sparse")
    if sparse is not None and sparse.issparse(H):
        raise TypeError(f"{label}:/: a scipy.sparse matrix is not read as such: give H.toarray(), "
                        "or its structure (Factor, Kron, Diagonal)")
    attrs = {}
    for k, v, conv in (("step", step, float), ("loss", loss, float), ("name", name, str)):
        if v is None:
            continue
        if conv is float and _not_a_number(v):  # as threshold and the others
            raise OptionTypeError(f"{k} must be a number, got {v!r}")
        if conv is str and not isinstance(v, str):  # str(["x"]) is "['x']", a run name nobody gave
            raise OptionTypeError(f"{k} must be text, got {v!r}")
        try:
            attrs[k] = conv(v)
        except TypeError:  # a list, a dict: of the wrong kind
            raise OptionTypeError(f"{k} must be a number, got {v!r}") from None
        except ValueError:
            raise UsageError(f"{k} must be a number, got {v!r}") from None
        if k == "step" and not (attrs[k] == attrs[k] and abs(attrs[k]) < 2 ** 53 and attrs[k] == int(attrs[k])):
            raise UsageError(f"step must be a whole number under 2^53, got {v!r}")
        if k == "loss" and not abs(attrs[k]) < float("inf"):
            raise UsageError(f"loss must be a finite number, got {v!r}")
        if k == "name":
            _no_nul(attrs[k], "name")
    # A float16 matrix is read as a float16 dataset is, from an image (its
    # rounding sets the noise floor: widened, it would count as curvature),
    # and named and checked as the other matrices are (label:/).
    half = _is_float16(H)
    if half:
        _refuse_masked(H, label)
        _check_matrix_shape(H, label)
    if half or isinstance(H, (Factor, Kron, Diagonal, dict)):
        # The budget holds the image and the analysis: checked on the
        # declared shapes before a value is copied into the image.
        declared, image_bytes = _structured_image(H, label, attrs, declare=True)
        with _hdf5_lock():
            listed = core.list_image(declared, label, "/hessian")
        over = core.image_over_budget(listed, opts, image_bytes)
        if over:
            raise InputError(over)
        image, _ = _structured_image(H, label, attrs)
        with _hdf5_lock():
            listed = core.list_image(image, label, "/hessian")
        rows = _results(core.analyze_listed(listed, opts, _h5py_lock()))
        if half:
            rows = [_named_as_matrix(r, label) for r in rows]
    else:
        opts.update(attrs)
        rows = _results([core.analyze_array(_as_array(H, label), opts, label)])
    if len(rows) != 1:
        raise InputError(f"{label}: expected one Hessian, got {len(rows)} rows")
    if not rows[0].ok:
        raise InputError(rows[0].error)
    return rows[0]


def _source_list(sources):
    if isinstance(sources, (str, bytes, os.PathLike)):
        sources = [sources]
    elif (_is_torch(sources) or getattr(getattr(sources, "dtype", None), "kind", "O") in "biufc"
          or isinstance(sources, (Factor, Kron, Diagonal, dict))):
        raise TypeError(f"volume() reads SOURCEs (FILE or FILE:PATH), got {type(sources).__name__}; "
                        "basinvol.analyze() takes a matrix or a structure")
    try:
        sources = list(sources)
    except TypeError:
        raise TypeError(f"volume() takes a SOURCE (FILE or FILE:PATH) or a list of them, got {sources!r}") from None
    for s in sources:
        if not isinstance(s, (str, bytes, os.PathLike)):
            raise TypeError(f"a SOURCE is a path (FILE or FILE:PATH), got {type(s).__name__}")
    return [_no_nul(os.fsdecode(s), "SOURCE") for s in sources]


def volume(sources, **options):
    """Every Hessian of SOURCEs (FILE or FILE:PATH, as on the command line), one
    Result each in order; a source that cannot be read gives an error row
    (Result.ok False, Result.error the message), and the rest go on. Options as
    analyze() (label, step, loss and name excepted: a file's rows take theirs
    from the file), and list_timeout: the seconds a SOURCE's structure walk
    may take (default 120, as --list-timeout) before it is an error row."""
    _check_options(options, True)
    return _analyze_sources(_source_list(sources), _options(**options))


# Row fields that are counts: a DataFrame turns them into floats (and missing ones into NaN).
_COUNTS = {"n", "rank", "dim", "dim_low", "dim_high", "dim_lifted", "negative", "negative_low", "negative_high", "place",
           "place_regularized"}


def _is_row(x):
    return isinstance(x, Result) or (isinstance(x, dict) and "source" in x and "status" in x)


def _row_json(item):
    if isinstance(item, Result):
        item = item._row  # a Result made from a row dict holds what the dict held
    if not isinstance(item, dict):
        raise TypeError(f"not a basinvol row: {type(item).__name__}")

    def clean(k, v):
        if isinstance(v, float) and v != v:
            return None  # NaN: a DataFrame's missing value
        if isinstance(v, float) and v in (float("inf"), float("-inf")):
            raise InputError(f"{item.get('source')}: field '{k}' is not a finite number, got {v}")
        if k in _COUNTS and isinstance(v, float) and v.is_integer():
            return int(v)
        if hasattr(v, "item") and not isinstance(v, (list, dict)):  # numpy scalars
            return clean(k, v.item())
        return v
    return json.dumps({k: clean(k, v) for k, v in item.items()})


# The keywords analyze() takes besides the options (they name a row).
_ROW_KEYWORDS = {"label", "step", "loss", "name"}


def _check_options(options, analysed, in_memory=False):
    """Unknown keywords raise as analyze() would; options given when nothing
    is analysed (every item a row already computed) would be silently
    ignored, and are refused, as `basinvol rank --from-results` refuses them
    (negatives="last", an order, applies to rows), and so are the keywords
    that name a row (label, step, loss, name) when no Hessian in memory is
    analysed."""
    named = sorted(k for k in options if k in _ROW_KEYWORDS)
    if named and not in_memory:
        raise TypeError(f"{named[0]!r} names a Hessian analysed from memory (analyze()); nothing given here "
                        "is one (rows of files take step, loss and name from the file, Results and rows keep theirs)")
    analysis = {k: v for k, v in options.items() if k not in _ROW_KEYWORDS}
    unknown = sorted(set(analysis) - set(_options.__code__.co_varnames[:_options.__code__.co_argcount]))
    if unknown:
        raise TypeError(f"unexpected keyword argument {unknown[0]!r} (the options are analyze()'s)")
    _options(**analysis)
    if analysed:
        return
    ignored = sorted(k for k, v in options.items() if not (k == "negatives" and v == "last"))
    if ignored:
        raise UsageError(f"{', '.join(ignored)}: the rows given were computed already, and these options only "
                         "shape an analysis; give the Hessians themselves to change them")


def _frame_rows(x):
    """A pandas DataFrame of rows (read_results(dataframe=True)) as its row
    dicts, a Series that is one of its rows (indexed by "source" and
    "status", among others) as its dict, any other Series as the list of its
    items (SOURCEs, Results); anything else as it is. (Iterated, a DataFrame
    gives its column names, which would be taken for SOURCEs.)"""
    if type(x).__module__.split(".")[0] == "pandas":
        if type(x).__name__ == "DataFrame":
            return x.to_dict("records")
        if type(x).__name__ == "Series":
            return x.to_dict() if "source" in x.index and "status" in x.index else list(x)
    return x


def _check_tie_tol(tie_tol):
    if _not_a_number(tie_tol):  # True is 1 to float(): a 1-nat grid, not what was meant
        raise OptionTypeError(f"tie_tol must be a number, got {tie_tol!r}")


def _shard_check_row(r):
    """Whether `r` is a ranking's error row for a shard it lacked ("shard I/N",
    no file): checked again when ranked, not kept, as rank --from-results does."""
    file = r["file"] if "file" in r else None
    return (r["status"] if "status" in r else None) == "error" and str(r["source"] if "source" in r else "").startswith("shard") and \
        not (isinstance(file, str) and file)


def _drop_parts(rows):
    """As rank --from-results: --per-block's ok rows of parts beside their
    whole's row (a blocks structure's members "<whole>/<member>", a dense
    Hessian's parameter blocks "<whole>[<name>]"), each a Hessian of its own n,
    are left out of a ranking of the wholes, with a warning."""
    def field(r, name):
        v = r[name] if name in r else None
        return None if isinstance(v, float) and v != v else v

    wholes = {}  # ok rows, by (file, dataset)
    for r in rows:
        if field(r, "status") == "ok" and isinstance(field(r, "dataset"), str) and field(r, "dataset"):
            wholes.setdefault((field(r, "file"), r["dataset"]), r)

    def whole(r, dataset):
        w = wholes.get((field(r, "file"), dataset))
        return w if w is not None and w is not r and (field(w, "n") or 0) > (field(r, "n") or 0) else None

    def part(r):
        d = field(r, "dataset")
        if field(r, "status") != "ok" or not isinstance(d, str) or not d:
            return False
        if d.endswith("]"):  # "<whole>[<name>]", the name holding brackets too
            for i, c in enumerate(d):
                w = whole(r, d[:i]) if c == "[" else None
                if w is not None and not field(w, "structure"):
                    return True
        if "/" not in d:
            return False
        w = whole(r, d[:d.rindex("/")] or "/")  # a member of the root group's "/a"
        return w is not None and field(w, "structure") == "blocks"

    parts = [r for r in rows if part(r)]
    if parts:
        warnings.warn(f"{len(parts)} row(s) are --per-block parts of Hessians ranked here "
                      f"({'e.g. ' if len(parts) > 1 else ''}{parts[0]['source']}), each a Hessian of its own n, "
                      "not a basin among the wholes: left out of the ranking (rank their rows alone to compare "
                      "the parts)", stacklevel=3)
    return [r for r in rows if not part(r)]


def _warn_of_missing_shards(rows):
    """Warns when rows of --shard runs (their `shard`, "I/N", `split`, and
    the rows of their split together, `split_rows`) do not hold every row of
    their split, naming the shards short of their own rows (`shard_rows`: a
    run stopped before it finished) and those with none among them (unless
    the short ones account for every row missing). rank --from-results makes
    them error rows."""
    def field(r, name):  # None for absent, null, or a DataFrame's NaN
        v = r[name] if name in r else None
        return None if isinstance(v, float) and v != v else v

    def count(r, name):  # a whole number from 1, else 0 (the core refuses what is not a count)
        v = field(r, name)
        return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 1 and v == int(v) else 0

    splits = {}
    for r in rows:
        s = field(r, "shard")
        m = re.fullmatch(r"([0-9]+)/([0-9]+)", s) if isinstance(s, str) else None
        i, n = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
        if not (1 <= i <= n) or not count(r, "split_rows") or not isinstance(field(r, "source"), str):
            continue  # not of a --shard run, or a --per-block part
        split = splits.setdefault((n, field(r, "split")),
                                  {"rows": 0, "sources": set(), "shards": {}, "everywhere": set()})
        split["rows"] = max(split["rows"], count(r, "split_rows"))
        split["sources"].add(r["source"])
        if field(r, "status") == "error" and not any(field(r, k) for k in ("n", "stored_type", "structure", "seconds")):
            split["everywhere"].add(r["source"])  # a SOURCE not listed (nothing described): every shard's row
        shard = split["shards"].setdefault(i, [0, set()])
        shard[0] = max(shard[0], count(r, "shard_rows"))
        shard[1].add(r["source"])
    for (n, _), split in sorted(splits.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        held, total = len(split["sources"]), split["rows"]
        if held >= total:
            continue
        short = [(i, min(rows_of, total), len(src | split["everywhere"]))
                 for i, (rows_of, src) in sorted(split["shards"].items())
                 if len(src | split["everywhere"]) < min(rows_of, total)]
        said = [f"shard {i}/{n} holds {got} of its {rows_of} rows (its run was stopped before it finished)"
                for i, rows_of, got in short[:100]]
        if sum(rows_of - got for _, rows_of, got in short) < total - held:
            absent, i = [], 0
            while i < n and len(absent) + len(said) < 100:  # at most len(shards) + 100 steps, whatever n is
                i += 1
                if i not in split["shards"]:
                    absent.append(f"{i}/{n}")
            if absent:
                said.append(f"shard {', '.join(absent)} {'has' if len(absent) == 1 else 'have'} no rows among "
                            "them (results not read, or a run stopped before it wrote any; a shard given no "
                            "Hessians has none)")
        warnings.warn(f"the rows ranked hold {held} of the {total} rows of their split into {n} shards, so the "
                      f"ranking lacks some Hessians: {'; '.join(said) or 'no shard is short of its own rows'}; run "
                      "those shards again (--shard I/N --resume) and read their results again", stacklevel=3)


def rank(results_or_sources, *, tie_tol=1e-6, **options):
    """Ranks basins as `basinvol rank`: fewest curved directions first, then
    the larger log-volume (on a tie_tol grid); error rows last. Items are
    Results, row dicts (read_results, JSON rows), or SOURCE strings/paths,
    which are analysed first with `options` (as analyze()). Returns new
    Results in ranked order with `place` (and `place_uncertain` warnings where
    noise may decide an order); a Result keeps its eigenvalues. A pandas
    DataFrame of rows is taken row by row."""
    _check_tie_tol(tie_tol)
    results_or_sources = _frame_rows(results_or_sources)
    single = isinstance(results_or_sources, (str, bytes, os.PathLike)) or _is_row(results_or_sources)
    if not single and isinstance(results_or_sources, dict):  # its keys would be taken for SOURCEs
        raise TypeError("rank() takes Results, row dicts or SOURCEs, got a dict that is not a row "
                        "(a structure is one Hessian: give basinvol.analyze(it))")
    items = [results_or_sources] if single else list(results_or_sources)
    _check_options(options, any(isinstance(item, (str, bytes, os.PathLike)) for item in items))
    rows, sources = [], []
    for item in items:
        if isinstance(item, (str, bytes, os.PathLike)):
            sources.append(item)  # listed together: a Hessian two of them name is one row
        elif _is_row(item) or (isinstance(item, dict) and ("source" in item or "status" in item)):
            rows.append(item)  # (a row missing a field is refused, naming it)
        else:
            raise TypeError(f"rank() takes Results, row dicts or SOURCEs, got {type(item).__name__} "
                            "(analyse a matrix or structure with basinvol.analyze() first)")
    rows = _drop_parts([r for r in rows if not _shard_check_row(r)])  # of rows given, not of SOURCEs analysed
    if sources:
        rows.extend(_analyze_sources(_source_list(sources), _options(**options), once=True))
    core = _need_core()
    ranked = []
    for i, t in core.rank([_row_json(r) for r in rows],
                          dict(tie_tol=tie_tol, negatives=options.get("negatives", "abs"))):
        r = rows[i]
        ranked.append(Result(json.loads(t), r.eigenvalues, r.eigenvalues_complete) if isinstance(r, Result)
                      else Result(json.loads(t)))
    _warn_of_missing_shards(ranked)  # rows the core took (it refuses a malformed one, naming it)
    return ranked


def _one_row(x, options, which):
    if _is_row(x):
        return x if isinstance(x, Result) else Result(x)
    if isinstance(x, (str, bytes, os.PathLike)):  # label, step, loss and name are the other side's
        rows = volume(x, **{k: v for k, v in options.items() if k not in _ROW_KEYWORDS})
        if len(rows) != 1:
            names = ", ".join(r.source for r in rows[:4]) + (", ..." if len(rows) > 4 else "")
            raise UsageError(f"{which} ({os.fsdecode(x)!r}) names {len(rows)} Hessians ({names}); compare takes one "
                             "each: give FILE:PATH of one")
        if not rows[0].ok:
            raise InputError(rows[0].error)
        return rows[0]
    options = dict(options)
    options.pop("list_timeout", None)  # the other side's SOURCE: nothing here is listed
    options.setdefault("label", which)
    return analyze(x, **options)


def _sides(options, a_in_memory, b_in_memory):
    """compare()'s options for A and for B: label, step, loss and name given
    as a pair (A's, B's) are split between the sides, given once they apply
    to both (a run's name, a step); but one label for two matrices would name
    both rows alike, and is refused, as is a pair of one label. (A side read
    from a file or given as a row keeps its own names: its half of a pair
    must be None.)"""
    a, b = dict(options), dict(options)
    for k in sorted(_ROW_KEYWORDS & set(options)):
        v = options[k]
        if isinstance(v, (tuple, list)):
            if len(v) != 2:
                raise UsageError(f"{k}: a pair (A's, B's) names the two sides, got {len(v)} values")
            for side, value, in_memory in (("A", v[0], a_in_memory), ("B", v[1], b_in_memory)):
                if value is not None and not in_memory:
                    raise UsageError(f"{k}: {side} is not a Hessian in memory and keeps its own {k}; "
                                     f"give None as {side}'s")
            a[k], b[k] = v
            for side_options, value in ((a, v[0]), (b, v[1])):
                if value is None and k == "label":
                    del side_options[k]  # the default, "A" or "B"
        if k == "label" and a_in_memory and b_in_memory and a.get(k, "A") == b.get(k, "B"):
            raise UsageError(f"label={v!r} would name both Hessians alike: give a pair, label=(A's, B's)")
    return a, b


def compare(a, b, *, tie_tol=1e-6, **options):
    """`basinvol compare A B`: does A's basin rank above B's? a and b are each
    a Result, a row dict (one with "source" and "status"), a SOURCE naming one
    Hessian, or anything analyze() takes (analysed with `options`; label,
    step, loss and name as a pair (A's, B's) name each side in memory).
    Returns a Comparison (truthy when A ranks strictly above B)."""
    _check_tie_tol(tie_tol)
    a, b = _frame_rows(a), _frame_rows(b)
    in_memory = any(not _is_row(x) and not isinstance(x, (str, bytes, os.PathLike)) for x in (a, b))
    _check_options(options, not (_is_row(a) and _is_row(b)), in_memory)
    oa, ob = _sides(options, *(not _is_row(x) and not isinstance(x, (str, bytes, os.PathLike)) for x in (a, b)))
    ra, rb = _one_row(a, oa, "A"), _one_row(b, ob, "B")
    verdict = _need_core().compare(_row_json(ra), _row_json(rb),
                                   dict(tie_tol=tie_tol, negatives=options.get("negatives", "abs")))
    return Comparison(verdict, ra, rb)


def read_results(path, *, dataframe=False):
    """The rows of saved basinvol output (JSON Lines, JSON, TSV or CSV, detected
    from the content) as Results; dataframe=True gives a pandas DataFrame
    (to_dataframe) instead. Raises InputError on text that is not basinvol
    output."""
    path = _no_nul(os.fsencode(path), "results file")
    rows = [Result(json.loads(t), ev, complete) for t, ev, complete in _need_core().read_results(path)]
    return to_dataframe(rows) if dataframe else rows


def to_dataframe(results):
    """A pandas DataFrame with one row per Result (or row dict) and the JSON
    row's fields as columns (lists such as warnings stay lists). Needs pandas
    (Debian: python3-pandas)."""
    import pandas as pd
    return pd.DataFrame([r.to_dict() if isinstance(r, Result) else dict(r) for r in results])
