"""Updates of a finished run: one more task each, from data that arrived after it.

``kaizen update`` decodes the arrived data once and keeps it in the run directory
(``updates/u<k>/data.safetensors`` and ``update.json``) before training starts, so the task is
defined by the run directory alone: a killed update resumes with ``kaizen resume`` on exactly
the images it started with. The stream of a run is its scenario's tasks followed by one task
per update (:func:`extend_stream_data`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from kaizen.data.classes import extend_classes
from kaizen.data.imageset import Arrival, ImageSet, LabelledData
from kaizen.data.scenario import Task, labelled_mask
from kaizen.errors import DataError

UPDATES_FOLDER = "updates"
_RECORD = "update.json"
_DATA = "data.safetensors"


@dataclass(frozen=True)
class Update:
    """One update's data, labels as class indices of ``class_names``.

    Attributes:
        number: 1 for the first update of the run, 2 for the next, ...
        train_images: uint8 (N, C, H, W).
        train_labels: int64 (N,), -1 where the image has no label.
        test_images: uint8 (M, C, H, W).
        test_labels: int64 (M,), every one labelled.
        label_fraction: share of the labelled training images whose label the task keeps.
        class_names: every class known once this update is registered, index i naming class i.
        overrides: the runtime and gate settings it was started with, which a resume of it
            applies again.
    """

    number: int
    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    label_fraction: float
    class_names: tuple[str, ...]
    overrides: tuple[str, ...] = ()

    @property
    def classes(self) -> tuple[int, ...]:
        """The sorted classes of the labelled training and test images."""
        labels = torch.cat([self.train_labels, self.test_labels])
        return tuple(sorted(set(labels[labels >= 0].tolist())))


def split_arrival(arrival: Arrival, test_fraction: float, seed: int) -> tuple[Arrival, Arrival]:
    """A seeded stratified split of the labelled images: ``round(test_fraction * n)`` of each
    class's n images (at least 1, and never all) for testing; a class with one image and every
    unlabelled image stay for training."""
    generator = np.random.RandomState(seed)
    test_rows: list[int] = []
    for name in arrival.labelled_names():
        rows = [i for i, each in enumerate(arrival.names) if each == name]
        if len(rows) < 2:
            continue
        held_out = min(max(round(test_fraction * len(rows)), 1), len(rows) - 1)
        test_rows += [rows[i] for i in generator.permutation(len(rows))[:held_out]]
    chosen = set(test_rows)
    train_rows = [i for i in range(len(arrival)) if i not in chosen]
    return arrival.subset(train_rows), arrival.subset(sorted(test_rows))


def _labels(arrival: Arrival, class_names: tuple[str, ...]) -> Tensor:
    index = {name: i for i, name in enumerate(class_names)}
    return torch.tensor(
        [-1 if name is None else index[name] for name in arrival.names], dtype=torch.int64
    )


def build_update(
    number: int,
    known_classes: tuple[str, ...],
    train: Arrival,
    test: Arrival,
    label_fraction: float,
    overrides: tuple[str, ...] = (),
) -> tuple[Update, list[str]]:
    """Update ``number`` of a run whose classes are ``known_classes``, with warnings about
    new class names that look like known ones."""
    if not any(name is not None for name in test.names):
        raise DataError(
            "the update has no labelled image to test on: add labelled images (at least two of "
            "a class) or give --test DATA"
        )
    if any(name is None for name in test.names):
        raise DataError("the update's test data must be labelled: drop its unlabelled images")
    class_names, warnings = extend_classes(
        known_classes, [*train.labelled_names(), *test.labelled_names()]
    )
    update = Update(
        number,
        train.images,
        _labels(train, class_names),
        test.images,
        _labels(test, class_names),
        label_fraction,
        class_names,
        overrides,
    )
    return update, warnings


def write_update(run_dir: Path, update: Update, about: Mapping[str, object]) -> None:
    """Write ``update`` into ``run_dir/updates/u<number>``, with ``about`` (its sources, the
    files left out) in its ``update.json``.

    The folder is written under a temporary name and renamed when complete, so a crash leaves
    no half-written update behind.
    """
    folder = run_dir / UPDATES_FOLDER
    folder.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=".staging-"))
    try:
        tensors = {
            "train_images": update.train_images,
            "train_labels": update.train_labels,
            "test_images": update.test_images,
            "test_labels": update.test_labels,
        }
        save_file({key: value.contiguous() for key, value in tensors.items()}, staging / _DATA)
        record = {
            "number": update.number,
            "label_fraction": update.label_fraction,
            "class_names": list(update.class_names),
            "overrides": list(update.overrides),
            "train_images": len(update.train_labels),
            "test_images": len(update.test_labels),
            **about,
        }
        (staging / _RECORD).write_text(json.dumps(record, indent=2) + "\n")
        staging.rename(folder / f"u{update.number:03d}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def read_updates(run_dir: Path) -> list[Update]:
    """The updates registered in ``run_dir``, in order (none for a run never updated)."""
    folder = run_dir / UPDATES_FOLDER
    if not folder.is_dir():
        return []
    updates = []
    for path in sorted(folder.glob("u[0-9][0-9][0-9]")):
        try:
            record = json.loads((path / _RECORD).read_text())
            tensors = load_file(path / _DATA)
        except (OSError, json.JSONDecodeError, RuntimeError) as error:
            raise DataError(f"cannot read the update {path} ({error})") from error
        updates.append(
            Update(
                record["number"],
                tensors["train_images"],
                tensors["train_labels"],
                tensors["test_images"],
                tensors["test_labels"],
                record["label_fraction"],
                tuple(record["class_names"]),
                tuple(record["overrides"]),
            )
        )
    return updates


@dataclass(frozen=True)
class ExtendedData:
    """A run's data with its updates appended.

    Attributes:
        data: the dataset's splits followed by each update's images (unlabelled training images
            carry label 0 there; ``label_known`` tells them apart).
        tasks: the scenario's tasks followed by one task per update.
        label_known: bool (N,) over the training split, False for an update's unlabelled image.
        class_counts: (T,) the classes the classifier covers while each task trains.
    """

    data: LabelledData
    tasks: list[Task]
    label_known: Tensor
    class_counts: list[int]


def extend_stream_data(
    data: LabelledData, tasks: list[Task], updates: list[Update], seed: int
) -> ExtendedData:
    """Append every update to ``data`` and ``tasks``: update k's images follow the earlier
    ones, so earlier indices (replay buffers, statistics) keep pointing at the same images."""
    label_known = torch.ones(len(data.train), dtype=torch.bool)
    counts = [data.num_classes] * len(tasks)
    if not updates:
        return ExtendedData(data, tasks, label_known, counts)
    train_images, train_labels, known = [data.train.images], [data.train.labels], [label_known]
    test_images, test_labels = [data.test.images], [data.test.labels]
    train_offset, test_offset = len(data.train), len(data.test)
    extended = list(tasks)
    for update in updates:
        if update.train_images.shape[1:] != data.train.images.shape[1:]:
            raise DataError(
                f"update {update.number} holds images of shape "
                f"{tuple(update.train_images.shape[1:])}, the run's are "
                f"{tuple(data.train.images.shape[1:])}"
            )
        labelled = update.train_labels >= 0
        rows = torch.nonzero(labelled, as_tuple=True)[0]
        generator = torch.Generator().manual_seed(seed + update.number)
        keep = torch.zeros_like(labelled)
        keep[rows[labelled_mask(len(rows), update.label_fraction, generator)]] = True
        count, test_count = len(update.train_labels), len(update.test_labels)
        extended.append(
            Task(
                len(extended),
                update.classes,
                torch.arange(train_offset, train_offset + count),
                torch.arange(test_offset, test_offset + test_count),
                keep,
            )
        )
        train_images.append(update.train_images)
        train_labels.append(update.train_labels.clamp_min(0))
        known.append(labelled)
        test_images.append(update.test_images)
        test_labels.append(update.test_labels)
        counts.append(len(update.class_names))
        train_offset += count
        test_offset += test_count
    merged = LabelledData(
        data.name,
        ImageSet(torch.cat(train_images), torch.cat(train_labels)),
        ImageSet(torch.cat(test_images), torch.cat(test_labels)),
        updates[-1].class_names,
    )
    return ExtendedData(merged, extended, torch.cat(known), counts)
