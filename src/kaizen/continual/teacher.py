"""Frozen teachers: the previous task's backbone, projector and classifier."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from kaizen.continual.learner import Learner


@dataclass
class TeacherOutputs:
    """The frozen previous model's view of the same 2M views.

    Attributes:
        projections: (2M, D) z' from the frozen backbone and projector.
        logits: (2M, K) g'(h') from the frozen classifier on the frozen features.
    """

    projections: Tensor
    logits: Tensor


class Teacher(nn.Module):
    """A snapshot of a learner at the end of a task: no gradient, not optimised, always eval mode.

    Keeping the teacher in eval mode means its BatchNorm layers use their running statistics and
    never update them from the current task's batches.
    """

    def __init__(self, backbone: nn.Module, projector: nn.Module, classifier: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.projector = projector
        self.classifier = classifier
        self.requires_grad_(False)
        super().train(False)

    @classmethod
    def snapshot(cls, learner: Learner) -> Teacher:
        """Deep copies of ``learner``'s backbone, projector and classifier."""
        return cls(
            copy.deepcopy(learner.backbone),
            copy.deepcopy(learner.ssl.projector),
            copy.deepcopy(learner.classifier),
        )

    def train(self, mode: bool = True) -> Teacher:
        """Teachers stay in eval mode whatever their parent module is set to."""
        return self

    @torch.no_grad()
    def forward(self, views: Tensor) -> TeacherOutputs:
        """Shapes: views (2M, C, H, W) -> :class:`TeacherOutputs`."""
        features = self.backbone(views)
        return TeacherOutputs(self.projector(features), self.classifier(features))
