"""IDX files (Fashion-MNIST, MNIST) on small files written in the real on-disk format."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from kaizen.data.formats.idx import FASHION_MNIST_CLASSES, MNIST_CLASSES, read_idx
from kaizen.errors import DataError

IDX_IMAGES = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}
IDX_LABELS = {"train": "train-labels-idx1-ubyte", "test": "t10k-labels-idx1-ubyte"}


def idx_bytes(array: np.ndarray) -> bytes:
    """An uncompressed uint8 IDX file holding ``array``."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool) -> Path:
    data = idx_bytes(array)
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def write_idx_dataset(root: Path, compress: dict[str, bool] | None = None) -> dict:
    """Four IDX files with random 5x4 images; returns the arrays written, by split."""
    rng = np.random.default_rng(0)
    written = {}
    for split, count in (("train", 7), ("test", 3)):
        images = rng.integers(0, 256, size=(count, 5, 4), dtype=np.uint8)
        labels = rng.integers(0, 10, size=count, dtype=np.uint8)
        labels[0] = 9 if split == "train" else labels[0]
        gz = (compress or {}).get(split, False)
        write_idx(root / IDX_IMAGES[split], images, gz)
        write_idx(root / IDX_LABELS[split], labels, gz)
        written[split] = (images, labels)
    return written


@pytest.mark.parametrize(
    "compress",
    [{}, {"train": True, "test": True}, {"train": True}],
    ids=["raw", "gzip", "mixed"],
)
def test_idx_decodes_pixels_and_labels(tmp_path: Path, compress: dict[str, bool]) -> None:
    written = write_idx_dataset(tmp_path, compress)
    data = read_idx(tmp_path)
    assert data.name == "idx"
    assert data.class_names == tuple(str(i) for i in range(10))
    for split in ("train", "test"):
        images, labels = written[split]
        got = getattr(data, split)
        assert got.images.dtype == torch.uint8 and got.labels.dtype == torch.int64
        assert got.images.shape == (len(images), 1, 5, 4)
        assert torch.equal(got.images[:, 0], torch.from_numpy(images))
        assert torch.equal(got.labels, torch.from_numpy(labels.astype(np.int64)))


def test_idx_detects_gzip_by_magic_bytes(tmp_path: Path) -> None:
    written = write_idx_dataset(tmp_path)
    raw = tmp_path / IDX_IMAGES["train"]
    raw.write_bytes(gzip.compress(raw.read_bytes()))
    data = read_idx(tmp_path)
    assert torch.equal(data.train.images[:, 0], torch.from_numpy(written["train"][0]))


def test_idx_uses_given_class_names(tmp_path: Path) -> None:
    write_idx_dataset(tmp_path)
    data = read_idx(tmp_path, name="fashion-mnist", class_names=FASHION_MNIST_CLASSES)
    assert data.name == "fashion-mnist"
    assert data.class_names[0] == "T-shirt/top" and data.class_names[9] == "Ankle boot"
    assert tuple("0123456789") == MNIST_CLASSES


def test_idx_without_files_names_the_expected_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no IDX files in .*train-images-idx3-ubyte\[\.gz\].*"):
        read_idx(tmp_path)


def test_idx_names_a_missing_file(tmp_path: Path) -> None:
    write_idx_dataset(tmp_path)
    (tmp_path / IDX_LABELS["test"]).unlink()
    with pytest.raises(DataError, match=r"missing t10k-labels-idx1-ubyte.*data\.path"):
        read_idx(tmp_path)


def test_idx_bad_magic_names_the_file(tmp_path: Path) -> None:
    write_idx_dataset(tmp_path)
    labels = tmp_path / IDX_LABELS["train"]
    # a labels file where an images file belongs
    (tmp_path / IDX_IMAGES["train"]).write_bytes(labels.read_bytes())
    with pytest.raises(
        DataError, match=r"train-images-idx3-ubyte has magic 0x00000801, expected 0x00000803"
    ):
        read_idx(tmp_path)


@pytest.mark.parametrize("keep", [3, 30], ids=["inside-header", "inside-data"])
def test_idx_truncated_file_names_the_file(tmp_path: Path, keep: int) -> None:
    write_idx_dataset(tmp_path)
    path = tmp_path / IDX_IMAGES["test"]
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte .*(truncated|re-download)"):
        read_idx(tmp_path)


def test_idx_corrupt_gzip_names_the_file(tmp_path: Path) -> None:
    write_idx_dataset(tmp_path, {"train": True})
    path = tmp_path / (IDX_LABELS["train"] + ".gz")
    path.write_bytes(path.read_bytes()[:12])
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.gz is not a valid gzip file"):
        read_idx(tmp_path)


def test_idx_count_mismatch_names_both_files(tmp_path: Path) -> None:
    write_idx_dataset(tmp_path)
    write_idx(tmp_path / IDX_LABELS["train"], np.zeros(6, dtype=np.uint8), compress=False)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte holds 7 images but .*6 labels"):
        read_idx(tmp_path)
