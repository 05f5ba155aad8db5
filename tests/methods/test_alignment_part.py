"""The classifier-alignment part in a run: statistics per task, the aligned classifier for the
evaluation, the trained one back for the next task, its state through a checkpoint, the first
aligned task, statistics from all the data so far, and its settings' mistakes refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from lightning.fabric import Fabric

import kaizen
from kaizen.cli import main
from kaizen.config import build_config
from kaizen.data.stream import load_stream
from kaizen.eval.probes import extract_features
from kaizen.learner.alignment import COVARIANCE_RIDGE
from kaizen.learner.learner import build_learner
from kaizen.methods.build import build_method
from kaizen.methods.parts.alignment import ClassifierAlignment
from kaizen.methods.seam import RunContext
from kaizen.ssl.registry import views_of


def _run_context(tiny, **classifier):
    tree = tiny("kaizen")
    tree["classifier"] = {"align": True, **classifier}
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


def _drift_through_the_next_task(run, part: ClassifierAlignment) -> None:
    """Train task 1 as far as the part can tell: the backbone drifts, then the task ends."""
    with torch.no_grad():
        for parameter in run.learner.backbone.parameters():
            parameter.mul_(1.5)
    run.task = run.stream.tasks[1]
    part.start_task(run)
    part.end_task(run)


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
    _drift_through_the_next_task(run, part)
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


def _same(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(module.state_dict()[key], value) for key, value in state.items())


def test_tasks_before_align_from_task_are_evaluated_with_the_trained_classifier(tiny) -> None:
    config, run = _run_context(tiny, align_from_task=1)
    part = ClassifierAlignment(config.classifier, seed=0, memory=[])
    trained = _state(run.learner.classifier)
    part.end_task(run)
    # task 0 stores its statistics and leaves the classifier as trained
    assert part.statistics is not None and part.statistics.classes == list(run.current.classes)
    assert part.trained is None and _same(run.learner.classifier, trained)
    run.task = run.stream.tasks[1]
    part.start_task(run)  # nothing to put back: task 1 trains on from the trained classifier
    assert _same(run.learner.classifier, trained)
    with torch.no_grad():  # what training task 1 does to the classifier
        for parameter in run.learner.classifier.parameters():
            parameter.add_(0.5)
    trained_on_task_1 = _state(run.learner.classifier)
    part.end_task(run)
    assert part.trained is not None
    assert all(torch.equal(part.trained[k], v) for k, v in trained_on_task_1.items())
    assert not _same(run.learner.classifier, trained_on_task_1)


def test_all_data_statistics_are_those_of_every_image_of_the_class_now(tiny) -> None:
    config, run = _run_context(tiny, align_statistics="all-data")
    assert config.scenario.label_fraction == 1.0  # every training image is labelled
    part = ClassifierAlignment(config.classifier, seed=0, memory=[])
    part.end_task(run)
    first = run.stream.tasks[0]
    assert part.statistics is not None
    stored = part.statistics.means[first.classes[0]].clone()
    _drift_through_the_next_task(run, part)
    stream = run.stream
    for label in [*first.classes, *run.current.classes]:
        rows = torch.nonzero(stream.data.train.labels == label).flatten()
        images = stream.train_images.gather(rows)
        features = extract_features(run.learner.backbone, images, stream.normalize, 64).double()
        torch.testing.assert_close(
            part.statistics.means[label], features.mean(dim=0), rtol=1e-5, atol=1e-5
        )
        expected = torch.cov(features.T)
        expected += COVARIANCE_RIDGE * torch.eye(len(expected), dtype=torch.float64)
        torch.testing.assert_close(
            part.statistics.covariance(label),
            expected,
            rtol=1e-4,
            atol=1e-4 * expected.abs().max().item(),
        )
    assert not torch.allclose(part.statistics.means[first.classes[0]], stored)


@pytest.mark.parametrize(
    ("classifier", "message"),
    [
        ({"align_from_task": 3}, "classifier.align_from_task=3 but the run has 3 tasks"),
        ({"align_sampling": "sometimes"}, "align_sampling"),
        ({"align_schedule": "cosine"}, "align_schedule"),
        ({"align_batch_size": 0}, "align_batch_size"),
        ({"align_statistics": "oracle"}, "align_statistics"),
    ],
    ids=["from-task-beyond-the-last", "sampling", "schedule", "batch-size", "statistics"],
)
def test_a_mistake_in_the_alignment_settings_is_one_line_and_exit_2(
    classifier: dict, message: str, tiny, tmp_path: Path, capsys
) -> None:
    tree = tiny("slca")
    tree["classifier"].update(classifier)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tree))
    out = tmp_path / "run"
    assert main(["run", str(config), "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1, error
    assert not (out / "checkpoints").exists()
