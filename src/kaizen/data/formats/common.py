"""What the data formats share: wrapping arrays as data, checks, held-out splits, and the one
image-file decoder of training data, update arrivals and prediction.

Images are uint8 throughout: (N, C, H, W) once stacked, C in {1, 3}; labels are int64 (N,).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from kaizen.config import DataConfig
from kaizen.data.imageset import Arrival, ImageSet, ImageShape, LabelledData
from kaizen.errors import ConfigError, DataError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
"""The image files the formats read, by lower-case suffix."""

GRAYSCALE_MODES = frozenset({"1", "L", "LA"})
"""PIL modes of 8-bit (and 1-bit) grayscale images."""

WIDE_GRAYSCALE_MODES = GRAYSCALE_MODES | {"I", "I;16", "F"}
"""Grayscale PIL modes including 16-bit, 32-bit and float images."""

DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)
"""What PIL raises for a file it cannot decode."""


# --------------------------------------------------------------------------------------------
# Arrays to data
# --------------------------------------------------------------------------------------------


def required_path(config: DataConfig) -> Path:
    """``data.path``, which the format of ``data.name`` needs."""
    if config.path is None:
        raise DataError(f"data.name={config.name} needs data.path: the folder or file holding it")
    return config.path


def as_str(value: str | bytes) -> str:
    """``value`` as text, byte strings decoded as UTF-8."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def default_class_names(*label_arrays: np.ndarray) -> tuple[str, ...]:
    """Names ``"0"``, ``"1"``, ... up to the largest label found in any of the (N,) arrays."""
    top = max((int(labels.max()) for labels in label_arrays if labels.size), default=-1)
    return tuple(str(index) for index in range(top + 1))


def check_counts(
    images: np.ndarray, labels: np.ndarray, images_from: str, labels_from: str
) -> None:
    """Raise :class:`DataError` unless there is one label per image.

    Args:
        images: array whose first axis counts images.
        labels: array whose first axis counts labels.
        images_from: where the images came from, for the message.
        labels_from: where the labels came from, for the message.
    """
    if len(images) != len(labels):
        raise DataError(
            f"{images_from} holds {len(images)} images but {labels_from} holds {len(labels)} "
            "labels: every image needs exactly one label; re-create the files from one source"
        )


def build_labelled_data(
    name: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    class_names: Sequence[str] | None = None,
) -> LabelledData:
    """Wrap numpy arrays as a :class:`LabelledData`.

    Args:
        name: the dataset's short name.
        train: uint8 images (N, C, H, W) and integer labels (N,).
        test: uint8 images (M, C, H, W) and integer labels (M,).
        class_names: one name per class; default ``"0"``..``str(max label)``.
    """
    names = (
        tuple(class_names) if class_names is not None else default_class_names(train[1], test[1])
    )
    return LabelledData(
        name=name, train=_image_set(*train), test=_image_set(*test), class_names=names
    )


def _image_set(images: np.ndarray, labels: np.ndarray) -> ImageSet:
    """Tensors from uint8 images (N, C, H, W) and integer labels (N,), copying only if needed."""
    pixels = np.require(images, dtype=np.uint8, requirements=["C_CONTIGUOUS", "WRITEABLE"])
    targets = np.require(labels, dtype=np.int64, requirements=["C_CONTIGUOUS", "WRITEABLE"])
    return ImageSet(images=torch.from_numpy(pixels), labels=torch.from_numpy(targets))


def stratified_holdout(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices so that ``round(fraction * count)`` samples of every class are held out.

    Which samples are held out is random but fixed by ``seed``.

    Args:
        labels: non-negative integer labels, shape (N,).
        fraction: held-out share of each class, in (0, 1).
        seed: seed of the random choice.

    Returns:
        Sorted kept indices and sorted held-out indices, together covering ``range(N)``.
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"data.test_fraction must lie strictly between 0 and 1, got {fraction}")
    shuffled = np.random.default_rng(seed).permutation(len(labels))
    order = shuffled[np.argsort(labels[shuffled], kind="stable")]
    sorted_labels = labels[order]
    counts = np.bincount(labels)
    class_starts = np.cumsum(counts) - counts
    rank_in_class = np.arange(len(labels)) - class_starts[sorted_labels]
    held_out_per_class = np.round(fraction * counts).astype(np.int64)
    is_held_out = rank_in_class < held_out_per_class[sorted_labels]
    return np.sort(order[~is_held_out]), np.sort(order[is_held_out])


# --------------------------------------------------------------------------------------------
# Folders of image files
# --------------------------------------------------------------------------------------------


def subfolders(folder: Path) -> list[str]:
    """Sorted names of the visible sub-folders of ``folder``."""
    return sorted(
        entry.name
        for entry in folder.iterdir()
        if entry.is_dir() and not entry.name.startswith(".")
    )


def image_files(folder: Path) -> list[Path]:
    """Sorted image files directly inside ``folder``."""
    return sorted(
        entry
        for entry in folder.iterdir()
        if entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES
    )


# --------------------------------------------------------------------------------------------
# Decoding image files
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecodePolicy:
    """How an image file becomes pixels.

    Attributes:
        size: (width, height) to resize to (the shorter side, then a centre crop), or None to
            keep the file's size.
        channels: 1 or 3 to convert every image to; None: 1 for an image whose mode is in
            ``grayscale_modes``, 3 otherwise.
        grayscale_modes: the PIL modes kept single-channel when ``channels`` is None.
        draft: when resizing, let the decoder reduce a large JPEG's scale first (faster; the
            pixels differ slightly from a full decode).
    """

    size: tuple[int, int] | None = None
    channels: int | None = None
    grayscale_modes: frozenset[str] = GRAYSCALE_MODES
    draft: bool = False

    @classmethod
    def for_shape(cls, shape: ImageShape) -> DecodePolicy:
        """A run's images: converted and resized to ``shape`` when it resizes, else as they
        are (any grayscale mode single-channel), to be checked against ``shape``."""
        if shape.resize is None:
            return cls(grayscale_modes=WIDE_GRAYSCALE_MODES)
        return cls(size=(shape.width, shape.height), channels=shape.channels)


def decode_image(path: Path, policy: DecodePolicy) -> np.ndarray:
    """Pixels of one image file as ``policy`` says: uint8 (H, W) for one channel, (H, W, 3)
    for three. Raises what PIL raises (:data:`DECODE_ERRORS`) for a file it cannot decode."""
    with Image.open(path) as opened:
        if policy.draft and policy.size is not None:
            opened.draft(None, policy.size)
        gray = (
            opened.mode in policy.grayscale_modes
            if policy.channels is None
            else policy.channels == 1
        )
        converted = opened.convert("L" if gray else "RGB")
    if policy.size is not None:
        converted = ImageOps.fit(converted, policy.size, method=Image.Resampling.BILINEAR)
    return np.asarray(converted)


def check_shape(found: tuple[int, ...], shape: ImageShape, where: str) -> None:
    """Refuse images of (C, H, W) ``found`` in a run of ``shape``."""
    channels, height, width = found
    if (channels, height, width) != (shape.channels, shape.height, shape.width):
        raise DataError(
            f"{where} is a {channels}-channel {width}x{height} image but the run trains on "
            f"{shape.describe()} images: convert the update's images to that shape (a run with "
            "data.image_size resizes them itself)"
        )


def decode_to_shape(path: Path, shape: ImageShape) -> np.ndarray:
    """One image as uint8 (C, H, W) in ``shape``, converted and resized when ``shape.resize``
    is set; raises DataError when it does not fit, and :data:`DECODE_ERRORS` when it cannot be
    decoded."""
    pixels = decode_image(path, DecodePolicy.for_shape(shape))
    array = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    check_shape(tuple(array.shape), shape, str(path))
    return np.ascontiguousarray(array)


def arrival_from_files(
    entries: list[tuple[Path, str | None]], shape: ImageShape, source: Path
) -> Arrival:
    """The images of ``entries`` (file, class name or None) in ``shape``; a file that cannot be
    decoded is left out and named in ``skipped``."""
    pixels, names, skipped = [], [], []
    for path, name in entries:
        try:
            image = decode_to_shape(path, shape)
        except DECODE_ERRORS:
            skipped.append(str(path))
            continue
        pixels.append(image)
        names.append(name)
    if not pixels:
        raise DataError(f"no image of {source} could be decoded: check the files")
    return Arrival(torch.from_numpy(np.stack(pixels)), tuple(names), tuple(skipped))
