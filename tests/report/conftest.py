"""Run directories written in the schema of `kaizen run --out DIR` (results.json, costs.json)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from kaizen.eval.metrics import continual_metrics

PROTOCOL = "classifier, single head over all classes (task-agnostic, argmax over all classes)"

DEFAULT_MATRIX = [
    [0.90, 0.10, 0.00],
    [0.80, 0.85, 0.05],
    [0.60, 0.70, 0.80],
]
RANDOM_INIT = [0.0123, 0.011, 0.012]


def write_run(
    run_dir: Path,
    *,
    ssl: str = "simclr",
    strategy: str = "kaizen",
    seed: int = 0,
    matrix: Sequence[Sequence[float]] = DEFAULT_MATRIX,
    wall_seconds: Sequence[float] | None = (10.0, 10.0, 10.0),
    images_seen: Sequence[int] = (1000, 1000, 1000),
    complete: bool = True,
    probes: Mapping[str, Sequence[Sequence[float]]] | None = None,
    data: str = "synthetic",
) -> Path:
    """A run directory with results.json and, unless ``wall_seconds`` is None, costs.json.

    ``matrix`` has one row per trained task; ``probes`` maps a probe name to its matrix.
    """
    num_tasks = len(matrix[0])
    trained = len(matrix)
    square = [list(row[:trained]) for row in matrix]
    metrics = continual_metrics(square, PROTOCOL) if complete else {}
    results: dict[str, Any] = {
        "config": {
            "name": f"{ssl}-{strategy}-seed{seed}",
            "seed": seed,
            "ssl": {"method": ssl},
            "strategy": {"name": strategy},
            "data": {"name": data},
            "scenario": {"num_tasks": num_tasks, "kind": "class-incremental"},
        },
        "complete": complete,
        "accuracy_matrix": {"protocol": PROTOCOL, "values": [list(row) for row in matrix]},
        "probes": {
            name: {"protocol": f"{name} probe on frozen backbone features", "values": values}
            for name, values in (probes or {}).items()
        },
        "random_init": {"protocol": PROTOCOL, "values": RANDOM_INIT},
        "metrics": {
            name: {"value": metric.value, "protocol": metric.protocol}
            for name, metric in metrics.items()
        },
        "tasks": [
            {
                "task": i,
                "classes": [2 * i, 2 * i + 1],
                "accuracies": list(matrix[i]),
                "images_seen": images_seen[i],
                "steps": 10,
                "test_size": 16,
                "negative_flip_rate": None if i == 0 else 0.125,
            }
            for i in range(trained)
        ],
        "environment": {"kaizen": "0.1.0", "torch": "2.x", "device": "cpu", "precision": "32"},
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    if wall_seconds is not None:
        costs = {
            "tasks": [
                {
                    "task": i,
                    "wall_seconds": wall_seconds[i],
                    "train_seconds": 0.8 * wall_seconds[i],
                    "images_seen": images_seen[i],
                    "peak_memory_bytes": (100 + i) * 2**20,
                }
                for i in range(trained)
            ],
            "environment": {"device": "cpu"},
        }
        (run_dir / "costs.json").write_text(json.dumps(costs, indent=2))
    return run_dir


@pytest.fixture(scope="session")
def make_run() -> Callable[..., Path]:
    """The :func:`write_run` helper."""
    return write_run
