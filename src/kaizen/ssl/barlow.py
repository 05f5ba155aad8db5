"""Barlow Twins (Zbontar et al., ICML 2021, "Barlow Twins: Self-Supervised Learning via
Redundancy Reduction")."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from kaizen.config import BarlowSettings
from kaizen.distributed import gather_views
from kaizen.ssl.base import SSLMethod, float32_loss, shaped_projector, split_views

STANDARDISE_EPS = 1e-5
"""Added to the variance before dividing by the standard deviation, as BatchNorm does."""


def standardise(z: Tensor, estimator: str = "biased-eps") -> Tensor:
    """(N, D) -> (N, D): each dimension centred and divided by its standard deviation over the N
    rows: the biased one with :data:`STANDARDISE_EPS` added to the variance (``biased-eps``), or
    the unbiased one without an epsilon (``unbiased``, as LUMP's released Barlow Twins loss)."""
    centred = z - z.mean(dim=0)
    if estimator == "unbiased":
        return centred / z.std(dim=0, unbiased=True)
    return centred / torch.sqrt(z.var(dim=0, unbiased=False) + STANDARDISE_EPS)


@float32_loss
def barlow_loss(
    z1: Tensor,
    z2: Tensor,
    off_diagonal_weight: float,
    loss_scale: float = 1.0,
    std_estimator: str = "biased-eps",
) -> Tensor:
    """Barlow Twins' loss (Zbontar et al. 2021, eq. 1) on (N, D) embeddings of the two views.

    With Z1, Z2 standardised per dimension over the batch (:func:`standardise` with
    ``std_estimator``), the (D, D) cross-correlation is
    C = Z1^T Z2 / N, and the loss is loss_scale * (sum_i (1 - C_ii)^2 + lambda sum_{i != j}
    C_ij^2): the invariance term pulls the diagonal to 1, the redundancy-reduction term weighted
    by lambda = ``off_diagonal_weight`` pushes the other entries to 0.

    Returns:
        Scalar float32, 0 when C is the identity.
    """
    n = z1.shape[0]
    c = standardise(z1, std_estimator).T @ standardise(z2, std_estimator) / n
    diagonal = c.diagonal()
    on_diagonal = (1 - diagonal).pow(2).sum()
    off_diagonal = c.pow(2).sum() - diagonal.pow(2).sum()
    return loss_scale * (on_diagonal + off_diagonal_weight * off_diagonal)


class BarlowTwins(SSLMethod):
    """Barlow Twins: projector :func:`~kaizen.ssl.base.shaped_projector`, by default (Linear ->
    BatchNorm -> ReLU) x 2 -> Linear, width proj_hidden_dim.

    The statistics of the loss are over the global batch: both views of every process.
    """

    name: ClassVar[str] = "barlow"
    distill_kind: ClassVar[str] = "decorrelative"

    settings: BarlowSettings

    def __init__(self, feature_dim: int, settings: BarlowSettings) -> None:
        super().__init__(feature_dim, settings)
        self.projector = shaped_projector(feature_dim, settings)

    def loss(self, h: Tensor, z: Tensor, views: Tensor) -> Tensor:
        z1, z2 = split_views(gather_views(z))
        s = self.settings
        return barlow_loss(z1, z2, s.off_diagonal_weight, s.loss_scale, s.std_estimator)
