#!/usr/bin/env bash
# The structured digits example: train a CNN of 105,226 parameters on
# scikit-learn's digits, export 4 checkpoints as per-layer Kronecker (K-FAC)
# and Gauss-Newton-factor structures, rank the basins with basinvol, print
# the per-layer table, compare with the Laplace-style det(H + δI) ranking and
# plot the per-layer curvature.
#
#   bash examples/digits/run_structured.sh [OUTDIR] [BASINVOL] [-- TRAIN OPTIONS]
#
# OUTDIR defaults to ./digits_cnn_out; BASINVOL to $BASINVOL, else
# build/basinvol of this repository. Writes OUTDIR/cnn.h5 (about 550 MB),
# kfac.json, ggn.json, layers.tsv, kfac_layers.png and ggn_layers.png. Takes
# about 2.5 minutes on 2 cores (training and export; basinvol itself takes
# seconds). Options after -- go to train_structured.py (e.g. --steps 5,20
# --width 4 --hidden 16 for a quick run). Needs /usr/bin/python3 with
# Debian's python3-torch, python3-sklearn, python3-h5py, python3-matplotlib.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
args=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do args+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
out="${args[0]:-$PWD/digits_cnn_out}"
bin="${args[1]:-${BASINVOL:-$root/build/basinvol}}"
py=/usr/bin/python3
delta="${DELTA:-1e-3}"

if [ ! -x "$bin" ]; then
  echo "digits: no basinvol binary at $bin (build it with: bash scripts/run.sh build)" >&2
  exit 2
fi
mkdir -p "$out"
h5="$out/cnn.h5"
"$py" "$here/train_structured.py" --out "$h5" "$@"

for kind in kfac ggn; do
  echo "== $kind: basins ranked by dimension, then log-volume"
  "$bin" rank "$h5:/$kind"
  "$bin" rank "$h5:/$kind" --regularized "$delta" --format json > "$out/$kind.json"
done

echo "== the last checkpoint, layer by layer (each block on its own)"
last="$("$py" -c 'import json,sys; rows=json.load(open(sys.argv[1]))["rows"]; print(max(rows, key=lambda r: r["step"])["dataset"])' "$out/kfac.json")"
"$bin" volume "$h5:$last" "$h5:${last/kfac/ggn}" --per-block
"$bin" volume "$h5:$last" "$h5:${last/kfac/ggn}" --per-block --format tsv -o "$out/layers.tsv"

echo "== basinvol's places against the Laplace-style det(H + ${delta} I) places"
"$py" - "$out/kfac.json" "$out/ggn.json" <<'PY'
import json, sys
for path in sys.argv[1:]:
    rows = sorted(json.load(open(path))["rows"], key=lambda r: r["step"])
    print(path.rsplit("/", 1)[-1])
    print(f"  {'step':>6} {'dim':>8} {'log_volume':>12} {'place':>6} {'log det(H+dI) vol':>18} {'place_reg':>9}")
    for r in rows:
        print(f"  {r['step']:>6} {r['dim']:>8} {r['log_volume']:>12.1f} {r['place']:>6} "
              f"{r['log_volume_regularized']:>18.1f} {r['place_regularized']:>9}")
PY

for kind in kfac ggn; do
  PYTHONPATH="$root/python" "$py" -m basinvol.plot blocks "$out/$kind.json" "$out/${kind}_layers.png" \
    --title "digits CNN ($kind): curvature per layer over training"
done
echo "digits: wrote $h5, $out/kfac.json, $out/ggn.json, $out/layers.tsv, $out/kfac_layers.png, $out/ggn_layers.png" >&2
