"""The SLCA family's pieces: the current-task loss, mean shrinkage, old-task feature scaling,
alignment of frozen heads, and the parts that choose what trains at which rate."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from kaizen.config import build_config
from kaizen.errors import ConfigError
from kaizen.learner.alignment import (
    ClassStatistics,
    align_classifier,
    inference_input_scales,
    sampled_feature_factors,
    shrunk_means,
)
from kaizen.learner.learner import LearnerOutputs, build_learner
from kaizen.learner.optim import (
    CLASSIFIER_GROUP,
    TaskSchedule,
    build_optimizer,
    parameter_groups,
)
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
from kaizen.presets import load_preset, preset_names


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


# ---------------------------------------------------------------------------- adapter placement

RANK = 4
"""SLCA++'s adapter rank."""


def _adapter_parameters(fan_in: int, fan_out: int) -> int:
    """A (rank, in) plus B (out, rank)."""
    return RANK * (fan_in + fan_out)


@pytest.mark.parametrize(
    ("targets", "adapted"),
    [
        (["qkv"], {"attn.qkv"}),
        (["qkv", "fc1", "fc2"], {"attn.qkv", "mlp.fc1", "mlp.fc2"}),
        (["fc2"], {"mlp.fc2"}),
    ],
)
def test_only_the_target_layers_get_adapters(tiny, targets, adapted) -> None:
    tree = tiny("slcapp")  # a two-block ViT-Tiny: width 192, MLP 4 x 192
    tree["strategy"]["lora_targets"] = targets
    config = build_config(tree)
    torch.manual_seed(0)
    learner = build_learner(config, 3, 6, 16, [[0, 1], [2, 3], [4, 5]])
    HybridSlowLearner(settings_of(config, SLCAPlusSettings), config.optim).prepare_learner(learner)

    blocks = learner.backbone.blocks
    for block in (0, 1):
        trainable = {n for n, p in blocks[block].named_parameters() if p.requires_grad}
        layers = {"attn.qkv", "mlp.fc1", "mlp.fc2"}
        assert {n.removesuffix(".lora_a") for n in trainable if n.endswith(".lora_a")} == adapted
        assert {n.removesuffix(".lora_b") for n in trainable if n.endswith(".lora_b")} == adapted
        for name in layers - adapted:  # no adapter at all, not an untrained one
            assert type(blocks[block].get_submodule(name)) is torch.nn.Linear
        assert {f"{name}.bias" for name in layers} <= trainable  # biases train whatever

    def per_block(width: int) -> dict[str, int]:
        return {
            "attn.qkv": _adapter_parameters(width, 3 * width),
            "mlp.fc1": _adapter_parameters(width, 4 * width),
            "mlp.fc2": _adapter_parameters(4 * width, width),
        }

    count = sum(p.numel() for n, p in learner.backbone.named_parameters() if ".lora_" in n)
    assert count == 2 * sum(per_block(192)[name] for name in adapted)
    # whatever the width, the MLP adapters hold 2.5 times the qkv ones (qkv alone is 1/3.5 of
    # all three); for ViT-B/16, 12288 against 30720 parameters a block
    for width in (192, 768):
        layers_of = per_block(width)
        assert layers_of["mlp.fc1"] + layers_of["mlp.fc2"] == 2.5 * layers_of["attn.qkv"]
    assert (per_block(768)["attn.qkv"], 2.5 * per_block(768)["attn.qkv"]) == (12288, 30720)


@pytest.mark.parametrize("targets", [[], ["qkv", "qkv"], ["mlp"]])
def test_lora_targets_must_name_known_layers_once(tiny, targets) -> None:
    tree = tiny("slcapp")
    tree["strategy"]["lora_targets"] = targets
    with pytest.raises(ConfigError, match=r"strategy\.lora_targets"):
        build_config(tree)


# ---------------------------------------------------------------------------- SLCA++'s schedule


def _slcapp_schedule(tiny, preset: str, task: int) -> tuple[torch.optim.Optimizer, TaskSchedule]:
    """The tiny SLCA++ learner's optimiser and schedule at ``task`` under ``preset``'s settings."""
    paper = load_preset(preset)
    tree = tiny("slcapp")
    tree["optim"] = paper["optim"]
    tree["strategy"].update(paper["strategy"])
    tree["train"]["epochs"] = paper["train"]["epochs"]
    config = build_config(tree)
    torch.manual_seed(0)
    learner = build_learner(config, 3, 6, 16, [[0, 1], [2, 3], [4, 5]])
    part = HybridSlowLearner(settings_of(config, SLCAPlusSettings), config.optim)
    part.prepare_learner(learner)
    part.task_index = task
    optimizer = build_optimizer(learner, config.optim, 16, part.parameter_groups)
    return optimizer, TaskSchedule(optimizer, config.optim, STEPS_PER_EPOCH, config.train.epochs)


STEPS_PER_EPOCH = 3


@pytest.mark.parametrize(
    ("preset", "floor"), [("slca-cifar100-slcapp", 1e-4), ("slca-cub200-mocov3-slcapp", 1e-5)]
)
@pytest.mark.parametrize("task", [0, 1])
def test_slcapp_presets_decay_every_group_to_the_released_absolute_floor(
    tiny, preset, floor, task
) -> None:
    optimizer, schedule = _slcapp_schedule(tiny, preset, task)
    names = [group["name"] for group in optimizer.param_groups]
    assert set(names) == {"extractor", "extractor_norms_biases", CLASSIFIER_GROUP, ADAPTER_GROUP}
    schedule.set(0)
    base = {group["name"]: group["lr"] for group in optimizer.param_groups}
    adapter_lr = 0.005 if task == 0 else 0.001  # the released 0.01 x 0.5, then 0.01 x 0.1
    assert base == pytest.approx(
        {
            "extractor": 1e-3,
            "extractor_norms_biases": 1e-3,
            CLASSIFIER_GROUP: 1e-2,
            ADAPTER_GROUP: adapter_lr,
        }
    )
    schedule.set(schedule.total_steps)
    assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([floor] * 4)


def test_slcapps_schedule_is_the_released_per_epoch_cosine(tiny) -> None:
    """Each epoch's rates equal torch's CosineAnnealingLR with eta_min 1e-4, stepped once per
    epoch over the task's epochs, as SLCA++'s released code runs it."""
    optimizer, schedule = _slcapp_schedule(tiny, "slca-cifar100-slcapp", 0)
    reference_groups = [
        {"params": [torch.zeros(1, requires_grad=True)], "lr": group["initial_lr"]}
        for group in optimizer.param_groups
    ]
    reference = torch.optim.SGD(reference_groups, lr=1.0)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(reference, T_max=20, eta_min=1e-4)
    for epoch in range(20):
        for batch in range(STEPS_PER_EPOCH):
            schedule.set(epoch * STEPS_PER_EPOCH + batch)
            ours = [group["lr"] for group in optimizer.param_groups]
            released = [group["lr"] for group in reference.param_groups]
            assert ours == pytest.approx(released, rel=1e-9), (epoch, batch)
        reference.step()
        cosine.step()


# ---------------------------------------------------------------------------- frozen backbone


def _frozen_method_and_learner(tiny, strategy: str, backbone: str = "vit_tiny"):
    tree = tiny(strategy)
    if backbone != "vit_tiny":
        tree["model"] = {"backbone": backbone, "width": 0.25, "heads": "per-task"}
    tree["strategy"]["freeze_backbone"] = True
    tree["model"]["weights"] = "pretrained.safetensors"  # checked by the method, not loaded here
    config = build_config(tree)
    method = build_method(config)
    unloaded = build_config({**tree, "model": {**tree["model"], "weights": None}})
    torch.manual_seed(0)
    learner = build_learner(unloaded, 3, 6, 16, [[0, 1], [2, 3], [4, 5]])
    for part in method.parts:
        part.prepare_learner(learner)
    return config, method, learner


@pytest.mark.parametrize(("strategy", "backbone"), [("slca", "vit_tiny"), ("sl", "convnet")])
def test_a_frozen_backbone_takes_no_step_and_keeps_its_statistics(tiny, strategy, backbone) -> None:
    config, method, learner = _frozen_method_and_learner(tiny, strategy, backbone)
    assert method.has_part("frozen_backbone")
    heads = learner.classifier
    assert isinstance(heads, TaskHeads)
    heads.heads[0].requires_grad_(True)
    heads.heads[1].requires_grad_(False)
    heads.heads[2].requires_grad_(False)
    optimizer = build_optimizer(learner, config.optim, 16, method.parameter_groups)
    assert [group["name"] for group in optimizer.param_groups] == [CLASSIFIER_GROUP]
    backbone_state = {k: v.clone() for k, v in learner.backbone.state_dict().items()}
    head = heads.heads[0].weight.detach().clone()

    learner.train()  # as the trainer sets the learner at each task's start
    images = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1] * 4)
    for _ in range(2):
        logits = learner.classify(images)
        assert not learner.backbone.training and learner.classifier.training
        optimizer.zero_grad()
        F.cross_entropy(logits[:, :2], labels).backward()
        optimizer.step()

    assert all(p.grad is None for p in learner.backbone.parameters())
    for key, value in learner.backbone.state_dict().items():  # weights and running statistics
        assert torch.equal(value, backbone_state[key]), key
    assert not torch.equal(heads.heads[0].weight, head)


def test_a_frozen_backbone_is_refused_with_lora_or_without_weights(tiny) -> None:
    tree = tiny("slcapp")
    tree["strategy"]["freeze_backbone"] = True
    tree["model"]["weights"] = "pretrained.safetensors"
    with pytest.raises(ConfigError, match="contradicts slcapp"):
        build_method(build_config(tree))
    tree = tiny("slca")
    tree["strategy"]["freeze_backbone"] = True
    with pytest.raises(ConfigError, match=r"give model\.weights"):
        build_method(build_config(tree))


# ---------------------------------------------------------------------------- MoCo v3 presets


@pytest.mark.parametrize("benchmark", ["cifar100", "imagenetr", "cub200", "cars196"])
def test_mocov3_presets_carry_the_released_epochs_milestones_and_floor(benchmark) -> None:
    for strategy in ("seqft", "sl", "slca", "slcapp", "joint"):
        name = f"slca-{benchmark}-mocov3-{strategy}"
        assert name in preset_names()
        mocov3 = build_config(load_preset(name))
        in21k = build_config(load_preset(f"slca-{benchmark}-{strategy}"))
        assert mocov3.name == name and mocov3.strategy.name == strategy
        assert str(mocov3.model.weights) == "weights/mocov3-vit-base-300ep.pth"
        assert mocov3.train.epochs == 90
        milestones = [60, 80] if strategy == "slcapp" else [80]
        assert mocov3.optim.milestones == milestones
        assert mocov3.optim.min_lr == (1e-5 if strategy == "slcapp" else in21k.optim.min_lr)
        assert mocov3.strategy == in21k.strategy and mocov3.classifier == in21k.classifier
        assert mocov3.data == in21k.data and mocov3.model.backbone == in21k.model.backbone
        assert mocov3.optim.weight_decay == in21k.optim.weight_decay


def test_mocov3_has_presets_for_the_papers_benchmarks_only() -> None:
    with pytest.raises(ConfigError, match="unknown preset 'slca-fmnist-mocov3-slca'"):
        load_preset("slca-fmnist-mocov3-slca")
    with pytest.raises(ConfigError, match="unknown preset"):
        load_preset("slca-cifar100-dino-slca")


def test_slca_presets_train_as_the_released_code(tiny) -> None:
    slca = build_config(load_preset("slca-cifar100-slca"))
    slcapp = build_config(load_preset("slca-cifar100-slcapp"))
    for config in (slca, slcapp):
        assert config.train.precision == "32" and config.optim.weight_decay_on == "all"
        assert not config.strategy.freeze_backbone
    assert slcapp.strategy.lora_targets == ["qkv"]
    assert settings_of(build_config(tiny("slcapp")), SLCAPlusSettings).lora_targets == [
        "qkv",
        "fc1",
        "fc2",
    ]
