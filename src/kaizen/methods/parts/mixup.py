"""LUMP's part (Madaan et al., ICLR 2022): a reservoir of raw training images over the whole
stream, mixed into every view while it holds images."""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, cast

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

    @property
    def buffer_update(self) -> str:
        """``step``: the reservoir is offered each step's batch; ``task-end``: each task's
        images once it has been trained."""

    @property
    def buffer_views(self) -> str:
        """``stored``: a buffer image's partners are a weak view and the view stored with it;
        ``fresh``: two fresh augmentations."""


class ReservoirMixup(Part):
    """Reservoir-sampled buffer of training indices, and mixup of the views with it.

    The buffer is a uniform sample of every training image offered so far (reservoir sampling,
    Vitter 1985). With ``buffer_update=step`` (LUMP's released code) it is offered the global
    batch of every step after the update, current task included, so mixing starts at the second
    step of the first task; with ``task-end`` it is offered each task's images in a seeded random
    order once the task is trained, so the first task trains without mixup.

    While the buffer holds images, the views x (2B, C, H, W) of the current images become
    lambda x + (1 - lambda) b, lambda ~ Beta(alpha, alpha) shared by the batch (LUMP, Eq. 4),
    with b the partners of B buffer images. With ``buffer_views=stored`` (LUMP's released code)
    the images are drawn without replacement (while the buffer holds enough) and view 1's
    partner is a weak crop + flip of the raw image, view 2's the augmented view 2 the image had
    in the step it entered the buffer; with ``fresh`` they are drawn with replacement and both
    partners are fresh augmentations of the raw images.

    Attributes:
        indices: int64 (R,) buffered training indices, R <= ``strategy.buffer_size``, on the
            image store's index device once the run has started.
        seen: how many training images the reservoir has been offered.
        views: float32 (R, C, H', W') on the training device, the stored view 2 of each
            buffered image (``buffer_views=stored``); None otherwise or while empty.
    """

    name: ClassVar[str] = "mixup"
    keeps_memory: ClassVar[bool] = True

    def __init__(self, config: MixupSettings, seed: int) -> None:
        self.config = config
        self.generator = torch.Generator().manual_seed(seed)
        self.indices = torch.empty(0, dtype=torch.int64)
        self.seen = 0
        self.views: Tensor | None = None
        self.run: RunContext | None = None
        self.rows: Tensor | None = None
        self.pending: Tensor | None = None
        """This process's view 2 (B, C, H', W') of the step in progress (``stored``)."""

    @property
    def stores_views(self) -> bool:
        return self.config.buffer_views == "stored"

    def validate(self, stream: Any) -> None:
        available = len(stream.data.train.labels)
        if self.config.buffer_size > available:
            raise ConfigError(
                f"strategy.buffer_size={self.config.buffer_size} is larger than the {available} "
                f"training images of the stream; set it to at most {available}"
            )

    def start_task(self, run: RunContext) -> None:
        self.run = run
        self._refresh_rows()

    def _refresh_rows(self) -> None:
        """Keep the buffered indices on the image store's device, where each step's offered
        batch already is (no host copy, no synchronisation per step); ``rows`` is None while
        the buffer is empty."""
        if self.run is None:
            return
        self.indices = self.indices.to(self.run.stream.train_images.index_device)
        self.rows = self.indices if len(self.indices) else None

    def end_step(self, rows: Tensor) -> None:
        if self.config.buffer_update != "step":
            return
        self._offer(rows, self._step_views(len(rows)) if self.stores_views else None)
        self._refresh_rows()

    def end_task(self, run: RunContext) -> None:
        if self.config.buffer_update != "task-end":
            return
        offered = run.current.train_indices
        offered = offered[torch.randperm(len(offered), generator=self.generator)]
        self._offer(offered, None)

    def _offer(self, offered: Tensor, views: Tensor | None) -> None:
        """Offer training indices ``offered`` (N,), with their stored views (N, C, H', W')."""
        self.indices, self.seen, target, source = reservoir_update(
            self.indices,
            self.seen,
            offered.to(self.indices.device),
            self.config.buffer_size,
            self.generator,
        )
        if views is not None:
            held = self.views if self.views is not None else views[:0]
            self.views = _written(held, len(self.indices), target, views[source.to(views.device)])

    def _step_views(self, count: int) -> Tensor:
        """float32 (count, C, H', W'): view 2 of the step's ``count`` global batch images, in
        batch order, gathered from every process."""
        if self.pending is None or self.run is None:
            raise RuntimeError("the views of a step are stored after its transform")
        pending, fabric = self.pending, self.run.fabric
        self.pending = None
        if fabric.world_size == 1:
            return pending
        sizes = [len(share) for share in torch.arange(count).tensor_split(fabric.world_size)]
        padding = pending.new_zeros((max(sizes) - len(pending), *pending.shape[1:]))
        # Fabric gathers a tensor into one tensor: (world, longest, C, H', W').
        gathered = cast(Tensor, fabric.all_gather(torch.cat([pending, padding])))
        return torch.cat([share[:size] for share, size in zip(gathered, sizes, strict=True)])

    def transform(self, views: Tensor, generator: torch.Generator) -> Tensor:
        """Shapes: views (2B, C, H', W') -> mixed views (2B, C, H', W'); unchanged while the
        buffer is empty."""
        per_process = views.shape[0] // 2
        if self.stores_views:
            self.pending = views[per_process:]
        if self.rows is None or self.run is None:
            return views
        stream, fabric = self.run.stream, self.run.fabric
        count, device = per_process * fabric.world_size, self.rows.device
        if self.stores_views:
            draw = without_replacement(len(self.rows), count, generator, device)
        else:
            draw = torch.randint(len(self.rows), (count,), generator=generator, device=device)
        mine = draw.tensor_split(fabric.world_size)[fabric.global_rank]
        images = stream.train_images.gather(self.rows[mine])
        if self.stores_views and self.views is not None:
            stored = self.views[mine.to(self.views.device)]
            partners = torch.cat([stream.augment.weak_view(images), stored])
        else:
            partners = stream.augment(images)
        beta = torch.distributions.Beta(
            torch.tensor(self.config.alpha), torch.tensor(self.config.alpha)
        )
        mix = float(beta.sample())
        return views * mix + partners.to(views.dtype) * (1.0 - mix)

    def memory_indices(self) -> Tensor | None:
        return self.indices if len(self.indices) else None

    def state_dict(self) -> dict[str, Any]:
        return {
            "indices": self.indices.cpu(),
            "seen": self.seen,
            "rng": self.generator.get_state(),
            "views": self.views,
        }

    def load_state_dict(self, state: dict[str, Any], run: RunContext) -> None:
        self.indices = state["indices"]
        self.seen = int(state["seen"])
        self.generator.set_state(state["rng"])
        views = state.get("views")  # absent from checkpoints of releases without stored views
        self.views = views.to(run.fabric.device) if views is not None else None
        self.start_task(run)


def reservoir_slots(
    filled: int, seen: int, count: int, size: int, generator: torch.Generator
) -> Tensor:
    """The slot of each of ``count`` items offered to a reservoir of ``size`` slots that holds
    ``filled`` items after being offered ``seen`` (Vitter's Algorithm R).

    Item k of the stream (0-based, k = seen + i) fills the next free slot while the reservoir
    is not full, and otherwise replaces slot j ~ U{0, ..., k} when j < size, so every item
    offered so far is kept with probability size / (seen + count). Random numbers are drawn for
    the items that find no free slot only.

    Returns:
        int64 (count,): each item's slot, -1 where it is not kept; where several items take one
        slot, the last of them stays.
    """
    free = max(0, min(size - filled, count))
    positions = seen + free + torch.arange(count - free, dtype=torch.float64)
    drawn = (
        torch.rand(count - free, generator=generator, dtype=torch.float64) * (positions + 1)
    ).long()
    drawn[drawn >= size] = -1
    return torch.cat([torch.arange(filled, filled + free), drawn])


def last_item_per_slot(slots: Tensor) -> tuple[Tensor, Tensor]:
    """(slots (S,), items (S,)): each slot that ``slots`` (N,) assigns and the position of the
    last item assigned to it."""
    kept = (slots >= 0).nonzero().squeeze(1)
    target, inverse = torch.unique(slots[kept], return_inverse=True)
    source = torch.full_like(target, -1).scatter_reduce(0, inverse, kept, reduce="amax")
    return target, source


def _written(held: Tensor, length: int, target: Tensor, values: Tensor) -> Tensor:
    """``held`` (R, ...) grown to ``length`` rows, with rows ``target`` (S,) set to ``values``."""
    if length > len(held):
        held = torch.cat([held, held.new_empty((length - len(held), *held.shape[1:]))])
    held[target.to(held.device)] = values.to(held.device)
    return held


def without_replacement(
    available: int, count: int, generator: torch.Generator, device: torch.device
) -> Tensor:
    """int64 (count,) draws from [0, available): a random permutation's first ``count``, with
    further permutations appended while ``count`` exceeds ``available`` (each index once before
    any twice)."""
    passes = -(-count // available)
    permutations = [
        torch.randperm(available, generator=generator, device=device) for _ in range(passes)
    ]
    return torch.cat(permutations)[:count]


def reservoir_update(
    buffer: Tensor, seen: int, offered: Tensor, size: int, generator: torch.Generator
) -> tuple[Tensor, int, Tensor, Tensor]:
    """Offer ``offered`` (N,) to a reservoir ``buffer`` (R,) that has been offered ``seen``
    items (:func:`reservoir_slots`).

    Returns:
        The new buffer (R',) (``buffer`` is left as it was), the new count, and the slots
        written (S,) with the position in ``offered`` (S,) of the item each now holds, so that
        what is kept beside the items can follow them.
    """
    slots = reservoir_slots(len(buffer), seen, len(offered), size, generator)
    target, source = last_item_per_slot(slots)
    length = min(size, len(buffer) + len(offered))
    written = _written(buffer.clone(), length, target, offered[source.to(offered.device)])
    return written, seen + len(offered), target, source
