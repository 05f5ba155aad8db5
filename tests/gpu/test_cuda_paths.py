"""The CUDA paths of training, run on a GPU machine (`benchmarks/gpu/check.sh`); skipped without
a CUDA GPU and counted in pytest's summary."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

import kaizen
from kaizen.cli import main
from kaizen.config import TrainConfig
from kaizen.data.store import ImageStore
from kaizen.engine.step import prepare_learner
from kaizen.learner.learner import build_learner

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

CUDA = ["train.accelerator=cuda"]


def _results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def _finished_with_finite_metrics(run_dir: Path) -> dict:
    results = _results(run_dir)
    assert results["complete"]
    assert all(
        math.isfinite(metric["value"])
        for metric in results["metrics"].values()
        if metric["value"] is not None
    )
    return results


def _drop_newest_checkpoint(run_dir: Path) -> None:
    newest = sorted((run_dir / "checkpoints").glob("*.pt"))[-1]
    newest.unlink()
    newest.with_name(newest.name + ".sha256").unlink()


def test_the_image_store_on_the_gpu_and_in_pinned_host_memory():
    images = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    indices = torch.tensor([3, 1, 60])
    resident = ImageStore(images, torch.device("cuda"))
    assert resident.resident and resident.images.is_cuda and resident.index_device.type == "cuda"
    assert torch.equal(resident.gather(indices.cuda()).cpu(), images[indices])
    pinned = ImageStore(images, torch.device("cuda"), max_device_fraction=0.0)
    assert not pinned.resident and pinned.images.is_pinned()
    batch = pinned.gather(indices)
    assert batch.is_cuda and torch.equal(batch.cpu(), images[indices])


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_mixed_precision_runs_have_finite_losses(precision: str, tiny, tmp_path: Path):
    # a non-finite loss would stop the run with NonFiniteLossError
    kaizen.run(tiny("kaizen"), tmp_path, [*CUDA, f"train.precision={precision}"])
    results = _finished_with_finite_metrics(tmp_path)
    assert results["environment"]["device"].startswith("cuda")
    assert results["environment"]["precision"] == precision


def test_channels_last_on_cuda_matches_channels_first(tiny, tmp_path: Path):
    last = kaizen.run(tiny("kaizen"), tmp_path / "last", [*CUDA, "train.channels_last=true"])
    first = kaizen.run(tiny("kaizen"), tmp_path / "first", [*CUDA, "train.channels_last=false"])
    for row, other in zip(last.accuracy_matrix, first.accuracy_matrix, strict=True):
        assert row == pytest.approx(other, abs=0.13)


def test_a_compiled_backbone_trains(tiny, tmp_path: Path):
    kaizen.run(tiny("kaizen"), tmp_path, [*CUDA, "train.compile=true"])
    _finished_with_finite_metrics(tmp_path)


def test_a_checkpoint_written_on_cuda_resumes_on_cpu_and_the_reverse(tiny, tmp_path: Path):
    for start, then in ((CUDA, ["train.accelerator=cpu"]), (["train.accelerator=cpu"], CUDA)):
        run_dir = tmp_path / start[0].split("=")[1]
        kaizen.run(tiny("kaizen"), run_dir, start)
        finished = _results(run_dir)
        _drop_newest_checkpoint(run_dir)
        assert main(["resume", str(run_dir), *then]) == 0
        resumed = _finished_with_finite_metrics(run_dir)
        assert resumed["environment"]["device"].split(":")[0] == then[0].split("=")[1]
        # the tasks before the checkpoint are the ones the first device trained
        rows = finished["accuracy_matrix"]["values"][:2]
        assert resumed["accuracy_matrix"]["values"][:2] == rows


def test_sync_batchnorm_in_one_process(tiny, tmp_path: Path):
    from conftest import small_learner_config

    learner = build_learner(small_learner_config(), 3, 6)
    synced = prepare_learner(learner, TrainConfig(sync_batchnorm=True, channels_last=False))
    kinds = {type(module) for module in synced.modules()}
    assert nn.SyncBatchNorm in kinds and nn.BatchNorm2d not in kinds
    kaizen.run(tiny("kaizen"), tmp_path, [*CUDA, "train.sync_batchnorm=true"])
    _finished_with_finite_metrics(tmp_path)
