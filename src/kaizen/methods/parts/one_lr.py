"""One learning rate for the whole model: sequential fine-tuning as SLCA's baseline runs it."""

from __future__ import annotations

from typing import Any, ClassVar

from kaizen.learner.optim import CLASSIFIER_GROUP
from kaizen.methods.seam import Part


class OneLearningRate(Part):
    """Every parameter group trains at the classifier's learning rate (``optim.classifier_lr``),
    the backbone included: no slow learner."""

    name: ClassVar[str] = "one_lr"

    def parameter_groups(self, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
        lr = next(group["initial_lr"] for group in groups if group["name"] == CLASSIFIER_GROUP)
        return [{**group, "initial_lr": lr} for group in groups]
