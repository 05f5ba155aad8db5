"""LUMP (Madaan et al., "Representational Continuity for Unsupervised Continual Learning",
ICLR 2022): the SSL loss on views mixed with a reservoir buffer of earlier images; no labels,
no distillation, no classifier training."""

from __future__ import annotations

from kaizen.config import RunConfig
from kaizen.learner.learner import Learner
from kaizen.learner.teacher import Teacher
from kaizen.learner.terms import WeightedTerm, ssl_term
from kaizen.methods.parts.mixup import ReservoirMixup
from kaizen.methods.seam import Method, TaskClasses


def _ssl_only(
    learner: Learner, teacher: Teacher | None, classes: TaskClasses
) -> list[WeightedTerm]:
    return [WeightedTerm("ssl", 1.0, ssl_term(learner))]


def build(config: RunConfig) -> Method:
    return Method("lump", _ssl_only, [ReservoirMixup(config.lump, config.seed)], needs_ssl=True)
