"""Loss terms: pure functions of one step's tensors, combined with weights by a strategy.

The Kaizen objective (Tang et al., WACV 2024, Eq. 1) at task t >= 1 is

    L = L_ssl + lambda_fe * L_fe_kd + w_cls * L_cls + lambda_c * L_cls_kd

Each term below is one summand. All take both views stacked: 2M rows, view 1 first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from kaizen.continual.learner import Learner, LearnerOutputs
from kaizen.continual.teacher import TeacherOutputs
from kaizen.ssl.distill import distill_loss


@dataclass
class StepTensors:
    """Everything the terms of one step read.

    Attributes:
        views: (2M, C, H, W) augmented, normalised views.
        labels: (2M,) int64 labels of the rows, -1 where unlabelled.
        student: the learner's outputs on ``views``.
        teacher: the frozen previous model's outputs on ``views``, or None at the first task.
    """

    views: Tensor
    labels: Tensor
    student: LearnerOutputs
    teacher: TeacherOutputs | None


def classifier_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """L_cls: cross-entropy on labelled rows, averaged per view and summed over the two views.

    Kaizen (Tang et al., WACV 2024), Sec. 3.2. Rows with label -1 do not count; a batch with
    no labelled row gives 0 (with a graph), never NaN.

    Shapes: logits (2M, K), labels (2M,) -> scalar.
    """
    labelled_per_view = (labels >= 0).sum() / 2
    total = F.cross_entropy(logits.float(), labels, ignore_index=-1, reduction="sum")
    return total / labelled_per_view.clamp_min(1)


def soft_label_distillation(
    logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0
) -> Tensor:
    """L_cls_kd: cross-entropy between the classifier and the frozen classifier's soft labels.

    Kaizen (Tang et al., WACV 2024), Sec. 3.2, after Hinton et al. 2015: the target of each row
    is softmax(teacher_logits / T); the loss is averaged over all rows (so over both views).
    Applies to every row, labelled or not.

    Shapes: logits (2M, K), teacher_logits (2M, K) -> scalar.
    """
    targets = F.softmax(teacher_logits.float() / temperature, dim=1)
    log_probs = F.log_softmax(logits.float() / temperature, dim=1)
    return -(targets * log_probs).sum(dim=1).mean()


TermFn = Callable[[StepTensors], Tensor]


@dataclass(frozen=True)
class WeightedTerm:
    """One named summand of a strategy's loss: ``weight * fn(step)``."""

    name: str
    weight: float
    fn: TermFn


def ssl_term(learner: Learner) -> TermFn:
    """L_ssl: the SSL method's own loss on the two views."""

    def term(step: StepTensors) -> Tensor:
        return learner.ssl.loss(step.student.features, step.student.projections, step.views)

    return term


def feature_distill_term(kind: str, temperature: float) -> TermFn:
    """L_fe_kd (CaSSLe, Fini et al., CVPR 2022): P(z) must match the frozen projections z'."""

    def term(step: StepTensors) -> Tensor:
        assert step.student.distilled is not None and step.teacher is not None
        return distill_loss(kind, step.student.distilled, step.teacher.projections, temperature)

    return term


def classifier_term(step: StepTensors) -> Tensor:
    """L_cls on the step's rows."""
    return classifier_cross_entropy(step.student.logits, step.labels)


def classifier_distill_term(temperature: float) -> TermFn:
    """L_cls_kd on the step's rows."""

    def term(step: StepTensors) -> Tensor:
        assert step.teacher is not None
        return soft_label_distillation(step.student.logits, step.teacher.logits, temperature)

    return term


def total_loss(terms: list[WeightedTerm], step: StepTensors) -> tuple[Tensor, dict[str, Tensor]]:
    """The weighted sum of ``terms`` and each term's unweighted value (detached)."""
    values = {term.name: term.fn(step) for term in terms}
    loss = torch.stack([term.weight * values[term.name] for term in terms]).sum()
    return loss, {name: value.detach() for name, value in values.items()}
