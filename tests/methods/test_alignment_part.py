"""The classifier-alignment part in a run: statistics per task, the aligned classifier for the
evaluation, the trained one back for the next task, and its state through a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from lightning.fabric import Fabric

import kaizen
from kaizen.config import build_config
from kaizen.data.stream import load_stream
from kaizen.learner.learner import build_learner
from kaizen.methods.build import build_method
from kaizen.methods.parts.alignment import ClassifierAlignment
from kaizen.methods.seam import RunContext
from kaizen.ssl.registry import views_of


def _run_context(tiny):
    tree = tiny("kaizen")
    tree["classifier"] = {"align": True}
    config = build_config(tree)
    fabric = Fabric(accelerator="cpu", devices=1)
    stream = load_stream(config, fabric, views_of(config.ssl))
    learner = build_learner(config, 3, 6)
    return config, RunContext(stream, fabric, learner, stream.tasks[0])


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in module.state_dict().items()}


def test_alignment_then_rollback_and_its_checkpointed_state(tiny) -> None:
    config, run = _run_context(tiny)
    part = ClassifierAlignment(config.classifier, seed=0, memory=[])
    trained = _state(run.learner.classifier)
    part.end_task(run)
    assert part.statistics is not None and part.statistics.classes == list(run.current.classes)
    aligned = _state(run.learner.classifier)
    assert any(not torch.equal(aligned[k], trained[k]) for k in trained)
    # a restored part puts the trained classifier back when the next task starts
    restored = ClassifierAlignment(config.classifier, seed=0, memory=[])
    restored.load_state_dict(part.state_dict(), run)
    run.task = run.stream.tasks[1]
    restored.start_task(run)
    for key, value in trained.items():
        assert torch.equal(run.learner.classifier.state_dict()[key], value), key
    assert restored.trained is None
    restored.end_task(run)  # task 1 adds its classes, task 0's statistics are kept
    assert restored.statistics is not None
    assert restored.statistics.classes == sorted(
        [*run.stream.tasks[0].classes, *run.current.classes]
    )
    torch.testing.assert_close(
        restored.statistics.covariance(run.stream.tasks[0].classes[0]),
        part.statistics.covariance(run.stream.tasks[0].classes[0]),
    )


def test_every_strategy_takes_alignment_as_its_first_part(tiny) -> None:
    for strategy in ("finetune", "kaizen", "lump"):
        tree = tiny(strategy)
        tree["classifier"] = {"align": True}
        names = [part.name for part in build_method(build_config(tree)).parts]
        assert names[0] == "align"  # rolled back before a teacher snapshots the classifier
        assert names.count("align") == 1


def test_an_aligned_run_trains_the_same_backbone(tiny, tmp_path: Path) -> None:
    results = {}
    for name, align in (("plain", False), ("aligned", True)):
        tree = tiny("kaizen")
        tree["classifier"] = {"align": align}
        tree["eval"] = {"probes": ["knn"]}
        kaizen.run(tree, tmp_path / name)
        results[name] = json.loads((tmp_path / name / "results.json").read_text())
    plain, aligned = results["plain"], results["aligned"]
    # alignment only changes the classifier the evaluation reads, never what training sees
    assert plain["probes"]["knn"]["values"] == aligned["probes"]["knn"]["values"]
    assert plain["accuracy_matrix"]["values"] != aligned["accuracy_matrix"]["values"]


def test_replay_statistics_follow_the_backbone(tiny) -> None:
    from kaizen.methods.seam import Part

    config, run = _run_context(tiny)
    first = run.stream.tasks[0]

    class KeepsFirstTask(Part):
        name = "memory"

        def memory_indices(self) -> torch.Tensor:
            return first.labelled_indices

    settings = config.classifier.model_copy(update={"align_statistics": "replay"})
    part = ClassifierAlignment(settings, seed=0, memory=[KeepsFirstTask()])
    part.end_task(run)
    assert part.statistics is not None
    stored = part.statistics.means[first.classes[0]].clone()
    with torch.no_grad():  # the backbone drifts during the next task
        for parameter in run.learner.backbone.parameters():
            parameter.mul_(1.5)
    run.task = run.stream.tasks[1]
    part.start_task(run)
    part.end_task(run)
    assert not torch.allclose(part.statistics.means[first.classes[0]], stored)


def test_no_labelled_image_leaves_the_classifier_as_trained(tiny, tmp_path: Path) -> None:
    tree = tiny("lump")
    tree["classifier"] = {"align": True}
    tree["scenario"]["label_fraction"] = [0.0, 1.0, 1.0]  # task 0 has no label to align on
    kaizen.run(tree, tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["complete"]
    plain = tiny("lump")
    plain["scenario"]["label_fraction"] = [0.0, 1.0, 1.0]
    kaizen.run(plain, tmp_path / "plain")
    first_rows = json.loads((tmp_path / "plain" / "results.json").read_text())
    # task 0: nothing aligned, the same classifier; task 1 on: aligned, so different
    assert saved["accuracy_matrix"]["values"][0] == first_rows["accuracy_matrix"]["values"][0]
    assert saved["accuracy_matrix"]["values"][1:] != first_rows["accuracy_matrix"]["values"][1:]
