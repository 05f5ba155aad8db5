"""Labelled replay: a small, class-balanced selection of earlier tasks' images."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from kaizen.config import ReplayConfig


class ReplayBuffer:
    """Indices of labelled training images kept from earlier tasks, balanced across classes.

    Selection is random with a seeded generator, or with ``selection="first"`` the first images
    by index, as Kaizen's released code takes them (which biases the buffer where a dataset's
    order is not random). With ``fraction_per_class`` each class keeps that share of its
    labelled images (random: rounded, at least one; first: rounded down); with ``budget`` the
    buffer holds at most ``budget`` images split evenly over the classes seen so far (random
    classes take the remainder), shrinking older classes as new ones arrive.

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
            new = self._ordered(indices[labels == label])
            if self.config.budget is None:
                per_class[label] = torch.cat([old, new[: self._kept(len(new))]])
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

    def _ordered(self, indices: Tensor) -> Tensor:
        """A class's new indices (n,) in the order they are kept in."""
        if self.config.selection == "first":
            return indices.sort().values
        return indices[torch.randperm(len(indices), generator=self.generator)]

    def _kept(self, available: int) -> int:
        """How many of a class's ``available`` new images ``fraction_per_class`` keeps."""
        fraction = self.config.fraction_per_class
        assert fraction is not None
        if self.config.selection == "first":
            return math.floor(fraction * available)
        return max(1, round(fraction * available)) if available else 0

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
