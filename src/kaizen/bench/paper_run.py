"""The paper-scale split CIFAR-100 run, extrapolated from a measured step and evaluation.

Kaizen's setting (Tang et al., WACV 2024): 5 tasks of 20 classes, 500 epochs per task over the
task's 10,000 training images, batch 256 + 32 replay. Training time is the measured seconds per
step times the run's steps; evaluation after each task is one forward pass over the 10,000 test
images (classifier) and, for the probes, over the training images seen so far and the test set,
at the measured evaluation rate. The probes' own fitting on stored features is not included.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from kaizen.bench.measure import time_steps, torch_threads
from kaizen.bench.throughput import seeded_fabric
from kaizen.config import RunConfig
from kaizen.engine.fabric_setup import FABRIC_PRECISION
from kaizen.engine.step import prepare_learner
from kaizen.learner.learner import build_learner


@dataclass(frozen=True)
class PaperRun:
    """The shape of the run that is extrapolated."""

    tasks: int = 5
    epochs_per_task: int = 500
    train_images_per_task: int = 10_000
    test_images: int = 10_000
    batch_size: int = 256

    @property
    def steps(self) -> int:
        """Optimiser steps of the whole run (full batches only, as the trainer runs them)."""
        return self.tasks * self.epochs_per_task * (self.train_images_per_task // self.batch_size)

    @property
    def evaluated_images(self) -> int:
        """Images passed forward by the evaluations after every task."""
        probes = sum(
            (task + 1) * self.train_images_per_task + self.test_images for task in range(self.tasks)
        )
        return self.tasks * self.test_images + probes


def measure_evaluation(config: RunConfig, *, warmup: int, steps: int) -> dict[str, Any]:
    """Images/s of the evaluation forward (backbone and classifier, eval mode, no gradient,
    ``train.precision`` autocast, ``train.channels_last``) on batches of ``eval.batch_size``."""
    fabric = seeded_fabric(config)  # the trainer's precision and autocast
    device = fabric.device
    shape = config.data.synthetic
    batch = config.eval.batch_size
    with torch_threads(config.train.num_threads), torch.no_grad():
        learner = build_learner(config, shape.channels, shape.num_classes)
        learner = prepare_learner(learner, config.train).to(device).eval()
        images = torch.randn(
            batch, shape.channels, shape.image_size, shape.image_size, device=device
        )
        if config.train.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)

        def forward(_: int) -> None:
            with fabric.autocast():
                learner.classify(images)

        seconds = time_steps(forward, warmup, steps, device)
    return {
        "images_per_second": batch * steps / seconds,
        "batch_size": batch,
        "steps": steps,
        "precision": FABRIC_PRECISION[config.train.precision],
    }


def extrapolate(
    seconds_per_step: float, evaluation_images_per_second: float, run: PaperRun | None = None
) -> dict[str, Any]:
    """The paper-scale run's time from a measured step and evaluation rate."""
    run = run or PaperRun()
    train_seconds = run.steps * seconds_per_step
    evaluation_seconds = run.evaluated_images / evaluation_images_per_second
    return {
        "run": asdict(run),
        "steps": run.steps,
        "evaluated_images": run.evaluated_images,
        "train_seconds": train_seconds,
        "evaluation_seconds": evaluation_seconds,
        "total_minutes": (train_seconds + evaluation_seconds) / 60.0,
        "target_minutes": 45.0,
    }
