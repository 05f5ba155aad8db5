"""The evaluator's probes: what each encodes, and the task-aware kNN's banks."""

from __future__ import annotations

import pytest
import torch
from lightning.fabric import Fabric

from conftest import tiny_tree
from kaizen.config import build_config
from kaizen.data.stream import load_stream
from kaizen.eval.evaluator import Evaluator, probe_protocols
from kaizen.eval.probes import extract_features, knn_predict
from kaizen.learner.learner import build_learner
from kaizen.ssl.registry import views_of


def _setup(probes: list[str], **settings):
    tree = tiny_tree()
    tree["eval"] = {"probes": probes, **settings}
    config = build_config(tree)
    fabric = Fabric(accelerator="cpu", devices=1)
    stream = load_stream(config, fabric, views_of(config.ssl))
    torch.manual_seed(0)
    learner = build_learner(config, 3, stream.data.num_classes).eval()
    return stream, learner, Evaluator(stream, config.eval, fabric)


def _encoded_images(learner, run) -> int:
    """How many images the backbone encodes while ``run()`` runs."""
    seen: list[int] = []
    handle = learner.backbone.register_forward_hook(lambda _m, args, _o: seen.append(len(args[0])))
    try:
        run()
    finally:
        handle.remove()
    return sum(seen)


@pytest.mark.parametrize(
    ("probes", "task_index", "train_tasks"),
    [(["knn"], 0, 1), (["knn", "linear"], 1, 2), (["knn-task"], 0, 3), (["knn", "knn-task"], 1, 3)],
)
def test_each_training_image_is_encoded_once(probes, task_index, train_tasks):
    stream, learner, evaluator = _setup(probes)
    task = stream.tasks[task_index]
    expected = sum(len(t.train_indices) for t in stream.tasks[:train_tasks])
    expected += 2 * len(stream.test_labels)  # the classifier's predictions and the probes' queries
    encoded = _encoded_images(learner, lambda: evaluator.evaluate(learner, task, None))
    assert encoded == expected


def test_task_aware_knn_uses_each_tasks_own_bank():
    stream, learner, evaluator = _setup(["knn", "knn-task"])
    rows = evaluator.evaluate(learner, stream.tasks[0], None).probes
    test = extract_features(learner.backbone, stream.test_images, stream.normalize, 256)
    for index, each in enumerate(stream.tasks):
        images = stream.train_images.gather(each.train_indices)
        bank = extract_features(learner.backbone, images, stream.normalize, 256)
        queries = each.test_indices
        predicted = knn_predict(
            bank,
            stream.data.train.labels[each.train_indices],
            test[queries],
            k=20,
            temperature=0.07,
        )
        expected = (predicted == stream.test_labels[queries]).float().mean()
        assert rows["knn-task"][index] == pytest.approx(float(expected))


def test_lumps_knn_uses_as_many_neighbours_as_tasks_seen(monkeypatch):
    stream, learner, evaluator = _setup(
        ["knn", "knn-task"], knn_k=200, knn_k_cap="tasks-seen", knn_temperature=0.1
    )
    import kaizen.eval.evaluator as evaluator_module

    calls: list[tuple[int, float]] = []

    def recording(*args, k, temperature):
        calls.append((k, temperature))
        return knn_predict(*args, k=k, temperature=temperature)

    monkeypatch.setattr(evaluator_module, "knn_predict", recording)
    for task in stream.tasks[:2]:
        evaluator.evaluate(learner, task, None)
    # after task 0: one neighbour (the task-agnostic kNN and each task's bank), after task 1: two
    assert calls == [(1, 0.1)] * 4 + [(2, 0.1)] * 4
    assert "k=min(200, tasks seen)" in probe_protocols(evaluator.config)["knn-task"]


def test_seen_classes_restrict_the_argmax_to_the_tasks_trained_so_far():
    stream, learner, evaluator = _setup([], classes="seen")
    with torch.no_grad():
        logits = learner.classify(stream.normalize(stream.test_images))
    for seen_count in (1, 2, 3):
        classes = sorted(c for task in stream.tasks[:seen_count] for c in task.classes)
        expected = torch.tensor(classes)[logits[:, classes].argmax(dim=1)]
        correct = evaluator.classifier_correct(learner, seen_count)
        assert torch.equal(correct, expected == stream.test_labels)
    row = evaluator.evaluate(learner, stream.tasks[0], None).accuracies
    # after the first task, the later tasks' classes take no part: none of their images is right
    assert row[1] == row[2] == 0.0


def test_all_classes_take_part_in_the_argmax_by_default():
    stream, learner, evaluator = _setup([])
    with torch.no_grad():
        logits = learner.classify(stream.normalize(stream.test_images))
    correct = evaluator.classifier_correct(learner, 1)
    assert torch.equal(correct, logits.argmax(dim=1) == stream.test_labels)
