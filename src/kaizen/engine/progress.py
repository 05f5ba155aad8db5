"""Training progress: task, epoch, loss terms and images per second.

On a terminal, one bar per task; otherwise (a log file, nohup, CI) plain lines, one every
``PLAIN_INTERVAL_SECONDS`` and one at the end of each task, since a bar written to a file is
squeezed into 80 columns and cut.
"""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

PLAIN_INTERVAL_SECONDS = 10.0


class TrainingProgress:
    """One bar per task over its steps, or plain lines when ``console`` is not a terminal; both
    show the latest loss terms and throughput."""

    def __init__(self, console: Console, enabled: bool = True) -> None:
        self.console = console
        self.plain = enabled and not console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[stats]}"),
            console=console,
            disable=not enabled or self.plain,
            transient=False,
        )
        self.bar: TaskID | None = None
        self.task_label = ""
        self.total = 0
        self.last_line = float("-inf")

    def __enter__(self) -> TrainingProgress:
        self.progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.progress.stop()

    def start_task(self, task: int, num_tasks: int, total_steps: int, completed: int = 0) -> None:
        self.task_label, self.total = f"task {task + 1}/{num_tasks}", total_steps
        self.last_line = time.monotonic()
        self.bar = self.progress.add_task(
            self.task_label, total=total_steps, completed=completed, stats=""
        )

    def update(
        self,
        completed: int,
        epoch: int,
        epochs: int,
        losses: dict[str, float],
        images_per_second: float,
    ) -> None:
        assert self.bar is not None
        terms = " ".join(f"{name} {value:.3f}" for name, value in losses.items())
        stats = f"epoch {epoch + 1}/{epochs}  {terms}  {images_per_second:,.0f} img/s"
        if not self.plain:
            self.progress.update(self.bar, completed=completed, stats=stats)
            return
        now = time.monotonic()
        if completed == self.total or now - self.last_line >= PLAIN_INTERVAL_SECONDS:
            self.last_line = now
            line = f"{self.task_label}  step {completed}/{self.total}  {stats}"
            self.console.print(line, highlight=False, soft_wrap=True)
