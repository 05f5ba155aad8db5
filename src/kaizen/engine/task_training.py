"""What trains one task: its images in order, the optimiser and schedule, the training step and
the loss watch, built from the run's config, the method and the learner of the task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch
from lightning.fabric import Fabric
from torch import Tensor, nn

from kaizen.config import RunConfig
from kaizen.data.replay import replayed_rows
from kaizen.data.scenario import Task, training_labels
from kaizen.data.stream import Stream
from kaizen.engine.loss_watch import LossWatch
from kaizen.engine.step import TrainStep
from kaizen.learner.learner import Learner
from kaizen.learner.optim import TaskSchedule, build_optimizer
from kaizen.methods.seam import Method, TaskClasses


@dataclass
class TaskTraining:
    """One task's training, ready to step.

    Attributes:
        indices: int64 (N,) training indices of the task's data (earlier tasks' too for
            cumulative methods), on the image store's index device.
        labels: int64 (N_train,) labels of every training image of the stream, -1 where
            unlabelled, on the device.
        batch_size: images drawn per step from ``indices`` (the parts add their rows).
        replayed: bool mask of the rows of a step's batch that the parts added.
    """

    indices: Tensor
    labels: Tensor
    batch_size: int
    steps_per_epoch: int
    epochs: int
    extra_rows: int
    replayed: Tensor | None
    optimizer: torch.optim.Optimizer
    schedule: TaskSchedule
    step: TrainStep
    watch: LossWatch

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs


def prepare_task(
    config: RunConfig,
    fabric: Fabric,
    stream: Stream,
    method: Method,
    learner: Learner,
    module: nn.Module,
    task: Task,
    classes: TaskClasses,
    saved_optimizer: dict[str, Any] | None,
    sampler: torch.Generator,
) -> TaskTraining:
    """The training of ``task`` with ``learner`` (wrapped by Fabric as ``module``); the
    optimiser continues from ``saved_optimizer`` when a checkpoint holds one, and the parts'
    transforms of the views draw from the run's batch ``sampler``."""
    seen = method.training_tasks(task, stream.tasks)
    indices = torch.cat([t.train_indices for t in seen]).to(stream.train_images.index_device)
    labels = fabric.to_device(training_labels(stream.data.train.labels, seen))
    batch_size = min(config.train.batch_size, len(indices))
    steps_per_epoch, epochs = len(indices) // batch_size, config.train.epochs
    optimizer = build_optimizer(learner, config.optim, batch_size, method.parameter_groups)
    if saved_optimizer is not None:
        optimizer.load_state_dict(saved_optimizer)
    optimizer = cast(torch.optim.Optimizer, fabric.setup_optimizers(optimizer))
    terms = method.terms(learner, method.teacher, classes)
    train_step = TrainStep(
        fabric,
        learner,
        module,
        method.teacher,
        terms,
        optimizer,
        stream.augment,
        config.train.channels_last,
        config.optim.clip_grad_norm,
        method.view_transform(sampler),
    )
    fix = "lower optim.lr"
    if config.train.precision != "32":
        fix += " or use train.precision=32"
    extra_rows = sum(part.rows_per_step() for part in method.parts)
    world = fabric.world_size
    return TaskTraining(
        indices,
        labels,
        batch_size,
        steps_per_epoch,
        epochs,
        extra_rows,
        replayed_rows(batch_size // world, extra_rows // world, fabric.device),
        optimizer,
        TaskSchedule(optimizer, config.optim, steps_per_epoch, epochs),
        train_step,
        LossWatch([term.name for term in terms], fabric.device, fix),
    )
