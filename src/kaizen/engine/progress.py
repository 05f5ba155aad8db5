"""A progress bar for training: task, epoch, loss terms and images per second."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class TrainingProgress:
    """One bar per task over its steps; its text shows the latest loss terms and throughput."""

    def __init__(self, console: Console, enabled: bool = True) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[stats]}"),
            console=console,
            disable=not enabled,
            transient=False,
        )
        self.bar: int | None = None

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
        self.bar = self.progress.add_task(
            f"task {task + 1}/{num_tasks}", total=total_steps, completed=completed, stats=""
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
        self.progress.update(
            self.bar,
            completed=completed,
            stats=f"epoch {epoch + 1}/{epochs}  {terms}  {images_per_second:,.0f} img/s",
        )
