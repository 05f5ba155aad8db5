"""End-to-end runs of every strategy and SSL method on synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import kaizen
from kaizen.methods.registry import METHODS
from kaizen.presets import SSL_NAMES


def _read(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


@pytest.mark.parametrize("strategy", sorted(METHODS))
def test_every_strategy_completes_a_sequence(strategy: str, tiny, tmp_path: Path) -> None:
    result = kaizen.run(tiny(strategy), tmp_path)
    saved = _read(tmp_path)
    matrix = saved["accuracy_matrix"]["values"]
    assert saved["complete"] is True
    assert len(matrix) == 3 and all(len(row) == 3 for row in matrix)
    assert all(0.0 <= value <= 1.0 for row in matrix for value in row)
    assert matrix == result.accuracy_matrix
    assert set(saved["metrics"]) >= {
        "final_accuracy",
        "average_continual_accuracy",
        "forgetting",
        "backward_transfer",
    }
    assert all(metric["protocol"] for metric in saved["metrics"].values())
    # one checkpoint at the end of each task, each with its checksum file
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("*.pt")) == [
        "ckpt-t001-e00000-b0000000.pt",
        "ckpt-t002-e00000-b0000000.pt",
        "ckpt-t003-e00000-b0000000.pt",
    ]
    assert len(list((tmp_path / "checkpoints").glob("*.pt.sha256"))) == 3
    lines = (tmp_path / "metrics.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + 3


@pytest.mark.parametrize("ssl", SSL_NAMES)
def test_kaizen_runs_with_every_ssl_method(ssl: str, tiny, tmp_path: Path) -> None:
    result = kaizen.run(tiny("kaizen", ssl), tmp_path)
    assert len(result.accuracy_matrix) == 3
    assert all(0.0 <= value <= 1.0 for value in result.accuracy_matrix[-1])


def test_replay_and_cumulative_data_set_the_images_seen(tiny, tmp_path: Path) -> None:
    # 2 classes x 24 images per task, batch 16 -> 3 steps per epoch.
    finetune = kaizen.run(tiny("finetune"), tmp_path / "finetune")
    joint = kaizen.run(tiny("joint"), tmp_path / "joint")
    replay_batch = 4
    assert [t.images_seen for t in finetune.tasks] == [
        48,
        48 + 3 * replay_batch,
        48 + 3 * replay_batch,
    ]
    assert [t.images_seen for t in joint.tasks] == [48, 96, 144]


def test_same_seed_gives_the_same_matrix_and_another_seed_differs(tiny, tmp_path: Path) -> None:
    first = kaizen.run(tiny("kaizen"), tmp_path / "a")
    second = kaizen.run(tiny("kaizen"), tmp_path / "b")
    other = kaizen.run(tiny("kaizen"), tmp_path / "c", overrides=["seed=1"])
    assert first.accuracy_matrix == second.accuracy_matrix
    assert first.accuracy_matrix != other.accuracy_matrix


def test_channels_first_gives_the_same_accuracies_as_the_default_channels_last(
    tiny, tmp_path: Path
) -> None:
    default = kaizen.run(tiny("kaizen"), tmp_path / "default")
    nchw = kaizen.run(tiny("kaizen"), tmp_path / "nchw", overrides=["train.channels_last=false"])
    for row, other in zip(default.accuracy_matrix, nchw.accuracy_matrix, strict=True):
        assert row == pytest.approx(other, abs=0.13)


def _classifier_weights(run_dir: Path) -> dict:
    import torch

    newest = sorted((run_dir / "checkpoints").glob("*.pt"))[-1]
    learner = torch.load(newest, weights_only=True)["learner"]
    return {key: value for key, value in learner.items() if key.startswith("classifier.")}


@pytest.mark.parametrize(
    "variant",
    [
        "strategy.classifier_distill_classes=seen",
        "strategy.classifier_distill_rows=replay",
        "strategy.classifier_distill_temperature=2.0",
    ],
)
def test_each_classifier_distillation_variant_trains_another_classifier(
    variant: str, tiny, tmp_path: Path
) -> None:
    import torch

    paper = tmp_path / "paper"
    kaizen.run(tiny("kaizen"), paper)
    kaizen.run(tiny("kaizen"), tmp_path / "variant", overrides=[variant])
    assert _read(tmp_path / "variant")["complete"]
    ours, theirs = _classifier_weights(tmp_path / "variant"), _classifier_weights(paper)
    assert ours.keys() == theirs.keys()
    assert any(not torch.equal(ours[key], theirs[key]) for key in ours)


def test_kaizen_replay_kd_is_kaizen_with_the_replay_rows_option(tiny, tmp_path: Path) -> None:
    import torch

    named = tmp_path / "named"
    kaizen.run(tiny("kaizen-replay-kd"), named)
    kaizen.run(tiny("kaizen"), tmp_path / "option", ["strategy.classifier_distill_rows=replay"])
    ours, theirs = _classifier_weights(named), _classifier_weights(tmp_path / "option")
    assert all(torch.equal(ours[key], theirs[key]) for key in ours)


def test_kaizen_refit_is_kaizen_with_the_refit_option(tiny, tmp_path: Path) -> None:
    import torch

    named = tmp_path / "named"
    kaizen.run(tiny("kaizen-refit"), named)
    kaizen.run(tiny("kaizen"), tmp_path / "options", ["classifier.refit=true"])
    kaizen.run(tiny("kaizen"), tmp_path / "paper")
    ours, theirs = _classifier_weights(named), _classifier_weights(tmp_path / "options")
    assert all(torch.equal(ours[key], theirs[key]) for key in ours)
    paper = _classifier_weights(tmp_path / "paper")
    assert any(not torch.equal(ours[key], paper[key]) for key in ours)
