"""The conventional pipeline for the same model and losses, as the baseline of the benchmark.

Per sample, in Python, in data-loader workers: PIL / numpy augmentation of two views, normalised,
collated into batches; a second loader supplies the replay batch. The model stays in channels-first
format and trains in a plain loop under ``torch.autocast`` (fp16 with a gradient scaler on CUDA;
bf16 on a CPU, where fp16 autocast runs convolutions many times slower than bf16).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageFilter, ImageOps
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, RandomSampler

from kaizen.bench.measure import (
    PeakMemory,
    children_peak_rss_megabytes,
    input_record,
    step_record,
    time_steps,
    torch_threads,
)
from kaizen.bench.throughput import (
    BenchData,
    bench_data,
    bench_device,
    images_per_step,
    replays,
)
from kaizen.config import AugmentConfig, RunConfig
from kaizen.data.augment import channel_stats
from kaizen.learner.learner import build_learner
from kaizen.learner.optim import TaskSchedule, build_optimizer
from kaizen.learner.teacher import Teacher
from kaizen.learner.terms import StepTensors, total_loss
from kaizen.methods.build import build_method
from kaizen.methods.seam import TaskClasses

_CROP_RATIO = (3 / 4, 4 / 3)
_CROP_ATTEMPTS = 10
_BLUR_SIGMA = (0.1, 2.0)
_SOLARIZE_THRESHOLD = 128


def random_resized_crop(
    image: Image.Image, size: tuple[int, int], scale: tuple[float, float]
) -> Image.Image:
    """A random crop of area share in ``scale`` and aspect ratio in [3/4, 4/3], resized (bilinear)
    to ``size`` (H, W); the whole image when no candidate fits."""
    width, height = image.size
    area = width * height
    log_ratio = (math.log(_CROP_RATIO[0]), math.log(_CROP_RATIO[1]))
    box = (0, 0, width, height)
    for _ in range(_CROP_ATTEMPTS):
        target = area * random.uniform(*scale)
        ratio = math.exp(random.uniform(*log_ratio))
        crop_w = round(math.sqrt(target * ratio))
        crop_h = round(math.sqrt(target / ratio))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            left = random.randint(0, width - crop_w)
            top = random.randint(0, height - crop_h)
            box = (left, top, left + crop_w, top + crop_h)
            break
    if box == (0, 0, width, height) and image.size == (size[1], size[0]):
        return image
    return image.resize((size[1], size[0]), Image.Resampling.BILINEAR, box=box)


def shift_hue(image: Image.Image, shift: float) -> Image.Image:
    """Rotate the hue of an RGB image by ``shift`` of a full turn, in HSV space."""
    hsv = np.array(image.convert("HSV"))
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + round(shift * 255)) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


def _factor(strength: float) -> float:
    return random.uniform(max(0.0, 1.0 - strength), 1.0 + strength)


def color_jitter(image: Image.Image, config: AugmentConfig) -> Image.Image:
    """Brightness, contrast, saturation and hue changes in a random order (saturation and hue on
    RGB images only)."""
    steps: list[Callable[[Image.Image], Image.Image]] = [
        lambda im: ImageEnhance.Brightness(im).enhance(_factor(config.brightness)),
        lambda im: ImageEnhance.Contrast(im).enhance(_factor(config.contrast)),
    ]
    if image.mode == "RGB":
        steps += [
            lambda im: ImageEnhance.Color(im).enhance(_factor(config.saturation)),
            lambda im: shift_hue(im, random.uniform(-config.hue, config.hue)),
        ]
    random.shuffle(steps)
    for step in steps:
        image = step(image)
    return image


class ViewTransform:
    """One augmented view of a PIL image as a normalised float32 tensor (C, H, W).

    The same distribution as one view of :class:`~kaizen.data.augment.ViewAugment`: random
    resized crop, colour jitter, grayscale, blur, solarisation, horizontal flip, in that order.
    """

    def __init__(
        self,
        config: AugmentConfig,
        size: tuple[int, int],
        solarize_prob: float,
        blur_prob: float,
        mean: np.ndarray,
        std: np.ndarray,
    ) -> None:
        self.config = config
        self.size = size
        self.solarize_prob = solarize_prob
        self.blur_prob = blur_prob
        self.mean = mean
        self.std = std

    def __call__(self, image: Image.Image) -> Tensor:
        config = self.config
        image = random_resized_crop(image, self.size, config.crop_scale)
        if random.random() < config.jitter_prob:
            image = color_jitter(image, config)
        if image.mode == "RGB" and random.random() < config.grayscale_prob:
            image = image.convert("L").convert("RGB")
        if random.random() < self.blur_prob:
            image = image.filter(ImageFilter.GaussianBlur(random.uniform(*_BLUR_SIGMA)))
        if random.random() < self.solarize_prob:
            image = ImageOps.solarize(image, _SOLARIZE_THRESHOLD)
        if random.random() < config.hflip_prob:
            image = ImageOps.mirror(image)
        pixels = np.asarray(image, dtype=np.float32).reshape(*self.size, -1) / 255.0
        normalised = (pixels - self.mean) / self.std
        return torch.from_numpy(np.ascontiguousarray(normalised.transpose(2, 0, 1)))


class TwoViewDataset(Dataset[tuple[Tensor, Tensor, int]]):
    """Two augmented, normalised views and the label of each selected image.

    Args:
        images: uint8 (N, C, H, W) images, C in {1, 3}.
        labels: int64 (N,) labels.
        indices: the images this dataset serves, in order.
        config: the augmentation settings (``solarize_prob`` and ``blur_prob`` per view).
        mean: per-channel mean in [0, 1] units; std: per-channel std.

    Items: (view 1, view 2, label), each view float32 (C, H, W).
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        indices: Tensor,
        config: AugmentConfig,
        mean: Tensor,
        std: Tensor,
    ) -> None:
        pixels = np.ascontiguousarray(images.permute(0, 2, 3, 1).numpy())
        self.images = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
        self.labels = labels.tolist()
        self.indices = indices.tolist()
        size = (images.shape[2], images.shape[3])
        self.views = [
            ViewTransform(config, size, solarize, blur, mean.numpy(), std.numpy())
            for solarize, blur in zip(config.solarize_prob, config.blur_prob, strict=True)
        ]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> tuple[Tensor, Tensor, int]:
        index = self.indices[item]
        image = Image.fromarray(self.images[index])
        first, second = (view(image) for view in self.views)
        return first, second, self.labels[index]


def reference_autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The conventional autocast dtype: None (fp32) for precision "32"; else fp16 on CUDA and
    bf16 on a CPU (fp16 autocast on a CPU is many times slower than bf16)."""
    if precision == "32":
        return None
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def _loader(
    dataset: TwoViewDataset,
    batch_size: int,
    batches: int,
    num_workers: int,
    device: torch.device,
    replacement: bool,
) -> DataLoader:
    sampler = RandomSampler(dataset, replacement=replacement, num_samples=batches * batch_size)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
    )


def _batches(
    config: RunConfig, data: BenchData, count: int, num_workers: int, device: torch.device
) -> Generator[tuple[Tensor, Tensor], None, None]:
    """(views (2M, C, H, W), labels (2M,)) on ``device``: current and replay rows, view 1 first."""
    mean, std = channel_stats(data.images)

    def dataset(indices: Tensor) -> TwoViewDataset:
        return TwoViewDataset(data.images, data.labels, indices, config.augment, mean, std)

    current = _loader(
        dataset(data.current), config.train.batch_size, count, num_workers, device, False
    )
    sources = [iter(current)]
    if replays(config, data):
        replay = _loader(
            dataset(data.replay), config.replay.batch_size, count, num_workers, device, True
        )
        sources.append(iter(replay))
    for parts in zip(*sources, strict=True):
        first, second, labels = (
            torch.cat([part[field].to(device, non_blocking=True) for part in parts])
            for field in range(3)
        )
        yield torch.cat([first, second]), labels.repeat(2)


def _run_reference(
    config: RunConfig,
    data: BenchData,
    device: torch.device,
    dtype: torch.dtype | None,
    warmup: int,
    steps: int,
    num_workers: int,
) -> float:
    """Seconds of the timed steps of the conventional loop."""
    method = build_method(config)
    learner = build_learner(config, data.channels, data.num_classes).to(device)
    teacher = Teacher.snapshot(learner).to(device) if method.has_part("teacher") else None
    optimizer = build_optimizer(learner, config.optim, config.train.batch_size)
    schedule = TaskSchedule(optimizer, config.optim, warmup + steps, 1)
    terms = method.terms(learner, teacher, TaskClasses(range(data.num_classes // 2)))
    with_distill = any(term.name == "feature_distill" for term in terms)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    batches = _batches(config, data, warmup + steps, num_workers, device)
    learner.train()

    def step(index: int) -> None:
        views, labels = next(batches)
        schedule.set(index)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            outputs = learner(views, with_distill=with_distill)
            teacher_outputs = teacher(views) if teacher is not None else None
            loss, _ = total_loss(terms, StepTensors(views, labels, outputs, teacher_outputs))
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if learner.ssl.uses_momentum:
            tau = learner.ssl.momentum_rate(index, warmup + steps)
            learner.ssl.momentum_update(learner.backbone, tau)

    seconds = time_steps(step, warmup, steps, device)
    batches.close()
    return seconds


def measure_reference_step(
    config: RunConfig, *, warmup: int, steps: int, num_workers: int = 2
) -> dict[str, Any]:
    """Images/s, s/step and peak memory of the conventional pipeline on the benchmark's stream.

    Same model, teacher, loss terms, optimiser and schedule as the Kaizen step; data through
    :class:`TwoViewDataset` and two DataLoaders (current batch and replay batch) with
    ``num_workers`` workers each; autocast as :func:`reference_autocast_dtype` says; the model in
    channels-first format. Returns the keys of
    :func:`~kaizen.bench.throughput.measure_kaizen_step`; ``worker_peak_memory_mb`` is the largest
    worker's peak RSS (0 without workers).
    """
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    device = bench_device(config)
    data = bench_data(config)
    dtype = reference_autocast_dtype(config.train.precision, device)
    with torch_threads(config.train.num_threads), PeakMemory(device) as memory:
        seconds = _run_reference(config, data, device, dtype, warmup, steps, num_workers)
    return step_record(
        images_per_step=images_per_step(config, data),
        steps=steps,
        seconds=seconds,
        memory=memory,
        workers_megabytes=children_peak_rss_megabytes() if num_workers else 0.0,
        autocast_dtype=str(dtype or torch.float32).removeprefix("torch."),
        channels_last=False,
        device=device,
    )


def measure_reference_input(
    config: RunConfig, *, warmup: int, steps: int, num_workers: int = 2
) -> dict[str, Any]:
    """Images/s of the conventional input pipeline alone: the two DataLoaders of
    :func:`measure_reference_step` with ``num_workers`` workers each, batches moved to the
    device, no model. With the model idle the workers have the machine to themselves, so this is
    the fastest the reference's input can be."""
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    device = bench_device(config)
    data = bench_data(config)
    with torch_threads(config.train.num_threads):
        batches = _batches(config, data, warmup + steps, num_workers, device)
        seconds = time_steps(lambda _: next(batches), warmup, steps, device)
        batches.close()
    return input_record(
        images_per_step(config, data), steps, seconds, device=str(device), workers=num_workers
    )
