"""The tables ``kaizen bench`` prints from its report."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def steps_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"Training step on {report['device']} (current + replay images)")
    for column in ("pipeline", "images/s", "s/step", "peak memory (MB)", "autocast", "layout"):
        table.add_column(column, justify="left" if column == "pipeline" else "right")
    for name, key in (("kaizen", "kaizen_step"), ("reference", "reference_step")):
        row = report[key]
        table.add_row(
            name,
            f"{row['images_per_second']:.1f}",
            f"{row['seconds_per_step']:.3f}",
            f"{row['peak_memory_mb']:.0f}",
            row["autocast_dtype"],
            "channels_last" if row["channels_last"] else "channels_first",
        )
    table.caption = f"kaizen / reference: {report['speedup']:.2f}x"
    return table


def inputs_table(inputs: dict[str, dict[str, Any]]) -> Table:
    table = Table(title="Input pipeline alone (no model)")
    for column in ("pipeline", "images/s", "s/step"):
        table.add_column(column, justify="left" if column == "pipeline" else "right")
    for name, row in inputs.items():
        table.add_row(name, f"{row['images_per_second']:.1f}", f"{row['seconds_per_step']:.3f}")
    return table


def profile_table(profile: dict[str, Any]) -> Table:
    table = Table(title=f"Kaizen step profile ({profile['time']} time per step)")
    table.add_column("part or operator")
    table.add_column("seconds", justify="right")
    for name, seconds in [*profile["parts"].items(), *profile["operators"].items()]:
        table.add_row(name, f"{seconds:.4f}")
    table.caption = "kaizen.* parts include their operators; operators: own time, largest first"
    return table


def layouts_table(layouts: dict[str, Any]) -> Table:
    table = Table(title="Kaizen step by layout (s/step, measured alternately)")
    table.add_column("layout")
    table.add_column("runs", justify="right")
    table.add_column("median", justify="right")
    for name, values in layouts["seconds_per_step"].items():
        runs = " ".join(f"{value:.3f}" for value in values)
        table.add_row(name, runs, f"{layouts['median_seconds_per_step'][name]:.3f}")
    table.caption = f"channels-last speed-up: {layouts['channels_last_speedup']:.2f}x"
    return table


def scaling_table(scaling: dict[str, Any]) -> Table:
    table = Table(title="Training time per task", min_width=40)
    table.add_column("task", justify="right")
    table.add_column(f"seconds ({scaling['steps_per_task']} steps)", justify="right")
    for task, seconds in enumerate(scaling["seconds_per_task"], start=1):
        table.add_row(str(task), f"{seconds:.2f}")
    table.caption = (
        f"longest / shortest: {scaling['max_over_min']:.3f}; "
        f"fitted drift over the run: {scaling['linear_drift']:+.1%}"
    )
    return table
