"""The training step: gradient-norm clipping before the update."""

from __future__ import annotations

import pytest
import torch
from lightning.fabric import Fabric

from conftest import small_learner_config
from kaizen.data.augment import augment_for
from kaizen.engine.step import TrainStep
from kaizen.learner.learner import build_learner
from kaizen.learner.optim import build_optimizer
from kaizen.methods.build import build_method
from kaizen.methods.seam import TaskClasses


def _gradient_norm_at_update(clip: float | None) -> float:
    """The global L2 norm of the gradients the optimiser sees in one kaizen step."""
    torch.manual_seed(0)
    config = small_learner_config()
    fabric = Fabric(accelerator="cpu", devices=1)
    learner = build_learner(config, 3, 6)
    module = fabric.setup_module(learner)
    optimizer = fabric.setup_optimizers(build_optimizer(learner, config.optim, 8))
    seen: list[float] = []
    update = optimizer.step

    def step_and_record(*args, **kwargs):
        grads = [p.grad for p in learner.parameters() if p.grad is not None]
        seen.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))
        return update(*args, **kwargs)

    optimizer.step = step_and_record
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    terms = build_method(config).terms(learner, None, TaskClasses([]))
    augment = augment_for(config.augment, images)
    step = TrainStep(fabric, learner, module, None, terms, optimizer, augment, False, clip)
    step(images, torch.arange(8) % 6, 0.99)
    return seen[0]


def test_clipping_bounds_the_global_gradient_norm_and_is_off_by_default():
    unclipped = _gradient_norm_at_update(None)
    limit = unclipped / 10
    assert _gradient_norm_at_update(limit) == pytest.approx(limit, rel=1e-3)
    assert _gradient_norm_at_update(unclipped * 10) == pytest.approx(unclipped, rel=1e-6)
