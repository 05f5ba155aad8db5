"""Benchmarks: throughput of the Kaizen training step against a conventional pipeline, and the
training time per task of a long run (``kaizen bench``)."""

from kaizen.bench.reference import measure_reference_input, measure_reference_step
from kaizen.bench.scaling import flatness, linear_drift, measure_task_scaling
from kaizen.bench.throughput import measure_kaizen_input, measure_kaizen_step

__all__ = [
    "flatness",
    "linear_drift",
    "measure_kaizen_input",
    "measure_kaizen_step",
    "measure_reference_input",
    "measure_reference_step",
    "measure_task_scaling",
]
