"""A backbone that does not train at all: only the heads learn (and are aligned), as SLCA's
released code runs with ``bcb_lrscale=0`` (Zhang et al., "SLCA: Slow Learner with Classifier
Alignment", ICCV 2023)."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from kaizen.learner.learner import Learner
from kaizen.methods.seam import Part


def _keep_evaluating(backbone: nn.Module, inputs: tuple[Any, ...]) -> None:
    """Forward pre-hook: put ``backbone`` in eval mode if something set it to train mode."""
    if backbone.training:
        backbone.eval()


class FrozenBackbone(Part):
    """Freezes every backbone parameter and keeps the backbone in eval mode.

    The backbone's parameters are in no parameter group (the groups this leaves empty are
    dropped), so they take no optimiser step, weight decay included, and no gradient is computed
    for them. Its normalisation layers use their running statistics and leave them as they are
    (BatchNorm; a ViT's LayerNorms keep none). The trainer sets the whole learner to train mode
    at each task's start, so a forward pre-hook puts the backbone back in eval mode before each
    of its forward passes.

    The frozen weights are part of the learner, so they live in the run checkpoint with it, and
    every learner the part is given is frozen again (a resumed run's included): the part keeps
    no state of its own.
    """

    name: ClassVar[str] = "frozen_backbone"

    def prepare_learner(self, learner: Learner) -> None:
        learner.backbone.requires_grad_(False)
        learner.backbone.register_forward_pre_hook(_keep_evaluating)

    def parameter_groups(self, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [group for group in groups if group["params"]]
