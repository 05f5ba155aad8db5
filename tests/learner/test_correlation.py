"""Task correlation: linear CKA, covariance alignment of unpaired sets, per-block values of a
backbone and the frozen prefix they select."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from kaizen.learner.correlation import (
    block_correlations,
    covariance_alignment,
    frozen_prefix,
    linear_cka,
    ranked_blocks,
)
from kaizen.models.backbones import build_backbone


def _randn(*shape: int, seed: int = 0) -> Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _orthogonal(size: int, seed: int) -> Tensor:
    q, _ = torch.linalg.qr(_randn(size, size, seed=seed))
    return q


def _diagonal_covariance_set(variances: list[float]) -> Tensor:
    """Rows +-a e_k: centred, with covariance proportional to diag(variances)."""
    rows = []
    for channel, variance in enumerate(variances):
        row = torch.zeros(len(variances), dtype=torch.float64)
        row[channel] = math.sqrt(variance)
        rows.extend((row, -row))
    return torch.stack(rows)


# --- linear CKA -------------------------------------------------------------------------------


def test_linear_cka_of_a_representation_with_itself_is_one():
    x = _randn(20, 5)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)


def test_linear_cka_known_value():
    # Two orthogonal columns of equal norm; y keeps the first: ||Y^T X||^2 = s^2,
    # ||X^T X|| = s sqrt(2), ||Y^T Y|| = s, so CKA = 1 / sqrt(2).
    x = _diagonal_covariance_set([1.0, 1.0])
    assert linear_cka(x, x[:, :1]) == pytest.approx(1 / math.sqrt(2), abs=1e-12)


def test_linear_cka_invariances():
    x, y = _randn(30, 4, seed=1), _randn(30, 6, seed=2) + _randn(30, 1, seed=3)
    value = linear_cka(x, y)
    assert 0 < value < 1
    transformed = linear_cka(3 * x @ _orthogonal(4, 4) + 7, -0.5 * y @ _orthogonal(6, 5) - 2)
    assert transformed == pytest.approx(value, abs=1e-12)
    assert linear_cka(y, x) == pytest.approx(value, abs=1e-12)
    # Not invariant to a general invertible linear map.
    stretch = torch.diag(torch.tensor([10.0, 1.0, 1.0, 0.1], dtype=torch.float64))
    assert abs(linear_cka(x @ stretch, y) - value) > 1e-3


def test_linear_cka_needs_paired_rows():
    with pytest.raises(ValueError, match="same examples"):
        linear_cka(_randn(10, 3), _randn(11, 3))


# --- covariance alignment ---------------------------------------------------------------------


def test_identical_covariance_gives_one_without_pairing():
    x = _randn(40, 6, seed=1) @ _randn(6, 6, seed=2)
    # Other rows, another order, another count, negated, shifted and scaled: same covariance
    # up to a positive factor.
    y = torch.cat([x, x])[torch.randperm(80, generator=torch.Generator().manual_seed(3))]
    assert covariance_alignment(x, -2.5 * y + 4) == pytest.approx(1.0, abs=1e-12)
    assert covariance_alignment(x.float(), x.float()) == pytest.approx(1.0, abs=1e-12)


def test_orthogonal_subspaces_give_zero():
    x = torch.cat([_randn(15, 3, seed=1), torch.zeros(15, 3, dtype=torch.float64)], dim=1)
    y = torch.cat([torch.zeros(25, 3, dtype=torch.float64), _randn(25, 3, seed=2)], dim=1)
    assert covariance_alignment(x, y) == pytest.approx(0.0, abs=1e-15)
    q = _orthogonal(6, 3)
    assert covariance_alignment(x @ q, y @ q) == pytest.approx(0.0, abs=1e-12)


def test_known_value_of_non_proportional_covariances():
    # S_x = diag(1, 4), S_y = diag(4, 1): tr(S_x S_y) = 8, ||S_x|| = ||S_y|| = sqrt(17).
    x = _diagonal_covariance_set([1.0, 4.0])
    y = _diagonal_covariance_set([4.0, 1.0])
    assert covariance_alignment(x, y) == pytest.approx(8 / 17, abs=1e-12)
    assert covariance_alignment(y, x) == pytest.approx(8 / 17, abs=1e-12)


def test_covariance_alignment_invariances_and_bounds():
    x = _randn(50, 5, seed=1) @ _randn(5, 5, seed=2)
    y = _randn(30, 5, seed=3) @ _randn(5, 5, seed=4)
    value = covariance_alignment(x, y)
    assert 0 < value < 1
    q = _orthogonal(5, 5)
    assert covariance_alignment(2 * x @ q - 1, 0.1 * y @ q + 3) == pytest.approx(value, abs=1e-12)
    # Transforming one set only, or scaling channels, changes it: the channels are shared.
    assert abs(covariance_alignment(x @ q, y) - value) > 1e-3
    stretch = torch.diag(torch.tensor([10.0, 1.0, 1.0, 1.0, 0.1], dtype=torch.float64))
    assert abs(covariance_alignment(x @ stretch, y @ stretch) - value) > 1e-3
    for seed in range(5):
        other = _randn(20, 5, seed=10 + seed) ** 2
        assert 0 <= covariance_alignment(x, other) <= 1


def test_covariance_alignment_is_not_paired_cka():
    # Paired CKA sees a rotation of the same examples as the same representation; the channels'
    # covariances of the two sets differ, so their alignment is lower.
    x = _randn(40, 4, seed=1) * torch.tensor([3.0, 2.0, 1.0, 0.5], dtype=torch.float64)
    y = x @ _orthogonal(4, 2)
    assert linear_cka(x, y) == pytest.approx(1.0, abs=1e-12)
    assert covariance_alignment(x, y) < 0.99


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (_randn(10), _randn(10), "matrix"),
        (_randn(1, 3), _randn(5, 3), "n >= 2"),
        (_randn(5, 3), _randn(5, 4), "same channels"),
        (torch.ones(5, 3), _randn(5, 3), "no variance"),
    ],
)
def test_covariance_alignment_rejects_bad_input(x: Tensor, y: Tensor, match: str):
    with pytest.raises(ValueError, match=match):
        covariance_alignment(x, y)


# --- per-block values of a backbone ------------------------------------------------------------


def _backbone() -> nn.Module:
    torch.manual_seed(0)
    return build_backbone("convnet", width=0.25)


def _images(n: int, seed: int) -> Tensor:
    return torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def test_block_correlations_match_eval_mode_features_and_restore_modes():
    backbone = _backbone().train()
    backbone.freeze_prefix(1)
    current, earlier = _images(24, 1), _images(16, 2) * 0.5 + 0.3
    state = {key: value.clone() for key, value in backbone.state_dict().items()}
    modes = [module.training for module in backbone.modules()]

    values = block_correlations(backbone, current, earlier)

    assert [module.training for module in backbone.modules()] == modes
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, state[key]), key
    backbone.eval()
    expected = [
        covariance_alignment(x, y)
        for x, y in zip(
            backbone.pooled_block_features(current),
            backbone.pooled_block_features(earlier),
            strict=True,
        )
    ]
    assert len(values) == 4
    assert values == pytest.approx(expected, abs=1e-12)
    assert all(0 < value < 1 for value in values)


def test_block_correlations_of_the_same_images_in_another_order_are_one():
    backbone = _backbone()
    current = _images(20, 3)
    shuffled = current[torch.randperm(20, generator=torch.Generator().manual_seed(4))]
    assert block_correlations(backbone, current, shuffled) == pytest.approx([1.0] * 4, abs=1e-6)


# --- frozen prefix ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratios", "threshold", "current", "maximum", "expected"),
    [
        ([0.9, 0.8, 0.7, 0.6], 0.75, 0, 3, 2),  # the prefix stops at the first low ratio
        ([0.9, 0.5, 0.95, 0.99], 0.75, 0, 3, 1),  # high ratios after a low one do not count
        ([0.9, 0.9, 0.9, 0.9], 0.75, 0, 3, 3),  # capped at max_depth
        ([0.9, 0.9, 0.9, 0.9], 0.9, 0, 4, 4),  # >= threshold
        ([0.5, 0.9, 0.9, 0.9], 0.75, 2, 3, 2),  # never below the current depth
        ([0.9, 0.9, 0.9, 0.9], 0.75, 1, 3, 3),  # deepens from the current depth
        ([0.9, math.nan, 0.9], 0.75, 0, 3, 1),  # NaN ends the prefix
        ([0.1, 0.1], 0.75, 0, 0, 0),
    ],
)
def test_frozen_prefix(ratios, threshold, current, maximum, expected):
    assert frozen_prefix(ratios, threshold, current, maximum) == expected


@pytest.mark.parametrize(("current", "maximum"), [(-1, 2), (3, 2), (0, 5)])
def test_frozen_prefix_rejects_inconsistent_depths(current: int, maximum: int):
    with pytest.raises(ValueError, match="current_depth <= max_depth"):
        frozen_prefix([0.9, 0.9, 0.9, 0.9], 0.5, current, maximum)


@pytest.mark.parametrize(
    ("ratios", "frozen", "eligible", "budget", "expected"),
    [
        # the highest ratios that reach 0.5, not a prefix
        ([0.4, 0.9, 0.6, 0.8, 0.99], set(), 4, 2, {1, 3}),
        ([0.4, 0.9, 0.6, 0.8, 0.99], set(), 4, 4, {1, 2, 3}),
        # equal ratios: the shallower first
        ([0.7, 0.7, 0.7, 0.7], set(), 3, 2, {0, 1}),
        # frozen blocks stay frozen, even below the threshold, and count in the budget
        ([0.1, 0.9, 0.8, 0.6], {0}, 3, 2, {0, 1}),
        ([0.1, 0.9, 0.8, 0.6], {0, 2}, 3, 2, {0, 2}),
        # never beyond the eligible blocks (the last stage), a NaN ratio never qualifies
        ([float("nan"), 0.6, 0.9, 0.99], set(), 3, 3, {1, 2}),
        ([0.9, 0.9, 0.9], set(), 3, 0, set()),
    ],
)
def test_ranked_blocks(ratios, frozen, eligible, budget, expected):
    assert ranked_blocks(ratios, 0.5, frozen, eligible, budget) == expected


def test_ranked_blocks_rejects_inconsistent_arguments():
    with pytest.raises(ValueError, match="eligible"):
        ranked_blocks([0.9, 0.9], 0.5, {2}, 2, 2)
    with pytest.raises(ValueError, match="eligible"):
        ranked_blocks([0.9, 0.9], 0.5, set(), 3, 2)
    with pytest.raises(ValueError, match="budget"):
        ranked_blocks([0.9, 0.9, 0.9], 0.5, {0, 1}, 3, 1)


def test_freezing_refuses_a_backbone_without_blocks(monkeypatch):
    from kaizen.config import FreezeConfig, ModelConfig
    from kaizen.errors import ConfigError
    from kaizen.methods.parts import freezing

    monkeypatch.setattr(freezing, "build_backbone", lambda *args, **kwargs: nn.Linear(4, 4))
    part = freezing.LayerFreezing(FreezeConfig(enabled=True), ModelConfig(), [], seed=0)
    with pytest.raises(ConfigError, match=r"freeze\.enabled=true needs a backbone made of blocks"):
        part.validate(object())
