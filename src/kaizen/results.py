"""The outcome of a run: accuracy matrix, metrics and per-task records, written as files."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kaizen.config import RunConfig, to_plain
from kaizen.eval.metrics import Metric, continual_metrics


@dataclass(frozen=True)
class TaskRecord:
    """What one task did: its classes, its accuracy-matrix row, and its cost."""

    task: int
    classes: tuple[int, ...]
    accuracies: list[float]
    train_seconds: float
    images_seen: int
    steps: int


@dataclass
class Result:
    """A finished (or partial) continual run."""

    config: RunConfig
    protocol: str
    tasks: list[TaskRecord] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def accuracy_matrix(self) -> list[list[float]]:
        """T x T: row i is the accuracy on every task's test set after task i."""
        return [record.accuracies for record in self.tasks]

    @property
    def complete(self) -> bool:
        """Whether every task of the scenario has been trained."""
        return len(self.tasks) == self.config.scenario.num_tasks

    @property
    def metrics(self) -> dict[str, Metric]:
        """Metrics over the tasks trained so far (the leading square block of the matrix)."""
        trained = len(self.tasks)
        return continual_metrics([row[:trained] for row in self.accuracy_matrix], self.protocol)

    def to_json(self) -> dict[str, Any]:
        return {
            "config": to_plain(self.config),
            "complete": self.complete,
            "accuracy_matrix": {"protocol": self.protocol, "values": self.accuracy_matrix},
            "metrics": {name: asdict(metric) for name, metric in self.metrics.items()},
            "tasks": [asdict(record) for record in self.tasks],
            "environment": self.environment,
        }


def write_results(result: Result, out_dir: Path) -> None:
    """Write ``results.json`` (everything) and ``metrics.csv`` (one row per task)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
    num_tasks = len(result.tasks)
    with (out_dir / "metrics.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "task",
                "classes",
                *(f"acc_task_{j}" for j in range(num_tasks)),
                "acc_seen",
                "train_seconds",
                "images_seen",
            ]
        )
        for record in result.tasks:
            seen = record.accuracies[: record.task + 1]
            writer.writerow(
                [
                    record.task,
                    " ".join(map(str, record.classes)),
                    *(f"{value:.4f}" for value in record.accuracies),
                    f"{sum(seen) / len(seen):.4f}",
                    f"{record.train_seconds:.2f}",
                    record.images_seen,
                ]
            )
