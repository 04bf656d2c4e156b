#!/usr/bin/python3
"""Export loss Hessians of PyTorch models to HDF5 in basinvol's layout.

Library:

    from basinvol_export import hessian_of, parameter_blocks, write_hessian, write_checkpoint
    H = hessian_of(model, loss_fn, inputs, targets)        # numpy float64, n x n
    write_hessian("h.h5", H, step=100, loss=0.3, blocks=parameter_blocks(model))
    write_checkpoint("run.h5", H, step=100, loss=0.3)       # /checkpoints/step_00100

Command line (no PyTorch needed):

    basinvol_export.py convert H.npy OUT.h5 [--dataset D] [--dtype float32] [--step S] ...
    basinvol_export.py info FILE.h5

Needs Debian's python3-numpy and python3-h5py; hessian_of and parameter_blocks
also need python3-torch. See docs/python.md.
"""
import argparse
import math
import sys

import h5py
import numpy as np

__all__ = ["hessian_of", "parameter_blocks", "write_hessian", "write_checkpoint", "checkpoint_name",
           "read_blocks", "CHUNK_FROM"]

# Square datasets of at least this many rows are written chunked and gzip-compressed.
CHUNK_FROM = 1024


def _functional_call(model, tensors, args):
    try:
        from torch.func import functional_call  # torch >= 2.0
    except ImportError:
        from torch.nn.utils.stateless import functional_call  # torch 1.13 (Debian 12)
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


def hessian_of(model, loss_fn, inputs, targets, dtype="float64", vectorize=False):
    """The full Hessian of loss_fn(model(inputs), targets) in the model's parameters.

    Rows and columns follow model.parameters() order, each tensor flattened
    row-major (see parameter_blocks). The model is not modified: parameters,
    floating-point buffers, inputs and floating-point targets are cast to
    `dtype` ("float64" by default; None keeps the model's own type) and the
    model is called functionally. Returns an n x n numpy float64 array.

    The cost is n reverse-mode passes (vectorize=True batches them with vmap)
    and n^2 floats of memory: meant for models up to some thousands of
    parameters. Frozen parameters (requires_grad False) are included;
    parameters shared between modules count once."""
    import torch
    tdtype = None if dtype is None else getattr(torch, str(dtype))
    named = list(model.named_parameters())
    if not named:
        raise ValueError("the model has no parameters")

    def cast(t):
        if tdtype is not None and torch.is_tensor(t) and t.is_floating_point():
            return t.detach().to(tdtype)
        return t.detach() if torch.is_tensor(t) else t

    flat0 = torch.cat([cast(p).reshape(-1) for _, p in named])
    x = cast(inputs)
    y = cast(targets)
    sizes = [p.numel() for _, p in named]
    shapes = [p.shape for _, p in named]
    # Every name under which each parameter appears (tied weights appear under several).
    aliases = {id(p): [] for _, p in named}
    buffers = {}
    for prefix, mod in model.named_modules(remove_duplicate=False):
        for k, p in mod._parameters.items():
            if p is not None:
                aliases[id(p)].append(f"{prefix}.{k}" if prefix else k)
        for k, b in mod._buffers.items():
            if b is not None:
                buffers[f"{prefix}.{k}" if prefix else k] = cast(b)
    keys = [aliases[id(p)] for _, p in named]

    def loss_of(flat):
        tensors = dict(buffers)
        for names, piece, shape in zip(keys, torch.split(flat, sizes), shapes):
            value = piece.view(shape)  # one tensor for all aliases of a tied weight
            for k in names:
                tensors[k] = value
        return loss_fn(_functional_call(model, tensors, (x,)), y)

    H = torch.autograd.functional.hessian(loss_of, flat0, vectorize=vectorize)
    return H.detach().cpu().numpy().astype(np.float64, copy=False)


def checkpoint_name(step, group="checkpoints"):
    """The dataset path of a checkpoint: checkpoints/step_00100 (5 digits, zero-padded)."""
    step = int(step)
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return f"{group.strip('/')}/step_{step:05d}" if group else f"step_{step:05d}"


def _open(target, mode):
    if isinstance(target, (h5py.File, h5py.Group)):
        return target, False
    return h5py.File(target, mode), True


def write_hessian(path, H, dataset="hessian", dtype="float64", blocks=None, mode="a", **attrs):
    """Writes the square matrix H to `dataset` in the HDF5 file `path`.

    path: a file name (opened with `mode`, "a" by default: created if missing,
    other datasets kept) or an open h5py File/Group. An existing dataset of the
    same name is replaced. dtype: "float64" or "float32" (the stored type fixes
    basinvol's default cut, so keep float64 unless the file size matters).
    n >= CHUNK_FROM is written chunked (bands of rows) with shuffle+gzip.
    blocks: parameter_blocks(model), stored as the attributes param_names,
    param_offsets, param_sizes and param_shapes. Other keyword arguments become
    attributes; basinvol reads step, loss, loss_threshold, hessian_error and
    name, and None values are skipped. Unless given, hessian_error is recorded
    as ||H - H^T||_F of the H passed in: the computed Hessian's own error
    (autograd in float64: ~1e-13 relative), which raises basinvol's noise
    floor even when the matrix is symmetrized later. Returns the dataset path."""
    H = np.asarray(H)
    if H.ndim != 2 or H.shape[0] != H.shape[1]:
        raise ValueError(f"a Hessian must be a square 2-D array, got shape {H.shape}")
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    if not np.all(np.isfinite(H)):
        raise ValueError("the Hessian has non-finite entries")
    n = H.shape[0]
    if attrs.get("hessian_error") is None:
        H64 = H.astype(np.float64, copy=False)
        asym = float(np.linalg.norm(H64 - H64.T))
        attrs["hessian_error"] = asym if asym > 0 else None
    data = H.astype(dtype)
    kw = {}
    if n >= CHUNK_FROM:
        rows = max(1, min(n, (1 << 20) // (n * data.itemsize)))  # ~1 MiB chunks of whole rows
        kw = dict(chunks=(rows, n), compression="gzip", compression_opts=4, shuffle=True)
    f, close = _open(path, mode)
    try:
        if dataset in f:
            del f[dataset]
        d = f.create_dataset(dataset, data=data, **kw)
        if blocks is not None:
            total = int(sum(blocks["sizes"]))
            if total != n:
                raise ValueError(f"parameter blocks cover {total} parameters, the Hessian has n = {n}")
            d.attrs["param_names"] = np.array([str(s) for s in blocks["names"]], dtype=h5py.string_dtype())
            d.attrs["param_offsets"] = np.asarray(blocks["offsets"], dtype=np.int64)
            d.attrs["param_sizes"] = np.asarray(blocks["sizes"], dtype=np.int64)
            d.attrs["param_shapes"] = np.array([",".join(str(k) for k in s) for s in blocks["shapes"]],
                                               dtype=h5py.string_dtype())
        for k, v in attrs.items():
            if v is None:
                continue
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"attribute {k} is not finite: {v}")
            d.attrs[k] = v
        return d.name
    finally:
        if close:
            f.close()


def write_checkpoint(path, H, step, loss=None, group="checkpoints", dtype="float64", blocks=None, **attrs):
    """Appends H as `group`/step_NNNNN (e.g. checkpoints/step_00100) to the file `path`.

    Sets the attributes step and loss (and any others given). Name order is
    step order for steps below 100000. `basinvol rank FILE` then ranks every
    checkpoint. Returns the dataset path."""
    return write_hessian(path, H, dataset=checkpoint_name(step, group), dtype=dtype, blocks=blocks,
                         mode="a", step=int(step), loss=None if loss is None else float(loss), **attrs)


def read_blocks(dataset):
    """The parameter blocks stored on an h5py dataset by write_hessian, or None."""
    a = dataset.attrs
    if "param_offsets" not in a:
        return None
    dec = lambda s: s.decode() if isinstance(s, bytes) else str(s)
    return {"names": [dec(s) for s in a["param_names"]],
            "offsets": [int(v) for v in a["param_offsets"]],
            "sizes": [int(v) for v in a["param_sizes"]],
            "shapes": [tuple(int(k) for k in dec(s).split(",") if k) for s in a["param_shapes"]]
            if "param_shapes" in a else None}


# --- command line ---

def _load_matrix(path):
    if path.endswith(".npy"):
        return np.load(path)
    if path.endswith(".npz"):
        with np.load(path) as z:
            if len(z.files) != 1:
                raise ValueError(f"{path} holds {len(z.files)} arrays; give a .npy or a one-array .npz")
            return z[z.files[0]]
    if path.endswith((".pt", ".pth")):
        import torch
        t = torch.load(path, map_location="cpu")
        if not torch.is_tensor(t):
            raise ValueError(f"{path} does not hold a single tensor")
        return t.detach().double().numpy()
    return np.loadtxt(path, ndmin=2)


def _cmd_convert(a):
    H = _load_matrix(a.input)
    attrs = dict(loss=a.loss, loss_threshold=a.loss_threshold, name=a.name)
    if a.step is not None and a.dataset is None:
        where = write_checkpoint(a.output, H, a.step, dtype=a.dtype, group=a.group, **attrs)
    else:
        where = write_hessian(a.output, H, dataset=a.dataset or "hessian", dtype=a.dtype, step=a.step, **attrs)
    print(f"{a.output}:{where}")
    return 0


def _cmd_info(a):
    with h5py.File(a.file, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.ndim == 2 and obj.shape[0] == obj.shape[1]:
                meta = {k: obj.attrs[k] for k in ("step", "loss", "loss_threshold", "name") if k in obj.attrs}
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
    p = argparse.ArgumentParser(prog="basinvol_export.py",
                                description="Write Hessians in basinvol's HDF5 layout.")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert", help="write a matrix (.npy, .npz, .pt, or text) as a Hessian dataset")
    c.add_argument("input")
    c.add_argument("output", help="HDF5 file (created, or appended to)")
    c.add_argument("--dataset", help="dataset path (default: hessian, or checkpoints/step_NNNNN with --step)")
    c.add_argument("--group", default="checkpoints", help="group of checkpoints when --step is given")
    c.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    c.add_argument("--step", type=int)
    c.add_argument("--loss", type=float)
    c.add_argument("--loss-threshold", type=float)
    c.add_argument("--name")
    c.set_defaults(run=_cmd_convert)
    i = sub.add_parser("info", help="list the square datasets of a file with their attributes")
    i.add_argument("file")
    i.add_argument("--blocks", action="store_true", help="also list the parameter blocks")
    i.set_defaults(run=_cmd_info)
    a = p.parse_args(argv)
    try:
        return a.run(a)
    except (OSError, ValueError) as e:
        print(f"basinvol_export: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
