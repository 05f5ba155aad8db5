"""Training progress: task, epoch, loss terms and images per second.

On a terminal, one bar per task; otherwise (a log file, nohup, CI) plain lines, one every
``PLAIN_INTERVAL_SECONDS`` and one at the end of each task, since a bar written to a file is
squeezed into 80 columns and cut.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

import torch
from lightning.fabric import Fabric
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


class LogWindow:
    """The steps since the last read-out: at each read-out the latest loss terms and the
    images/s over the window go to ``progress`` and, with each parameter group's learning
    rate, to ``fabric``'s loggers (stepped by the run's step, ``steps_before`` + the task's)."""

    def __init__(self, progress: TrainingProgress, fabric: Fabric, steps_before: int) -> None:
        self.progress = progress
        self.fabric = fabric
        self.steps_before = steps_before
        self.start = time.perf_counter()
        self.images = 0

    def add(self, images: int) -> None:
        self.images += images

    def report(
        self,
        step: int,
        epoch: int,
        epochs: int,
        values: dict[str, torch.Tensor],
        optimizer: torch.optim.Optimizer,
    ) -> None:
        """Read the loss terms ``values`` (one host sync) and close the window."""
        now = time.perf_counter()
        losses = {name: float(value) for name, value in values.items()}
        rate = self.images / max(now - self.start, 1e-9)
        self.progress.update(step, epoch, epochs, losses, rate)
        self.start, self.images = now, 0
        logged = {f"loss/{name}": value for name, value in losses.items()}
        for group in optimizer.param_groups:
            logged[f"lr/{group.get('name', 'group')}"] = group["lr"]
        logged["images_per_second"] = rate
        self.fabric.log_dict(logged, step=self.steps_before + step)


def log_task_accuracies(fabric: Fabric, task: int, accuracies: list[float]) -> None:
    """A finished task's accuracy on every task's test set and the mean over the tasks seen so
    far, to ``fabric``'s loggers, stepped by the task."""
    seen = accuracies[: task + 1]
    fabric.log_dict(
        {
            **{f"accuracy/task_{j}": value for j, value in enumerate(accuracies)},
            "accuracy/seen_tasks": sum(seen) / len(seen),
        },
        step=task,
    )


class TaskClock:
    """A task's wall time, training time and the time of its parts' hooks, carried over a
    resume by the checkpoint.

    ``before`` holds the seconds of the task's earlier processes (``wall``, ``train``: the
    training loop, ``hooks``: the method's parts at the task's start and end); training starts
    counting at :meth:`start_training`, a hook's time in :meth:`timing_hooks`.
    """

    def __init__(self, before: dict[str, float] | None = None) -> None:
        self.before = {"wall": 0.0, "train": 0.0, "hooks": 0.0, **(before or {})}
        self.wall_start = self.train_start = time.perf_counter()
        self.hook_seconds = 0.0

    def start_training(self) -> None:
        self.train_start = time.perf_counter()

    @contextmanager
    def timing_hooks(self) -> Iterator[None]:
        """Add the time of the ``with`` block (the parts' task start or end) to ``hooks``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.hook_seconds += time.perf_counter() - started

    def read(self) -> dict[str, float]:
        now = time.perf_counter()
        return {
            "wall": self.before["wall"] + now - self.wall_start,
            "train": self.before["train"] + now - self.train_start,
            "hooks": self.before["hooks"] + self.hook_seconds,
        }
