"""The weight-aligning part (Zhao et al., CVPR 2020): the new classes' output weights scaled
to the earlier classes' mean norm at each task's end (``classifier.weight_align``)."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from kaizen.errors import ConfigError
from kaizen.learner.learner import Learner
from kaizen.learner.refit import align_new_weights
from kaizen.methods.seam import Part, RunContext
from kaizen.models.heads import Classifier


class WeightAligning(Part):
    """After each task, :func:`align_new_weights` on the classifier's output layer, new classes
    being the task's classes no earlier task had. Keeps no state beyond the classifier's
    weights; the last task's factor is reported.

    Attributes:
        gamma: the factor applied at the last task's end (1 when it brought no new class or
            there were no earlier classes).
    """

    name: ClassVar[str] = "weight_align"

    def __init__(self) -> None:
        self.gamma = 1.0

    def prepare_learner(self, learner: Learner) -> None:
        if not isinstance(learner.classifier, Classifier):
            raise ConfigError(
                "classifier.weight_align=true rescales the output rows of one classifier over "
                "all classes: set model.heads=single, or classifier.weight_align=false"
            )

    def end_task(self, run: RunContext) -> None:
        earlier = set(run.earlier_classes)
        new = sorted(set(run.current.classes) - earlier)
        classifier = run.learner.classifier
        assert isinstance(classifier, Classifier)
        output = classifier.net[-1]
        assert isinstance(output, nn.Linear)
        self.gamma = align_new_weights(output, sorted(earlier), new)

    def report(self) -> dict[str, Any]:
        return {"gamma": self.gamma}
