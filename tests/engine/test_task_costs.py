"""A task's training time leaves out its evaluation and includes its parts' hooks; its wall time
includes both."""

from __future__ import annotations

import json
from collections.abc import Callable
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

    def slowed(self, function: Callable[..., Any], seconds: float) -> Callable[..., Any]:
        """``function``, with this clock advanced by ``seconds`` before each call."""

        def slow(*args: Any, **kwargs: Any) -> Any:
            self.now += seconds
            return function(*args, **kwargs)

        return slow


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The training clock's perf_counter, replaced by a :class:`FakeClock`."""
    fake = FakeClock()
    monkeypatch.setattr(clock_module.time, "perf_counter", fake)
    return fake


def test_train_seconds_exclude_the_evaluation(
    tiny: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    monkeypatch.setattr(Evaluator, "evaluate", clock.slowed(Evaluator.evaluate, EVALUATION_SECONDS))
    config = build_config(tiny(), ["eval.probes=[]"])
    result = ContinualTrainer(config, tmp_path / "run", Console(quiet=True)).run()
    assert len(result.costs) == 3
    for cost in result.costs:
        assert 0 < cost.train_seconds < EVALUATION_SECONDS <= cost.wall_seconds


START_HOOK_SECONDS, END_HOOK_SECONDS = 100.0, 10.0


def test_the_parts_hooks_are_charged_to_training(
    tiny: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    """A part's work at a task's start and end (a freezing probe, a buffer update) is training
    time: ``hook_seconds`` holds it and ``train_seconds`` includes it, once."""
    start = clock.slowed(LabelledReplay.start_task, START_HOOK_SECONDS)
    monkeypatch.setattr(LabelledReplay, "start_task", start)
    end = clock.slowed(LabelledReplay.end_task, END_HOOK_SECONDS)
    monkeypatch.setattr(LabelledReplay, "end_task", end)
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
    tiny: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    """LUMP with freezing: the correlation probe at the start of tasks 1.. is training time."""
    measure = clock.slowed(freezing.block_correlations, START_HOOK_SECONDS)
    monkeypatch.setattr(freezing, "block_correlations", measure)
    out = tmp_path / "run"
    overrides = ["eval.probes=[]", "freeze.enabled=true", "freeze.probe_images=8"]
    ContinualTrainer(build_config(tiny("lump", "simsiam"), overrides), out).run()
    tasks = json.loads((out / "costs.json").read_text())["tasks"]
    assert [task["hook_seconds"] >= START_HOOK_SECONDS for task in tasks] == [False, True, True]
    assert all(task["train_seconds"] - task["hook_seconds"] > 0 for task in tasks)


def test_a_clock_saved_before_the_hooks_were_timed_reads_no_hook_time() -> None:
    assert TaskClock({"wall": 2.0, "train": 1.0}).read()["hooks"] == 0.0
