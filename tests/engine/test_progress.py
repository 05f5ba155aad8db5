"""Training progress: a bar on a terminal, plain lines in a log file."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from kaizen.engine import progress as progress_module
from kaizen.engine.progress import PLAIN_INTERVAL_SECONDS, TrainingProgress


def _run(console: Console, clock: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: clock[0])
    with TrainingProgress(console) as bars:
        bars.start_task(0, 5, total_steps=30)
        for step, seconds in ((10, 1.0), (20, PLAIN_INTERVAL_SECONDS + 2.0), (30, 13.0)):
            clock[0] = seconds
            bars.update(
                step,
                epoch=step // 10 - 1,
                epochs=3,
                losses={"ssl": 3.9412},
                images_per_second=1234.0,
            )


def test_a_log_file_gets_plain_lines_every_interval_and_at_the_task_end(monkeypatch):
    log = io.StringIO()
    _run(Console(file=log, force_terminal=False, width=80), [0.0], monkeypatch)
    lines = log.getvalue().splitlines()
    # step 10 falls inside the first interval: no line; step 20 after it; step 30 ends the task
    assert lines == [
        "task 1/5  step 20/30  epoch 2/3  ssl 3.941  1,234 img/s",
        "task 1/5  step 30/30  epoch 3/3  ssl 3.941  1,234 img/s",
    ]


def test_a_terminal_gets_a_bar(monkeypatch):
    screen = io.StringIO()
    _run(Console(file=screen, force_terminal=True, width=120), [0.0], monkeypatch)
    assert "task 1/5" in screen.getvalue() and "step 20/30" not in screen.getvalue()
