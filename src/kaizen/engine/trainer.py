"""The continual training loop on Lightning Fabric: task after task, evaluate, checkpoint."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from lightning.fabric import Fabric
from rich.console import Console
from torch import Tensor

import kaizen
from kaizen.config import RunConfig
from kaizen.continual.learner import Learner, build_learner, ssl_settings
from kaizen.continual.strategies import STRATEGIES, Strategy, task_terms
from kaizen.continual.teacher import Teacher
from kaizen.data.augment import Normalize, TwoViewAugment, channel_stats
from kaizen.data.catalog import load_dataset
from kaizen.data.imageset import LabelledData
from kaizen.data.replay import ReplayBuffer
from kaizen.data.scenario import Task, build_scenario, training_labels
from kaizen.engine.optim import TaskSchedule, build_optimizer
from kaizen.engine.progress import TrainingProgress
from kaizen.engine.step import TrainStep
from kaizen.errors import KaizenError
from kaizen.eval.accuracy import CLASSIFIER_PROTOCOL, accuracy_row
from kaizen.results import Result, TaskRecord, write_results
from kaizen.ssl.base import momentum_tau

FABRIC_PRECISION = {"32": "32-true", "bf16-mixed": "bf16-mixed", "16-mixed": "16-mixed"}


@dataclass
class Stream:
    """The task sequence and the dataset's tensors on the training device.

    Attributes:
        data: the dataset as read (host memory).
        tasks: the scenario's tasks.
        train_images: uint8 (N, C, H, W) on the device; test_images: uint8 (M, C, H, W).
        test_labels: int64 (M,) on the device.
        normalize: uint8 -> normalised float, for evaluation.
        augment: uint8 (B, C, H, W) -> two normalised views (2B, C, H, W), for training.
    """

    data: LabelledData
    tasks: list[Task]
    train_images: Tensor
    test_images: Tensor
    test_labels: Tensor
    normalize: Normalize
    augment: TwoViewAugment


class NonFiniteLossError(KaizenError):
    """A loss term became NaN or infinite."""


class ContinualTrainer:
    """Runs one continual sequence as ``config`` says and writes its results to ``out_dir``."""

    def __init__(self, config: RunConfig, out_dir: Path, console: Console | None = None) -> None:
        self.config = config
        self.out_dir = out_dir
        self.console = console or Console(stderr=True)
        self.strategy: Strategy = STRATEGIES[config.strategy.name]
        train = config.train
        if train.num_threads is not None:
            torch.set_num_threads(train.num_threads)
        self.fabric = Fabric(
            accelerator=train.accelerator,
            devices=train.devices,
            precision=FABRIC_PRECISION[train.precision],  # type: ignore[arg-type]
        )
        self.fabric.seed_everything(config.seed, verbose=False)

    def run(self) -> Result:
        """Train every task, evaluating after each; returns the full result."""
        config, fabric = self.config, self.fabric
        data = load_dataset(config.data, config.seed)
        mean, std = channel_stats(data.train.images)
        normalize = fabric.to_device(Normalize(mean, std))
        stream = Stream(
            data,
            build_scenario(data, config.scenario, config.seed),
            fabric.to_device(data.train.images),
            fabric.to_device(data.test.images),
            fabric.to_device(data.test.labels),
            normalize,
            fabric.to_device(
                TwoViewAugment(config.augment, data.image_size, data.channels, normalize)
            ),
        )
        replay = ReplayBuffer(config.replay, config.seed)
        result = Result(config, CLASSIFIER_PROTOCOL, environment=self._environment())
        learner = build_learner(config, data.channels, data.num_classes)
        module = fabric.setup_module(learner)
        with TrainingProgress(self.console, config.train.progress) as progress:
            for task in stream.tasks:
                if task.index > 0 and self.strategy.fresh_model_each_task:
                    learner = build_learner(config, data.channels, data.num_classes)
                    module = fabric.setup_module(learner)
                teacher = None
                if task.index > 0 and self.strategy.needs_teacher:
                    teacher = fabric.to_device(Teacher.snapshot(learner))
                record = self._train_task(learner, module, teacher, task, stream, replay, progress)
                if self.strategy.replay:
                    labelled = task.labelled_indices
                    replay.add(labelled, data.train.labels[labelled])
                row = accuracy_row(
                    learner,
                    stream.test_images,
                    stream.test_labels,
                    stream.tasks,
                    normalize,
                    config.eval.batch_size,
                )
                result.tasks.append(
                    TaskRecord(
                        task.index,
                        task.classes,
                        row,
                        record.train_seconds,
                        record.images_seen,
                        record.steps,
                    )
                )
                self._save_checkpoint(learner, teacher, replay, result, task.index)
                write_results(result, self.out_dir)
        return result

    def _train_task(
        self,
        learner: Learner,
        module: torch.nn.Module,
        teacher: Teacher | None,
        task: Task,
        stream: Stream,
        replay: ReplayBuffer,
        progress: TrainingProgress,
    ) -> TaskRecord:
        """Train one task; returns its record without the accuracy row."""
        config, fabric = self.config, self.fabric
        seen = stream.tasks[: task.index + 1] if self.strategy.cumulative_data else [task]
        indices = fabric.to_device(torch.cat([t.train_indices for t in seen]))
        labels = fabric.to_device(training_labels(stream.data.train.labels, seen))
        batch_size = min(config.train.batch_size, len(indices))
        steps_per_epoch = len(indices) // batch_size
        epochs = config.train.epochs
        total_steps = steps_per_epoch * epochs

        optimizer = fabric.setup_optimizers(build_optimizer(learner, config.optim, batch_size))
        schedule = TaskSchedule(optimizer, config.optim, steps_per_epoch, epochs)
        terms = task_terms(self.strategy, config.strategy, learner, teacher is not None)
        train_step = TrainStep(fabric, learner, module, teacher, terms, optimizer, stream.augment)
        replay_indices = (
            fabric.to_device(replay.indices) if self.strategy.replay and len(replay) else None
        )
        settings = ssl_settings(config)

        progress.start_task(task.index, len(stream.tasks), total_steps)
        learner.train()
        started = time.perf_counter()
        window_start, window_images, images_seen = started, 0, 0
        step = 0
        for epoch in range(epochs):
            order = indices[torch.randperm(len(indices), device=indices.device)]
            for batch_start in range(0, steps_per_epoch * batch_size, batch_size):
                batch = order[batch_start : batch_start + batch_size]
                if replay_indices is not None:
                    draw = torch.randint(
                        len(replay_indices), (config.replay.batch_size,), device=batch.device
                    )
                    batch = torch.cat([batch, replay_indices[draw]])
                schedule.set(step)
                tau = momentum_tau(step, total_steps, settings.tau_base, settings.tau_final)
                values = train_step(stream.train_images[batch], labels[batch], tau)
                step += 1
                window_images += len(batch)
                if step % config.train.log_every == 0 or step == total_steps:
                    losses = self._read_losses(values, task.index, epoch, step)
                    now = time.perf_counter()
                    images_seen += window_images
                    rate = window_images / max(now - window_start, 1e-9)
                    window_start, window_images = now, 0
                    progress.update(step, epoch, epochs, losses, rate)
        images_seen += window_images
        return TaskRecord(
            task.index, task.classes, [], time.perf_counter() - started, images_seen, step
        )

    @staticmethod
    def _read_losses(
        values: dict[str, Tensor], task: int, epoch: int, step: int
    ) -> dict[str, float]:
        losses = {name: float(value) for name, value in values.items()}
        for name, value in losses.items():
            if not torch.isfinite(torch.tensor(value)):
                raise NonFiniteLossError(
                    f"loss term '{name}' is {value} at task {task}, epoch {epoch}, step {step}; "
                    "lower optim.lr or use train.precision=32 (the last task checkpoint is kept)"
                )
        return losses

    def _save_checkpoint(
        self,
        learner: Learner,
        teacher: Teacher | None,
        replay: ReplayBuffer,
        result: Result,
        task: int,
    ) -> None:
        state = {
            "learner": learner.state_dict(),
            "teacher": teacher.state_dict() if teacher is not None else {},
            "replay": replay.state_dict(),
            "task": task,
            "accuracy_matrix": result.accuracy_matrix,
        }
        self.fabric.save(self.out_dir / "checkpoints" / f"task-{task}.ckpt", state)

    def _environment(self) -> dict[str, str]:
        device = self.fabric.device
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
        return {
            "kaizen": kaizen.__version__,
            "torch": torch.__version__,
            "device": f"{device.type}: {name or platform.machine()}",
            "precision": self.config.train.precision,
            "threads": str(torch.get_num_threads()),
        }
