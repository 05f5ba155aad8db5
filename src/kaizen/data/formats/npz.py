"""``.npz`` arrays: ``data.name`` ``npz`` for training, and ``.npz`` files of update arrivals.

Both read the archive with one decoder (:func:`load_npz`, :func:`npz_images`): no pickles, so
object arrays are refused, and ``x`` uint8 (N, H, W) or (N, H, W, C) with C in {1, 3} becomes
(N, C, H, W). The labels differ by purpose:

- training: ``y`` integer labels 0..K-1 (N,), optional ``x_test``/``y_test`` alike and
  ``class_names`` (strings); without test arrays a seeded stratified share is held out;
- arrivals: ``y`` string labels ("" for none) or integer labels (-1 for none) naming
  ``class_names`` when the file has them.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from kaizen.config import DataConfig
from kaizen.data.formats.common import (
    as_str,
    build_labelled_data,
    check_counts,
    check_shape,
    required_path,
    stratified_holdout,
)
from kaizen.data.formats.registry import reads, reads_updates
from kaizen.data.imageset import Arrival, ImageShape, LabelledData
from kaizen.errors import DataError

_IMAGES_LAYOUT = "x: uint8 N x H x W or N x H x W x C with C in {1, 3}"
_NPZ_LAYOUT = (
    f"{_IMAGES_LAYOUT}; y: integer labels of length N; optional x_test/y_test alike and "
    "class_names (strings)"
)
_ARRIVAL_LAYOUT = (
    f'{_IMAGES_LAYOUT}; y: string labels ("" for none) or integer labels (-1 for none), naming '
    "class_names when the file has them"
)


# --------------------------------------------------------------------------------------------
# The archive
# --------------------------------------------------------------------------------------------


def load_npz(path: Path, keys: Iterable[str], layout: str) -> dict[str, np.ndarray]:
    """Those of ``keys`` that the ``.npz`` file ``path`` holds, read without pickles.

    Args:
        path: the ``.npz`` file.
        keys: the arrays to read; others are left unread.
        layout: what the file should hold, for messages.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {
                key: _npz_array(archive, key, path, layout) for key in keys if key in archive.files
            }
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise DataError(
            f"cannot read {path} as .npz ({error}): save it with numpy.savez ({layout})"
        ) from error


def _npz_array(archive: Any, key: str, path: Path, layout: str) -> np.ndarray:
    """One array of an open npz archive; object arrays are refused."""
    try:
        return archive[key]
    except ValueError as error:
        raise DataError(
            f"{path}: array {key} holds Python objects, which are not loaded: "
            f"store plain numeric or string arrays ({layout})"
        ) from error


def _require(arrays: dict[str, np.ndarray], path: Path, keys: Iterable[str], layout: str) -> None:
    for key in keys:
        if key not in arrays:
            raise DataError(f"{path} has no array {key}: expected {layout}")


def npz_images(images: np.ndarray, path: Path, key: str) -> np.ndarray:
    """Array ``key`` of ``path``, uint8 (N, H, W) or (N, H, W, C) with C in {1, 3}, as uint8
    (N, C, H, W) (a view, not a copy)."""
    if images.dtype != np.uint8:
        raise DataError(
            f"{path}: array {key} has dtype {images.dtype}, expected uint8 pixels 0..255: "
            "scale and convert it with .astype(numpy.uint8)"
        )
    if images.ndim == 3:
        return images[:, None]
    if images.ndim == 4 and images.shape[3] in (1, 3):
        return images.transpose(0, 3, 1, 2)
    raise DataError(
        f"{path}: array {key} has shape {images.shape}, expected N x H x W or "
        "N x H x W x C with C in {1, 3}"
    )


def npz_class_names(arrays: dict[str, np.ndarray], path: Path) -> tuple[str, ...] | None:
    """The optional ``class_names`` array as strings, or None when the file has none."""
    if "class_names" not in arrays:
        return None
    names = arrays["class_names"]
    if names.dtype.kind not in "US" or names.ndim != 1:
        raise DataError(
            f"{path}: array class_names is {names.dtype} with shape {names.shape}, expected a "
            "vector of strings, one per class"
        )
    return tuple(as_str(name) for name in names.tolist())


# --------------------------------------------------------------------------------------------
# Training data
# --------------------------------------------------------------------------------------------


@reads("npz")
def read_npz_dataset(config: DataConfig, seed: int) -> LabelledData:
    """The ``.npz`` file ``data.path``, holding out ``data.test_fraction`` without test arrays."""
    return read_npz(required_path(config), test_fraction=config.test_fraction, seed=seed)


def read_npz(path: Path, test_fraction: float = 0.2, seed: int = 0) -> LabelledData:
    """Read images and labels from a ``.npz`` file.

    Arrays: ``x`` uint8 (N, H, W) or (N, H, W, C) with C in {1, 3}; ``y`` integer labels (N,);
    optional ``x_test``/``y_test`` of the same kinds; optional ``class_names`` (strings). Without
    test arrays, ``test_fraction`` of every class is held out as test, chosen by ``seed``.

    Args:
        path: the ``.npz`` file.
        test_fraction: held-out share of each class when the file has no test arrays.
        seed: seed of the held-out choice.

    Returns:
        Data named after the file stem, images of shape (N, C, H, W), labels of shape (N,).
    """
    if not path.is_file():
        raise DataError(f"no .npz file at {path}: point data.path at a .npz file ({_NPZ_LAYOUT})")
    arrays = load_npz(path, ("x", "y", "x_test", "y_test", "class_names"), _NPZ_LAYOUT)
    train = _split(arrays, path, "x", "y")
    if "x_test" in arrays or "y_test" in arrays:
        test = _split(arrays, path, "x_test", "y_test")
    else:
        kept, held_out = stratified_holdout(train[1], test_fraction, seed)
        train, test = (train[0][kept], train[1][kept]), (train[0][held_out], train[1][held_out])
    return build_labelled_data(path.stem, train, test, npz_class_names(arrays, path))


def _split(
    arrays: dict[str, np.ndarray], path: Path, images_key: str, labels_key: str
) -> tuple[np.ndarray, np.ndarray]:
    """Validated images (N, C, H, W) uint8 and labels (N,) int64 from two npz arrays."""
    _require(arrays, path, (images_key, labels_key), _NPZ_LAYOUT)
    images = npz_images(arrays[images_key], path, images_key)
    labels = arrays[labels_key]
    if labels.dtype.kind not in "iu" or labels.ndim != 1:
        raise DataError(
            f"{path}: array {labels_key} is {labels.dtype} with shape {labels.shape}, expected "
            "a vector of integer labels"
        )
    if labels.size and labels.min() < 0:
        raise DataError(
            f"{path}: array {labels_key} has negative labels (min {labels.min()}): labels must "
            "be integers 0..num_classes-1"
        )
    check_counts(images, labels, f"{path} array {images_key}", f"array {labels_key}")
    return images, labels.astype(np.int64)


# --------------------------------------------------------------------------------------------
# Update arrivals
# --------------------------------------------------------------------------------------------


@reads_updates(".npz", layout="a .npz with x and y")
def read_npz_arrival(path: Path, shape: ImageShape) -> Arrival:
    """The images of an arrived ``.npz`` in the run's ``shape`` (resized and converted when the
    run resizes) with their class names, None for an unlabelled image."""
    arrays = load_npz(path, ("x", "y", "class_names"), _ARRIVAL_LAYOUT)
    _require(arrays, path, ("x", "y"), _ARRIVAL_LAYOUT)
    images, labels = npz_images(arrays["x"], path, "x"), arrays["y"]
    check_counts(images, labels, f"{path} array x", "array y")
    pixels = torch.from_numpy(images)
    if shape.resize is not None and tuple(pixels.shape[1:]) != (
        shape.channels,
        shape.height,
        shape.width,
    ):
        pixels = _resized(pixels, shape)
    check_shape(tuple(pixels.shape[1:]), shape, f"{path} array x")
    return Arrival(pixels.contiguous(), _arrival_names(arrays, labels, path))


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


def _arrival_names(
    arrays: dict[str, np.ndarray], labels: np.ndarray, path: Path
) -> tuple[str | None, ...]:
    """(N,) class names of the labels: strings ("" none) or integers (-1 none) that index
    ``class_names`` when the file has them, else name themselves."""
    if labels.dtype.kind in "US":
        return tuple(str(label) or None for label in labels.tolist())
    if labels.dtype.kind not in "iu" or labels.ndim != 1:
        raise DataError(f"{path}: y must be a vector of integer or string labels")
    class_names = npz_class_names(arrays, path)
    names: list[str | None] = []
    for label in labels.tolist():
        if label < 0:
            names.append(None)
        elif class_names is None:
            names.append(str(label))
        elif label < len(class_names):
            names.append(class_names[label])
        else:
            raise DataError(
                f"{path}: label {label} has no entry in class_names ({len(class_names)} names)"
            )
    return tuple(names)
