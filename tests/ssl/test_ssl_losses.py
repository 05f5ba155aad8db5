"""SSL losses against hand-computed values and properties that hold only for a correct loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from kaizen.ssl.barlow import barlow_loss
from kaizen.ssl.base import info_nce
from kaizen.ssl.byol import byol_loss, cosine_regression
from kaizen.ssl.mocov2plus import moco_loss
from kaizen.ssl.queue_nce import queue_info_nce
from kaizen.ssl.simclr import nt_xent_loss
from kaizen.ssl.simsiam import simsiam_loss
from kaizen.ssl.vicreg import covariance_term, invariance_term, variance_term, vicreg_loss


def nt_xent_by_loop(z: torch.Tensor, temperature: float) -> float:
    """NT-Xent written anchor by anchor, independent of the vectorised implementation."""
    rows = z.shape[0]
    n = rows // 2
    unit = [v / v.norm() for v in z]
    total = 0.0
    for i in range(rows):
        positive = (i + n) % rows
        numerator = math.exp(float(unit[i] @ unit[positive]) / temperature)
        denominator = sum(
            math.exp(float(unit[i] @ unit[j]) / temperature) for j in range(rows) if j != i
        )
        total += -math.log(numerator / denominator)
    return total / rows


def test_nt_xent_hand_value() -> None:
    # Image 0: (3, 0) and (1, 0); image 1: (0, 2) and (0, -1). Cosines: anchor 0 -> [., 0, 1, 0],
    # anchor 1 -> [0, ., 0, -1], with positives 2 and 3 respectively (and symmetrically).
    z = torch.tensor([[3.0, 0.0], [0.0, 2.0], [1.0, 0.0], [0.0, -1.0]])
    t = 0.5
    expected = (math.log(math.exp(2) + 2) - 2 + math.log(2 + math.exp(-2)) + 2) / 2
    assert nt_xent_loss(z, t).item() == pytest.approx(expected, rel=1e-6)


def test_nt_xent_matches_loop() -> None:
    z = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
    assert nt_xent_loss(z, 0.1).item() == pytest.approx(nt_xent_by_loop(z, 0.1), rel=1e-5)


def test_nt_xent_lower_for_aligned_views() -> None:
    gen = torch.Generator().manual_seed(1)
    view = torch.randn(4, 8, generator=gen)
    aligned = torch.cat([view, view + 0.01 * torch.randn(4, 8, generator=gen)])
    shuffled = torch.cat([view, view.roll(1, dims=0)])
    assert nt_xent_loss(aligned, 0.1) < nt_xent_loss(shuffled, 0.1)


def test_nt_xent_rejects_odd_rows() -> None:
    with pytest.raises(ValueError, match="even"):
        nt_xent_loss(torch.randn(3, 2), 0.1)


def test_moco_loss_hand_value_excludes_other_batch_keys() -> None:
    # Query 0 sees its key (cos 1) and the queue (cos -1), not key 1 (cos 0);
    # query 1 sees its key (cos 1) and the queue (cos 0).
    q = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[1.0, 0.0], [0.0, 5.0]])
    queue = torch.tensor([[-1.0, 0.0]])
    loss0 = -1 + math.log(math.e + math.exp(-1))
    loss1 = -1 + math.log(math.e + 1)
    assert moco_loss(q, k, queue, 1.0).item() == pytest.approx((loss0 + loss1) / 2, rel=1e-6)


def test_moco_loss_single_query_with_temperature() -> None:
    q = torch.tensor([[1.0, 1.0]])
    k = torch.tensor([[1.0, 1.0]])
    queue = torch.tensor([[1.0, -1.0], [-1.0, -1.0]]) / math.sqrt(2)
    t = 0.2
    expected = -(1 / t) + math.log(math.exp(1 / t) + 1 + math.exp(-1 / t))
    assert moco_loss(q, k, queue, t).item() == pytest.approx(expected, abs=1e-6)


def test_moco_loss_equals_cross_entropy_over_key_and_queue_with_gradient() -> None:
    generator = torch.Generator().manual_seed(3)
    q = torch.randn(6, 8, generator=generator, requires_grad=True)
    k = torch.randn(6, 8, generator=generator)
    queue = F.normalize(torch.randn(20, 8, generator=generator), dim=1)
    candidates = torch.cat([F.normalize(k, dim=1).unsqueeze(1), queue.expand(6, -1, -1)], dim=1)
    logits = torch.einsum("nd,nkd->nk", F.normalize(q, dim=1), candidates) / 0.3
    expected = F.cross_entropy(logits, torch.zeros(6, dtype=torch.long))
    (expected_grad,) = torch.autograd.grad(expected, q)
    loss = moco_loss(q, k, queue, 0.3)
    (grad,) = torch.autograd.grad(loss, q)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert torch.allclose(grad, expected_grad, atol=1e-6)


def test_info_nce_targets_select_positive() -> None:
    q = torch.tensor([[1.0, 0.0]])
    keys = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    expected = -1 + math.log(1 + math.e)
    assert info_nce(q, keys, torch.tensor([1]), 1.0).item() == pytest.approx(expected, rel=1e-6)


def test_cosine_regression_hand_value() -> None:
    p = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    target = torch.tensor([[1.0, 1.0], [0.0, -1.0]])
    expected = ((2 - math.sqrt(2)) + 4) / 2
    assert cosine_regression(p, target).item() == pytest.approx(expected, rel=1e-6)


def test_byol_loss_pairs_each_prediction_with_other_view() -> None:
    # p1 = (1, 0) vs t2 = (0, -3): cos 0 -> 2; p2 = (0, 1) vs t1 = (1, 1): cos 1/sqrt 2.
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    target = torch.tensor([[1.0, 1.0], [0.0, -3.0]])
    assert byol_loss(p, target).item() == pytest.approx(4 - math.sqrt(2), rel=1e-6)


def test_byol_loss_zero_for_identical_directions() -> None:
    p = torch.randn(6, 4, generator=torch.Generator().manual_seed(2))
    p1, p2 = p.chunk(2)
    target = torch.cat([3 * p2, 0.5 * p1])
    assert byol_loss(p, target).item() == pytest.approx(0.0, abs=1e-6)


Z1 = [[0.0, 0.0], [1.0, 2.0], [2.0, 1.0]]


def test_variance_term_hand_value() -> None:
    # Unbiased variances 0.5 and 2: only the first dimension has std below 1.
    z = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    expected = (1 - math.sqrt(0.5 + 1e-4)) / 2
    assert variance_term(z).item() == pytest.approx(expected, rel=1e-6)


def test_variance_term_zero_when_std_at_least_one() -> None:
    z = 3 * torch.randn(64, 5, generator=torch.Generator().manual_seed(3))
    assert z.std(dim=0).min() >= 1
    assert variance_term(z).item() == 0.0


def test_covariance_term_hand_value() -> None:
    # Centred rows (-1, -1), (0, 1), (1, 0): covariance [[1, .5], [.5, 1]]; (2 * 0.25) / 2.
    assert covariance_term(torch.tensor(Z1)).item() == pytest.approx(0.25, rel=1e-6)


def test_covariance_term_zero_for_decorrelated_dims() -> None:
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    assert covariance_term(z).item() == pytest.approx(0.0, abs=1e-7)


def test_invariance_term_hand_value() -> None:
    z1 = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    z2 = torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    assert invariance_term(z1, z2).item() == pytest.approx((1 + 4 + 9) / 4)


def test_vicreg_loss_hand_value() -> None:
    # z2 = 0: invariance mean(z1^2) = 10 / 6; variance 0 for z1 (std > 1) and 1 - 0.01 for z2
    # in each dimension; covariance 0.25 for z1, 0 for z2.
    z1 = torch.tensor(Z1)
    z2 = torch.zeros(3, 2)
    expected = 25 * 10 / 6 + 25 * (0 + 0.99) / 2 + 1 * (0.25 + 0)
    assert vicreg_loss(z1, z2, 25.0, 25.0, 1.0).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    "loss",
    [
        lambda z: nt_xent_loss(z, 0.1),
        lambda z: byol_loss(z, z.flip(0)),
        lambda z: vicreg_loss(*z.chunk(2), 25.0, 25.0, 1.0),
        lambda z: moco_loss(*z.chunk(2), F.normalize(z[:3].float(), dim=1), 0.2),
        lambda z: simsiam_loss(z, z.flip(0)),
        lambda z: barlow_loss(*z.chunk(2), 5.1e-3, 0.1),
    ],
)
def test_losses_in_float32_under_autocast(loss) -> None:
    z = torch.randn(8, 16, generator=torch.Generator().manual_seed(4)).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = loss(z)
    assert mixed.dtype == torch.float32
    assert mixed.item() == pytest.approx(loss(z.float()).item(), rel=1e-6)


def test_covariance_term_against_torch_cov() -> None:
    z = torch.randn(10, 4, generator=torch.Generator().manual_seed(5))
    cov = torch.cov(z.T)
    off_diagonal = cov - torch.diag(cov.diagonal())
    assert covariance_term(z).item() == pytest.approx(
        float(off_diagonal.pow(2).sum() / 4), rel=1e-5
    )


def test_queue_info_nce_gradients_match_finite_differences() -> None:
    generator = torch.Generator().manual_seed(7)
    inputs = [
        torch.randn(5, 4, generator=generator, dtype=torch.float64, requires_grad=True)
        for _ in range(2)
    ]
    queue = torch.randn(9, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(queue_info_nce, (*inputs, queue))


def test_queue_info_nce_is_stable_for_large_logits() -> None:
    queries = torch.tensor([[200.0, 0.0]])
    keys = torch.tensor([[1.0, 0.0]])
    queue = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    # logits (200, 200, -200): loss = log(2) up to exp(-400)
    # (float32 near 200: a spacing of 1.5e-5)
    assert queue_info_nce(queries, keys, queue).item() == pytest.approx(math.log(2), abs=1e-4)
