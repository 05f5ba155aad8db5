""".npz files for training: layouts, the held-out share and refused arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kaizen.data.formats.common import stratified_holdout
from kaizen.data.formats.npz import read_npz
from kaizen.errors import DataError


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
