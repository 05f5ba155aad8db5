#!/usr/bin/env bash
# Prepares, on a machine that reaches PyPI, what benchmarks/gpu/check.sh needs on a bare GPU
# machine (Python 3.12, x86-64, PyTorch there, no package index): the wheels it lacks and
# Fashion-MNIST's four .gz files, in .gpu-carry/ (ignored by git; carry it to the GPU machine).
#
#   bash benchmarks/gpu/fetch-wheels.sh      # then: carry .gpu-carry, run benchmarks/gpu/check.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=.gpu-carry
python=${PYTHON:-python3}
# What kaizen-cl needs beyond what the GPU machine has (kornia and pydantic, with their own
# compiled parts), at the versions the project is tested with here.
packages=(
  kornia==0.9.0 kornia_rs==0.2.0
  pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
)
platforms=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1; do
  platforms+=(--platform "${tag}_x86_64")
done
rm -rf "$dest/wheels"
mkdir -p "$dest/wheels" "$dest/fashion-mnist"
"$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp "${platforms[@]}" -d "$dest/wheels" "${packages[@]}"
bash scripts/get-fashion-mnist.sh >/dev/null
source_dir=/usr/share/datasets/fashion-mnist
for candidate in "${KAIZEN_DATA_ROOT:-}" "${KAIZEN_DATA_ROOT:-}/fashion-mnist"; do
  if [ -n "${KAIZEN_DATA_ROOT:-}" ] && [ -f "$candidate/train-images-idx3-ubyte.gz" ]; then
    source_dir=$candidate
  fi
done
cp "$source_dir"/*-ubyte.gz "$dest/fashion-mnist/"
du -sh "$dest"
ls "$dest/wheels" "$dest/fashion-mnist"
