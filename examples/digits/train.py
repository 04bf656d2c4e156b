#!/usr/bin/python3
"""Train a small tanh MLP on scikit-learn's bundled digits data and export the
loss Hessian at several checkpoints into one HDF5 file for basinvol.

    /usr/bin/python3 examples/digits/train.py --out digits.h5

The network is 64 -> 8 -> 10 (tanh), 610 parameters, trained full-batch with
Adam on 1500 of the 1797 images (the rest are held out for accuracy). Each
checkpoint is written as /checkpoints/step_NNNNN (float64) with the
attributes step, loss, name and the parameter blocks. Deterministic: seeded,
single-threaded. Needs Debian's python3-torch, python3-sklearn, python3-h5py.
"""
import argparse
import copy
import os
import sys
import time

import numpy as np
import torch
from sklearn.datasets import load_digits

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from basinvol.export import hessian_of, parameter_blocks, write_checkpoint  # noqa: E402


def digits_split(seed, images=False):
    """scikit-learn's digits scaled to [0, 1], as 64-vectors or (images=True)
    1x8x8 images, split by a seeded permutation into 1500 training and 297
    held-out images: (X_train, y_train, X_test, y_test)."""
    digits = load_digits()
    X = torch.tensor((digits.images if images else digits.data) / 16.0, dtype=torch.float32)
    if images:
        X = X.unsqueeze(1)
    y = torch.tensor(digits.target, dtype=torch.long)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    train, test = perm[:1500], perm[1500:]
    return X[train], y[train], X[test], y[test]


def train(model, opt, loss_fn, X, y, steps, at_checkpoint):
    """Full-batch training up to the last of the sorted `steps`, calling
    at_checkpoint(step) before the update of each of them."""
    for step in range(steps[-1] + 1):
        if step in steps:
            at_checkpoint(step)
        if step == steps[-1]:
            return
        model.train()
        opt.zero_grad()
        loss_fn(model(X), y).backward()
        opt.step()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="HDF5 file to write (replaced)")
    p.add_argument("--steps", default="25,100,250,500,1000",
                   help="comma-separated checkpoint steps (training runs to the last)")
    p.add_argument("--hidden", type=int, default=8)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64", help="stored type")
    p.add_argument("--loss-threshold", type=float, help="T stored on each checkpoint (basinvol's default is 1)")
    a = p.parse_args(argv)
    steps = sorted({int(s) for s in a.steps.split(",")})

    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    Xtr, ytr, Xte, yte = digits_split(a.seed)

    model = torch.nn.Sequential(torch.nn.Linear(64, a.hidden), torch.nn.Tanh(), torch.nn.Linear(a.hidden, 10))
    loss_fn = torch.nn.functional.cross_entropy
    blocks = parameter_blocks(model)
    n = sum(blocks["sizes"])
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)

    if os.path.exists(a.out):
        os.remove(a.out)
    print(f"digits: MLP 64-{a.hidden}-10 (tanh), n = {n} parameters, checkpoints at {steps}", file=sys.stderr)
    t0 = time.time()

    def checkpoint(step):
        model.eval()
        with torch.no_grad():
            acc = (model(Xte).argmax(1) == yte).float().mean().item()
        H = hessian_of(model, loss_fn, Xtr, ytr)  # float64, on the training set
        with torch.no_grad():
            loss = loss_fn(copy.deepcopy(model).double()(Xtr.double()), ytr).item()
        where = write_checkpoint(a.out, H, step, loss=loss, dtype=a.dtype, blocks=blocks,
                                 name=f"digits mlp64-{a.hidden}-10",  # the run's name: one line in plot_run
                                 loss_threshold=a.loss_threshold, test_accuracy=acc)
        print(f"  step {step:5d}  loss {loss:.4f}  test accuracy {acc:.3f}  -> {a.out}:{where}"
              f"  ({time.time() - t0:.1f} s)", file=sys.stderr)

    train(model, opt, loss_fn, Xtr, ytr, steps, checkpoint)
    return 0


if __name__ == "__main__":
    sys.exit(main())
