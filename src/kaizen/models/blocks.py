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

    A block is a run of the backbone's own submodules, named by their paths
    (``block_layout``), so the block view registers no module of its own: parameter names and
    the order of initialisation stay those of the plain network, and a submodule replaced in
    place (``nn.SyncBatchNorm.convert_sync_batchnorm``) is the one the blocks run. Subclasses
    implement ``block_layout`` and ``freezable_blocks`` and own ``avgpool``
    (``nn.AdaptiveAvgPool2d(1)``). Shapes: (N, C_in, H, W) -> (N, feature_dim).

    Attributes:
        frozen_depth: the number of leading blocks frozen by ``freeze_prefix`` (0: none).
            A plain attribute, so it is not in the state dict but survives ``copy.deepcopy``.
    """

    avgpool: nn.Module

    def __init__(self) -> None:
        super().__init__()
        self.frozen_depth: int = 0
        self._layout: list[tuple[str, tuple[str, ...]]] | None = None

    @abstractmethod
    def block_layout(self) -> list[tuple[str, tuple[str, ...]]]:
        """Each block's name and the paths of the submodules it applies, in forward order.

        E.g. ``("stem", ("conv1", "bn1", "relu", "maxpool"))``, ``("layer1.0", ("layer1.0",))``.
        """

    @property
    @abstractmethod
    def freezable_blocks(self) -> int:
        """How many leading blocks may be frozen: all those before the last stage."""

    def _paths(self) -> list[tuple[str, tuple[str, ...]]]:
        """``block_layout()``, computed once: the paths are fixed when the network is built."""
        if self._layout is None:
            self._layout = self.block_layout()
        return self._layout

    def _block_modules(self, start: int = 0, stop: int | None = None) -> list[nn.Module]:
        """The submodules of blocks ``start:stop``, in forward order (looked up, not built)."""
        return [
            self.get_submodule(path) for _, paths in self._paths()[start:stop] for path in paths
        ]

    def block_names(self) -> list[str]:
        """The blocks' names, e.g. "stem", "layer1.0", ... or "stage1", ...."""
        return [name for name, _ in self._paths()]

    def blocks(self) -> list[nn.Module]:
        """Each block as one module (its submodules in an ``nn.Sequential`` when several).

        Built on each call for inspection and tests; ``forward`` does not use it.
        """
        blocks: list[nn.Module] = []
        for _, paths in self._paths():
            modules = [self.get_submodule(path) for path in paths]
            blocks.append(modules[0] if len(modules) == 1 else nn.Sequential(*modules))
        return blocks

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
        for module in self._block_modules(stop=depth):
            module.requires_grad_(False).eval()
            for param in module.parameters():
                param.grad = None
        self.frozen_depth = depth

    def train(self: _Self, mode: bool = True) -> _Self:
        """Set the training mode; the frozen blocks stay in eval mode whatever ``mode`` is."""
        super().train(mode)
        for module in self._block_modules(stop=self.frozen_depth):
            module.eval()
        return self

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        """Blocks ``start:`` of ``x``, then pooling: (N, C, H, W) -> (N, feature_dim).

        ``x`` is the images when ``start`` is 0, else the output of the first ``start`` blocks
        (:meth:`prefix_features`). The frozen blocks run under ``no_grad``.
        """
        unfrozen = max(start, self.frozen_depth)
        with torch.no_grad():
            for module in self._block_modules(start, unfrozen):
                x = module(x)
        for module in self._block_modules(unfrozen):
            x = module(x)
        return torch.flatten(self.avgpool(x), 1)

    @torch.no_grad()
    def prefix_features(self, images: Tensor, depth: int) -> Tensor:
        """The output of the first ``depth`` blocks on ``images`` (N, C_in, H, W), no autograd.

        ``forward(prefix_features(images, d), start=d)`` equals ``forward(images)``.
        """
        x = images
        for module in self._block_modules(stop=depth):
            x = module(x)
        return x

    def block_state(self, index: int) -> list[Tensor]:
        """The parameters and buffers of block ``index``, in a fixed order."""
        return [
            tensor
            for module in self._block_modules(index, index + 1)
            for tensor in (*module.parameters(), *module.buffers())
        ]

    @torch.no_grad()
    def pooled_block_features(self, images: Tensor) -> list[Tensor]:
        """Each block's output of ``images`` (N, C_in, H, W), averaged over space: (N, C_block).

        Runs in the current mode; set eval mode first to measure with running statistics.
        """
        features: list[Tensor] = []
        x = images
        for index in range(len(self._paths())):
            for module in self._block_modules(index, index + 1):
                x = module(x)
            features.append(x.mean(dim=(-2, -1)))
        return features
