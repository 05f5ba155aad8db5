#!/usr/bin/env bash
# The measurements of docs/efficiency.md: each strategy without and with progressive layer
# freezing on Fashion-MNIST (the fmnist presets), one run at a time so that the training times
# are comparable, in two stages so that the threshold is chosen before the comparison:
#
#   1. selection, seeds 0 1 2: plain and every freezing variant at every candidate threshold;
#      choose.py then picks, per strategy and variant, the threshold with the largest whole-run
#      backward-FLOPs saving whose accuracy is within one standard deviation of plain
#      (ROOT/choice.json);
#   2. comparison, seeds 3 4 5 (which took no part in the choice): plain and each variant at
#      its chosen threshold.
#
# Usage: bash benchmarks/efficiency/run.sh [ROOT] (default runs/efficiency). Runs already
# complete are skipped, so it can be re-run to finish. Then
# `python benchmarks/efficiency/table.py ROOT` prints the comparison and the selection tables.
# DRY_RUN=1 prints the commands instead of running them (the comparison stage reads
# ROOT/choice.json when there is one, else shows CHOSEN for the threshold). EXTRA_VARIANTS adds
# freezing variants, ';'-separated (see `variants` below); PAIRS=simsiam-lump,... runs only
# those of the (name, ssl, strategy) pairs.
set -euo pipefail
root=${1:-runs/efficiency}
kaizen=${KAIZEN:-.venv/bin/kaizen}
python=${PYTHON:-.venv/bin/python}
here=$(dirname "$0")
selection_seeds=(0 1 2)
comparison_seeds=(3 4 5)

# (name, ssl, strategy): LUMP with SimSiam and Barlow Twins, Kaizen with the demo's SimCLR.
pairs=("simsiam-lump simsiam lump" "barlow-lump barlow lump" "simclr-kaizen simclr kaizen")
if [[ -n ${PAIRS:-} ]]; then
  wanted=",$PAIRS,"
  kept=()
  for pair in "${pairs[@]}"; do
    [[ $wanted == *",${pair%% *},"* ]] && kept+=("$pair")
  done
  pairs=("${kept[@]}")
fi

# Freezing variants: a name, the candidate thresholds (','-separated), then the overrides that
# make it (besides freeze.enabled=true and freeze.threshold). The covariance measure's ratios of
# this backbone lie between 0.5 and 1; the subspace measure's ratio is the share of a block's
# input norm in earlier tasks' input subspace (TRGP's criterion is 0.5).
variants=(
  "covariance-prefix 0.8,0.9,0.95"
  "subspace-ranking 0.5,0.7,0.9 freeze.measure=subspace freeze.selection=ranking"
)
if [[ -n ${EXTRA_VARIANTS:-} ]]; then
  IFS=';' read -r -a extra <<<"$EXTRA_VARIANTS"
  variants+=("${extra[@]}")
fi

run() {
  if [[ ${DRY_RUN:-0} == 1 ]]; then
    echo "$*"
  else
    "$@"
  fi
}

# sweep STAGE NAME SSL STRATEGY SEED DIR [OVERRIDES...]: one run into ROOT/STAGE/NAME/DIR.
sweep() {
  local stage=$1 name=$2 ssl=$3 strategy=$4 seed=$5 dir=$6
  shift 6
  run "$kaizen" sweep fmnist --ssl "$ssl" --strategies "$strategy" --seeds "$seed" \
    --out "$root/$stage/$name/$dir" train.progress=false "$@"
}

# freeze STAGE NAME SSL STRATEGY SEED VARIANT THRESHOLD: one freezing run.
freeze() {
  local stage=$1 name=$2 ssl=$3 strategy=$4 seed=$5 variant=$6 threshold=$7
  read -r -a made <<<"$variant"
  sweep "$stage" "$name" "$ssl" "$strategy" "$seed" "freeze-${made[0]}-$threshold" \
    freeze.enabled=true "freeze.threshold=$threshold" "${made[@]:2}"
}

# thresholds STAGE NAME VARIANT: the thresholds a stage runs of a variant, one per line: every
# candidate in the selection, the chosen one in the comparison (CHOSEN in a dry run before any
# selection; nothing where no candidate kept plain's accuracy).
thresholds() {
  local stage=$1 name=$2 variant=$3
  read -r -a made <<<"$variant"
  if [[ $stage == selection ]]; then
    tr ',' '\n' <<<"${made[1]}"
  elif [[ -f $choice ]]; then
    "$python" "$here/choose.py" --read "$choice" "$name" "${made[0]}"
  else
    echo CHOSEN
  fi
}

# stage STAGE SEED...: seed by seed, the plain run and then each variant's, so that a drift of
# the machine's speed reaches every variant alike instead of the variant that happens to run last.
stage() {
  local stage=$1
  shift
  for pair in "${pairs[@]}"; do
    read -r name ssl strategy <<<"$pair"
    for seed in "$@"; do
      sweep "$stage" "$name" "$ssl" "$strategy" "$seed" plain
      for variant in "${variants[@]}"; do
        local chosen
        chosen=$(thresholds "$stage" "$name" "$variant")
        if [[ -z $chosen ]]; then
          echo "run.sh: no threshold of $name ${variant%% *} kept plain's accuracy; not compared" >&2
          continue
        fi
        for threshold in $chosen; do
          freeze "$stage" "$name" "$ssl" "$strategy" "$seed" "$variant" "$threshold"
        done
      done
    done
  done
}

choice=$root/choice.json
stage selection "${selection_seeds[@]}"
if [[ ${DRY_RUN:-0} == 1 && ! -d $root/selection ]]; then
  echo "$python $here/choose.py $root/selection $choice"
else
  "$python" "$here/choose.py" "$root/selection" "$choice" >/dev/null
fi
stage comparison "${comparison_seeds[@]}"
