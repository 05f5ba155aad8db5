"""The labelled-replay part: a few labelled images of earlier tasks appended to every batch."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from kaizen.config import ReplayConfig
from kaizen.data.replay import ReplayBuffer
from kaizen.methods.seam import Part, RunContext


class LabelledReplay(Part):
    """A class-balanced :class:`ReplayBuffer`, filled with each finished task's labelled images;
    every step of a later task appends ``replay.batch_size`` of them, drawn with replacement,
    or with ``replay.sampling=passes`` min(batch_size, R) of them in shuffled passes over the R
    buffered images without replacement (a new pass when fewer than that remain, like a
    shuffling loader that drops its last incomplete batch).

    Attributes:
        rows: int64 (R,) the buffer's indices on the image store's device, None when empty.
        order: the current pass's permutation (R,) of buffer positions (passes only).
        cursor: how many positions of ``order`` have been served.
    """

    name: ClassVar[str] = "replay"
    keeps_memory: ClassVar[bool] = True

    def __init__(self, config: ReplayConfig, seed: int) -> None:
        self.config = config
        self.buffer = ReplayBuffer(config, seed)
        self.rows: Tensor | None = None
        self.order: Tensor | None = None
        self.cursor = 0

    def start_task(self, run: RunContext) -> None:
        self.rows, self.order, self.cursor = None, None, 0
        if len(self.buffer):
            self.rows = self.buffer.indices.to(run.stream.train_images.index_device)

    def rows_per_step(self) -> int:
        if self.rows is None:
            return 0
        if self.config.sampling == "passes":
            return min(self.config.batch_size, len(self.rows))
        return self.config.batch_size

    def step_rows(self, generator: torch.Generator) -> Tensor | None:
        if self.rows is None:
            return None
        if self.config.sampling == "passes":
            return self.rows[self._next_positions(generator)]
        draw = torch.randint(
            len(self.rows), (self.config.batch_size,), generator=generator, device=self.rows.device
        )
        return self.rows[draw]

    def _next_positions(self, generator: torch.Generator) -> Tensor:
        """The next ``rows_per_step()`` positions of the current pass, starting a pass when
        fewer remain."""
        assert self.rows is not None
        count = self.rows_per_step()
        if self.order is None or self.cursor + count > len(self.order):
            device = self.rows.device
            self.order = torch.randperm(len(self.rows), generator=generator, device=device)
            self.cursor = 0
        positions = self.order[self.cursor : self.cursor + count]
        self.cursor += count
        return positions

    def end_task(self, run: RunContext) -> None:
        labelled = run.current.labelled_indices
        self.buffer.add(labelled, run.stream.data.train.labels[labelled])

    def memory_indices(self) -> Tensor | None:
        return self.buffer.indices if len(self.buffer) else None

    def state_dict(self) -> dict[str, Any]:
        order = None if self.order is None else self.order.cpu()
        return {**self.buffer.state_dict(), "pass": {"order": order, "cursor": self.cursor}}

    def load_state_dict(self, state: dict[str, Any], run: RunContext) -> None:
        """The buffer as saved, the task's rows as :meth:`start_task` set them (the buffer
        changes only at task ends) and the pass being served (none in checkpoints written
        before passes existed)."""
        self.buffer.load_state_dict(state)
        self.start_task(run)
        served = state.get("pass")
        if served is not None and served["order"] is not None and self.rows is not None:
            self.order = served["order"].to(self.rows.device)
            self.cursor = int(served["cursor"])
