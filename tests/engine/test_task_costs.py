"""A task's training time leaves out its evaluation; its wall time includes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from kaizen.config import build_config
from kaizen.engine import progress as clock_module
from kaizen.engine.trainer import ContinualTrainer
from kaizen.eval.evaluator import Evaluator

EVALUATION_SECONDS = 1000.0


class FakeClock:
    """A perf_counter that advances 1 ms per reading, and by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def test_train_seconds_exclude_the_evaluation(
    tiny: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(clock_module.time, "perf_counter", clock)
    evaluate = Evaluator.evaluate

    def slow_evaluate(self: Evaluator, *args: Any, **kwargs: Any) -> Any:
        clock.now += EVALUATION_SECONDS
        return evaluate(self, *args, **kwargs)

    monkeypatch.setattr(Evaluator, "evaluate", slow_evaluate)
    config = build_config(tiny(), ["eval.probes=[]"])
    result = ContinualTrainer(config, tmp_path / "run", Console(quiet=True)).run()
    assert len(result.costs) == 3
    for cost in result.costs:
        assert 0 < cost.train_seconds < EVALUATION_SECONDS <= cost.wall_seconds
