#!/usr/bin/env bash
# The measurements of docs/parity.md: on the Fashion-MNIST presets (fmnist-<ssl>-<strategy>),
# each difference between kaizen-cl's own choice and the authors' released code switched on its
# own, 3 seeds, against the preset as it is: for Kaizen, whose fmnist presets keep kaizen-cl's
# defaults, a row switches the released behaviour on; for LUMP, whose presets run the released
# code, a row switches kaizen-cl's earlier choice back on. The SLCA rows (SSL method none) run
# the CPU demonstration's slca-fmnist-<strategy> presets, which run the released code, on SLCA's
# seeds 1993, 1996, 1997 from the ViT at runs/pretrained/vit (docs/results-pretrained/commands.sh
# makes it), each switching kaizen-cl's earlier choice back on. Usage:
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
  "lump-task-end-buffer|simsiam|lump|strategy.buffer_update=task-end strategy.buffer_views=fresh"
  "lump-fresh-buffer-views|simsiam|lump|strategy.buffer_views=fresh"
  "lump-cosine-lr|simsiam|lump|optim.schedule=cosine"
  "lump-stacked-batchnorm|simsiam|lump|model.batchnorm_views=stacked"
  "lump-three-layer-projector|simsiam|lump|ssl.proj_hidden_layers=2 ssl.proj_output_norm=batchnorm"
  "lump-family-crops|simsiam|lump|augment.crop_scale=[0.3,1.0]"
  "lump-barlow-loss-scale|barlow|lump|ssl.loss_scale=0.1 ssl.off_diagonal_weight=5.1e-3"
  "lump-barlow-biased-std|barlow|lump|ssl.std_estimator=biased-eps"
  "slca-earlier-alignment|none|slca|classifier.align_sampling=once classifier.align_batch_size=128 classifier.align_schedule=step classifier.align_from_task=0"
  "slcapp-all-adapters|none|slcapp|strategy.lora_targets=[qkv,fc1,fc2]"
  "slcapp-relative-floor|none|slcapp|optim.lr_bounds=relative optim.lr_update=step"
  "sl-no-decay-on-norms|none|sl|optim.weight_decay_on=weights"
)

chosen=("$@")
for row in "${rows[@]}"; do
  IFS='|' read -r name ssl strategy overrides <<<"$row"
  if [ ${#chosen[@]} -gt 0 ] && [[ ! " ${chosen[*]} " == *" $name "* ]]; then continue; fi
  family=fmnist row_seeds=$seeds
  if [[ $ssl == none ]]; then family=slca-fmnist row_seeds=1993,1996,1997; fi
  # The preset as it is, once per (SSL method, strategy), shared by the rows that use it.
  "$kaizen" sweep "$family" --ssl "$ssl" --strategies "$strategy" --seeds "$row_seeds" \
    --out "$root/default" train.progress=false
  # shellcheck disable=SC2086  # the overrides are separate words
  "$kaizen" sweep "$family" --ssl "$ssl" --strategies "$strategy" --seeds "$row_seeds" \
    --out "$root/$name" train.progress=false $overrides
done
