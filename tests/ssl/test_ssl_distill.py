"""Distillation losses: hand values, properties, stop-gradient on the teacher, dispatch."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from kaizen.errors import ConfigError
from kaizen.ssl.distill import (
    DISTILL_LOSSES,
    contrastive_distill,
    decorrelative_distill,
    distill_loss,
    distill_predictor,
    predictive_distill,
    predictive_mse_distill,
)

R = 1 / math.sqrt(2)


def test_contrastive_distill_hand_value() -> None:
    # p rows (1, 0), (1, 1)/sqrt 2; teacher rows (1, 0), (0, 1); temperature 1.
    p = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    teacher = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    p_to_teacher = ((-1 + math.log(math.e + 1)) + math.log(2)) / 2
    teacher_to_p = ((-1 + math.log(math.e + math.exp(R))) + (-R + math.log(1 + math.exp(R)))) / 2
    expected = (p_to_teacher + teacher_to_p) / 2
    assert contrastive_distill(p, teacher, 1.0).item() == pytest.approx(expected, rel=1e-6)


def test_contrastive_distill_symmetric_in_its_arguments() -> None:
    gen = torch.Generator().manual_seed(0)
    p, teacher = torch.randn(6, 4, generator=gen), torch.randn(6, 4, generator=gen)
    assert contrastive_distill(p, teacher).item() == pytest.approx(
        contrastive_distill(teacher, p).item(), rel=1e-6
    )


@pytest.mark.parametrize("kind", sorted(DISTILL_LOSSES))
def test_distill_lower_when_matching_than_shuffled(kind: str) -> None:
    teacher = torch.randn(8, 6, generator=torch.Generator().manual_seed(1))
    matched = distill_loss(kind, teacher.clone(), teacher, 0.2)
    shuffled = distill_loss(kind, teacher.roll(1, dims=0), teacher, 0.2)
    assert matched < shuffled


def test_predictive_distill_hand_value_and_zero() -> None:
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    teacher = torch.tensor([[-2.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    expected = (4 + 0 + (2 - 2 * R)) / 3
    assert predictive_distill(p, teacher).item() == pytest.approx(expected, rel=1e-6)
    assert predictive_distill(p, 5 * p).item() == pytest.approx(0.0, abs=1e-6)


def test_predictive_mse_distill_hand_value() -> None:
    p = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    teacher = torch.tensor([[1.0, 0.0], [0.0, 4.0]])
    assert predictive_mse_distill(p, teacher).item() == pytest.approx((0 + 4 + 9 + 0) / 4)


@pytest.mark.parametrize("kind", sorted(DISTILL_LOSSES))
def test_no_gradient_reaches_teacher(kind: str) -> None:
    gen = torch.Generator().manual_seed(2)
    p = torch.randn(6, 4, generator=gen, requires_grad=True)
    teacher = torch.randn(6, 4, generator=gen, requires_grad=True)
    distill_loss(kind, p, teacher, 0.2).backward()
    assert teacher.grad is None
    assert p.grad is not None and p.grad.abs().sum() > 0


def test_distill_loss_dispatch_uses_temperature_for_contrastive_only() -> None:
    gen = torch.Generator().manual_seed(3)
    p, teacher = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen)
    assert distill_loss("contrastive", p, teacher, 0.5) == contrastive_distill(p, teacher, 0.5)
    assert distill_loss("predictive", p, teacher, 0.5) == predictive_distill(p, teacher)
    assert distill_loss("predictive_mse", p, teacher, 9.0) == predictive_mse_distill(p, teacher)
    assert distill_loss("decorrelative", p, teacher, 9.0) == decorrelative_distill(p, teacher)


def test_distill_loss_unknown_kind() -> None:
    with pytest.raises(ConfigError, match="valid: contrastive, decorrelative, predictive, predic"):
        distill_loss("clustering", torch.zeros(2, 2), torch.zeros(2, 2), 0.2)


def test_distill_predictor_layout() -> None:
    predictor = distill_predictor(16, hidden_dim=32)
    layers = list(predictor.children())
    assert [type(layer) for layer in layers] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert (layers[0].in_features, layers[0].out_features) == (16, 32)
    assert (layers[3].in_features, layers[3].out_features) == (32, 16)
    assert predictor(torch.randn(5, 16)).shape == (5, 16)
    assert next(iter(distill_predictor(8).children())).out_features == 2048
