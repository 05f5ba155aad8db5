"""The tables of docs/efficiency.md from the runs of ``benchmarks/efficiency/run.sh``.

Usage: ``python benchmarks/efficiency/table.py [ROOT]`` (default runs/efficiency). For every
strategy directory ROOT/<ssl>-<strategy> and every threshold ROOT/<ssl>-<strategy>/freeze-<t>,
the runs with freezing are grouped with the plain runs as ``kaizen compare`` groups them
(classifier accuracy, LUMP: the task-aware kNN; and the task-agnostic kNN of every run), and
one markdown row is printed per threshold.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kaizen.report.aggregate import Group, group_runs
from kaizen.storage.runs import load_run

COLUMNS = (
    "strategy",
    "accuracy read from",
    "freeze.threshold",
    "frozen depth, tasks 1..T",
    "train time 1..T",
    "backward FLOPs 1..T",
    "step memory, largest / mean",
    "final accuracy",
    "average continual accuracy",
    "forgetting",
    "kNN final accuracy",
)


def _variant_and_plain(runs: list[Path], probe: str | None) -> tuple[Group, Group]:
    loaded = [load_run(path, probe) for path in runs]
    groups = group_runs([run for run in loaded if run.complete])
    (variant,) = [group for group in groups if group.against_base is not None]
    (plain,) = [group for group in groups if group.strategy == variant.against_base.base]
    return variant, plain


def _change(plain: Group, variant: Group, metric: str) -> str:
    before, after = plain.accuracy[metric], variant.accuracy[metric]
    return f"{before.mean:.4f} → {after.mean:.4f} ({100 * (after.mean - before.mean):+.2f})"


def _saving(value: float | None) -> str:
    return "n/a" if value is None else f"{-100 * value:+.1f}%"


def _depths(runs: list[Path]) -> str:
    """Frozen depth per task 1..T of each run, the runs separated by '; ' when they differ."""
    per_run = {
        ",".join(
            str(task["parts"]["freeze"]["frozen_depth"])
            for task in json.loads((run / "results.json").read_text())["tasks"][1:]
        )
        for run in runs
    }
    return "; ".join(sorted(per_run))


def rows(root: Path) -> list[list[str]]:
    """One row per (strategy, threshold) under ``root``."""
    table = []
    for strategy_dir in sorted(path for path in root.iterdir() if (path / "plain").is_dir()):
        plain_runs = sorted((strategy_dir / "plain").glob("*-seed*"))
        probe = "knn-task" if strategy_dir.name.endswith("-lump") else None
        for frozen_dir in sorted(strategy_dir.glob("freeze-*")):
            frozen_runs = sorted(frozen_dir.glob("*-seed*"))
            variant, plain = _variant_and_plain(plain_runs + frozen_runs, probe)
            knn_variant, knn_plain = _variant_and_plain(plain_runs + frozen_runs, "knn")
            against = variant.against_base
            assert against is not None
            table.append(
                [
                    f"{plain.ssl_method} {plain.strategy}",
                    probe or "classifier",
                    frozen_dir.name.removeprefix("freeze-"),
                    _depths(frozen_runs),
                    _saving(against.train_time_saving),
                    _saving(against.backward_flops_saving),
                    f"{_saving(against.step_memory_saving)} / "
                    f"{_saving(against.mean_step_memory_saving)}",
                    _change(plain, variant, "final_accuracy"),
                    _change(plain, variant, "average_continual_accuracy"),
                    _change(plain, variant, "forgetting"),
                    _change(knn_plain, knn_variant, "final_accuracy"),
                ]
            )
    return table


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/efficiency")
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for row in rows(root):
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
