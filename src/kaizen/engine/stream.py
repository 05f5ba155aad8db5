"""The data side of a run: dataset, tasks, and their tensors on the training device."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from lightning.fabric import Fabric
from torch import Tensor

from kaizen.config import RunConfig
from kaizen.data.augment import Normalize, ViewAugment, augment_for
from kaizen.data.catalog import load_dataset
from kaizen.data.imageset import LabelledData
from kaizen.data.scenario import Task, build_scenario
from kaizen.data.store import ImageStore
from kaizen.errors import DataError
from kaizen.ssl.registry import SSL_METHODS


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
    """

    data: LabelledData
    tasks: list[Task]
    train_images: ImageStore
    test_images: Tensor
    test_labels: Tensor
    normalize: Normalize
    augment: ViewAugment
    warnings: list[str]


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


def load_stream(config: RunConfig, fabric: Fabric) -> Stream:
    """Read the data, cut it into tasks, and move it to ``fabric``'s device."""
    data = load_dataset(config.data, config.seed)
    tasks = build_scenario(data, config.scenario, config.seed)
    warnings = _check_tasks(data, tasks)
    views = SSL_METHODS[config.ssl.method].views
    augment = fabric.to_device(
        augment_for(config.augment, data.train.images, config.model.image_size, views)
    )
    return Stream(
        data,
        tasks,
        ImageStore(data.train.images, fabric.device),
        fabric.to_device(data.test.images),
        fabric.to_device(data.test.labels),
        augment.normalize,
        augment,
        warnings,
    )
