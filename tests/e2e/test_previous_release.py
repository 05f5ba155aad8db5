"""Run directories written by the previous release resume, update and predict with this one.

The fixtures (tests/fixtures/previous-release, see its README) were made by the code of the
release before the config's strategy records and the package layers: interrupted runs whose
config.yaml and checkpoints have the old layout (``lump:`` and ``slca:`` at the root, every
strategy setting under ``strategy:``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import kaizen
from kaizen.cli import main
from kaizen.config import load_yaml, same_run, to_plain, upgrade_layout, validate_config
from kaizen.methods.strategies.lump import LumpSettings
from kaizen.methods.strategies.slca import SLCAPlusSettings
from kaizen.storage.rundir import read_run_config

PREVIOUS = Path(__file__).parents[1] / "fixtures" / "previous-release"
OPEN_GATE = ["gate.max_old_drop=1", "gate.max_flip_rate=1"]


def _copy(strategy: str, tmp_path: Path) -> Path:
    run_dir = tmp_path / strategy
    shutil.copytree(PREVIOUS / strategy, run_dir)
    return run_dir


def _outcome(results: dict) -> dict:
    return {key: results[key] for key in ("accuracy_matrix", "metrics", "tasks")}


@pytest.mark.parametrize("strategy", ["kaizen", "lump"])
def test_an_interrupted_run_of_the_previous_release_resumes_to_its_results(
    strategy: str, tmp_path: Path
) -> None:
    run_dir = _copy(strategy, tmp_path)
    assert main(["resume", str(run_dir)]) == 0
    results = json.loads((run_dir / "results.json").read_text())
    expected = json.loads((run_dir / "expected-results.json").read_text())
    # the same numbers as the previous release's uninterrupted run of the same config; later
    # releases add each probe's forgetting and the pooled final accuracy
    added = {f"{probe}_forgetting" for probe in results["probes"]} | {"pooled_final_accuracy"}
    assert set(results["metrics"]) == set(expected["metrics"]) | added
    results["metrics"] = {key: results["metrics"][key] for key in expected["metrics"]}
    assert _outcome(results) == expected
    assert "lump" not in results["config"] and "slca" not in results["config"]


def test_a_run_of_the_previous_release_updates_and_predicts(tmp_path: Path) -> None:
    run_dir = _copy("kaizen", tmp_path)
    assert main(["resume", str(run_dir)]) == 0
    rng = np.random.default_rng(0)
    npz = tmp_path / "arrived.npz"
    images = rng.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)
    labels = np.array([0, 1] * 6)
    np.savez(npz, x=images, y=labels, class_names=np.array(["kite", "owl"]))
    outcome = kaizen.update(run_dir, npz, overrides=OPEN_GATE)
    assert outcome.version == "v4" and outcome.promoted
    model = kaizen.load_model(run_dir)
    predictions = model.predict(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous())
    assert len(predictions) == 12
    assert {p.classes[0] for p in predictions} <= set(model.class_names)
    assert model.class_names[-2:] == ("kite", "owl")


def test_the_previous_layout_moves_a_methods_settings_into_its_record(tmp_path: Path) -> None:
    lump = read_run_config(PREVIOUS / "lump")
    assert isinstance(lump.strategy, LumpSettings) and lump.strategy.buffer_size == 32
    run_dir = tmp_path / "slcapp"
    run_dir.mkdir()
    shutil.copy(PREVIOUS / "slcapp-config.yaml", run_dir / "config.yaml")
    slcapp = read_run_config(run_dir)
    assert isinstance(slcapp.strategy, SLCAPlusSettings)
    assert (slcapp.strategy.lora_rank, slcapp.strategy.end_to_end) == (4, True)
    # a checkpoint's config in the old layout still describes the same run
    old_tree = load_yaml(PREVIOUS / "kaizen" / "config.yaml")
    assert same_run(old_tree, validate_config(upgrade_layout(old_tree)))
    assert upgrade_layout(to_plain(slcapp)) == to_plain(slcapp)
