"""Feature distillation (CaSSLe, Fini et al. 2022): the SSL method's own loss family between the
distillation predictor's outputs P(z) and the frozen previous model's projections z'.

Every loss takes p (2B, D), P(z) for both views, and z_teacher (2B, D), the teacher's projections
of the same views in the same row order. The teacher is a fixed target: no gradient reaches it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from kaizen.distributed import gather_views
from kaizen.errors import ConfigError
from kaizen.models.heads import mlp
from kaizen.ssl.base import info_nce
from kaizen.ssl.byol import cosine_regression
from kaizen.ssl.vicreg import invariance_term


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


DISTILL_LOSSES: dict[str, Callable[..., Tensor]] = {
    "contrastive": contrastive_distill,
    "predictive": predictive_distill,
    "predictive_mse": predictive_mse_distill,
}


def distill_loss(kind: str, p: Tensor, z_teacher: Tensor, temperature: float) -> Tensor:
    """The ``kind`` distillation loss of (2B, D) p against (2B, D) z_teacher.

    ``temperature`` is used by the contrastive loss only, which sees the rows of every process
    (:func:`kaizen.distributed.gather_views`); the others are means over rows.
    """
    if kind not in DISTILL_LOSSES:
        raise ConfigError(
            f"unknown distillation loss '{kind}'; valid: {', '.join(sorted(DISTILL_LOSSES))}"
        )
    if kind == "contrastive":
        return contrastive_distill(gather_views(p), gather_views(z_teacher), temperature)
    return DISTILL_LOSSES[kind](p, z_teacher)


def distill_predictor(dim: int, hidden_dim: int = 2048) -> nn.Module:
    """The distillation predictor P: Linear(D, hidden) -> BatchNorm1d -> ReLU -> Linear(hidden, D).

    Shapes: (M, D) -> (M, D).
    """
    return mlp(dim, [hidden_dim], dim)
