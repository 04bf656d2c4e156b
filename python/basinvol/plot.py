"""Plots of basinvol results (matplotlib, no display needed).

From Python:

    import basinvol, basinvol.plot
    r = basinvol.analyze(H, eigenvalues=True)
    basinvol.plot.plot_spectrum(r, "spectrum.png")
    basinvol.plot.plot_run(basinvol.rank(["a.h5", "b.h5"]), "run.png")

From the shell (rows the command line wrote; JSON, JSON Lines, TSV or CSV):

    basinvol spectrum run.h5:/checkpoints/step_00100 --format json > s.json
    python3 -m basinvol.plot spectrum s.json spectrum.png
    basinvol rank a.h5 b.h5 --format json > r.json
    python3 -m basinvol.plot run r.json run.png [--group-by file|name] [--step-scale log]
    basinvol rank model.h5:/kfac --format json > k.json       # structured rows carry `blocks`
    python3 -m basinvol.plot blocks k.json layers.png

spectrum: |lambda| sorted, log scale, positive and negative eigenvalues marked
differently, the cut (tol), the noise floor and the gap between kept and
dropped drawn. run: basin dimension and log-volume against the training step,
one line per run (a file, or a `name`), on a log step axis when steps span
decades; saddles, ambiguous ranks and uncertain places marked. blocks: for
a structured Hessian's rows (their `blocks` list), each block's curved share
rank/n and its log-volume part against the step, one line per block.

The output type follows the extension (.png, .svg, .pdf); SVG keeps text as
text. INPUT may be - for standard input. Needs Debian's python3-matplotlib
and python3-numpy. See docs/python.md.
"""
import argparse
import json
import math
import os
import sys

import matplotlib

if "matplotlib.pyplot" not in sys.modules:  # a notebook's own backend stays
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from . import Error  # noqa: E402

__all__ = ["plot_spectrum", "plot_run", "plot_blocks", "read_rows"]


def _save(fig, out):
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # SVG text stays searchable text
        fig.savefig(out, dpi=110)
    plt.close(fig)


def read_rows(path):
    """Every row of basinvol output as dicts: JSON or JSON Lines (one or several
    documents, spectrum and compare output included), or TSV/CSV through
    basinvol.read_results (needs the compiled core)."""
    text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    if text.lstrip()[:1] not in ("{", "["):
        if path == "-":
            raise ValueError("standard input: only JSON and JSON Lines are read from standard input")
        from . import read_results
        return [r.to_dict() for r in read_results(path)]
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


def short(row):
    """FILE-NAME:DATASET of a row, for titles and labels (the file without its folders)."""
    file, dataset = row.get("file") or "", row.get("dataset") or ""
    if not file:
        return row.get("source", "")
    return os.path.basename(file) + (":" + dataset if dataset and dataset != "/" else "")


def plot_spectrum(row, out, title=None):
    """|λ| of one Hessian on a log scale with the cut, the noise floor and the
    gap. row: a basinvol.Result from analyze(..., eigenvalues=True), or a row
    of `basinvol spectrum --format json`. Returns {"kept": k, "shown": m}."""
    computed = ""
    if hasattr(row, "to_dict"):
        if row.eigenvalues is not None and not row.eigenvalues_complete:
            computed = f"   ({len(row.eigenvalues)} of {row.n} eigenvalues computed)"
        ev, row = row.eigenvalues, row.to_dict()
        if ev is None:
            raise ValueError(f"{row.get('source')}: no eigenvalues (use basinvol.analyze(..., eigenvalues=True))")
        lam = np.asarray(ev, dtype=float)
        kept = np.abs(lam) > (row.get("tol") or 0)
        # negatives="drop" leaves λ < −tol out of the volume: rank + dim + negative = n.
        if row.get("negative") and row["rank"] + row["dim"] + row["negative"] == row["n"]:
            kept &= lam > 0
    else:
        ev = row.get("eigenvalues")
        if ev is None:
            raise ValueError(f"{row.get('source')}: no eigenvalues (use `basinvol spectrum ... --format json`)")
        lam = np.array([e["eigenvalue"] for e in ev], dtype=float)
        kept = np.array([e["kept"] for e in ev], dtype=bool)
    if lam.size == 0:
        raise ValueError(f"{row.get('source')}: no eigenvalues to plot")
    order = np.argsort(-np.abs(lam), kind="stable")
    lam, kept = lam[order], kept[order]
    mag = np.abs(lam)
    tol = row.get("tol")
    floor = row.get("noise_floor")
    # Exact zeros are drawn a decade below everything else, the cut and the floor included.
    lows = [v for v in (mag[mag > 0].min() if np.any(mag > 0) else None, tol, floor) if v]
    tiny = min(lows) * 0.1 if lows else 1e-300
    shown = np.where(mag > 0, mag, tiny)  # exact zeros drawn at the bottom of the axis
    idx = np.arange(1, len(lam) + 1)

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
    if floor:
        ax.axhline(floor, color="tab:purple", ls=":", lw=1.2, label=f"noise floor ({floor:.2g})")
    if kept.any() and (~kept).any():
        lo_kept = mag[kept].min()
        hi_drop = max(mag[~kept].max(), floor or 0)  # the gap is measured down to the noise floor
        if hi_drop > 0:
            ax.axhspan(hi_drop, lo_kept, color="tab:green", alpha=0.15,
                       label=f"gap: {math.log10(lo_kept / hi_drop):.2f} decades")
        ax.axvline(kept.sum() + 0.5, color="0.5", lw=0.8)
    ax.set_xlabel("eigenvalue index (sorted by |λ|, largest first)")
    ax.set_ylabel("|λ|")
    if min(ax.get_ylim()) < np.finfo(float).tiny:
        # Subnormal values: matplotlib's log labels print their decades as
        # "0" or leave them out; label each decade from its exponent.
        def decade(v, _pos):
            if not v > 0:
                return ""
            e = math.log10(v)
            return f"$10^{{{round(e)}}}$" if abs(e - round(e)) < 0.05 else ""
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(decade))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    gap = row.get("gap")
    gap_txt = "unbounded" if gap is None else f"{gap:.2f} decades"
    sub = (f"n {row.get('n')}   rank {row.get('rank')}   dim {row.get('dim')}   "
           f"negative {row.get('negative')}   gap {gap_txt}")
    warn = row.get("warnings") or []
    if warn:
        sub += "   warnings: " + ",".join(warn)
    sub += computed
    ax.set_title((title or short(row)) + "\n" + sub, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)
    _save(fig, out)
    return {"kept": int(kept.sum()), "shown": int(lam.size)}


def _field(r, k, default=None):
    v = r.get(k, default) if isinstance(r, dict) else (r[k] if k in r else default)
    return default if v is None else v


def _as_row(r):
    """A plain row dict from a basinvol.Result or a dict."""
    return r.to_dict() if hasattr(r, "to_dict") else dict(r)


def _run_key(r, group_by):
    if group_by == "name":
        return _field(r, "name") or os.path.basename(_field(r, "file", "")) or "memory"
    return os.path.basename(_field(r, "file", "")) or _field(r, "name") or "memory"


def _step_scale(steps, scale):
    """'linear', 'log' or ('symlog', linthresh) for the step axis."""
    if scale not in ("auto", "linear", "log", "symlog"):
        raise ValueError(f"step_scale must be auto, linear, log or symlog, got {scale!r}")
    if scale in ("linear", "log"):
        return scale
    positive = steps[steps > 0]
    if scale == "symlog" or (scale == "auto" and steps.min() <= 0 and positive.size and positive.max() >= 20 * positive.min()):
        return ("symlog", float(positive.min()) if positive.size else 1.0)
    if scale == "auto" and steps.min() > 0 and steps.max() >= 20 * steps.min():
        return "log"
    return "linear"


def _set_step_axis(ax, steps, step_scale, have_steps):
    """Sets ax's x scale for these steps (see _step_scale); returns its name."""
    scale = _step_scale(steps, step_scale) if have_steps else "linear"
    if isinstance(scale, tuple):
        ax.set_xscale("symlog", linthresh=scale[1])
        return "symlog"
    ax.set_xscale(scale)
    return scale


def plot_run(rows, out, title=None, group_by="auto", step_scale="auto"):
    """Basin dimension (top) and log-volume (bottom) against the training step,
    one line per run. rows: basinvol.Result objects or row dicts (basinvol
    rank/volume output). A run is the rows of one file (group_by="file") or of
    one `name` attribute (group_by="name"); "auto" takes name when rows carry
    one. The step axis is log when the largest step is 20 times the smallest or more (symlog when
    step 0 is among them); step_scale="linear"/"log"/"symlog" forces it.
    Saddles, ambiguous ranks and uncertain places are marked; place 1 is a
    star. Returns what was drawn: {"runs": [labels], "xscale": ..., "title": ...}."""
    rows = [_as_row(r) for r in rows]
    ok = [r for r in rows if r.get("status") == "ok"]
    bad = len(rows) - len(ok)
    if not ok:
        raise ValueError("no successful rows to plot")
    if group_by == "auto":
        group_by = "name" if any(r.get("name") for r in ok) else "file"
    if group_by not in ("file", "name"):
        raise ValueError(f"group_by must be auto, file or name, got {group_by!r}")
    runs = {}
    for r in ok:
        runs.setdefault(_run_key(r, group_by), []).append(r)
    have_steps = all(r.get("step") is not None for r in ok)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 7), sharex=True, constrained_layout=True)
    style = {
        "saddle": dict(marker="v", ms=9, mfc="none", mec="tab:red", mew=1.6, label="saddle (kept λ < 0)"),
        "ambiguous": dict(marker="s", ms=12, mfc="none", mec="tab:orange", mew=1.5,
                          label="ambiguous rank (gap < min_gap)"),
        "uncertain": dict(marker="D", ms=11, mfc="none", mec="tab:purple", mew=1.2,
                          label="place may change within noise"),
        "best": dict(marker="*", ms=16, color="gold", mec="k", label="place 1 (largest basin)"),
    }
    tests = {
        "saddle": lambda r: (r.get("negative") or 0) > 0,
        "ambiguous": lambda r: "ambiguous_rank" in (r.get("warnings") or []),
        "uncertain": lambda r: "place_uncertain" in (r.get("warnings") or []),
        "best": lambda r: r.get("place") == 1,
    }
    drawn, all_x = [], []
    for k, label in enumerate(sorted(runs)):
        rs = runs[label]
        rs.sort(key=(lambda r: r["step"]) if have_steps else (lambda r: r.get("source", "")))
        x = np.array([r["step"] if have_steps else i for i, r in enumerate(rs)], dtype=float)
        dim = np.array([r["dim"] for r in rs], dtype=float)
        logv = np.array([np.nan if r.get("log_volume") is None else r["log_volume"] for r in rs], dtype=float)
        c = colors[k % len(colors)]
        a1.plot(x, dim, "-o", color=c, lw=1.4, ms=4, label=label)
        a2.plot(x, logv, "-o", color=c, lw=1.4, ms=4, label=label)
        drawn.append((rs, x, dim, logv))
        all_x.append(x)
    for what, test in tests.items():  # markers after the runs, so the legend lists runs first
        first = True
        for rs, x, dim, logv in drawn:
            m = np.array([test(r) for r in rs])
            if not m.any():
                continue
            st = dict(style[what])
            lab = st.pop("label")
            a1.plot(x[m], dim[m], ls="none", zorder=5, label=lab if first else None, **st)
            a2.plot(x[m], logv[m], ls="none", zorder=5, **st)
            first = False
    scale_name = _set_step_axis(a2, np.concatenate(all_x), step_scale, have_steps)
    a1.set_ylabel("basin dimension (flat directions)")
    a1.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    a2.set_ylabel("log-volume (nats, curved subspace)")
    a2.set_xlabel(("training step" + ("" if scale_name == "linear" else f" ({scale_name} scale)"))
                  if have_steps else "checkpoint (in name order)")
    files = sorted({os.path.basename(r.get("file") or "") or "memory" for r in ok})
    head = title or (files[0] if len(files) == 1 else ", ".join(files) if len(files) <= 3 else f"{len(files)} files")
    ns = sorted({r.get("n") for r in ok})
    sub = f"n {ns[0]}" if len(ns) == 1 else f"n varies ({ns[0]}..{ns[-1]}): log-volumes not comparable"
    sub += f"   {len(runs)} run{'s' if len(runs) > 1 else ''} (by {group_by})"
    if bad:
        sub += f"   ({bad} error row{'s' if bad > 1 else ''} not shown)"
    a1.set_title(f"{head}\n{sub}", fontsize=10)
    for ax in (a1, a2):
        ax.grid(True, which="major", alpha=0.3)
    a1.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, title="run / marker")
    a2.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, title="run")
    _save(fig, out)
    return {"runs": sorted(runs), "xscale": scale_name, "title": head}


def plot_blocks(rows, out, title=None, step_scale="auto"):
    """Per-block curvature of structured Hessians against the training step:
    for each top-level block (a layer), its curved fraction rank/n (top) and
    its log-volume part -1/2 sum log|lambda| over its curved directions
    (bottom), from the rows' `blocks` lists (basinvol rank/volume JSON of
    `blocks` structures). Rows of one file should be one run: blocks are
    matched by name. Returns {"blocks": [names], "rows": count, "xscale": ...}."""
    rows = [_as_row(r) for r in rows]
    ok = [r for r in rows if r.get("status") == "ok" and r.get("blocks")]
    if not ok:
        raise ValueError("no successful rows with per-block answers (a `blocks` structure's rows carry them)")
    have_steps = all(r.get("step") is not None for r in ok)
    ok.sort(key=(lambda r: r["step"]) if have_steps else (lambda r: r.get("source", "")))
    x = np.array([r["step"] if have_steps else i for i, r in enumerate(ok)], dtype=float)
    names = []
    for r in ok:
        names += [b["name"] for b in r["blocks"] if b["name"] not in names]
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 7), sharex=True, constrained_layout=True)
    for name in names:
        got = [next((b for b in r["blocks"] if b["name"] == name), None) for r in ok]
        frac = np.array([np.nan if b is None else b["rank"] / b["n"] for b in got], dtype=float)
        part = np.array([np.nan if b is None or b.get("log_volume_part") is None else b["log_volume_part"]
                         for b in got], dtype=float)
        n = max(b["n"] for b in got if b is not None)
        line = a1.plot(x, frac, "-o", lw=1.4, ms=4, label=f"{name} (n {n})")[0]
        a2.plot(x, part, "-o", lw=1.4, ms=4, color=line.get_color(), label=name)
        neg = np.array([b is not None and (b.get("negative") or 0) > 0 for b in got])
        if neg.any():
            a1.plot(x[neg], frac[neg], ls="none", marker="v", ms=9, mfc="none", mec="tab:red", mew=1.4)
    scale = _set_step_axis(a2, x, step_scale, have_steps)
    a1.set_ylabel("curved fraction rank / n")
    a2.set_ylabel("log-volume part (nats)")
    a2.set_xlabel("training step" if have_steps else "checkpoint (in name order)")
    head = title or short(ok[0]).split(":")[0]
    a1.set_title(f"{head}\nper block: {len(names)} blocks, {len(ok)} checkpoints (red: the block has kept λ < 0)",
                 fontsize=10)
    for ax in (a1, a2):
        ax.grid(True, which="major", alpha=0.3)
    a1.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, title="block")
    _save(fig, out)
    return {"blocks": names, "rows": len(ok), "xscale": scale}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python3 -m basinvol.plot", description="Plot basinvol output.")
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
    r.add_argument("--group-by", choices=["auto", "file", "name"], default="auto",
                   help="a run is a file's rows or a name's rows (auto: name when rows carry one)")
    r.add_argument("--step-scale", choices=["auto", "linear", "log", "symlog"], default="auto")
    b = sub.add_parser("blocks", help="each block's curved fraction and log-volume part against step")
    b.add_argument("input", help="basinvol rank or volume --format json output of blocks structures, or -")
    b.add_argument("output", help="image file; type from the extension (.png, .svg, .pdf)")
    b.add_argument("--title")
    b.add_argument("--step-scale", choices=["auto", "linear", "log", "symlog"], default="auto")
    a = p.parse_args(argv)
    try:
        rows = read_rows(a.input)
        if a.mode == "spectrum":
            pick = [x for x in rows if x.get("status") == "ok" and (a.source is None or a.source in x.get("source", ""))]
            if not pick:
                raise ValueError("no successful row" + (f" matching {a.source!r}" if a.source else ""))
            if len(pick) > 1:
                print(f"basinvol.plot: {len(pick)} rows; plotting {pick[0].get('source')} (choose with --source)",
                      file=sys.stderr)
            plot_spectrum(pick[0], a.output, a.title)
        elif a.mode == "blocks":
            plot_blocks(rows, a.output, a.title, step_scale=a.step_scale)
        else:
            plot_run(rows, a.output, a.title, group_by=a.group_by, step_scale=a.step_scale)
    except (OSError, ValueError, KeyError, ImportError, Error) as e:
        print(f"basinvol.plot: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
