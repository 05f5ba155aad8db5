"""Shared fixtures: a tiny, fast run configuration on synthetic data."""

from __future__ import annotations

from typing import Any

import pytest

from kaizen.config import RunConfig, build_config


def tiny_tree(strategy: str = "kaizen", ssl: str = "simclr") -> dict[str, Any]:
    """A config tree that trains 3 tasks of 2 synthetic classes in about a second on a CPU."""
    return {
        "name": f"tiny-{ssl}-{strategy}",
        "data": {
            "name": "synthetic",
            "synthetic": {
                "num_classes": 6,
                "train_per_class": 24,
                "test_per_class": 8,
                "image_size": 16,
                "channels": 3,
            },
        },
        "scenario": {"num_tasks": 3},
        "model": {"backbone": "convnet", "width": 0.25, "classifier_hidden_dim": 32},
        "ssl": {
            "method": ssl,
            "proj_hidden_dim": 32,
            "proj_output_dim": 16,
            "pred_hidden_dim": 32,
            "queue_size": 64,
        },
        "strategy": {"name": strategy, "distill_predictor_hidden_dim": 32},
        "replay": {"fraction_per_class": 0.25, "batch_size": 4},
        "optim": {"warmup_epochs": 0},
        "augment": {"crop_scale": [0.5, 1.0]},
        "train": {
            "epochs": 1,
            "batch_size": 16,
            "accelerator": "cpu",
            "log_every": 1,
            "progress": False,
        },
    }


def small_learner_config(ssl: str = "simclr", **strategy: Any) -> RunConfig:
    """A config whose learner is small enough for unit tests of gradients and optimisers."""
    return build_config(
        {
            "model": {"backbone": "convnet", "width": 0.25, "classifier_hidden_dim": 16},
            "ssl": {
                "method": ssl,
                "proj_hidden_dim": 16,
                "proj_output_dim": 8,
                "pred_hidden_dim": 16,
                "queue_size": 16,
            },
            "strategy": {"distill_predictor_hidden_dim": 16, **strategy},
        }
    )


@pytest.fixture
def tiny() -> Any:
    """The :func:`tiny_tree` factory."""
    return tiny_tree
