"""LUMP's training step with and without progressive layer freezing, on one device.

Against LUMP, progressive task-correlated layer freezing (Yang et al., arXiv 2303.07477) reports
12% less training time, 23% less memory and 35% fewer backward FLOPs (:data:`PAPER_SAVINGS`).
Each variant here is a real :class:`~kaizen.engine.trainer.ContinualTrainer` run of two
synthetic tasks of one epoch (:func:`~kaizen.bench.scaling.scaling_config` with one later task):
task 0 trains unfrozen and fills LUMP's buffer, task 1 is measured. A frozen variant forces its
depth at task 1 (``freeze.threshold=0``, ``freeze.max_depth=D``: every correlation ratio is at
least 0, so the frozen prefix is D blocks), so that the comparison does not hang on what the
correlation measure makes of synthetic images.

Task 1's costs come from its costs.json record: seconds per step of the training loop (the
charged training time less the parts' hooks, over the task's steps; it includes the task's
first step, whose FLOPs and memory are measured), the parts' hooks (the freezing probe), one
step's backward FLOPs and its memory peak (on CUDA the allocator's peak,
``torch.cuda.max_memory_allocated``; on a CPU the live training tensors).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

from kaizen.bench.measure import torch_threads
from kaizen.bench.scaling import scaling_config
from kaizen.config import RunConfig, build_config, to_plain
from kaizen.engine.trainer import ContinualTrainer

PAPER_SAVINGS = {"seconds_per_step": 0.12, "step_memory_bytes": 0.23, "backward_flops": 0.35}
"""The savings the paper reports against LUMP: time, memory, backward FLOPs."""
_COMPARED = {
    "seconds_per_step": "seconds_per_step",
    "charged_seconds_per_step": "charged_seconds_per_step",
    "step_memory_bytes": "step_memory_bytes",
    "backward_flops": "backward_flops_per_step",
}


def freezing_config(config: RunConfig, steps: int, depth: int | None) -> RunConfig:
    """``config`` on two synthetic tasks of ``steps`` steps; with ``depth``, freezing forced
    to that many blocks at task 1 (None: no freezing)."""
    run = scaling_config(config, 1, steps)
    if depth is None:
        return build_config(run.model_dump(), ["freeze.enabled=false"])
    forced = ["freeze.enabled=true", "freeze.threshold=0.0", f"freeze.max_depth={depth}"]
    return build_config(run.model_dump(), forced)


def measure_variant(config: RunConfig) -> dict[str, Any]:
    """Task 1's costs of a run of ``config`` (see the module docstring)."""
    with (
        torch_threads(config.train.num_threads),
        tempfile.TemporaryDirectory(prefix="kaizen-bench-") as folder,
    ):
        result = ContinualTrainer(config, Path(folder), Console(quiet=True)).run()
    record, cost = result.tasks[1], result.costs[1]
    freeze = record.parts.get("freeze", {})
    depth = freeze.get("frozen_depth", 0)
    loop_seconds = cost.train_seconds - cost.hook_seconds
    return {
        "frozen_depth": depth,
        "frozen_blocks": freeze.get("blocks", [])[:depth],
        "steps": record.steps,
        "images_per_step": record.images_seen // record.steps,
        "seconds_per_step": loop_seconds / record.steps,
        "hook_seconds": cost.hook_seconds,
        "charged_seconds_per_step": cost.train_seconds / record.steps,
        "backward_flops_per_step": cost.backward_flops_per_step,
        "step_memory_bytes": cost.step_peak_memory_bytes,
        "step_memory_kind": cost.step_memory_kind,
        "task_peak_memory_bytes": cost.peak_memory_bytes,
        "task_memory_kind": cost.memory_kind,
    }


def savings(frozen: dict[str, Any], plain: dict[str, Any]) -> dict[str, float]:
    """1 - frozen / plain of the time per step (loop alone and charged, with the probe), the
    step's memory peak and its backward FLOPs."""
    return {name: 1.0 - frozen[key] / plain[key] for name, key in _COMPARED.items()}


def measure_freezing(config: RunConfig, depths: list[int], steps: int) -> dict[str, Any]:
    """The plain variant, then one frozen variant per depth of ``depths``, with each frozen
    variant's savings against plain and the paper's savings beside them."""
    plain = measure_variant(freezing_config(config, steps, None))
    variants = {
        f"depth-{depth}": measure_variant(freezing_config(config, steps, depth)) for depth in depths
    }
    return {
        "config": to_plain(freezing_config(config, steps, None)),
        "plain": plain,
        "frozen": variants,
        "savings": {name: savings(variant, plain) for name, variant in variants.items()},
        "paper_savings": PAPER_SAVINGS,
    }


def summary(record: dict[str, Any]) -> list[str]:
    """One line per frozen variant: its blocks and savings against the paper's."""
    paper = record["paper_savings"]
    lines = []
    for name, saving in record["savings"].items():
        blocks = ",".join(record["frozen"][name]["frozen_blocks"]) or "none"
        shown = ", ".join(
            f"{key} {-100 * saving[key]:+.1f}% (paper {-100 * paper[key]:+.0f}%)" for key in paper
        )
        lines.append(f"{name} [{blocks}]: {shown}")
    return lines
