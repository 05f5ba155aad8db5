"""The tables of docs/classifier.md from the run records of benchmarks/classifier/run.sh.

    python benchmarks/classifier/table.py ROOT

For each stage and scenario folder (ROOT/select/5x2, ROOT/select/2x5, ROOT/diagnose/5x2,
ROOT/final/5x2, ROOT/final/2x5) and each variant in it: the seeds, then mean ± std over them of
the classifier's final accuracy, its average continual accuracy, the linear probe's final
accuracy on the same run's final features, the gap (probe - classifier, in points, per run) and
the plasticity (accuracy on each task right after training it); and for ROOT/scratch/demo
kaizen-refit against scratch: training time and final accuracy, per seed.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from kaizen.eval.metrics import average_continual_accuracy, final_accuracy, plasticity


def _spread(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.4f} ± {std:.4f}"


def _points(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.fmean(values):.1f} ± {100 * std:.1f}"


def _runs(folder: Path) -> list[dict]:
    """The results.json of every complete run in ``folder``, as {"results": ...}."""
    runs = []
    for path in sorted(folder.glob("*/results.json")):
        results = json.loads(path.read_text())
        if results["complete"]:
            runs.append({"results": results})
    return runs


def _classifier(run: dict) -> list[list[float]]:
    return run["results"]["accuracy_matrix"]["values"]


def _probe(run: dict) -> list[list[float]]:
    return run["results"]["probes"]["linear"]["values"]


def scenario_table(folder: Path) -> list[str]:
    """One markdown row per variant folder of ``folder``."""
    rows = [
        "| variant | seeds | final accuracy | average continual accuracy | linear probe final "
        "| gap (points) | plasticity |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant in sorted(p for p in folder.iterdir() if p.is_dir()):
        runs = _runs(variant)
        if not runs:
            continue
        seeds = " ".join(str(run["results"]["config"]["seed"]) for run in runs)
        final = [final_accuracy(_classifier(run)) for run in runs]
        probe = [final_accuracy(_probe(run)) for run in runs]
        continual = [average_continual_accuracy(_classifier(run)) for run in runs]
        rows.append(
            f"| {variant.name} | {seeds} | {_spread(final)} | {_spread(continual)} "
            f"| {_spread(probe)} | {_points([p - f for p, f in zip(probe, final, strict=True)])} "
            f"| {_spread([plasticity(_classifier(run)) for run in runs])} |"
        )
    return rows


def demo_table(folder: Path) -> list[str]:
    """kaizen-refit against scratch on the demo's config, per seed and their mean."""
    rows = [
        "| seed | scratch final | scratch train s | kaizen-refit final | kaizen-refit train s "
        "| final / scratch | time / scratch |",
        "|---|---|---|---|---|---|---|",
    ]
    ratios = []
    for scratch_dir in sorted(folder.glob("scratch-seed*")):
        seed = scratch_dir.name.removeprefix("scratch-seed")
        pair = []
        for name in (scratch_dir.name, f"kaizen-refit-seed{seed}"):
            results = json.loads((folder / name / "results.json").read_text())
            costs = json.loads((folder / name / "costs.json").read_text())
            trained = sum(task["train_seconds"] for task in costs["tasks"])
            pair.append((final_accuracy(results["accuracy_matrix"]["values"]), trained))
        (scratch_final, scratch_time), (own_final, own_time) = pair
        ratios.append((own_final / scratch_final, own_time / scratch_time))
        rows.append(
            f"| {seed} | {scratch_final:.4f} | {scratch_time:.1f} | {own_final:.4f} "
            f"| {own_time:.1f} | {own_final / scratch_final:.3f} | {own_time / scratch_time:.3f} |"
        )
    if ratios:
        rows.append(
            f"| mean | | | | | {statistics.fmean(r[0] for r in ratios):.3f} "
            f"| {statistics.fmean(r[1] for r in ratios):.3f} |"
        )
    return rows


def main(root: Path) -> None:
    for stage in ("select", "diagnose", "final"):
        for scenario in ("5x2", "2x5"):
            if (root / stage / scenario).is_dir():
                print(f"\n{stage}, {scenario}\n")
                print("\n".join(scenario_table(root / stage / scenario)))
    if (root / "scratch" / "demo").is_dir():
        print("\ndemo: kaizen-refit against scratch\n")
        print("\n".join(demo_table(root / "scratch" / "demo")))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
