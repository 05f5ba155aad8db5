"""A task's training time leaves out its evaluation and includes its parts' hooks; its wall time
includes both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from kaizen.config import build_config
from kaizen.engine import progress as clock_module
from kaizen.engine.progress import TaskClock
from kaizen.engine.trainer import ContinualTrainer
from kaizen.eval.evaluator import Evaluator
from kaizen.methods.parts import freezing
from kaizen.methods.parts.replay import LabelledReplay

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


START_HOOK_SECONDS, END_HOOK_SECONDS = 100.0, 10.0


def test_the_parts_hooks_are_charged_to_training(
    tiny: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part's work at a task's start and end (a freezing probe, a buffer update) is training
    time: ``hook_seconds`` holds it and ``train_seconds`` includes it, once."""
    clock = FakeClock()
    monkeypatch.setattr(clock_module.time, "perf_counter", clock)
    start, end = LabelledReplay.start_task, LabelledReplay.end_task

    def slow_start(self: LabelledReplay, run: Any) -> None:
        clock.now += START_HOOK_SECONDS
        start(self, run)

    def slow_end(self: LabelledReplay, run: Any) -> None:
        clock.now += END_HOOK_SECONDS
        end(self, run)

    monkeypatch.setattr(LabelledReplay, "start_task", slow_start)
    monkeypatch.setattr(LabelledReplay, "end_task", slow_end)
    out = tmp_path / "run"
    config = build_config(tiny(), ["eval.probes=[]"])
    result = ContinualTrainer(config, out, Console(quiet=True)).run()
    hooks = START_HOOK_SECONDS + END_HOOK_SECONDS
    written = json.loads((out / "costs.json").read_text())["tasks"]
    assert [task["hook_seconds"] for task in written] == [c.hook_seconds for c in result.costs]
    for cost in result.costs:
        assert hooks <= cost.hook_seconds < hooks + 1.0
        loop = cost.train_seconds - cost.hook_seconds
        assert 0 < loop < END_HOOK_SECONDS  # the training loop, counted apart from the hooks
        assert cost.train_seconds <= cost.wall_seconds


def test_the_freezing_probe_is_charged(
    tiny: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LUMP with freezing: the correlation probe at the start of tasks 1.. is training time."""
    clock = FakeClock()
    monkeypatch.setattr(clock_module.time, "perf_counter", clock)
    measure = freezing.block_correlations

    def slow_measure(*args: Any) -> list[float]:
        clock.now += START_HOOK_SECONDS
        return measure(*args)

    monkeypatch.setattr(freezing, "block_correlations", slow_measure)
    out = tmp_path / "run"
    overrides = ["eval.probes=[]", "freeze.enabled=true", "freeze.probe_images=8"]
    ContinualTrainer(build_config(tiny("lump", "simsiam"), overrides), out).run()
    tasks = json.loads((out / "costs.json").read_text())["tasks"]
    assert [task["hook_seconds"] >= START_HOOK_SECONDS for task in tasks] == [False, True, True]
    assert all(task["train_seconds"] - task["hook_seconds"] > 0 for task in tasks)


def test_a_clock_saved_before_the_hooks_were_timed_reads_no_hook_time() -> None:
    assert TaskClock({"wall": 2.0, "train": 1.0}).read()["hooks"] == 0.0
