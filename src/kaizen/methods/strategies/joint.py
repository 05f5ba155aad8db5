"""Joint training (an upper bound): SSL + classifier on every task's data so far, the model
carried from task to task, no replay and no distillation."""

from __future__ import annotations

from kaizen.config import RunConfig
from kaizen.methods.objective import distilled_objective
from kaizen.methods.seam import Method


def build(config: RunConfig) -> Method:
    return Method(
        "joint",
        distilled_objective(config.strategy, feature_distill=False, classifier_distill=False),
        cumulative_data=True,
    )
