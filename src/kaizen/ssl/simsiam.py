"""SimSiam (Chen & He, CVPR 2021, "Exploring Simple Siamese Representation Learning")."""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor

from kaizen.config import SimSiamSettings
from kaizen.models.heads import mlp
from kaizen.ssl.base import SSLMethod, float32_loss, shaped_projector, split_views


@float32_loss
def negative_cosine(p: Tensor, z: Tensor) -> Tensor:
    """SimSiam's D(p, z) (Chen & He 2021, eq. 1): mean over rows of -cos(p_i, z_i).

    Args:
        p: (M, D) predictions.
        z: (M, D) targets, matched row by row; the caller stops their gradient.

    Returns:
        Scalar float32 in [-1, 1].
    """
    return -F.cosine_similarity(p, z, dim=1).mean()


def simsiam_loss(p: Tensor, z: Tensor) -> Tensor:
    """SimSiam's symmetrised loss with stop-gradient (Chen & He 2021, eq. 3):
    1/2 D(p1, sg(z2)) + 1/2 D(p2, sg(z1)).

    Args:
        p: (2N, D) predictions, view 1 in rows 0..N-1, view 2 in rows N..2N-1.
        z: (2N, D) projections of the same rows; no gradient flows through them here.

    Returns:
        Scalar float32 in [-1, 1].
    """
    p1, p2 = split_views(p)
    z1, z2 = split_views(z.detach())
    return (negative_cosine(p1, z2) + negative_cosine(p2, z1)) / 2


class SimSiam(SSLMethod):
    """SimSiam: no momentum encoder; the stop-gradient alone keeps the two branches apart.

    Projector: :func:`~kaizen.ssl.base.shaped_projector`, by default (Linear -> BatchNorm ->
    ReLU) x 2 -> Linear -> BatchNorm without affine, width proj_hidden_dim. Predictor:
    Linear(D, pred_hidden_dim) -> BatchNorm -> ReLU -> Linear(pred_hidden_dim, D), the
    bottleneck of the paper (2048 -> 512 -> 2048).
    """

    name: ClassVar[str] = "simsiam"
    distill_kind: ClassVar[str] = "predictive"

    settings: SimSiamSettings

    def __init__(self, feature_dim: int, settings: SimSiamSettings) -> None:
        super().__init__(feature_dim, settings)
        out = settings.proj_output_dim
        self.projector = shaped_projector(feature_dim, settings)
        self.predictor = mlp(out, [settings.pred_hidden_dim], out)

    def loss(self, h: Tensor, z: Tensor, views: Tensor) -> Tensor:
        return simsiam_loss(self.predictor(z), z)
