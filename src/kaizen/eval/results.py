"""The outcome of a run: accuracy matrix, metrics, per-task records and costs, written as files.

``results.json`` holds only what the config and seed determine (bit-identical on CPU for the same
config and seed, also across interruptions); wall times and memory go to ``costs.json``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kaizen.config import RunConfig, to_plain
from kaizen.eval.metrics import Metric, continual_metrics
from kaizen.storage.atomic import atomic_write_text


@dataclass(frozen=True)
class TaskRecord:
    """What one task did: its classes, its accuracy-matrix row, and how much it trained."""

    task: int
    classes: tuple[int, ...]
    accuracies: list[float]
    images_seen: int
    steps: int
    test_size: int
    negative_flip_rate: float | None = None
    probes: dict[str, list[float]] = field(default_factory=dict)
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)
    """What the method's parts report about the task (freezing: block ratios and depth)."""

    def to_json(self) -> dict[str, Any]:
        """The record as JSON-ready data, without ``parts`` when no part reported anything."""
        plain = asdict(self)
        if not self.parts:
            del plain["parts"]
        return plain


@dataclass(frozen=True)
class TaskCost:
    """What one task cost: wall time of the whole task, of training alone, and peak memory; and
    for one training step, its backward FLOPs and the peak of its live training tensors.

    ``train_seconds`` is the time charged to training: the training loop plus ``hook_seconds``,
    the time the method's parts spent at the task's start and end (a freezing part's
    correlation probe, a replay buffer's update, a classifier alignment). Records written
    before the hooks were timed lack ``hook_seconds`` and their ``train_seconds`` is the loop
    alone.
    """

    task: int
    wall_seconds: float
    train_seconds: float
    images_seen: int
    peak_memory_bytes: int
    memory_kind: str
    backward_flops_per_step: int
    step_peak_memory_bytes: int
    step_memory_kind: str
    hook_seconds: float = 0.0


@dataclass
class Result:
    """A finished (or partial) continual run."""

    config: RunConfig
    protocol: str
    probe_protocols: dict[str, str] = field(default_factory=dict)
    random_init: list[float] = field(default_factory=list)
    tasks: list[TaskRecord] = field(default_factory=list)
    costs: list[TaskCost] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    planned_tasks: int | None = None
    """The tasks to train: the scenario's and the run's updates (None: the scenario's)."""

    @property
    def accuracy_matrix(self) -> list[list[float]]:
        """T x T: row i is the accuracy on every task's test set after task i. A row written
        before an update existed is shorter: it lacks the update's tasks."""
        return [record.accuracies for record in self.tasks]

    @property
    def complete(self) -> bool:
        """Whether every task of the scenario (and every update) has been trained."""
        planned = self.planned_tasks or self.config.scenario.num_tasks
        return len(self.tasks) == planned

    def probe_matrix(self, name: str) -> list[list[float]]:
        """T x T accuracy matrix of probe ``name``."""
        return [record.probes[name] for record in self.tasks]

    @property
    def metrics(self) -> dict[str, Metric]:
        """Metrics over the tasks trained so far (the leading square block of each matrix).

        The classifier's metrics keep their names; each probe adds its final and average
        continual accuracy and its forgetting as ``<probe>_final_accuracy``,
        ``<probe>_average_continual_accuracy`` and ``<probe>_forgetting``. Forgetting is measured
        from the reference ``eval.forgetting`` names, which its protocol states.
        """
        trained = len(self.tasks)
        if trained == 0:
            return {}
        # forward transfer needs each task's accuracy before it was trained, which an update's
        # task, unknown until it arrived, does not have
        before_training = len(self.random_init) >= trained
        reference = self.config.eval.forgetting
        metrics = continual_metrics(
            _leading_block(self.accuracy_matrix),
            self.protocol,
            test_sizes=[record.test_size for record in self.tasks],
            random_init=self.random_init[:trained] if before_training else None,
            flip_rates=[record.negative_flip_rate for record in self.tasks],
            forgetting_reference=reference,
        )
        for name, protocol in self.probe_protocols.items():
            probe = continual_metrics(
                _leading_block(self.probe_matrix(name)),
                protocol,
                forgetting_reference=reference,
            )
            for metric in ("final_accuracy", "average_continual_accuracy", "forgetting"):
                metrics[f"{name}_{metric}"] = probe[metric]
        return metrics

    def to_json(self) -> dict[str, Any]:
        """Everything deterministic about the run, as JSON-ready data."""
        return {
            "config": to_plain(self.config),
            "complete": self.complete,
            "accuracy_matrix": {"protocol": self.protocol, "values": self.accuracy_matrix},
            "probes": {
                name: {"protocol": protocol, "values": self.probe_matrix(name)}
                for name, protocol in self.probe_protocols.items()
            },
            "random_init": {"protocol": self.protocol, "values": self.random_init},
            "metrics": {name: asdict(metric) for name, metric in self.metrics.items()},
            "tasks": [record.to_json() for record in self.tasks],
            "environment": self.environment,
        }


def _leading_block(matrix: list[list[float]]) -> list[list[float]]:
    """The first T columns of the T rows; a row without an update's column gets NaN there,
    above the diagonal, where only forward transfer (then left out) reads."""
    size = len(matrix)
    return [row[:size] + [math.nan] * (size - len(row[:size])) for row in matrix]


def _metrics_csv(result: Result) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    num_tasks = max((len(record.accuracies) for record in result.tasks), default=0)
    writer.writerow(
        [
            "task",
            "classes",
            *(f"acc_task_{j}" for j in range(num_tasks)),
            "acc_seen",
            "images_seen",
            "train_seconds",
        ]
    )
    for record, cost in zip(result.tasks, result.costs, strict=True):
        seen = record.accuracies[: record.task + 1]
        writer.writerow(
            [
                record.task,
                " ".join(map(str, record.classes)),
                *(f"{value:.4f}" for value in record.accuracies),
                f"{sum(seen) / len(seen):.4f}",
                record.images_seen,
                f"{cost.train_seconds:.2f}",
            ]
        )
    return buffer.getvalue()


def write_results(result: Result, out_dir: Path) -> None:
    """Write ``results.json``, ``costs.json`` and ``metrics.csv``, each atomically."""
    atomic_write_text(out_dir / "results.json", json.dumps(result.to_json(), indent=2) + "\n")
    costs = {"tasks": [asdict(cost) for cost in result.costs], "environment": result.environment}
    atomic_write_text(out_dir / "costs.json", json.dumps(costs, indent=2) + "\n")
    atomic_write_text(out_dir / "metrics.csv", _metrics_csv(result))
