"""Common interface of the self-supervised methods, the momentum encoder and shared loss pieces.

Every method owns a projector F -> D applied by the caller to the backbone features, and computes
its own loss from the projections of two augmented views of the same images. Rows 0..N-1 of every
(2N, ...) tensor are view 1 and rows N..2N-1 are view 2, in the same image order.
"""

from __future__ import annotations

import copy
import functools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, ParamSpec

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.profiler import record_function

from kaizen.config import MomentumSettings, ShapedProjectorSettings, SSLSettings
from kaizen.models.heads import mlp

_P = ParamSpec("_P")


def _to_float32(value: Any) -> Any:
    if isinstance(value, Tensor) and value.is_floating_point():
        return value.float()
    return value


def float32_loss(fn: Callable[_P, Tensor]) -> Callable[_P, Tensor]:
    """Run a loss in float32: autocast off, floating-point tensor arguments cast to float32.

    Mixed-precision training keeps the backbone in half precision; softmaxes over thousands of
    similarities, cosines and covariances are computed in full precision.
    """

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Tensor:
        device = next(a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)).device
        with torch.autocast(device.type, enabled=False):
            return fn(
                *(_to_float32(a) for a in args),
                **{k: _to_float32(v) for k, v in kwargs.items()},
            )

    return wrapper


@float32_loss
def info_nce(
    queries: Tensor,
    keys: Tensor,
    targets: Tensor,
    temperature: float,
    exclude: Tensor | None = None,
) -> Tensor:
    """InfoNCE (van den Oord et al. 2018): cross-entropy of each query's positive among its keys.

    Queries and keys are L2-normalised; the logits are their cosine similarities / temperature.

    Args:
        queries: (M, D).
        keys: (K, D) candidates shared by all queries.
        targets: (M,) long, index in ``keys`` of each query's positive.
        temperature: softmax temperature.
        exclude: optional (M, K) bool, True where a key is not a candidate for that query.

    Returns:
        Scalar mean over the M queries.
    """
    logits = F.normalize(queries, dim=1) @ F.normalize(keys, dim=1).T / temperature
    if exclude is not None:
        logits = logits.masked_fill(exclude, -math.inf)
    return F.cross_entropy(logits, targets)


def split_views(x: Tensor) -> tuple[Tensor, Tensor]:
    """Split a (2N, ...) batch into its view-1 and view-2 halves, each (N, ...)."""
    if x.shape[0] % 2:
        raise ValueError(f"expected an even number of rows (two views), got {x.shape[0]}")
    first, second = x.chunk(2)
    return first, second


def shaped_projector(feature_dim: int, settings: ShapedProjectorSettings) -> nn.Sequential:
    """(Linear -> BatchNorm -> ReLU) x ``proj_hidden_layers`` of width ``proj_hidden_dim``, then
    Linear to ``proj_output_dim`` and the ``proj_output_norm`` BatchNorm, if any.

    Shapes: (N, feature_dim) -> (N, proj_output_dim).
    """
    norm = settings.proj_output_norm
    return mlp(
        feature_dim,
        [settings.proj_hidden_dim] * settings.proj_hidden_layers,
        settings.proj_output_dim,
        last_batch_norm=norm != "none",
        last_affine=norm == "affine-batchnorm",
    )


def momentum_tau(step: int, total_steps: int, tau_base: float, tau_final: float) -> float:
    """EMA coefficient at ``step`` of ``total_steps``: BYOL's cosine increase (Grill et al. 2020).

    tau = tau_final - (tau_final - tau_base) * (cos(pi * step / total_steps) + 1) / 2, so tau_base
    at step 0 and tau_final at the last step.
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    progress = math.cos(math.pi * step / total_steps)
    return tau_final - (tau_final - tau_base) * (progress + 1) / 2


class SSLMethod(nn.Module, ABC):
    """A self-supervised method: projector, any extra heads, and its loss on two views.

    Class attributes:
        name: registry key.
        distill_kind: key of ``kaizen.ssl.distill.DISTILL_LOSSES``, the method's loss family
            reused for feature distillation.
        uses_momentum: whether the method keeps a momentum encoder.
        default_distill_weight: weight of the feature distillation term (lambda_fe).
        views: augmented views of each image a training step feeds (the loss pairs them).
        has_loss: whether the method has a loss (every one but ``none``).

    Attributes:
        settings: the method's own record (``kaizen.config.SSL_SETTINGS[name]``).
        projector: (M, feature_dim) -> (M, output_dim).
        output_dim: projection size D.
    """

    name: ClassVar[str]
    distill_kind: ClassVar[str]
    uses_momentum: ClassVar[bool] = False
    default_distill_weight: ClassVar[float] = 1.0
    views: ClassVar[int] = 2
    has_loss: ClassVar[bool] = True

    settings: SSLSettings
    projector: nn.Module
    output_dim: int

    def __init__(self, feature_dim: int, settings: SSLSettings) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.settings = settings
        self.output_dim = getattr(settings, "proj_output_dim", feature_dim)

    def attach_backbone(self, backbone: nn.Module) -> None:
        """Called once after construction with the online backbone; no-op by default."""

    @abstractmethod
    def loss(self, h: Tensor, z: Tensor, views: Tensor) -> Tensor:
        """The method's loss on two views.

        Args:
            h: (2N, F) backbone features.
            z: (2N, D) projections, ``projector(h)``.
            views: (2N, C, H, W) the augmented, normalised images.

        Returns:
            Scalar float32 loss.
        """

    def momentum_rate(self, step: int, total_steps: int) -> float:
        """The momentum encoder's EMA coefficient at ``step`` of a task's ``total_steps``; 1.0
        (nothing to update) for methods without one."""
        return 1.0

    def momentum_update(self, backbone: nn.Module, tau: float) -> None:
        """EMA step of the momentum encoder towards the online one; no-op by default."""

    def distill_input(self, z: Tensor) -> Tensor:
        """What the feature-distillation predictor takes from the (M, D) projections z: z
        itself by default."""
        return z


class MomentumSSLMethod(SSLMethod):
    """An SSL method with a momentum encoder: an EMA copy of backbone + projector.

    The copy gets no gradient and is not meant for the optimiser. It follows the train / eval
    mode of the method (it is a submodule), so during training it normalises with batch
    statistics like the online encoder.
    """

    uses_momentum: ClassVar[bool] = True

    settings: MomentumSettings

    def __init__(self, feature_dim: int, settings: MomentumSettings) -> None:
        super().__init__(feature_dim, settings)
        self.momentum_backbone: nn.Module | None = None
        self.momentum_projector: nn.Module | None = None

    def momentum_rate(self, step: int, total_steps: int) -> float:
        """BYOL's cosine schedule (:func:`momentum_tau`) from the record's tau_base to tau_final."""
        return momentum_tau(step, total_steps, self.settings.tau_base, self.settings.tau_final)

    def attach_backbone(self, backbone: nn.Module) -> None:
        """Create the momentum encoder as frozen deep copies of ``backbone`` and the projector."""
        self.momentum_backbone = copy.deepcopy(backbone).requires_grad_(False)
        self.momentum_projector = copy.deepcopy(self.projector).requires_grad_(False)

    def _momentum_modules(self) -> tuple[nn.Module, nn.Module]:
        if self.momentum_backbone is None or self.momentum_projector is None:
            raise RuntimeError(f"{self.name}: call attach_backbone(backbone) before training")
        return self.momentum_backbone, self.momentum_projector

    @torch.no_grad()
    def momentum_projections(self, views: Tensor) -> Tensor:
        """Momentum-encoder projections of ``views``: (2N, C, H, W) -> (2N, D) float32."""
        backbone, projector = self._momentum_modules()
        with record_function("kaizen.momentum_forward"):
            return projector(backbone(views)).float()

    @torch.no_grad()
    def momentum_update(self, backbone: nn.Module, tau: float) -> None:
        """theta_m <- tau * theta_m + (1 - tau) * theta over backbone + projector parameters.

        Buffers (BatchNorm running statistics) are copied from the online modules, unless
        ``momentum_buffers="own"``: then the momentum encoder keeps the statistics of its own
        forward passes.
        """
        momentum_backbone, momentum_projector = self._momentum_modules()
        online: list[Tensor] = [*backbone.parameters(), *self.projector.parameters()]
        target: list[Tensor] = [*momentum_backbone.parameters(), *momentum_projector.parameters()]
        online_buffers = [*backbone.buffers(), *self.projector.buffers()]
        target_buffers = [*momentum_backbone.buffers(), *momentum_projector.buffers()]
        if len(online) != len(target) or len(online_buffers) != len(target_buffers):
            raise ValueError(f"{self.name}: backbone does not match the attached one")
        torch._foreach_mul_(target, tau)
        torch._foreach_add_(target, online, alpha=1.0 - tau)
        if target_buffers and self.settings.momentum_buffers == "copy":
            torch._foreach_copy_(target_buffers, online_buffers)
