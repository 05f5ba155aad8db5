"""LUMP (Madaan et al., "Representational Continuity for Unsupervised Continual Learning",
ICLR 2022): the SSL loss on views mixed with a reservoir buffer of earlier images; no labels,
no distillation, no classifier training."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from kaizen.config import RunConfig, StrategySettings
from kaizen.learner.learner import Learner
from kaizen.learner.teacher import Teacher
from kaizen.learner.terms import WeightedTerm, ssl_term
from kaizen.methods.parts.mixup import ReservoirMixup
from kaizen.methods.registry import method, settings_of
from kaizen.methods.seam import Method, TaskClasses


class LumpSettings(StrategySettings):
    """LUMP's reservoir buffer and mixup. The LUMP presets set what LUMP's released code runs
    (``step``, ``stored``); the defaults keep the buffer of earlier kaizen-cl releases."""

    buffer_size: int = Field(256, ge=1, description="Raw training images kept over the stream.")
    alpha: float = Field(0.4, gt=0.0, description="Mixup weight lambda ~ Beta(alpha, alpha).")
    buffer_update: Literal["task-end", "step"] = Field(
        "task-end",
        description="step: the reservoir is offered every step's batch after the update, the "
        "current task's images included, so mixup starts at the second step (LUMP's released "
        "code); task-end: it is offered each task's images once the task is trained, and the "
        "first task trains without mixup.",
    )
    buffer_views: Literal["fresh", "stored"] = Field(
        "fresh",
        description="stored: buffer images drawn without replacement, view 1 mixed with a weak "
        "crop + flip of one and view 2 with the augmented view it entered the buffer with "
        "(LUMP's released code; needs buffer_update=step); fresh: drawn with replacement, both "
        "views mixed with fresh augmentations.",
    )

    @model_validator(mode="after")
    def _stored_views_need_step_updates(self) -> LumpSettings:
        if self.buffer_views == "stored" and self.buffer_update != "step":
            raise ValueError(
                "buffer_views=stored keeps the view an image had in the step it entered the "
                "buffer; set buffer_update=step"
            )
        return self


def _ssl_only(
    learner: Learner, teacher: Teacher | None, classes: TaskClasses
) -> list[WeightedTerm]:
    return [WeightedTerm("ssl", 1.0, ssl_term(learner))]


@method("lump", LumpSettings)
def build(config: RunConfig) -> Method:
    mixup = ReservoirMixup(settings_of(config, LumpSettings), config.seed)
    return Method("lump", _ssl_only, [mixup], needs_ssl=True)
