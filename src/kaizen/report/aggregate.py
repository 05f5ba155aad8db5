"""Runs grouped by (SSL method, strategy, budget) and aggregated over seeds.

A group's strategy is the run's strategy name, followed by the settings that set it apart from
other runs of the same SSL method and strategy name (``kaizen[strategy.classifier_distill_classes
=seen]``), so variants of a method are compared as methods of their own. The budget is the
training length (``train.epochs``, ``data.train_per_class``), shown as steps per task.

Accuracy metrics are recomputed from each run's accuracy matrix with :mod:`kaizen.eval.metrics`,
so every run is measured by the same formulas, and summarised as mean and sample standard
deviation over seeds. Costs are totals over a run's tasks, averaged over seeds, and are compared
with the ``scratch`` strategy (retraining from scratch on all data so far) of the same SSL method
and budget.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from kaizen.config import RunConfig, to_plain
from kaizen.eval.metrics import (
    Matrix,
    average_continual_accuracy,
    final_accuracy,
    forgetting,
    plasticity,
)
from kaizen.presets import PAPER_STRATEGIES
from kaizen.storage.runs import Run

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
class TrainingCosts:
    """The training costs of a run's tasks from one on, averaged over seeds.

    ``train_seconds`` sums the tasks' charged training times (costs.json ``train_seconds``),
    ``backward_flops`` sums each task's measured backward FLOPs per step times its steps,
    ``step_memory_bytes`` is the largest measured peak of a step's live training tensors and
    ``mean_step_memory_bytes`` the mean of those peaks over the tasks.
    """

    train_seconds: float
    backward_flops: float
    step_memory_bytes: float
    mean_step_memory_bytes: float


@dataclass(frozen=True)
class Costs:
    """Totals over the tasks of a run, averaged over seeds.

    Wall time and peak memory come from costs.json and are None when a run of the group has no
    costs.json; images come from the per-task records of results.json. ``train_seconds``,
    ``backward_flops``, ``step_memory_bytes`` and ``mean_step_memory_bytes`` are those of
    :class:`TrainingCosts` over tasks 1..T (where freezing acts; the mean is what progressive
    freezing lowers task after task), ``whole_run`` the same over tasks 0..T; None for runs
    that did not measure them.
    """

    wall_seconds: float | None
    images_seen: float
    peak_memory_bytes: float | None
    train_seconds: float | None = None
    backward_flops: float | None = None
    step_memory_bytes: float | None = None
    mean_step_memory_bytes: float | None = None
    whole_run: TrainingCosts | None = None
    all_train_seconds: float | None = None
    """The charged training time over every task (costs.json ``train_seconds``)."""


BUDGET_KEYS = ("train.epochs", "data.train_per_class")
"""The settings a budget study varies; a group's budget is their values."""

# Settings that do not make runs different methods: identity, budget, logging, evaluation, paths.
_NOT_METHOD = {
    "name",
    "seed",
    "ssl.method",
    "strategy.name",
    "train.progress",
    "train.log_every",
    "train.num_threads",
    "train.checkpoint_every_epochs",
    "train.keep_checkpoints",
    "data.path",
    "data.cache_dir",
    *BUDGET_KEYS,
}


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted keys of a config tree -> JSON text of their values."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = json.dumps(value)
    return flat


def _in_effect(flat: dict[str, str]) -> dict[str, str]:
    """``flat`` without the settings of a section switched off (``freeze.enabled=false`` makes
    ``freeze.threshold`` moot): they take their defaults, so they name no variant."""
    off = {key.removesuffix("enabled") for key, value in flat.items() if key.endswith(".enabled")}
    off = {prefix for prefix in off if flat[f"{prefix}enabled"] == "false"}
    return {
        key: value
        for key, value in flat.items()
        if key.endswith(".enabled") or not any(key.startswith(prefix) for prefix in off)
    }


def _shown(text: str) -> str:
    value = json.loads(text)
    return value if isinstance(value, str) else json.dumps(value)


def strategy_labels(runs: Sequence[Run]) -> list[str]:
    """Each run's strategy label (see the module docstring), in ``runs`` order.

    A setting joins the label when it varies among the runs of one (SSL method, strategy name)
    and the run's value is not the schema default; keys a run's config lacks, and the settings of
    a section it switches off, take the default.
    """
    defaults = _flat(to_plain(RunConfig()))
    settings = [_in_effect(_flat(run.config)) for run in runs]
    labels = []
    for run, own in zip(runs, settings, strict=True):
        peers = [
            flat
            for other, flat in zip(runs, settings, strict=True)
            if (other.ssl_method, other.strategy) == (run.ssl_method, run.strategy)
        ]
        keys = sorted({key for flat in peers for key in flat} - _NOT_METHOD)
        varying = [
            key
            for key in keys
            if not key.startswith("eval.")
            and len({flat.get(key, defaults.get(key)) for flat in peers}) > 1
        ]
        extras = [
            f"{key}={_shown(own.get(key, defaults.get(key, 'null')))}"
            for key in varying
            if own.get(key, defaults.get(key)) != defaults.get(key)
        ]
        labels.append(f"{run.strategy}[{','.join(extras)}]" if extras else run.strategy)
    return labels


def budget_of(run: Run) -> tuple[Any, ...]:
    """The values of :data:`BUDGET_KEYS` in ``run``'s config (None where it lacks one)."""
    flat = _flat(run.config)
    return tuple(json.loads(flat[key]) if key in flat else None for key in BUDGET_KEYS)


def steps_per_task(run: Run) -> float:
    """Mean optimiser steps per task of ``run``."""
    return statistics.fmean(task["steps"] for task in run.results["tasks"])


@dataclass(frozen=True)
class Group:
    """The runs of one (SSL method, strategy label, budget), over seeds."""

    ssl_method: str
    strategy: str
    budget: tuple[Any, ...]
    steps_per_task: float
    """Mean over the group's runs of their mean steps per task."""
    seeds: tuple[int, ...]
    accuracy: dict[str, Spread]
    just_trained: list[Spread]
    """a[i][i] for each task i: accuracy on a task right after training it, over seeds."""
    costs: Costs
    wall_saving: float | None
    """1 - wall time / wall time of scratch with the same SSL method; None without scratch."""
    images_saving: float | None
    """1 - images / images of scratch with the same SSL method; None without scratch."""
    against_base: AgainstBase | None = None
    """A variant (``lump[freeze.enabled=true]``) against its plain strategy, when compared."""
    train_time_ratio: float | None = None
    """Training time over every task / scratch's (same SSL method and budget); None without."""
    accuracy_ratio: float | None = None
    """Final accuracy / scratch's (same SSL method and budget); None without scratch."""
    members: tuple[Run, ...] = ()
    """The group's runs."""

    @property
    def seed_text(self) -> str:
        """The seeds, space-separated."""
        return " ".join(map(str, self.seeds))


def _training_costs(
    tables: Sequence[Sequence[dict[str, Any]]], runs: Sequence[Run], first: int
) -> TrainingCosts | None:
    """:class:`TrainingCosts` of tasks ``first``.. of the costs.json ``tables`` of ``runs``;
    None when a run has no such task or did not measure a step's costs."""
    chosen = [tasks[first:] for tasks in tables]
    if not all(chosen) or any("backward_flops_per_step" not in t for ts in chosen for t in ts):
        return None
    steps = [{r["task"]: r["steps"] for r in run.results["tasks"]} for run in runs]
    return TrainingCosts(
        statistics.fmean(sum(t["train_seconds"] for t in tasks) for tasks in chosen),
        statistics.fmean(
            sum(t["backward_flops_per_step"] * count[t["task"]] for t in tasks)
            for tasks, count in zip(chosen, steps, strict=True)
        ),
        statistics.fmean(max(t["step_peak_memory_bytes"] for t in tasks) for tasks in chosen),
        statistics.fmean(
            statistics.fmean(t["step_peak_memory_bytes"] for t in tasks) for tasks in chosen
        ),
    )


def _costs(runs: Sequence[Run]) -> Costs:
    images = statistics.fmean(
        sum(task["images_seen"] for task in run.results["tasks"]) for run in runs
    )
    tables = [run.costs["tasks"] for run in runs if run.costs is not None]
    if len(tables) < len(runs):
        return Costs(None, images, None)
    wall = statistics.fmean(sum(task["wall_seconds"] for task in tasks) for tasks in tables)
    peak = statistics.fmean(max(task["peak_memory_bytes"] for task in tasks) for tasks in tables)
    trained = statistics.fmean(sum(task["train_seconds"] for task in tasks) for tasks in tables)
    later = _training_costs(tables, runs, 1)
    if later is None:
        return Costs(wall, images, peak, all_train_seconds=trained)
    return Costs(
        wall,
        images,
        peak,
        later.train_seconds,
        later.backward_flops,
        later.step_memory_bytes,
        later.mean_step_memory_bytes,
        _training_costs(tables, runs, 0),
        trained,
    )


@dataclass(frozen=True)
class Savings:
    """1 - variant / plain of each of :class:`TrainingCosts` (None where either lacks it)."""

    train_time: float | None
    backward_flops: float | None
    step_memory: float | None
    mean_step_memory: float | None


def _savings(own: TrainingCosts | None, plain: TrainingCosts | None) -> Savings:
    if own is None or plain is None:
        return Savings(None, None, None, None)
    return Savings(
        _saving(own.train_seconds, plain.train_seconds),
        _saving(own.backward_flops, plain.backward_flops),
        _saving(own.step_memory_bytes, plain.step_memory_bytes),
        _saving(own.mean_step_memory_bytes, plain.mean_step_memory_bytes),
    )


@dataclass(frozen=True)
class AgainstBase:
    """A variant group against the group of its plain strategy (same SSL method and budget).

    Savings are 1 - variant / plain of the costs over tasks 1..T (None where either did not
    measure them) and, in ``whole_run``, over tasks 0..T, task 0 (never frozen) included;
    accuracy changes are variant mean - plain mean, per accuracy metric.
    """

    base: str
    train_time_saving: float | None
    backward_flops_saving: float | None
    step_memory_saving: float | None
    mean_step_memory_saving: float | None
    accuracy_change: dict[str, float]
    whole_run: Savings


def _against(group: Group, base: Group) -> AgainstBase:
    own, plain = group.costs, base.costs
    return AgainstBase(
        base.strategy,
        _saving(own.train_seconds, plain.train_seconds),
        _saving(own.backward_flops, plain.backward_flops),
        _saving(own.step_memory_bytes, plain.step_memory_bytes),
        _saving(own.mean_step_memory_bytes, plain.mean_step_memory_bytes),
        {name: group.accuracy[name].mean - base.accuracy[name].mean for name in ACCURACY_METRICS},
        _savings(own.whole_run, plain.whole_run),
    )


def _saving(value: float | None, reference: float | None) -> float | None:
    ratio = _ratio(value, reference)
    return None if ratio is None else 1.0 - ratio


def _ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference <= 0:
        return None
    return value / reference


def strategy_order(strategies: Iterable[str]) -> list[str]:
    """Distinct strategies: the paper's finetune, cassle, kaizen first, the others as they come."""
    distinct = list(dict.fromkeys(strategies))
    paper = [name for name in PAPER_STRATEGIES if name in distinct]
    return paper + [name for name in distinct if name not in PAPER_STRATEGIES]


def group_runs(runs: Sequence[Run]) -> list[Group]:
    """One :class:`Group` per (SSL method, strategy label, budget) of complete ``runs``.

    Groups are ordered by SSL method (as the runs first name them), then by
    :func:`strategy_order` of the labels, then by steps per task.
    """
    labels = strategy_labels(runs)
    keyed = [
        ((run.ssl_method, label, budget_of(run)), run)
        for run, label in zip(runs, labels, strict=True)
    ]
    members: dict[tuple[str, str, tuple[Any, ...]], list[Run]] = {}
    for key, run in keyed:
        members.setdefault(key, []).append(run)
    ssl_order = list(dict.fromkeys(run.ssl_method for run in runs))
    label_order = strategy_order(labels)
    steps = {
        key: statistics.fmean(steps_per_task(run) for run in group)
        for key, group in members.items()
    }
    ordered = sorted(
        members,
        key=lambda key: (ssl_order.index(key[0]), label_order.index(key[1]), steps[key]),
    )
    costs = {key: _costs(members[key]) for key in ordered}
    groups = []
    for key in ordered:
        ssl, label, budget = key
        group = members[key]
        scratch = costs.get((ssl, SCRATCH, budget))
        own = costs[key]
        tasks = min(len(run.matrix) for run in group)
        groups.append(
            Group(
                ssl_method=ssl,
                strategy=label,
                budget=budget,
                steps_per_task=steps[key],
                seeds=tuple(sorted(run.seed for run in group)),
                accuracy={
                    name: spread([metric(run.matrix) for run in group])
                    for name, (_, metric) in ACCURACY_METRICS.items()
                },
                just_trained=[spread([run.matrix[i][i] for run in group]) for i in range(tasks)],
                costs=own,
                wall_saving=_saving(own.wall_seconds, scratch.wall_seconds if scratch else None),
                images_saving=_saving(own.images_seen, scratch.images_seen if scratch else None),
                train_time_ratio=_ratio(
                    own.all_train_seconds, scratch.all_train_seconds if scratch else None
                ),
                members=tuple(group),
            )
        )
    by_key = dict(zip(ordered, groups, strict=True))
    for key, aggregated in by_key.items():
        scratch_group = by_key.get((key[0], SCRATCH, key[2]))
        if scratch_group is not None:
            final, reference = (
                g.accuracy["final_accuracy"].mean for g in (aggregated, scratch_group)
            )
            by_key[key] = replace(aggregated, accuracy_ratio=_ratio(final, reference))
    return [
        replace(group, against_base=_against(group, by_key[plain]))
        if (plain := (key[0], members[key][0].strategy, key[2])) != key and plain in by_key
        else group
        for key, group in by_key.items()
    ]
