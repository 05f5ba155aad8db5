"""Fine-tuning (the Kaizen paper's "No Distill" baseline): SSL + classifier with labelled replay,
the model carried from task to task, no distillation."""

from __future__ import annotations

from kaizen.config import RunConfig
from kaizen.methods.objective import ClassifierObjective, distilled_objective
from kaizen.methods.parts.replay import LabelledReplay
from kaizen.methods.registry import method, settings_of
from kaizen.methods.seam import Method


@method("finetune", ClassifierObjective)
def build(config: RunConfig) -> Method:
    return Method(
        "finetune",
        distilled_objective(settings_of(config, ClassifierObjective)),
        [LabelledReplay(config.replay, config.seed)],
    )
