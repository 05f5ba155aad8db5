"""The subspace-projection correlation (TRGP): basis growth by energy, projection ratios, and
a block's inputs as columns."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from kaizen.learner.subspace import (
    ENERGY_CAP,
    block_input_columns,
    energy_share,
    grow_basis,
    input_columns,
    projection_ratio,
)
from kaizen.models.backbones import build_backbone
from kaizen.models.vit import VisionTransformer


def _randn(*shape: int, seed: int = 0) -> Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _orthogonal(size: int, seed: int) -> Tensor:
    q, _ = torch.linalg.qr(_randn(size, size, seed=seed))
    return q


def _empty(d: int) -> Tensor:
    return torch.zeros(d, 0, dtype=torch.float64)


# --- projection ratio ------------------------------------------------------------------------


def test_a_column_in_the_span_has_ratio_one_and_an_orthogonal_one_zero():
    q = _orthogonal(6, seed=1)
    basis = q[:, :2]
    inside = basis @ _randn(2, 5, seed=2)
    outside = q[:, 2:] @ _randn(4, 5, seed=3)
    assert projection_ratio(basis, inside) == pytest.approx(1.0, abs=1e-12)
    assert projection_ratio(basis, outside) == pytest.approx(0.0, abs=1e-12)
    assert projection_ratio(_empty(6), inside) == 0.0


def test_the_ratio_compares_the_projection_norm_with_the_whole():
    # columns e1 and e2 of equal norm, basis e1: ||U U^T R|| / ||R|| = 1 / sqrt(2)
    inputs = torch.eye(3, dtype=torch.float64)[:, :2]
    basis = torch.eye(3, dtype=torch.float64)[:, :1]
    assert projection_ratio(basis, inputs) == pytest.approx(1 / math.sqrt(2), abs=1e-15)
    # float32 inputs are measured in float64
    assert projection_ratio(basis.float(), inputs.float()) == pytest.approx(1 / math.sqrt(2))


def test_zero_inputs_are_refused():
    with pytest.raises(ValueError, match="all zero"):
        projection_ratio(_empty(3), torch.zeros(3, 4))


# --- basis growth ----------------------------------------------------------------------------


def _with_singular_values(values: list[float], d: int, n: int, seed: int) -> Tensor:
    """R (d, n) = U diag(values) V^T with random orthonormal U, V."""
    k = len(values)
    u, v = _orthogonal(d, seed)[:, :k], _orthogonal(n, seed + 1)[:, :k]
    return u @ torch.diag(torch.tensor(values, dtype=torch.float64)) @ v.T


@pytest.mark.parametrize(
    ("energy", "rank"),
    # energies 9/14 = 0.643, 13/14 = 0.929, 1 of singular values 3, 2, 1
    [(0.5, 1), (0.64, 1), (0.65, 2), (0.9, 2), (0.93, 3), (0.999, 3)],
)
def test_the_energy_threshold_picks_the_fewest_directions(energy: float, rank: int):
    inputs = _with_singular_values([3.0, 2.0, 1.0], d=5, n=7, seed=0)
    basis = grow_basis(_empty(5), inputs, energy)
    assert basis.shape == (5, rank) and basis.dtype == torch.float64
    u, _, _ = torch.linalg.svd(inputs)
    # the leading left-singular vectors, up to sign
    overlap = (basis.T @ u[:, :rank]).abs()
    torch.testing.assert_close(overlap, torch.eye(rank, dtype=torch.float64))


def test_growth_adds_only_what_the_basis_misses_and_stays_orthonormal():
    q = _orthogonal(8, seed=4)
    old = q[:, :2]
    # the new task: energy 4 + 4 in the old basis, 16 + 1 outside it (total 25)
    inputs = torch.cat([2 * q[:, :2], 4 * q[:, 2:3], q[:, 3:4]], dim=1)
    # held before growing: 8 / 25 = 0.32; one new direction: 24 / 25 = 0.96; two: 1
    grown = grow_basis(old, inputs, 0.9)
    assert grown.shape == (8, 3)
    torch.testing.assert_close(grown[:, :2], old)
    torch.testing.assert_close(grown.T @ grown, torch.eye(3, dtype=torch.float64))
    assert abs(float(grown[:, 2] @ q[:, 2])) == pytest.approx(1.0, abs=1e-12)
    assert grow_basis(old, inputs, 0.97).shape == (8, 4)
    # a basis that holds enough already is kept as it is
    assert grow_basis(grown, inputs, 0.95).shape == (8, 3)
    assert projection_ratio(grow_basis(old, inputs, 0.97), inputs) == pytest.approx(1.0)


def test_no_direction_of_a_vanishing_singular_value_is_added():
    inputs = _with_singular_values([1.0], d=4, n=6, seed=5)  # rank 1
    assert grow_basis(_empty(4), inputs, ENERGY_CAP).shape == (4, 1)


def test_energy_share_grows_per_task_and_is_capped():
    assert energy_share(0.97, 0.003, 0) == 0.97
    assert energy_share(0.97, 0.003, 5) == pytest.approx(0.985)
    assert energy_share(0.97, 0.003, 100) == ENERGY_CAP < 1.0


def test_growth_refuses_bad_arguments():
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        grow_basis(_empty(3), _randn(3, 4), 1.0)
    with pytest.raises(ValueError, match="differ in d"):
        grow_basis(_empty(2), _randn(3, 4), 0.9)


# --- a block's inputs as columns -------------------------------------------------------------


def test_convolution_inputs_are_its_patches():
    conv = nn.Conv2d(3, 4, kernel_size=3, stride=2, padding=1)
    x = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    columns = input_columns(conv, x, 10_000, torch.Generator().manual_seed(0))
    patches = F.unfold(x, 3, padding=1, stride=2)  # (2, 27, 9)
    expected = patches.permute(1, 0, 2).reshape(27, 18).double()
    torch.testing.assert_close(columns, expected)
    # the conv's output is its weights times the patches
    out = conv.weight.flatten(1).double() @ columns + conv.bias.double()[:, None]
    torch.testing.assert_close(out, conv(x).permute(1, 0, 2, 3).reshape(4, 18).double())


def test_a_column_cap_draws_a_seeded_subset_of_the_columns():
    conv = nn.Conv2d(2, 3, kernel_size=3, padding=1)
    x = torch.randn(5, 2, 4, 4, generator=torch.Generator().manual_seed(1))
    everything = input_columns(conv, x, 10_000, torch.Generator())
    drawn = input_columns(conv, x, 7, torch.Generator().manual_seed(3))
    assert drawn.shape == (18, 7)
    assert torch.equal(drawn, input_columns(conv, x, 7, torch.Generator().manual_seed(3)))
    assert all(any(torch.equal(c, e) for e in everything.T) for c in drawn.T)
    assert not torch.equal(drawn, input_columns(conv, x, 7, torch.Generator().manual_seed(4)))


def test_token_inputs_are_the_token_vectors():
    tokens = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(2))
    columns = input_columns(nn.Linear(8, 8), tokens, 100, torch.Generator())
    torch.testing.assert_close(columns, tokens.reshape(10, 8).T.double())
    assert input_columns(nn.Linear(8, 8), tokens, 4, torch.Generator()).shape == (8, 4)


@pytest.mark.parametrize("name", ["convnet", "resnet18", "vit"])
def test_every_block_gets_its_inputs_and_the_modes_are_restored(name: str):
    torch.manual_seed(0)
    if name == "vit":
        backbone = VisionTransformer(dim=16, num_heads=2, depth=2, patch_size=4, image_size=8)
        dims = [3 * 4 * 4, 16, 16]  # the patch embedding's 4 x 4 patches, then tokens
    elif name == "convnet":
        backbone = build_backbone(name, width=0.125)
        dims = [3 * 9, 8 * 9, 16 * 9, 32 * 9]  # 3 x 3 patches of 3, 8, 16, 32 channels
    else:
        backbone = build_backbone(name, width=0.125)
        convs = [
            next(m for m in block.modules() if isinstance(m, nn.Conv2d))
            for block in backbone.block_modules()
        ]
        dims = [conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1] for conv in convs]
    backbone.train()
    backbone.freeze_prefix(1)
    modes = [module.training for module in backbone.modules()]
    images = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    columns = block_input_columns(backbone, images, 50, torch.Generator().manual_seed(0))
    assert [c.shape[0] for c in columns] == dims
    assert all(0 < c.shape[1] <= 50 and c.dtype == torch.float64 for c in columns)
    assert [module.training for module in backbone.modules()] == modes
