"""Accuracy-matrix rows: top-1 accuracy on each task's test set."""

from __future__ import annotations

import torch
from torch import Tensor

from kaizen.data.augment import Normalize
from kaizen.data.scenario import Task
from kaizen.learner.learner import Learner

CLASSIFIER_PROTOCOLS = {
    "all": "classifier, single head over all classes (task-agnostic, argmax over all classes, "
    "no task id)",
    "seen": "classifier over the classes of the tasks seen so far (task-agnostic, no task id; "
    "after task i the argmax runs over the classes of tasks 0..i, one head or one head per task "
    "read as one)",
}
"""The classifier's protocol for each ``eval.classes``."""


def scenario_protocol(kind: str, protocol: str) -> str:
    """``protocol`` as a domain-incremental stream states it (the same classes in every task,
    task j's test set in task j's domain); the other scenarios' protocols are unchanged."""
    return f"domain-incremental, {protocol}" if kind == "domain-incremental" else protocol


def seen_classes(tasks: list[Task]) -> Tensor:
    """The classes of ``tasks`` (the tasks seen so far), sorted: (K,) int64."""
    return torch.tensor(sorted({label for task in tasks for label in task.classes}))


@torch.no_grad()
def predict(
    learner: Learner,
    images: Tensor,
    normalize: Normalize,
    batch_size: int,
    classes: Tensor | None = None,
) -> Tensor:
    """Predicted classes (N,) for uint8 images (N, C, H, W), the learner in eval mode.

    ``classes`` (K,) restricts the argmax to those classes (None: every logit)."""
    was_training = learner.training
    learner.eval()
    predictions, hidden = [], None
    for start in range(0, len(images), batch_size):
        logits = learner.classify(normalize(images[start : start + batch_size]))
        if classes is not None:
            if hidden is None:  # (C,): 0 for the kept classes, -inf for the others
                hidden = torch.full_like(logits[0], float("-inf"))
                hidden[classes.to(logits.device)] = 0.0
            logits = logits + hidden
        predictions.append(logits.argmax(dim=1))
    learner.train(was_training)
    return torch.cat(predictions) if predictions else torch.empty(0, dtype=torch.int64)


def per_task_accuracy(correct: Tensor, tasks: list[Task]) -> list[float]:
    """Mean of ``correct`` (bool (M,) over the test split) on each task's test indices."""
    return [float(correct[task.test_indices.to(correct.device)].float().mean()) for task in tasks]
