"""Classifier alignment from stored class statistics (SLCA, Zhang et al., ICCV 2023).

After each task, the mean and covariance of every new class's features are stored (old
classes keep theirs), and the classifier is trained on features sampled from N(mean, cov) of
every seen class, so that no class is favoured for having been trained last. The logits are
divided by the mean over task blocks of their L2 norm times a temperature (0.1 in SLCA), which
takes the scale of the logits out of the alignment's loss.

Memory: a class keeps its mean (D float64) and the Cholesky factor of its covariance, lower
triangle only, in float32: D (D + 1) / 2 * 4 bytes, 1.18 MB at D = 768 (the full float64
matrix would be 4.7 MB), so 200 classes of ViT-B features need 237 MB.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from kaizen.config import AlignSampling, AlignSchedule
from kaizen.learner.trainable import every_parameter_trainable
from kaizen.testpoints import reached

COVARIANCE_RIDGE = 1e-4
"""Added to every covariance's diagonal: a class with fewer images than dimensions stays
positive definite."""


class ClassStatistics:
    """Per-class feature means and covariance factors; shapes are for feature dimension D."""

    def __init__(self, feature_dim: int) -> None:
        self.feature_dim = feature_dim
        self.means: dict[int, Tensor] = {}
        """Class -> mean (D,) float64."""
        self.factors: dict[int, Tensor] = {}
        """Class -> packed lower triangle of L, cov + ridge I = L L^T: (D (D+1) / 2,) float32."""
        self._rows, self._cols = torch.tril_indices(feature_dim, feature_dim)

    @staticmethod
    def bytes_per_class(feature_dim: int) -> int:
        """Bytes one class's statistics take: its float64 mean and packed float32 factor."""
        return 8 * feature_dim + 4 * feature_dim * (feature_dim + 1) // 2

    @property
    def classes(self) -> list[int]:
        return sorted(self.means)

    def add(self, features: Tensor, labels: Tensor, replace: bool = False) -> list[int]:
        """Store the statistics of each class of ``labels`` (N,) from features (N, D): of the
        classes not stored yet, or with ``replace`` of all of them; returns the classes
        stored. Computed in float64."""
        if features.shape[1] != self.feature_dim:
            raise ValueError(
                f"features have {features.shape[1]} dimensions, not {self.feature_dim}"
            )
        added = []
        present = set(labels.tolist())
        for label in sorted(present if replace else present - set(self.means)):
            rows = features[labels == label].double()
            mean = rows.mean(dim=0)
            centred = rows - mean
            covariance = centred.T @ centred / max(len(rows) - 1, 1)
            covariance += COVARIANCE_RIDGE * torch.eye(self.feature_dim, dtype=torch.float64)
            factor = torch.linalg.cholesky(covariance)
            self.means[label] = mean.cpu()
            self.factors[label] = factor[self._rows, self._cols].float().cpu()
            added.append(label)
        return added

    def factor(self, label: int) -> Tensor:
        """The lower-triangular L of class ``label``: (D, D) float32."""
        full = torch.zeros(self.feature_dim, self.feature_dim)
        full[self._rows, self._cols] = self.factors[label]
        return full

    def covariance(self, label: int) -> Tensor:
        """cov + ridge I of class ``label``, as L L^T: (D, D) float64."""
        factor = self.factor(label).double()
        return factor @ factor.T

    def sample(
        self, classes: Sequence[int], per_class: int, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """``per_class`` features of each class drawn from N(mean, L L^T):
        features (len(classes) * per_class, D) float32 and their labels (same length,) int64."""
        features = []
        for label in classes:
            noise = torch.randn(per_class, self.feature_dim, generator=generator)
            features.append(self.means[label].float() + noise @ self.factor(label).T)
        labels = torch.tensor(classes).repeat_interleave(per_class)
        return torch.cat(features), labels

    def state_dict(self) -> dict[str, Any]:
        """For the run checkpoint: the feature dimension, the classes, their means and factors."""
        classes = self.classes
        state: dict[str, Any] = {"feature_dim": self.feature_dim, "classes": classes}
        if classes:
            state["means"] = torch.stack([self.means[c] for c in classes])
            state["factors"] = torch.stack([self.factors[c] for c in classes])
        return state

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> ClassStatistics:
        """The statistics :meth:`state_dict` saved."""
        statistics = cls(state["feature_dim"])
        for i, label in enumerate(state["classes"]):
            statistics.means[label] = state["means"][i]
            statistics.factors[label] = state["factors"][i]
        return statistics


def normalised_logits(logits: Tensor, task_blocks: Sequence[Tensor], temperature: float) -> Tensor:
    """logits (N, K) over the seen classes divided by (the mean over task blocks of each row's
    L2 norm on that block's columns) x ``temperature``; ``task_blocks`` index the columns of
    each task. Shapes: (N, K) -> (N, K)."""
    norms = torch.stack([logits[:, block].norm(dim=1) for block in task_blocks], dim=1)
    return logits / (norms.mean(dim=1, keepdim=True) * temperature + 1e-12)


def shrunk_means(task_index: int, block_tasks: Sequence[int]) -> list[float]:
    """SLCA's mean shrinkage at task t: the means of task i's classes are multiplied by
    0.9 + 0.1 (i + 1) / (t + 1) before sampling, so that older classes, whose statistics come
    from an older backbone, are drawn closer to the origin (1 for the current task)."""
    return [0.9 + 0.1 * (i + 1) / (task_index + 1) for i in block_tasks]


def sampled_feature_factors(
    ages: Tensor, feature_scale: float, generator: torch.Generator
) -> Tensor:
    """SLCA++'s old-task feature scaling during alignment: a feature sampled for a class whose
    task ended ``age`` tasks ago is multiplied by 1 / (1 + u age), u ~ U[mu - 0.01, mu + 0.01]
    per sample, mu = ``feature_scale``. Shapes: ages (N,) -> factors (N,) float32."""
    jitter = torch.rand(len(ages), generator=generator) - 0.5
    return 1.0 / (1.0 + (feature_scale + 0.02 * jitter) * ages)


def inference_input_scales(task_index: int, feature_scale: float, tasks: int) -> Tensor:
    """SLCA++'s fixed inference multipliers after the alignment at task t: head i reads the
    features times 1 + mu (t - i) (1 for the current task). Shapes: -> (tasks,) float32."""
    ages = (task_index - torch.arange(tasks)).clamp_min(0)
    return 1.0 + feature_scale * ages.float()


def _drawn_features(
    statistics: ClassStatistics,
    task_classes: Sequence[Sequence[int]],
    per_class: int,
    generator: torch.Generator,
    mean_factors: Sequence[float] | None,
    ages: Sequence[int] | None,
    feature_scale: float,
) -> Tensor:
    """One draw of ``per_class`` features for every class of ``task_classes``, with SLCA's
    mean shrinkage (``mean_factors`` per task block) and SLCA++'s old-task feature scaling
    (``ages`` per task block, when ``feature_scale`` > 0) applied: (N, D) float32, the rows of
    each class in turn, in the order of ``task_classes``, N = seen classes x ``per_class``."""
    seen = [label for classes in task_classes for label in classes]
    features, labels = statistics.sample(seen, per_class, generator)
    block_of_row = torch.cat(
        [torch.full((len(c) * per_class,), b) for b, c in enumerate(task_classes)]
    )
    if mean_factors is not None:
        means = torch.stack([statistics.means[int(label)] for label in labels]).float()
        factors = torch.tensor(mean_factors, dtype=torch.float32)[block_of_row]
        features = features + (factors - 1.0).unsqueeze(1) * means
    if feature_scale > 0 and ages is not None:
        row_ages = torch.tensor(list(ages), dtype=torch.float32)[block_of_row]
        features = features * sampled_feature_factors(row_ages, feature_scale, generator)[:, None]
    return features


def align_classifier(
    classifier: nn.Module,
    statistics: ClassStatistics,
    task_classes: Sequence[Sequence[int]],
    generator: torch.Generator,
    *,
    samples_per_class: int = 256,
    epochs: int = 5,
    lr: float = 0.01,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    temperature: float = 0.1,
    batch_size: int = 128,
    sampling: AlignSampling = "once",
    schedule: AlignSchedule = "step",
    mean_factors: Sequence[float] | None = None,
    ages: Sequence[int] | None = None,
    feature_scale: float = 0.0,
    point: str = "align",
) -> None:
    """Train every parameter of ``classifier`` (features (N, D) -> logits (N, K)) in place on
    features sampled from the statistics of every class of ``task_classes`` (the classes of
    the task blocks 0..t); parameters frozen for training are trained too and frozen again.

    ``sampling``: ``once``, ``samples_per_class`` features per class drawn before the first
    epoch and shuffled anew each epoch, or ``epoch``, a new draw at every epoch (SLCA's
    released ``_stage2_compact_classifier``). SGD with cosine decay to 0 (``schedule``:
    stepped after every batch over all steps, or after every epoch over ``epochs``, SLCA's
    ``CosineAnnealingLR(T_max=ca_epochs)``); cross-entropy of :func:`normalised_logits`
    restricted to the seen classes. Every seen class must have statistics. Per task block,
    ``mean_factors`` multiplies the class means (:func:`shrunk_means`) and ``ages`` (tasks
    since the block's task) drive SLCA++'s scaling of the sampled features
    (:func:`sampled_feature_factors`) when ``feature_scale`` > 0. Each step passes the test
    point ``<point>.<step>``, steps counted over all epochs (:mod:`kaizen.testpoints`).
    """
    seen = [label for classes in task_classes for label in classes]
    missing = [label for label in seen if label not in statistics.means]
    if missing:
        raise ValueError(f"classes without statistics cannot be aligned: {missing}")
    device = next(classifier.parameters()).device
    column = {label: i for i, label in enumerate(seen)}
    targets = torch.tensor([column[label] for label in seen], device=device)
    targets = targets.repeat_interleave(samples_per_class)
    seen_columns = torch.tensor(seen, device=device)
    blocks, start = [], 0
    for classes in task_classes:
        blocks.append(torch.arange(start, start + len(classes), device=device))
        start += len(classes)
    with every_parameter_trainable(classifier) as parameters:
        optimizer = torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay)
        steps_per_epoch = math.ceil(len(targets) / batch_size)
        cosine_steps = epochs if schedule == "epoch" else epochs * steps_per_epoch
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cosine_steps)
        draw = functools.partial(
            _drawn_features,
            statistics,
            task_classes,
            samples_per_class,
            generator,
            mean_factors,
            ages,
            feature_scale,
        )
        features, step = draw().to(device), 0
        for epoch in range(epochs):
            if epoch > 0 and sampling == "epoch":
                features = draw().to(device)
            order = torch.randperm(len(features), generator=generator).to(device)
            for batch in order.split(batch_size):
                logits = classifier(features[batch])[:, seen_columns]
                loss = F.cross_entropy(
                    normalised_logits(logits, blocks, temperature), targets[batch]
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if schedule == "step":
                    cosine.step()
                reached(f"{point}.{step}")
                step += 1
            if schedule == "epoch":
                cosine.step()
