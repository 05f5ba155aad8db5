"""Shared fixtures: a tiny, fast run configuration on synthetic data, and run directories
written in the schema of `kaizen run --out DIR` (results.json, costs.json) for report tests.

The only conftest.py of the suite, so that test modules can import its helpers by name.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from kaizen.config import SSL_SETTINGS, RunConfig, build_config
from kaizen.data.formats.idx import default_idx_folder
from kaizen.errors import DataError
from kaizen.eval.metrics import continual_metrics
from kaizen.methods.strategies.slca import FAMILY


def require_fashion_mnist() -> None:
    """Skip unless Fashion-MNIST is installed; fail instead under KAIZEN_REQUIRE_FASHION_MNIST
    (CI sets it, so that a missing install step cannot pass as a skip)."""
    try:
        default_idx_folder("fashion-mnist")
    except DataError as error:
        if os.environ.get("KAIZEN_REQUIRE_FASHION_MNIST"):
            raise
        pytest.skip(f"Fashion-MNIST is not installed: {error}")


def small_ssl(ssl: str, width: int, output_dim: int, queue_size: int) -> dict[str, Any]:
    """An ``ssl`` section of method ``ssl`` with heads of ``width`` and ``output_dim``, and a
    queue of ``queue_size`` keys where the method has one: only the method's own keys."""
    section = {
        "method": ssl,
        "proj_hidden_dim": width,
        "proj_output_dim": output_dim,
        "pred_hidden_dim": width,
        "queue_size": queue_size,
    }
    return {key: value for key, value in section.items() if key in SSL_SETTINGS[ssl].model_fields}


PILLOW_FILTERS = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def pillow_resized(planes: torch.Tensor, side: int, interpolation: str = "bicubic") -> torch.Tensor:
    """Every (H, W) plane of ``planes`` (..., H, W) resized to ``side`` x ``side`` by Pillow on
    a 32-bit float ("F") image: a resize computed independently of torch, unclipped."""
    flat = planes.detach().reshape(-1, *planes.shape[-2:]).numpy().astype(np.float32)
    resized = [
        np.asarray(Image.fromarray(plane).resize((side, side), PILLOW_FILTERS[interpolation]))
        for plane in flat
    ]
    return torch.from_numpy(np.stack(resized)).reshape(*planes.shape[:-2], side, side)


def tiny_tree(strategy: str = "kaizen", ssl: str = "simclr") -> dict[str, Any]:
    """A config tree that trains 3 tasks of 2 synthetic classes in about a second on a CPU.

    The SLCA family's strategies get what they need instead of ``ssl``: a two-block ViT with
    per-task heads, no SSL, end-to-end SGD with a slow backbone, and a short alignment.
    """
    if strategy in FAMILY:
        return tiny_pretrained_tree(strategy)
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
        "ssl": small_ssl(ssl, 32, 16, 64),
        "strategy": {
            "name": strategy,
            "distill_predictor_hidden_dim": 32,
            **({"buffer_size": 32} if strategy == "lump" else {}),
        },
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


def tiny_pretrained_tree(strategy: str = "slcapp") -> dict[str, Any]:
    """A tiny config of the SLCA family's shape (see :func:`tiny_tree`)."""
    tree = tiny_tree("finetune")
    tree.update(
        name=f"tiny-{strategy}",
        model={"backbone": "vit_tiny", "depth": 2, "patch_size": 4, "heads": "per-task"},
        ssl={"method": "none"},
        strategy={"name": strategy, "end_to_end": True},
        optim={
            "name": "sgd",
            "lr": 0.001,
            "classifier_lr": 0.01,
            "weight_decay": 5e-4,
            "warmup_epochs": 0,
            "scale_lr_by_batch": False,
        },
        classifier={"align_epochs": 2, "align_samples_per_class": 16},
    )
    return tree


def small_learner_config(ssl: str = "simclr", **strategy: Any) -> RunConfig:
    """A config whose learner is small enough for unit tests of gradients and optimisers."""
    return build_config(
        {
            "model": {"backbone": "convnet", "width": 0.25, "classifier_hidden_dim": 16},
            "ssl": small_ssl(ssl, 16, 8, 16),
            "strategy": {"distill_predictor_hidden_dim": 16, **strategy},
        }
    )


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny tensors: one thread is fastest and avoids thread contention on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny() -> Any:
    """The :func:`tiny_tree` factory."""
    return tiny_tree


PROTOCOL = "classifier, single head over all classes (task-agnostic, argmax over all classes)"

DEFAULT_MATRIX = [
    [0.90, 0.10, 0.00],
    [0.80, 0.85, 0.05],
    [0.60, 0.70, 0.80],
]
RANDOM_INIT = [0.0123, 0.011, 0.012]


def write_run(
    run_dir: Path,
    *,
    ssl: str = "simclr",
    strategy: str = "kaizen",
    seed: int = 0,
    matrix: Sequence[Sequence[float]] = DEFAULT_MATRIX,
    wall_seconds: Sequence[float] | None = (10.0, 10.0, 10.0),
    images_seen: Sequence[int] = (1000, 1000, 1000),
    complete: bool = True,
    probes: Mapping[str, Sequence[Sequence[float]]] | None = None,
    data: str = "synthetic",
    steps: int = 10,
    settings: Mapping[str, Any] | None = None,
) -> Path:
    """A run directory with results.json and, unless ``wall_seconds`` is None, costs.json.

    ``matrix`` has one row per trained task; ``probes`` maps a probe name to its matrix;
    ``steps`` is every task's step count; ``settings`` maps dotted config keys to values.
    """
    num_tasks = len(matrix[0])
    trained = len(matrix)
    square = [list(row[:trained]) for row in matrix]
    metrics = continual_metrics(square, PROTOCOL) if complete else {}
    results: dict[str, Any] = {
        "config": {
            "name": f"{ssl}-{strategy}-seed{seed}",
            "seed": seed,
            "ssl": {"method": ssl},
            "strategy": {"name": strategy},
            "data": {"name": data},
            "scenario": {"num_tasks": num_tasks, "kind": "class-incremental"},
        },
        "complete": complete,
        "accuracy_matrix": {"protocol": PROTOCOL, "values": [list(row) for row in matrix]},
        "probes": {
            name: {"protocol": f"{name} probe on frozen backbone features", "values": values}
            for name, values in (probes or {}).items()
        },
        "random_init": {"protocol": PROTOCOL, "values": RANDOM_INIT},
        "metrics": {
            name: {"value": metric.value, "protocol": metric.protocol}
            for name, metric in metrics.items()
        },
        "tasks": [
            {
                "task": i,
                "classes": [2 * i, 2 * i + 1],
                "accuracies": list(matrix[i]),
                "images_seen": images_seen[i],
                "steps": steps,
                "test_size": 16,
                "negative_flip_rate": None if i == 0 else 0.125,
            }
            for i in range(trained)
        ],
        "environment": {"kaizen": "0.1.0", "torch": "2.x", "device": "cpu", "precision": "32"},
    }
    for dotted, value in (settings or {}).items():
        *sections, key = dotted.split(".")
        node = results["config"]
        for section in sections:
            node = node.setdefault(section, {})
        node[key] = value
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    if wall_seconds is not None:
        costs = {
            "tasks": [
                {
                    "task": i,
                    "wall_seconds": wall_seconds[i],
                    "train_seconds": 0.8 * wall_seconds[i],
                    "images_seen": images_seen[i],
                    "peak_memory_bytes": (100 + i) * 2**20,
                }
                for i in range(trained)
            ],
            "environment": {"device": "cpu"},
        }
        (run_dir / "costs.json").write_text(json.dumps(costs, indent=2))
    return run_dir


@pytest.fixture(scope="session")
def make_run() -> Callable[..., Path]:
    """The :func:`write_run` helper."""
    return write_run


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_script(relative: str, name: str) -> ModuleType:
    """The module of benchmarks/``relative`` (a script, not a package), imported as ``name``."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
