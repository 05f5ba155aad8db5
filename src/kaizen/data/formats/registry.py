"""The data formats, by the ``data.name`` values they read and the update paths they claim.

A format module registers itself when :mod:`kaizen.data.formats` imports it, with decorators:

- :func:`reads` marks ``(DataConfig, seed) -> LabelledData`` as the reader of some
  ``data.name`` values (uint8 images (N, C, H, W), int64 labels (N,), for both splits);
- :func:`reads_domains` marks ``(DataConfig, ScenarioConfig, seed) -> DomainData`` as the
  reader of a name that holds one dataset per domain (a domain-incremental stream only);
- :func:`reads_updates` marks ``(Path, ImageShape) -> Arrival`` as the reader of the
  ``kaizen update`` arrivals at a folder (``FOLDER``) or at files with one suffix (``".npz"``).

Registering a name also makes it a valid ``data.name`` (:mod:`kaizen.config.data`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kaizen.config import DataConfig, ScenarioConfig
from kaizen.config.data import register_dataset_name
from kaizen.data.domains import DomainData
from kaizen.data.imageset import Arrival, ImageShape, LabelledData
from kaizen.errors import DataError

DatasetReader = Callable[[DataConfig, int], LabelledData]
DomainReader = Callable[[DataConfig, ScenarioConfig, int], DomainData]
ArrivalReader = Callable[[Path, ImageShape], Arrival]

FOLDER = "folder"
"""The update paths of a format that reads arrivals from a folder."""


@dataclass(frozen=True)
class DatasetFormat:
    """How one ``data.name`` is read: as one dataset, as one dataset per domain, or both."""

    read: DatasetReader | None = None
    read_domains: DomainReader | None = None


@dataclass(frozen=True)
class UpdateFormat:
    """How the arrivals at some update paths are read.

    Attributes:
        paths: ``FOLDER``, or the suffix of the files it reads (``".npz"``).
        read: the reader; images come back in the run's shape.
        layout: what such a source holds, for messages (``"a .npz with x and y"``).
    """

    paths: str
    read: ArrivalReader
    layout: str


DATASETS: dict[str, DatasetFormat] = {}
"""Each ``data.name``'s readers."""

UPDATE_FORMATS: dict[str, UpdateFormat] = {}
"""Each claimed update path kind (``FOLDER`` or a suffix) and its reader."""


def _register_dataset(
    name: str, read: DatasetReader | None = None, read_domains: DomainReader | None = None
) -> None:
    """Add ``read`` or ``read_domains`` to ``name``'s readers; a name read one way by two
    functions is refused."""
    known = DATASETS.get(name, DatasetFormat())
    if read is not None and known.read not in (None, read):
        raise ValueError(f"data.name {name!r} already has the reader {known.read}")
    if read_domains is not None and known.read_domains not in (None, read_domains):
        raise ValueError(f"data.name {name!r} already has the reader {known.read_domains}")
    DATASETS[name] = DatasetFormat(read or known.read, read_domains or known.read_domains)
    register_dataset_name(name)


def reads(*names: str) -> Callable[[DatasetReader], DatasetReader]:
    """Register the decorated function as the training reader of the ``data.name`` ``names``."""

    def register(reader: DatasetReader) -> DatasetReader:
        for name in names:
            _register_dataset(name, read=reader)
        return reader

    return register


def reads_domains(*names: str) -> Callable[[DomainReader], DomainReader]:
    """Register the decorated function as the domain-incremental reader of ``names``."""

    def register(reader: DomainReader) -> DomainReader:
        for name in names:
            _register_dataset(name, read_domains=reader)
        return reader

    return register


def reads_updates(paths: str, layout: str) -> Callable[[ArrivalReader], ArrivalReader]:
    """Register the decorated function as the reader of the update arrivals at ``paths``
    (``FOLDER`` or a file suffix), described by ``layout`` in messages."""

    def register(reader: ArrivalReader) -> ArrivalReader:
        if paths in UPDATE_FORMATS and UPDATE_FORMATS[paths].read is not reader:
            raise ValueError(f"update paths {paths!r} already have a reader")
        UPDATE_FORMATS[paths] = UpdateFormat(paths, reader, layout)
        return reader

    return register


def dataset_format(name: str) -> DatasetFormat:
    """The readers of ``data.name`` ``name``."""
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise DataError(f"no data format reads data.name={name}; choose one of {known}") from None


def _update_formats() -> list[UpdateFormat]:
    """The update formats, the folder's first, then by suffix."""
    return sorted(
        UPDATE_FORMATS.values(), key=lambda update: (update.paths != FOLDER, update.paths)
    )


def _either(choices: list[str], last: str) -> str:
    """``"a, b or c"`` from ``["a", "b", "c"]`` and ``"or"``."""
    return choices[0] if len(choices) == 1 else f"{', '.join(choices[:-1])}{last}{choices[-1]}"


def update_kinds() -> str:
    """The kinds of update data the formats read: ``"a folder, .csv or .npz"``."""
    return _either(
        ["a folder" if update.paths == FOLDER else update.paths for update in _update_formats()],
        " or ",
    )


def update_format(source: Path) -> UpdateFormat:
    """The reader of the arrivals at ``source``, an existing folder or file."""
    found = UPDATE_FORMATS.get(FOLDER if source.is_dir() else source.suffix)
    if found is None:
        layouts = _either([update.layout for update in _update_formats()], ", or ")
        raise DataError(f"update data {source} is not {update_kinds()}: give {layouts}")
    return found
