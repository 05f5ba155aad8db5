"""The measured-effect column of docs/parity.md from the runs of ``benchmarks/parity/run.sh``.

Usage: ``python benchmarks/parity/table.py [ROOT]`` (default runs/parity). Each row directory
ROOT/<row>/ holds the runs with one released behaviour switched on; they are grouped with the
preset's own runs of the same SSL method and strategy in ROOT/default/ as ``kaizen compare``
groups them, and one markdown row is printed per row directory: final accuracy, average
continual accuracy and forgetting (the classifier's; LUMP: the task-aware kNN it reports), each
mean ± standard deviation over seeds, and the change in points; and the task-agnostic kNN's
final accuracy of every run ("—" for a family without probes, as SLCA's).
"""

from __future__ import annotations

import sys
from pathlib import Path

from kaizen.report.aggregate import Group, group_runs
from kaizen.storage.runs import load_run

METRICS = ("final_accuracy", "average_continual_accuracy", "forgetting")
COLUMNS = (
    "row",
    "SSL method",
    "strategy",
    "seeds",
    "final accuracy",
    "average continual accuracy",
    "forgetting",
    "kNN final accuracy",
)


def _groups(variant_runs: list[Path], default_root: Path, probe: str | None) -> tuple[Group, Group]:
    """The row's runs and the default runs of the same (SSL method, strategy) and seeds, each
    grouped over seeds as ``kaizen compare`` groups them, accuracy read from ``probe``."""
    defaults = [default_root / path.name for path in variant_runs]
    (variant,) = group_runs([load_run(path, probe) for path in variant_runs])
    (plain,) = group_runs([load_run(path, probe) for path in defaults])
    return variant, plain


def _cell(plain: Group, variant: Group, metric: str) -> str:
    before, after = plain.accuracy[metric], variant.accuracy[metric]
    change = 100 * (after.mean - before.mean)
    return f"{before} → {after} ({change:+.2f})"


def main(root: Path) -> None:
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for row in sorted(path for path in root.iterdir() if path.is_dir()):
        if row.name in ("default", "compare"):
            continue
        runs = sorted(
            path
            for path in row.iterdir()
            if (path / "results.json").is_file() and load_run(path).complete
        )
        if not runs:  # a row still running
            continue
        lump = any("-lump-" in path.name for path in runs)
        variant, plain = _groups(runs, root / "default", "knn-task" if lump else None)
        cells = [_cell(plain, variant, metric) for metric in METRICS]
        if all("knn" in load_run(path).results["probes"] for path in runs):
            knn_variant, knn_plain = _groups(runs, root / "default", "knn")
            cells.append(_cell(knn_plain, knn_variant, "final_accuracy"))
        else:  # a family without probes (the SLCA family)
            cells.append("—")
        print(
            f"| {row.name} | {variant.ssl_method} | {plain.strategy} | {variant.seed_text} | "
            + " | ".join(cells)
            + " |"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/parity"))
