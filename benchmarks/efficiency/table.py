"""The tables of docs/efficiency.md from the runs of ``benchmarks/efficiency/run.sh``.

Usage: ``python benchmarks/efficiency/table.py [ROOT]`` (default runs/efficiency).

A strategy directory ``<ssl>-<strategy>`` holds ``plain/`` and one directory per freezing run
set, ``freeze-<threshold>`` (the default freezing variant) or ``freeze-<variant>-<threshold>``.
Each is grouped with the plain runs as ``kaizen compare`` groups them (classifier accuracy,
LUMP: the task-aware kNN; and the task-agnostic kNN of every run), and one markdown row is
printed per set, with the savings over tasks 1..T (where freezing acts) and over the whole run
(tasks 0..T, task 0 included).

ROOT is either a directory of strategy directories (the records of the protocol where the
threshold was chosen on the compared seeds, such as docs/efficiency/runs) or the root of
run.sh's held-out protocol: ``comparison/`` (plain and the chosen threshold on seeds that took no
part in the choice) is printed first, then ``selection/`` (every candidate on the seeds the
choice was made on).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kaizen.report.aggregate import AgainstBase, Group, group_runs
from kaizen.storage.runs import load_run

COLUMNS = (
    "strategy",
    "accuracy read from",
    "freezing variant",
    "freeze.threshold",
    "frozen depth, tasks 1..T",
    "train time 1..T",
    "train time 0..T",
    "backward FLOPs 1..T",
    "backward FLOPs 0..T",
    "step memory 1..T, largest / mean",
    "step memory 0..T, largest / mean",
    "final accuracy",
    "average continual accuracy",
    "forgetting",
    "kNN final accuracy",
)
DEFAULT_VARIANT = "covariance-prefix"
"""The freezing variant of a ``freeze-<threshold>`` directory (the measure and selection of
``freeze.enabled=true`` with no other freezing setting)."""
STAGES = ("comparison", "selection")


def probe_of(strategy_dir: Path) -> str | None:
    """The accuracy the table reads for a strategy: LUMP trains no classifier, so the
    task-aware kNN; None (the classifier) otherwise."""
    return "knn-task" if strategy_dir.name.endswith("-lump") else None


def variant_and_threshold(frozen_dir: Path) -> tuple[str, str]:
    """The freezing variant and threshold named by ``freeze-[<variant>-]<threshold>``."""
    variant, _, threshold = frozen_dir.name.removeprefix("freeze-").rpartition("-")
    return variant or DEFAULT_VARIANT, threshold


def variant_and_plain(runs: list[Path], probe: str | None) -> tuple[Group, Group]:
    """The group of the freezing runs among ``runs`` and the group of their plain runs."""
    loaded = [load_run(path, probe) for path in runs]
    groups = group_runs([run for run in loaded if run.complete])
    (variant,) = [group for group in groups if group.against_base is not None]
    (plain,) = [group for group in groups if group.strategy == variant.against_base.base]
    return variant, plain


def run_sets(strategy_dir: Path) -> tuple[list[Path], list[Path]]:
    """The plain runs and the freezing run-set directories of a strategy directory."""
    return sorted((strategy_dir / "plain").glob("*-seed*")), sorted(strategy_dir.glob("freeze-*"))


def _change(plain: Group, variant: Group, metric: str) -> str:
    before, after = plain.accuracy[metric], variant.accuracy[metric]
    return f"{before.mean:.4f} → {after.mean:.4f} ({100 * (after.mean - before.mean):+.2f})"


def _saving(value: float | None) -> str:
    return "n/a" if value is None else f"{0.0 - 100 * value:+.1f}%"


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


def _cost_columns(against: AgainstBase) -> list[str]:
    whole = against.whole_run
    return [
        _saving(against.train_time_saving),
        _saving(whole.train_time),
        _saving(against.backward_flops_saving),
        _saving(whole.backward_flops),
        f"{_saving(against.step_memory_saving)} / {_saving(against.mean_step_memory_saving)}",
        f"{_saving(whole.step_memory)} / {_saving(whole.mean_step_memory)}",
    ]


def rows(root: Path) -> list[list[str]]:
    """One row per (strategy, freezing run set) under ``root``."""
    table = []
    for strategy_dir in sorted(path for path in root.iterdir() if (path / "plain").is_dir()):
        plain_runs, frozen_dirs = run_sets(strategy_dir)
        probe = probe_of(strategy_dir)
        for frozen_dir in frozen_dirs:
            frozen_runs = sorted(frozen_dir.glob("*-seed*"))
            variant, plain = variant_and_plain(plain_runs + frozen_runs, probe)
            knn_variant, knn_plain = variant_and_plain(plain_runs + frozen_runs, "knn")
            against = variant.against_base
            assert against is not None
            table.append(
                [
                    f"{plain.ssl_method} {plain.strategy}",
                    probe or "classifier",
                    *variant_and_threshold(frozen_dir),
                    _depths(frozen_runs),
                    *_cost_columns(against),
                    _change(plain, variant, "final_accuracy"),
                    _change(plain, variant, "average_continual_accuracy"),
                    _change(plain, variant, "forgetting"),
                    _change(knn_plain, knn_variant, "final_accuracy"),
                ]
            )
    return table


def markdown(root: Path) -> str:
    """The table of the runs under ``root`` in markdown."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(root)]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    root = Path(argv[0] if argv else "runs/efficiency")
    if not all((root / stage).is_dir() for stage in STAGES):
        print(markdown(root))
        return
    print("Held-out comparison: the chosen thresholds on the comparison seeds\n")
    print(markdown(root / "comparison"))
    print("\nSelection: every candidate threshold on the selection seeds\n")
    print(markdown(root / "selection"))


if __name__ == "__main__":
    main(sys.argv[1:])
