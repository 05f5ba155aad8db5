#!/usr/bin/env bash
# The measurements of docs/efficiency.md: each strategy without and with progressive layer
# freezing at several thresholds, on Fashion-MNIST (the fmnist presets), 3 seeds, one run at a
# time so that the training times are comparable. Usage: bash benchmarks/efficiency/run.sh [ROOT]
# (default runs/efficiency). Runs already complete are skipped, so it can be re-run to finish.
# Then `python benchmarks/efficiency/table.py ROOT` prints the tables of docs/efficiency.md.
set -euo pipefail
root=${1:-runs/efficiency}
kaizen=${KAIZEN:-.venv/bin/kaizen}
seeds=(0 1 2)
thresholds=(0.8 0.9 0.95)

# (name, ssl, strategy): LUMP with SimSiam and Barlow Twins, Kaizen with the demo's SimCLR.
pairs=("simsiam-lump simsiam lump" "barlow-lump barlow lump" "simclr-kaizen simclr kaizen")

for pair in "${pairs[@]}"; do
  read -r name ssl strategy <<<"$pair"
  # Seed by seed, the plain run and then each threshold's: a drift of the machine's speed
  # reaches every variant alike instead of the variant that happens to run last.
  for seed in "${seeds[@]}"; do
    "$kaizen" sweep fmnist --ssl "$ssl" --strategies "$strategy" --seeds "$seed" \
      --out "$root/$name/plain" train.progress=false
    for threshold in "${thresholds[@]}"; do
      "$kaizen" sweep fmnist --ssl "$ssl" --strategies "$strategy" --seeds "$seed" \
        --out "$root/$name/freeze-$threshold" train.progress=false \
        freeze.enabled=true "freeze.threshold=$threshold"
    done
  done
  runs=("$root/$name"/{plain,freeze-*}/"$ssl-$strategy"-seed*)
  # LUMP trains no classifier: its accuracy is the task-aware kNN it reports.
  if [[ $strategy == lump ]]; then
    "$kaizen" compare "${runs[@]}" --probe knn-task --out "$root/$name/compare"
  else
    "$kaizen" compare "${runs[@]}" --out "$root/$name/compare"
  fi
  "$kaizen" compare "${runs[@]}" --probe knn --out "$root/$name/compare-knn"
done
