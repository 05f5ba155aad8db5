"""Feature distillation (CaSSLe, Fini et al. 2022): the SSL method's own loss family between the
distillation predictor's outputs P(z) and the frozen previous model's projections z'.

Every loss takes p (2B, D), P(z) for both views, and z_teacher (2B, D), the teacher's projections
of the same views in the same row order. The teacher is a fixed target: no gradient reaches it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from kaizen.config import BarlowSettings
from kaizen.distributed import gather_views
from kaizen.errors import ConfigError
from kaizen.models.heads import mlp
from kaizen.ssl.barlow import barlow_loss
from kaizen.ssl.base import info_nce, split_views
from kaizen.ssl.byol import cosine_regression
from kaizen.ssl.vicreg import invariance_term

_BARLOW = BarlowSettings()
DECORRELATION_WEIGHT = _BARLOW.distill_off_diagonal_weight
"""lambda of the decorrelative distillation by default: the Barlow Twins paper's 5.1e-3."""


def contrastive_distill(p: Tensor, z_teacher: Tensor, temperature: float = 0.2) -> Tensor:
    """Symmetric InfoNCE between P(z) and the teacher (CaSSLe's SimCLR / MoCoV2+ distillation).

    The positive of row i is teacher row i; all 2B rows of the other side are candidates. The
    result averages the p -> teacher and teacher -> p cross-entropies. Returns a float32 scalar.
    """
    z_teacher = z_teacher.detach()
    targets = torch.arange(p.shape[0], device=p.device)
    forward = info_nce(p, z_teacher, targets, temperature)
    backward = info_nce(z_teacher, p, targets, temperature)
    return (forward + backward) / 2


def predictive_distill(p: Tensor, z_teacher: Tensor) -> Tensor:
    """BYOL-style distillation: mean over rows of 2 - 2 cos(p_i, z'_i). Returns a float32 scalar."""
    return cosine_regression(p, z_teacher.detach())


def predictive_mse_distill(p: Tensor, z_teacher: Tensor) -> Tensor:
    """VICReg-style distillation: the invariance term, MSE(p, z') over all entries. Float32."""
    return invariance_term(p, z_teacher.detach())


def decorrelative_distill(
    p: Tensor,
    z_teacher: Tensor,
    off_diagonal_weight: float = DECORRELATION_WEIGHT,
    loss_scale: float = 1.0,
) -> Tensor:
    """Barlow Twins-style distillation: per view, the Barlow loss (Zbontar et al. 2021) between
    P(z) and z' with lambda ``off_diagonal_weight`` (the paper's 5.1e-3 by default) times
    ``loss_scale``; the mean over the two views.

    Rows 0..B-1 of both (2B, D) tensors are view 1, rows B..2B-1 view 2: each view's
    cross-correlation is standardised over its own B rows. Returns a float32 scalar.
    """
    p1, p2 = split_views(p)
    t1, t2 = split_views(z_teacher.detach())
    first = barlow_loss(p1, t1, off_diagonal_weight, loss_scale)
    return (first + barlow_loss(p2, t2, off_diagonal_weight, loss_scale)) / 2


DISTILL_LOSSES: dict[str, Callable[..., Tensor]] = {
    "contrastive": contrastive_distill,
    "predictive": predictive_distill,
    "predictive_mse": predictive_mse_distill,
    "decorrelative": decorrelative_distill,
}

_BATCH_LEVEL = ("contrastive", "decorrelative")
"""Losses over statistics of the batch, computed on the rows of every process."""


def distill_loss(
    kind: str,
    p: Tensor,
    z_teacher: Tensor,
    temperature: float,
    decorrelation: tuple[float, float] = (DECORRELATION_WEIGHT, 1.0),
) -> Tensor:
    """The ``kind`` distillation loss of (2B, D) p against (2B, D) z_teacher.

    ``temperature`` is used by the contrastive loss only, ``decorrelation`` (lambda and the
    loss's scale) by the decorrelative one only. The contrastive and decorrelative
    losses see the rows of every process (:func:`kaizen.distributed.gather_views`); the others
    are means over rows.
    """
    if kind not in DISTILL_LOSSES:
        raise ConfigError(
            f"unknown distillation loss '{kind}'; valid: {', '.join(sorted(DISTILL_LOSSES))}"
        )
    if kind in _BATCH_LEVEL:
        p, z_teacher = gather_views(p), gather_views(z_teacher)
    if kind == "contrastive":
        return contrastive_distill(p, z_teacher, temperature)
    if kind == "decorrelative":
        return decorrelative_distill(p, z_teacher, *decorrelation)
    return DISTILL_LOSSES[kind](p, z_teacher)


def distill_predictor(dim: int, hidden_dim: int = 2048) -> nn.Module:
    """The distillation predictor P: Linear(D, hidden) -> BatchNorm1d -> ReLU -> Linear(hidden, D).

    Shapes: (M, D) -> (M, D).
    """
    return mlp(dim, [hidden_dim], dim)
