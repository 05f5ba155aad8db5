#!/usr/bin/env bash
# Makes Fashion-MNIST available: Debian's dataset-fashion-mnist package when apt is usable,
# otherwise a directory named by KAIZEN_DATA_ROOT. Exits 0 when the data is there.
set -euo pipefail
debian_dir=/usr/share/datasets/fashion-mnist
have() { [ -f "$1/train-images-idx3-ubyte.gz" ] || [ -f "$1/train-images-idx3-ubyte" ]; }

if [ -n "${KAIZEN_DATA_ROOT:-}" ] && have "${KAIZEN_DATA_ROOT}/fashion-mnist"; then exit 0; fi
if [ -n "${KAIZEN_DATA_ROOT:-}" ] && have "${KAIZEN_DATA_ROOT}"; then exit 0; fi
if have "$debian_dir"; then exit 0; fi

sudo_cmd=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo_cmd="sudo -n"
fi
if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ -n "$sudo_cmd" ]; }; then
  echo "Installing Fashion-MNIST from Debian's dataset-fashion-mnist package..."
  $sudo_cmd apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq dataset-fashion-mnist >/dev/null
  have "$debian_dir" && exit 0
fi
cat >&2 <<MSG
Fashion-MNIST not found. Either install Debian's package (apt-get install dataset-fashion-mnist),
or download the four IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) into a folder and set KAIZEN_DATA_ROOT to it.
MSG
exit 1
