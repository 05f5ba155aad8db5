"""Cutting a dataset into a sequence of tasks: class-incremental or data-incremental."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from kaizen.config import ScenarioConfig
from kaizen.data.imageset import LabelledData
from kaizen.errors import ConfigError


@dataclass(frozen=True)
class Task:
    """One task of the stream.

    Attributes:
        index: 0-based position in the stream.
        classes: the classes whose images the task holds.
        train_indices: int64 (N_t,) indices into the training split.
        test_indices: int64 (M_t,) indices into the test split: the task's own test set.
        labelled: bool (N_t,), True where the training image keeps its label; the others are
            seen with label -1 by the self-supervised and distillation terms only.
    """

    index: int
    classes: tuple[int, ...]
    train_indices: Tensor
    test_indices: Tensor
    labelled: Tensor

    @property
    def labelled_indices(self) -> Tensor:
        """int64 (L_t,) training indices whose labels are kept."""
        return self.train_indices[self.labelled]


def _permutation(
    num_classes: int, config: ScenarioConfig, seed: int, generator: torch.Generator
) -> Tensor:
    """The seeded order of the classes: ``scenario.class_permutation``'s generator."""
    if config.class_permutation == "numpy":
        return torch.from_numpy(np.random.RandomState(seed).permutation(num_classes))
    return torch.randperm(num_classes, generator=generator)


def _split_classes(order: Tensor, config: ScenarioConfig) -> list[Tensor]:
    """``order`` cut into ``num_tasks`` groups: of ``classes_per_task`` each but the last, or
    near-equal."""
    size = config.classes_per_task
    if size is None:
        return list(torch.tensor_split(order, config.num_tasks))
    tasks = -(-len(order) // size)
    if tasks != config.num_tasks:
        raise ConfigError(
            f"scenario.classes_per_task={size} cuts {len(order)} classes into {tasks} tasks but "
            f"scenario.num_tasks is {config.num_tasks}; set scenario.num_tasks={tasks}"
        )
    return list(torch.split(order, size))


def _class_order(
    data: LabelledData, config: ScenarioConfig, seed: int, generator: torch.Generator
) -> list[list[int]]:
    num_classes = data.num_classes
    if config.class_order is not None:
        seen: set[int] = set()
        for task_index, classes in enumerate(config.class_order):
            if not classes:
                raise ConfigError(f"scenario.class_order task {task_index} lists no classes")
            for label in classes:
                if not 0 <= label < num_classes:
                    raise ConfigError(
                        f"scenario.class_order names class {label} but {data.name} has classes "
                        f"0..{num_classes - 1}"
                    )
                if label in seen:
                    raise ConfigError(
                        f"scenario.class_order lists class {label} twice; each class belongs to "
                        "one task"
                    )
                seen.add(label)
        return [list(classes) for classes in config.class_order]
    if config.num_tasks > num_classes:
        raise ConfigError(
            f"scenario.num_tasks={config.num_tasks} exceeds the {num_classes} classes of "
            f"{data.name}; use at most {num_classes} class-incremental tasks"
        )
    chunks = _split_classes(_permutation(num_classes, config, seed, generator), config)
    return [chunk.tolist() for chunk in chunks]


def _indices_of(labels: Tensor, classes: list[int]) -> Tensor:
    return torch.nonzero(torch.isin(labels, torch.tensor(classes)), as_tuple=True)[0]


def labelled_mask(count: int, fraction: float, generator: torch.Generator) -> Tensor:
    """bool (count,): a seeded ``round(fraction * count)`` of the entries True."""
    keep = round(fraction * count)
    mask = torch.zeros(count, dtype=torch.bool)
    mask[torch.randperm(count, generator=generator)[:keep]] = True
    return mask


def _shards(count: int, num_tasks: int, generator: torch.Generator) -> list[Tensor]:
    return list(torch.tensor_split(torch.randperm(count, generator=generator), num_tasks))


def build_scenario(data: LabelledData, config: ScenarioConfig, seed: int) -> list[Task]:
    """The task sequence for ``data``, deterministic for ``seed``.

    Class-incremental: the classes (a seeded permutation of ``class_permutation``'s generator,
    split into ``num_tasks`` near-equal groups or groups of ``classes_per_task``, or
    ``class_order``) are divided among tasks; each task's train and test sets hold its
    classes' images. Data-incremental: the training and test splits are each cut into
    ``num_tasks`` seeded random equal shards over all classes.
    """
    generator = torch.Generator().manual_seed(seed)
    train_labels, test_labels = data.train.labels, data.test.labels
    tasks = []
    if config.kind == "class-incremental":
        for index, order in enumerate(_class_order(data, config, seed, generator)):
            train = _indices_of(train_labels, order)
            test = _indices_of(test_labels, order)
            tasks.append((index, tuple(sorted(order)), train, test))
    else:
        if config.num_tasks > len(train_labels):
            raise ConfigError(
                f"scenario.num_tasks={config.num_tasks} exceeds the {len(train_labels)} training "
                "images; use fewer tasks"
            )
        train_shards = _shards(len(train_labels), config.num_tasks, generator)
        test_shards = _shards(len(test_labels), config.num_tasks, generator)
        for index, (train, test) in enumerate(zip(train_shards, test_shards, strict=True)):
            train, test = train.sort().values, test.sort().values
            classes = tuple(sorted(set(train_labels[train].tolist())))
            tasks.append((index, classes, train, test))
    result = []
    for index, classes, train, test in tasks:
        if len(train) == 0:
            raise ConfigError(
                f"task {index} (classes {list(classes)}) has no training images; check "
                "scenario.class_order or data.train_per_class"
            )
        labelled = labelled_mask(len(train), config.label_fraction_of(index), generator)
        result.append(Task(index, classes, train, test, labelled))
    return result


def training_labels(all_labels: Tensor, tasks: list[Task]) -> Tensor:
    """int64 (N,) labels as the learner sees them: -1 where a task hides the label.

    ``all_labels`` holds the true labels of the whole training split; images of ``tasks`` that
    are not labelled get -1. Images outside ``tasks`` keep their label (they are never drawn).
    """
    labels = all_labels.clone()
    for task in tasks:
        labels[task.train_indices[~task.labelled]] = -1
    return labels
