"""CaSSLe (Fini et al., CVPR 2022) with Kaizen's classifier: SSL + feature distillation through
a predictor towards the previous task's frozen model + classifier, with labelled replay."""

from __future__ import annotations

from kaizen.config import RunConfig
from kaizen.methods.objective import FeatureDistillObjective, distilled_objective
from kaizen.methods.parts.replay import LabelledReplay
from kaizen.methods.parts.teacher import TeacherSnapshot
from kaizen.methods.registry import method, settings_of
from kaizen.methods.seam import Method


@method("cassle", FeatureDistillObjective)
def build(config: RunConfig) -> Method:
    settings = settings_of(config, FeatureDistillObjective)
    return Method(
        "cassle",
        distilled_objective(settings),
        [TeacherSnapshot(settings.teacher_batchnorm), LabelledReplay(config.replay, config.seed)],
        needs_ssl=True,
    )
