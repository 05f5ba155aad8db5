"""Print the tables of docs/results-pretrained.md from the run records of commands.sh.

.venv/bin/python docs/results-pretrained/summarise.py runs/pretrained-demo [BEFORE]

With BEFORE, a directory of records of the same runs under other settings, a second table sets
the SLCA family's numbers side by side: BEFORE's, then ROOT's.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

SLCA_FAMILY = ("seqft", "sl", "slca", "slcapp", "joint")
KAIZEN = ("kaizen", "kaizen-align")
METRICS = ("final_accuracy", "average_incremental_accuracy", "forgetting")


def _runs(root: Path, name: str) -> list[dict]:
    found = sorted(root.glob(f"{name}-seed*/results.json"))
    runs = [json.loads(path.read_text()) for path in found]
    return [run for run in runs if run["complete"]]


def _value(run: dict, metric: str) -> float:
    return run["metrics"][metric]["value"]


def _cell(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {spread:.3f}"


def _side_by_side(before: Path, after: Path) -> None:
    """The SLCA family's metrics under ``before``'s settings and ``after``'s, per strategy."""
    print()
    print(
        "| strategy | seeds | " + " | ".join(f"{name} (before → after)" for name in METRICS) + " |"
    )
    print("|---|---|" + "---|" * len(METRICS))
    for name in SLCA_FAMILY:
        old, new = _runs(before, name), _runs(after, name)
        if not old or not new:
            continue
        seeds = ", ".join(str(run["config"]["seed"]) for run in new)
        cells = [
            f"{statistics.mean(_value(run, metric) for run in old):.3f} → "
            f"{statistics.mean(_value(run, metric) for run in new):.3f}"
            for metric in METRICS
        ]
        print(f"| {name} | {seeds} | " + " | ".join(cells) + " |")


def main(root: Path, before: Path | None = None) -> None:
    header = "| strategy | seeds | final accuracy | average incremental accuracy | forgetting |"
    print(header)
    print("|---|---|---|---|---|")
    means = {}
    for name in (*SLCA_FAMILY, *KAIZEN):
        runs = _runs(root, name)
        if not runs:
            continue
        seeds = ", ".join(str(run["config"]["seed"]) for run in runs)
        cells = [_cell([_value(run, metric) for run in runs]) for metric in METRICS]
        means[name] = statistics.mean(_value(run, "final_accuracy") for run in runs)
        print(f"| {name} | {seeds} | " + " | ".join(cells) + " |")
    plain, aligned = _runs(root, "kaizen"), _runs(root, "kaizen-align")
    if plain and aligned:
        classifier = statistics.mean(_value(run, "final_accuracy") for run in plain)
        probe = statistics.mean(_value(run, "linear_final_accuracy") for run in plain)
        lifted = statistics.mean(_value(run, "final_accuracy") for run in aligned)
        print()
        print(
            f"kaizen: classifier {classifier:.3f}, its linear probe {probe:.3f}; aligned "
            f"{lifted:.3f}: {(lifted - classifier) / (probe - classifier):.0%} of the gap closed"
        )
    if all(name in means for name in ("seqft", "sl", "slca", "slcapp")):
        holds = means["seqft"] < means["sl"] < means["slca"] <= means["slcapp"]
        print()
        print(
            f"seqft < sl < slca <= slcapp in mean final accuracy: {'holds' if holds else 'fails'}"
        )
    if "slcapp" in means and "joint" in means:
        print(f"joint - slcapp: {means['joint'] - means['slcapp']:.3f}")

    if before is not None:
        _side_by_side(before, root)


if __name__ == "__main__":
    main(
        Path(sys.argv[1] if len(sys.argv) > 1 else "runs/pretrained-demo"),
        Path(sys.argv[2]) if len(sys.argv) > 2 else None,
    )
