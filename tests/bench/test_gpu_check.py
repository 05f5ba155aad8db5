"""The prepared GPU check runs every step on the CPU in its dry-run mode, so it cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_gpu_check_dry_run_writes_every_part(tmp_path: Path) -> None:
    environment = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", "benchmarks/gpu/check.sh", "--dry-run"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "bench-cpu.json",
        "fmnist-comparison.json",
        "freezing-cpu.json",
        "gpu-tests.json",
    ]
    records = {path.stem: json.loads(path.read_text()) for path in tmp_path.iterdir()}
    for record in records.values():
        assert {"device", "torch", "cuda"} <= set(record["environment"]) and record["command"]
    tests = records["gpu-tests"]
    # without a GPU every gpu test is collected, skipped and counted
    assert tests["total"] == tests["skipped"] >= 7 and tests["failed"] == 0
    bench = records["bench-cpu"]
    assert bench["speedup"] > 0 and bench["paper_run"]["total_minutes"] > 0
    freezing = records["freezing-cpu"]
    assert freezing["frozen"]["depth-3"]["frozen_depth"] == 3
    assert freezing["plain"]["frozen_depth"] == 0
    # three frozen stages skip their weight gradients: fewer backward FLOPs, whatever the clock
    assert freezing["savings"]["depth-3"]["backward_flops"] > 0
    assert freezing["paper_savings"] == {
        "seconds_per_step": 0.12,
        "step_memory_bytes": 0.23,
        "backward_flops": 0.35,
    }
    comparison = records["fmnist-comparison"]
    assert sorted(comparison["runs"]) == [
        "simclr-cassle-seed0",
        "simclr-finetune-seed0",
        "simclr-kaizen-seed0",
    ]
    assert all(run["complete"] for run in comparison["runs"].values())
    assert comparison["epochs_per_task"] >= 1
