"""Progressive task-correlated layer freezing (Yang et al., arXiv 2303.07477), as a part that
composes with any method keeping earlier images (a replay or LUMP buffer)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from kaizen.config import FreezeConfig, ModelConfig
from kaizen.errors import ConfigError
from kaizen.learner.correlation import block_correlations, frozen_prefix
from kaizen.methods.seam import Part, RunContext
from kaizen.models.backbones import build_backbone
from kaizen.models.blocks import BlockBackbone


class LayerFreezing(Part):
    """Freezes the longest prefix of backbone blocks whose features correlate across tasks.

    At the start of each task t >= 1, with the model of the end of task t-1 in eval mode, each
    block's pooled features of ``freeze.probe_images`` current-task images and as many earlier
    images (the method's buffer) give a correlation ratio
    (:func:`~kaizen.learner.correlation.block_correlations`); the longest prefix of blocks
    whose ratio is at least ``freeze.threshold`` is frozen (never shallower than before, never
    into the last stage). Frozen blocks leave the optimiser, keep BatchNorm in eval mode and
    run under no_grad (:meth:`~kaizen.models.backbones.BlockBackbone.freeze_prefix`).

    Args:
        config: the ``freeze`` settings.
        model: the ``model`` settings (the backbone must be made of blocks).
        memory: the method's parts, one of which keeps earlier images.
        seed: seeds the choice of probe images.
    """

    name: ClassVar[str] = "freeze"

    def __init__(
        self, config: FreezeConfig, model: ModelConfig, memory: list[Part], seed: int
    ) -> None:
        self.config = config
        self.model = model
        self.memory = memory
        self.seed = seed
        self.depth = 0
        self.ratios: list[float] | None = None
        self.blocks: list[str] = []

    def validate(self, stream: object) -> None:
        with torch.device("meta"):  # the kind of backbone matters, not its weights
            backbone = build_backbone(
                self.model.backbone,
                stem=self.model.stem,
                width=self.model.width,
                stem_padding=self.model.stem_padding,
            )
        if not isinstance(backbone, BlockBackbone):
            raise ConfigError(
                f"freeze.enabled=true needs a backbone made of blocks; model.backbone="
                f"{self.model.backbone} has none: choose resnet18, resnet50 or convnet"
            )

    def start_task(self, run: RunContext) -> None:
        self.ratios = None
        earlier = self._earlier_indices()
        if run.current.index == 0 or earlier is None:
            return
        backbone = _blocks_of(run)
        generator = torch.Generator().manual_seed(self.seed + run.current.index)
        current = _sample(run.current.train_indices, self.config.probe_images, generator)
        earlier = _sample(earlier, self.config.probe_images, generator)
        stream = run.stream
        images = [
            stream.normalize(stream.train_images.gather(rows.to(stream.train_images.index_device)))
            for rows in (current, earlier)
        ]
        self.ratios = block_correlations(backbone, *images)
        limit = backbone.freezable_blocks
        if self.config.max_depth is not None:
            limit = min(limit, self.config.max_depth)
        self.depth = frozen_prefix(self.ratios, self.config.threshold, self.depth, limit)
        backbone.freeze_prefix(self.depth)
        self.blocks = backbone.block_names()

    def _earlier_indices(self) -> Tensor | None:
        for part in self.memory:
            indices = part.memory_indices()
            if indices is not None:
                return indices
        return None

    def report(self) -> dict[str, Any]:
        if self.ratios is None:
            return {}
        return {"blocks": self.blocks, "ratios": self.ratios, "frozen_depth": self.depth}

    def state_dict(self) -> dict[str, Any]:
        return {"depth": self.depth, "ratios": self.ratios, "blocks": self.blocks}

    def load_state_dict(self, state: dict[str, Any], run: RunContext) -> None:
        self.depth, self.ratios, self.blocks = state["depth"], state["ratios"], state["blocks"]
        _blocks_of(run).freeze_prefix(self.depth)


def _blocks_of(run: RunContext) -> BlockBackbone:
    backbone = run.learner.backbone
    assert isinstance(backbone, BlockBackbone)  # checked by validate
    return backbone


def _sample(indices: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """At most ``count`` of ``indices`` (N,), drawn without replacement."""
    return indices[torch.randperm(len(indices), generator=generator)[:count]]
