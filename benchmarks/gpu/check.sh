#!/usr/bin/env bash
# The prepared GPU check: on a bare GPU machine, inside a time budget (8 minutes by default), it
# installs what is missing from .gpu-carry/ (made by benchmarks/gpu/fetch-wheels.sh), runs the
# tests marked gpu, benchmarks the paper's Kaizen step against the conventional pipeline, times
# LUMP with and without progressive layer freezing, and spends the rest of the budget on the
# 5-task Fashion-MNIST comparison. Every part writes one JSON
# file under $OUT with the device, the torch and CUDA versions and its command.
#
#   bash benchmarks/gpu/check.sh               # on the GPU machine, with .gpu-carry carried
#   bash benchmarks/gpu/check.sh --dry-run     # every step on the CPU with a tiny budget
#
# Options: --dry-run, --budget SECONDS (default 480). $OUT defaults to runs/gpu-check.
set -uo pipefail
cd "$(dirname "$0")/../.."
dry_run=0
budget=480
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --budget) budget=$2; shift ;;
    *) echo "check.sh: unknown option $1 (use --dry-run, --budget SECONDS)" >&2; exit 2 ;;
  esac
  shift
done
started=$(date +%s)
out=${OUT:-runs/gpu-check}
work=$(mktemp -d)
mkdir -p "$out"
export PYTHONUNBUFFERED=1
left() { echo $((budget - ($(date +%s) - started))); }
say() { echo "[check $(($(date +%s) - started))s] $*"; }
failures=0

if [ "$dry_run" -eq 1 ]; then
  python=${PYTHON:-$(command -v .venv/bin/python || command -v python3)}
  device=cpu
  tests_timeout=300
  bench_options=(--device cpu --backbone convnet --steps 1 --warmup 1 --workers 1 --repeats 1
    train.num_threads=2 ssl.queue_size=256 data.synthetic.train_per_class=20 eval.batch_size=64)
  freezing_options=(--device cpu --backbone convnet --width 0.25 --batch-size 32 --steps 1
    --depths 3 --precision 32 train.num_threads=2 strategy.buffer_size=32
    data.synthetic.image_size=16 ssl.proj_hidden_dim=64 ssl.proj_output_dim=64
    ssl.pred_hidden_dim=32 model.classifier_hidden_dim=32)
  comparison=(data.train_per_class=40 data.test_per_class=20 train.batch_size=32
    replay.batch_size=8 eval.probes=[] train.accelerator=cpu)
  comparison_runs_seconds=60
else
  python=${PYTHON:-python3}
  device=cuda
  tests_timeout=200
  say "installing the carried wheels"
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$work/site" .gpu-carry/wheels/*.whl || { echo "check.sh: the wheels of .gpu-carry/wheels did not install; run benchmarks/gpu/fetch-wheels.sh here and carry .gpu-carry" >&2; exit 2; }
  export PYTHONPATH="$PWD/src:$work/site${PYTHONPATH:+:$PYTHONPATH}"
  export KAIZEN_DATA_ROOT="$PWD/.gpu-carry/fashion-mnist"
  bench_options=(--device cuda --precision bf16-mixed --steps 50 --warmup 10 --workers 6
    --repeats 1)
  freezing_options=(--device cuda --steps 50 --depths 3,5,7)
  comparison=(train.accelerator=cuda train.num_threads=null)
  comparison_runs_seconds=0  # whatever is left of the budget
fi
kaizen=("$python" -m kaizen.cli)
stamp() { "$python" benchmarks/gpu/report.py "$@"; }

say "1/4 tests marked gpu"
tests_command="$python -m pytest -m gpu tests -q -rs -p no:cacheprovider"
timeout "$tests_timeout" $tests_command --junitxml "$work/gpu-tests.xml" 2>&1 | tail -n 15
if [ -f "$work/gpu-tests.xml" ]; then
  stamp tests "$work/gpu-tests.xml" "$out/gpu-tests.json" "$tests_command" || failures=$((failures + 1))
else
  echo "check.sh: the gpu tests wrote no report" >&2; failures=$((failures + 1))
fi

say "2/4 kaizen bench on $device"
bench_command="kaizen bench ${bench_options[*]} --paper-run --out $out/bench-$device.json"
if timeout 200 "${kaizen[@]}" bench "${bench_options[@]}" --paper-run --out "$out/bench-$device.json"; then
  stamp stamp "$out/bench-$device.json" "$bench_command" || failures=$((failures + 1))
else
  echo "check.sh: kaizen bench failed" >&2; failures=$((failures + 1))
fi

say "3/4 LUMP (SimSiam, ResNet-18) with and without freezing on $device"
freezing_command="kaizen bench-freezing ${freezing_options[*]} --out $out/freezing-$device.json"
if timeout 200 "${kaizen[@]}" bench-freezing "${freezing_options[@]}" \
    --out "$out/freezing-$device.json"; then
  stamp stamp "$out/freezing-$device.json" "$freezing_command" || failures=$((failures + 1))
else
  echo "check.sh: kaizen bench-freezing failed" >&2; failures=$((failures + 1))
fi

say "4/4 Fashion-MNIST comparison (SimCLR; finetune, cassle, kaizen) in what is left"
common=(data.test_per_class=1000 train.progress=false "${comparison[@]}")
calibration="$work/calibration"
if timeout "$(( $(left) > 30 ? $(left) - 20 : 10 ))" "${kaizen[@]}" run fmnist-simclr-kaizen \
    data.train_per_class=6000 "${common[@]}" train.epochs=1 --out "$calibration" >/dev/null; then
  seconds=$comparison_runs_seconds
  [ "$seconds" -gt 0 ] || seconds=$(( $(left) - 30 ))
  epochs=$(stamp epochs "$calibration" "$seconds" 3)
  sweep_command="kaizen sweep --ssl simclr --strategies finetune,cassle,kaizen --seeds 0 --out RUNS fmnist data.train_per_class=6000 ${common[*]} train.epochs=$epochs"
  say "   $epochs epochs per task fit"
  timeout "$(( $(left) > 15 ? $(left) - 10 : 5 ))" "${kaizen[@]}" sweep --ssl simclr \
      --strategies finetune,cassle,kaizen --seeds 0 --out "$work/fmnist" fmnist \
      data.train_per_class=6000 "${common[@]}" "train.epochs=$epochs" | tail -n 12
  stamp comparison "$work/fmnist" "$epochs" "$out/fmnist-comparison.json" "$sweep_command" \
    || failures=$((failures + 1))
else
  echo "check.sh: the calibration run failed or did not fit" >&2; failures=$((failures + 1))
fi

say "done: $(ls "$out" | tr '\n' ' ')"
rm -rf "$work"
[ "$failures" -eq 0 ] || { echo "check.sh: $failures part(s) failed" >&2; exit 1; }
