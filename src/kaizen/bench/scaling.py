"""Training time per task over a long Kaizen run: it should stay flat as tasks accumulate.

Each task t >= 1 trains with a teacher and a replay buffer that grows with the classes seen; the
replay batch has a fixed size, so a task's cost should not depend on t. The run is a real
:class:`~kaizen.engine.trainer.ContinualTrainer` run on synthetic data with two classes per task.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

from rich.console import Console

from kaizen.bench.measure import torch_threads
from kaizen.config import RunConfig, build_config
from kaizen.engine.trainer import ContinualTrainer

CLASSES_PER_TASK = 2
_TEST_PER_CLASS = 2


def scaling_config(config: RunConfig, num_tasks: int, steps_per_task: int) -> RunConfig:
    """``config`` on a synthetic stream of ``num_tasks + 1`` tasks of two classes, one epoch
    of ``steps_per_task`` steps each; image shape from ``config.data.synthetic``.

    Representation probes are off: their cost grows with the data seen, and it is evaluation,
    not training (the classifier's evaluation on the small test split stays).
    """
    per_class = math.ceil(config.train.batch_size * steps_per_task / CLASSES_PER_TASK)
    overrides: dict[str, object] = {
        "data.name": "synthetic",
        "data.train_per_class": None,
        "data.test_per_class": None,
        "data.synthetic.num_classes": CLASSES_PER_TASK * (num_tasks + 1),
        "data.synthetic.train_per_class": per_class,
        "data.synthetic.test_per_class": _TEST_PER_CLASS,
        "scenario.kind": "class-incremental",
        "scenario.num_tasks": num_tasks + 1,
        "scenario.class_order": None,
        "scenario.label_fraction": 1.0,
        "train.epochs": 1,
        "train.progress": False,
        "eval.probes": [],
    }
    as_text = [f"{key}={json.dumps(value)}" for key, value in overrides.items()]
    return build_config(config.model_dump(), as_text)


def measure_task_scaling(
    config: RunConfig, num_tasks: int = 10, steps_per_task: int = 20
) -> list[float]:
    """Training seconds of tasks 1..``num_tasks`` of a run of ``config``'s method.

    Task 0 (no teacher, no replay) runs first and is left out. Evaluation and checkpoints are
    not part of a task's training time. See :func:`flatness` for the summary.
    """
    run_config = scaling_config(config, num_tasks, steps_per_task)
    with (
        torch_threads(config.train.num_threads),
        tempfile.TemporaryDirectory(prefix="kaizen-bench-") as folder,
    ):
        result = ContinualTrainer(run_config, Path(folder), Console(quiet=True)).run()
    return [cost.train_seconds for cost in result.costs[1:]]


def flatness(seconds: list[float]) -> float:
    """Longest over shortest time (1.0 = perfectly flat)."""
    return max(seconds) / min(seconds)


def linear_drift(seconds: list[float]) -> float:
    """Change from the first to the last task of a least-squares line through the times, as a
    share of their mean: a trend measure that one noisy task does not dominate (0.0 = flat)."""
    count = len(seconds)
    if count < 2:
        return 0.0
    mean_x, mean_y = (count - 1) / 2, sum(seconds) / count
    spread = sum((x - mean_x) ** 2 for x in range(count))
    slope = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(seconds)) / spread
    return slope * (count - 1) / mean_y
