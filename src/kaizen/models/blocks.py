"""Backbones viewed as a sequence of blocks, any of which may be frozen.

Progressive layer freezing (Yang et al., "Efficient Self-supervised Continual Learning with
Progressive Task-correlated Layer Freezing", arXiv 2303.07477) freezes blocks of a backbone.
A frozen block keeps its BatchNorm in eval mode (the running statistics are used and left
unchanged) and gets no weight gradient. The leading run of frozen blocks (the frozen prefix)
runs without autograd: no activations are saved for backward and no backward runs through it.
A frozen block after a trainable one still runs with autograd, since the gradient of the
blocks below it flows through it; it skips only its own weight gradients.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import NamedTuple, TypeVar

import torch
from torch import Tensor, nn

_Self = TypeVar("_Self", bound="BlockBackbone")


class _Block(NamedTuple):
    """One block's name and the paths of its submodules and of the parameters it holds itself."""

    name: str
    modules: tuple[str, ...]
    parameters: tuple[str, ...]


class BlockBackbone(nn.Module, ABC):
    """A backbone that is its blocks applied in order, then pooling.

    A block is a run of the backbone's own submodules (and, for a block such as a ViT's token
    embedding, parameters of the backbone itself), named by their paths (``block_layout``), so
    the block view registers no module of its own: parameter names and the order of
    initialisation stay those of the plain network, and a submodule replaced in place
    (``nn.SyncBatchNorm.convert_sync_batchnorm``) is the one the blocks run. Subclasses
    implement ``block_layout`` and ``freezable_blocks``; by default a block applies its
    submodules in order (``apply_block``), the features are global average pooling over space
    by ``avgpool`` (``nn.AdaptiveAvgPool2d(1)``, which the subclass then owns; ``pool``) and a
    block's summary is its output averaged over space (``summarise``). Shapes:
    (N, C_in, H, W) -> (N, feature_dim).

    Attributes:
        frozen: the indices of the frozen blocks (``freeze_blocks``, ``freeze_prefix``).
            A plain attribute, so it is not in the state dict but survives ``copy.deepcopy``.
    """

    avgpool: nn.Module

    def __init__(self) -> None:
        super().__init__()
        self.frozen: frozenset[int] = frozenset()
        self._layout: list[_Block] | None = None

    @abstractmethod
    def block_layout(self) -> list[tuple[str, tuple[str, ...]]]:
        """Each block's name and the paths of the submodules it applies, in forward order.

        E.g. ``("stem", ("conv1", "bn1", "relu", "maxpool"))``, ``("layer1.0", ("layer1.0",))``.
        A path may also name a parameter (``("embed", ("patch_embed", "cls_token"))``): it is
        frozen with its block and is part of ``block_state``; a block holding one overrides
        ``apply_block`` to say how it is used.
        """

    @property
    @abstractmethod
    def freezable_blocks(self) -> int:
        """How many leading blocks may be frozen: all those before the last stage."""

    @property
    def frozen_depth(self) -> int:
        """The length of the frozen prefix: how many leading blocks are all frozen (0: none)."""
        depth = 0
        while depth in self.frozen:
            depth += 1
        return depth

    def _paths(self) -> list[_Block]:
        """``block_layout()``, each path sorted into a module or parameter path, computed once:
        the paths are fixed when the network is built."""
        if self._layout is None:
            parameters = {name for name, _ in self.named_parameters(remove_duplicate=False)}
            self._layout = [
                _Block(
                    name,
                    tuple(path for path in paths if path not in parameters),
                    tuple(path for path in paths if path in parameters),
                )
                for name, paths in self.block_layout()
            ]
        return self._layout

    def _submodules(self, start: int = 0, stop: int | None = None) -> list[nn.Module]:
        """The submodules of blocks ``start:stop``, in forward order (looked up, not built)."""
        return [
            self.get_submodule(path)
            for block in self._paths()[start:stop]
            for path in block.modules
        ]

    def _own_parameters(self, start: int = 0, stop: int | None = None) -> list[nn.Parameter]:
        """The parameters that blocks ``start:stop`` name directly, in layout order."""
        return [
            self.get_parameter(path)
            for block in self._paths()[start:stop]
            for path in block.parameters
        ]

    def block_names(self) -> list[str]:
        """The blocks' names, e.g. "stem", "layer1.0", ... or "stage1", ...."""
        return [block.name for block in self._paths()]

    def block_modules(self) -> list[nn.Module]:
        """Each block's submodules as one module (in an ``nn.Sequential`` when several).

        Built on each call for inspection and tests; ``forward`` does not use it. Parameters a
        block names directly are not in it (``block_state`` has them).
        """
        blocks: list[nn.Module] = []
        for block in self._paths():
            modules = [self.get_submodule(path) for path in block.modules]
            blocks.append(modules[0] if len(modules) == 1 else nn.Sequential(*modules))
        return blocks

    def apply_block(self, index: int, x: Tensor) -> Tensor:
        """Block ``index`` of ``x``: its submodules applied in order."""
        for module in self._submodules(index, index + 1):
            x = module(x)
        return x

    def pool(self, x: Tensor) -> Tensor:
        """The features of the last block's output: (N, C, H, W) -> (N, feature_dim)."""
        return torch.flatten(self.avgpool(x), 1)

    def summarise(self, x: Tensor) -> Tensor:
        """One block's output as a vector per image, its average over space: (N, C, H, W) ->
        (N, C)."""
        return x.mean(dim=(-2, -1))

    def freeze_blocks(self, indices: Iterable[int]) -> None:
        """Freeze the blocks ``indices``: no gradient, eval mode, gradients cleared.

        Clearing ``.grad`` keeps an optimiser from applying a gradient left from before.
        Raises ``ValueError`` unless every index is in [0, freezable_blocks) and every block
        frozen before is among them: the frozen blocks never change back.
        """
        chosen = frozenset(indices)
        outside = sorted(index for index in chosen if not 0 <= index < self.freezable_blocks)
        if outside:
            raise ValueError(
                f"frozen blocks must be in [0, {self.freezable_blocks}) (the blocks before the "
                f"last stage), got {outside}"
            )
        if not self.frozen <= chosen:
            raise ValueError(
                f"frozen blocks stay frozen: {sorted(self.frozen - chosen)} are missing from "
                f"{sorted(chosen)}"
            )
        for index in sorted(chosen - self.frozen):
            for module in self._submodules(index, index + 1):
                module.requires_grad_(False).eval()
                for param in module.parameters():
                    param.grad = None
            for param in self._own_parameters(index, index + 1):
                param.requires_grad_(False)
                param.grad = None
        self.frozen = chosen

    def freeze_prefix(self, depth: int) -> None:
        """Freeze the first ``depth`` blocks besides those frozen already (``freeze_blocks``).

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
        self.freeze_blocks(self.frozen | set(range(depth)))

    def train(self: _Self, mode: bool = True) -> _Self:
        """Set the training mode; the frozen blocks stay in eval mode whatever ``mode`` is."""
        super().train(mode)
        for index in self.frozen:
            for module in self._submodules(index, index + 1):
                module.eval()
        return self

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        """Blocks ``start:`` of ``x``, then pooling: (N, C, H, W) -> (N, feature_dim).

        ``x`` is the images when ``start`` is 0, else the output of the first ``start`` blocks
        (:meth:`prefix_features`). The frozen prefix runs under ``no_grad``; a frozen block
        after it runs with autograd, which passes the gradient on without its weight
        gradients.
        """
        unfrozen = max(start, self.frozen_depth)
        with torch.no_grad():
            for index in range(start, unfrozen):
                x = self.apply_block(index, x)
        for index in range(unfrozen, len(self._paths())):
            x = self.apply_block(index, x)
        return self.pool(x)

    @torch.no_grad()
    def prefix_features(self, images: Tensor, depth: int) -> Tensor:
        """The output of the first ``depth`` blocks on ``images`` (N, C_in, H, W), no autograd.

        ``forward(prefix_features(images, d), start=d)`` equals ``forward(images)``.
        """
        x = images
        for index in range(depth):
            x = self.apply_block(index, x)
        return x

    def block_state(self, index: int) -> list[Tensor]:
        """The parameters and buffers of block ``index``, in a fixed order."""
        return [
            *(
                tensor
                for module in self._submodules(index, index + 1)
                for tensor in (*module.parameters(), *module.buffers())
            ),
            *self._own_parameters(index, index + 1),
        ]

    @torch.no_grad()
    def pooled_block_features(self, images: Tensor) -> list[Tensor]:
        """Each block's output of ``images`` (N, C_in, H, W), summarised: (N, C_block).

        A block's summary is ``summarise`` of its output (by default its average over space).
        Runs in the current mode; set eval mode first to measure with running statistics.
        """
        features: list[Tensor] = []
        x = images
        for index in range(len(self._paths())):
            x = self.apply_block(index, x)
            features.append(self.summarise(x))
        return features

    @torch.no_grad()
    def block_inputs(self, images: Tensor) -> Iterator[Tensor]:
        """Each block's input for ``images`` (N, C_in, H, W), in block order, one at a time.

        The first block's input is ``images``, block b's the output of block b - 1: (N, C, H, W)
        for a convolutional block, tokens (N, T, D) for a ViT block. Computed lazily, so that
        only one block's input is held at a time; runs in the current mode without autograd.
        """
        x = images
        for index in range(len(self._paths())):
            if index:
                x = self.apply_block(index - 1, x)
            yield x
