"""CIFAR python archives on miniature archives written as the published ones are."""

from __future__ import annotations

import builtins
import io
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from kaizen.data.formats.cifar import read_cifar
from kaizen.errors import DataError

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
