"""Frozen teachers: the previous task's backbone, projector and classifier."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from kaizen.learner.learner import Learner
from kaizen.models.blocks import BlockBackbone


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

    def shared_prefix_depth(self, student: nn.Module) -> int:
        """How many of ``student``'s leading frozen blocks equal this teacher's, bit for bit.

        Over those blocks both models compute the same function (equal weights and running
        statistics, both in eval mode), so one run of them serves both: the step feeds their
        output to :meth:`forward` with ``start_block``. A backbone without blocks shares none.
        """
        if not isinstance(student, BlockBackbone) or not isinstance(self.backbone, BlockBackbone):
            return 0
        depth = 0
        while depth < student.frozen_depth and all(
            torch.equal(mine, theirs)
            for mine, theirs in zip(
                self.backbone.block_state(depth), student.block_state(depth), strict=True
            )
        ):
            depth += 1
        return depth

    @torch.no_grad()
    def forward(self, views: Tensor, start_block: int = 0) -> TeacherOutputs:
        """Shapes: views (2M, C, H, W) -> :class:`TeacherOutputs`.

        With ``start_block`` > 0, ``views`` is the output of the first ``start_block`` blocks
        (at most :meth:`shared_prefix_depth`), and the backbone runs the rest.
        """
        features = self.backbone(views, start_block) if start_block else self.backbone(views)
        return TeacherOutputs(self.projector(features), self.classifier(features))
