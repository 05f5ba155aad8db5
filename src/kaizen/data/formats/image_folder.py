"""Class-per-folder image trees: ``data.name`` ``image-folder``, and folders of update arrivals.

Training layout (ImageNet-100 style): ``root/train/<class>/<image>`` and
``root/val/<class>/<image>`` (``test`` may replace ``val``), or ``root/<class>/<image>`` alone
(ImageNet-R as distributed), whose images are split per class into train and test by a fixed
shuffle, the same for every run. Images decode to uint8 (N, C, H, W), C in {1, 3}; decoded
tensors can be cached in a ``.pt`` file keyed by the files' paths, splits, sizes and
modification times, so a changed tree is decoded again.

Update layout: ``<class>/<image>`` labelled by the folder's name, ``_unlabelled/<image>``
without a label.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.progress import track

from kaizen.config import DataConfig
from kaizen.data.formats.common import (
    DECODE_ERRORS,
    IMAGE_SUFFIXES,
    DecodePolicy,
    arrival_from_files,
    build_labelled_data,
    decode_image,
    image_files,
    required_path,
    subfolders,
)
from kaizen.data.formats.registry import FOLDER, reads, reads_updates
from kaizen.data.imageset import Arrival, ImageSet, ImageShape, LabelledData
from kaizen.errors import DataError

UNLABELLED_FOLDER = "_unlabelled"
_TEST_FOLDERS = ("val", "test")
_PROGRESS_MIN_FILES = 1000
_CACHE_FORMAT = "kaizen-image-folder-v1"


@dataclass(frozen=True)
class _ImageFile:
    """One image of the tree: its path, its label and whether it belongs to the test split."""

    path: Path
    label: int
    is_test: bool


@reads("image-folder")
def read_image_folder_dataset(config: DataConfig, seed: int) -> LabelledData:
    """The tree at ``data.path``, resized to ``data.image_size``, cached in ``data.cache_dir``."""
    return read_image_folder(
        required_path(config), config.image_size, config.cache_dir, config.test_fraction
    )


@reads_updates(FOLDER, layout=f"<class>/* folders (and {UNLABELLED_FOLDER}/*)")
def read_folder_arrival(root: Path, shape: ImageShape) -> Arrival:
    """``root/<class>/<images>`` labelled by the folder's name and
    ``root/_unlabelled/<images>`` without a label, in the run's ``shape``."""
    entries: list[tuple[Path, str | None]] = []
    for folder in subfolders(root):
        name = None if folder == UNLABELLED_FOLDER else folder
        entries += [(path, name) for path in image_files(root / folder)]
    if not entries:
        raise DataError(
            f"{root} holds no images: put them in {root}/<class>/ (labelled) or "
            f"{root}/{UNLABELLED_FOLDER}/"
        )
    return arrival_from_files(entries, shape, root)


def read_image_folder(
    root: Path,
    image_size: int | None = None,
    cache_dir: Path | None = None,
    test_fraction: float = 0.2,
) -> LabelledData:
    """Decode a class-per-folder image tree.

    Class names are the sorted folder names under ``root/train`` (or ``root``). Images are RGB,
    or single-channel when every image is grayscale.

    Args:
        root: folder holding ``train`` and ``val`` (or ``test``), or the class folders alone.
        image_size: when given, resize each image's shorter side to it and centre-crop to
            image_size x image_size; when None, all images must share one size.
        cache_dir: folder for a cache of the decoded tensors; None disables caching.
        test_fraction: share of each class's images held out for testing when ``root`` holds
            the class folders alone (DualPrompt's ImageNet-R split is 0.2).

    Returns:
        Data named after ``root`` with images of shape (N, C, H, W), C in {1, 3}, and labels
        of shape (N,).
    """
    class_names, files = _list_tree(root, test_fraction)
    cache_path = None
    if cache_dir is not None:
        _make_cache_dir(cache_dir)
        cache_path = cache_dir / f"{_cache_key(root, image_size, files)}.pt"
        cached = _load_cache(cache_path, root.name)
        if cached is not None:
            return cached
    data = _decode_tree(root, class_names, files, image_size)
    if cache_path is not None:
        _save_cache(cache_path, data)
    return data


# --------------------------------------------------------------------------------------------
# Listing the tree
# --------------------------------------------------------------------------------------------


def _list_tree(root: Path, test_fraction: float) -> tuple[tuple[str, ...], list[_ImageFile]]:
    """The class names and every image file of both splits, in a fixed order."""
    train_dir = root / "train"
    test_dir = next((root / name for name in _TEST_FOLDERS if (root / name).is_dir()), None)
    if not train_dir.is_dir() and test_dir is None and subfolders(root):
        return _list_unsplit_tree(root, test_fraction)
    if not train_dir.is_dir() or test_dir is None:
        raise DataError(
            f"{root} is not an image-folder tree: expected {root}/train/<class>/<images> and "
            f"{root}/val/<class>/<images> (or test/), or {root}/<class>/<images>; point "
            "data.path at the folder holding them"
        )
    class_names = tuple(subfolders(train_dir))
    if not class_names:
        raise DataError(
            f"{train_dir} has no class folders: put each class's images in train/<class>/"
        )
    label_of = {name: label for label, name in enumerate(class_names)}
    files = []
    for class_name in class_names:
        images = image_files(train_dir / class_name)
        if not images:
            raise DataError(
                f"{train_dir / class_name} holds no {'/'.join(sorted(IMAGE_SUFFIXES))} images: "
                "add training images or remove the folder"
            )
        files += [_ImageFile(path, label_of[class_name], is_test=False) for path in images]
    for class_name in subfolders(test_dir):
        if class_name not in label_of:
            raise DataError(
                f"{test_dir / class_name} is a class that {train_dir} lacks: add "
                f"train/{class_name} with training images or remove {test_dir.name}/{class_name}"
            )
        files += [
            _ImageFile(path, label_of[class_name], is_test=True)
            for path in image_files(test_dir / class_name)
        ]
    return class_names, files


def _list_unsplit_tree(
    root: Path, test_fraction: float
) -> tuple[tuple[str, ...], list[_ImageFile]]:
    """``root/<class>/<images>`` cut per class: a shuffle seeded by the class's position puts
    ``round(test_fraction * n)`` of its ``n`` images (at least one, and one fewer than all)
    in the test split."""
    class_names = tuple(subfolders(root))
    files = []
    for label, class_name in enumerate(class_names):
        images = image_files(root / class_name)
        if len(images) < 2:
            raise DataError(
                f"{root / class_name} holds {len(images)} image(s): a class needs at least 2 to "
                "be split into train and test; add images or give train/ and val/ folders"
            )
        held_out = min(max(round(test_fraction * len(images)), 1), len(images) - 1)
        order = np.random.RandomState(label).permutation(len(images))
        is_test = np.zeros(len(images), dtype=bool)
        is_test[order[:held_out]] = True
        files += [
            _ImageFile(path, label, is_test=bool(test))
            for path, test in zip(images, is_test, strict=True)
        ]
    return class_names, files


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


def _decode_tree(
    root: Path, class_names: tuple[str, ...], files: list[_ImageFile], image_size: int | None
) -> LabelledData:
    """Decode every file once and stack them into train and test splits."""
    pixels = _decode_all(root, files, image_size)
    channels = 1 if all(image.ndim == 2 for image in pixels) else 3
    splits = {}
    for is_test in (False, True):
        chosen = [index for index, file in enumerate(files) if file.is_test == is_test]
        labels = np.array([files[index].label for index in chosen], dtype=np.int64)
        images = _stack([pixels[index] for index in chosen], channels, pixels[0].shape[:2])
        splits[is_test] = (images, labels)
    return build_labelled_data(root.name, splits[False], splits[True], class_names)


def _decode_all(root: Path, files: list[_ImageFile], image_size: int | None) -> list[np.ndarray]:
    """Pixels of every file, (H, W) or (H, W, 3), checking that all share one size."""
    policy = DecodePolicy(size=None if image_size is None else (image_size, image_size), draft=True)
    pixels: list[np.ndarray] = []
    for file in track(
        files,
        description=f"Decoding {len(files)} images in {root}",
        disable=len(files) <= _PROGRESS_MIN_FILES,
    ):
        try:
            image = decode_image(file.path, policy)
        except DECODE_ERRORS as error:
            raise DataError(
                f"cannot decode {file.path} ({error}): remove or replace the file"
            ) from error
        if pixels and image.shape[:2] != pixels[0].shape[:2]:
            (height, width), first = pixels[0].shape[:2], files[0].path
            raise DataError(
                f"images in {root} differ in size ({first} is {width}x{height}, {file.path} is "
                f"{image.shape[1]}x{image.shape[0]}): set data.image_size to resize them to one "
                "square size"
            )
        pixels.append(image)
    return pixels


def _stack(pixels: list[np.ndarray], channels: int, size: tuple[int, int]) -> np.ndarray:
    """One uint8 array (N, channels, H, W) from (H, W) or (H, W, 3) images of size (H, W)."""
    stacked = np.empty((len(pixels), channels, *size), dtype=np.uint8)
    for index, image in enumerate(pixels):
        # a grayscale (H, W) image broadcasts over all channels
        stacked[index] = image if image.ndim == 2 else image.transpose(2, 0, 1)
    return stacked


# --------------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------------


def _cache_key(root: Path, image_size: int | None, files: list[_ImageFile]) -> str:
    """A sha256 hex digest of the resolved root, the size and every file's path, split, size and
    mtime."""
    digest = hashlib.sha256(f"{_CACHE_FORMAT}\n{root.resolve()}\n{image_size}\n".encode())
    for file in files:
        stat = file.path.stat()
        relative = file.path.relative_to(root).as_posix()
        digest.update(f"{relative}\t{file.is_test}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _make_cache_dir(cache_dir: Path) -> None:
    """Create ``cache_dir`` before any decoding, so an unusable folder is reported at once."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(
            f"cannot create the cache folder {cache_dir} ({error}): point data.cache_dir at a "
            "writable folder or unset it"
        ) from error


def _load_cache(path: Path, name: str) -> LabelledData | None:
    """The cached data at ``path``, or None when it is missing or cannot be used."""
    if not path.is_file():
        return None
    try:
        saved = torch.load(path, weights_only=True)
        return LabelledData(
            name=name,
            train=ImageSet(images=saved["train_images"], labels=saved["train_labels"]),
            test=ImageSet(images=saved["test_images"], labels=saved["test_labels"]),
            class_names=tuple(saved["class_names"]),
        )
    except Exception:  # any unreadable or malformed cache is rebuilt from the images
        return None


def _save_cache(path: Path, data: LabelledData) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, then rename."""
    saved = {
        "train_images": data.train.images,
        "train_labels": data.train.labels,
        "test_images": data.test.images,
        "test_labels": data.test.labels,
        "class_names": list(data.class_names),
    }
    temporary_name: str | None = None
    try:
        descriptor, temporary_name = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp"
        )
        with os.fdopen(descriptor, "wb") as temporary:
            torch.save(saved, temporary)
            temporary.flush()
            os.fsync(temporary.fileno())
        os.replace(temporary_name, path)
    except (OSError, RuntimeError) as error:
        raise DataError(
            f"cannot write the cache {path} ({error}): free disk space, point data.cache_dir "
            "at a writable folder, or unset it"
        ) from error
    finally:
        if temporary_name is not None:
            Path(temporary_name).unlink(missing_ok=True)
