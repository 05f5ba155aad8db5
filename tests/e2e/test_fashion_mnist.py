"""Presets on real Fashion-MNIST (the demo itself runs in tests/e2e/test_readme.py)."""

from __future__ import annotations

from pathlib import Path

import kaizen
from conftest import require_fashion_mnist


def test_the_fmnist_domains_preset_trains_every_class_in_five_domains(tmp_path: Path) -> None:
    require_fashion_mnist()
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
