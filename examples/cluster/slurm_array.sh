#!/bin/bash
# basinvol over a cluster: a Slurm job array, one shard per task.
#
#   sbatch --array=1-8 examples/cluster/slurm_array.sh
#   # when every task is done:
#   basinvol rank --from-results results/shard-*.jsonl -f tsv > ranking.tsv
#   # (a task whose file is missing, or one that timed out, is named there
#   # as an error row "shard I/N", exit 1; rerun it alone with the count:
#   #   SHARDS=8 sbatch --array=3 examples/cluster/slurm_array.sh)
#
# Each task takes its 1/N of the Hessians listed in $LIST (one SOURCE a line:
# FILE or FILE:PATH), chosen by a hash of FILE:/dataset, so the tasks never
# overlap and together cover the list. A task that is requeued or run again
# keeps the rows it already wrote (--resume). -j and --max-memory default to
# the CPUs and (half of) the memory Slurm gives the task.
#SBATCH --job-name=basinvol
#SBATCH --cpus-per-task=4
#SBATCH --mem=16G
#SBATCH --time=02:00:00
#SBATCH --output=basinvol-%A_%a.log
set -euo pipefail
list="${LIST:-checkpoints.txt}"
out="${OUT:-results}"
basinvol="${BASINVOL:-basinvol}"
n="${SHARDS:-${SLURM_ARRAY_TASK_COUNT:?run with sbatch --array=1-N}}"  # SHARDS: N when rerunning some tasks
i="${SLURM_ARRAY_TASK_ID:?run with sbatch --array=1-N}"
mkdir -p "$out"
"$basinvol" volume --files-from "$list" --shard "$i/$n" \
    --format jsonl -o "$out/shard-$i.jsonl" --resume --no-progress
