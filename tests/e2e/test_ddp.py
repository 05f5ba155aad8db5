"""A 2-process CPU run (DDP over gloo, launched by Fabric) against a 1-process run.

With the same global batch, the processes draw the same batches and replay samples and each
trains on its half; gradients are averaged and contrastive losses see both halves. The runs
differ in BatchNorm statistics (per process on CPU: synchronised BatchNorm needs GPUs) and in
the augmentation draws, so they agree within a tolerance, not bit for bit: the kNN probe's final
accuracy within 0.15 and the classifier's within 0.25, on the same images processed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

import kaizen


def test_two_processes_match_one_process_with_the_same_global_batch(tiny, tmp_path: Path) -> None:
    tree = tiny("kaizen", "simclr")
    tree["train"].update({"epochs": 3, "num_threads": 1})
    single = kaizen.run(tree, tmp_path / "single")

    tree["train"].update({"devices": 2, "strategy": "ddp"})
    config = tmp_path / "ddp.yaml"
    config.write_text(yaml.safe_dump(tree))
    run_dir = tmp_path / "ddp"
    completed = subprocess.run(
        [sys.executable, "-m", "kaizen.cli", "run", str(config), "--out", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    parallel = json.loads((run_dir / "results.json").read_text())

    assert parallel["environment"]["processes"] == "2"
    assert parallel["complete"]
    assert [t["images_seen"] for t in parallel["tasks"]] == [t.images_seen for t in single.tasks]
    metrics, reference = parallel["metrics"], single.metrics
    assert (
        abs(metrics["knn_final_accuracy"]["value"] - reference["knn_final_accuracy"].value) <= 0.15
    )
    assert abs(metrics["final_accuracy"]["value"] - reference["final_accuracy"].value) <= 0.25
    # one writer: the run directory holds one set of files and one checkpoint per task
    assert len(list((run_dir / "checkpoints").glob("*.pt"))) == 3


def test_lumps_step_wise_buffer_is_the_same_on_two_processes_as_on_one(
    tiny, tmp_path: Path
) -> None:
    """Every process offers the global batch to the reservoir and gathers the stored views, so
    the buffer holds the images a 1-process run keeps, each with a view of the right shape."""
    import torch

    tree = tiny("lump", "simclr")
    tree["strategy"].update({"buffer_update": "step", "buffer_views": "stored"})
    tree["train"].update({"epochs": 1, "num_threads": 1})
    kaizen.run(tree, tmp_path / "single")
    tree["train"].update({"devices": 2, "strategy": "ddp"})
    config = tmp_path / "ddp.yaml"
    config.write_text(yaml.safe_dump(tree))
    completed = subprocess.run(
        [sys.executable, "-m", "kaizen.cli", "run", str(config), "--out", str(tmp_path / "ddp")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    buffers = [
        torch.load(sorted((tmp_path / name / "checkpoints").glob("*.pt"))[-1], weights_only=True)[
            "method"
        ]["mixup"]
        for name in ("single", "ddp")
    ]
    assert torch.equal(buffers[0]["indices"], buffers[1]["indices"])
    assert buffers[1]["views"].shape == buffers[0]["views"].shape
    assert buffers[0]["seen"] == buffers[1]["seen"] > len(buffers[0]["indices"])
