"""The loss watch: the first step at which a loss term stopped being finite, found without a
host sync per step."""

from __future__ import annotations

import torch
from torch import Tensor

from kaizen.errors import KaizenError


class NonFiniteLossError(KaizenError):
    """A loss term became NaN or infinite."""


class LossWatch:
    """Tracks, on the device and without host syncs, the first step where each term was not finite.

    ``first_bad[k]`` is -1 while term k has stayed finite, else the task step where it first was
    NaN or infinite. ``fix`` is the remedy the error suggests.
    """

    def __init__(self, names: list[str], device: torch.device, fix: str) -> None:
        self.names = names
        self.fix = fix
        self.first_bad = torch.full((len(names),), -1, dtype=torch.int64, device=device)

    def observe(self, values: dict[str, Tensor], step: int) -> None:
        finite = torch.stack([torch.isfinite(values[name]).all() for name in self.names])
        self.first_bad = torch.where(
            (~finite) & (self.first_bad < 0), torch.full_like(self.first_bad, step), self.first_bad
        )

    def check(self, task: int, steps_per_epoch: int) -> None:
        """Raise :class:`NonFiniteLossError` naming the first bad term and where it happened."""
        bad = self.first_bad.tolist()
        failures = [(step, name) for step, name in zip(bad, self.names, strict=True) if step >= 0]
        if failures:
            step, name = min(failures)
            raise NonFiniteLossError(
                f"loss term '{name}' became NaN or infinite at task {task}, epoch "
                f"{step // steps_per_epoch}, step {step}; the run stopped and its last good "
                f"checkpoint is kept ({self.fix})"
            )
