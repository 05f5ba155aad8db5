"""Choose each freezing variant's threshold on the selection seeds of ``run.sh``.

Usage:

    python benchmarks/efficiency/choose.py SELECTION_ROOT CHOICE_JSON
    python benchmarks/efficiency/choose.py --read CHOICE_JSON STRATEGY VARIANT

The first form reads every strategy directory of SELECTION_ROOT (``plain/`` and
``freeze-<variant>-<threshold>/``, as ``table.py`` reads them) and writes, per strategy and
freezing variant, the chosen threshold and every candidate's numbers to CHOICE_JSON. The rule,
fixed before the held-out comparison: among the thresholds whose final accuracy (the accuracy
``table.py`` reads: the task-aware kNN for LUMP, the classifier otherwise; mean over the
selection seeds) is at least the plain runs' mean minus one sample standard deviation over the
same seeds, take the one with the largest whole-run (tasks 0..T) backward-FLOPs saving; none
when no threshold qualifies. The second form prints the chosen threshold (nothing when none was
chosen), for run.sh.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from table import probe_of, run_sets, variant_and_plain, variant_and_threshold

from kaizen.report.aggregate import Spread

METRIC = "final_accuracy"
RULE = (
    "largest whole-run (tasks 0..T) backward-FLOPs saving among the thresholds whose mean "
    "final accuracy over the selection seeds is at least plain's mean minus one sample "
    "standard deviation over the same seeds"
)


@dataclass(frozen=True)
class Candidate:
    """One threshold of a freezing variant, measured on the selection seeds."""

    threshold: float
    whole_run_backward_flops_saving: float | None
    final_accuracy: float


def qualifies(candidate: Candidate, plain: Spread) -> bool:
    """Whether ``candidate``'s accuracy is within one standard deviation of ``plain`` (or
    above it) and its saving was measured."""
    return (
        candidate.whole_run_backward_flops_saving is not None
        and candidate.final_accuracy >= plain.mean - plain.std
    )


def choose(candidates: list[Candidate], plain: Spread) -> float | None:
    """The threshold of :data:`RULE` (ties: the higher threshold, which freezes less)."""
    eligible = [candidate for candidate in candidates if qualifies(candidate, plain)]
    if not eligible:
        return None
    best = max(
        eligible,
        key=lambda c: (c.whole_run_backward_flops_saving or 0.0, c.threshold),
    )
    return best.threshold


def select(root: Path) -> dict[str, Any]:
    """The choice record of every strategy and freezing variant under ``root``."""
    strategies: dict[str, Any] = {}
    for strategy_dir in sorted(path for path in root.iterdir() if (path / "plain").is_dir()):
        plain_runs, frozen_dirs = run_sets(strategy_dir)
        by_variant: dict[str, list[Candidate]] = defaultdict(list)
        plain: Spread | None = None
        for frozen_dir in frozen_dirs:
            runs = plain_runs + sorted(frozen_dir.glob("*-seed*"))
            group, plain_group = variant_and_plain(runs, probe_of(strategy_dir))
            assert group.against_base is not None
            plain = plain_group.accuracy[METRIC]
            variant, threshold = variant_and_threshold(frozen_dir)
            by_variant[variant].append(
                Candidate(
                    float(threshold),
                    group.against_base.whole_run.backward_flops,
                    group.accuracy[METRIC].mean,
                )
            )
        if plain is None:
            continue
        strategies[strategy_dir.name] = {
            variant: {
                "threshold": choose(candidates, plain),
                "plain_final_accuracy": asdict(plain),
                "candidates": [
                    {**asdict(candidate), "qualifies": qualifies(candidate, plain)}
                    for candidate in sorted(candidates, key=lambda c: c.threshold)
                ],
            }
            for variant, candidates in sorted(by_variant.items())
        }
    return {"rule": RULE, "strategies": strategies}


def chosen_threshold(choice: dict[str, Any], strategy: str, variant: str) -> float | None:
    """The threshold ``choice`` holds for ``strategy`` and ``variant`` (None: none chosen)."""
    threshold: float | None = choice["strategies"][strategy][variant]["threshold"]
    return threshold


def main(argv: list[str]) -> int:
    if argv[:1] == ["--read"]:
        path, strategy, variant = argv[1:]
        threshold = chosen_threshold(json.loads(Path(path).read_text()), strategy, variant)
        if threshold is not None:
            print(threshold)
        return 0
    root, out = argv
    choice = select(Path(root))
    Path(out).write_text(json.dumps(choice, indent=2) + "\n")
    print(json.dumps(choice, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
