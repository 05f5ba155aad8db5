"""Images per second of Kaizen's training step, built exactly as the trainer builds a task t >= 1.

The stream is synthetic: uint8 images of the configured shape (``data.synthetic``), split in two
halves of classes as at task 1 of a two-task stream. The first half fills a replay buffer (as the
trainer fills it after task 0); the second half is the current task. The helpers that both
pipelines share (the data, the device, the clock, the memory probe, the result record) live here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import torch
from lightning.fabric import Fabric
from torch import Tensor

from kaizen.bench.measure import PeakMemory, input_record, step_record, time_steps, torch_threads
from kaizen.config import RunConfig
from kaizen.data.augment import augment_for
from kaizen.data.formats.synthetic import make_synthetic
from kaizen.data.replay import ReplayBuffer, replayed_rows
from kaizen.data.store import ImageStore
from kaizen.engine.fabric_setup import FABRIC_PRECISION
from kaizen.engine.hardware import check_hardware, resolved_accelerator
from kaizen.engine.step import TrainStep, prepare_learner
from kaizen.errors import ConfigError
from kaizen.learner.learner import build_learner
from kaizen.learner.optim import TaskSchedule, build_optimizer
from kaizen.learner.teacher import Teacher
from kaizen.methods.build import build_method
from kaizen.methods.seam import TaskClasses

_AUTOCAST_DTYPES = {"32": "float32", "bf16-mixed": "bfloat16", "16-mixed": "float16"}


@dataclass(frozen=True)
class BenchData:
    """The benchmark's stream, in host memory.

    Attributes:
        images: uint8 (N, C, H, W) training images.
        labels: int64 (N,) their labels, all labelled.
        current: int64 indices of the current task's images (the second half of the classes).
        replay: int64 indices held by the replay buffer (drawn from the first half of the classes).
        num_classes: classes of the whole stream (the classifier's output size).
    """

    images: Tensor
    labels: Tensor
    current: Tensor
    replay: Tensor
    num_classes: int

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> tuple[int, int]:
        return self.images.shape[2], self.images.shape[3]


def bench_data(config: RunConfig) -> BenchData:
    """Synthetic images of the shape in ``config.data.synthetic``, split as at task 1.

    Raises ConfigError when the current task holds fewer images than one batch.
    """
    shape = config.data.synthetic
    train = make_synthetic(
        num_classes=shape.num_classes,
        train_per_class=shape.train_per_class,
        test_per_class=1,
        image_size=shape.image_size,
        channels=shape.channels,
        seed=config.seed,
    ).train
    earlier = train.labels < shape.num_classes // 2
    current = torch.nonzero(~earlier).flatten()
    if len(current) < config.train.batch_size:
        raise ConfigError(
            f"the benchmark's current task holds {len(current)} images, fewer than "
            f"train.batch_size={config.train.batch_size}; raise data.synthetic.train_per_class"
        )
    replay = ReplayBuffer(config.replay, config.seed)
    replay.add(torch.nonzero(earlier).flatten(), train.labels[earlier])
    return BenchData(train.images, train.labels, current, replay.indices, shape.num_classes)


def replays(config: RunConfig, data: BenchData) -> bool:
    """Whether each step appends a replay batch: the strategy replays and the buffer is not
    empty."""
    return build_method(config).has_part("replay") and len(data.replay) > 0


def images_per_step(config: RunConfig, data: BenchData) -> int:
    """Current plus replay images of one step."""
    return config.train.batch_size + (config.replay.batch_size if replays(config, data) else 0)


def bench_device(config: RunConfig) -> torch.device:
    """The device ``config.train.accelerator`` names (``auto``: CUDA when there is one); settings
    this machine cannot run are refused (:func:`check_hardware`)."""
    check_hardware(config.train)
    return torch.device(resolved_accelerator(config.train))


def shuffled_batches(indices: Tensor, batch_size: int, count: int) -> Tensor:
    """``count`` batches (count, batch_size) of ``indices``, one fresh permutation per epoch."""
    epochs = math.ceil(count * batch_size / len(indices))
    orders = [indices[torch.randperm(len(indices), device=indices.device)] for _ in range(epochs)]
    per_epoch = len(indices) // batch_size * batch_size
    return torch.cat([order[:per_epoch] for order in orders])[: count * batch_size].reshape(
        count, batch_size
    )


class DeviceInput:
    """Kaizen's input pipeline on the benchmark's stream, as the trainer runs it at a task t >= 1.

    The images live in an :class:`~kaizen.data.store.ImageStore` (on the device as one tensor
    when they fit); index batches of the current task are drawn where the images are, with a full
    replay batch appended where the strategy replays; :attr:`augment` makes the two views.

    Args:
        config: the run configuration.
        data: the benchmark's stream.
        device: the training device.
        total_steps: batches to prepare.
    """

    def __init__(
        self, config: RunConfig, data: BenchData, device: torch.device, total_steps: int
    ) -> None:
        self.store = ImageStore(data.images, device)
        self.labels = data.labels.to(device)
        self.augment = augment_for(config.augment, data.images).to(device)
        batch_size = config.train.batch_size
        self.replay = data.replay.to(self.store.index_device) if replays(config, data) else None
        self.replay_batch_size = config.replay.batch_size
        self.batches = shuffled_batches(
            data.current.to(self.store.index_device), batch_size, total_steps
        )
        replay_rows = self.replay_batch_size if self.replay is not None else 0
        self.replayed = replayed_rows(batch_size, replay_rows, device)
        """(B,) bool: the replayed rows of every batch, or None when nothing is replayed."""

    def batch(self, index: int) -> tuple[Tensor, Tensor]:
        """Step ``index``'s uint8 images (M, C, H, W) on the device and their labels (M,)."""
        batch = self.batches[index]
        if self.replay is not None:
            draw = torch.randint(len(self.replay), (self.replay_batch_size,), device=batch.device)
            batch = torch.cat([batch, self.replay[draw]])
        return self.store.gather(batch), self.labels[batch.to(self.labels.device)]


def seeded_fabric(config: RunConfig) -> Fabric:
    """One-device Fabric on the bench device with ``train.precision``, RNGs seeded."""
    fabric = Fabric(
        accelerator=str(bench_device(config).type),
        devices=1,
        precision=FABRIC_PRECISION[config.train.precision],  # type: ignore[arg-type]
    )
    fabric.seed_everything(config.seed, verbose=False)
    return fabric


def build_kaizen_step(
    fabric: Fabric, config: RunConfig, data: BenchData, total_steps: int
) -> Callable[[int], None]:
    """The trainer's objects for task 1, and a function running its step ``i``."""
    method = build_method(config)
    inputs = DeviceInput(config, data, fabric.device, total_steps)
    learner = prepare_learner(build_learner(config, data.channels, data.num_classes), config.train)
    module = fabric.setup_module(learner)
    teacher = (
        cast(Teacher, fabric.to_device(Teacher.snapshot(learner)))
        if method.has_part("teacher")
        else None
    )
    # Fabric's wrapper takes on the class of the optimiser it wraps.
    optimizer = cast(
        torch.optim.Optimizer,
        fabric.setup_optimizers(build_optimizer(learner, config.optim, config.train.batch_size)),
    )
    schedule = TaskSchedule(optimizer, config.optim, total_steps, 1)
    terms = method.terms(learner, teacher, TaskClasses(range(data.num_classes // 2)))
    train_step = TrainStep(
        fabric,
        learner,
        module,
        teacher,
        terms,
        optimizer,
        inputs.augment,
        config.train.channels_last,
        config.optim.clip_grad_norm,
    )
    learner.train()

    def step(index: int) -> None:
        schedule.set(index)
        tau = learner.ssl.momentum_rate(index, total_steps)
        train_step(*inputs.batch(index), tau, inputs.replayed)

    return step


def measure_kaizen_input(config: RunConfig, *, warmup: int, steps: int) -> dict[str, Any]:
    """Images/s of Kaizen's input pipeline alone (:class:`DeviceInput`: gather and two augmented
    views on the device, no model), the share of a step the model does not account for."""
    device = bench_device(config)
    torch.manual_seed(config.seed)
    data = bench_data(config)
    with torch_threads(config.train.num_threads), torch.no_grad():
        inputs = DeviceInput(config, data, device, warmup + steps)
        seconds = time_steps(
            lambda index: inputs.augment(inputs.batch(index)[0]), warmup, steps, device
        )
    return input_record(images_per_step(config, data), steps, seconds, device=str(device))


def measure_kaizen_step(
    config: RunConfig, *, warmup: int, steps: int, channels_last: bool | None = None
) -> dict[str, Any]:
    """Images/s, s/step and peak memory of the trainer's step at a task t >= 1.

    Everything is built as :class:`~kaizen.engine.trainer.ContinualTrainer` builds it (Fabric
    with ``train.precision``, the learner, a teacher snapshot, the task's terms and optimiser,
    batched augmentation on the device, :class:`~kaizen.engine.step.TrainStep`); the images live
    in an :class:`~kaizen.data.store.ImageStore` (on the device as one tensor when they fit) and
    index batches are drawn where the images are, with a full replay batch appended to every
    batch. Images/s counts current and replay images.

    Args:
        config: the run configuration; ``data.synthetic`` gives the image shape.
        warmup: untimed steps first.
        steps: timed steps.
        channels_last: channels-last learner, teacher and views; None: ``train.channels_last``.
    """
    fabric = seeded_fabric(config)
    data = bench_data(config)
    if channels_last is not None:
        train = config.train.model_copy(update={"channels_last": channels_last})
        config = config.model_copy(update={"train": train})
    with torch_threads(config.train.num_threads), PeakMemory(fabric.device) as memory:
        step = build_kaizen_step(fabric, config, data, warmup + steps)
        seconds = time_steps(step, warmup, steps, fabric.device)
    return step_record(
        images_per_step=images_per_step(config, data),
        steps=steps,
        seconds=seconds,
        memory=memory,
        workers_megabytes=0.0,
        autocast_dtype=_AUTOCAST_DTYPES[config.train.precision],
        channels_last=config.train.channels_last,
        device=fabric.device,
    )
