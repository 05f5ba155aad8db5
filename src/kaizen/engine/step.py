"""One training step: augment, forward student and teacher, weighted loss, backward, update."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import cast

import torch
from lightning.fabric import Fabric
from torch import Tensor, nn
from torch.profiler import record_function

from kaizen.config import TrainConfig
from kaizen.data.augment import ViewAugment
from kaizen.learner.learner import Learner, LearnerOutputs, LossValues
from kaizen.learner.teacher import Teacher
from kaizen.learner.terms import StepTensors, WeightedTerm, total_loss
from kaizen.models.blocks import BlockBackbone


def prepare_learner(learner: Learner, train: TrainConfig) -> Learner:
    """``learner`` as ``train`` asks to train it: synchronised BatchNorm, channels-last layout,
    a compiled backbone. The caller sets it up with Fabric afterwards."""
    if train.sync_batchnorm:
        learner = nn.SyncBatchNorm.convert_sync_batchnorm(learner)
    if train.channels_last:
        # Module.to takes memory_format; torch's overloads of it leave the keyword out.
        learner = learner.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    if train.compile:
        learner.backbone.compile()
    return learner


class TrainStep:
    """The hot path of training, shared by the trainer and the benchmark.

    Its parts are labelled for ``torch.profiler`` as ``kaizen.augment``,
    ``kaizen.shared_prefix`` (the frozen blocks student and teacher share), ``kaizen.teacher``,
    ``kaizen.forward_and_losses`` (the momentum encoder's forward included), ``kaizen.backward``
    and ``kaizen.optimizer_and_ema``.

    Args:
        fabric: the Fabric instance that set up ``module`` and ``optimizer``.
        learner: the learner (unwrapped), for its SSL method's momentum update.
        module: ``learner`` as returned by ``fabric.setup_module``.
        teacher: the frozen previous model, or None.
        terms: the weighted loss terms of the task.
        optimizer: the task's optimiser, set up by Fabric.
        augment: uint8 (B, C, H, W) -> V normalised views (V B, C, H, W), V the SSL method's.
        channels_last: feed the views in NHWC layout (the learner must be converted too).
        clip_grad_norm: rescale all gradients to at most this global L2 norm before the update
            (after unscaling in 16-bit mixed precision); None: no clipping.
        transform_views: the method's transform of the views (V B, C, H, W) before the teacher
            and the loss, under no_grad (LUMP's mixup); None: the views as augmented.
    """

    def __init__(
        self,
        fabric: Fabric,
        learner: Learner,
        module: nn.Module,
        teacher: Teacher | None,
        terms: list[WeightedTerm],
        optimizer: torch.optim.Optimizer,
        augment: ViewAugment,
        channels_last: bool = False,
        clip_grad_norm: float | None = None,
        transform_views: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        self.fabric = fabric
        self.learner = learner
        self.module = module
        self.teacher = teacher
        self.terms = terms
        self.optimizer = optimizer
        self.augment = augment
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.with_distill = any(term.name == "feature_distill" for term in terms)
        self.shared_depth = (
            teacher.shared_prefix_depth(learner.backbone) if teacher is not None else 0
        )
        """Leading frozen blocks the student and the teacher share: run once per step for both."""
        self.clip_grad_norm = clip_grad_norm
        self.transform_views = transform_views
        self.backward_region: Callable[[], AbstractContextManager[None]] = nullcontext
        """Entered around the backward pass (a FLOP counter on the measured step)."""

    def __call__(
        self, images: Tensor, labels: Tensor, tau: float, replayed: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Train on uint8 images (B, C, H, W) with labels (B,) (-1 = unlabelled).

        ``tau`` is the momentum-encoder EMA rate for this step (ignored by methods without one);
        ``replayed`` (B,) bool marks the replayed images (None: none is).
        Returns each term's unweighted value as a detached device tensor (no host sync).
        """
        with torch.no_grad(), record_function("kaizen.augment"):
            views = self.augment(images)
            if self.transform_views is not None:
                views = self.transform_views(views)
            views = views.contiguous(memory_format=self.memory_format)
        views_per_image = self.learner.ssl.views
        labels = labels.repeat(views_per_image)
        replayed_rows = replayed.repeat(views_per_image) if replayed is not None else None
        with self.fabric.autocast():
            inputs = views
            if self.shared_depth:
                with record_function("kaizen.shared_prefix"):
                    # A shared prefix exists only between block backbones.
                    backbone = cast(BlockBackbone, self.learner.backbone)
                    inputs = backbone.prefix_features(views, self.shared_depth)
            with record_function("kaizen.teacher"):
                teacher_outputs = (
                    self.teacher(inputs, self.shared_depth) if self.teacher is not None else None
                )

            def loss_fn(outputs: LearnerOutputs) -> LossValues:
                step = StepTensors(
                    views, labels, outputs, teacher_outputs, replayed_rows, views_per_image
                )
                return total_loss(self.terms, step)

            with record_function("kaizen.forward_and_losses"):
                loss, values = self.module(
                    inputs,
                    with_distill=self.with_distill,
                    loss_fn=loss_fn,
                    start_block=self.shared_depth,
                )
        with record_function("kaizen.backward"):
            self.optimizer.zero_grad(set_to_none=True)
            with self.backward_region():
                self.fabric.backward(loss)
        with record_function("kaizen.optimizer_and_ema"):
            if self.clip_grad_norm is not None:
                self.fabric.clip_gradients(
                    self.module,
                    self.optimizer,
                    max_norm=self.clip_grad_norm,
                    error_if_nonfinite=False,
                )
            self.optimizer.step()
            if self.learner.ssl.uses_momentum:
                self.learner.ssl.momentum_update(self.learner.backbone, tau)
        return values
