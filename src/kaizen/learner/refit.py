"""Post-hoc corrections of a classifier's bias towards the classes it was trained on last.

A classifier trained task after task sees the current task's classes in most of its rows and
the earlier ones only in a few replayed images, so it favours the newest classes. Two
corrections run at a task's end, on the backbone's current features:

- :func:`refit_classifier`: a class-balanced re-fit on the labelled images at hand (the kept
  earlier images and the task's own), each class drawn equally often, after the balanced
  fine-tuning of End-to-End Incremental Learning (Castro et al., ECCV 2018).
- :func:`align_new_weights`: weight aligning (Zhao et al., CVPR 2020), which rescales the
  output weights of the new classes to the mean norm of the old ones'.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from kaizen.learner.trainable import every_parameter_trainable
from kaizen.testpoints import reached


def balanced_draw(labels: Tensor, per_class: int, generator: torch.Generator) -> Tensor:
    """``per_class`` positions of every class of ``labels`` (N,), drawn uniformly with
    replacement among that class's rows, in a random order: int64 (classes x per_class,)."""
    draws = []
    for label in torch.unique(labels).tolist():
        rows = torch.nonzero(labels == label).squeeze(1)
        draws.append(rows[torch.randint(len(rows), (per_class,), generator=generator)])
    drawn = torch.cat(draws)
    return drawn[torch.randperm(len(drawn), generator=generator)]


def refit_classifier(
    classifier: nn.Module,
    features: Tensor,
    labels: Tensor,
    generator: torch.Generator,
    *,
    epochs: int,
    lr: float,
    samples_per_class: int,
    batch_size: int,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    point: str = "refit",
) -> None:
    """Train every parameter of ``classifier`` ((N, D) -> (N, K)) in place, from its current
    weights, on ``features`` (N, D) with ``labels`` (N,) int64: each epoch draws
    ``samples_per_class`` rows of every class (:func:`balanced_draw`), so that a class with 50
    kept images weighs as much as one with 1000. Cross-entropy over the classifier's
    columns of the classes present; SGD with momentum and a cosine decay of ``lr`` to 0 over
    all steps. Parameters frozen for training are trained too and frozen again. Each step
    passes the test point ``<point>.<step>`` (:mod:`kaizen.testpoints`)."""
    device = next(classifier.parameters()).device
    present = torch.unique(labels)
    column = torch.full((int(present.max()) + 1,), -1, dtype=torch.int64)
    column[present] = torch.arange(len(present))
    targets = column[labels].to(device)
    features, present = features.to(device), present.to(device)
    with every_parameter_trainable(classifier) as parameters:
        optimizer = torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay)
        steps_per_epoch = -(-samples_per_class * len(present) // batch_size)
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps_per_epoch)
        step = 0
        for _ in range(epochs):
            order = balanced_draw(labels, samples_per_class, generator).to(device)
            for batch in order.split(batch_size):
                logits = classifier(features[batch])[:, present]
                loss = F.cross_entropy(logits, targets[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                cosine.step()
                reached(f"{point}.{step}")
                step += 1


@torch.no_grad()
def align_new_weights(output: nn.Linear, old: Sequence[int], new: Sequence[int]) -> float:
    """Weight aligning (Zhao et al., CVPR 2020): multiply the output rows (and biases) of the
    ``new`` classes by gamma = mean ||w_old|| / mean ||w_new||, so that the newest classes'
    logits lose the scale their training gave them; returns gamma (1 when either set is
    empty). ``output`` maps (N, H) -> (N, K); rows are classes."""
    if not old or not new:
        return 1.0
    norms = output.weight.norm(dim=1)
    gamma = float(norms[list(old)].mean() / norms[list(new)].mean().clamp_min(1e-12))
    output.weight[list(new)] *= gamma
    if output.bias is not None:
        output.bias[list(new)] *= gamma
    return gamma
