"""Where the Kaizen step's time goes: ``torch.profiler`` over the benchmark's step."""

from __future__ import annotations

from typing import Any

from torch.profiler import ProfilerActivity, profile

from kaizen.bench.measure import synchronize, torch_threads
from kaizen.bench.throughput import bench_data, build_kaizen_step, seeded_fabric
from kaizen.config import RunConfig


def profile_kaizen_step(
    config: RunConfig, *, warmup: int, steps: int, top: int = 10
) -> dict[str, Any]:
    """Where the Kaizen step's time goes: ``torch.profiler`` over ``steps`` steps after
    ``warmup``.

    Returns ``parts``: seconds per step of each labelled part of
    :class:`~kaizen.engine.step.TrainStep` (and of the momentum encoder's forward, which lies
    inside ``kaizen.forward_and_losses``), host time on a CPU and device time on CUDA; and
    ``operators``: the ``top`` operators by their own time per step.
    """
    fabric = seeded_fabric(config)
    data = bench_data(config)
    on_cuda = fabric.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_cuda else [])
    with torch_threads(config.train.num_threads):
        step = build_kaizen_step(fabric, config, data, warmup + steps)
        for index in range(warmup):
            step(index)
        synchronize(fabric.device)
        with profile(activities=activities) as profiler:
            for index in range(warmup, warmup + steps):
                step(index)
            synchronize(fabric.device)
    events = profiler.key_averages()

    def per_step(microseconds: float) -> float:
        return microseconds / 1e6 / steps

    def total(event: Any) -> float:
        return per_step(event.device_time_total if on_cuda else event.cpu_time_total)

    def own(event: Any) -> float:
        return per_step(event.self_device_time_total if on_cuda else event.self_cpu_time_total)

    parts = {event.key: total(event) for event in events if event.key.startswith("kaizen.")}
    operators = sorted(
        (event for event in events if event.key.startswith("aten::")), key=own, reverse=True
    )
    return {
        "time": "device" if on_cuda else "host",
        "parts": parts,
        "operators": {event.key: own(event) for event in operators[:top]},
    }
