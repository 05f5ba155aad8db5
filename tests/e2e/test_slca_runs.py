"""The SLCA family end to end on synthetic data, and its configuration mistakes refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

import kaizen
from kaizen import testpoints
from kaizen.api import resume
from kaizen.cli import main
from kaizen.engine.interrupt import RunInterrupted
from kaizen.methods.strategies.slca import FAMILY
from kaizen.models.backbones import build_backbone


def _results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


@pytest.mark.parametrize("strategy", [*FAMILY, "joint"])
def test_each_strategy_of_the_family_runs_end_to_end(strategy: str, tiny, tmp_path: Path) -> None:
    tree = tiny("slca") if strategy == "joint" else tiny(strategy)
    tree["strategy"]["name"] = strategy
    if strategy == "joint":
        tree["model"]["heads"] = "single"
        tree["model"]["classifier_hidden_dim"] = None
    kaizen.run(tree, tmp_path)
    results = _results(tmp_path)
    assert results["complete"] and len(results["accuracy_matrix"]["values"]) == 3
    parts = set(results["tasks"][-1].get("parts", {}))
    assert parts == ({"hybrid"} if strategy == "slcapp" else set())


def test_slcapp_keeps_adapters_and_aligned_heads_with_their_inference_scales(
    tiny, tmp_path: Path
) -> None:
    kaizen.run(tiny("slcapp"), tmp_path)
    newest = sorted((tmp_path / "checkpoints").glob("*.pt"))[-1]
    state = torch.load(newest, weights_only=True)
    learner = state["learner"]
    assert "backbone.blocks.1.mlp.fc2.lora_b" in learner
    assert learner["backbone.blocks.1.mlp.fc2.lora_b"].abs().sum() > 0  # the adapter trained
    torch.testing.assert_close(learner["classifier.input_scales"], torch.tensor([1.04, 1.02, 1.0]))
    trained = state["method"]["align"]["trained"]
    assert torch.equal(trained["input_scales"], torch.ones(3))  # rolled back before a next task
    hybrid = _results(tmp_path)["tasks"][0]["parts"]["hybrid"]
    assert hybrid["trainable_backbone_parameters"] > 0


def _edit(tree: dict, section: str, **values) -> dict:
    tree[section] = {**tree.get(section, {}), **values}
    return tree


BAD = {
    "lora-without-linear-layers": (
        lambda t: _edit(t, "model", backbone="convnet", width=0.25, depth=None),
        "LoRA needs linear layers",
    ),
    "family-with-ssl": (lambda t: _edit(t, "ssl", method="simclr"), "set ssl.method=none"),
    "family-without-end-to-end": (
        lambda t: _edit(t, "strategy", end_to_end=False),
        "set strategy.end_to_end=true",
    ),
    "family-with-one-head": (
        lambda t: _edit(t, "model", heads="single"),
        "set model.heads=per-task",
    ),
    "per-task-heads-on-shared-classes": (
        lambda t: _edit(t, "scenario", kind="data-incremental"),
        "disjoint classes",
    ),
    "alignment-without-statistics": (
        lambda t: _edit(t, "scenario", label_fraction=0.0),
        "alignment needs class statistics",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_mistake_in_the_familys_config_is_one_line_and_exit_2(
    case: str, tiny, tmp_path: Path, capsys
) -> None:
    edit, message = BAD[case]
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(edit(tiny("slcapp"))))
    out = tmp_path / "run"
    assert main(["run", str(config), "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1
    assert not (out / "checkpoints").exists()


def test_a_self_supervised_strategy_without_ssl_is_refused(tiny, tmp_path: Path, capsys) -> None:
    tree = tiny("kaizen")
    tree["ssl"] = {"method": "none"}
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tree))
    assert main(["run", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "choose an SSL method" in capsys.readouterr().err


def test_a_frozen_backbone_stays_as_loaded_through_an_interrupted_and_resumed_run(
    tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    pretrained = build_backbone("vit_tiny", image_size=16, patch_size=4, depth=2)
    weights = tmp_path / "vit.pth"
    torch.save(pretrained.state_dict(), weights)
    tree = tiny("slca")
    tree["model"]["weights"] = str(weights)
    tree["strategy"]["freeze_backbone"] = True
    kaizen.run(tree, tmp_path / "straight")
    with monkeypatch.context() as patched:  # SIGINT inside task 1: a checkpoint, then a stop
        patched.setenv(testpoints.KILL_VARIABLE, "step 1.0.1")
        patched.setenv(testpoints.SIGNAL_VARIABLE, "INT")
        with pytest.raises(RunInterrupted):
            kaizen.run(tree, tmp_path / "interrupted")
    resume(tmp_path / "interrupted")
    results = _results(tmp_path / "interrupted")
    assert results == _results(tmp_path / "straight") and results["complete"]
    checkpoints = sorted((tmp_path / "interrupted" / "checkpoints").glob("*.pt"))
    assert checkpoints
    for checkpoint in checkpoints:
        learner = torch.load(checkpoint, weights_only=True)["learner"]
        for key, value in pretrained.state_dict().items():
            assert torch.equal(learner[f"backbone.{key}"], value), (checkpoint.name, key)
