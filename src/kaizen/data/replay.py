"""Labelled replay: a small, class-balanced, seeded random selection of earlier tasks' images."""

from __future__ import annotations

import torch
from torch import Tensor

from kaizen.config import ReplayConfig


class ReplayBuffer:
    """Indices of labelled training images kept from earlier tasks, balanced across classes.

    Selection is random with a seeded generator (taking the first images by index would bias
    the buffer). With ``fraction_per_class`` each class keeps that share of its labelled images
    (at least one); with ``budget`` the buffer holds at most ``budget`` images split evenly over
    the classes seen so far (random classes take the remainder), shrinking older classes as new
    ones arrive.

    Attributes:
        indices: int64 (R,) indices into the training split.
        labels: int64 (R,) their true labels.
    """

    def __init__(self, config: ReplayConfig, seed: int) -> None:
        self.config = config
        self.generator = torch.Generator().manual_seed(seed)
        self.indices = torch.empty(0, dtype=torch.int64)
        self.labels = torch.empty(0, dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def add(self, indices: Tensor, labels: Tensor) -> None:
        """Select from a finished task's labelled images.

        Args:
            indices: int64 (L,) labelled training indices of the task.
            labels: int64 (L,) their labels.
        """
        per_class: dict[int, Tensor] = {}
        for label in sorted(set(self.labels.tolist()) | set(labels.tolist())):
            old = self.indices[self.labels == label]
            new = indices[labels == label]
            new = new[torch.randperm(len(new), generator=self.generator)]
            if self.config.budget is None:
                assert self.config.fraction_per_class is not None
                keep = max(1, round(self.config.fraction_per_class * len(new))) if len(new) else 0
                per_class[label] = torch.cat([old, new[:keep]])
            else:
                per_class[label] = torch.cat([old, new])
        if not per_class:
            return
        if self.config.budget is not None:
            per_class = self._within_budget(per_class, self.config.budget)
        self.indices = torch.cat(list(per_class.values()))
        self.labels = torch.cat(
            [
                torch.full((len(kept),), label, dtype=torch.int64)
                for label, kept in per_class.items()
            ]
        )

    def _within_budget(self, per_class: dict[int, Tensor], budget: int) -> dict[int, Tensor]:
        """Cut each class to budget // classes images; the remainder goes to random classes."""
        labels = list(per_class)
        quota, remainder = divmod(budget, len(labels))
        lucky = {
            labels[i]
            for i in torch.randperm(len(labels), generator=self.generator)[:remainder].tolist()
        }
        return {label: kept[: quota + (label in lucky)] for label, kept in per_class.items()}

    def state_dict(self) -> dict[str, Tensor]:
        return {"indices": self.indices, "labels": self.labels, "rng": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.indices = state["indices"]
        self.labels = state["labels"]
        self.generator.set_state(state["rng"])


def replayed_rows(current: int, replayed: int, device: torch.device) -> Tensor | None:
    """(current + replayed,) bool marking the replayed rows of a batch laid out as its current
    images followed by its replayed ones; None when nothing is replayed."""
    if replayed == 0:
        return None
    return torch.arange(current + replayed, device=device) >= current
