#!/usr/bin/env bash
# The digits example, end to end: train a small tanh MLP on scikit-learn's
# bundled digits data, export the loss Hessian at 5 checkpoints into one HDF5
# file, rank the basins with basinvol and plot the run and one spectrum.
#
#   bash examples/digits/run.sh [OUTDIR] [BASINVOL]
#
# OUTDIR defaults to ./digits_out; BASINVOL to $BASINVOL, else build/basinvol
# of this repository. Writes OUTDIR/digits.h5, rank.json, spectrum.json,
# run.png and spectrum.png; prints the ranking table. Runs in well under a
# minute on 2 cores. Needs /usr/bin/python3 with Debian's python3-torch,
# python3-sklearn, python3-h5py and python3-matplotlib.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$PWD/digits_out}"
bin="${2:-${BASINVOL:-$root/build/basinvol}}"
py=/usr/bin/python3

if [ ! -x "$bin" ]; then
  echo "digits: no basinvol binary at $bin (build it with: bash scripts/run.sh build)" >&2
  exit 2
fi
mkdir -p "$out"
h5="$out/digits.h5"

"$py" "$here/train.py" --out "$h5"

# Place 1 is the largest basin: most flat directions first, then largest log-volume.
"$bin" rank "$h5" --format json > "$out/rank.json"
"$bin" rank "$h5"

last="$("$py" -c 'import json,sys; rows=json.load(open(sys.argv[1]))["rows"]; print(max(rows, key=lambda r: r["step"])["dataset"])' "$out/rank.json")"
"$bin" spectrum "$h5:$last" --format json > "$out/spectrum.json"

PYTHONPATH="$root/python" "$py" -m basinvol.plot run "$out/rank.json" "$out/run.png" --title "digits MLP 64-8-10: basins over training"
PYTHONPATH="$root/python" "$py" -m basinvol.plot spectrum "$out/spectrum.json" "$out/spectrum.png"
echo "digits: wrote $h5, $out/rank.json, $out/run.png, $out/spectrum.png" >&2
