"""LUMP's part (Madaan et al., ICLR 2022): a reservoir of raw training images over the whole
stream, mixed into every view of later tasks."""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import torch
from torch import Tensor

from kaizen.errors import ConfigError
from kaizen.methods.seam import Part, RunContext


class MixupSettings(Protocol):
    """What the reservoir and its mixup read from their method's settings record."""

    @property
    def buffer_size(self) -> int:
        """Raw training images kept over the stream."""

    @property
    def alpha(self) -> float:
        """Mixup weight lambda ~ Beta(alpha, alpha)."""


class ReservoirMixup(Part):
    """Reservoir-sampled buffer of training indices, and mixup of the views with it.

    The buffer is a uniform sample of every training image seen so far (reservoir sampling,
    Vitter 1985), updated at each task's end in a seeded random order of the task's images; it
    holds indices, so the raw images come from the image store and are augmented afresh when
    drawn. At every step of a later task, the views x (2B, C, H, W) of the current images become
    lambda x + (1 - lambda) b, with b two augmented views of B buffer images drawn with
    replacement and lambda ~ Beta(alpha, alpha) shared by the batch (LUMP, Eq. 4).

    Attributes:
        indices: int64 (R,) buffered training indices, R <= ``strategy.buffer_size``.
        seen: how many training images the reservoir has been offered.
    """

    name: ClassVar[str] = "mixup"
    keeps_memory: ClassVar[bool] = True

    def __init__(self, config: MixupSettings, seed: int) -> None:
        self.config = config
        self.generator = torch.Generator().manual_seed(seed)
        self.indices = torch.empty(0, dtype=torch.int64)
        self.seen = 0
        self.run: RunContext | None = None
        self.rows: Tensor | None = None

    def validate(self, stream: Any) -> None:
        available = len(stream.data.train.labels)
        if self.config.buffer_size > available:
            raise ConfigError(
                f"strategy.buffer_size={self.config.buffer_size} is larger than the {available} "
                f"training images of the stream; set it to at most {available}"
            )

    def start_task(self, run: RunContext) -> None:
        self.run = run
        self.rows = None
        if len(self.indices):
            self.rows = self.indices.to(run.stream.train_images.index_device)

    def end_task(self, run: RunContext) -> None:
        offered = run.current.train_indices
        offered = offered[torch.randperm(len(offered), generator=self.generator)]
        self.indices, self.seen = reservoir_update(
            self.indices, self.seen, offered, self.config.buffer_size, self.generator
        )

    def transform(self, views: Tensor, generator: torch.Generator) -> Tensor:
        """Shapes: views (2B, C, H, W) -> mixed views (2B, C, H, W); unchanged at the first task."""
        if self.rows is None or self.run is None:
            return views
        stream, fabric = self.run.stream, self.run.fabric
        per_process = views.shape[0] // 2
        draw = torch.randint(
            len(self.rows),
            (per_process * fabric.world_size,),
            generator=generator,
            device=self.rows.device,
        )
        mine = self.rows[draw].tensor_split(fabric.world_size)[fabric.global_rank]
        buffered = stream.augment(stream.train_images.gather(mine))
        beta = torch.distributions.Beta(
            torch.tensor(self.config.alpha), torch.tensor(self.config.alpha)
        )
        mix = float(beta.sample())
        return views * mix + buffered.to(views.dtype) * (1.0 - mix)

    def memory_indices(self) -> Tensor | None:
        return self.indices if len(self.indices) else None

    def state_dict(self) -> dict[str, Any]:
        return {"indices": self.indices, "seen": self.seen, "rng": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any], run: RunContext) -> None:
        self.indices = state["indices"]
        self.seen = int(state["seen"])
        self.generator.set_state(state["rng"])
        self.start_task(run)


def reservoir_update(
    buffer: Tensor, seen: int, offered: Tensor, size: int, generator: torch.Generator
) -> tuple[Tensor, int]:
    """Offer ``offered`` (N,) to a reservoir ``buffer`` (R,) that has been offered ``seen`` items.

    Item k of the stream (0-based, k = seen + i) fills a free slot while R < size, and otherwise
    replaces slot j ~ U{0, ..., k} when j < size (Vitter's Algorithm R), so every item offered
    so far is in the buffer with probability size / (seen + N). Returns the new buffer and count.
    """
    free = max(0, min(size - len(buffer), len(offered)))
    kept = torch.cat([buffer, offered[:free]])
    rest = offered[free:]
    positions = seen + free + torch.arange(len(rest), dtype=torch.float64)
    slots = (
        torch.rand(len(rest), generator=generator, dtype=torch.float64) * (positions + 1)
    ).long()
    for item, slot in zip(rest[slots < size].tolist(), slots[slots < size].tolist(), strict=True):
        kept[slot] = item
    return kept, seen + len(offered)
