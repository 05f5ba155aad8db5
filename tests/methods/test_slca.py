"""The SLCA family's pieces: the current-task loss, mean shrinkage, old-task feature scaling,
alignment of frozen heads, and the parts that choose what trains at which rate."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from kaizen.config import build_config
from kaizen.learner.alignment import (
    ClassStatistics,
    align_classifier,
    inference_input_scales,
    sampled_feature_factors,
    shrunk_means,
)
from kaizen.learner.learner import LearnerOutputs, build_learner
from kaizen.learner.optim import CLASSIFIER_GROUP, parameter_groups
from kaizen.learner.symmetric_ce import symmetric_cross_entropy
from kaizen.learner.terms import StepTensors, current_task_term
from kaizen.methods.build import build_method
from kaizen.methods.parts.hybrid import ADAPTER_GROUP, HybridSlowLearner
from kaizen.methods.parts.one_lr import OneLearningRate
from kaizen.methods.registry import settings_of
from kaizen.methods.seam import TaskClasses
from kaizen.methods.strategies.slca import SLCAPlusSettings
from kaizen.models.heads import TaskHeads
from kaizen.models.lora import LoRALinear


def _step(logits: torch.Tensor, labels: torch.Tensor) -> StepTensors:
    outputs = LearnerOutputs(logits, logits, logits, None)
    return StepTensors(logits, labels, outputs, None, views_per_image=1)


def test_the_current_task_loss_is_cross_entropy_over_that_tasks_columns_only() -> None:
    logits = torch.randn(5, 6)
    labels = torch.tensor([3, 5, -1, 0, 3])  # -1: unlabelled; 0: another task's class
    value = current_task_term([3, 5], "ce")(_step(logits, labels))
    expected = F.cross_entropy(logits[[0, 1, 4]][:, [3, 5]], torch.tensor([0, 1, 0]))
    torch.testing.assert_close(value, expected)
    none_counted = current_task_term([3, 5], "ce")(_step(logits, torch.tensor([0, 1, -1, 2, 4])))
    assert none_counted.item() == 0.0


def test_the_sce_variant_matches_the_formula_on_the_counted_rows() -> None:
    logits = torch.randn(4, 4)
    labels = torch.tensor([2, 3, 1, -1])
    value = current_task_term([2, 3], "sce", 0.5, 0.5)(_step(logits, labels))
    current = logits[:2][:, [2, 3]]
    probabilities = current.softmax(dim=1)
    ce = F.cross_entropy(current, torch.tensor([0, 1]))
    rce = (-math.log(1e-4) * (1 - probabilities[[0, 1], [0, 1]])).mean()
    torch.testing.assert_close(value, 0.5 * ce + 0.5 * rce)
    counted = symmetric_cross_entropy(current, torch.tensor([0, 1]), 0.5, 0.5)
    torch.testing.assert_close(value, counted)


def test_slcas_mean_shrinkage_and_slcapps_scaling_follow_their_formulas() -> None:
    assert shrunk_means(2, [0, 1, 2]) == pytest.approx([0.9 + 0.1 / 3, 0.9 + 0.2 / 3, 1.0])
    ages = torch.tensor([0.0, 1.0, 3.0]).repeat_interleave(1000)
    factors = sampled_feature_factors(ages, 0.02, torch.Generator().manual_seed(0))
    assert torch.equal(factors[:1000], torch.ones(1000))
    for age, chunk in ((1, factors[1000:2000]), (3, factors[2000:])):
        assert chunk.min() >= 1 / (1 + 0.03 * age) and chunk.max() <= 1 / (1 + 0.01 * age)
        assert chunk.std() > 0  # jittered per sample
    torch.testing.assert_close(
        inference_input_scales(2, 0.02, 4), torch.tensor([1.04, 1.02, 1.0, 1.0])
    )


def _statistics(classes: list[int], dim: int = 4) -> ClassStatistics:
    statistics = ClassStatistics(dim)
    generator = torch.Generator().manual_seed(1)
    features = torch.cat([torch.randn(20, dim, generator=generator) + 3 * c for c in classes])
    statistics.add(features, torch.tensor(classes).repeat_interleave(20))
    return statistics


def _align_two_tasks(heads: TaskHeads, **options) -> None:
    """One short alignment of ``heads`` over two tasks of two classes each."""
    align_classifier(
        heads,
        _statistics([0, 1, 2, 3]),
        [[0, 1], [2, 3]],
        torch.Generator().manual_seed(0),
        samples_per_class=8,
        epochs=1,
        **options,
    )


def test_alignment_trains_frozen_heads_and_freezes_them_again() -> None:
    heads = TaskHeads(4, 4, [[0, 1], [2, 3]])
    heads.heads[0].requires_grad_(False)
    before = [p.clone() for p in heads.parameters()]
    _align_two_tasks(heads)
    assert all(not torch.equal(a, b) for a, b in zip(before, heads.parameters(), strict=True))
    assert [p.requires_grad for p in heads.parameters()] == [False, False, True, True]


def test_shrinkage_and_scaling_change_what_alignment_samples() -> None:
    def aligned(**options) -> torch.Tensor:
        torch.manual_seed(0)
        heads = TaskHeads(4, 4, [[0, 1], [2, 3]])
        _align_two_tasks(heads, **options)
        return heads.heads[0].weight.detach()

    plain = aligned()
    assert not torch.equal(plain, aligned(mean_factors=[0.95, 1.0]))
    assert not torch.equal(plain, aligned(ages=[1, 0], feature_scale=0.02))
    assert torch.equal(plain, aligned(mean_factors=[1.0, 1.0]))


def _pretrained_config(tiny, strategy: str):
    return build_config(tiny(strategy))


def test_the_hybrid_slow_learner_trains_adapters_norms_biases_and_cls_only(tiny) -> None:
    config = _pretrained_config(tiny, "slcapp")
    learner = build_learner(config, 3, 6, 16, [[0, 1], [2, 3], [4, 5]])
    qkv = learner.backbone.blocks[0].attn.qkv.weight.detach().clone()
    part = HybridSlowLearner(settings_of(config, SLCAPlusSettings), config.optim)
    part.prepare_learner(learner)
    adapted = [m for m in learner.backbone.modules() if isinstance(m, LoRALinear)]
    assert len(adapted) == 3 * 2  # qkv, fc1, fc2 of both blocks
    assert adapted[0].lora_a.shape[0] == 4 and adapted[0].scale == 0.8
    assert torch.equal(learner.backbone.blocks[0].attn.qkv.weight, qkv)
    trainable = {n for n, p in learner.backbone.named_parameters() if p.requires_grad}
    assert "blocks.0.attn.qkv.lora_a" in trainable and "cls_token" in trainable
    assert "blocks.0.norm1.weight" in trainable and "blocks.0.mlp.fc1.bias" in trainable
    assert "blocks.0.attn.qkv.weight" not in trainable and "pos_embed" not in trainable
    groups = part.parameter_groups(parameter_groups(learner, config.optim, 16))
    adapters = next(g for g in groups if g["name"] == ADAPTER_GROUP)
    assert len(adapters["params"]) == 12 and adapters["initial_lr"] == 0.005
    assert sum(len(g["params"]) for g in groups) == sum(
        p.requires_grad for p in learner.parameters()
    )
    part.task_index = 1
    groups = part.parameter_groups(parameter_groups(learner, config.optim, 16))
    assert next(g for g in groups if g["name"] == ADAPTER_GROUP)["initial_lr"] == 0.001


def test_sequential_fine_tuning_trains_everything_at_the_heads_rate(tiny) -> None:
    config = _pretrained_config(tiny, "seqft")
    learner = build_learner(config, 3, 6, 16, [[0, 1], [2, 3], [4, 5]])
    groups = OneLearningRate().parameter_groups(parameter_groups(learner, config.optim, 16))
    assert {g["initial_lr"] for g in groups} == {config.optim.classifier_lr}
    slow = parameter_groups(learner, config.optim, 16)
    assert {g["initial_lr"] for g in slow if g["name"] != CLASSIFIER_GROUP} == {config.optim.lr}


def test_the_family_trains_the_current_tasks_head_with_its_own_loss(tiny) -> None:
    from lightning.fabric import Fabric

    from kaizen.data.stream import load_stream
    from kaizen.methods.seam import RunContext
    from kaizen.ssl.registry import views_of

    config = _pretrained_config(tiny, "slcapp")
    method = build_method(config)
    stream = load_stream(config, Fabric(accelerator="cpu", devices=1), views_of(config.ssl))
    learner = build_learner(config, 3, 6, 16, [t.classes for t in stream.tasks])
    for part in method.parts:
        part.prepare_learner(learner)
    run = RunContext(stream, Fabric(accelerator="cpu", devices=1), learner, stream.tasks[1])
    next(p for p in method.parts if p.name == "task_heads").start_task(run)
    assert [h.weight.requires_grad for h in learner.classifier.heads] == [False, True, False]
    terms = method.terms(learner, None, run.task_classes)
    assert [term.name for term in terms] == ["sce"]
    assert [
        term.name
        for term in build_method(_pretrained_config(tiny, "sl")).terms(
            learner, None, TaskClasses([], [2, 3])
        )
    ] == ["ce"]
