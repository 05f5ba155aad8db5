"""Channels-last against channels-first for the Kaizen step, measured alternately.

On a shared machine the speed drifts between runs by more than the difference between layouts,
so the two are measured in turn, several times, in one process, and compared by their medians.
"""

from __future__ import annotations

import statistics
from typing import Any

from kaizen.bench.throughput import measure_kaizen_step
from kaizen.config import RunConfig


def compare_layouts(config: RunConfig, *, repeats: int, warmup: int, steps: int) -> dict[str, Any]:
    """Seconds per step of the Kaizen step in each layout, measured alternately ``repeats``
    times (channels-first first), and the ratio of the medians (channels-first over
    channels-last: above 1 when channels-last is faster)."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    seconds: dict[str, list[float]] = {"channels_first": [], "channels_last": []}
    for _ in range(repeats):
        for name, channels_last in (("channels_first", False), ("channels_last", True)):
            record = measure_kaizen_step(
                config, warmup=warmup, steps=steps, channels_last=channels_last
            )
            seconds[name].append(record["seconds_per_step"])
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    return {
        "seconds_per_step": seconds,
        "median_seconds_per_step": medians,
        "channels_last_speedup": medians["channels_first"] / medians["channels_last"],
    }
