"""Joint training (an upper bound): SSL + classifier on every task's data so far, the model
carried from task to task, no replay and no distillation."""

from __future__ import annotations

from kaizen.config import RunConfig
from kaizen.methods.objective import ClassifierObjective, distilled_objective
from kaizen.methods.registry import method, settings_of
from kaizen.methods.seam import Method


@method("joint", ClassifierObjective)
def build(config: RunConfig) -> Method:
    return Method(
        "joint",
        distilled_objective(settings_of(config, ClassifierObjective)),
        cumulative_data=True,
    )
