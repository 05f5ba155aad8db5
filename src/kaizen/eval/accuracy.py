"""Accuracy-matrix rows: top-1 accuracy on each task's test set."""

from __future__ import annotations

import torch
from torch import Tensor

from kaizen.data.augment import Normalize
from kaizen.data.scenario import Task
from kaizen.learner.learner import Learner

CLASSIFIER_PROTOCOL = (
    "classifier, single head over all classes (task-agnostic, argmax over all classes, no task id)"
)


def scenario_protocol(kind: str, protocol: str) -> str:
    """``protocol`` as a domain-incremental stream states it (the same classes in every task,
    task j's test set in task j's domain); the other scenarios' protocols are unchanged."""
    return f"domain-incremental, {protocol}" if kind == "domain-incremental" else protocol


@torch.no_grad()
def predict(learner: Learner, images: Tensor, normalize: Normalize, batch_size: int) -> Tensor:
    """Predicted classes (N,) for uint8 images (N, C, H, W), the learner in eval mode."""
    was_training = learner.training
    learner.eval()
    predictions = [
        learner.classify(normalize(images[start : start + batch_size])).argmax(dim=1)
        for start in range(0, len(images), batch_size)
    ]
    learner.train(was_training)
    return torch.cat(predictions) if predictions else torch.empty(0, dtype=torch.int64)


def per_task_accuracy(correct: Tensor, tasks: list[Task]) -> list[float]:
    """Mean of ``correct`` (bool (M,) over the test split) on each task's test indices."""
    return [float(correct[task.test_indices.to(correct.device)].float().mean()) for task in tasks]
