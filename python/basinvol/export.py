"""Export loss Hessians of PyTorch models to HDF5 in basinvol's layout.

Library:

    from basinvol.export import hessian_of, parameter_blocks, write_hessian, write_checkpoint
    H = hessian_of(model, loss_fn, inputs, targets)        # numpy float64, n x n
    write_hessian("h.h5", H, step=100, loss=0.3, blocks=parameter_blocks(model))
    write_checkpoint("run.h5", H, step=100, loss=0.3)       # /checkpoints/step_00100

    # Structured Hessians (docs/structured.md): no n x n matrix anywhere.
    G = gauss_newton_factor(model, inputs, targets, loss="cross_entropy")   # m x n, G^T G = GGN
    write_structure("h.h5", "ggn", Factor(G), step=100)
    write_structure("h.h5", "model", {"0_fc1": Factor(G1), "1_fc2": Kron(A, B), "2_bias": Diagonal(d)})

Command line (no PyTorch needed):

    python3 -m basinvol.export convert H.npy OUT.h5 [--dataset D] [--dtype float32] [--step S] ...
    python3 -m basinvol.export info FILE.h5

Needs Debian's python3-numpy and python3-h5py; hessian_of and parameter_blocks
also need python3-torch. See docs/python.md.
"""
import argparse
import math
import os
import sys

import h5py
import numpy as np

from .structures import Diagonal, Factor, Kron, _real, as_numpy

__all__ = ["hessian_of", "parameter_blocks", "write_hessian", "write_checkpoint", "checkpoint_name",
           "read_blocks", "CHUNK_FROM", "Factor", "Kron", "Diagonal", "write_structure",
           "gauss_newton_factor", "empirical_fisher_factor", "kfac_blocks"]

# Square datasets of at least this many rows are written chunked and gzip-compressed.
CHUNK_FROM = 1024


def _functional_call(model, tensors, args):
    import warnings
    try:
        from torch.func import functional_call  # torch >= 2.0
    except ImportError:
        from torch.nn.utils.stateless import functional_call  # torch 1.13 (Debian 12)
    with warnings.catch_warnings():
        # A tied weight is given under each of its names, as one tensor: torch
        # 1.13 would otherwise leave the second module its own weight.
        warnings.filterwarnings("ignore", message="functional_call was passed multiple values for tied weights")
        return functional_call(model, tensors, args)


def parameter_blocks(model):
    """Where each parameter tensor sits in the flat parameter vector.

    Returns a dict of equal-length lists: names, offsets, sizes, shapes (tuples),
    in model.parameters() order, which is the row/column order of hessian_of."""
    names, offsets, sizes, shapes = [], [], [], []
    offset = 0
    for name, p in model.named_parameters():
        names.append(name)
        offsets.append(offset)
        sizes.append(p.numel())
        shapes.append(tuple(p.shape))
        offset += p.numel()
    return {"names": names, "offsets": offsets, "sizes": sizes, "shapes": shapes}


def _torch_dtype(dtype):
    """torch's float32 or float64 for "float32"/"float64" (or the torch or
    numpy dtype itself); ValueError for anything else."""
    import torch
    name = str(dtype).replace("torch.", "")
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return getattr(torch, name)


def _check_batch(inputs, what="inputs"):
    """The batch as one tensor (N, ...): a DataLoader or an array is refused
    with what to give instead."""
    import torch
    if not torch.is_tensor(inputs):
        raise TypeError(f"{what} must be one torch tensor holding the batch (N, ...), got {type(inputs).__name__}"
                        " (concatenate a DataLoader's batches with torch.cat, or torch.as_tensor an array)")


def hessian_of(model, loss_fn, inputs, targets, dtype="float64", vectorize=False):
    """The full Hessian of loss_fn(model(inputs), targets) in the model's parameters.

    Rows and columns follow model.parameters() order, each tensor flattened
    row-major (see parameter_blocks). The model is not modified: parameters,
    floating-point buffers, inputs and floating-point targets are cast to
    `dtype` ("float64" by default; None keeps the model's own type, and casts
    floating inputs and targets to it when its parameters share one) and the
    model is called functionally. Returns an n x n numpy array of that type
    (float64 by default; float32 for "float32", which write_hessian then
    stores as float32: its rounding is float32's; a bfloat16 model's, under
    None, widened to float32, its rounding no longer told: give
    write_hessian the tensor itself, or hessian_error).

    The cost is n reverse-mode passes (vectorize=True batches them with vmap)
    and n^2 floats of memory: meant for models up to some thousands of
    parameters. Frozen parameters (requires_grad False) are included;
    parameters shared between modules count once."""
    import torch
    tdtype = None if dtype is None else _torch_dtype(dtype)
    _check_batch(inputs)
    _refuse_dropout(model, "hessian_of")
    named = list(model.named_parameters())
    if not named:
        raise ValueError("the model has no parameters")

    def cast(t, to=tdtype):
        # A copy always: a BatchNorm in train() writes its running statistics
        # (and counter) into the buffers it is called with.
        if to is not None and torch.is_tensor(t) and t.is_floating_point():
            return t.detach().to(to).clone()
        return t.detach().clone() if torch.is_tensor(t) else t

    # Under None, floating inputs and targets take the model's own type (one
    # type of floating parameter; a model of mixed types leaves them as given).
    own = {p.dtype for _, p in named if p.is_floating_point()}
    io_dtype = tdtype if tdtype is not None else (next(iter(own)) if len(own) == 1 else None)
    flat0 = torch.cat([cast(p).reshape(-1) for _, p in named])
    x = cast(inputs, io_dtype)
    y = cast(targets, io_dtype)
    sizes = [p.numel() for _, p in named]
    shapes = [p.shape for _, p in named]
    keys, buffers = _names_of(model, named, cast)

    def loss_of(flat):
        tensors = dict(buffers)
        for names, piece, shape in zip(keys, torch.split(flat, sizes), shapes):
            value = piece.view(shape)  # one tensor for all aliases of a tied weight
            for k in names:
                tensors[k] = value
        return loss_fn(_functional_call(model, tensors, (x,)), y)

    H = torch.autograd.functional.hessian(loss_of, flat0, vectorize=vectorize).detach().cpu()
    # numpy has no bfloat16 (a bfloat16 model under dtype None): widened to float32.
    return (H.float() if H.dtype == torch.bfloat16 else H).numpy()


def _names_of(model, named, cast):
    """Every name under which each parameter of `named` appears (tied weights
    appear under several), and every buffer by name, through cast()."""
    aliases = {id(p): [] for _, p in named}
    buffers = {}
    for prefix, mod in model.named_modules(remove_duplicate=False):
        for k, p in mod._parameters.items():
            if p is not None:
                aliases[id(p)].append(f"{prefix}.{k}" if prefix else k)
        for k, b in mod._buffers.items():
            if b is not None:
                buffers[f"{prefix}.{k}" if prefix else k] = cast(b)
    return [aliases[id(p)] for _, p in named], buffers


def checkpoint_name(step, group="checkpoints"):
    """The dataset path of a checkpoint: checkpoints/step_00100 (5 digits, zero-padded)."""
    step = int(step)
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return f"{group.strip('/')}/step_{step:05d}" if group else f"step_{step:05d}"


def _no_nul(text, what):
    """text, refused when it holds a NUL byte: h5py would cut the name there
    and write somewhere else than asked, without a word."""
    if ("\0" if isinstance(text, str) else b"\0") in text:
        raise ValueError(f"{what} {text!r} contains a NUL byte, which no file or HDF5 name can hold")
    return text


def _open(target, mode):
    if isinstance(target, (h5py.File, h5py.Group)):
        return target, False
    if isinstance(target, (str, bytes, os.PathLike)):
        _no_nul(os.fspath(target), "the file name")
    return h5py.File(target, mode), True


def _letters(name):
    """Letters and digits only, in lower case: 'Loss-Threshold ' is 'lossthreshold'."""
    return "".join(c for c in name.lower() if c.isalnum())


def _edits(a, b):
    """Edit distance, a letter inserted, dropped, changed or two neighbours
    swapped costing one each (as basinvol's reader counts a misspelling)."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


def _attribute(key, v):
    """v as an HDF5 attribute value: a one-element tensor or numpy scalar as
    its number; numbers must be finite and integers fit int64."""
    if hasattr(v, "detach") and hasattr(v, "numel"):  # a torch tensor
        if v.numel() != 1:
            raise ValueError(f"attribute {key} must be one number, got a tensor of {v.numel()} values")
        v = v.detach().cpu().item()
    if isinstance(v, np.generic) or (isinstance(v, np.ndarray) and v.size == 1 and key == "loss_threshold"):
        v = v.item()  # (one value, as basinvol reads a one-element attribute)
    if key.lower() in ("hessian_error", "loss_threshold") and key != key.lower():
        raise ValueError(f"attribute {key}: basinvol reads {key.lower()}, in lower case")
    for meant in ("hessian_error", "loss_threshold"):
        if key != meant and _edits(_letters(key), _letters(meant)) <= 2:
            raise ValueError(f"attribute {key!r}: basinvol reads {meant} (spelled so, in lower case)")
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"attribute {key} is not finite: {v}")
    if isinstance(v, int) and not isinstance(v, bool) and not -2**63 <= v < 2**63:
        raise ValueError(f"attribute {key} = {v} does not fit a 64-bit integer")
    if isinstance(v, np.ndarray) and v.dtype.kind in "fc" and not np.all(np.isfinite(v)):
        raise ValueError(f"attribute {key} has non-finite values")
    if key == "loss_threshold" and (isinstance(v, bool) or (isinstance(v, (int, float)) and not v > 0)):
        raise ValueError(f"attribute loss_threshold must be a positive number, got {v!r}")
    if isinstance(v, (dict, set)):
        raise ValueError(f"attribute {key} must be a number, a string or an array, got a {type(v).__name__}")
    return v


def _replace(f, path, write):
    """Writes a new object with write(group, name) under a temporary name
    beside `path`, then moves it into place: a write that fails leaves the
    file as it was. A group that is not a structure (a collection of
    checkpoints) is never replaced."""
    parent, _, name = _no_nul(path, "the dataset name").strip("/").rpartition("/")
    if not name:
        raise ValueError(f"the dataset name {path!r} is empty")
    g = f.require_group(parent) if parent else f
    if name in g and isinstance(g[name], h5py.Group) and "structure" not in g[name].attrs:
        raise ValueError(f"{g[name].name} is a group of other objects, not a Hessian: give another name")
    tmp = f".{name}.basinvol-writing"
    if tmp in g:
        del g[tmp]
    try:
        write(g, tmp)
    except BaseException:
        if tmp in g:
            del g[tmp]
        raise
    if name in g:
        del g[name]
    g.move(tmp, name)
    return g[name].name


def _replace_in(target, mode, path, write):
    """_replace in `target` (a file name, opened in `mode` and closed after,
    or an open h5py File or Group)."""
    f, close = _open(target, mode)
    try:
        return _replace(f, path, write)
    finally:
        if close:
            f.close()


def _check_blocks(blocks, n):
    """Parameter blocks as basinvol reads them: one length, sizes > 0, each
    inside [0, n), in order without overlap, names non-empty and distinct."""
    names, offsets, sizes = list(blocks["names"]), list(blocks["offsets"]), list(blocks["sizes"])
    if not len(names) == len(offsets) == len(sizes):
        raise ValueError("parameter blocks: names, offsets and sizes must have one length")
    end = 0
    for nm, off, sz in zip(names, offsets, sizes):
        off, sz = int(off), int(sz)
        if sz <= 0 or off < end or off + sz > n:
            raise ValueError(f"parameter block {nm!r} (offset {off}, size {sz}) must lie after the previous one "
                             f"and inside the Hessian's n = {n}")
        end = off + sz
    if any(not str(nm) for nm in names) or len(set(map(str, names))) != len(names):
        raise ValueError("parameter block names must be non-empty and distinct")


def write_hessian(path, H, dataset="hessian", dtype="float64", blocks=None, mode="a", **attrs):
    """Writes the square matrix H to `dataset` in the HDF5 file `path`.

    path: a file name (opened with `mode`, "a" by default: created if missing,
    other datasets kept) or an open h5py File/Group. An existing dataset of the
    same name is replaced. dtype: "float64" or "float32" (the stored type fixes
    basinvol's default cut and noise floor, so keep float64 unless the file
    size matters). Values are never stored in a finer type than their own:
    float32 values stay float32 under "float64", float16 values float16
    under either; they carry that type's rounding, which widened would count
    as curvature. A bfloat16 tensor (numpy has no bfloat16) is stored as
    float32 with its rounding, 2^-8 * ||H||_F plus its subnormals', in
    hessian_error (at least that when hessian_error is given).
    n >= CHUNK_FROM is written chunked (bands of rows) with shuffle+gzip.
    blocks: parameter_blocks(model), stored as the attributes param_names,
    param_offsets, param_sizes and param_shapes. Other keyword arguments become
    attributes; basinvol reads step, loss, loss_threshold, hessian_error and
    name, and None values are skipped. Unless given, hessian_error is recorded
    as ||H - H^T||_F of the H passed in: the computed Hessian's own error
    (autograd in float64: ~1e-13 relative), which raises basinvol's noise
    floor even when the matrix is symmetrized later. Returns the dataset path."""
    H, rounding = _widened(H)
    if problem := _matrix_problem(H):
        raise ValueError(problem)
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    n = H.shape[0]
    H64 = None
    if attrs.get("hessian_error") is None:
        H64 = H.astype(np.float64, copy=False)
        asym = float(np.linalg.norm(H64 - H64.T))
        attrs["hessian_error"] = asym if asym > 0 else None
    if rounding is not None:
        H64 = H.astype(np.float64, copy=False) if H64 is None else H64
        stated = attrs.get("hessian_error")
        try:
            usable = stated is None or (math.isfinite(float(stated)) and float(stated) >= 0)
        except (TypeError, ValueError):
            usable = False  # refused below, as it would be without the rounding
        if usable:
            attrs["hessian_error"] = max(rounding(H64), 0.0 if stated is None else float(stated))
    with np.errstate(over="ignore"):
        data = H.astype(_stored_type(H.dtype, dtype))
    _check_range("the Hessian", data, H)
    kw = {}
    if n >= CHUNK_FROM:
        rows = max(1, min(n, (1 << 20) // (n * data.itemsize)))  # ~1 MiB chunks of whole rows
        kw = dict(chunks=(rows, n), compression="gzip", compression_opts=4, shuffle=True)
    if blocks is not None:
        _check_blocks(blocks, n)
    attrs = {k: _attribute(k, v) for k, v in attrs.items() if v is not None}

    def write(g, name):
        d = g.create_dataset(name, data=data, **kw)
        if blocks is not None:
            d.attrs["param_names"] = np.array([str(s) for s in blocks["names"]], dtype=h5py.string_dtype())
            d.attrs["param_offsets"] = np.asarray(blocks["offsets"], dtype=np.int64)
            d.attrs["param_sizes"] = np.asarray(blocks["sizes"], dtype=np.int64)
            if blocks.get("shapes") is not None:
                d.attrs["param_shapes"] = np.array([",".join(str(k) for k in s) for s in blocks["shapes"]],
                                                   dtype=h5py.string_dtype())
        for k, v in attrs.items():
            d.attrs[k] = v

    return _replace_in(path, mode, dataset, write)


def write_checkpoint(path, H, step, loss=None, group="checkpoints", dtype="float64", blocks=None, **attrs):
    """Appends H as `group`/step_NNNNN (e.g. checkpoints/step_00100) to the file `path`.

    Sets the attributes step and loss (and any others given). Name order is
    step order for steps below 100000. `basinvol rank FILE` then ranks every
    checkpoint. Returns the dataset path."""
    if isinstance(step, (bool, np.bool_)) or not float(step).is_integer():
        raise ValueError(f"step must be a whole number, got {step!r}")
    return write_hessian(path, H, dataset=checkpoint_name(step, group), dtype=dtype, blocks=blocks,
                         mode="a", step=int(step), loss=loss, **attrs)


def read_blocks(dataset):
    """The parameter blocks stored on an h5py dataset by write_hessian, or None."""
    a = dataset.attrs
    if "param_offsets" not in a:
        return None
    dec = lambda s: s.decode() if isinstance(s, bytes) else str(s)
    offsets = [int(v) for v in np.atleast_1d(a["param_offsets"])]
    sizes = [int(v) for v in np.atleast_1d(a.get("param_sizes", []))]
    names = [dec(s) for s in np.atleast_1d(a["param_names"])] if "param_names" in a else \
        [f"block {i}" for i in range(len(offsets))]
    return {"names": names, "offsets": offsets, "sizes": sizes,
            "shapes": [tuple(int(k) for k in dec(s).split(",") if k) for s in np.atleast_1d(a["param_shapes"])]
            if "param_shapes" in a else None}


# --- structured Hessians (docs/structured.md) ---

def _matrix_problem(H):
    """Why the numpy array H is no Hessian to write (None when it is one)."""
    if H.ndim != 2 or H.shape[0] != H.shape[1] or H.shape[0] == 0:
        return f"a Hessian must be a non-empty square 2-D array, got shape {H.shape}"
    if H.dtype.kind not in "fiub":
        return f"a Hessian must hold real numbers, got {H.dtype}"
    if not np.all(np.isfinite(H)):
        return f"the Hessian has non-finite entries: {_first_non_finite(H)}"
    return None


def _first_non_finite(a):
    """The first non-finite value of a and where it is, as analyze() names it."""
    if a.ndim == 0:
        return str(a)
    at = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
    return f"{a[at]} at [{', '.join(map(str, at))}]"


def _check_finite(name, a, check=True):
    if check and not np.all(np.isfinite(a)):
        raise ValueError(f"{name} has non-finite entries: {_first_non_finite(np.asarray(a))}")


def _check_range(name, stored, values):
    """Finite values that overflowed the stored type (1e39 as float32) are
    refused here, naming the largest: the file would hold inf, which the
    array `values` never did."""
    if stored.dtype.kind == "f" and not np.all(np.isfinite(stored)):
        values = np.asarray(values)
        at = np.unravel_index(int(np.argmax(np.abs(values))), values.shape)
        raise ValueError(f"{name} has values past the range of {stored.dtype}: {float(values[at]):.4g} at "
                         f"{list(map(int, at))} ({stored.dtype} holds magnitudes up to "
                         f"{np.finfo(stored.dtype).max:.4g}); store it as float64")


def _stored_type(own, dtype):
    """The type values of type `own` are stored in under `dtype` ("float64",
    "float32", or None: their own, as h5py would store them): never a float
    type finer than their own, whose rounding the stored type tells
    basinvol's noise floor (widened, that rounding would count as
    curvature)."""
    own = np.dtype(own)
    if dtype is None or (own.kind == "f" and own.itemsize < np.dtype(dtype).itemsize):
        return own
    return np.dtype(dtype)


def _widened(H):
    """H as a numpy array, and None; a bfloat16 tensor (numpy has no
    bfloat16) as float32 with a function of its float64 values giving the
    bound on its rounding: 2^-8 relative per entry, 2^-134 absolute under
    bfloat16's smallest normal (its subnormal step is 2^-133)."""
    if type(H).__module__.split(".")[0] == "torch" and str(getattr(H, "dtype", "")) == "torch.bfloat16":
        H = as_numpy(H.detach().float())
        return H, lambda H64: 2.0 ** -8 * float(np.linalg.norm(H64)) + H64.size * 2.0 ** -134
    return as_numpy(H), None


def _typed(a, dtype, name):
    """a in the stored type (_stored_type)."""
    if _stored_type(np.asarray(a).dtype, dtype) == np.asarray(a).dtype:
        return a
    with np.errstate(over="ignore"):  # an overflow is refused below, with the part's name
        stored = a.astype(_stored_type(a.dtype, dtype))
    if np.all(np.isfinite(a)):
        _check_range(name, stored, a)
    return stored


def _put(g, name, a, dtype, what, declare):
    """Dataset `name` of `a` in its stored type (_typed); with declare, its
    shape and stored type only, no values (nothing copied or allocated)."""
    if declare:
        return g.create_dataset(name, shape=a.shape, dtype=_stored_type(a.dtype, dtype))
    return g.create_dataset(name, data=_typed(a, dtype, what))


def _write_part(g, name, part, dtype, check=True, shown=None, above=(), declare=False):
    shown = name if shown is None else shown  # the name messages give (name is where it is written)
    if isinstance(part, dict):
        if not part:
            raise ValueError(f"blocks {shown!r} has no members")
        if any(part is outer for outer in above):
            raise ValueError(f"blocks {shown!r} contains itself (a cycle)")
        above = above + (part,)
        sub = g.create_group(name)
        sub.attrs["structure"] = "blocks"
        for k in part:  # basinvol reads members in name order: name them so that it is parameter order
            if not isinstance(k, str):
                raise ValueError(f"blocks {shown!r}: member names must be strings (read in name order), "
                                 f"got {type(k).__name__} {k!r}")
            if k in ("", ".", "..") or "/" in k or "\0" in k:
                raise ValueError(f"blocks {shown!r}: member name {k!r} is not a name an HDF5 group can hold")
            # Named by its keys' path below the whole ("fc2/w"): a key used in two blocks tells which.
            _write_part(sub, k, part[k], dtype, check, shown=f"{shown}/{k}" if len(above) > 1 else k, above=above,
                        declare=declare)
        return sub
    if isinstance(part, (Factor, Kron)) and not (math.isfinite(part.scale) and part.scale != 0):
        raise ValueError(f"{'factor' if isinstance(part, Factor) else 'kron'} {shown!r}: scale must be a finite "
                         f"nonzero number, got {part.scale}")
    if isinstance(part, Factor):
        if part.G.ndim != 2 or 0 in part.G.shape:
            raise ValueError(f"factor {shown!r}: G must be a non-empty 2-D array, got shape {part.G.shape}")
        _check_finite(f"factor {shown!r}", part.G, check)
        sub = g.create_group(name)
        sub.attrs["structure"] = "factor"
        sub.attrs["scale"] = part.scale
        _put(sub, "G", part.G, dtype, f"factor {shown!r}", declare)
        return sub
    if isinstance(part, Kron):
        for k, m in (("A", part.A), ("B", part.B)):
            if m.ndim != 2 or m.shape[0] != m.shape[1] or m.size == 0:
                raise ValueError(f"kron {shown!r}: {k} must be non-empty and square, got shape {m.shape}")
            _check_finite(f"kron {shown!r} {k}", m, check)
        sub = g.create_group(name)
        sub.attrs["structure"] = "kron"
        sub.attrs["scale"] = part.scale
        _put(sub, "A", part.A, dtype, f"kron {shown!r} A", declare)
        _put(sub, "B", part.B, dtype, f"kron {shown!r} B", declare)
        return sub
    if isinstance(part, Diagonal):
        if part.values.ndim != 1 or part.values.size == 0:
            raise ValueError(f"diagonal {shown!r} must be a non-empty 1-D array, got shape {part.values.shape}")
        _check_finite(f"diagonal {shown!r}", part.values, check)
        d = _put(g, name, part.values, dtype, f"diagonal {shown!r}", declare)
        d.attrs["structure"] = "diagonal"
        return d
    H = _real(part, f"dense block {shown!r}")
    if H.ndim != 2 or H.shape[0] != H.shape[1] or H.size == 0:
        raise ValueError(f"dense block {shown!r} must be non-empty and square, got shape {H.shape}")
    _check_finite(f"dense block {shown!r}", H, check)
    return _put(g, name, H, dtype, f"dense block {shown!r}", declare)


def write_structure(path, dataset, part, dtype="float64", mode="a", check=True, **attrs):
    """Writes a structured Hessian to `dataset` of the HDF5 file `path`.

    part: Factor(G, scale), Kron(A, B, scale), Diagonal(values), a dense square
    array, or a dict of name -> part for a block-diagonal Hessian (members are
    read in name order: name them so that name order is parameter order, e.g.
    "00_fc1.weight"). Dicts nest. Keyword arguments become attributes of the
    whole (step, loss, loss_threshold, name, hessian_error); None values are
    skipped. An existing object of the same name is replaced. check=False
    skips the finite-value checks (basinvol checks again when it reads).
    dtype=None stores each array in its own type, as h5py would (the
    structure's stored type is then the coarsest of its parts'); no array is
    stored in a float type finer than its own (its rounding is its type's).
    Returns its path."""
    if dtype not in ("float64", "float32", None):
        raise ValueError(f"dtype must be 'float64', 'float32' or None (each array's own), got {dtype!r}")
    if attrs.get("blocks") is not None:
        raise ValueError("blocks= names the parameter blocks of a dense Hessian (write_hessian); a structure's "
                         "blocks are a dict of name -> part, given as `part`")
    for k in attrs:
        if k.lower().replace("_", "") in ("scale", "scaling", "scales", "scalingfactor", "scalefactor"):
            raise ValueError(f"attribute {k}: a structure's scale is Factor(G, scale) or Kron(A, B, scale)")
    attrs = {k: _attribute(k, v) for k, v in attrs.items() if v is not None}

    def write(g, name):
        obj = _write_part(g, name, part, dtype, check, shown=dataset.strip("/").rpartition("/")[2])
        for k, v in attrs.items():
            obj.attrs[k] = v

    return _replace_in(path, mode, dataset, write)


def _refuse_dropout(model, who):
    """A dropout layer in train() draws a new mask at every call: the matrix
    would be of random masks, a different one at each call (and within one
    Hessian, one per pass), silently."""
    import torch
    for name, mod in model.named_modules():
        # (attention's and a stacked RNN's dropout are numbers, not modules of their own)
        p = (mod.p if isinstance(mod, torch.nn.modules.dropout._DropoutNd) else
             mod.dropout if isinstance(mod, torch.nn.MultiheadAttention) else
             mod.dropout if isinstance(mod, torch.nn.RNNBase) and mod.num_layers > 1 else 0)
        if mod.training and p > 0:
            raise ValueError(f"{who}: {name!r} drops units at random in train() mode (p = {p}): its "
                             "derivatives would be of random masks, a new one at each call; put the model in "
                             "eval() mode")


def _refuse_batch_statistics(model, who, instead):
    """A batch norm normalizing with batch statistics makes each sample's
    output depend on the others: per-sample factors computed one sample (or
    one batch of one) at a time are of a different function."""
    import torch
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm) and (mod.training or not mod.track_running_stats):
            raise ValueError(f"{who}: {name!r} normalizes with batch statistics, which mix the samples; "
                             f"its per-sample factors do not hold (put the model in eval() mode, or use {instead})")


def _flat_model(model, dtype):
    """The parameters as one flat tensor in model.parameters() order (cast to
    dtype), and call(flat, x) running the model functionally with them."""
    import torch
    tdtype = _torch_dtype(dtype)
    named = list(model.named_parameters())
    if not named:
        raise ValueError("the model has no parameters")
    shapes = [p.shape for _, p in named]
    sizes = [p.numel() for _, p in named]
    flat0 = torch.cat([p.detach().to(tdtype).reshape(-1) for _, p in named])
    # A tied weight is one piece of flat under each of its names; buffers are
    # copies (a BatchNorm in train() writes into the ones it is called with).
    keys, buffers = _names_of(model, named, lambda b: (b.detach().to(tdtype) if b.is_floating_point()
                                                       else b.detach()).clone())

    def call(flat, x):
        tensors = {k: b.clone() for k, b in buffers.items()}
        for names, piece, shape in zip(keys, torch.split(flat, sizes), shapes):
            for k in names:
                tensors[k] = piece.view(shape)
        x = x.detach().to(tdtype) if x.is_floating_point() else x.detach()
        return _functional_call(model, tensors, (x,))

    return flat0, call


def _output_jacobian(model, inputs, dtype):
    """Per-sample output Jacobian J (N, k, n) in model.parameters() order, and
    the outputs in their own shape (N, ...; k their size per sample)."""
    import torch
    _check_batch(inputs)
    flat0, call = _flat_model(model, dtype)

    def outputs(flat):
        out = call(flat, inputs)
        return out.reshape(out.shape[0], -1)

    out = call(flat0, inputs).detach()
    J = torch.autograd.functional.jacobian(outputs, flat0)  # (N, k, n)
    return J.detach(), out


def gauss_newton_factor(model, inputs, targets, loss="mse", dtype="float64"):
    """G (m x n, numpy) whose G^T G is the Gauss-Newton matrix of the mean loss:
    sum_i J_i^T Lambda_i J_i with J_i the i-th sample's output Jacobian and
    Lambda_i the loss's Hessian in that sample's outputs.

    loss "mse": torch's mse_loss with mean reduction over the N x k outputs,
    Lambda_i = 2/(N k) I, so G = sqrt(2/(N k)) J (m = N k). At a zero-residual
    minimum G^T G is the exact Hessian.
    loss "cross_entropy": mean over N samples of softmax cross-entropy on
    logits, Lambda_i = (diag(p) - p p^T)/N = B B^T/N with
    B = diag(sqrt p) - p sqrt(p)^T, so G_i = B^T J_i / sqrt(N) (m = N k).
    Memory and time scale with m x n, never n^2."""
    import torch
    _refuse_dropout(model, "gauss_newton_factor")
    J, out = _output_jacobian(model, inputs, dtype)
    N, k, n = J.shape
    if loss == "mse":
        G = J.reshape(N * k, n) * math.sqrt(2.0 / (N * k))
    elif loss == "cross_entropy":
        # Logits (N, C) or (N, C, d1, ...): torch's softmax is over C at each
        # of the L = d1·... locations and the mean over N·L terms, so Lambda
        # is block-diagonal, one (diag(p) - p p^T)/(N L) per sample and location.
        if out.dim() < 2:
            raise ValueError(f"cross_entropy needs logits of shape (N, C) or (N, C, d1, ...), got {tuple(out.shape)}")
        C = out.shape[1]
        L = k // C
        p = torch.softmax(out.reshape(N, C, L), dim=1).transpose(1, 2)  # (N, L, C)
        s = p.sqrt()
        B = torch.diag_embed(s) - p.unsqueeze(3) * s.unsqueeze(2)  # (N, L, C, C)
        G = torch.einsum("nlcj,nclp->nljp", B, J.reshape(N, C, L, n)).reshape(N * L * C, n) / math.sqrt(N * L)
    else:
        raise ValueError(f"loss must be 'mse' or 'cross_entropy', got {loss!r}")
    return G.cpu().numpy()


def _loss_sqrt(out, loss, N):
    """B (N, k, k) with sum_i B_i B_i^T the loss's Hessian in the outputs (mean reduction)."""
    import torch
    k = out.shape[1]
    if loss == "mse":
        eye = torch.eye(k, dtype=out.dtype, device=out.device).expand(out.shape[0], k, k)
        return eye * math.sqrt(2.0 / (N * k))
    if loss == "cross_entropy":
        p = torch.softmax(out, dim=1)
        s = p.sqrt()
        return (torch.diag_embed(s) - p.unsqueeze(2) * s.unsqueeze(1)) / math.sqrt(N)
    raise ValueError(f"loss must be 'mse' or 'cross_entropy', got {loss!r}")


def _kfac_layers(m):
    """The (name, module) of every Linear and Conv2d layer of m; ValueError
    when m has parameters outside them or a layer K-FAC cannot factor."""
    import torch
    layers = [(name, mod) for name, mod in m.named_modules() if isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d))]
    for name, mod in layers:
        if isinstance(mod, torch.nn.Conv2d) and (mod.groups != 1 or mod.padding_mode != "zeros"):
            raise ValueError(f"kfac_blocks: Conv2d layer {name!r} has groups={mod.groups}, "
                             f"padding_mode={mod.padding_mode!r}; only groups=1 with zero padding is Kronecker-factored")
    owner = {}
    for name, mod in layers:
        for p in mod.parameters():
            if id(p) in owner:
                raise ValueError(f"kfac_blocks: layers {owner[id(p)]!r} and {name!r} share a parameter; K-FAC's "
                                 "blocks of a tied weight are not handled (use gauss_newton_factor)")
            owner[id(p)] = name
    covered = set(owner)
    if any(id(p) not in covered for p in m.parameters()):
        raise ValueError("kfac_blocks handles torch.nn.Linear and torch.nn.Conv2d layers only; "
                         "the model has other parameters")
    return layers


def _layer_inputs(mod, a):
    """A layer's inputs as (N, d, T): d = in (Linear) or in*kh*kw (Conv2d, the
    patches torch's unfold takes, in the weight's flattening order), T the
    output locations (1 for a Linear layer)."""
    import torch
    N = a.shape[0]
    if isinstance(mod, torch.nn.Conv2d):
        padding = mod.padding
        if padding == "valid":
            padding = 0
        elif padding == "same":  # torch pads "same" itself, unevenly for even kernels: do as it does
            a = torch.nn.functional.pad(a, mod._reversed_padding_repeated_twice)
            padding = 0
        return torch.nn.functional.unfold(a, mod.kernel_size, dilation=mod.dilation, padding=padding,
                                          stride=mod.stride)
    if a.dim() != 2:
        raise ValueError(f"kfac_blocks: a Linear layer's input must be (N, in), got shape {tuple(a.shape)}; "
                         "K-FAC of a Linear layer over sequences is not handled")
    return a.reshape(N, -1, 1)


def kfac_blocks(model, inputs, targets, loss="mse", dtype="float64"):
    """Kronecker-factored Gauss-Newton blocks of every torch.nn.Linear and
    torch.nn.Conv2d layer (K-FAC), as a dict for write_structure, in
    model.parameters() order. For a layer y_t = W a_t + b at output locations
    t = 1..T (T = 1 for Linear; for Conv2d a_t are the input patches, W of
    out x (in*kh*kw), flattened row-major like the weight):

        "NN_<name>.weight": Kron(S, Ain) S = sum_i sum_t g_it^T g_it    (out x out)
                                         Ain = 1/(N T) sum_i sum_t a_it a_it^T
        "NN_<name>.bias":   sum_i (sum_t g_it)^T (sum_t g_it)   (dense out x out)

    where the rows of g_it are B_i^T J_it (the loss's square-root Hessian
    times the Jacobian of the network's outputs in y_t). For one sample and
    one location (any Linear layer; a Conv2d whose kernel covers its input)
    the weight block is the exact Gauss-Newton block S ⊗ a a^T; otherwise it
    is K-FAC's approximation (for Conv2d, the "expand" form, which treats
    locations as samples). The bias block is exact. Cross-layer blocks are
    dropped. Other parameters (or a grouped Conv2d) raise ValueError."""
    import torch
    tdtype = _torch_dtype(dtype)
    _check_batch(inputs)
    m = __import__("copy").deepcopy(model).to(tdtype)
    x = inputs.detach().to(tdtype) if inputs.is_floating_point() else inputs.detach()
    layers = _kfac_layers(m)
    _refuse_dropout(m, "kfac_blocks")
    _refuse_batch_statistics(m, "kfac_blocks", "gauss_newton_factor")
    for p in m.parameters():  # frozen layers too: their blocks are part of the Hessian
        p.requires_grad_(True)
    # d out / d y at each layer's output y through a zero added to it (a
    # leaf of the graph): an in-place operation after the layer (ReLU(inplace=True))
    # or a frozen input changes nothing of it.
    acts, zeros = {}, {}
    hooks = []
    for name, mod in layers:
        def fwd(module, args, result, name=name):
            if name in acts:
                raise ValueError(f"kfac_blocks: layer {name!r} is called more than once in one forward pass; "
                                 "K-FAC of a reused layer is not handled (use gauss_newton_factor)")
            acts[name] = args[0].detach()
            zeros[name] = torch.zeros_like(result, requires_grad=True)
            return result + zeros[name]
        hooks.append(mod.register_forward_hook(fwd))
    try:
        out = m(x)
    finally:
        for h in hooks:
            h.remove()
    missing = [name for name, _ in layers if name not in acts]
    if missing:
        raise ValueError(f"kfac_blocks: layer {missing[0]!r} is not called in the forward pass; its parameters "
                         "have no Gauss-Newton block of their own (use gauss_newton_factor)")
    N = out.shape[0]
    if loss == "cross_entropy" and out.dim() != 2:
        raise ValueError(f"kfac_blocks: cross_entropy over logits of shape {tuple(out.shape)} (classes at each "
                         "location) is not handled; give (N, C) logits, or use gauss_newton_factor")
    k = out.reshape(N, -1).shape[1]
    out2 = out.reshape(N, k)
    B = _loss_sqrt(out2.detach(), loss, N)  # (N, k, k)
    # One backward pass per output coordinate c gives d out_ic / d y_it for
    # every layer, sample i and location t at once (samples do not mix), and
    # the gradient of each layer's own parameters, which must be what K-FAC's
    # factors say it is (sum_i sum_t g_it a_it^T): else the weight acts
    # elsewhere too (tied to another use), and the blocks would be wrong.
    patches = {name: _layer_inputs(mod, acts[name]) for name, mod in layers}  # (N, d, T)
    weights = [mod.weight for _, mod in layers]
    jac = {name: [] for name, _ in layers}
    for c in range(k):
        grads = torch.autograd.grad(out2[:, c].sum(), [zeros[name] for name, _ in layers] + weights,
                                    retain_graph=True, allow_unused=True)
        for (name, mod), gz, gw in zip(layers, grads[:len(layers)], grads[len(layers):]):
            gz = torch.zeros_like(zeros[name]) if gz is None else gz
            gz = gz.detach().reshape(N, gz.shape[1], -1)  # (N, out, T)
            jac[name].append(gz)
            a = patches[name]
            expected = torch.einsum("not,ndt->od", gz, a)
            got = torch.zeros_like(expected) if gw is None else gw.detach().reshape(expected.shape)
            # Either sum rounds each entry by at most about (N T) eps times its terms' magnitudes.
            bound = 64 * (N * a.shape[2] + 1) * torch.finfo(tdtype).eps * torch.einsum("not,ndt->od", gz.abs(), a.abs())
            if bool(((got - expected).abs() > bound + torch.finfo(tdtype).tiny).any()):
                raise ValueError(f"kfac_blocks: the weight of layer {name!r} acts outside the layer too (a weight "
                                 "tied to another use); its block is not a Kronecker product of the layer's "
                                 "statistics (use gauss_newton_factor)")
    blocks = {}
    index = 0
    for name, mod in layers:
        J = torch.stack(jac[name], dim=1)           # (N, k, out, T)
        g = torch.einsum("nkr,nkot->nrot", B, J)    # rows of B_i^T J_it
        S = torch.einsum("nrot,nrpt->op", g, g)     # sum_i sum_t g_it^T g_it
        a = patches[name]                           # (N, d, T)
        A = torch.einsum("ndt,net->de", a, a) / (N * a.shape[2])
        blocks[f"{index:04d}_{name}.weight"] = Kron(S.cpu().numpy(), A.cpu().numpy())
        index += 1
        if mod.bias is not None:
            gb = g.sum(dim=3)                       # the bias moves every location alike
            blocks[f"{index:04d}_{name}.bias"] = torch.einsum("nro,nrp->op", gb, gb).cpu().numpy()
            index += 1
    return blocks


def empirical_fisher_factor(model, loss_fn, inputs, targets, dtype="float64"):
    """G (N x n, numpy) whose rows are the per-sample loss gradients / sqrt(N):
    G^T G = (1/N) sum_i g_i g_i^T, the empirical Fisher. loss_fn(output, target)
    is called on one sample at a time (batch of one)."""
    import torch
    tdtype = _torch_dtype(dtype)
    _check_batch(inputs)
    _refuse_dropout(model, "empirical_fisher_factor")
    _refuse_batch_statistics(model, "empirical_fisher_factor", "gauss_newton_factor")
    flat0, call = _flat_model(model, dtype)
    rows = []
    N = inputs.shape[0]
    if not torch.is_tensor(targets) or targets.dim() == 0 or targets.shape[0] != N:
        raise ValueError(f"targets must be a tensor of one target per sample ({N}), got "
                         f"{tuple(targets.shape) if torch.is_tensor(targets) else type(targets).__name__}")
    for i in range(N):
        y = targets[i:i + 1]
        y = y.detach().to(tdtype) if y.is_floating_point() else y
        flat = flat0.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(loss_fn(call(flat, inputs[i:i + 1]), y), flat)
        rows.append(g.detach() / math.sqrt(N))
    return torch.stack(rows).cpu().numpy()


# --- command line ---

def _load_matrix(path):
    if path.endswith(".npy"):
        H = np.load(path)
    elif path.endswith(".npz"):
        with np.load(path) as z:
            if len(z.files) != 1:
                raise ValueError(f"{path} holds {len(z.files)} arrays; give a .npy or a one-array .npz")
            H = z[z.files[0]]
    elif path.endswith((".pt", ".pth")):
        try:
            import torch
        except ImportError:
            raise ValueError(f"{path}: reading a .pt file needs PyTorch (python3-torch); save it with numpy.save")
        try:
            # Tensors only: a pickle may run any code when it is loaded.
            t = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise ValueError(f"{path}: not a file of tensors torch can load safely ({type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''})")
        if not torch.is_tensor(t) or t.is_sparse or t.is_complex():
            held = (f"a {type(t).__name__} of keys {list(t)[:8]}" if isinstance(t, dict) else
                    f"a {type(t).__name__}" if not torch.is_tensor(t) else
                    "a sparse tensor" if t.is_sparse else f"a {t.dtype} tensor")
            raise ValueError(f"{path} does not hold a single dense real tensor: it holds {held}")
        return t.detach().double() if t.dtype == torch.bool else t.detach()  # (bfloat16: write_hessian)
    else:
        H = np.loadtxt(path, ndmin=2, delimiter="," if path.endswith(".csv") else None)
    if H.dtype.kind not in "fiub":
        raise ValueError(f"{path} holds {H.dtype} values, not real numbers")
    return H


def _cmd_convert(a):
    H = _load_matrix(a.input)
    attrs = dict(loss=a.loss, loss_threshold=a.loss_threshold, name=a.name)
    if problem := _matrix_problem(_widened(H)[0]):  # named with the file that broke the rule
        raise ValueError(f"{a.input}: {problem}")
    if a.step is not None and a.dataset is None:
        where = write_checkpoint(a.output, H, a.step, dtype=a.dtype, group=a.group, **attrs)
    else:
        where = write_hessian(a.output, H, dataset=a.dataset or "hessian", dtype=a.dtype, step=a.step, **attrs)
    print(f"{a.output}:{where}")
    return 0


def _structure_shape(obj):
    """(kind, n, the coarsest stored type's name, its members) of a structured
    Hessian as docs/structured.md lays it out; n is None where the layout
    breaks a rule (basinvol's own reading names which)."""
    kind = obj.attrs["structure"]
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    types, members, n = [], [], None
    try:
        if kind == "factor" and isinstance(obj, h5py.Group) and isinstance(obj.get("G"), h5py.Dataset):
            types, n = [obj["G"].dtype], obj["G"].shape[1] if obj["G"].ndim == 2 else None
        elif kind == "kron" and isinstance(obj, h5py.Group) and all(isinstance(obj.get(k), h5py.Dataset) for k in "AB"):
            types = [obj["A"].dtype, obj["B"].dtype]
            if all(obj[k].ndim == 2 and obj[k].shape[0] == obj[k].shape[1] for k in "AB"):
                n = obj["A"].shape[0] * obj["B"].shape[0]
        elif kind == "diagonal" and isinstance(obj, h5py.Dataset):
            types, n = [obj.dtype], obj.shape[0] if obj.ndim == 1 else None
        elif kind == "blocks" and isinstance(obj, h5py.Group) and len(obj):
            n = 0
            for name in sorted(obj):
                m = obj[name]
                if "structure" in m.attrs:
                    _, mn, mt, _ = _structure_shape(m)
                    mt = [np.dtype(mt)] if mt else []
                elif isinstance(m, h5py.Dataset) and m.ndim == 2 and m.shape[0] == m.shape[1]:
                    mn, mt = m.shape[0], [m.dtype]
                else:
                    mn, mt = None, []
                members.append((name, mn))
                types += mt
                n = None if n is None or mn is None else n + mn
    except (KeyError, TypeError, ValueError):
        n = None
    floats = [t for t in types if t.kind == "f"]
    coarsest = min(floats, key=lambda t: t.itemsize).name if floats else (types[0].name if types else "")
    return kind, n, coarsest, members


def _cmd_info(a):
    with h5py.File(a.file, "r") as f:
        structures = []

        def visit(name, obj):
            if any(name.startswith(s + "/") for s in structures):
                return  # a structure's parts are not Hessians of their own
            meta = {k: obj.attrs[k] for k in ("step", "loss", "loss_threshold", "name") if k in obj.attrs}
            if "structure" in obj.attrs:
                structures.append(name)
                kind, n, dtype, members = _structure_shape(obj)
                known = kind in ("blocks", "factor", "kron", "diagonal")
                print(f"/{name}  structure {kind}"
                      + (f"  n {n}  {dtype}" if n is not None and known else
                         "  (not a kind basinvol reads: blocks, factor, kron, diagonal)" if not known else
                         "  (its layout breaks a rule: `basinvol volume` names which)")
                      + "".join(f"  {k} {v}" for k, v in meta.items())
                      + (f"  members {len(members)}" if members else ""))
                if members and a.blocks:
                    for nm, mn in members:
                        print(f"    {nm:<30} n {mn if mn is not None else '?'}")
                return
            if isinstance(obj, h5py.Dataset) and obj.ndim == 2 and obj.shape[0] == obj.shape[1]:
                blocks = read_blocks(obj)
                extra = f"  blocks {len(blocks['names'])}" if blocks else ""
                print(f"/{name}  n {obj.shape[0]}  {obj.dtype}  "
                      + "  ".join(f"{k} {v}" for k, v in meta.items()) + extra)
                if blocks and a.blocks:
                    for nm, off, sz in zip(blocks["names"], blocks["offsets"], blocks["sizes"]):
                        print(f"    {nm:<30} offset {off:<8} size {sz}")
        f.visititems(visit)
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="python3 -m basinvol.export",
                                description="Write Hessians in basinvol's HDF5 layout.")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert", help="write a matrix (.npy, .npz, .pt, or text) as a Hessian dataset")
    c.add_argument("input")
    c.add_argument("output", help="HDF5 file (created, or appended to)")
    c.add_argument("--dataset", help="dataset path (default: hessian, or checkpoints/step_NNNNN with --step)")
    c.add_argument("--group", default="checkpoints", help="group of checkpoints when --step is given")
    c.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                   help="stored type (never finer than the values' own: float32 and float16 values keep theirs)")
    c.add_argument("--step", type=int)
    c.add_argument("--loss", type=float)
    c.add_argument("--loss-threshold", type=float)
    c.add_argument("--name")
    c.set_defaults(run=_cmd_convert)
    i = sub.add_parser("info", help="list the square datasets of a file with their attributes")
    i.add_argument("file")
    i.add_argument("--blocks", action="store_true",
                   help="also list the parameter blocks (a blocks structure's: its members)")
    i.set_defaults(run=_cmd_info)
    a = p.parse_args(argv)
    try:
        return a.run(a)
    except (OSError, ValueError) as e:
        print(f"basinvol.export: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # one line for what a file can hold, never a traceback
        print(f"basinvol.export: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
