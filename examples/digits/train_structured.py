#!/usr/bin/python3
"""Train a small CNN (over 10^5 parameters) on scikit-learn's digits and export
its curvature at several checkpoints as structured Hessians for basinvol.

    /usr/bin/python3 examples/digits/train_structured.py --out cnn.h5

The network is conv(1->16, 3x3) - tanh - conv(16->32, 3x3) - tanh - maxpool 2
- linear(512->192) - tanh - linear(192->10): 105,226 parameters, trained
full-batch with Adam on 1500 of the 1797 images (cross-entropy). Its dense
Hessian would be 88 GB in float64; each checkpoint is written twice instead,
as `blocks` structures with one block per parameter tensor:

  /kfac/step_NNNNN  each weight as Kronecker factors (K-FAC over the 1500
                    training images: Linear exact per sample, Conv2d in the
                    expand form), each bias as its exact dense block;
  /ggn/step_NNNNN   each tensor's exact Gauss-Newton block as a factor
                    G_l^T G_l over --ggn-samples images (float64: G has
                    10 rows an image, 105,226 columns).

Cross-layer blocks are dropped in both. The attributes step, loss, name and
test_accuracy are set on each. Deterministic: seeded, single-threaded. Needs
Debian's python3-torch, python3-sklearn, python3-h5py.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "..", "python")]
from basinvol.export import Factor, gauss_newton_factor, kfac_blocks, parameter_blocks, write_structure  # noqa: E402
from train import digits_split, train  # noqa: E402  (the MLP example's data and loop)


def network(width, hidden):
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, width, 3, padding=1), torch.nn.Tanh(),
        torch.nn.Conv2d(width, 2 * width, 3, padding=1), torch.nn.Tanh(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(2 * width * 16, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 10))


def ggn_blocks(model, x, y, blocks):
    """Each parameter tensor's Gauss-Newton block as a factor: the columns of
    the whole network's G that belong to it (G_l^T G_l is the exact block)."""
    G = gauss_newton_factor(model, x, y, loss="cross_entropy")
    return {f"{i:04d}_{name}": Factor(np.ascontiguousarray(G[:, o:o + k]))
            for i, (name, o, k) in enumerate(zip(blocks["names"], blocks["offsets"], blocks["sizes"]))}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="HDF5 file to write (replaced)")
    p.add_argument("--steps", default="10,50,200,800", help="comma-separated checkpoint steps")
    p.add_argument("--width", type=int, default=16, help="channels of the first convolution")
    p.add_argument("--hidden", type=int, default=192, help="width of the hidden linear layer")
    p.add_argument("--ggn-samples", type=int, default=16, help="training images the GGN factors use")
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    steps = sorted({int(s) for s in a.steps.split(",")})

    torch.manual_seed(a.seed)
    torch.set_num_threads(1)
    Xtr, ytr, Xte, yte = digits_split(a.seed, images=True)

    model = network(a.width, a.hidden)
    blocks = parameter_blocks(model)
    n = sum(blocks["sizes"])
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    loss_fn = torch.nn.functional.cross_entropy
    if os.path.exists(a.out):
        os.remove(a.out)
    print(f"digits CNN: n = {n} parameters, {len(blocks['names'])} tensors, checkpoints at {steps}",
          file=sys.stderr)
    t0 = time.time()

    def checkpoint(step):
        model.eval()
        with torch.no_grad():
            loss = loss_fn(model(Xtr), ytr).item()
            acc = (model(Xte).argmax(1) == yte).float().mean().item()
        attrs = dict(step=step, loss=loss, name=f"digits cnn step {step}", test_accuracy=acc)
        write_structure(a.out, f"kfac/step_{step:05d}", kfac_blocks(model, Xtr, ytr, loss="cross_entropy"),
                        **attrs)
        write_structure(a.out, f"ggn/step_{step:05d}",
                        ggn_blocks(model, Xtr[:a.ggn_samples], ytr[:a.ggn_samples], blocks), **attrs)
        print(f"  step {step:5d}  loss {loss:.4f}  test accuracy {acc:.3f}  ({time.time() - t0:.1f} s)",
              file=sys.stderr)

    train(model, opt, loss_fn, Xtr, ytr, steps, checkpoint)
    return 0


if __name__ == "__main__":
    sys.exit(main())
