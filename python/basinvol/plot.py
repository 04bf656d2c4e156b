#!/usr/bin/python3
"""Plot basinvol's JSON output (matplotlib, no display needed).

    basinvol spectrum run.h5:/checkpoints/step_00100 --format json > s.json
    plot_basins.py spectrum s.json spectrum.png

    basinvol rank run.h5 --format json > r.json
    plot_basins.py run r.json run.png

spectrum: |lambda| sorted, log scale, positive and negative eigenvalues marked
differently, the cut (tol) and the gap between kept and dropped drawn.
run: basin dimension and log-volume against the checkpoint step (from
`basinvol rank` or `basinvol volume`), saddles marked.

The output type follows the extension (.png, .svg, .pdf). INPUT may be - for
standard input; --format json and jsonl are both read, and a file holding
several JSON documents (spectrum of several sources) is read whole.
Needs Debian's python3-matplotlib and python3-numpy. See docs/python.md.
"""
import argparse
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402


def read_rows(path):
    """Every row of basinvol JSON or JSONL output (one or several documents)."""
    text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    dec = json.JSONDecoder()
    rows, pos = [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        doc, pos = dec.raw_decode(text, pos)
        if isinstance(doc, dict) and "rows" in doc:
            rows.extend(doc["rows"])
        elif isinstance(doc, dict) and "a" in doc and "b" in doc:  # compare
            rows.extend([doc["a"], doc["b"]])
        elif isinstance(doc, dict):
            rows.append(doc)
        else:
            raise ValueError(f"{path}: not basinvol JSON output")
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


def short(source):
    """The dataset part of a source, for titles and labels."""
    return source.rsplit(":", 1)[-1] if ":" in source else source


def plot_spectrum(row, out, title=None):
    ev = row.get("eigenvalues")
    if ev is None:
        raise ValueError(f"{row.get('source')}: no eigenvalues (use `basinvol spectrum ... --format json`)")
    lam = np.array([e["eigenvalue"] for e in ev], dtype=float)
    kept = np.array([e["kept"] for e in ev], dtype=bool)
    order = np.argsort(-np.abs(lam), kind="stable")
    lam, kept = lam[order], kept[order]
    mag = np.abs(lam)
    tiny = mag[mag > 0].min() * 0.1 if np.any(mag > 0) else 1e-300
    shown = np.where(mag > 0, mag, tiny)  # exact zeros drawn at the bottom of the axis
    idx = np.arange(1, len(lam) + 1)
    tol = row.get("tol")

    fig, ax = plt.subplots(figsize=(10, 5), constrained_layout=True)
    pos, neg, zero = lam > 0, lam < 0, lam == 0

    def label(sel, what):
        k = int(np.sum(sel & kept))
        return f"{what}: {k} kept, {int(sel.sum()) - k} dropped"

    if pos.any():
        ax.scatter(idx[pos], shown[pos], s=14, marker="o", color="tab:blue", label=label(pos, "λ > 0"), zorder=3)
    if neg.any():
        ax.scatter(idx[neg], shown[neg], s=22, marker="v", color="tab:red", label=label(neg, "λ < 0"), zorder=3)
    if zero.any():
        ax.scatter(idx[zero], shown[zero], s=14, marker="x", color="0.4",
                   label=f"λ = 0 exactly: {int(zero.sum())} (drawn at bottom)", zorder=3)
    ax.set_yscale("log")
    if tol is not None and tol > 0:
        ax.axhline(tol, color="k", ls="--", lw=1.2, label=f"cut: tol = {tol:.3g} ({row.get('cut', '?')})")
    floor = row.get("noise_floor")
    if floor:
        ax.axhline(floor, color="tab:purple", ls=":", lw=1.2, label=f"noise floor of stored type ({floor:.2g})")
    if kept.any() and (~kept).any():
        lo_kept = mag[kept].min()
        hi_drop = mag[~kept].max()
        if hi_drop > 0:
            ax.axhspan(hi_drop, lo_kept, color="tab:green", alpha=0.15,
                       label=f"gap: {math.log10(lo_kept / hi_drop):.2f} decades")
        ax.axvline(kept.sum() + 0.5, color="0.5", lw=0.8)
    ax.set_xlabel("eigenvalue index (sorted by |λ|, largest first)")
    ax.set_ylabel("|λ|")
    gap = row.get("gap")
    gap_txt = "unbounded" if gap is None else f"{gap:.2f} decades"
    sub = (f"n {row.get('n')}   rank {row.get('rank')}   dim {row.get('dim')}   "
           f"negative {row.get('negative')}   gap {gap_txt}")
    warn = row.get("warnings") or []
    if warn:
        sub += "   warnings: " + ",".join(warn)
    ax.set_title((title or short(row.get("source", ""))) + "\n" + sub, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_run(rows, out, title=None):
    ok = [r for r in rows if r.get("status") == "ok"]
    bad = len(rows) - len(ok)
    if not ok:
        raise ValueError("no successful rows to plot")
    have_steps = all(r.get("step") is not None for r in ok)
    ok.sort(key=(lambda r: r["step"]) if have_steps else (lambda r: r.get("source", "")))
    x = np.array([r["step"] if have_steps else i for i, r in enumerate(ok)], dtype=float)
    dim = np.array([r["dim"] for r in ok], dtype=float)
    logv = np.array([np.nan if r.get("log_volume") is None else r["log_volume"] for r in ok], dtype=float)
    saddle = np.array([(r.get("negative") or 0) > 0 for r in ok])
    ambiguous = np.array(["ambiguous_rank" in (r.get("warnings") or []) for r in ok])
    best = [i for i, r in enumerate(ok) if r.get("place") == 1]

    fig, (a1, a2) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True, constrained_layout=True)
    a1.plot(x, dim, "-", color="tab:blue", lw=1.2)
    if (~saddle).any():
        a1.plot(x[~saddle], dim[~saddle], "o", color="tab:blue", label="minimum")
    if saddle.any():
        a1.plot(x[saddle], dim[saddle], "v", color="tab:red", ms=8, label="saddle (kept λ < 0)")
    if ambiguous.any():
        a1.plot(x[ambiguous], dim[ambiguous], "s", mfc="none", mec="tab:orange", ms=12, mew=1.5,
                label="ambiguous rank (gap < min_gap)")
    a1.set_ylabel("basin dimension (flat directions)")
    a1.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    a2.plot(x, logv, "-", color="tab:green", lw=1.2)
    if (~saddle).any():
        a2.plot(x[~saddle], logv[~saddle], "o", color="tab:green", label="minimum")
    if saddle.any():
        a2.plot(x[saddle], logv[saddle], "v", color="tab:red", ms=8, label="saddle (kept λ < 0)")
    a2.set_ylabel("log-volume (nats, curved subspace)")
    for i in best:
        for ax, y in ((a1, dim[i]), (a2, logv[i])):
            ax.plot(x[i], y, "*", color="gold", mec="k", ms=16, zorder=5,
                    label="place 1 (largest basin)" if ax is a1 else None)
    a2.set_xlabel("training step" if have_steps else "checkpoint (in name order)")
    files = sorted({r.get("file", "") for r in ok})
    if not have_steps:
        a2.set_xticks(x)
        label = (lambda r: short(r.get("source", ""))) if len(files) == 1 else \
            (lambda r: os.path.basename(r.get("file", "")) + ":" + short(r.get("source", "")))
        a2.set_xticklabels([label(r) for r in ok], rotation=30, ha="right", fontsize=8)
    ns = sorted({r.get("n") for r in ok})
    head = title or (os.path.basename(files[0]) if len(files) == 1 else f"{len(files)} files")
    sub = f"n {ns[0]}" if len(ns) == 1 else f"n varies ({ns[0]}..{ns[-1]}): log-volumes not comparable"
    if bad:
        sub += f"   ({bad} error row{'s' if bad > 1 else ''} not shown)"
    a1.set_title(f"{head}\n{sub}", fontsize=10)
    for ax in (a1, a2):
        ax.grid(True, alpha=0.3)
    a1.legend(fontsize=8, loc="best")
    a2.legend(fontsize=8, loc="best")
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(prog="plot_basins.py", description="Plot basinvol JSON output.")
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("spectrum", help="|λ| on a log scale with the cut and the gap (basinvol spectrum)")
    s.add_argument("input", help="basinvol spectrum --format json output, or -")
    s.add_argument("output", help="image file; type from the extension (.png, .svg, .pdf)")
    s.add_argument("--source", help="which row to plot when there are several (substring of source)")
    s.add_argument("--title")
    r = sub.add_parser("run", help="dimension and log-volume against step (basinvol rank/volume)")
    r.add_argument("input", help="basinvol rank or volume --format json output, or -")
    r.add_argument("output", help="image file; type from the extension (.png, .svg, .pdf)")
    r.add_argument("--title")
    a = p.parse_args(argv)
    try:
        rows = read_rows(a.input)
        if a.mode == "spectrum":
            pick = [x for x in rows if x.get("status") == "ok" and (a.source is None or a.source in x.get("source", ""))]
            if not pick:
                raise ValueError("no successful row" + (f" matching {a.source!r}" if a.source else ""))
            if len(pick) > 1:
                print(f"plot_basins: {len(pick)} rows; plotting {pick[0].get('source')} (choose with --source)",
                      file=sys.stderr)
            plot_spectrum(pick[0], a.output, a.title)
        else:
            plot_run(rows, a.output, a.title)
    except (OSError, ValueError, KeyError) as e:
        print(f"plot_basins: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
