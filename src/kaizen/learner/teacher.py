"""Frozen teachers: the previous task's backbone, projector and classifier."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

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


TeacherBatchNorm = Literal["running", "batch"]
"""How a teacher's BatchNorm layers normalise: with the running statistics of the end of its
task, or with each batch's own statistics (the frozen model left in train mode, as Kaizen's and
CaSSLe's released code leave it)."""


class Teacher(nn.Module):
    """A snapshot of a learner at the end of a task: no gradient, not optimised, never trained.

    With ``batchnorm="running"`` the whole teacher is in eval mode: its BatchNorm layers use
    their running statistics. With ``"batch"`` they normalise every batch with its own
    statistics and never update their running ones (``track_running_stats`` off), so the
    teacher's state stays that of the end of its task either way.
    """

    def __init__(
        self,
        backbone: nn.Module,
        projector: nn.Module,
        classifier: nn.Module,
        batchnorm: TeacherBatchNorm = "running",
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.projector = projector
        self.classifier = classifier
        self.batchnorm = batchnorm
        self.requires_grad_(False)
        super().train(False)
        if batchnorm == "batch":
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.track_running_stats = False
                    module.training = True

    @classmethod
    def snapshot(cls, learner: Learner, batchnorm: TeacherBatchNorm = "running") -> Teacher:
        """Deep copies of ``learner``'s backbone, projector and classifier."""
        return cls(
            copy.deepcopy(learner.backbone),
            copy.deepcopy(learner.ssl.projector),
            copy.deepcopy(learner.classifier),
            batchnorm,
        )

    def train(self, mode: bool = True) -> Teacher:
        """Teachers stay in eval mode whatever their parent module is set to."""
        return self

    def shared_prefix_depth(self, student: nn.Module) -> int:
        """How many of ``student``'s leading frozen blocks equal this teacher's, bit for bit.

        Over those blocks both models compute the same function (equal weights and running
        statistics, both in eval mode), so one run of them serves both: the step feeds their
        output to :meth:`forward` with ``start_block``. A backbone without blocks, or a teacher
        normalising with batch statistics (unlike the student's frozen blocks), shares none.
        """
        if (
            not isinstance(student, BlockBackbone)
            or not isinstance(self.backbone, BlockBackbone)
            or self.batchnorm == "batch"
        ):
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
