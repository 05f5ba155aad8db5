"""Backbones viewed as a sequence of blocks, with a frozen prefix.

Progressive layer freezing (Yang et al., "Efficient Self-supervised Continual Learning with
Progressive Task-correlated Layer Freezing", arXiv 2303.07477) freezes a contiguous prefix of
blocks from the input: the frozen blocks run without autograd (no activations are saved for
backward, and no backward runs through them) and keep their BatchNorm in eval mode, so the
running statistics are used and left unchanged.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TypeVar

import torch
from torch import Tensor, nn

_Self = TypeVar("_Self", bound="BlockBackbone")


class BlockBackbone(nn.Module, ABC):
    """A backbone that is its blocks applied in order, then global average pooling.

    Subclasses implement ``named_blocks`` (without registering new modules: the block view
    must not change parameter names or the order of initialisation) and ``freezable_blocks``,
    and own ``avgpool`` (``nn.AdaptiveAvgPool2d(1)``). ``forward`` calls the blocks themselves,
    not the containers that hold them (a hook on a whole ResNet stage does not fire).
    Shapes: (N, C_in, H, W) -> (N, feature_dim).

    Attributes:
        frozen_depth: the number of leading blocks frozen by ``freeze_prefix`` (0: none).
            A plain attribute, so it is not in the state dict but survives ``copy.deepcopy``.
    """

    avgpool: nn.Module

    def __init__(self) -> None:
        super().__init__()
        self.frozen_depth: int = 0

    @abstractmethod
    def named_blocks(self) -> list[tuple[str, nn.Module]]:
        """The blocks in the order ``forward`` applies them, each with its name."""

    @property
    @abstractmethod
    def freezable_blocks(self) -> int:
        """How many leading blocks may be frozen: all those before the last stage."""

    def blocks(self) -> list[nn.Module]:
        """The blocks in the order ``forward`` applies them, before global pooling."""
        return [block for _, block in self.named_blocks()]

    def block_names(self) -> list[str]:
        """The names of ``blocks()``, e.g. "stem", "layer1.0", ... or "stage1", ...."""
        return [name for name, _ in self.named_blocks()]

    def freeze_prefix(self, depth: int) -> None:
        """Freeze the first ``depth`` blocks: no gradient, eval mode, gradients cleared.

        Clearing ``.grad`` keeps an optimiser from applying a gradient left from before.
        Raises ``ValueError`` unless ``frozen_depth <= depth <= freezable_blocks``: the frozen
        depth never decreases.
        """
        if not 0 <= depth <= self.freezable_blocks:
            raise ValueError(
                f"frozen depth must be in [0, {self.freezable_blocks}] (the blocks before the "
                f"last stage), got {depth}"
            )
        if depth < self.frozen_depth:
            raise ValueError(
                f"frozen depth never decreases: {depth} < current depth {self.frozen_depth}"
            )
        for block in self.blocks()[:depth]:
            block.requires_grad_(False).eval()
            for param in block.parameters():
                param.grad = None
        self.frozen_depth = depth

    def train(self: _Self, mode: bool = True) -> _Self:
        """Set the training mode; the frozen blocks stay in eval mode whatever ``mode`` is."""
        super().train(mode)
        for block in self.blocks()[: self.frozen_depth]:
            block.eval()
        return self

    def forward(self, x: Tensor) -> Tensor:
        """(N, C_in, H, W) -> (N, feature_dim); the frozen blocks run under ``no_grad``."""
        blocks = self.blocks()
        with torch.no_grad():
            for block in blocks[: self.frozen_depth]:
                x = block(x)
        for block in blocks[self.frozen_depth :]:
            x = block(x)
        return torch.flatten(self.avgpool(x), 1)

    @torch.no_grad()
    def pooled_block_features(self, images: Tensor) -> list[Tensor]:
        """Each block's output of ``images`` (N, C_in, H, W), averaged over space: (N, C_block).

        Runs in the current mode; set eval mode first to measure with running statistics.
        """
        features: list[Tensor] = []
        x = images
        for block in self.blocks():
            x = block(x)
            features.append(x.mean(dim=(-2, -1)))
        return features
