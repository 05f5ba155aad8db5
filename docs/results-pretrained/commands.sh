#!/usr/bin/env bash
# The CPU demonstration of docs/results-pretrained.md, from the repository root after
# `make install data`. Writes runs/pretrained/ and runs/pretrained-demo/.
set -euo pipefail
kaizen=.venv/bin/kaizen
quiet=(train.progress=false)

# 1. Self-supervised pre-training (SimCLR) on Fashion-MNIST's 10,000 training images of the
#    demo subset, without labels: one task of all ten classes, label fraction 0.
pretrain=(scenario.num_tasks=1 scenario.label_fraction=0 train.epochs=20 "eval.probes=[linear]")
$kaizen run fmnist-simclr-finetune --force --out runs/pretrained/vit "${quiet[@]}" "${pretrain[@]}" \
  model.backbone=vit_tiny model.width=1 model.depth=4 model.patch_size=7 \
  optim.name=adamw optim.lr=1e-3 optim.weight_decay=0.05
$kaizen run fmnist-simclr-finetune --force --out runs/pretrained/convnet "${quiet[@]}" "${pretrain[@]}"

# 2. The SLCA family from the pre-trained ViT, class-incremental, 5 tasks of 2 classes.
for seed in 1993 1996 1997; do
  for strategy in seqft sl slca slcapp joint; do
    $kaizen run "slca-fmnist-$strategy" --force --out "runs/pretrained-demo/$strategy-seed$seed" \
      "${quiet[@]}" seed=$seed
  done
done

# 3. Kaizen from the pre-trained ConvNet, without and with alignment (replay statistics).
for seed in 1993 1996 1997; do
  common=("${quiet[@]}" seed=$seed model.weights=runs/pretrained/convnet "eval.probes=[linear]")
  $kaizen run fmnist-simclr-kaizen --force --out "runs/pretrained-demo/kaizen-seed$seed" "${common[@]}"
  $kaizen run fmnist-simclr-kaizen --force --out "runs/pretrained-demo/kaizen-align-seed$seed" \
    "${common[@]}" classifier.align=true classifier.align_statistics=replay
done
