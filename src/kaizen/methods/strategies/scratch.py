"""Retraining from scratch (the cost baseline): a newly initialised model trained with SSL +
classifier on every task's data so far, at every task."""

from __future__ import annotations

from kaizen.config import RunConfig
from kaizen.methods.objective import ClassifierObjective, distilled_objective
from kaizen.methods.registry import method, settings_of
from kaizen.methods.seam import Method


@method("scratch", ClassifierObjective)
def build(config: RunConfig) -> Method:
    return Method(
        "scratch",
        distilled_objective(settings_of(config, ClassifierObjective)),
        cumulative_data=True,
        fresh_learner=True,
    )
