"""MNIST-family IDX files: ``data.name`` ``fashion-mnist``, ``mnist`` and ``idx``.

A folder holds train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
t10k-labels-idx1-ubyte, each raw or gzip-compressed (``.gz``). Images decode to uint8
(N, 1, H, W), labels to int64 (N,). Fashion-MNIST and MNIST are found in their usual places
when ``data.path`` is unset.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kaizen.config import DataConfig
from kaizen.data.formats.common import build_labelled_data, check_counts, required_path
from kaizen.data.formats.registry import reads
from kaizen.data.imageset import LabelledData
from kaizen.errors import DataError

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
MNIST_CLASSES: tuple[str, ...] = tuple(str(digit) for digit in range(10))

DATA_ROOT_ENV = "KAIZEN_DATA_ROOT"
DEBIAN_DATASETS = Path("/usr/share/datasets")
_NAMED_CLASSES = {"fashion-mnist": FASHION_MNIST_CLASSES, "mnist": MNIST_CLASSES}

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_UINT8 = 0x08
_GZIP_MAGIC = b"\x1f\x8b"


@reads("fashion-mnist", "mnist", "idx")
def read_idx_dataset(config: DataConfig, seed: int) -> LabelledData:
    """The IDX folder ``data.path``; Fashion-MNIST and MNIST get their class names and, without
    ``data.path``, are looked for in their usual places (:func:`default_idx_folder`)."""
    name = config.name
    if name not in _NAMED_CLASSES:
        return read_idx(required_path(config))
    folder = config.path or default_idx_folder(name)
    return read_idx(folder, name=name, class_names=_NAMED_CLASSES[name])


def _has_idx(folder: Path) -> bool:
    return any(
        (folder / name).exists()
        for name in ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz")
    )


def default_idx_folder(name: str) -> Path:
    """The folder of dataset ``name``'s IDX files: ``$KAIZEN_DATA_ROOT/<name>``,
    ``$KAIZEN_DATA_ROOT``, then Debian's ``/usr/share/datasets/<name>``."""
    candidates = []
    root = os.environ.get(DATA_ROOT_ENV)
    if root:
        candidates += [Path(root) / name, Path(root)]
    candidates.append(DEBIAN_DATASETS / name)
    for folder in candidates:
        if _has_idx(folder):
            return folder
    raise DataError(
        f"{name} not found (looked in {', '.join(str(c) for c in candidates)}); install "
        f"Debian's dataset-{name} package, or set {DATA_ROOT_ENV} or data.path to the folder "
        "of its IDX files"
    )


def read_idx(
    root: Path, name: str = "idx", class_names: Sequence[str] | None = None
) -> LabelledData:
    """Read the four MNIST-family IDX files in ``root`` (each raw or gzip-compressed).

    Args:
        root: folder holding train-images-idx3-ubyte, train-labels-idx1-ubyte,
            t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each optionally with ``.gz``.
        name: the dataset's short name.
        class_names: one name per class; default ``"0"``..``str(max label)``.

    Returns:
        Images of shape (N, 1, H, W) and labels of shape (N,) for both splits.
    """
    paths = _find_idx_files(root)
    splits = {}
    for split, (images_stem, labels_stem) in _IDX_FILES.items():
        images = _read_idx_array(paths[images_stem], ndim=3)
        labels = _read_idx_array(paths[labels_stem], ndim=1)
        check_counts(images, labels, str(paths[images_stem]), str(paths[labels_stem]))
        splits[split] = (images[:, None], labels)
    return build_labelled_data(name, splits["train"], splits["test"], class_names)


def _find_idx_files(root: Path) -> dict[str, Path]:
    """Map each IDX file stem to its raw or ``.gz`` path in ``root``."""
    stems = [stem for pair in _IDX_FILES.values() for stem in pair]
    found = {}
    for stem in stems:
        candidates = [root / stem, root / f"{stem}.gz"]
        existing = [path for path in candidates if path.is_file()]
        if existing:
            found[stem] = existing[0]
    missing = [stem for stem in stems if stem not in found]
    if missing:
        expected = ", ".join(f"{stem}[.gz]" for stem in stems)
        what = "no IDX files" if len(missing) == len(stems) else f"missing {', '.join(missing)}"
        raise DataError(
            f"{what} in {root}: expected {expected}; point data.path at the folder holding them"
        )
    return found


def _read_idx_array(path: Path, ndim: int) -> np.ndarray:
    """Decode one uint8 IDX file of rank ``ndim`` into an array of the shape its header gives."""
    raw = _read_maybe_gzip(path)
    kind = "images" if ndim == 3 else "labels"
    header_size = 4 + 4 * ndim
    expected_magic = (_IDX_UINT8 << 8) | ndim
    if len(raw) >= 4 and raw[:4] != struct.pack(">I", expected_magic):
        (magic,) = struct.unpack(">I", raw[:4])
        raise DataError(
            f"{path} has magic 0x{magic:08x}, expected 0x{expected_magic:08x} (uint8 {ndim}-d "
            f"IDX {kind}): replace it with the dataset's IDX {kind} file"
        )
    if len(raw) < header_size:
        raise DataError(f"{path} is truncated inside its IDX header; re-download it")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    size = math.prod(shape)
    if len(raw) - header_size != size:
        raise DataError(
            f"{path} holds {len(raw) - header_size} bytes of {kind} but its header "
            f"{shape} needs {size}: the file is truncated or corrupt; re-download it"
        )
    return np.frombuffer(raw, dtype=np.uint8, count=size, offset=header_size).reshape(shape)


def _read_maybe_gzip(path: Path) -> bytes:
    """The bytes of ``path``, decompressed when the file starts with the gzip magic."""
    raw = path.read_bytes()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path} is not a valid gzip file ({error}); re-download it") from error
