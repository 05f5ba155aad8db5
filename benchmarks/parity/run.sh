#!/usr/bin/env bash
# The measurements of docs/parity.md: on the Fashion-MNIST presets (fmnist-<ssl>-<strategy>),
# each difference between kaizen-cl's defaults and the authors' released code switched to the
# released behaviour on its own, 3 seeds, against the preset as it is. Usage:
#   bash benchmarks/parity/run.sh [ROOT] [ROW ...]     (default ROOT runs/parity; all rows)
# Runs already complete are skipped, so it can be re-run to finish. Then
#   python benchmarks/parity/table.py ROOT             prints the tables of docs/parity.md.
set -euo pipefail
root=${1:-runs/parity}
shift || true
kaizen=${KAIZEN:-.venv/bin/kaizen}
seeds=0,1,2

# row name | SSL method | strategy | overrides that give the released behaviour
rows=(
  "kaizen-teacher-batchnorm|simclr|kaizen|strategy.teacher_batchnorm=batch"
  "kaizen-lars-classifier|simclr|kaizen|optim.lars_classifier=true"
  "kaizen-moco-normalised-query|mocov2plus|kaizen|ssl.distill_input=normalized"
  "kaizen-vicreg-summed-variance|vicreg|kaizen|ssl.variance_branches=sum"
  "kaizen-epoch-warmup|simclr|kaizen|optim.lr_update=epoch optim.lr_bounds=absolute"
  "kaizen-replay-first-passes|simclr|kaizen|replay.selection=first replay.sampling=passes"
  "kaizen-bicubic-crops|simclr|kaizen|augment.crop_interpolation=bicubic"
  "kaizen-batchnorm-per-view|simclr|kaizen|model.batchnorm_views=per-view"
  "kaizen-momentum-own-statistics|byol|kaizen|ssl.momentum_buffers=own"
  "kaizen-barlow-weights|barlow|kaizen|ssl.off_diagonal_weight=5e-3 ssl.loss_scale=0.025 ssl.distill_off_diagonal_weight=5e-3 ssl.distill_loss_scale=0.1"
  "kaizen-all-released|simclr|kaizen|strategy.teacher_batchnorm=batch optim.lars_classifier=true optim.lr_update=epoch optim.lr_bounds=absolute replay.selection=first replay.sampling=passes augment.crop_interpolation=bicubic model.batchnorm_views=per-view"
)

chosen=("$@")
for row in "${rows[@]}"; do
  IFS='|' read -r name ssl strategy overrides <<<"$row"
  if [ ${#chosen[@]} -gt 0 ] && [[ ! " ${chosen[*]} " == *" $name "* ]]; then continue; fi
  # The preset as it is, once per (SSL method, strategy), shared by the rows that use it.
  "$kaizen" sweep fmnist --ssl "$ssl" --strategies "$strategy" --seeds "$seeds" \
    --out "$root/default" train.progress=false
  # shellcheck disable=SC2086  # the overrides are separate words
  "$kaizen" sweep fmnist --ssl "$ssl" --strategies "$strategy" --seeds "$seeds" \
    --out "$root/$name" train.progress=false $overrides
done
