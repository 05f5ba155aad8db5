"""Data that arrives for an update: an image folder, an ``.npz`` or a CSV of paths and labels.

Every source gives uint8 images of the run's shape and one class name per image, None for an
image without a label:

- a folder: ``<class>/<images>`` labelled by the folder's name, ``_unlabelled/<images>``
  without a label;
- an ``.npz``: ``x`` uint8 (N, H, W) or (N, H, W, C) and ``y``, integer labels (-1: unlabelled)
  naming ``class_names`` when the file has them (else the label itself is the name), or string
  labels ("" unlabelled);
- a ``.csv``: rows ``path,label`` (a ``path,label`` header is optional; paths relative to the
  file's folder), an empty label for an unlabelled image.

Images must have the run's channels and size; when the run resizes (``data.image_size``) they
are converted and resized like its own images. An image file that cannot be decoded is skipped
and named in a warning; a CSV that names files that do not exist is refused.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor
from torch.nn import functional as F

from kaizen.data.image_folder import IMAGE_SUFFIXES
from kaizen.errors import DataError

UNLABELLED_FOLDER = "_unlabelled"
_GRAYSCALE_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})


@dataclass(frozen=True)
class ImageShape:
    """The images a run trains on: channels, height and width, and its resize side if any."""

    channels: int
    height: int
    width: int
    resize: int | None = None

    def describe(self) -> str:
        return f"{self.channels}-channel {self.width}x{self.height}"


@dataclass(frozen=True)
class Arrival:
    """Arrived images and what is known of them.

    Attributes:
        images: uint8 (N, C, H, W) in the run's shape.
        names: (N,) class names, None where the image has no label.
        skipped: files that could not be decoded and were left out.
    """

    images: Tensor
    names: tuple[str | None, ...]
    skipped: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.names)

    def labelled_names(self) -> list[str]:
        """The class names of the labelled images, in first-seen order, each once."""
        return list(dict.fromkeys(name for name in self.names if name is not None))

    def subset(self, rows: Sequence[int]) -> Arrival:
        index = torch.as_tensor(list(rows), dtype=torch.int64)
        return Arrival(self.images[index], tuple(self.names[i] for i in rows), self.skipped)


def read_arrival(source: Path, shape: ImageShape) -> Arrival:
    """The images of ``source`` (a folder, ``.npz`` or ``.csv``), in the run's ``shape``."""
    if not source.exists():
        raise DataError(f"update data {source} does not exist: give a folder, .npz or .csv")
    if source.is_dir():
        return _from_files(_folder_entries(source), shape, source)
    if source.suffix == ".npz":
        return _from_npz(source, shape)
    if source.suffix == ".csv":
        return _from_files(_csv_entries(source), shape, source)
    raise DataError(
        f"update data {source} is neither a folder nor a .npz or .csv file: give <class>/* "
        f"folders (and {UNLABELLED_FOLDER}/*), a .npz with x and y, or a CSV of path,label"
    )


def _folder_entries(root: Path) -> list[tuple[Path, str | None]]:
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    entries: list[tuple[Path, str | None]] = []
    for folder in folders:
        name = None if folder.name == UNLABELLED_FOLDER else folder.name
        files = sorted(
            p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        entries += [(path, name) for path in files]
    if not entries:
        raise DataError(
            f"{root} holds no images: put them in {root}/<class>/ (labelled) or "
            f"{root}/{UNLABELLED_FOLDER}/"
        )
    return entries


def _csv_entries(path: Path) -> list[tuple[Path, str | None]]:
    try:
        with path.open(newline="") as handle:
            rows = [row for row in csv.reader(handle) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"cannot read {path} as a CSV of path,label ({error})") from error
    if rows and [cell.strip().lower() for cell in rows[0]] == ["path", "label"]:
        rows = rows[1:]
    entries: list[tuple[Path, str | None]] = []
    for number, row in enumerate(rows, start=1):
        if len(row) != 2:
            raise DataError(f"{path} row {number} has {len(row)} fields: write path,label")
        file, label = Path(row[0].strip()), row[1].strip()
        entries.append((file if file.is_absolute() else path.parent / file, label or None))
    missing = [str(file) for file, _ in entries if not file.is_file()]
    if missing:
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        raise DataError(f"{path} names {len(missing)} files that do not exist: {shown}")
    if not entries:
        raise DataError(f"{path} lists no images: write one path,label row per image")
    return entries


def _from_files(entries: list[tuple[Path, str | None]], shape: ImageShape, source: Path) -> Arrival:
    pixels, names, skipped = [], [], []
    for path, name in entries:
        try:
            image = decode_to_shape(path, shape)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            skipped.append(str(path))
            continue
        pixels.append(image)
        names.append(name)
    if not pixels:
        raise DataError(f"no image of {source} could be decoded: check the files")
    return Arrival(torch.from_numpy(np.stack(pixels)), tuple(names), tuple(skipped))


def decode_to_shape(path: Path, shape: ImageShape) -> np.ndarray:
    """One image as uint8 (C, H, W) in ``shape``, converted and resized when ``shape.resize``
    is set; raises DataError when it does not fit, OSError and the like when it cannot be
    decoded."""
    with Image.open(path) as opened:
        opened.load()
        grayscale = opened.mode in _GRAYSCALE_MODES
        if shape.resize is not None:
            converted = opened.convert("L" if shape.channels == 1 else "RGB")
            converted = ImageOps.fit(
                converted, (shape.width, shape.height), method=Image.Resampling.BILINEAR
            )
        else:
            converted = opened.convert("L" if grayscale else "RGB")
    array = np.asarray(converted)
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    _check_shape(tuple(array.shape), shape, str(path))
    return np.ascontiguousarray(array)


def _check_shape(found: tuple[int, ...], shape: ImageShape, where: str) -> None:
    channels, height, width = found
    if (channels, height, width) != (shape.channels, shape.height, shape.width):
        raise DataError(
            f"{where} is a {channels}-channel {width}x{height} image but the run trains on "
            f"{shape.describe()} images: convert the update's images to that shape (a run with "
            "data.image_size resizes them itself)"
        )


def _from_npz(path: Path, shape: ImageShape) -> Arrival:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as error:
        raise DataError(
            f"cannot read {path} as .npz ({error}): save it with numpy.savez"
        ) from error
    for key in ("x", "y"):
        if key not in arrays:
            raise DataError(f"{path} has no array {key}: expected x (uint8 images) and y (labels)")
    images, labels = arrays["x"], arrays["y"]
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or len(images) != len(labels):
        raise DataError(
            f"{path}: x must be uint8 N x H x W or N x H x W x C with one label in y per image, "
            f"got {images.dtype} {images.shape} and {len(labels)} labels"
        )
    pixels = torch.from_numpy(images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2))
    if shape.resize is not None and tuple(pixels.shape[1:]) != (
        shape.channels,
        shape.height,
        shape.width,
    ):
        pixels = _resized(pixels, shape)
    _check_shape(tuple(pixels.shape[1:]), shape, f"{path} array x")
    return Arrival(pixels.contiguous(), _npz_names(arrays, labels, path))


def _resized(pixels: Tensor, shape: ImageShape) -> Tensor:
    """uint8 (N, C', H', W') to (N, C, H, W): channels averaged or repeated, bilinear resize."""
    if pixels.shape[1] != shape.channels:
        pixels = (
            pixels.float().mean(dim=1, keepdim=True)
            if shape.channels == 1
            else pixels.expand(-1, shape.channels, -1, -1)
        )
    resized = F.interpolate(pixels.float(), size=(shape.height, shape.width), mode="bilinear")
    return resized.round().clamp(0, 255).to(torch.uint8)


def _npz_names(
    arrays: dict[str, np.ndarray], labels: np.ndarray, path: Path
) -> tuple[str | None, ...]:
    if labels.dtype.kind in "US":
        return tuple(str(label) or None for label in labels.tolist())
    if labels.dtype.kind not in "iu" or labels.ndim != 1:
        raise DataError(f"{path}: y must be a vector of integer or string labels")
    class_names = arrays.get("class_names")
    names: list[str | None] = []
    for label in labels.tolist():
        if label < 0:
            names.append(None)
        elif class_names is None:
            names.append(str(label))
        elif label < len(class_names):
            names.append(str(class_names[label]))
        else:
            raise DataError(
                f"{path}: label {label} has no entry in class_names ({len(class_names)} names)"
            )
    return tuple(names)
