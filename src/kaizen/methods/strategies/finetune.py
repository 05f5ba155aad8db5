"""Fine-tuning (the Kaizen paper's "No Distill" baseline): SSL + classifier with labelled replay,
the model carried from task to task, no distillation."""

from __future__ import annotations

from kaizen.config import RunConfig
from kaizen.methods.objective import distilled_objective
from kaizen.methods.parts.replay import LabelledReplay
from kaizen.methods.seam import Method


def build(config: RunConfig) -> Method:
    return Method(
        "finetune",
        distilled_objective(config.strategy, feature_distill=False, classifier_distill=False),
        [LabelledReplay(config.replay, config.seed)],
    )
