"""The data side of a run: dataset, tasks, and their tensors on the training device."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch
from lightning.fabric import Fabric
from torch import Tensor

from kaizen.config import RunConfig
from kaizen.data.augment import Normalize, ViewAugment, augment_for
from kaizen.data.catalog import load_dataset
from kaizen.data.domains import domain_tasks, transformed_domains
from kaizen.data.formats import dataset_format
from kaizen.data.imageset import LabelledData
from kaizen.data.scenario import Task, build_scenario
from kaizen.data.store import ImageStore
from kaizen.data.updates import Update, extend_stream_data
from kaizen.errors import DataError


@dataclass
class Stream:
    """The task sequence and the dataset's tensors on the training device.

    Attributes:
        data: the dataset as read (host memory).
        tasks: the scenario's tasks.
        train_images: the training split's uint8 (N, C, H, W) images, on the device if they fit.
        test_images: uint8 (M, C, H, W) on the device.
        test_labels: int64 (M,) on the device.
        normalize: uint8 -> normalised float, for evaluation.
        augment: uint8 (B, C, H, W) -> V normalised views (V B, C, H, W), for training (two
            for the SSL methods, one without them).
        warnings: one-line notes about the data that the run handles and logs.
        scenario_tasks: how many of ``tasks`` the scenario cut; the rest are updates.
        label_known: bool (N,) over the training split: False for an update's unlabelled image,
            whose stored label means nothing (the probes leave it out).
        class_counts: (T,) how many classes the classifier covers while each task trains: the
            dataset's for the scenario's tasks, more once an update brings new classes.
    """

    data: LabelledData
    tasks: list[Task]
    train_images: ImageStore
    test_images: Tensor
    test_labels: Tensor
    normalize: Normalize
    augment: ViewAugment
    warnings: list[str]
    label_known: Tensor
    class_counts: list[int]
    scenario_tasks: int

    def classes_at(self, task_index: int) -> int:
        """The classifier's classes while task ``task_index`` trains (task 0 before the first)."""
        return self.class_counts[max(task_index, 0)]

    def tasks_known_at(self, task_index: int) -> list[Task]:
        """The tasks known while ``task_index`` trains: the scenario's, and the updates so far."""
        return self.tasks[: max(self.scenario_tasks, task_index + 1)]

    def learner_grows_at(self, task_index: int) -> bool:
        """Whether task ``task_index`` (an update) is the first to know some classes or tasks."""
        return task_index >= self.scenario_tasks


def _check_tasks(data: LabelledData, tasks: list[Task]) -> list[str]:
    """Refuse a task without test images; note classes without training or test images."""
    warnings = []
    present = {
        "training": set(torch.unique(data.train.labels).tolist()),
        "test": set(torch.unique(data.test.labels).tolist()),
    }
    for task in tasks:
        if len(task.test_indices) == 0:
            raise DataError(
                f"task {task.index} (classes {list(task.classes)}) has no test images; add test "
                "images for its classes or raise data.test_per_class"
            )
        for split, labels in present.items():
            missing = [label for label in task.classes if label not in labels]
            if missing:
                warnings.append(
                    f"task {task.index}: classes {missing} have no {split} images; the task "
                    f"{'trains' if split == 'training' else 'is measured'} on its other classes"
                )
    return warnings


Scenario = tuple[LabelledData, list[Task]]


def load_scenario(config: RunConfig) -> Scenario:
    """The dataset (every domain's images, for a domain-incremental stream) and its tasks."""
    scenario, seed = config.scenario, config.seed
    if scenario.kind != "domain-incremental":
        data = load_dataset(config.data, seed)
        return data, build_scenario(data, scenario, seed)
    read_domains = dataset_format(config.data.name).read_domains
    if read_domains is not None:
        domains = read_domains(config.data, scenario, seed)
    else:
        domains = transformed_domains(load_dataset(config.data, seed), scenario, seed)
    return domains.data, domain_tasks(domains, scenario, seed)


def load_stream(
    config: RunConfig,
    fabric: Fabric,
    views: int,
    updates: Sequence[Update] = (),
    scenario: Scenario | None = None,
) -> Stream:
    """Read the data (unless ``scenario`` holds it already), cut it into tasks, append the run's
    ``updates`` (one task each), and move it to ``fabric``'s device; the augmentation makes
    ``views`` views of each training image. The normalisation's
    statistics are the dataset's, before any update, so that a model keeps its preprocessing
    over its life."""
    base, tasks = scenario if scenario is not None else load_scenario(config)
    augment = cast(
        ViewAugment,
        fabric.to_device(
            augment_for(
                config.augment,
                base.train.images,
                config.model.image_size,
                views,
                _given_statistics(config),
            )
        ),
    )
    extended = extend_stream_data(base, tasks, list(updates), config.seed)
    data = extended.data
    warnings = _check_tasks(data, extended.tasks)
    return Stream(
        data,
        extended.tasks,
        ImageStore(data.train.images, fabric.device),
        fabric.to_device(data.test.images),
        fabric.to_device(data.test.labels),
        augment.normalize,
        augment,
        warnings,
        extended.label_known,
        extended.class_counts,
        len(tasks),
    )


def _given_statistics(config: RunConfig) -> tuple[Sequence[float], Sequence[float]] | None:
    """The normalisation's (mean, std) the config gives, or None: measure the data's."""
    mean, std = config.data.normalize_mean, config.data.normalize_std
    return None if mean is None or std is None else (mean, std)
