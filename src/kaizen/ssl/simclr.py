"""SimCLR (Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual
Representations")."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from kaizen.config import SimCLRSettings
from kaizen.distributed import gather_views
from kaizen.models.heads import mlp
from kaizen.ssl.base import SSLMethod, info_nce, split_views


def nt_xent_loss(z: Tensor, temperature: float) -> Tensor:
    """NT-Xent, SimCLR's normalised temperature-scaled cross-entropy (Chen et al. 2020, eq. 1).

    Each of the 2N projections is an anchor whose positive is the other view of the same image and
    whose negatives are the remaining 2N - 2 projections; similarities are cosines / temperature.

    Args:
        z: (2N, D) projections, view 1 in rows 0..N-1 and view 2 in rows N..2N-1.
        temperature: softmax temperature.

    Returns:
        Scalar float32 mean over the 2N anchors.
    """
    n = split_views(z)[0].shape[0]
    positives = torch.arange(2 * n, device=z.device).roll(n)
    self_pairs = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    return info_nce(z, z, positives, temperature, self_pairs)


class SimCLR(SSLMethod):
    """SimCLR: NT-Xent on the projections; projector Linear -> ReLU -> Linear (no BatchNorm)."""

    name: ClassVar[str] = "simclr"
    distill_kind: ClassVar[str] = "contrastive"

    settings: SimCLRSettings

    def __init__(self, feature_dim: int, settings: SimCLRSettings) -> None:
        super().__init__(feature_dim, settings)
        self.projector = mlp(
            feature_dim, [settings.proj_hidden_dim], settings.proj_output_dim, batch_norm=False
        )

    def loss(self, h: Tensor, z: Tensor, views: Tensor) -> Tensor:
        return nt_xent_loss(gather_views(z), self.settings.temperature)
