#!/usr/bin/python3
"""basinvol in a notebook: train two small networks, analyse their Hessians in
memory, rank the basins and plot the runs — in well under a minute on 2 cores.

Run it as a script,

    PYTHONPATH=build/python /usr/bin/python3 examples/python/notebook.py --out /tmp/nb

or paste the cells (# %%) into Jupyter. Needs the built package (docs/python.md)
and Debian's python3-torch, python3-sklearn and python3-matplotlib. Nothing is
written but the two plots.
"""
# %% Setup: data, a model factory, and the command-line arguments of the script form.
import argparse
import os
import time

import numpy as np
import torch
from sklearn.datasets import load_digits

import basinvol
import basinvol.plot
from basinvol.export import gauss_newton_factor, hessian_of

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("--out", default="notebook-out", help="folder for the two plots")
args = p.parse_args()
os.makedirs(args.out, exist_ok=True)
t_start = time.time()
torch.set_num_threads(1)

digits = load_digits()
X = torch.tensor(digits.data[:600] / 16.0, dtype=torch.float32)
y = torch.tensor(digits.target[:600], dtype=torch.long)
loss_fn = torch.nn.functional.cross_entropy


def mlp(hidden, seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 10))


# %% Train two runs (different widths) and analyse the Hessian at each checkpoint, in memory.
steps = [0, 10, 40, 150, 600]
results = []
for run, hidden in (("width 4", 4), ("width 6", 6)):
    model = mlp(hidden, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for step in range(steps[-1] + 1):
        if step in steps:
            H = hessian_of(model, loss_fn, X, y, vectorize=True)        # numpy float64, n x n
            with torch.no_grad():
                loss = loss_fn(model(X), y).item()
            r = basinvol.analyze(H, step=step, loss=loss, name=run, label=f"{run} step {step}")
            results.append(r)
            print(f"{run:8} step {step:4d}  n {r.n}  loss {loss:.3f}  dim {r.dim:4d}  "
                  f"log-volume {r.log_volume:9.2f}  {' '.join(r.warnings)}")
        opt.zero_grad()
        loss_fn(model(X), y).backward()
        opt.step()

# %% Rank: fewest curved directions first, then the larger log-volume (the command line's rule).
ranked = basinvol.rank(results)
for r in ranked:
    mark = "~" if "place_uncertain" in r.warnings else " "
    print(f"place {r.place}{mark} {r.name:8} step {r.step:4.0f}  rank {r.rank:4d}  log-volume {r.log_volume:9.2f}")

# %% Structure instead of the full Hessian: the Gauss-Newton factor of the last model (H ≈ GᵀG).
G = gauss_newton_factor(model, X, y, loss="cross_entropy")
ggn = basinvol.analyze(basinvol.Factor(G), label="width 6 GGN")
print(f"Gauss-Newton factor {G.shape[0]} x {G.shape[1]}: dim {ggn.dim}, rank {ggn.rank} "
      f"(full Hessian at step {steps[-1]}: dim {results[-1].dim})")

# %% Plots: one line per run, and the spectrum of the last checkpoint.
drawn = basinvol.plot.plot_run(ranked, os.path.join(args.out, "run.png"), title="digits MLP, two widths")
last = basinvol.analyze(H, eigenvalues=True, label=f"width 6 step {steps[-1]}")
basinvol.plot.plot_spectrum(last, os.path.join(args.out, "spectrum.png"))
print(f"plots: {args.out}/run.png ({len(drawn['runs'])} runs, {drawn['xscale']} steps), {args.out}/spectrum.png")
print(f"done in {time.time() - t_start:.1f} s")
