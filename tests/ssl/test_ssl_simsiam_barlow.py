"""SimSiam and Barlow Twins: their papers' formulas on hand-made tensors, SimSiam's
stop-gradient, Barlow Twins' invariance and redundancy terms, and the decorrelative
distillation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from kaizen.config import BarlowSettings, SimSiamSettings
from kaizen.ssl.barlow import barlow_loss
from kaizen.ssl.distill import decorrelative_distill, distill_loss
from kaizen.ssl.registry import build_ssl_method
from kaizen.ssl.simsiam import SimSiam, negative_cosine, simsiam_loss

LAMBDA = 5.1e-3
EPS = 1e-5


# ---------------------------------------------------------------------------- SimSiam


def cosine_by_hand(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_negative_cosine_hand_value() -> None:
    # cos((1, 0), (1, 1)) = 1/sqrt 2, cos((0, 2), (0, -1)) = -1
    p = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    z = torch.tensor([[1.0, 1.0], [0.0, -1.0]])
    expected = -(1 / math.sqrt(2) - 1) / 2
    assert negative_cosine(p, z).item() == pytest.approx(expected, rel=1e-6)


def test_simsiam_loss_hand_value_pairs_each_prediction_with_the_other_view() -> None:
    # p1 = (1, 0), (1, 1) against z2 = (1, 0), (1, -1): cosines 1 and 0, D = -1/2;
    # p2 = (0, 1), (2, 0) against z1 = (0, 3), (1, 0): cosines 1 and 1, D = -1.
    p = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [2.0, 0.0]])
    z = torch.tensor([[0.0, 3.0], [1.0, 0.0], [1.0, 0.0], [1.0, -1.0]])
    assert simsiam_loss(p, z).item() == pytest.approx(0.5 * -0.5 + 0.5 * -1.0, rel=1e-6)


def test_simsiam_loss_matches_a_loop_over_rows() -> None:
    gen = torch.Generator().manual_seed(0)
    p, z = torch.randn(6, 5, generator=gen), torch.randn(6, 5, generator=gen)
    n = 3
    rows_p, rows_z = p.tolist(), z.tolist()
    d12 = -sum(cosine_by_hand(rows_p[i], rows_z[n + i]) for i in range(n)) / n
    d21 = -sum(cosine_by_hand(rows_p[n + i], rows_z[i]) for i in range(n)) / n
    assert simsiam_loss(p, z).item() == pytest.approx(d12 / 2 + d21 / 2, rel=1e-5)


def test_simsiam_loss_is_minus_one_when_predictions_point_at_the_other_view() -> None:
    z = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    z1, z2 = z.chunk(2)
    p = torch.cat([2 * z2, 0.5 * z1])
    assert simsiam_loss(p, z).item() == pytest.approx(-1.0, abs=1e-6)


def test_simsiam_target_side_gets_no_gradient() -> None:
    gen = torch.Generator().manual_seed(2)
    p = torch.randn(6, 4, generator=gen, requires_grad=True)
    z = torch.randn(6, 4, generator=gen, requires_grad=True)
    simsiam_loss(p, z).backward()
    assert z.grad is None
    assert p.grad is not None and p.grad.abs().sum() > 0


def simsiam_method() -> SimSiam:
    torch.manual_seed(0)
    settings = SimSiamSettings(proj_hidden_dim=8, proj_output_dim=6, pred_hidden_dim=3)
    method = build_ssl_method(settings, 5)
    assert isinstance(method, SimSiam)
    return method


def test_simsiam_method_gradient_reaches_z_through_the_predictor_only() -> None:
    method = simsiam_method().train()
    z = torch.randn(8, 6, generator=torch.Generator().manual_seed(3), requires_grad=True)
    (through_method,) = torch.autograd.grad(method.loss(torch.empty(0), z, torch.empty(0)), z)
    # the same loss with the targets as constants: only the predictor path is left
    target = z.detach().clone()
    (predictor_only,) = torch.autograd.grad(simsiam_loss(method.predictor(z), target), z)
    assert torch.allclose(through_method, predictor_only, atol=1e-7)
    # without the stop-gradient the targets would add their own gradient
    p = method.predictor(z)
    p1, p2 = p.chunk(2)
    z1, z2 = z.chunk(2)
    no_stop = (negative_cosine(p1, z2) + negative_cosine(p2, z1)) / 2
    (both_paths,) = torch.autograd.grad(no_stop, z)
    assert not torch.allclose(both_paths, predictor_only, atol=1e-4)


# ---------------------------------------------------------------------------- Barlow Twins


def barlow_by_loop(z1: Tensor, z2: Tensor, weight: float, scale: float = 1.0) -> float:
    """Zbontar et al. 2021, eq. 1, written entry by entry with Python floats."""
    a, b = z1.tolist(), z2.tolist()
    n, d = len(a), len(a[0])

    def standardised(rows: list[list[float]]) -> list[list[float]]:
        out = [[0.0] * d for _ in range(n)]
        for j in range(d):
            mean = sum(rows[i][j] for i in range(n)) / n
            var = sum((rows[i][j] - mean) ** 2 for i in range(n)) / n
            for i in range(n):
                out[i][j] = (rows[i][j] - mean) / math.sqrt(var + EPS)
        return out

    sa, sb = standardised(a), standardised(b)
    total = 0.0
    for i in range(d):
        for j in range(d):
            c = sum(sa[k][i] * sb[k][j] for k in range(n)) / n
            total += (1 - c) ** 2 if i == j else weight * c**2
    return scale * total


def test_barlow_loss_hand_value() -> None:
    # z1 standardises to columns (-1, 1), (1, -1); z2 to (1, -1), (-1, 1): C = [[-1, 1], [1, -1]],
    # so the diagonal gives 2 * (1 - (-1))^2 = 8 and the off-diagonal 2 * lambda (up to eps).
    z1 = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    z2 = torch.tensor([[5.0, 1.0], [1.0, 3.0]])
    expected = 8 + 2 * LAMBDA
    assert barlow_loss(z1, z2, LAMBDA).item() == pytest.approx(expected, rel=1e-4)


def test_barlow_loss_matches_the_formula_entry_by_entry() -> None:
    gen = torch.Generator().manual_seed(4)
    z1, z2 = torch.randn(7, 4, generator=gen), torch.randn(7, 4, generator=gen)
    expected = barlow_by_loop(z1, z2, 0.3, scale=0.1)
    assert barlow_loss(z1, z2, 0.3, 0.1).item() == pytest.approx(expected, rel=1e-5)


# Four rows whose two columns have mean 0, variance 1 and no correlation.
DECORRELATED = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])


def test_barlow_loss_is_zero_for_identical_views_with_decorrelated_dims() -> None:
    z = DECORRELATED
    assert barlow_loss(z, z, LAMBDA).item() == pytest.approx(0.0, abs=1e-8)
    # standardisation: a shifted, rescaled copy is the same view
    assert barlow_loss(z, 3 * z + 2, LAMBDA).item() == pytest.approx(0.0, abs=1e-8)


def correlated(rho: float) -> Tensor:
    """The second column becomes rho * a + sqrt(1 - rho^2) * b: still mean 0 and variance 1,
    correlation rho with the first."""
    a, b = DECORRELATED[:, 0], DECORRELATED[:, 1]
    return torch.stack([a, rho * a + math.sqrt(1 - rho**2) * b], dim=1)


def test_barlow_loss_grows_with_off_diagonal_correlation() -> None:
    # identical views: C = [[1, rho], [rho, 1]], the loss is lambda * 2 rho^2
    rhos = [0.0, 0.3, 0.6, 0.9]
    losses = [barlow_loss(correlated(r), correlated(r), LAMBDA).item() for r in rhos]
    assert losses == sorted(losses) and len(set(losses)) == len(losses)
    for rho, loss in zip(rhos, losses, strict=True):
        assert loss == pytest.approx(LAMBDA * 2 * rho**2, abs=1e-6)


def test_barlow_loss_scale_multiplies_the_whole_loss() -> None:
    gen = torch.Generator().manual_seed(5)
    z1, z2 = torch.randn(6, 3, generator=gen), torch.randn(6, 3, generator=gen)
    full = barlow_loss(z1, z2, LAMBDA).item()
    assert barlow_loss(z1, z2, LAMBDA, 0.1).item() == pytest.approx(0.1 * full, rel=1e-6)


def test_barlow_method_uses_its_records_weights() -> None:
    torch.manual_seed(0)
    settings = BarlowSettings(
        proj_hidden_dim=8, proj_output_dim=3, off_diagonal_weight=0.2, loss_scale=0.5
    )
    method = build_ssl_method(settings, 5)
    z = torch.randn(8, 3, generator=torch.Generator().manual_seed(6))
    z1, z2 = z.chunk(2)
    loss = method.loss(torch.empty(0), z, torch.empty(0))
    assert loss.item() == pytest.approx(barlow_by_loop(z1, z2, 0.2, scale=0.5), rel=1e-5)


# ---------------------------------------------------------------------------- distillation


def test_decorrelative_distill_is_the_barlow_loss_per_view_against_the_teacher() -> None:
    gen = torch.Generator().manual_seed(7)
    p, teacher = torch.randn(10, 3, generator=gen), torch.randn(10, 3, generator=gen)
    (p1, p2), (t1, t2) = p.chunk(2), teacher.chunk(2)
    expected = (barlow_by_loop(p1, t1, LAMBDA) + barlow_by_loop(p2, t2, LAMBDA)) / 2
    assert decorrelative_distill(p, teacher).item() == pytest.approx(expected, rel=1e-5)
    assert distill_loss("decorrelative", p, teacher, 0.2).item() == pytest.approx(
        expected, rel=1e-5
    )


def test_decorrelative_distill_gives_no_gradient_to_the_teacher() -> None:
    gen = torch.Generator().manual_seed(8)
    p = torch.randn(8, 3, generator=gen, requires_grad=True)
    teacher = torch.randn(8, 3, generator=gen, requires_grad=True)
    decorrelative_distill(p, teacher).backward()
    assert teacher.grad is None
    assert p.grad is not None and p.grad.abs().sum() > 0


def test_barlow_unbiased_standardisation_is_lumps_loss() -> None:
    """LUMP's released loss: z standardised by the unbiased std without epsilon, lambda 5e-3."""
    torch.manual_seed(0)
    z1, z2 = torch.randn(6, 4), torch.randn(6, 4)

    def released(a: Tensor, b: Tensor) -> Tensor:
        a, b = (a - a.mean(0)) / a.std(0), (b - b.mean(0)) / b.std(0)
        c = a.T @ b / len(a)
        diff = (c - torch.eye(4)).pow(2)
        diff[~torch.eye(4, dtype=torch.bool)] *= 5e-3
        return diff.sum()

    lump = barlow_loss(z1, z2, 5e-3, std_estimator="unbiased")
    torch.testing.assert_close(lump, released(z1, z2))
    # the biased estimate with an epsilon gives another value (by a factor near (N-1)/N)
    assert not torch.allclose(barlow_loss(z1, z2, 5e-3), lump)
