"""Graceful stops: SIGINT / SIGTERM finish the current step, save, and exit with a resume hint."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType, TracebackType

from kaizen.errors import KaizenError


class RunInterrupted(KaizenError):
    """The run stopped on a signal after saving a checkpoint."""

    def __init__(self, message: str, signal_number: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signal_number


class StopRequests:
    """Records SIGINT and SIGTERM instead of dying mid-step, while active.

    A second signal of the same kind falls through to the previous handler (Ctrl-C twice stops
    at once). Only the main thread can install handlers; elsewhere this does nothing.
    """

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signal_number is not None

    def _handle(self, number: int, frame: FrameType | None) -> None:
        self.signal_number = number
        signal.signal(number, self._previous.get(number, signal.SIG_DFL))  # type: ignore[arg-type]

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def interrupted(self, run_dir: Path, task: int, epoch: int, step: int) -> RunInterrupted:
        """The error that ends a run stopped by the recorded signal at that position, after its
        checkpoint was saved."""
        number = self.signal_number or signal.SIGINT
        return RunInterrupted(
            f"stopped by signal {number} at task {task}, epoch {epoch}, step {step}; a checkpoint "
            f"was saved: continue with `kaizen resume {run_dir}`",
            number,
        )
