"""Loss terms: pure functions of one step's tensors, combined with weights by a strategy.

The Kaizen objective (Tang et al., WACV 2024, Eq. 1) at task t >= 1 is

    L = L_ssl + lambda_fe * L_fe_kd + w_cls * L_cls + lambda_c * L_cls_kd

Each term below is one summand. All take the views stacked: V M rows for V views of M images
(V = 2 for the SSL methods, 1 without them), view 1 first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from kaizen.learner.learner import Learner, LearnerOutputs
from kaizen.learner.symmetric_ce import symmetric_cross_entropy
from kaizen.learner.teacher import TeacherOutputs
from kaizen.ssl.distill import DECORRELATION_WEIGHT, distill_loss


@dataclass
class StepTensors:
    """Everything the terms of one step read.

    Attributes:
        views: (V M, C, H, W) augmented, normalised views.
        labels: (V M,) int64 labels of the rows, -1 where unlabelled.
        student: the learner's outputs on ``views``.
        teacher: the frozen previous model's outputs on ``views``, or None at the first task.
        replayed: (V M,) bool, True on the rows of replayed images; None when nothing is
            replayed.
        views_per_image: V.
    """

    views: Tensor
    labels: Tensor
    student: LearnerOutputs
    teacher: TeacherOutputs | None
    replayed: Tensor | None = None
    views_per_image: int = 2


def classifier_cross_entropy(logits: Tensor, labels: Tensor, views_per_image: int = 2) -> Tensor:
    """L_cls: cross-entropy on labelled rows, averaged per view and summed over the views.

    Kaizen (Tang et al., WACV 2024), Sec. 3.2. Rows with label -1 do not count; a batch with
    no labelled row gives 0 (with a graph), never NaN.

    Shapes: logits (V M, K), labels (V M,) -> scalar.
    """
    labelled_per_view = (labels >= 0).sum() / views_per_image
    total = F.cross_entropy(logits.float(), labels, ignore_index=-1, reduction="sum")
    return total / labelled_per_view.clamp_min(1)


def soft_label_distillation(
    logits: Tensor,
    teacher_logits: Tensor,
    temperature: float = 1.0,
    rows: Tensor | None = None,
) -> Tensor:
    """L_cls_kd: cross-entropy between the classifier and the frozen classifier's soft labels.

    Kaizen (Tang et al., WACV 2024), Sec. 3.2, after Hinton et al. 2015: the target of each row
    is softmax(teacher_logits / T); the loss is averaged over the rows (all of them, so both
    views, or those ``rows`` marks; 0 when it marks none) and multiplied by T^2, so that its
    gradients keep their size as T changes (Hinton et al.); the paper's T = 1 leaves it as is.

    Shapes: logits (R, K), teacher_logits (R, K), rows (R,) bool or None -> scalar.
    """
    targets = F.softmax(teacher_logits.float() / temperature, dim=1)
    log_probs = F.log_softmax(logits.float() / temperature, dim=1)
    per_row = -(targets * log_probs).sum(dim=1)
    if rows is None:
        return per_row.mean() * temperature**2
    weights = rows.to(per_row.dtype)
    return (per_row * weights).sum() / weights.sum().clamp_min(1.0) * temperature**2


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


def feature_distill_term(
    kind: str, temperature: float, decorrelation: tuple[float, float] = (DECORRELATION_WEIGHT, 1.0)
) -> TermFn:
    """L_fe_kd (CaSSLe, Fini et al., CVPR 2022): P(z) must match the frozen projections z'
    (``temperature`` and ``decorrelation`` as :func:`~kaizen.ssl.distill.distill_loss` takes)."""

    def term(step: StepTensors) -> Tensor:
        assert step.student.distilled is not None and step.teacher is not None
        distilled, target = step.student.distilled, step.teacher.projections
        return distill_loss(kind, distilled, target, temperature, decorrelation)

    return term


def classifier_term(step: StepTensors) -> Tensor:
    """L_cls on the step's rows."""
    return classifier_cross_entropy(step.student.logits, step.labels, step.views_per_image)


def classifier_distill_term(
    temperature: float,
    teacher_classes: Sequence[int] | None = None,
    replay_rows_only: bool = False,
) -> TermFn:
    """L_cls_kd on the step's rows, optionally narrowed (without host syncs).

    Args:
        temperature: T of :func:`soft_label_distillation`.
        teacher_classes: distil only over these classes (the ones the teacher was trained on),
            as Learning without Forgetting does (Li & Hoiem, ECCV 2016): both softmaxes run
            over those columns, so the new classes' logits are not pulled down; None: all.
        replay_rows_only: distil on the replayed rows only (0 when a step replays nothing).
    """
    columns: dict[torch.device, Tensor] = {}

    def term(step: StepTensors) -> Tensor:
        assert step.teacher is not None
        logits, teacher_logits = step.student.logits, step.teacher.logits
        rows = None
        if replay_rows_only:
            rows = step.replayed
            if rows is None:
                rows = torch.zeros(len(logits), dtype=torch.bool, device=logits.device)
        if teacher_classes is not None:
            device = logits.device
            if device not in columns:
                columns[device] = torch.tensor(list(teacher_classes), device=device)
            logits = logits.index_select(1, columns[device])
            teacher_logits = teacher_logits.index_select(1, columns[device])
        return soft_label_distillation(logits, teacher_logits, temperature, rows)

    return term


def current_task_term(
    current_classes: Sequence[int], loss: str, alpha: float = 1.0, beta: float = 0.1
) -> TermFn:
    """SLCA's training loss (Zhang et al., ICCV 2023): cross-entropy over the current task's
    logits only, so earlier heads' logits neither compete nor receive gradient; with ``loss``
    "sce", SLCA++'s symmetric cross-entropy alpha CE + beta RCE
    (:func:`~kaizen.learner.symmetric_ce.symmetric_cross_entropy`). Rows unlabelled or of
    another task's class do not count; averaged over the rows that do (0 when none does)."""
    columns: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def term(step: StepTensors) -> Tensor:
        logits, labels = step.student.logits, step.labels
        device = logits.device
        if device not in columns:
            position = torch.full((logits.shape[1] + 1,), -1, dtype=torch.int64, device=device)
            chosen = torch.tensor(list(current_classes), device=device)
            position[chosen] = torch.arange(len(chosen), device=device)
            columns[device] = (chosen, position)
        chosen, position = columns[device]
        targets = position[torch.where(labels >= 0, labels, logits.shape[1])]
        current = logits.index_select(1, chosen)
        if loss == "sce":
            return symmetric_cross_entropy(current, targets, alpha, beta)
        return F.cross_entropy(current.float(), targets, ignore_index=-1, reduction="sum") / (
            (targets >= 0).sum().clamp_min(1)
        )

    return term


def total_loss(terms: list[WeightedTerm], step: StepTensors) -> tuple[Tensor, dict[str, Tensor]]:
    """The weighted sum of ``terms`` and each term's unweighted value (detached)."""
    values = {term.name: term.fn(step) for term in terms}
    loss = torch.stack([term.weight * values[term.name] for term in terms]).sum()
    return loss, {name: value.detach() for name, value in values.items()}
