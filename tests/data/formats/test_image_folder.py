"""Class-per-folder trees: decoding, grayscale, resizing, bad trees and the decoded-tensor cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kaizen.data.formats.image_folder import read_image_folder
from kaizen.errors import DataError


def save_image(path: Path, pixels: np.ndarray, suffix: str = ".png") -> Path:
    """Write (H, W) or (H, W, 3) uint8 pixels as an image file."""
    path = path.with_suffix(suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def random_pixels(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def write_tree(root: Path, test_folder: str = "val", shape: tuple[int, ...] = (6, 5, 3)) -> dict:
    """Two classes with PNG images of ``shape``; returns {(split, class): [pixels, ...]}."""
    layout = {
        ("train", "cat"): 3,
        ("train", "ant"): 2,
        (test_folder, "cat"): 1,
        (test_folder, "ant"): 2,
    }
    written: dict[tuple[str, str], list[np.ndarray]] = {}
    seed = 0
    for (split, class_name), count in layout.items():
        for index in range(count):
            seed += 1
            pixels = random_pixels(seed, shape)
            save_image(root / split / class_name / f"img{index}", pixels)
            written.setdefault((split, class_name), []).append(pixels)
    return written


def expected_split(written: dict, split: str, class_names: tuple[str, ...]) -> tuple:
    """Images (N, C, H, W) and labels in the reader's order: classes sorted, files sorted."""
    images, labels = [], []
    for label, class_name in enumerate(class_names):
        for pixels in written[(split, class_name)]:
            images.append(pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1))
            labels.append(label)
    return torch.from_numpy(np.stack(images)), labels


@pytest.mark.parametrize("test_folder", ["val", "test"])
def test_decodes_rgb_tree_exactly(tmp_path: Path, test_folder: str) -> None:
    written = write_tree(tmp_path, test_folder)
    data = read_image_folder(tmp_path)
    assert data.name == tmp_path.name
    assert data.class_names == ("ant", "cat")
    for split, folder in (("train", "train"), ("test", test_folder)):
        images, labels = expected_split(written, folder, data.class_names)
        got = getattr(data, split)
        assert got.images.dtype == torch.uint8 and got.images.shape[1:] == (3, 6, 5)
        assert torch.equal(got.images, images)
        assert got.labels.tolist() == labels


def test_grayscale_tree_keeps_one_channel(tmp_path: Path) -> None:
    written = write_tree(tmp_path, shape=(4, 7))
    data = read_image_folder(tmp_path)
    assert data.channels == 1
    images, _ = expected_split(written, "train", data.class_names)
    assert torch.equal(data.train.images, images)


def test_mixed_grayscale_and_rgb_become_rgb(tmp_path: Path) -> None:
    write_tree(tmp_path, shape=(4, 4, 3))
    gray = random_pixels(99, (4, 4))
    save_image(tmp_path / "val" / "ant" / "gray", gray)
    data = read_image_folder(tmp_path)
    assert data.channels == 3
    # val/ant files sort as gray, img0, img1
    decoded = data.test.images[data.test.labels == 0][0]
    assert torch.equal(decoded, torch.from_numpy(gray)[None].expand(3, 4, 4))


def test_jpeg_files_are_decoded(tmp_path: Path) -> None:
    colour = np.array([200, 40, 90], np.uint8)
    for split in ("train", "val"):
        save_image(tmp_path / split / "red" / "a", np.tile(colour, (40, 60, 1)), ".jpg")
    data = read_image_folder(tmp_path, image_size=16)
    assert data.train.images.shape == (1, 3, 16, 16)
    mean = data.train.images.float().mean(dim=(2, 3))[0]
    assert torch.allclose(mean, torch.from_numpy(colour).float(), atol=6)


def test_mixed_sizes_need_image_size(tmp_path: Path) -> None:
    write_tree(tmp_path, shape=(6, 5, 3))
    save_image(tmp_path / "train" / "cat" / "wide", random_pixels(5, (8, 12, 3)))
    with pytest.raises(DataError, match=r"differ in size .*wide.png is 12x8.*data.image_size"):
        read_image_folder(tmp_path)


def test_image_size_resizes_shorter_side_and_centre_crops(tmp_path: Path) -> None:
    write_tree(tmp_path, shape=(6, 5, 3))
    # 12 wide, 6 high: the shorter side already fits, the centre crop keeps the middle 6 columns
    wide = np.zeros((6, 12, 3), np.uint8)
    wide[:, :3] = (255, 0, 0)
    wide[:, 3:9] = (0, 255, 0)
    wide[:, 9:] = (0, 0, 255)
    save_image(tmp_path / "train" / "cat" / "wide", wide)
    # 4 wide, 12 high: upscaled to 6 x 18, a uniform colour stays exact
    save_image(tmp_path / "train" / "ant" / "tall", np.full((12, 4, 3), 77, np.uint8))
    data = read_image_folder(tmp_path, image_size=6)
    assert data.train.images.shape[1:] == (3, 6, 6)
    assert data.test.images.shape[1:] == (3, 6, 6)
    ant, cat = data.train.images[data.train.labels == 0], data.train.images[data.train.labels == 1]
    # ant files sort as img0, img1, tall; cat files as img0, img1, img2, wide
    assert torch.equal(ant[2], torch.full((3, 6, 6), 77, dtype=torch.uint8))
    green = torch.tensor([0, 255, 0], dtype=torch.uint8)[:, None, None].expand(3, 6, 6)
    assert torch.equal(cat[3], green)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_image_names_the_file(tmp_path: Path, damage: str) -> None:
    write_tree(tmp_path, shape=(32, 32, 3))
    path = tmp_path / "val" / "cat" / "img0.png"
    content = path.read_bytes()
    path.write_bytes(b"not an image" if damage == "garbage" else content[: len(content) // 2])
    with pytest.raises(DataError, match=r"cannot decode .*val/cat/img0.png.*remove or replace"):
        read_image_folder(tmp_path)


def test_val_class_missing_from_train(tmp_path: Path) -> None:
    write_tree(tmp_path)
    save_image(tmp_path / "val" / "bee" / "a", random_pixels(1, (6, 5, 3)))
    with pytest.raises(DataError, match=r"val/bee is a class that .*train lacks"):
        read_image_folder(tmp_path)


def test_missing_val_folder(tmp_path: Path) -> None:
    save_image(tmp_path / "train" / "cat" / "a", random_pixels(1, (6, 5, 3)))
    with pytest.raises(DataError, match=r"not an image-folder tree: expected .*data.path"):
        read_image_folder(tmp_path)


def test_train_class_without_images(tmp_path: Path) -> None:
    write_tree(tmp_path)
    (tmp_path / "train" / "empty").mkdir()
    (tmp_path / "train" / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"train/empty holds no .* images"):
        read_image_folder(tmp_path)


def forbid_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an image was decoded although the cache is valid")

    monkeypatch.setattr(Image, "open", refuse)


def assert_same_data(left, right) -> None:
    assert left.class_names == right.class_names
    for split in ("train", "test"):
        assert torch.equal(getattr(left, split).images, getattr(right, split).images)
        assert torch.equal(getattr(left, split).labels, getattr(right, split).labels)


def test_cache_is_hit_then_invalidated_by_a_changed_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, cache = tmp_path / "tree", tmp_path / "cache"
    write_tree(root)
    first = read_image_folder(root, cache_dir=cache)
    assert len(list(cache.glob("*.pt"))) == 1
    assert [path.suffix for path in cache.iterdir()] == [".pt"]  # no temporary files left

    with monkeypatch.context() as patch:
        forbid_decoding(patch)
        assert_same_data(read_image_folder(root, cache_dir=cache), first)

    changed = random_pixels(123, (6, 5, 3))
    path = save_image(root / "train" / "ant" / "img0", changed)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    rebuilt = read_image_folder(root, cache_dir=cache)
    assert torch.equal(rebuilt.train.images[0], torch.from_numpy(changed).permute(2, 0, 1))
    assert len(list(cache.glob("*.pt"))) == 2


def test_cache_depends_on_image_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tree(tmp_path / "tree")
    full = read_image_folder(tmp_path / "tree", cache_dir=tmp_path / "cache")
    small = read_image_folder(tmp_path / "tree", image_size=4, cache_dir=tmp_path / "cache")
    assert full.image_size == (6, 5) and small.image_size == (4, 4)
    forbid_decoding(monkeypatch)
    assert read_image_folder(
        tmp_path / "tree", image_size=4, cache_dir=tmp_path / "cache"
    ).image_size == (4, 4)


def test_unreadable_cache_is_rebuilt(tmp_path: Path) -> None:
    root, cache = tmp_path / "tree", tmp_path / "cache"
    write_tree(root)
    first = read_image_folder(root, cache_dir=cache)
    (cache_file,) = cache.glob("*.pt")
    cache_file.write_bytes(b"not a torch file")
    assert_same_data(read_image_folder(root, cache_dir=cache), first)
    assert cache_file.stat().st_size > 100


def _unsplit_tree(root: Path, counts: dict[str, int]) -> dict[str, list[np.ndarray]]:
    """``root/<class>/img<k>.png`` with ``counts[class]`` random images each."""
    written: dict[str, list[np.ndarray]] = {}
    for offset, (class_name, count) in enumerate(counts.items()):
        for index in range(count):
            pixels = random_pixels(100 * offset + index, (6, 5, 3))
            save_image(root / class_name / f"img{index}", pixels)
            written.setdefault(class_name, []).append(pixels)
    return written


def test_class_folders_alone_are_split_per_class_the_same_way_each_time(tmp_path: Path) -> None:
    written = _unsplit_tree(tmp_path, {"cat": 10, "ant": 5})
    data = read_image_folder(tmp_path, test_fraction=0.2)
    assert data.class_names == ("ant", "cat")
    # ant: 1 of 5 held out, cat: 2 of 10
    assert data.test.labels.tolist() == [0, 1, 1]
    assert data.train.labels.tolist() == [0] * 4 + [1] * 8
    # every image lands in exactly one split
    seen = torch.cat([data.train.images, data.test.images]).flatten(1)
    wanted = torch.from_numpy(
        np.stack([p.transpose(2, 0, 1) for ps in written.values() for p in ps])
    ).flatten(1)
    assert sorted(map(tuple, seen.tolist())) == sorted(map(tuple, wanted.tolist()))
    again = read_image_folder(tmp_path, test_fraction=0.2)
    assert torch.equal(again.test.images, data.test.images)


def test_class_folder_with_one_image_cannot_be_split(tmp_path: Path) -> None:
    _unsplit_tree(tmp_path, {"cat": 3, "ant": 1})
    with pytest.raises(DataError, match=r"ant holds 1 image\(s\).*at least 2"):
        read_image_folder(tmp_path)
