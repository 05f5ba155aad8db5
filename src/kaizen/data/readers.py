"""Readers for on-disk datasets: MNIST-family IDX files, CIFAR python archives and ``.npz`` files.

Each reader decodes its files once into a :class:`LabelledData` with uint8 images of shape
(N, C, H, W) and int64 labels of shape (N,). Problems with the files are reported as
:class:`DataError` naming the file, what is wrong and how to fix it.
"""

from __future__ import annotations

import codecs
import gzip
import math
import pickle
import struct
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kaizen.data.imageset import ImageSet, LabelledData
from kaizen.errors import ConfigError, DataError

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
MNIST_CLASSES: tuple[str, ...] = tuple(str(digit) for digit in range(10))


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


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
# IDX (MNIST, Fashion-MNIST, ...)
# --------------------------------------------------------------------------------------------

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_UINT8 = 0x08
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(
    root: Path, name: str = "idx", class_names: Sequence[str] | None = None
) -> LabelledData:
    """Read the four MNIST-family IDX files in ``root`` (each raw or gzip-compressed).

    Args:
        root: folder holding train-images-idx3-ubyte, train-labels-idx1-ubyte,
            t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each optionally with ``.gz``.
        name: the dataset's short name.
        class_names: one name per class; default ``"0"``..``str(max label)``.

    Returns:
        Images of shape (N, 1, H, W) and labels of shape (N,) for both splits.
    """
    paths = _find_idx_files(root)
    splits = {}
    for split, (images_stem, labels_stem) in _IDX_FILES.items():
        images = _read_idx_array(paths[images_stem], ndim=3)
        labels = _read_idx_array(paths[labels_stem], ndim=1)
        check_counts(images, labels, str(paths[images_stem]), str(paths[labels_stem]))
        splits[split] = (images[:, None], labels)
    return build_labelled_data(name, splits["train"], splits["test"], class_names)


def _find_idx_files(root: Path) -> dict[str, Path]:
    """Map each IDX file stem to its raw or ``.gz`` path in ``root``."""
    stems = [stem for pair in _IDX_FILES.values() for stem in pair]
    found = {}
    for stem in stems:
        candidates = [root / stem, root / f"{stem}.gz"]
        existing = [path for path in candidates if path.is_file()]
        if existing:
            found[stem] = existing[0]
    missing = [stem for stem in stems if stem not in found]
    if missing:
        expected = ", ".join(f"{stem}[.gz]" for stem in stems)
        what = "no IDX files" if len(missing) == len(stems) else f"missing {', '.join(missing)}"
        raise DataError(
            f"{what} in {root}: expected {expected}; point data.path at the folder holding them"
        )
    return found


def _read_idx_array(path: Path, ndim: int) -> np.ndarray:
    """Decode one uint8 IDX file of rank ``ndim`` into an array of the shape its header gives."""
    raw = _read_maybe_gzip(path)
    kind = "images" if ndim == 3 else "labels"
    header_size = 4 + 4 * ndim
    expected_magic = (_IDX_UINT8 << 8) | ndim
    if len(raw) >= 4 and raw[:4] != struct.pack(">I", expected_magic):
        (magic,) = struct.unpack(">I", raw[:4])
        raise DataError(
            f"{path} has magic 0x{magic:08x}, expected 0x{expected_magic:08x} (uint8 {ndim}-d "
            f"IDX {kind}): replace it with the dataset's IDX {kind} file"
        )
    if len(raw) < header_size:
        raise DataError(f"{path} is truncated inside its IDX header; re-download it")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    size = math.prod(shape)
    if len(raw) - header_size != size:
        raise DataError(
            f"{path} holds {len(raw) - header_size} bytes of {kind} but its header "
            f"{shape} needs {size}: the file is truncated or corrupt; re-download it"
        )
    return np.frombuffer(raw, dtype=np.uint8, count=size, offset=header_size).reshape(shape)


def _read_maybe_gzip(path: Path) -> bytes:
    """The bytes of ``path``, decompressed when the file starts with the gzip magic."""
    raw = path.read_bytes()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path} is not a valid gzip file ({error}); re-download it") from error


# --------------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100 python archives
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CifarLayout:
    """File names and dictionary keys of one CIFAR python archive."""

    name: str
    folder: str
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    labels_key: str
    names_key: str

    @property
    def files(self) -> tuple[str, ...]:
        return (*self.train_files, self.test_file, self.meta_file)


_CIFAR_LAYOUTS = (
    _CifarLayout(
        name="cifar10",
        folder="cifar-10-batches-py",
        train_files=tuple(f"data_batch_{index}" for index in range(1, 6)),
        test_file="test_batch",
        meta_file="batches.meta",
        labels_key="labels",
        names_key="label_names",
    ),
    _CifarLayout(
        name="cifar100",
        folder="cifar-100-python",
        train_files=("train",),
        test_file="test",
        meta_file="meta",
        labels_key="fine_labels",
        names_key="fine_label_names",
    ),
)
_CIFAR_SIDE = 32


def _latin1_encode(text: str, encoding: str) -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes; only latin-1 is accepted."""
    if encoding != "latin1":
        raise pickle.UnpicklingError(f"bytes pickled with encoding {encoding!r}, expected latin1")
    return codecs.encode(text, "latin1")


_ARRAY_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(0))[0]
_ARRAY_FROM_BUFFER = np.ndarray.__reduce_ex__(np.zeros(0), 5)[0]
_PICKLE_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _ARRAY_RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _ARRAY_RECONSTRUCT,
    ("numpy.core.numeric", "_frombuffer"): _ARRAY_FROM_BUFFER,
    ("numpy._core.numeric", "_frombuffer"): _ARRAY_FROM_BUFFER,
    ("_codecs", "encode"): _latin1_encode,
    ("builtins", "bytes"): bytes,
    ("__builtin__", "bytes"): bytes,
}


class _ArchiveUnpickler(pickle.Unpickler):
    """Unpickler that builds only dicts, lists, strings, bytes, numbers and numpy arrays.

    Any other global a pickle refers to is refused before it is imported or called.
    """

    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file, encoding="bytes")
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        allowed = _PICKLE_ALLOWED.get((module, name))
        if allowed is None:
            raise DataError(
                f"{self.path} refers to {module}.{name}, which a CIFAR archive never contains; "
                "refusing to load it: replace the file with one from the official CIFAR archive"
            )
        return allowed


def _load_cifar_pickle(path: Path) -> dict[str, Any]:
    """Unpickle one CIFAR file into a dict whose byte-string keys are decoded to str."""
    try:
        with path.open("rb") as file:
            content = _ArchiveUnpickler(file, path).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise DataError(
            f"cannot read {path} as a CIFAR pickle ({error}): re-download and extract the archive"
        ) from error
    if not isinstance(content, dict):
        raise DataError(
            f"{path} holds a {type(content).__name__}, expected a dict: "
            "re-download and extract the archive"
        )
    return {_as_str(key): value for key, value in content.items()}


def _as_str(value: str | bytes) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def read_cifar(root: Path) -> LabelledData:
    """Read the CIFAR-10 or CIFAR-100 python archive in ``root`` or in its subfolder.

    Args:
        root: ``cifar-10-batches-py`` / ``cifar-100-python`` itself, or the folder holding it.

    Returns:
        ``cifar10`` or ``cifar100`` with images of shape (N, 3, 32, 32) and labels of shape
        (N,); CIFAR-100 uses its 100 fine labels.
    """
    layout, folder = _locate_cifar(root)
    missing = [file for file in layout.files if not (folder / file).is_file()]
    if missing:
        raise DataError(
            f"{folder} lacks {', '.join(missing)}: extract the complete {layout.folder} archive"
        )
    train_parts = [_read_cifar_batch(folder / file, layout) for file in layout.train_files]
    train = (
        np.concatenate([images for images, _ in train_parts]),
        np.concatenate([labels for _, labels in train_parts]),
    )
    test = _read_cifar_batch(folder / layout.test_file, layout)
    meta_path = folder / layout.meta_file
    meta = _load_cifar_pickle(meta_path)
    if layout.names_key not in meta:
        raise DataError(f"{meta_path} has no {layout.names_key!r} entry: re-extract the archive")
    class_names = [_as_str(label_name) for label_name in meta[layout.names_key]]
    return build_labelled_data(layout.name, train, test, class_names)


def _locate_cifar(root: Path) -> tuple[_CifarLayout, Path]:
    """The archive layout found at ``root`` and the folder holding its files."""
    found = []
    for layout in _CIFAR_LAYOUTS:
        if (root / layout.folder).is_dir():
            found.append((layout, root / layout.folder))
        elif (root / layout.meta_file).is_file():
            found.append((layout, root))
    if not found:
        raise DataError(
            f"no CIFAR archive in {root}: expected the extracted python version "
            "(cifar-10-batches-py or cifar-100-python); point data.path at it or at its parent"
        )
    if len(found) > 1:
        raise DataError(
            f"{root} holds both CIFAR-10 and CIFAR-100: point data.path at one of "
            f"{', '.join(str(folder) for _, folder in found)}"
        )
    return found[0]


def _read_cifar_batch(path: Path, layout: _CifarLayout) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) of one CIFAR batch file."""
    batch = _load_cifar_pickle(path)
    for key in ("data", layout.labels_key):
        if key not in batch:
            raise DataError(f"{path} has no {key!r} entry: re-extract the archive")
    data = batch["data"]
    row_size = 3 * _CIFAR_SIDE * _CIFAR_SIDE
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise DataError(f"{path}: 'data' must be a uint8 N x {row_size} array: re-extract it")
    if data.shape[1] != row_size:
        raise DataError(
            f"{path}: 'data' rows have {data.shape[1]} values, expected {row_size} "
            "(3 x 32 x 32): re-extract the archive"
        )
    labels = np.asarray(batch[layout.labels_key], dtype=np.int64)
    check_counts(data, labels, f"{path} 'data'", f"its {layout.labels_key!r}")
    return data.reshape(-1, 3, _CIFAR_SIDE, _CIFAR_SIDE), labels


# --------------------------------------------------------------------------------------------
# .npz arrays
# --------------------------------------------------------------------------------------------

_NPZ_KEYS = ("x", "y", "x_test", "y_test", "class_names")
_NPZ_LAYOUT = (
    "x: uint8 N x H x W or N x H x W x C with C in {1, 3}; y: integer labels of length N; "
    "optional x_test/y_test alike and class_names (strings)"
)


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
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {
                key: _npz_array(archive, key, path) for key in _NPZ_KEYS if key in archive.files
            }
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise DataError(
            f"cannot read {path} as .npz ({error}): save it with numpy.savez ({_NPZ_LAYOUT})"
        ) from error
    train = _npz_split(arrays, path, "x", "y")
    if "x_test" in arrays or "y_test" in arrays:
        test = _npz_split(arrays, path, "x_test", "y_test")
    else:
        kept, held_out = stratified_holdout(train[1], test_fraction, seed)
        train, test = (train[0][kept], train[1][kept]), (train[0][held_out], train[1][held_out])
    return build_labelled_data(path.stem, train, test, _npz_class_names(arrays, path))


def _npz_array(archive: Any, key: str, path: Path) -> np.ndarray:
    """One array of an open npz archive; object arrays are refused."""
    try:
        return archive[key]
    except ValueError as error:
        raise DataError(
            f"{path}: array {key} holds Python objects, which are not loaded: "
            f"store plain numeric or string arrays ({_NPZ_LAYOUT})"
        ) from error


def _npz_split(
    arrays: dict[str, np.ndarray], path: Path, images_key: str, labels_key: str
) -> tuple[np.ndarray, np.ndarray]:
    """Validated images (N, C, H, W) uint8 and labels (N,) int64 from two npz arrays."""
    for key in (images_key, labels_key):
        if key not in arrays:
            raise DataError(f"{path} has no array {key}: expected {_NPZ_LAYOUT}")
    images, labels = arrays[images_key], arrays[labels_key]
    if images.dtype != np.uint8:
        raise DataError(
            f"{path}: array {images_key} has dtype {images.dtype}, expected uint8 pixels 0..255: "
            "scale and convert it with .astype(numpy.uint8)"
        )
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4 and images.shape[3] in (1, 3):
        images = images.transpose(0, 3, 1, 2)
    else:
        raise DataError(
            f"{path}: array {images_key} has shape {images.shape}, expected N x H x W or "
            "N x H x W x C with C in {1, 3}"
        )
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


def _npz_class_names(arrays: dict[str, np.ndarray], path: Path) -> tuple[str, ...] | None:
    """The optional ``class_names`` array as strings, or None when the file has none."""
    if "class_names" not in arrays:
        return None
    names = arrays["class_names"]
    if names.dtype.kind not in "US" or names.ndim != 1:
        raise DataError(
            f"{path}: array class_names is {names.dtype} with shape {names.shape}, expected a "
            "vector of strings, one per class"
        )
    return tuple(_as_str(name) for name in names.tolist())
