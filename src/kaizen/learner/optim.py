"""Optimisers (SGD with LARS, SGD, AdamW) and the per-task warm-up + cosine schedule."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from kaizen.config import OptimConfig
from kaizen.learner.learner import Learner


class LARS(torch.optim.Optimizer):
    """SGD with momentum and layer-wise adaptive rate scaling (You et al., 2017).

    For a parameter w with gradient g in a group with ``lars=True`` and w of rank > 1, the
    update uses the trust ratio eta * ||w|| / (||g|| + wd * ||w||); with ``clip`` the ratio is
    divided by the learning rate and capped at 1 (as in SimCLR/BYOL implementations). Biases and
    normalisation parameters (rank 1) and groups with ``lars=False`` are plain SGD.
    """

    def __init__(
        self,
        params: Iterable[dict],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        eta: float = 0.02,
        clip: bool = True,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "eta": eta,
            "clip": clip,
            "lars": True,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: None = None) -> None:  # type: ignore[override]
        """One update of every group, with multi-tensor (foreach) kernels and no host sync."""
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            decay = group["weight_decay"]
            updates = list(torch._foreach_add(grads, params, alpha=decay)) if decay else list(grads)
            if group["lars"]:
                adapted = [i for i, p in enumerate(params) if p.ndim > 1]
                ratios = self._trust_ratios(
                    [params[i] for i in adapted], [grads[i] for i in adapted], group
                )
                for i, ratio in zip(adapted, ratios, strict=True):
                    updates[i] = updates[i] * ratio
            buffers = [self.state[p].get("momentum_buffer") for p in params]
            if any(buffer is None for buffer in buffers):
                buffers = [update.clone() for update in updates]
                for param, buffer in zip(params, buffers, strict=True):
                    self.state[param]["momentum_buffer"] = buffer
            else:
                torch._foreach_mul_(buffers, group["momentum"])
                torch._foreach_add_(buffers, updates)
            torch._foreach_add_(params, buffers, alpha=-group["lr"])

    @staticmethod
    def _trust_ratios(params: list[Tensor], grads: list[Tensor], group: dict) -> list[Tensor]:
        """eta ||w|| / (||g|| + wd ||w||) per tensor (clipped at lr); 1 where a norm is 0."""
        if not params:
            return []
        param_norms = torch.stack(torch._foreach_norm(params))
        grad_norms = torch.stack(torch._foreach_norm(grads))
        ratios = group["eta"] * param_norms / (grad_norms + group["weight_decay"] * param_norms)
        if group["clip"]:
            ratios = torch.clamp(ratios / group["lr"], max=1.0)
        usable = (param_norms > 0) & (grad_norms > 0)
        return list(torch.where(usable, ratios, torch.ones_like(ratios)).unbind())


def _split_rank(params: list[nn.Parameter]) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``params`` of rank above 1 (weights), and the others (norms and biases)."""
    weights = [p for p in params if p.ndim > 1]
    others = [p for p in params if p.ndim <= 1]
    return weights, others


CLASSIFIER_GROUP = "classifier"
"""The ``name`` of the classifier's parameter group."""


def parameter_groups(learner: Learner, config: OptimConfig, batch_size: int) -> list[dict]:
    """Feature-extractor and classifier groups, each with its base lr in ``initial_lr`` and a
    ``name`` (``extractor``, ``extractor_norms_biases``, :data:`CLASSIFIER_GROUP`).

    The feature extractor (backbone, SSL heads, distillation predictor) uses ``lr`` scaled by
    batch/256; biases and norms take no LARS scaling, and no weight decay unless
    ``weight_decay_on`` is ``all``. The classifier uses ``classifier_lr`` and
    ``classifier_weight_decay`` (on all its parameters), and LARS scaling of its weights only
    with ``lars_classifier``.
    """
    scale = batch_size / 256 if config.scale_lr_by_batch else 1.0
    classifier_ids = {id(p) for p in learner.classifier.parameters()}
    extractor = [p for p in learner.parameters() if p.requires_grad and id(p) not in classifier_ids]
    weights, others = _split_rank(extractor)
    lr = config.lr * scale
    others_decay = config.weight_decay if config.weight_decay_on == "all" else 0.0
    return [
        {
            "name": "extractor",
            "params": weights,
            "initial_lr": lr,
            "weight_decay": config.weight_decay,
            "lars": True,
        },
        {
            "name": "extractor_norms_biases",
            "params": others,
            "initial_lr": lr,
            "weight_decay": others_decay,
            "lars": False,
        },
        {
            "name": CLASSIFIER_GROUP,
            "params": [p for p in learner.classifier.parameters() if p.requires_grad],
            "initial_lr": config.classifier_lr,
            "weight_decay": config.classifier_weight_decay,
            "lars": config.lars_classifier,
        },
    ]


GroupsHook = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
"""Rewrites the parameter groups of :func:`parameter_groups` (a method's parts do)."""


def build_optimizer(
    learner: Learner,
    config: OptimConfig,
    batch_size: int,
    adjust_groups: GroupsHook | None = None,
) -> torch.optim.Optimizer:
    """A new optimiser for one task (state is not carried across tasks), over the groups of
    :func:`parameter_groups` as ``adjust_groups`` rewrites them."""
    groups = parameter_groups(learner, config, batch_size)
    if adjust_groups is not None:
        groups = adjust_groups(groups)
    for group in groups:
        group["lr"] = group["initial_lr"]
    if config.name == "lars":
        return LARS(
            groups,
            lr=groups[0]["lr"],
            momentum=config.momentum,
            eta=config.lars_eta,
            clip=config.lars_clip,
        )
    if config.name == "sgd":
        for group in groups:
            group.pop("lars")
        return torch.optim.SGD(groups, lr=groups[0]["lr"], momentum=config.momentum)
    for group in groups:
        group.pop("lars")
    return torch.optim.AdamW(groups, lr=groups[0]["lr"])


def lr_factor(step: int, total_steps: int, warmup_steps: int, start: float, end: float) -> float:
    """Multiplier of each group's base lr at ``step``: linear warm-up, then cosine decay.

    Warm-up goes from ``start`` to 1 over ``warmup_steps``; then the factor falls from 1 to
    ``end`` along a half cosine over the remaining steps.
    """
    if step < warmup_steps:
        return start + (1.0 - start) * step / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def epoch_lr_factor(epoch: int, epochs: int, warmup_epochs: int, start: float, end: float) -> float:
    """Multiplier of a group's base lr during ``epoch`` when the lr changes once per epoch.

    The closed form of the linear warm-up + cosine schedule that Kaizen's released code steps
    once per epoch (Lightning Bolts' ``LinearWarmupCosineAnnealingLR``): ``start`` at epoch 0,
    rising linearly to 1 at epoch ``warmup_epochs - 1``; from epoch ``warmup_epochs`` on, a half
    cosine from 1 down to ``end`` at epoch ``epochs``.
    """
    if epoch < warmup_epochs:
        return start + epoch * (1.0 - start) / max(1, warmup_epochs - 1)
    progress = (epoch - warmup_epochs) / max(1, epochs - warmup_epochs)
    return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def step_factor(epoch: int, milestones: list[int], decay: float) -> float:
    """Multiplier of the step schedule at ``epoch``: ``decay`` to the number of milestones
    reached (SLCA's MultiStepLR: the lr drops at the start of each milestone epoch)."""
    return decay ** sum(epoch >= milestone for milestone in milestones)


class TaskSchedule:
    """Sets every group's lr at each step of one task: :func:`lr_factor` (warm-up, cosine),
    :func:`epoch_lr_factor` with ``optim.lr_update=epoch``, or with ``optim.schedule=step`` the
    warm-up and then :func:`step_factor`, or with ``optim.schedule=constant`` the warm-up and
    then the base lr. The warm-up's start and the cosine's floor are fractions of each group's
    base lr, or with ``optim.lr_bounds=absolute`` the same lr for every group."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        config: OptimConfig,
        steps_per_epoch: int,
        epochs: int,
    ) -> None:
        self.optimizer = optimizer
        self.config = config
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = steps_per_epoch * epochs
        self.warmup_steps = min(self.total_steps, round(config.warmup_epochs * steps_per_epoch))
        self.epochs = epochs
        self.start = config.warmup_start_lr / config.lr
        self.end = config.min_lr / config.lr

    def _bounds(self, base_lr: float) -> tuple[float, float]:
        """The warm-up's start and the cosine's floor as multipliers of ``base_lr``."""
        if self.config.lr_bounds == "relative":
            return self.start, self.end
        return self.config.warmup_start_lr / base_lr, self.config.min_lr / base_lr

    def _factor(self, step: int, base_lr: float) -> float:
        epoch = step // self.steps_per_epoch
        if self.config.schedule == "step" and step >= self.warmup_steps:
            return step_factor(epoch, self.config.milestones, self.config.lr_decay)
        if self.config.schedule == "constant" and step >= self.warmup_steps:
            return 1.0
        start, end = self._bounds(base_lr)
        if self.config.lr_update == "epoch":
            warmup = round(self.config.warmup_epochs)
            return epoch_lr_factor(epoch, self.epochs, warmup, start, end)
        return lr_factor(step, self.total_steps, self.warmup_steps, start, end)

    def set(self, step: int) -> None:
        for group in self.optimizer.param_groups:
            base_lr = group["initial_lr"]
            group["lr"] = base_lr * self._factor(step, base_lr) if base_lr > 0 else 0.0
