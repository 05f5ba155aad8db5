"""Runs grouped by (SSL method, strategy) and aggregated over seeds.

Accuracy metrics are recomputed from each run's accuracy matrix with :mod:`kaizen.eval.metrics`,
so every run is measured by the same formulas, and summarised as mean and sample standard
deviation over seeds. Costs are totals over a run's tasks, averaged over seeds, and are compared
with the ``scratch`` strategy (retraining from scratch on all data so far) of the same SSL method.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from kaizen.eval.metrics import (
    Matrix,
    average_continual_accuracy,
    final_accuracy,
    forgetting,
    plasticity,
)
from kaizen.presets import PAPER_STRATEGIES
from kaizen.report.runs import Run

SCRATCH = "scratch"

# name -> (label, metric of a complete accuracy matrix)
ACCURACY_METRICS: dict[str, tuple[str, Callable[[Matrix], float]]] = {
    "final_accuracy": ("final accuracy", final_accuracy),
    "average_continual_accuracy": ("average continual accuracy", average_continual_accuracy),
    "forgetting": ("forgetting", forgetting),
    "plasticity": ("plasticity", plasticity),
}


@dataclass(frozen=True)
class Spread:
    """Mean and sample standard deviation of one quantity over seeds."""

    mean: float
    std: float

    def __str__(self) -> str:
        return f"{self.mean:.4f} ± {self.std:.4f}"


def spread(values: Sequence[float]) -> Spread:
    """Mean and sample standard deviation (n - 1 in the denominator); a single value has std 0."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return Spread(statistics.fmean(values), std)


@dataclass(frozen=True)
class Costs:
    """Totals over the tasks of a run, averaged over seeds.

    Wall time and peak memory come from costs.json and are None when a run of the group has no
    costs.json; images come from the per-task records of results.json.
    """

    wall_seconds: float | None
    images_seen: float
    peak_memory_bytes: float | None


@dataclass(frozen=True)
class Group:
    """The runs of one (SSL method, strategy) pair, over seeds."""

    ssl_method: str
    strategy: str
    seeds: tuple[int, ...]
    accuracy: dict[str, Spread]
    costs: Costs
    wall_saving: float | None
    """1 - wall time / wall time of scratch with the same SSL method; None without scratch."""
    images_saving: float | None
    """1 - images / images of scratch with the same SSL method; None without scratch."""

    @property
    def seed_text(self) -> str:
        """The seeds, space-separated."""
        return " ".join(map(str, self.seeds))


def _costs(runs: Sequence[Run]) -> Costs:
    images = statistics.fmean(
        sum(task["images_seen"] for task in run.results["tasks"]) for run in runs
    )
    tables = [run.costs["tasks"] for run in runs if run.costs is not None]
    if len(tables) < len(runs):
        return Costs(None, images, None)
    wall = statistics.fmean(sum(task["wall_seconds"] for task in tasks) for tasks in tables)
    peak = statistics.fmean(max(task["peak_memory_bytes"] for task in tasks) for tasks in tables)
    return Costs(wall, images, peak)


def _saving(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference <= 0:
        return None
    return 1.0 - value / reference


def strategy_order(strategies: Iterable[str]) -> list[str]:
    """Distinct strategies: the paper's finetune, cassle, kaizen first, the others as they come."""
    distinct = list(dict.fromkeys(strategies))
    paper = [name for name in PAPER_STRATEGIES if name in distinct]
    return paper + [name for name in distinct if name not in PAPER_STRATEGIES]


def group_runs(runs: Sequence[Run]) -> list[Group]:
    """One :class:`Group` per (SSL method, strategy) of complete ``runs``.

    Groups are ordered by SSL method (as the runs first name them), then by
    :func:`strategy_order`.
    """
    ssl_methods = list(dict.fromkeys(run.ssl_method for run in runs))
    strategies = strategy_order(run.strategy for run in runs)
    pairs = [
        (ssl, strategy)
        for ssl in ssl_methods
        for strategy in strategies
        if any(run.ssl_method == ssl and run.strategy == strategy for run in runs)
    ]
    members = {
        pair: [run for run in runs if (run.ssl_method, run.strategy) == pair] for pair in pairs
    }
    costs = {pair: _costs(group) for pair, group in members.items()}
    groups = []
    for (ssl, strategy), group in members.items():
        scratch = costs.get((ssl, SCRATCH))
        own = costs[(ssl, strategy)]
        groups.append(
            Group(
                ssl_method=ssl,
                strategy=strategy,
                seeds=tuple(sorted(run.seed for run in group)),
                accuracy={
                    name: spread([metric(run.matrix) for run in group])
                    for name, (_, metric) in ACCURACY_METRICS.items()
                },
                costs=own,
                wall_saving=_saving(own.wall_seconds, scratch.wall_seconds if scratch else None),
                images_saving=_saving(own.images_seen, scratch.images_seen if scratch else None),
            )
        )
    return groups
