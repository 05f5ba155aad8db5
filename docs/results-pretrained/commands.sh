#!/usr/bin/env bash
# The CPU demonstration of docs/results-pretrained.md, from the repository root after
# `make install data`. Writes runs/pretrained/ and runs/pretrained-demo/. A run already complete
# is skipped and one interrupted is resumed, so the script can be stopped and started again.
set -euo pipefail
kaizen=.venv/bin/kaizen
quiet=(train.progress=false)

# run OUT CONFIG [key=value ...]: train CONFIG into OUT unless OUT holds it already
run() {
  local out=$1
  shift
  if grep -qs '"complete": true' "$out/results.json"; then
    echo "complete: $out"
  elif [ -d "$out/checkpoints" ]; then
    $kaizen resume "$out" "${quiet[@]}"
  else
    $kaizen run "$@" --force --out "$out" "${quiet[@]}"
  fi
}

# 1. Self-supervised pre-training (SimCLR) on Fashion-MNIST's 10,000 training images of the
#    demo subset, without labels: one task of all ten classes, label fraction 0.
pretrain=(scenario.num_tasks=1 scenario.label_fraction=0 train.epochs=20 "eval.probes=[linear]")
run runs/pretrained/vit fmnist-simclr-finetune "${pretrain[@]}" \
  model.backbone=vit_tiny model.width=1 model.depth=4 model.patch_size=7 \
  optim.name=adamw optim.lr=1e-3 optim.weight_decay=0.05
run runs/pretrained/convnet fmnist-simclr-finetune "${pretrain[@]}"

# 2. Kaizen from the pre-trained ConvNet, without and with alignment (replay statistics).
for seed in 1993 1996 1997; do
  common=(seed=$seed model.weights=runs/pretrained/convnet "eval.probes=[linear]")
  run "runs/pretrained-demo/kaizen-seed$seed" fmnist-simclr-kaizen "${common[@]}"
  run "runs/pretrained-demo/kaizen-align-seed$seed" fmnist-simclr-kaizen "${common[@]}" \
    classifier.align=true classifier.align_statistics=replay
done

# 3. The SLCA family from the pre-trained ViT, class-incremental, 5 tasks of 2 classes, as
#    SLCA's released code runs it (the slca-fmnist presets).
for seed in 1993 1996 1997; do
  for strategy in seqft sl slca slcapp joint; do
    run "runs/pretrained-demo/$strategy-seed$seed" "slca-fmnist-$strategy" seed=$seed
  done
done
