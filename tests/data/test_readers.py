"""IDX, CIFAR and .npz readers on small files written in the real on-disk formats."""

from __future__ import annotations

import builtins
import gzip
import io
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from kaizen.data.readers import (
    FASHION_MNIST_CLASSES,
    MNIST_CLASSES,
    read_cifar,
    read_idx,
    read_npz,
    stratified_holdout,
)
from kaizen.errors import DataError

# --------------------------------------------------------------------------------------------
# IDX
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# CIFAR
# --------------------------------------------------------------------------------------------

CIFAR10_NAMES = [b"airplane", b"automobile", b"bird"]
CIFAR100_NAMES = [b"apple", b"bear", b"beaver", b"bed"]


class Python2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2 byte strings (BINSTRING), as the published archives do."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_byte_string(self, obj: str | bytes) -> None:
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[bytes] = save_byte_string
    dispatch[str] = save_byte_string


def python2_pickle(content: object) -> bytes:
    """A protocol-2 pickle as Python 2 with numpy 1 writes it: byte strings, numpy.core paths."""
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(content)
    return buffer.getvalue().replace(b"numpy._core.", b"numpy.core.")


PICKLE_WRITERS = {
    "python2": python2_pickle,
    "protocol2": lambda content: pickle.dumps(content, protocol=2),
    "protocol5": lambda content: pickle.dumps(content, protocol=5),
}


def write_pickle(path: Path, content: object, writer: str = "python2") -> None:
    path.write_bytes(PICKLE_WRITERS[writer](content))


def cifar_batch(rng: np.random.Generator, count: int, labels_key: bytes) -> dict:
    return {
        b"batch_label": b"batch",
        labels_key: [int(label) for label in rng.integers(0, 3, size=count)],
        b"data": rng.integers(0, 256, size=(count, 3072), dtype=np.uint8),
        b"filenames": [f"img_{i}.png".encode() for i in range(count)],
    }


def write_cifar10(parent: Path, writer: str = "python2") -> tuple[list[dict], dict]:
    """A miniature cifar-10-batches-py with the keys of the real archive."""
    folder = parent / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    train = [cifar_batch(rng, 2 + index, b"labels") for index in range(5)]
    for index, batch in enumerate(train, start=1):
        write_pickle(folder / f"data_batch_{index}", batch, writer)
    test = cifar_batch(rng, 4, b"labels")
    write_pickle(folder / "test_batch", test, writer)
    meta = {b"label_names": CIFAR10_NAMES, b"num_cases_per_batch": 10000, b"num_vis": 3072}
    write_pickle(folder / "batches.meta", meta, writer)
    return train, test


def write_cifar100(parent: Path, writer: str = "python2") -> tuple[dict, dict]:
    """A miniature cifar-100-python with the keys of the real archive."""
    folder = parent / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(2)
    train, test = cifar_batch(rng, 6, b"fine_labels"), cifar_batch(rng, 3, b"fine_labels")
    for batch in (train, test):
        batch[b"fine_labels"][0] = 3
        batch[b"coarse_labels"] = [0] * len(batch[b"fine_labels"])
    write_pickle(folder / "train", train, writer)
    write_pickle(folder / "test", test, writer)
    meta = {b"fine_label_names": CIFAR100_NAMES, b"coarse_label_names": [b"fruit", b"animal"]}
    write_pickle(folder / "meta", meta, writer)
    return train, test


def assert_cifar_split(split, batches: list[dict], labels_key: bytes) -> None:
    data = np.concatenate([batch[b"data"] for batch in batches])
    labels = [label for batch in batches for label in batch[labels_key]]
    assert split.images.shape == (len(data), 3, 32, 32)
    # each row holds the 1024 red, then green, then blue values of a row-major 32x32 image
    for channel in range(3):
        expected = data[:, channel * 1024 : (channel + 1) * 1024].reshape(-1, 32, 32)
        assert torch.equal(split.images[:, channel], torch.from_numpy(expected))
    assert split.labels.tolist() == labels


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("writer", list(PICKLE_WRITERS))
@pytest.mark.parametrize("point_at_folder", [False, True], ids=["parent", "folder"])
def test_cifar10_decodes_all_batches(tmp_path: Path, writer: str, point_at_folder: bool) -> None:
    train, test = write_cifar10(tmp_path, writer)
    root = tmp_path / "cifar-10-batches-py" if point_at_folder else tmp_path
    data = read_cifar(root)
    assert data.name == "cifar10"
    assert data.class_names == ("airplane", "automobile", "bird")
    assert_cifar_split(data.train, train, b"labels")
    assert_cifar_split(data.test, [test], b"labels")


@pytest.mark.parametrize("writer", list(PICKLE_WRITERS))
def test_cifar100_uses_fine_labels(tmp_path: Path, writer: str) -> None:
    train, test = write_cifar100(tmp_path, writer)
    data = read_cifar(tmp_path)
    assert data.name == "cifar100"
    assert data.class_names == ("apple", "bear", "beaver", "bed")
    assert_cifar_split(data.train, [train], b"fine_labels")
    assert_cifar_split(data.test, [test], b"fine_labels")


class RunsShell:
    """Unpickling this would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class CallsEval:
    """Unpickling this would evaluate Python code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return builtins.eval, (f"open({str(self.marker)!r}, 'w')",)


@pytest.mark.parametrize("payload", [RunsShell, CallsEval])
@pytest.mark.parametrize("nested", [False, True], ids=["top-level", "inside-batch"])
def test_cifar_refuses_malicious_pickle(tmp_path: Path, payload: type, nested: bool) -> None:
    write_cifar10(tmp_path)
    marker = tmp_path / "executed"
    content = payload(marker)
    if nested:
        content = {b"data": content, b"labels": [0]}
    write_pickle(tmp_path / "cifar-10-batches-py" / "data_batch_3", content)
    with pytest.raises(DataError, match=r"data_batch_3 refers to .*refusing to load it"):
        read_cifar(tmp_path)
    assert not marker.exists()


def test_cifar_without_archive_says_what_to_point_at(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no CIFAR archive in .*cifar-10-batches-py.*data\.path"):
        read_cifar(tmp_path)


def test_cifar_with_both_archives_asks_for_one(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    write_cifar100(tmp_path)
    with pytest.raises(DataError, match="both CIFAR-10 and CIFAR-100"):
        read_cifar(tmp_path)


def test_cifar_names_missing_batches(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DataError, match="lacks data_batch_4: extract the complete"):
        read_cifar(tmp_path)


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ({b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 1]}, "rows have 3000 values"),
        ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, "must be a uint8"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "holds 2 images but .* 1"),
        ({b"data": np.zeros((2, 3072), np.uint8)}, "has no 'labels' entry"),
        ([1, 2, 3], "holds a list, expected a dict"),
    ],
    ids=["row-size", "dtype", "count", "no-labels", "not-a-dict"],
)
def test_cifar_bad_batch_names_the_file(tmp_path: Path, batch: object, message: str) -> None:
    write_cifar10(tmp_path)
    write_pickle(tmp_path / "cifar-10-batches-py" / "test_batch", batch)
    with pytest.raises(DataError, match=rf"test_batch.*{message}"):
        read_cifar(tmp_path)


def test_cifar_truncated_pickle_names_the_file(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match=r"cannot read .*data_batch_1 as a CIFAR pickle"):
        read_cifar(tmp_path)


# --------------------------------------------------------------------------------------------
# .npz
# --------------------------------------------------------------------------------------------


def test_npz_with_test_arrays_and_class_names(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, size=(6, 4, 5, 3), dtype=np.uint8)
    x_test = rng.integers(0, 256, size=(2, 4, 5, 3), dtype=np.uint8)
    y, y_test = np.array([0, 1, 2, 0, 1, 2], np.int32), np.array([2, 0], np.uint8)
    path = tmp_path / "shapes.npz"
    np.savez(path, x=x, y=y, x_test=x_test, y_test=y_test, class_names=np.array(["a", "b", "c"]))
    data = read_npz(path)
    assert data.name == "shapes"
    assert data.class_names == ("a", "b", "c")
    assert torch.equal(data.train.images, torch.from_numpy(x).permute(0, 3, 1, 2))
    assert torch.equal(data.test.images, torch.from_numpy(x_test).permute(0, 3, 1, 2))
    assert data.train.labels.tolist() == y.tolist()
    assert data.test.labels.tolist() == y_test.tolist()


def indexed_npz(path: Path, counts: list[int]) -> np.ndarray:
    """Grayscale images whose pixels all equal the image's index; returns the labels."""
    labels = np.repeat(np.arange(len(counts)), counts)
    x = np.broadcast_to(np.arange(len(labels), dtype=np.uint8)[:, None, None], (len(labels), 2, 2))
    np.savez_compressed(path, x=x, y=labels)
    return labels


def test_npz_holds_out_a_stratified_seeded_share(tmp_path: Path) -> None:
    path = tmp_path / "digits.npz"
    labels = indexed_npz(path, counts=[10, 20, 5])
    data = read_npz(path, test_fraction=0.2, seed=7)
    assert data.class_names == ("0", "1", "2")
    assert data.train.images.shape[1:] == (1, 2, 2)
    assert torch.bincount(data.test.labels).tolist() == [2, 4, 1]
    train_ids = data.train.images[:, 0, 0, 0].tolist()
    test_ids = data.test.images[:, 0, 0, 0].tolist()
    assert sorted(train_ids + test_ids) == list(range(len(labels)))
    # every image keeps its own label
    assert data.train.labels.tolist() == labels[train_ids].tolist()
    assert data.test.labels.tolist() == labels[test_ids].tolist()
    again = read_npz(path, test_fraction=0.2, seed=7)
    assert torch.equal(again.test.images, data.test.images)
    other = read_npz(path, test_fraction=0.2, seed=8)
    assert not torch.equal(other.test.images, data.test.images)


def test_stratified_holdout_covers_every_index_once() -> None:
    labels = np.random.default_rng(0).integers(0, 4, size=101)
    kept, held_out = stratified_holdout(labels, 0.3, seed=1)
    assert sorted(np.concatenate([kept, held_out]).tolist()) == list(range(101))
    for label in range(4):
        count = int((labels == label).sum())
        assert int((labels[held_out] == label).sum()) == round(0.3 * count)


def save_npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


GOOD_X = np.zeros((3, 4, 4), np.uint8)
GOOD_Y = np.array([0, 1, 1])


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (
            {"x": GOOD_X.astype(np.float32), "y": GOOD_Y},
            "array x has dtype float32, expected uint8",
        ),
        ({"x": np.zeros((3, 16), np.uint8), "y": GOOD_Y}, r"array x has shape \(3, 16\)"),
        ({"x": np.zeros((3, 4, 4, 2), np.uint8), "y": GOOD_Y}, r"C with C in \{1, 3\}"),
        ({"x": GOOD_X, "y": GOOD_Y.astype(np.float64)}, "array y is float64.*integer labels"),
        ({"x": GOOD_X, "y": GOOD_Y[:, None]}, r"array y is int64 with shape \(3, 1\)"),
        ({"x": GOOD_X, "y": np.array([0, -1, 1])}, "array y has negative labels"),
        ({"y": GOOD_Y}, "has no array x"),
        ({"x": GOOD_X}, "has no array y"),
        ({"x": GOOD_X, "y": GOOD_Y, "x_test": GOOD_X}, "has no array y_test"),
        ({"x": GOOD_X, "y": GOOD_Y[:2]}, "array x holds 3 images but array y holds 2 labels"),
        ({"x": GOOD_X, "y": GOOD_Y, "class_names": np.array([1, 2])}, "class_names is int64"),
        (
            {"x": GOOD_X, "y": GOOD_Y, "class_names": np.array(["a", None], dtype=object)},
            "array class_names holds Python objects",
        ),
    ],
    ids=[
        "float-images",
        "rank-2-images",
        "two-channels",
        "float-labels",
        "rank-2-labels",
        "negative-labels",
        "no-x",
        "no-y",
        "x-test-alone",
        "count-mismatch",
        "numeric-class-names",
        "object-class-names",
    ],
)
def test_npz_bad_arrays_say_which_and_what_is_expected(
    tmp_path: Path, arrays: dict[str, np.ndarray], message: str
) -> None:
    path = save_npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message):
        read_npz(path)


def test_npz_missing_or_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no \.npz file at .*point data\.path"):
        read_npz(tmp_path / "absent.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip archive")
    with pytest.raises(DataError, match=r"cannot read .*garbage\.npz as \.npz"):
        read_npz(garbage)
