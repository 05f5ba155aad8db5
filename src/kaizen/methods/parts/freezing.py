"""Progressive task-correlated layer freezing (Yang et al., arXiv 2303.07477), as a part that
composes with any method (the covariance measure needs one keeping earlier images: a replay or
LUMP buffer)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from kaizen.config import FreezeConfig, ModelConfig
from kaizen.errors import ConfigError
from kaizen.learner.correlation import block_correlations, frozen_prefix, ranked_blocks
from kaizen.learner.subspace import (
    block_input_columns,
    energy_share,
    grow_basis,
    projection_ratio,
)
from kaizen.methods.seam import Part, RunContext
from kaizen.models.backbones import build_backbone
from kaizen.models.blocks import BlockBackbone


class LayerFreezing(Part):
    """Freezes the backbone blocks whose inputs or features correlate across tasks.

    At the start of each task t >= 1, with the model of the end of task t-1 in eval mode,
    each block gets a correlation ratio in [0, 1] from ``freeze.probe_images`` current-task
    images (``freeze.measure``):

    - ``covariance``: the alignment of the block's pooled features on them and on as many
      earlier images (the method's buffer)
      (:func:`~kaizen.learner.correlation.block_correlations`);
    - ``subspace``: the share of the block's inputs on them that lies in the subspace of the
      earlier tasks' inputs (TRGP; :mod:`kaizen.learner.subspace`). The subspace is a basis per
      block, grown at the end of every task from the same number of that task's images, under
      the model that ended it.

    Then ``freeze.selection`` picks the blocks (never in the last stage, at most
    ``freeze.budget``, among the first ``freeze.max_depth``): ``prefix``, the longest prefix
    whose ratios reach ``freeze.threshold``; ``ranking``, the blocks with the highest ratios
    that reach it. Frozen blocks stay frozen in later tasks; they leave the optimiser and keep
    BatchNorm in eval mode (:meth:`~kaizen.models.blocks.BlockBackbone.freeze_blocks`).

    Args:
        config: the ``freeze`` settings.
        model: the ``model`` settings (the backbone must be made of blocks).
        memory: the method's parts, one of which keeps earlier images (covariance measure).
        seed: seeds the choice of probe images and of the subspace measure's input columns.
    """

    name: ClassVar[str] = "freeze"

    def __init__(
        self, config: FreezeConfig, model: ModelConfig, memory: list[Part], seed: int
    ) -> None:
        self.config = config
        self.model = model
        self.memory = memory
        self.seed = seed
        self.frozen: list[int] = []
        """The indices of the frozen blocks, ascending."""
        self.depth = 0
        """How many leading blocks are frozen."""
        self.ratios: list[float] | None = None
        self.blocks: list[str] = []
        self.bases: list[Tensor] = []
        """Subspace measure: each block's orthonormal basis (d_b, r_b), float64 on the CPU, of
        the inputs of the tasks ended so far (none before the first task ends)."""

    def validate(self, stream: object) -> None:
        with torch.device("meta"):  # the kind of backbone matters, not its weights
            backbone = build_backbone(
                self.model.backbone,
                stem=self.model.stem,
                width=self.model.width,
                stem_padding=self.model.stem_padding,
                image_size=self.model.image_size or self.model.patch_size,
                patch_size=self.model.patch_size,
                depth=self.model.depth,
            )
        if not isinstance(backbone, BlockBackbone):
            raise ConfigError(
                f"freeze.enabled=true needs a backbone made of blocks; model.backbone="
                f"{self.model.backbone} has none: choose resnet18, resnet50 or convnet"
            )
        budget, freezable = self.config.budget, backbone.freezable_blocks
        if budget is not None and budget > freezable:
            raise ConfigError(
                f"freeze.budget={budget} is more than the {freezable} blocks of model.backbone="
                f"{self.model.backbone} that may be frozen (those before the last stage): set "
                f"freeze.budget to at most {freezable}, or leave it unset for all of them"
            )

    def start_task(self, run: RunContext) -> None:
        self.ratios = None
        index = run.current.index
        if index == 0:
            return
        backbone = _blocks_of(run)
        generator = torch.Generator().manual_seed(self.seed + index)
        if self.config.measure == "subspace":
            inputs = self._probe_columns(run, generator)
            self.ratios = [
                projection_ratio(basis, columns)
                for basis, columns in zip(self.bases, inputs, strict=True)
            ]
        else:
            earlier = self._earlier_indices()
            if earlier is None:
                return
            current = _sample(run.current.train_indices, self.config.probe_images, generator)
            earlier = _sample(earlier, self.config.probe_images, generator)
            self.ratios = block_correlations(
                backbone, *(_images(run, rows) for rows in (current, earlier))
            )
        self._freeze(backbone, self._selected(backbone, self.ratios))
        self.blocks = backbone.block_names()

    def end_task(self, run: RunContext) -> None:
        """Subspace measure: grow each block's basis by the inputs of the task that ended."""
        if self.config.measure != "subspace":
            return
        index = run.current.index
        inputs = self._probe_columns(run, torch.Generator().manual_seed(self.seed + index))
        bases = self.bases or [columns.new_zeros(len(columns), 0) for columns in inputs]
        energy = energy_share(self.config.energy, self.config.energy_step, index)
        self.bases = [
            grow_basis(basis, columns, energy) for basis, columns in zip(bases, inputs, strict=True)
        ]

    def _probe_columns(self, run: RunContext, generator: torch.Generator) -> list[Tensor]:
        """Each block's inputs (d_b, n_b) on ``freeze.probe_images`` images of the current task."""
        rows = _sample(run.current.train_indices, self.config.probe_images, generator)
        return block_input_columns(
            _blocks_of(run), _images(run, rows), self.config.subspace_columns, generator
        )

    def _selected(self, backbone: BlockBackbone, ratios: list[float]) -> list[int]:
        """The blocks to freeze for ``ratios``, with those frozen already, ascending."""
        config = self.config
        eligible = backbone.freezable_blocks
        if config.max_depth is not None:
            eligible = min(eligible, config.max_depth)
        budget = eligible if config.budget is None else min(eligible, config.budget)
        if config.selection == "ranking":
            return sorted(ranked_blocks(ratios, config.threshold, self.frozen, eligible, budget))
        return list(range(frozen_prefix(ratios, config.threshold, self.depth, budget)))

    def _freeze(self, backbone: BlockBackbone, frozen: list[int]) -> None:
        backbone.freeze_blocks(frozen)
        self.frozen, self.depth = frozen, backbone.frozen_depth

    def _earlier_indices(self) -> Tensor | None:
        for part in self.memory:
            indices = part.memory_indices()
            if indices is not None:
                return indices
        return None

    def report(self) -> dict[str, Any]:
        if self.ratios is None:
            return {}
        return {
            "measure": self.config.measure,
            "blocks": self.blocks,
            "ratios": self.ratios,
            "frozen": [self.blocks[index] for index in self.frozen],
            "frozen_depth": self.depth,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "frozen": self.frozen,
            "ratios": self.ratios,
            "blocks": self.blocks,
            "bases": self.bases,
        }

    def load_state_dict(self, state: dict[str, Any], run: RunContext) -> None:
        self.ratios, self.blocks = state["ratios"], state["blocks"]
        self.bases = state.get("bases", [])
        # an earlier release kept only the depth of a frozen prefix
        frozen = state["frozen"] if "frozen" in state else list(range(state["depth"]))
        self._freeze(_blocks_of(run), frozen)


def _blocks_of(run: RunContext) -> BlockBackbone:
    backbone = run.learner.backbone
    assert isinstance(backbone, BlockBackbone)  # checked by validate
    return backbone


def _sample(indices: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """At most ``count`` of ``indices`` (N,), drawn without replacement."""
    return indices[torch.randperm(len(indices), generator=generator)[:count]]


def _images(run: RunContext, rows: Tensor) -> Tensor:
    """The normalised float training images (N, C, H, W) of ``rows`` (N,)."""
    stream = run.stream
    return stream.normalize(stream.train_images.gather(rows.to(stream.train_images.index_device)))
