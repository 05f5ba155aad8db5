"""No self-supervised term: a learner trained by its classifier's loss alone.

The pre-trained fine-tuning methods (SLCA, Zhang et al., ICCV 2023) and supervised baselines use
it: one augmented view per image, no projector (the projections are the features), and no
distillation family, so no strategy that distils features can run on it.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from kaizen.config import NoSSLSettings
from kaizen.ssl.base import SSLMethod


class NoSSL(SSLMethod):
    """The absent SSL method: identity projector, one view, and no loss to call."""

    name: ClassVar[str] = "none"
    distill_kind: ClassVar[str] = "none"
    views: ClassVar[int] = 1
    has_loss: ClassVar[bool] = False

    settings: NoSSLSettings

    def __init__(self, feature_dim: int, settings: NoSSLSettings) -> None:
        super().__init__(feature_dim, settings)
        self.projector = nn.Identity()

    def loss(self, h: Tensor, z: Tensor, views: Tensor) -> Tensor:
        raise RuntimeError("ssl.method=none has no loss; a strategy must not ask for it")
