"""CIFAR-10 and CIFAR-100 python archives: ``data.name`` ``cifar10`` and ``cifar100``.

``data.path`` is ``cifar-10-batches-py`` / ``cifar-100-python`` or the folder holding it. Images
decode to uint8 (N, 3, 32, 32), labels to int64 (N,); CIFAR-100 uses its 100 fine labels. The
pickles are read by an unpickler that builds only the archives' plain types.
"""

from __future__ import annotations

import codecs
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kaizen.config import DataConfig
from kaizen.data.formats.common import as_str, build_labelled_data, check_counts, required_path
from kaizen.data.formats.registry import reads
from kaizen.data.imageset import LabelledData
from kaizen.errors import DataError


@reads("cifar10", "cifar100")
def read_cifar_dataset(config: DataConfig, seed: int) -> LabelledData:
    """The CIFAR archive at ``data.path``; which of the two it is, the archive tells."""
    return read_cifar(required_path(config))


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
    return {as_str(key): value for key, value in content.items()}


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
    class_names = [as_str(label_name) for label_name in meta[layout.names_key]]
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
