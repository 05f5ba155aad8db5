"""Retraining from scratch (the cost baseline): a newly initialised model trained with SSL +
classifier on every task's data so far, at every task."""

from __future__ import annotations

from kaizen.config import RunConfig
from kaizen.methods.objective import distilled_objective
from kaizen.methods.seam import Method


def build(config: RunConfig) -> Method:
    return Method(
        "scratch",
        distilled_objective(config.strategy, feature_distill=False, classifier_distill=False),
        cumulative_data=True,
        fresh_learner=True,
    )
