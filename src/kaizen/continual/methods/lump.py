"""LUMP (Madaan et al., "Representational Continuity for Unsupervised Continual Learning",
ICLR 2022): the SSL loss on views mixed with a reservoir buffer of earlier images; no labels,
no distillation, no classifier training."""

from __future__ import annotations

from kaizen.config import RunConfig
from kaizen.continual.learner import Learner
from kaizen.continual.method import Method, TaskClasses
from kaizen.continual.parts.mixup import ReservoirMixup
from kaizen.continual.teacher import Teacher
from kaizen.continual.terms import WeightedTerm, ssl_term


def _ssl_only(
    learner: Learner, teacher: Teacher | None, classes: TaskClasses
) -> list[WeightedTerm]:
    return [WeightedTerm("ssl", 1.0, ssl_term(learner))]


def build(config: RunConfig) -> Method:
    return Method("lump", _ssl_only, [ReservoirMixup(config.lump, config.seed)], needs_ssl=True)
