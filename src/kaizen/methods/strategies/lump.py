"""LUMP (Madaan et al., "Representational Continuity for Unsupervised Continual Learning",
ICLR 2022): the SSL loss on views mixed with a reservoir buffer of earlier images; no labels,
no distillation, no classifier training."""

from __future__ import annotations

from pydantic import Field

from kaizen.config import RunConfig, StrategySettings
from kaizen.learner.learner import Learner
from kaizen.learner.teacher import Teacher
from kaizen.learner.terms import WeightedTerm, ssl_term
from kaizen.methods.parts.mixup import ReservoirMixup
from kaizen.methods.registry import method, settings_of
from kaizen.methods.seam import Method, TaskClasses


class LumpSettings(StrategySettings):
    """LUMP's reservoir buffer and mixup."""

    buffer_size: int = Field(256, ge=1, description="Raw training images kept over the stream.")
    alpha: float = Field(0.4, gt=0.0, description="Mixup weight lambda ~ Beta(alpha, alpha).")


def _ssl_only(
    learner: Learner, teacher: Teacher | None, classes: TaskClasses
) -> list[WeightedTerm]:
    return [WeightedTerm("ssl", 1.0, ssl_term(learner))]


@method("lump", LumpSettings)
def build(config: RunConfig) -> Method:
    mixup = ReservoirMixup(settings_of(config, LumpSettings), config.seed)
    return Method("lump", _ssl_only, [mixup], needs_ssl=True)
