"""The classifier's corrections as parts of any strategy: where they sit among the parts, which
kept images the re-fit reads, the buffer it keeps itself through a checkpoint, and weight
aligning at a task's end."""

from __future__ import annotations

import torch
from lightning.fabric import Fabric

from kaizen.config import build_config
from kaizen.data.stream import load_stream
from kaizen.learner.learner import build_learner
from kaizen.methods.build import build_method
from kaizen.methods.parts.refit import ClassifierRefit
from kaizen.methods.parts.weight_align import WeightAligning
from kaizen.methods.seam import RunContext
from kaizen.ssl.registry import views_of


def _method_and_run(tiny, strategy: str, **classifier):
    tree = tiny(strategy)
    tree["classifier"] = classifier
    config = build_config(tree)
    fabric = Fabric(accelerator="cpu", devices=1)
    stream = load_stream(config, fabric, views_of(config.ssl))
    learner = build_learner(config, 3, 6)
    return build_method(config), RunContext(stream, fabric, learner, stream.tasks[0])


def test_the_corrections_come_first_in_every_strategy(tiny) -> None:
    for strategy in ("finetune", "cassle", "kaizen", "joint"):
        method, _ = _method_and_run(tiny, strategy, refit=True, weight_align=True, align=True)
        names = [part.name for part in method.parts]
        assert names[:3] == ["refit", "weight_align", "align"], strategy


def test_the_named_strategy_refits_first_and_only_once(tiny) -> None:
    for classifier in ({}, {"refit": True, "weight_align": True, "align": True}):
        method, _ = _method_and_run(tiny, "kaizen-refit", **classifier)
        names = [part.name for part in method.parts]
        assert names[0] == "refit" and names.count("refit") == 1, names
        assert names[1:] == [
            *(["weight_align", "align"] if classifier else []),
            "teacher",
            "replay",
        ]


def test_the_refit_reads_the_replay_before_it_takes_the_task(tiny) -> None:
    method, run = _method_and_run(tiny, "kaizen", refit=True)
    refit, replay = method.parts[0], method.parts[-1]
    assert isinstance(refit, ClassifierRefit) and refit.buffer is None
    for task in run.stream.tasks[:2]:
        run.task = task
        before = _classifier_state(run)
        method_end_task(method, run)
        assert any(not torch.equal(before[k], v) for k, v in _classifier_state(run).items())
    assert refit.report() == {"kept_images": len(replay.memory_indices())}


def test_a_strategy_without_replay_gets_the_refits_own_buffer_in_its_checkpoint(tiny) -> None:
    method, run = _method_and_run(tiny, "joint", refit=True)
    refit = method.parts[0]
    assert isinstance(refit, ClassifierRefit) and refit.buffer is not None
    method_end_task(method, run)
    kept = refit.buffer.indices.clone()
    labels = run.stream.data.train.labels[kept]
    assert len(kept) > 0 and set(labels.tolist()) == set(run.current.classes)
    restored, _ = _method_and_run(tiny, "joint", refit=True)
    restored.load_state_dict(method.state_dict(), run)
    assert torch.equal(restored.parts[0].buffer.indices, kept)


def test_weight_aligning_scales_the_new_classes_at_a_later_tasks_end(tiny) -> None:
    method, run = _method_and_run(tiny, "finetune", weight_align=True)
    part = method.parts[0]
    assert isinstance(part, WeightAligning)
    output = run.learner.classifier.net[-1]
    method_end_task(method, run)
    assert part.gamma == 1.0  # no earlier classes at the first task
    run.task = run.stream.tasks[1]
    old, new = sorted(run.stream.tasks[0].classes), sorted(run.current.classes)
    with torch.no_grad():
        output.weight[new] *= 3.0
    method_end_task(method, run)
    norms = output.weight.detach().norm(dim=1)
    torch.testing.assert_close(norms[new].mean(), norms[old].mean())
    assert part.report()["gamma"] < 1.0


def _classifier_state(run: RunContext) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in run.learner.classifier.state_dict().items()}


def method_end_task(method, run: RunContext) -> None:
    for part in method.parts:
        part.end_task(run)
