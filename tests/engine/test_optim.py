"""Optimisation: warm-up + cosine schedule, parameter groups and the LARS update."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from conftest import small_learner_config
from kaizen.config import OptimConfig, build_config
from kaizen.errors import ConfigError
from kaizen.learner.learner import Learner, build_learner
from kaizen.learner.optim import LARS, TaskSchedule, build_optimizer, lr_factor, parameter_groups

pytestmark = pytest.mark.usefixtures("one_thread")


def _learner(ssl: str = "simclr") -> Learner:
    config = small_learner_config(ssl)
    torch.manual_seed(0)
    return build_learner(config, in_channels=1, num_classes=4)


# ---------------------------------------------------------------------------- lr_factor


def test_lr_factor_warm_up_is_linear_from_start_to_one():
    # 100 steps, 10 of warm-up from 0.003
    assert lr_factor(0, 100, 10, 0.003, 0.0) == pytest.approx(0.003)
    assert lr_factor(5, 100, 10, 0.003, 0.0) == pytest.approx(0.003 + 0.997 / 2)  # half way
    assert lr_factor(10, 100, 10, 0.003, 0.0) == pytest.approx(1.0)  # end of warm-up


def test_lr_factor_cosine_by_hand():
    # 110 steps, 10 of warm-up: the cosine runs over the remaining 100 steps
    # a quarter through (step 35): (1 + cos(pi / 4)) / 2 = (1 + 0.7071068) / 2 = 0.8535534
    assert lr_factor(35, 110, 10, 0.003, 0.0) == pytest.approx(0.8535534, rel=1e-6)
    # half way (step 60): (1 + cos(pi / 2)) / 2 = 0.5
    assert lr_factor(60, 110, 10, 0.003, 0.0) == pytest.approx(0.5)
    # with a floor of 0.1 the half-way factor is 0.1 + 0.9 * 0.5 = 0.55
    assert lr_factor(60, 110, 10, 0.003, 0.1) == pytest.approx(0.55)
    # the last step reaches the floor, and stays there
    assert lr_factor(110, 110, 10, 0.003, 0.0) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(110, 110, 10, 0.003, 0.1) == pytest.approx(0.1)
    assert lr_factor(500, 110, 10, 0.003, 0.1) == pytest.approx(0.1)


def test_lr_factor_without_warm_up_starts_at_one():
    assert lr_factor(0, 50, 0, 0.003, 0.0) == pytest.approx(1.0)
    assert lr_factor(25, 50, 0, 0.003, 0.0) == pytest.approx(0.5)


def test_lr_factor_decreases_monotonically_after_warm_up():
    factors = [lr_factor(step, 40, 5, 0.01, 0.0) for step in range(5, 41)]
    assert all(a >= b for a, b in itertools.pairwise(factors))


# ---------------------------------------------------------------------------- TaskSchedule


def test_task_schedule_sets_each_group_lr_to_its_initial_lr_times_the_factor():
    first, second = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD(
        [{"params": [first], "initial_lr": 4.0}, {"params": [second], "initial_lr": 0.3}], lr=1.0
    )
    config = OptimConfig(lr=2.0, warmup_epochs=1, warmup_start_lr=0.2, min_lr=0.0)
    # 10 steps per epoch x 3 epochs; warm-up over 10 steps from 0.2 / 2.0 = 0.1
    schedule = TaskSchedule(optimizer, config, steps_per_epoch=10, epochs=3)
    expected = {
        0: (0.4, 0.03),  # factor 0.1
        5: (2.2, 0.165),  # factor 0.1 + 0.9 / 2 = 0.55
        10: (4.0, 0.3),  # factor 1
        20: (2.0, 0.15),  # half way through the cosine: 0.5
        30: (0.0, 0.0),  # end
    }
    for step, (lr_first, lr_second) in expected.items():
        schedule.set(step)
        lrs = [group["lr"] for group in optimizer.param_groups]
        assert lrs == pytest.approx([lr_first, lr_second], abs=1e-12), step


def test_task_schedule_warm_up_longer_than_the_task_is_cut_to_the_task():
    parameter = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [parameter], "initial_lr": 1.0}], lr=1.0)
    config = OptimConfig(lr=1.0, warmup_epochs=10, warmup_start_lr=0.0)
    schedule = TaskSchedule(optimizer, config, steps_per_epoch=4, epochs=2)
    assert schedule.total_steps == 8
    assert schedule.warmup_steps == 8
    schedule.set(4)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5)


def test_epoch_updates_with_absolute_bounds_follow_the_released_kaizen_schedule():
    """Lightning Bolts' LinearWarmupCosineAnnealingLR, stepped per epoch: every group starts at
    the same absolute lr, reaches its base lr at epoch warmup - 1, then a cosine over epochs."""
    first, second = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD(
        [{"params": [first], "initial_lr": 1.0}, {"params": [second], "initial_lr": 0.1}], lr=1.0
    )
    config = OptimConfig(
        lr=1.0,
        warmup_epochs=3,
        warmup_start_lr=0.003,
        min_lr=0.0,
        lr_update="epoch",
        lr_bounds="absolute",
    )
    schedule = TaskSchedule(optimizer, config, steps_per_epoch=4, epochs=7)
    expected = {
        0: (0.003, 0.003),  # both groups at the absolute start
        3: (0.003, 0.003),  # unchanged within the epoch
        4: (0.5015, 0.0515),  # epoch 1: half way, (base - 0.003) / (3 - 1) per epoch
        8: (1.0, 0.1),  # epoch 2 = warmup - 1: the base lr
        12: (1.0, 0.1),  # epoch 3: the cosine's start
        20: (0.5, 0.05),  # epoch 5: half way through 4 cosine epochs
    }
    for step, lrs in expected.items():
        schedule.set(step)
        assert [g["lr"] for g in optimizer.param_groups] == pytest.approx(lrs, abs=1e-12), step


def test_relative_bounds_scale_the_start_by_each_group_and_absolute_do_not():
    parameter, other = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    groups = [{"params": [parameter], "initial_lr": 2.0}, {"params": [other], "initial_lr": 0.1}]
    for bounds, expected in (("relative", [0.2, 0.01]), ("absolute", [0.2, 0.2])):
        optimizer = torch.optim.SGD([dict(g) for g in groups], lr=1.0)
        config = OptimConfig(lr=2.0, warmup_epochs=1, warmup_start_lr=0.2, lr_bounds=bounds)
        TaskSchedule(optimizer, config, steps_per_epoch=10, epochs=2).set(0)
        assert [g["lr"] for g in optimizer.param_groups] == pytest.approx(expected), bounds


def test_lars_classifier_puts_the_classifier_group_under_lars():
    learner = _learner()
    *_, classifier = parameter_groups(learner, OptimConfig(lars_classifier=True), batch_size=256)
    assert classifier["lars"] is True


# ---------------------------------------------------------------------------- parameter groups


def test_parameter_groups_separate_classifier_weights_and_norms_and_biases():
    learner = _learner()
    config = OptimConfig(
        lr=2.0, classifier_lr=0.05, weight_decay=1e-4, classifier_weight_decay=3e-3
    )
    weights, others, classifier = parameter_groups(learner, config, batch_size=128)
    ids = [{id(p) for p in group["params"]} for group in (weights, others, classifier)]

    assert ids[2] == {id(p) for p in learner.classifier.parameters()}
    assert classifier["initial_lr"] == pytest.approx(0.05)  # not scaled by the batch
    assert classifier["weight_decay"] == pytest.approx(3e-3)
    assert classifier["lars"] is False

    assert weights["initial_lr"] == pytest.approx(1.0)  # 2.0 * 128 / 256
    assert weights["weight_decay"] == pytest.approx(1e-4)
    assert weights["lars"] is True
    assert others["initial_lr"] == pytest.approx(1.0)
    assert others["weight_decay"] == 0.0
    assert others["lars"] is False

    # named examples: convolution weights decay, BatchNorm weights and biases do not
    conv, bn = learner.backbone.features[0], learner.backbone.features[1]
    assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
    assert id(conv.weight) in ids[0]
    assert id(bn.weight) in ids[1] and id(bn.bias) in ids[1]
    linear_bias = learner.ssl.projector[-1].bias
    assert id(linear_bias) in ids[1]
    assert all(p.ndim > 1 for p in weights["params"])
    assert all(p.ndim <= 1 for p in others["params"])

    # every trainable parameter in exactly one group
    every = [id(p) for p in learner.parameters() if p.requires_grad]
    assert sorted(every) == sorted(i for group in ids for i in group)
    assert sum(len(group) for group in ids) == len(every)


@pytest.mark.parametrize(("decay_on", "norm_decay"), [("weights", 0.0), ("all", 0.1)])
def test_weight_decay_on_all_also_decays_norms_and_biases(decay_on, norm_decay):
    learner = _learner()
    config = OptimConfig(
        name="sgd",
        lr=0.5,
        momentum=0.0,
        weight_decay=0.1,
        weight_decay_on=decay_on,
        scale_lr_by_batch=False,
    )
    weights, norms_biases, classifier = parameter_groups(learner, config, batch_size=256)
    assert (weights["weight_decay"], weights["lars"]) == (0.1, True)
    assert (norms_biases["weight_decay"], norms_biases["lars"]) == (norm_decay, False)
    assert classifier["weight_decay"] == config.classifier_weight_decay

    # a step with zero gradients moves a parameter by decay alone: w <- w (1 - lr wd)
    optimizer = build_optimizer(learner, config, batch_size=256)
    conv, bn = learner.backbone.features[0], learner.backbone.features[1]
    before = [t.detach().clone() for t in (conv.weight, bn.weight)]
    for parameter in learner.parameters():
        parameter.grad = torch.zeros_like(parameter) if parameter.requires_grad else None
    optimizer.step()
    torch.testing.assert_close(conv.weight, before[0] * (1 - 0.5 * 0.1))
    torch.testing.assert_close(bn.weight, before[1] * (1 - 0.5 * norm_decay))


def test_an_unknown_weight_decay_scope_is_a_config_error():
    with pytest.raises(ConfigError, match=r"optim\.weight_decay_on"):
        build_config({"optim": {"weight_decay_on": "norms"}})


def test_parameter_groups_leave_out_frozen_momentum_parameters():
    learner = _learner("byol")
    frozen = {id(p) for p in learner.parameters() if not p.requires_grad}
    assert frozen  # the momentum encoder
    groups = parameter_groups(learner, OptimConfig(), batch_size=256)
    grouped = {id(p) for group in groups for p in group["params"]}
    assert not grouped & frozen
    assert grouped == {id(p) for p in learner.parameters() if p.requires_grad}


def test_batch_scaling_of_the_lr_can_be_turned_off():
    learner = _learner()
    groups = parameter_groups(learner, OptimConfig(lr=0.3, scale_lr_by_batch=False), 512)
    assert groups[0]["initial_lr"] == pytest.approx(0.3)
    groups = parameter_groups(learner, OptimConfig(lr=0.3), 512)
    assert groups[0]["initial_lr"] == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("name", "kind"), [("lars", LARS), ("sgd", torch.optim.SGD), ("adamw", torch.optim.AdamW)]
)
def test_build_optimizer_starts_each_group_at_its_initial_lr(name, kind):
    learner = _learner()
    config = OptimConfig(name=name, lr=0.5, classifier_lr=0.07)
    optimizer = build_optimizer(learner, config, batch_size=256)
    assert isinstance(optimizer, kind)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.5, 0.5, 0.07])


# ---------------------------------------------------------------------------- LARS


def _lars_step(lr: float, clip: bool) -> torch.Tensor:
    weight = nn.Parameter(torch.tensor([[3.0, 4.0], [0.0, 0.0]]))  # ||w|| = 5
    weight.grad = torch.tensor([[0.3, 0.4], [0.0, 0.0]])  # ||g|| = 0.5
    optimizer = LARS(
        [{"params": [weight], "weight_decay": 0.1}], lr=lr, momentum=0.9, eta=0.02, clip=clip
    )
    optimizer.step()
    return weight.detach()


def test_lars_step_by_hand_with_clipping_inactive():
    # trust ratio = eta ||w|| / (||g|| + wd ||w||) = 0.02 * 5 / (0.5 + 0.1 * 5) = 0.1
    # lr 0.5: the effective rate is min(0.1, lr) = 0.1
    # step = 0.1 * (g + wd w) = 0.1 * [[0.3 + 0.3, 0.4 + 0.4], [0, 0]] = [[0.06, 0.08], [0, 0]]
    expected = torch.tensor([[3.0 - 0.06, 4.0 - 0.08], [0.0, 0.0]])
    torch.testing.assert_close(_lars_step(lr=0.5, clip=True), expected)


def test_lars_step_by_hand_with_clipping_active():
    # same trust ratio 0.1 but lr 0.05: the effective rate is clipped at lr = 0.05
    # step = 0.05 * [[0.6, 0.8], [0, 0]] = [[0.03, 0.04], [0, 0]]
    expected = torch.tensor([[3.0 - 0.03, 4.0 - 0.04], [0.0, 0.0]])
    torch.testing.assert_close(_lars_step(lr=0.05, clip=True), expected)


def test_lars_step_by_hand_without_clipping():
    # without clipping the rate is lr * ratio = 0.05 * 0.1 = 0.005
    # step = 0.005 * [[0.6, 0.8], [0, 0]] = [[0.003, 0.004], [0, 0]]
    expected = torch.tensor([[3.0 - 0.003, 4.0 - 0.004], [0.0, 0.0]])
    torch.testing.assert_close(_lars_step(lr=0.05, clip=False), expected)


def test_lars_with_zero_weights_falls_back_to_sgd():
    weight = nn.Parameter(torch.zeros(2, 2))
    weight.grad = torch.ones(2, 2)
    LARS([{"params": [weight]}], lr=0.1, eta=0.02).step()
    torch.testing.assert_close(weight.detach(), torch.full((2, 2), -0.1))


def _run(optimizer_factory, grads: list[torch.Tensor], start: torch.Tensor) -> torch.Tensor:
    parameter = nn.Parameter(start.clone())
    optimizer = optimizer_factory(parameter)
    for grad in grads:
        parameter.grad = grad.clone()
        optimizer.step()
    return parameter.detach()


@pytest.mark.parametrize(
    ("shape", "lars"),
    [((3,), False), ((3,), True), ((2, 3), False)],  # rank-1 params are never LARS-scaled
)
def test_non_lars_parameters_follow_sgd_with_momentum(shape, lars):
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(shape, generator=generator)
    grads = [torch.randn(shape, generator=generator) for _ in range(3)]
    ours = _run(
        lambda p: LARS(
            [{"params": [p], "lars": lars, "weight_decay": 0.01}], lr=0.1, momentum=0.9, eta=0.02
        ),
        grads,
        start,
    )
    reference = _run(
        lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01), grads, start
    )
    torch.testing.assert_close(ours, reference)
    assert not torch.allclose(ours, start)


def test_lars_momentum_by_hand_over_two_steps():
    # w = [[3, 4]], ||w|| = 5, no weight decay, eta 0.02, lr 1, momentum 0.5, clip
    # step 1: g = [[0.6, 0.8]], ||g|| = 1, ratio = 0.02 * 5 / 1 = 0.1 (< lr: not clipped)
    #         buffer = 0.1 g = [[0.06, 0.08]]; w = [[2.94, 3.92]]
    # step 2: g = [[0.6, 0.8]], ||w|| = 4.9, ratio = 0.098
    #         buffer = 0.5 * [[0.06, 0.08]] + 0.098 * [[0.6, 0.8]] = [[0.0888, 0.1184]]
    #         w = [[2.94 - 0.0888, 3.92 - 0.1184]]
    weight = nn.Parameter(torch.tensor([[3.0, 4.0]]))
    optimizer = LARS([{"params": [weight]}], lr=1.0, momentum=0.5, eta=0.02)
    for _ in range(2):
        weight.grad = torch.tensor([[0.6, 0.8]])
        optimizer.step()
    expected = torch.tensor([[2.94 - 0.0888, 3.92 - 0.1184]])
    torch.testing.assert_close(weight.detach(), expected)


def test_a_constant_schedule_keeps_the_base_lr_after_the_warm_up():
    parameter = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [parameter], "initial_lr": 0.03}], lr=1.0)
    config = OptimConfig(lr=1.0, warmup_epochs=1, warmup_start_lr=0.0, schedule="constant")
    schedule = TaskSchedule(optimizer, config, steps_per_epoch=4, epochs=3)
    lrs = []
    for step in range(12):
        schedule.set(step)
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs[:4] == pytest.approx([0.0, 0.0075, 0.015, 0.0225])  # the warm-up as before
    assert lrs[4:] == pytest.approx([0.03] * 8)  # then no decay at all
