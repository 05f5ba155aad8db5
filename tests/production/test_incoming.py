"""Arrived data: image folders with unlabelled and corrupt files, .npz, CSV; shapes; splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kaizen.data.classes import extend_classes
from kaizen.data.formats.image_folder import read_image_folder
from kaizen.data.imageset import Arrival, ImageShape
from kaizen.data.incoming import read_arrival
from kaizen.data.updates import split_arrival
from kaizen.errors import DataError

GRAY_8 = ImageShape(1, 8, 8)


def _png(path: Path, value: int, size: int = 8, mode: str = "L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = () if mode == "L" else (3,)
    Image.fromarray(np.full((size, size, *channels), value, np.uint8), mode=mode).save(path)


def test_a_folder_gives_labelled_and_unlabelled_images_and_skips_a_corrupt_file(tmp_path):
    _png(tmp_path / "boot" / "a.png", 10)
    _png(tmp_path / "boot" / "b.png", 20)
    _png(tmp_path / "_unlabelled" / "c.png", 30)
    (tmp_path / "boot" / "broken.png").write_bytes(b"not an image")
    arrival = read_arrival(tmp_path, GRAY_8)
    assert arrival.names == (None, "boot", "boot")
    assert arrival.images.shape == (3, 1, 8, 8) and arrival.images.dtype == torch.uint8
    assert arrival.images[:, 0, 0, 0].tolist() == [30, 10, 20]
    assert arrival.skipped == (str(tmp_path / "boot" / "broken.png"),)


def test_an_image_of_another_size_or_mode_is_refused_unless_the_run_resizes(tmp_path):
    _png(tmp_path / "boot" / "a.png", 10, size=12, mode="RGB")
    with pytest.raises(DataError, match=r"3-channel 12x12 image but the run trains on 1-channel"):
        read_arrival(tmp_path, GRAY_8)
    resized = read_arrival(tmp_path, ImageShape(1, 8, 8, resize=8))
    assert resized.images.shape == (1, 1, 8, 8)


def test_an_npz_names_its_labels_by_class_names_and_minus_one_is_unlabelled(tmp_path):
    path = tmp_path / "new.npz"
    x = np.arange(3 * 8 * 8, dtype=np.uint8).reshape(3, 8, 8)
    np.savez(path, x=x, y=np.array([1, -1, 0]), class_names=np.array(["cat", "dog"]))
    arrival = read_arrival(path, GRAY_8)
    assert arrival.names == ("dog", None, "cat")
    assert torch.equal(arrival.images[:, 0], torch.from_numpy(x))
    np.savez(path, x=x, y=np.array(["cat", "", "cat"]))
    assert read_arrival(path, GRAY_8).names == ("cat", None, "cat")


def test_a_csv_reads_paths_relative_to_itself_and_refuses_missing_files(tmp_path):
    _png(tmp_path / "img" / "a.png", 10)
    _png(tmp_path / "img" / "b.png", 20)
    csv = tmp_path / "list.csv"
    csv.write_text("path,label\nimg/a.png,sandal\nimg/b.png,\n")
    assert read_arrival(csv, GRAY_8).names == ("sandal", None)
    csv.write_text("img/a.png,sandal\nimg/gone.png,sandal\nimg/lost.png,\n")
    with pytest.raises(DataError, match=r"names 2 files that do not exist: .*gone.png"):
        read_arrival(csv, GRAY_8)


def test_the_split_holds_out_a_seeded_share_of_each_labelled_class():
    names = ("a",) * 10 + ("b",) * 5 + (None,) * 4 + ("c",)
    images = torch.arange(len(names), dtype=torch.uint8).reshape(-1, 1, 1, 1)
    arrival = Arrival(images, names)
    train, test = split_arrival(arrival, 0.2, seed=3)
    assert sorted(n for n in test.names) == ["a", "a", "b"]
    # unlabelled images and a class with one image stay for training; nothing is lost
    assert train.names.count(None) == 4 and "c" in train.names
    assert sorted(train.images.flatten().tolist() + test.images.flatten().tolist()) == list(
        range(len(names))
    )
    assert split_arrival(arrival, 0.2, seed=3)[1].names == test.names


def test_new_names_are_appended_in_first_seen_order_with_a_warning_for_near_twins():
    classes, warnings = extend_classes(("T-shirt", "Bag"), ["Bag", "boot", "t-shirt ", "boot"])
    assert classes == ("T-shirt", "Bag", "boot", "t-shirt ")
    assert len(warnings) == 1 and "'t-shirt '" in warnings[0] and "'T-shirt'" in warnings[0]


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((2, 8, 8), np.float32), "y": np.array([0, 1])}, "x has dtype float32"),
        ({"x": np.zeros((2, 8, 8, 2), np.uint8), "y": np.array([0, 1])}, r"C in \{1, 3\}"),
        ({"x": np.zeros((2, 8, 8), np.uint8), "y": np.array([0])}, "holds 2 images but"),
        (
            {"x": np.zeros((2, 8, 8), np.uint8), "y": np.array([0, None], dtype=object)},
            "array y holds Python objects",
        ),
        ({"x": np.zeros((2, 8, 8), np.uint8)}, "has no array y"),
    ],
    ids=["float-images", "two-channels", "count", "object-labels", "no-labels"],
)
def test_an_npz_arrival_is_checked_by_the_training_data_decoder(tmp_path, arrays, message):
    path = tmp_path / "new.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=message):
        read_arrival(path, GRAY_8)
    path.write_bytes(b"not a zip archive")
    with pytest.raises(DataError, match=r"cannot read .*new\.npz as \.npz"):
        read_arrival(path, GRAY_8)


def test_a_folder_arrival_decodes_images_as_training_data_does(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    for split in ("train", "val"):
        _png(tmp_path / "tree" / split / "boot" / "a.png", 10, mode="RGB")
        (tmp_path / "tree" / split / "bag").mkdir()
        Image.fromarray(rgb).save(tmp_path / "tree" / split / "bag" / "a.png")
    trained = read_image_folder(tmp_path / "tree")
    arrival = read_arrival(tmp_path / "tree" / "train", ImageShape(3, 8, 8))
    assert arrival.names == ("bag", "boot")
    assert torch.equal(arrival.images, trained.train.images)
