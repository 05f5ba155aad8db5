"""On a Fashion-MNIST subset, Kaizen ends with a higher final accuracy than plain fine-tuning."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import kaizen
from kaizen.data.formats.idx import default_idx_folder as _default_idx_folder
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


def test_the_fmnist_domains_preset_trains_every_class_in_five_domains(tmp_path: Path) -> None:
    _require_fashion_mnist()
    small = [
        "data.train_per_class=50",
        "data.test_per_class=20",
        "train.epochs=1",
        "eval.probes=[]",
    ]
    result = kaizen.run("fmnist-domains", tmp_path, [*small, "train.progress=false"])
    assert [task.classes for task in result.tasks] == [tuple(range(10))] * 5
    assert result.protocol.startswith("domain-incremental")
    # each domain is tested on the whole test subset
    assert [task.test_size for task in result.tasks] == [200] * 5
