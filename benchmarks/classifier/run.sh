#!/usr/bin/env bash
# The measurements of docs/classifier.md: the continual classifier against the linear probe on
# its own final features, on the Fashion-MNIST presets (fmnist-simclr-<strategy>), in both
# class-incremental scenarios: 5 tasks of 2 classes (5x2) and 2 tasks of 5 (2x5). Usage:
#   bash benchmarks/classifier/run.sh ROOT STAGE [SCENARIO]
# STAGE:
#   select     the classifier's corrections on seeds 0-2, to choose one (both scenarios)
#   diagnose   one setting of Kaizen's changed at a time on seeds 0-2 (5x2 only)
#   final      the chosen correction, kaizen-refit, against finetune, cassle and the paper's
#              kaizen, and finetune with the re-fit, on seeds 3-5 (both scenarios)
#   scratch    the demo's config as it is: scratch against kaizen and kaizen-refit, seeds 0-2, for
#              time (run it alone on the machine)
# SCENARIO (select and final): 5x2 or 2x5, both when left out; for diagnose, the names of the
# variants to run, all when left out. Runs already complete are skipped, so it can be re-run to
# finish. Then
#   python benchmarks/classifier/table.py ROOT     prints the tables of docs/classifier.md.
set -euo pipefail
root=${1:?usage: run.sh ROOT STAGE [SCENARIO]}
stage=${2:?usage: run.sh ROOT STAGE [SCENARIO]}
scenarios=${3:-5x2 2x5}
kaizen=${KAIZEN:-.venv/bin/kaizen}
threads=${THREADS:-2}
common=(train.progress=false "eval.probes=[linear]" "train.num_threads=$threads")

tasks_of() { case $1 in 5x2) echo 5 ;; 2x5) echo 2 ;; *) echo "unknown scenario $1" >&2; exit 2 ;; esac; }

# Runs every "variant | strategy | overrides" row into ROOT/STAGE/SCENARIO/<variant>.
run_variants() {
  local stage=$1 scenario=$2 seeds=$3
  shift 3
  local row name strategy overrides
  for row in "$@"; do
    IFS='|' read -r name strategy overrides <<<"$row"
    # shellcheck disable=SC2086  # the overrides are separate words
    "$kaizen" sweep fmnist --ssl simclr --strategies "$strategy" --seeds "$seeds" \
      --out "$root/$stage/$scenario/$name" "${common[@]}" "scenario.num_tasks=$(tasks_of "$scenario")" \
      $overrides
  done
}

# Runs the rows into ROOT/STAGE/SCENARIO/<variant> for every scenario asked for.
each_scenario() {
  local stage=$1 seeds=$2 scenario
  shift 2
  for scenario in $scenarios; do run_variants "$stage" "$scenario" "$seeds" "$@"; done
}

case $stage in
  select)
    each_scenario select 0,1,2 \
      "kaizen|kaizen|" \
      "kaizen-weight-align|kaizen|classifier.weight_align=true" \
      "kaizen-align-replay|kaizen|classifier.align=true classifier.align_statistics=replay" \
      "kaizen-refit-20-epochs|kaizen|classifier.refit=true classifier.refit_epochs=20" \
      "kaizen-refit-60-epochs|kaizen|classifier.refit=true classifier.refit_epochs=60" \
      "kaizen-refit-20-epochs-align-replay|kaizen|classifier.refit=true classifier.refit_epochs=20 classifier.align=true classifier.align_statistics=replay" \
      "kaizen-seen-refit-20-epochs|kaizen|strategy.classifier_distill_classes=seen classifier.refit=true classifier.refit_epochs=20" \
      "kaizen-seen-refit-60-epochs|kaizen|strategy.classifier_distill_classes=seen classifier.refit=true classifier.refit_epochs=60" \
      "kaizen-replay-kd-refit-20-epochs|kaizen-replay-kd|classifier.refit=true classifier.refit_epochs=20" ;;
  diagnose)
    variants=(
      "replay-batch-128|kaizen|replay.batch_size=128"
      "replay-20pc|kaizen|replay.fraction_per_class=0.2"
      "distill-seen|kaizen|strategy.classifier_distill_classes=seen"
      "linear-head|kaizen|model.classifier_hidden_dim=null"
      "labels-10pc|kaizen|scenario.label_fraction=0.1"
    )
    chosen=()
    for row in "${variants[@]}"; do
      if [ $# -lt 3 ] || [[ " $3 " == *" ${row%%|*} "* ]]; then chosen+=("$row"); fi
    done
    run_variants diagnose 5x2 0,1,2 "${chosen[@]}" ;;
  final)
    each_scenario final 3,4,5 \
      "finetune|finetune|" \
      "cassle|cassle|" \
      "kaizen|kaizen|" \
      "kaizen-refit|kaizen-refit|" \
      "finetune-refit|finetune|classifier.refit=true" ;;
  scratch)
    for seed in 0 1 2; do
      for strategy in scratch kaizen kaizen-refit; do
        "$kaizen" run demo strategy.name=$strategy seed=$seed train.progress=false \
          --out "$root/scratch/demo/$strategy-seed$seed"
      done
    done ;;
  *) echo "unknown stage $stage: select, diagnose, final or scratch" >&2; exit 2 ;;
esac
