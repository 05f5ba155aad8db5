"""BYOL (Grill et al. 2020, "Bootstrap Your Own Latent")."""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor

from kaizen.config import BYOLSettings
from kaizen.models.heads import mlp
from kaizen.ssl.base import MomentumSSLMethod, float32_loss, split_views


@float32_loss
def cosine_regression(p: Tensor, target: Tensor) -> Tensor:
    """BYOL's normalised MSE (Grill et al. 2020, eq. 2): mean over rows of 2 - 2 cos(p_i, t_i).

    Args:
        p: (M, D) predictions.
        target: (M, D) targets, matched row by row.

    Returns:
        Scalar float32 in [0, 4].
    """
    return (2 - 2 * F.cosine_similarity(p, target, dim=1)).mean()


def byol_loss(p: Tensor, target: Tensor) -> Tensor:
    """BYOL's symmetrised loss (Grill et al. 2020): each view's prediction regresses the
    momentum projection of the other view; the two directions are summed.

    Args:
        p: (2N, D) online predictions, view 1 in rows 0..N-1, view 2 in rows N..2N-1.
        target: (2N, D) momentum-encoder projections of the same rows.

    Returns:
        Scalar float32 in [0, 8].
    """
    p1, p2 = split_views(p)
    t1, t2 = split_views(target)
    return cosine_regression(p1, t2) + cosine_regression(p2, t1)


class BYOL(MomentumSSLMethod):
    """BYOL: projector and predictor Linear -> BatchNorm -> ReLU -> Linear, momentum target."""

    name: ClassVar[str] = "byol"
    distill_kind: ClassVar[str] = "predictive"

    settings: BYOLSettings

    def __init__(self, feature_dim: int, settings: BYOLSettings) -> None:
        super().__init__(feature_dim, settings)
        out = settings.proj_output_dim
        self.projector = mlp(feature_dim, [settings.proj_hidden_dim], out)
        self.predictor = mlp(out, [settings.pred_hidden_dim], out)

    def loss(self, h: Tensor, z: Tensor, views: Tensor) -> Tensor:
        return byol_loss(self.predictor(z), self.momentum_projections(views))
