"""MoCoV2+: momentum contrast (He et al. 2020; Chen et al. 2020, "Improved Baselines with Momentum
Contrastive Learning") with a symmetric loss over the two views."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from kaizen.config import MoCoV2PlusSettings
from kaizen.distributed import gather_views
from kaizen.models.heads import mlp
from kaizen.ssl.base import MomentumSSLMethod, float32_loss, split_views
from kaizen.ssl.queue_nce import queue_info_nce


@float32_loss
def moco_loss(q: Tensor, k: Tensor, queue: Tensor, temperature: float) -> Tensor:
    """MoCo's InfoNCE (He et al. 2020, eq. 1): each query against its key and the queue.

    The candidates of query i are its positive key k_i and the queued negatives; the other keys of
    the batch are not candidates, so the logits are (N, 1 + K) with the positive in column 0; the
    temperature scales the N queries rather than the N x K similarities, and
    :func:`~kaizen.ssl.queue_nce.queue_info_nce` computes the cross-entropy with one (N, K)
    buffer.

    Args:
        q: (N, D) online projections of one view.
        k: (N, D) momentum-encoder projections of the other view of the same images.
        queue: (K, D) negative keys, L2-normalised (the queue is stored normalised).
        temperature: softmax temperature.

    Returns:
        Scalar float32 mean over the N queries.
    """
    return queue_info_nce(F.normalize(q, dim=1) / temperature, F.normalize(k, dim=1), queue)


class MoCoV2Plus(MomentumSSLMethod):
    """MoCoV2+: symmetric MoCo loss, projector Linear -> ReLU -> Linear without BatchNorm.

    Buffers:
        queue: (2, queue_size, D) L2-normalised momentum keys; ``queue[v]`` holds keys of view v + 1
            from earlier batches and supplies the negatives of the queries of the other view.
        queue_ptr: () long, the slot the next key goes to.
    """

    name: ClassVar[str] = "mocov2plus"
    distill_kind: ClassVar[str] = "contrastive"

    settings: MoCoV2PlusSettings
    queue: Tensor
    queue_ptr: Tensor

    def __init__(self, feature_dim: int, settings: MoCoV2PlusSettings) -> None:
        super().__init__(feature_dim, settings)
        self.projector = mlp(
            feature_dim, [settings.proj_hidden_dim], settings.proj_output_dim, batch_norm=False
        )
        queue = torch.randn(2, settings.queue_size, settings.proj_output_dim)
        self.register_buffer("queue", F.normalize(queue, dim=-1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    def loss(self, h: Tensor, z: Tensor, views: Tensor) -> Tensor:
        """Mean of q1 -> (k2, queue[1]) and q2 -> (k1, queue[0]); then enqueue k1, k2.

        The loss reads a copy of the queue: backward needs the negatives as they were, and the
        enqueue overwrites the buffer in place before it runs.
        """
        q1, q2 = split_views(z)
        k1, k2 = split_views(self.momentum_projections(views))
        negatives = self.queue.clone()
        loss = (
            moco_loss(q1, k2, negatives[1], self.settings.temperature)
            + moco_loss(q2, k1, negatives[0], self.settings.temperature)
        ) / 2
        self._enqueue(torch.stack(split_views(gather_views(torch.cat([k1, k2])))))
        return loss

    def distill_input(self, z: Tensor) -> Tensor:
        """The projections (M, D), or with ``distill_input="normalized"`` the L2-normalised
        queries of the MoCo loss, which Kaizen's released code feeds its predictor."""
        if self.settings.distill_input == "normalized":
            return F.normalize(z, dim=-1)
        return z

    @torch.no_grad()
    def _enqueue(self, keys: Tensor) -> None:
        """Write (2, N, D) keys, normalised, at the pointer, wrapping around the queue.

        When N exceeds the queue size only the last ``queue_size`` keys are kept.
        """
        size = self.queue.shape[1]
        n = keys.shape[1]
        slots = (self.queue_ptr + torch.arange(n, device=keys.device))[-size:] % size
        self.queue[:, slots] = F.normalize(keys[:, -size:], dim=-1).to(self.queue.dtype)
        self.queue_ptr.copy_((self.queue_ptr + n) % size)
