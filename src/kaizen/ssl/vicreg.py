"""VICReg (Bardes et al. 2022, "VICReg: Variance-Invariance-Covariance Regularization for
Self-Supervised Learning")."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from kaizen.config import VICRegSettings
from kaizen.distributed import gather_views
from kaizen.models.heads import mlp
from kaizen.ssl.base import SSLMethod, float32_loss, split_views

VARIANCE_EPS = 1e-4


@float32_loss
def invariance_term(z1: Tensor, z2: Tensor) -> Tensor:
    """VICReg's invariance s(Z, Z'): mean squared error over all (N, D) entries."""
    return F.mse_loss(z1, z2)


@float32_loss
def variance_term(z: Tensor) -> Tensor:
    """VICReg's variance v(Z) (Bardes et al. 2022, eq. 1): mean over dimensions of
    max(0, 1 - sqrt(Var(z_j) + 1e-4)), unbiased variance over the N rows of (N, D) ``z``."""
    std = torch.sqrt(z.var(dim=0) + VARIANCE_EPS)
    return F.relu(1 - std).mean()


@float32_loss
def covariance_term(z: Tensor) -> Tensor:
    """VICReg's covariance c(Z) (Bardes et al. 2022, eq. 3): squared off-diagonal entries of the
    (D, D) covariance of (N, D) ``z``, summed and divided by D."""
    n, dim = z.shape
    centred = z - z.mean(dim=0)
    cov = centred.T @ centred / (n - 1)
    return (cov.pow(2).sum() - cov.diagonal().pow(2).sum()) / dim


def vicreg_loss(
    z1: Tensor,
    z2: Tensor,
    sim_weight: float,
    var_weight: float,
    cov_weight: float,
    variance_branches: str = "mean",
) -> Tensor:
    """VICReg's loss (Bardes et al. 2022, eq. 6) on (N, D) projections of the two views.

    sim_weight * s(Z, Z') + var_weight * (v(Z) + v(Z')) / 2 + cov_weight * (c(Z) + c(Z')); the
    variance terms are averaged over the two branches as in VICReg's authors' implementation,
    which the published weights 25 / 25 / 1 were tuned with, or with ``variance_branches="sum"``
    summed, as Kaizen's released code does.

    Returns:
        Scalar float32.
    """
    variance = variance_term(z1) + variance_term(z2)
    return (
        sim_weight * invariance_term(z1, z2)
        + var_weight * (variance if variance_branches == "sum" else variance / 2)
        + cov_weight * (covariance_term(z1) + covariance_term(z2))
    )


class VICReg(SSLMethod):
    """VICReg: projector (Linear -> BatchNorm -> ReLU) x 2 -> Linear, width proj_hidden_dim."""

    name: ClassVar[str] = "vicreg"
    distill_kind: ClassVar[str] = "predictive_mse"
    default_distill_weight: ClassVar[float] = 25.0

    settings: VICRegSettings

    def __init__(self, feature_dim: int, settings: VICRegSettings) -> None:
        super().__init__(feature_dim, settings)
        hidden = settings.proj_hidden_dim
        self.projector = mlp(feature_dim, [hidden, hidden], settings.proj_output_dim)

    def loss(self, h: Tensor, z: Tensor, views: Tensor) -> Tensor:
        z1, z2 = split_views(gather_views(z))
        s = self.settings
        return vicreg_loss(z1, z2, s.sim_weight, s.var_weight, s.cov_weight, s.variance_branches)
