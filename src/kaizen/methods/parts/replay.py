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
    every step of a later task appends ``replay.batch_size`` of them, drawn with replacement.
    """

    name: ClassVar[str] = "replay"
    keeps_memory: ClassVar[bool] = True

    def __init__(self, config: ReplayConfig, seed: int) -> None:
        self.config = config
        self.buffer = ReplayBuffer(config, seed)
        self.rows: Tensor | None = None

    def start_task(self, run: RunContext) -> None:
        self.rows = None
        if len(self.buffer):
            self.rows = self.buffer.indices.to(run.stream.train_images.index_device)

    def rows_per_step(self) -> int:
        return self.config.batch_size if self.rows is not None else 0

    def step_rows(self, generator: torch.Generator) -> Tensor | None:
        if self.rows is None:
            return None
        draw = torch.randint(
            len(self.rows), (self.config.batch_size,), generator=generator, device=self.rows.device
        )
        return self.rows[draw]

    def end_task(self, run: RunContext) -> None:
        labelled = run.current.labelled_indices
        self.buffer.add(labelled, run.stream.data.train.labels[labelled])

    def memory_indices(self) -> Tensor | None:
        return self.buffer.indices if len(self.buffer) else None

    def state_dict(self) -> dict[str, Any]:
        return self.buffer.state_dict()

    def load_state_dict(self, state: dict[str, Any], run: RunContext) -> None:
        """The buffer as saved, and the task's rows as :meth:`start_task` set them (the buffer
        changes only at task ends)."""
        self.buffer.load_state_dict(state)
        self.start_task(run)
