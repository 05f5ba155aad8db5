"""Comparison of runs: compare.md, compare.html, compare.csv and bar charts over seeds."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import kaizen.methods.strategies  # noqa: F401  (registers every method and its extensions)
from kaizen.errors import KaizenError
from kaizen.methods.registry import EXTENSIONS
from kaizen.report.aggregate import (
    ACCURACY_METRICS,
    SCRATCH,
    Group,
    group_runs,
    strategy_order,
)
from kaizen.report.document import Document, cell
from kaizen.report.plots import budget_lines, grouped_bars
from kaizen.report.probe_gap import ProbeGap, compare_gap_section, probe_gap
from kaizen.storage.runs import Run, load_run

_MIB = 2**20


@dataclass(frozen=True)
class Comparison:
    """The aggregated groups, the incomplete runs left out, and the files written."""

    groups: list[Group]
    skipped: list[Path]
    markdown: Path
    html: Path
    csv: Path


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100.0 * value:.1f}%"


def _megabytes(value: float | None) -> float | None:
    return None if value is None else value / _MIB


def _giga(value: float | None) -> float | None:
    return None if value is None else value / 1e9


def _check_one_setting(runs: Sequence[Run]) -> str:
    settings = {run.setting: run.path for run in runs}
    if len(settings) > 1:
        listed = "; ".join(f"{path}: {setting}" for setting, path in settings.items())
        raise KaizenError(f"runs of different settings cannot be compared ({listed})")
    return next(iter(settings))


def _steps(group: Group) -> str:
    return f"{group.steps_per_task:.0f}"


def _extension_note(document: Document, runs: Sequence[Run]) -> None:
    """Say which compared strategies are this project's extensions, not published methods."""
    ours = sorted({run.strategy for run in runs if run.strategy in EXTENSIONS})
    for name in ours:
        document.paragraph(
            f"`{name}` is kaizen-cl's extension, not a published method: {EXTENSIONS[name]}."
        )


def _accuracy_section(document: Document, groups: Sequence[Group]) -> None:
    document.heading("Accuracy")
    document.table(
        [
            "SSL method",
            "strategy",
            "steps/task",
            "seeds",
            *(label for label, _ in ACCURACY_METRICS.values()),
        ],
        [
            [
                group.ssl_method,
                group.strategy,
                _steps(group),
                group.seed_text,
                *(str(group.accuracy[name]) for name in ACCURACY_METRICS),
            ]
            for group in groups
        ],
    )
    if len({group.budget for group in groups}) > 1:
        _budget_figures(document, groups)
    else:
        _bar_figures(document, groups)
    _just_trained_table(document, groups)


def _bar_figures(document: Document, groups: Sequence[Group]) -> None:
    ssl_methods = list(dict.fromkeys(group.ssl_method for group in groups))
    strategies = strategy_order(group.strategy for group in groups)
    by_pair = {(group.ssl_method, group.strategy): group for group in groups}
    for name, (label, _) in ACCURACY_METRICS.items():
        means: dict[str, list[float]] = {}
        stds: dict[str, list[float]] = {}
        for strategy in strategies:
            cells = [by_pair.get((ssl, strategy)) for ssl in ssl_methods]
            means[strategy] = [g.accuracy[name].mean if g else math.nan for g in cells]
            stds[strategy] = [g.accuracy[name].std if g else math.nan for g in cells]
        png = grouped_bars(ssl_methods, means, stds, f"{label} (mean ± std over seeds)", label)
        document.figure(name, png, f"{label} by SSL method and strategy; error bars: std")


def _budget_figures(document: Document, groups: Sequence[Group]) -> None:
    """Each metric against steps per task: one panel per SSL method, one line per strategy."""
    document.paragraph(
        "The runs span several training budgets: each metric is drawn against the optimiser "
        "steps per task, one line per strategy, error bars the std over seeds."
    )
    ssl_methods = list(dict.fromkeys(group.ssl_method for group in groups))
    strategies = strategy_order(group.strategy for group in groups)
    for name, (label, _) in ACCURACY_METRICS.items():
        panels = {
            ssl: {
                strategy: [
                    (g.steps_per_task, g.accuracy[name].mean, g.accuracy[name].std)
                    for g in groups
                    if (g.ssl_method, g.strategy) == (ssl, strategy)
                ]
                for strategy in strategies
            }
            for ssl in ssl_methods
        }
        png = budget_lines(panels, f"{label} against the training budget", label)
        document.figure(f"budget_{name}", png, f"{label} against steps per task; error bars: std")


def _just_trained_table(document: Document, groups: Sequence[Group]) -> None:
    tasks = max(len(group.just_trained) for group in groups)
    document.paragraph(
        "Accuracy on each task right after training it, a[i][i] (its mean is the plasticity):"
    )
    document.table(
        ["SSL method", "strategy", "steps/task", *(f"task {i}" for i in range(tasks))],
        [
            [
                group.ssl_method,
                group.strategy,
                _steps(group),
                *(f"{spread.mean:.3f} ± {spread.std:.3f}" for spread in group.just_trained),
                *([""] * (tasks - len(group.just_trained))),
            ]
            for group in groups
        ],
    )


def _cost_section(document: Document, groups: Sequence[Group]) -> None:
    document.heading("Cost")
    document.paragraph(
        "Totals over the tasks of a run, mean over seeds. Saving = 1 - strategy / scratch "
        f"(the '{SCRATCH}' strategy with the same SSL method); n/a without a scratch run or "
        "without costs.json. Against scratch, over all tasks: the training time (charged to "
        "training, the task-end hooks included) and the final accuracy, each as a share of "
        "scratch's. Over tasks 1..T: training time, backward FLOPs (one measured "
        "step per task times its steps) and the peak of a step's live training tensors, its "
        "largest and its mean over the tasks."
    )
    document.table(
        [
            "SSL method",
            "strategy",
            "steps/task",
            "wall time (s)",
            "images processed",
            "peak memory (MiB)",
            "wall-time saving",
            "images saving",
            "train time / scratch",
            "final accuracy / scratch",
            "train time 1..T (s)",
            "backward GFLOPs 1..T",
            "step memory (MiB)",
            "mean step memory (MiB)",
        ],
        [
            [
                group.ssl_method,
                group.strategy,
                _steps(group),
                cell(group.costs.wall_seconds, digits=1),
                cell(group.costs.images_seen, digits=0),
                cell(_megabytes(group.costs.peak_memory_bytes), digits=1),
                _percent(group.wall_saving),
                _percent(group.images_saving),
                _percent(group.train_time_ratio),
                _percent(group.accuracy_ratio),
                cell(group.costs.train_seconds, digits=1),
                cell(_giga(group.costs.backward_flops), digits=1),
                cell(_megabytes(group.costs.step_memory_bytes), digits=1),
                cell(_megabytes(group.costs.mean_step_memory_bytes), digits=1),
            ]
            for group in groups
        ],
    )


def _variant_section(document: Document, groups: Sequence[Group]) -> None:
    """Each variant against its plain strategy: what a setting such as freezing saves and costs."""
    variants = [group for group in groups if group.against_base is not None]
    if not variants:
        return
    document.heading("Variants against their plain strategy")
    document.paragraph(
        "Saving = 1 - variant / plain over tasks 1..T, costs as in the table above; accuracy "
        "changes are variant - plain (points are hundredths: +0.0100 is one point better; "
        "for forgetting, lower is better)."
    )
    document.table(
        [
            "SSL method",
            "variant",
            "plain",
            "steps/task",
            "train time saving",
            "backward FLOPs saving",
            "step memory saving",
            "mean step memory saving",
            *(f"change in {label}" for label, _ in ACCURACY_METRICS.values()),
        ],
        [
            [
                group.ssl_method,
                group.strategy,
                against.base,
                _steps(group),
                _percent(against.train_time_saving),
                _percent(against.backward_flops_saving),
                _percent(against.step_memory_saving),
                _percent(against.mean_step_memory_saving),
                *(f"{against.accuracy_change[name]:+.4f}" for name in ACCURACY_METRICS),
            ]
            for group in variants
            if (against := group.against_base) is not None
        ],
    )


def _runs_section(document: Document, runs: Sequence[Run]) -> None:
    document.heading("Runs")
    document.table(
        ["run directory", "SSL method", "strategy", "seed", "status"],
        [
            [
                str(run.path),
                run.ssl_method,
                run.strategy,
                str(run.seed),
                "included" if run.complete else "left out: incomplete",
            ]
            for run in runs
        ],
    )


def _write_csv(groups: Sequence[Group], gaps: Sequence[ProbeGap | None], path: Path) -> None:
    """One row per group; ``gaps`` holds each group's classifier beside its probe, or None."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "ssl_method",
                "strategy",
                "steps_per_task",
                "seeds",
                *(f"{name}_{part}" for name in ACCURACY_METRICS for part in ("mean", "std")),
                "wall_seconds",
                "images_seen",
                "peak_memory_bytes",
                "wall_saving_vs_scratch",
                "images_saving_vs_scratch",
                "train_time_vs_scratch",
                "final_accuracy_vs_scratch",
                "later_tasks_train_seconds",
                "later_tasks_backward_flops",
                "step_peak_memory_bytes",
                "mean_step_peak_memory_bytes",
                "plain_strategy",
                "train_time_saving_vs_plain",
                "backward_flops_saving_vs_plain",
                "step_memory_saving_vs_plain",
                "mean_step_memory_saving_vs_plain",
                *(f"{name}_change_vs_plain" for name in ACCURACY_METRICS),
                "gap_probe",
                "probe_final_accuracy_mean",
            ]
        )
        for group, gap in zip(groups, gaps, strict=True):
            against = group.against_base
            versus_plain = (
                (
                    against.base,
                    against.train_time_saving,
                    against.backward_flops_saving,
                    against.step_memory_saving,
                    against.mean_step_memory_saving,
                    *(against.accuracy_change[name] for name in ACCURACY_METRICS),
                )
                if against is not None
                else (None,) * (5 + len(ACCURACY_METRICS))
            )
            optional = (
                group.costs.wall_seconds,
                group.costs.images_seen,
                group.costs.peak_memory_bytes,
                group.wall_saving,
                group.images_saving,
                group.train_time_ratio,
                group.accuracy_ratio,
                group.costs.train_seconds,
                group.costs.backward_flops,
                group.costs.step_memory_bytes,
                group.costs.mean_step_memory_bytes,
            )
            writer.writerow(
                [
                    group.ssl_method,
                    group.strategy,
                    group.steps_per_task,
                    group.seed_text,
                    *(
                        value
                        for name in ACCURACY_METRICS
                        for value in (group.accuracy[name].mean, group.accuracy[name].std)
                    ),
                    *("" if value is None else value for value in (*optional, *versus_plain)),
                    *(("", "") if gap is None else (gap.probe, gap.probe_mean.mean)),
                ]
            )


def compare_runs(run_dirs: Sequence[Path], out_dir: Path, probe: str | None = None) -> Comparison:
    """Aggregate complete runs by (SSL method, strategy, budget) over seeds; write the comparison.

    Accuracy comes from each run's classifier, or from its probe named ``probe`` (``knn-task``
    for LUMP, which trains no classifier).

    Writes ``compare.md`` (charts as PNG files beside it), a self-contained ``compare.html`` and
    ``compare.csv`` (one row per group) to ``out_dir``. Incomplete runs are listed but left out;
    all complete runs must share one setting (data, scenario and evaluation protocol).
    """
    if not run_dirs:
        raise KaizenError("compare needs at least one run directory")
    runs = [load_run(path, probe) for path in dict.fromkeys(Path(path) for path in run_dirs)]
    for run in runs:
        if run.updated:
            raise KaizenError(
                f"{run.path} was extended by kaizen update: compare reads runs of one stated "
                f"scenario; see its versions with `kaizen history {run.path}`"
            )
    complete = [run for run in runs if run.complete]
    if not complete:
        raise KaizenError(
            f"none of the {len(runs)} runs is complete: finish them with `kaizen run` first"
        )
    setting = _check_one_setting(complete)
    groups = group_runs(complete)
    document = Document(f"Comparison of {len(complete)} runs")
    document.paragraph(
        f"Setting: {setting}. Metrics are recomputed from each run's accuracy matrix and given "
        "as mean ± sample standard deviation (n - 1) over seeds."
    )
    _extension_note(document, complete)
    _accuracy_section(document, groups)
    gaps = [probe_gap(group.members) for group in groups]
    compare_gap_section(
        document,
        [
            (group.ssl_method, group.strategy, gap)
            for group, gap in zip(groups, gaps, strict=True)
            if gap is not None
        ],
    )
    _cost_section(document, groups)
    _variant_section(document, groups)
    _runs_section(document, runs)
    markdown, html = document.write(out_dir, "compare")
    csv_path = out_dir / "compare.csv"
    _write_csv(groups, gaps, csv_path)
    return Comparison(
        groups, [run.path for run in runs if not run.complete], markdown, html, csv_path
    )
