"""Symmetric cross-entropy against its formula on hand-made logits."""

from __future__ import annotations

import math

import pytest
import torch

from kaizen.learner.symmetric_ce import symmetric_cross_entropy


def test_sce_equals_the_formula_on_hand_made_logits():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 3.0]])
    labels = torch.tensor([0, 1])
    p0 = [math.exp(2) / (math.exp(2) + 2), 1 / (math.exp(2) + 2), 1 / (math.exp(2) + 2)]
    z1 = 1 + math.e + math.exp(3)
    p1 = [1 / z1, math.e / z1, math.exp(3) / z1]
    ce = (-math.log(p0[0]) - math.log(p1[1])) / 2
    # reverse CE: -sum_k p_k log(clamp(onehot_k, 1e-4, 1)) = -log(1e-4) * (1 - p_label)
    rce = -math.log(1e-4) * ((1 - p0[0]) + (1 - p1[1])) / 2
    for alpha, beta in ((1.0, 0.1), (0.5, 0.5), (1.0, 0.0)):
        value = symmetric_cross_entropy(logits, labels, alpha, beta)
        assert value.item() == pytest.approx(alpha * ce + beta * rce, rel=1e-6)


def test_reverse_term_vanishes_on_a_confident_right_answer_and_is_bounded():
    labels = torch.tensor([1])
    right = symmetric_cross_entropy(torch.tensor([[-50.0, 50.0]]), labels, 0.0, 1.0)
    wrong = symmetric_cross_entropy(torch.tensor([[50.0, -50.0]]), labels, 0.0, 1.0)
    assert right.item() == pytest.approx(0.0, abs=1e-6)
    assert wrong.item() == pytest.approx(-math.log(1e-4), rel=1e-6)  # its largest value
