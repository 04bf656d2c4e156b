#!/usr/bin/env bash
# The batch workload: 100 Hessians, n = 1000, float32, ranks 40..1000, in one
# file (batch_100x1000_f32). basinvol (every core: -j default) and peer_numpy
# run alternately, one of each per round under hyperfine; the table gives the
# median wall time, the median of the per-round peer/basinvol ratios, and the
# peak RSS (/usr/bin/time -f %M). Round 1 also checks that basinvol's rank,
# dim and negative equal the peer's and log_volume agrees to 1e-9 relative.
#
#   bash bench/batch.sh [--data DIR] [--rounds N] [--basinvol PATH] [--peer-coretype NAME]
#
# --peer-coretype runs the peer with OPENBLAS_CORETYPE=NAME (e.g. SkylakeX):
# the same OpenBLAS kernels basinvol selects for itself on CPUs Debian's
# OpenBLAS does not recognize (docs/batch.md), to separate that gain from
# the rest.
#
# DIR (default: bench-data beside the repository, or $BASINVOL_BENCH_DATA)
# gets the workloads from ../shared/bench/make_workloads.py when missing.
# Needs hyperfine, /usr/bin/time and /usr/bin/python3 with numpy, scipy, h5py.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
shared="${BASINVOL_BENCH_SHARED:-$(dirname "$repo")/shared/bench}"
data="${BASINVOL_BENCH_DATA:-$(dirname "$repo")/bench-data}"
rounds=5
peer_env=""
bin="$repo/build/basinvol"
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --basinvol) bin="$2"; shift 2 ;;
    --peer-coretype) peer_env="env OPENBLAS_CORETYPE=$2 "; shift 2 ;;
    *) echo "usage: bash bench/batch.sh [--data DIR] [--rounds N] [--basinvol PATH] [--peer-coretype NAME]" >&2; exit 2 ;;
  esac
done
file="$data/batch_100x1000_f32.h5"
[ -f "$file" ] || /usr/bin/python3 "$shared/make_workloads.py" "$data" >&2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# --cut dtype: the peer's rule (tol = max|λ|·n·ε_float32). basinvol's default
# `auto` cut keeps one more eigenvalue on step_0095, where a 4.5-decade gap
# sits under the dtype tol (docs/method.md); the cost is the same.
bv_cmd="$bin volume $file --format tsv --no-progress --cut dtype"
peer_cmd="${peer_env}/usr/bin/python3 $shared/peer_numpy.py $file"

# Same answers first (and warm caches).
$bv_cmd > "$work/bv.tsv"
$peer_cmd > "$work/peer.tsv"
/usr/bin/python3 - "$work/bv.tsv" "$work/peer.tsv" <<'PY'
import sys
def rows(p):
    lines = [l.rstrip("\n").split("\t") for l in open(p)]
    return {r[lines[0].index("source")]: dict(zip(lines[0], r)) for r in lines[1:]}
bv, ref = rows(sys.argv[1]), rows(sys.argv[2])
assert set(bv) == set(ref), "different sources"
for s, r in ref.items():
    for k in ("rank", "dim", "negative"):
        assert bv[s][k] == r[k], f"{s}: {k} {bv[s][k]} != peer {r[k]}"
    a, b = float(bv[s]["log_volume"]), float(r["log_volume"])
    assert abs(a - b) <= 1e-9 * max(1.0, abs(b)), f"{s}: log_volume {a} != peer {b}"
print(f"checked: {len(ref)} rows agree with peer_numpy", file=sys.stderr)
PY

for i in $(seq 1 "$rounds"); do
  # One run of each, alternating which goes first; RSS from /usr/bin/time.
  if [ $((i % 2)) -eq 1 ]; then order=(bv peer); else order=(peer bv); fi
  cmds=()
  for t in "${order[@]}"; do
    c="$bv_cmd"; [ "$t" = peer ] && c="$peer_cmd"
    cmds+=("/usr/bin/time -f %M -o $work/$t.rss.$i $c > /dev/null")
  done
  hyperfine --runs 1 --style none --export-json "$work/round.$i.json" -n "${order[0]}" "${cmds[0]}" \
    -n "${order[1]}" "${cmds[1]}" > /dev/null 2>&1
done

/usr/bin/python3 - "$work" "$rounds" "$(nproc)" "$peer_env" <<'PY'
import json, statistics, sys, platform, time
work, rounds, cores, peer_env = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].strip()
t = {"bv": [], "peer": []}
rss = {"bv": [], "peer": []}
for i in range(1, rounds + 1):
    for r in json.load(open(f"{work}/round.{i}.json"))["results"]:
        t[r["command"]].append(r["mean"])
    for k in t:
        rss[k].append(int(open(f"{work}/{k}.rss.{i}").read().split()[-1]) / 1024)
ratios = [p / b for p, b in zip(t["peer"], t["bv"])]
print(f"batch_100x1000_f32: {rounds} paired rounds, {cores} cores, {platform.platform()}, {time.strftime('%Y-%m-%d')}"
      + (f"; peer run with {peer_env.replace('env ', '')}" if peer_env else "") + "\n")
print("| workload | basinvol | RSS | peer_numpy | RSS | peer/basinvol (median of rounds) |")
print("|---|---|---|---|---|---|")
print(f"| batch_100x1000_f32 | {statistics.median(t['bv']):.2f} s | {max(rss['bv']):.0f} MB | "
      f"{statistics.median(t['peer']):.2f} s | {max(rss['peer']):.0f} MB | {statistics.median(ratios):.1f}x "
      f"(min {min(ratios):.1f}x, max {max(ratios):.1f}x) |")
PY
