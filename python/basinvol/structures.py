"""Structured Hessians (docs/structured.md), as basinvol.analyze() takes them and
basinvol.export.write_structure() writes them. A dict of name -> part is a
block-diagonal Hessian (members in name order); a square array is a dense
block. Arrays may be numpy arrays or torch tensors (detached, moved to the
CPU); their values are not copied here."""
import sys

import numpy as np

__all__ = ["Factor", "Kron", "Diagonal", "as_numpy"]


def resolved(t):
    """A torch tensor with its lazy negation and conjugation bits applied
    (torch's numpy() refuses a tensor that carries one)."""
    for bit, apply in (("is_neg", "resolve_neg"), ("is_conj", "resolve_conj")):
        if getattr(t, bit, lambda: False)():
            t = getattr(t, apply)()
    return t


def as_numpy(x):
    """A numpy array of x; a torch tensor is detached and moved to the CPU
    (sharing memory when it is already there; a lazy negation or conjugation,
    as `z.conj().imag` carries, which numpy cannot share, resolved first)."""
    if type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach"):
        if getattr(getattr(x, "device", None), "type", None) == "meta":
            raise TypeError("a tensor on the meta device holds no values")
        x = resolved(x.detach().cpu()).numpy()
    return np.asarray(x)


def _real(x, what):
    """as_numpy(x), refusing what a Hessian's values cannot be (complex, text,
    objects, booleans, a torch type numpy has not: bfloat16, sparse layouts)."""
    sparse = sys.modules.get("scipy.sparse")
    if sparse is not None and sparse.issparse(x):
        raise TypeError(f"{what}: a scipy.sparse matrix; give its values as a dense array (.toarray())")
    if type(x).__module__.split(".")[0] == "torch" and (
            getattr(x, "is_sparse", False) or str(getattr(x, "layout", "torch.strided")) != "torch.strided"):
        raise TypeError(f"{what}: a sparse tensor ({x.layout}); give its values as a dense tensor (.to_dense())")
    if getattr(getattr(x, "device", None), "type", None) == "meta":
        raise TypeError(f"{what}: a tensor on the meta device holds no values")
    try:
        a = as_numpy(x)
    except TypeError as e:  # torch: "Got unsupported ScalarType BFloat16"
        raise TypeError(f"{what}: {getattr(x, 'dtype', type(x).__name__)} values have no numpy type ({e}); "
                        "give them as float32 or float64") from None
    if a.dtype.kind == "b":  # h5py would store them as an HDF5 enum, which no reader takes for numbers
        raise TypeError(f"{what}: element type bool is not numbers; give them as float32 or float64")
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{what}: element type {a.dtype} is not real numbers")
    return a


def _scale(s, what):
    """float(s), naming the structure when s is not one number (a boolean is
    not one, as the file reader refuses it)."""
    if isinstance(s, (bool, np.bool_, str, bytes)):
        raise TypeError(f"{what} scale must be one number, got {type(s).__name__} {s!r}")
    try:
        return float(s)
    except (TypeError, ValueError, RuntimeError):  # RuntimeError: a torch tensor of several values
        shape = getattr(s, "shape", None)
        held = f"an array of shape {shape}" if shape is not None else f"{type(s).__name__} {s!r}"
        raise TypeError(f"{what} scale must be one number, got {held}") from None


class Factor:
    """H = scale * G^T G with G of m x n (a Gauss-Newton matrix or an empirical Fisher)."""

    def __init__(self, G, scale=1.0):
        self.G, self.scale = _real(G, "Factor G"), _scale(scale, "Factor")


class Kron:
    """H = scale * (A kron B), A of a x a and B of b x b: n = a * b."""

    def __init__(self, A, B, scale=1.0):
        self.A, self.B, self.scale = _real(A, "Kron A"), _real(B, "Kron B"), _scale(scale, "Kron")


class Diagonal:
    """H = diag(values)."""

    def __init__(self, values):
        self.values = _real(values, "Diagonal values")
