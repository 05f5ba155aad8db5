"""Backbone features of labelled training images, for the parts that act on the classifier."""

from __future__ import annotations

import torch
from torch import Tensor

from kaizen.eval.probes import extract_features
from kaizen.methods.seam import Part, RunContext

FEATURE_BATCH = 512
"""Images read and passed through the backbone at a time."""


def training_features(run: RunContext, indices: Tensor) -> tuple[Tensor, Tensor]:
    """Features (N, D) on the CPU of the training images ``indices`` (N,) from the current
    backbone in eval mode, read a batch at a time, and their labels (N,) int64."""
    stream = run.stream
    features = torch.cat(
        [
            extract_features(
                run.learner.backbone,
                stream.train_images.gather(batch.to(stream.train_images.index_device)),
                stream.normalize,
                FEATURE_BATCH,
            ).cpu()
            for batch in indices.split(FEATURE_BATCH)
        ]
    )
    return features, stream.data.train.labels[indices.cpu()]


def kept_indices(memory: list[Part]) -> Tensor | None:
    """The earlier tasks' images one of the parts ``memory`` keeps, if one keeps any."""
    kept = (part.memory_indices() for part in memory)
    return next((indices for indices in kept if indices is not None), None)
