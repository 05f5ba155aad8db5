"""On a Fashion-MNIST subset, Kaizen ends with a higher final accuracy than plain fine-tuning."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import kaizen
from kaizen.data.catalog import _default_idx_folder
from kaizen.errors import DataError

# A smaller, shorter version of the `demo` preset: 5 class-incremental tasks of 2 classes.
SUBSET = ["data.train_per_class=600", "data.test_per_class=200", "train.progress=false"]


def _require_fashion_mnist() -> None:
    try:
        _default_idx_folder("fashion-mnist")
    except DataError as error:
        if os.environ.get("KAIZEN_REQUIRE_FASHION_MNIST"):
            raise
        pytest.skip(f"Fashion-MNIST is not installed: {error}")


def test_kaizen_beats_finetune_in_final_accuracy(tmp_path: Path) -> None:
    _require_fashion_mnist()
    final = {}
    for strategy in ("finetune", "kaizen"):
        result = kaizen.run("demo", tmp_path / strategy, [*SUBSET, f"strategy.name={strategy}"])
        assert len(result.accuracy_matrix) == 5
        final[strategy] = result.metrics["final_accuracy"].value
    assert final["kaizen"] > final["finetune"], final
