"""Measuring tools both benchmark pipelines share: thread count, clock, peak memory, records."""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import torch

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")
_RESET_PEAK_RSS = "5"  # Linux: writing 5 to clear_refs resets the peak resident set size


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``count`` intra-op threads (None: unchanged), then restore the number."""
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); nothing on a CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(
    step: Callable[[int], object], warmup: int, steps: int, device: torch.device
) -> float:
    """Seconds taken by ``step(i)`` for i in [warmup, warmup + steps), after ``warmup`` untimed
    calls (whatever ``step`` returns is dropped); the device is synchronised before each reading
    of the clock."""
    for index in range(warmup):
        step(index)
    synchronize(device)
    started = time.perf_counter()
    for index in range(warmup, warmup + steps):
        step(index)
    synchronize(device)
    return time.perf_counter() - started


def _reset_peak_rss() -> bool:
    """Reset the process's peak RSS (Linux); False where the kernel does not allow it."""
    try:
        _CLEAR_REFS.write_text(_RESET_PEAK_RSS)
    except OSError:
        return False
    return True


def _peak_rss_megabytes() -> float:
    """Peak RSS of this process in MB, from /proc (VmHWM) where readable, else ru_maxrss."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_rss_megabytes() -> float:
    """Largest peak RSS in MB among this process's finished children (e.g. data-loader workers).

    Pages a forked child shares with its parent count in both; the value covers every child the
    process has waited for so far, not one measurement.
    """
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


class PeakMemory:
    """Peak memory of the code run inside the ``with`` block.

    CUDA: the caching allocator's peak (``torch.cuda.max_memory_allocated``). CPU: the process's
    peak resident set size, reset on entry where Linux allows it (``/proc/self/clear_refs``),
    otherwise ``ru_maxrss`` (the peak since the process started). ``method`` says which.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.megabytes = math.nan
        self.method = ""

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.method = "torch.cuda.max_memory_allocated"
        elif _reset_peak_rss():
            self.method = "peak RSS of the process (VmHWM, reset before the measurement)"
        else:
            self.method = "ru_maxrss (peak RSS since the process started)"
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.device.type == "cuda":
            self.megabytes = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self.megabytes = _peak_rss_megabytes()


def step_record(
    *,
    images_per_step: int,
    steps: int,
    seconds: float,
    memory: PeakMemory,
    workers_megabytes: float,
    autocast_dtype: str,
    channels_last: bool,
    device: torch.device,
) -> dict[str, Any]:
    """The result of one pipeline's measurement; both pipelines return these keys."""
    return {
        **input_record(images_per_step, steps, seconds),
        "images_per_step": images_per_step,
        "steps": steps,
        "peak_memory_mb": memory.megabytes,
        "memory_measure": memory.method,
        "worker_peak_memory_mb": workers_megabytes,
        "autocast_dtype": autocast_dtype,
        "channels_last": channels_last,
        "device": str(device),
    }


def input_record(
    images_per_step: int, steps: int, seconds: float, **details: Any
) -> dict[str, Any]:
    """The result of an input pipeline's measurement (no model): images/s and s/step."""
    return {
        "images_per_second": images_per_step * steps / seconds,
        "seconds_per_step": seconds / steps,
        **details,
    }
