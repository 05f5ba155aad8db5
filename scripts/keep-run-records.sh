#!/usr/bin/env bash
# Copies the small files of every complete run below SRC (config.yaml, results.json, costs.json,
# metrics.csv) to DEST with the same layout; checkpoints stay behind. `kaizen compare` reads
# such copies as it reads the runs, and `kaizen sweep` skips a point whose copy is put back.
#
#   bash scripts/keep-run-records.sh runs/study docs/results/runs
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: scripts/keep-run-records.sh SRC DEST" >&2
  exit 2
fi
dest=$(realpath -m "$2")
cd "$1"
grep -l '"complete": true' --include=results.json -r . | xargs -r -n1 dirname | sort |
while read -r run; do
  mkdir -p "$dest/$run"
  for name in config.yaml results.json costs.json metrics.csv; do
    if [ -f "$run/$name" ]; then cp "$run/$name" "$dest/$run/"; fi
  done
done
