"""Figures of reports and comparisons, rendered off-screen to PNG bytes.

Every function builds its own :class:`~matplotlib.figure.Figure` (no pyplot state, safe to call
from any thread) and returns the PNG; ``png_bytes`` is the one place a figure becomes an image.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure

matplotlib.use("Agg")

_DPI = 100


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG bytes, tightly cropped, without a timestamp or software tag."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def accuracy_heatmap(values: Sequence[Sequence[float]], title: str) -> bytes:
    """Heatmap of an accuracy matrix (rows: after task i, columns: task j), values annotated.

    Rows may be fewer than columns (a partial run); the colour scale is fixed to [0, 1].
    """
    grid = np.array(values, dtype=float)
    rows, cols = grid.shape
    figure = Figure(figsize=(1.0 + 0.9 * cols, 0.8 + 0.7 * rows))
    axes = figure.add_subplot()
    image = axes.imshow(grid, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    for i in range(rows):
        for j in range(cols):
            value = grid[i, j]
            text = "n/a" if math.isnan(value) else f"{value:.2f}"
            colour = "white" if value < 0.5 else "black"
            axes.text(j, i, text, ha="center", va="center", color=colour, fontsize=9)
    axes.set_xticks(range(cols), [str(j) for j in range(cols)])
    axes.set_yticks(range(rows), [str(i) for i in range(rows)])
    axes.set_xlabel("test set of task j")
    axes.set_ylabel("after training task i")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label="top-1 accuracy")
    return png_bytes(figure)


def task_curves(values: Sequence[Sequence[float]], title: str) -> bytes:
    """One line per trained task j: its accuracy a[i][j] after each training task i >= j.

    ``values`` needs at least one row.
    """
    figure = Figure(figsize=(6.0, 4.0))
    axes = figure.add_subplot()
    rows = len(values)
    for j in range(min(rows, len(values[0]))):
        steps = range(j, rows)
        axes.plot(steps, [values[i][j] for i in steps], marker="o", label=f"task {j}")
    axes.set_xticks(range(rows))
    axes.set_ylim(0.0, 1.0)
    axes.set_xlabel("after training task i")
    axes.set_ylabel("top-1 accuracy on task j")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return png_bytes(figure)


def grouped_bars(
    groups: Sequence[str],
    series: Mapping[str, Sequence[float]],
    errors: Mapping[str, Sequence[float]],
    title: str,
    ylabel: str,
) -> bytes:
    """Bars of each series side by side within each group, with error bars; NaN draws no bar.

    Args:
        groups: the x-axis categories (e.g. SSL methods).
        series: one bar per group for each key (e.g. strategies), values in group order.
        errors: the half-height of each error bar (e.g. the std over seeds), same layout.
    """
    figure = Figure(figsize=(max(5.0, 1.6 * len(groups) + 2.0), 4.0))
    axes = figure.add_subplot()
    width = 0.8 / max(1, len(series))
    centres = np.arange(len(groups))
    for index, (label, heights) in enumerate(series.items()):
        offsets = centres - 0.4 + width * (index + 0.5)
        axes.bar(offsets, heights, width, yerr=errors[label], capsize=3, label=label)
    axes.set_xticks(centres, list(groups))
    axes.axhline(0.0, color="black", linewidth=0.8)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return png_bytes(figure)


def budget_lines(
    panels: Mapping[str, Mapping[str, Sequence[tuple[float, float, float]]]],
    title: str,
    ylabel: str,
) -> bytes:
    """One panel per key of ``panels`` (e.g. SSL methods), one line per series in each.

    Args:
        panels: panel -> series (e.g. strategy) -> points (x, mean, error half-height); the x
            axis (steps per task) is logarithmic, ticked at the points' x values, and the series
            are drawn slightly apart so that their error bars do not hide each other. Series
            without points draw nothing.
    """
    figure = Figure(figsize=(4.2 * len(panels) + 1.8, 3.8))
    axes_row = figure.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    for axes, (panel, series) in zip(axes_row, panels.items(), strict=True):
        drawn = [(label, sorted(points)) for label, points in series.items() if points]
        for index, (label, points) in enumerate(drawn):
            xs, means, errors = zip(*points, strict=True)
            apart = 1.0 + 0.025 * (index - (len(drawn) - 1) / 2)
            shown = [x * apart for x in xs]
            axes.errorbar(shown, means, yerr=errors, marker="o", capsize=3, label=label)
        ticks = sorted({x for _, points in drawn for x, _, _ in points})
        axes.set_xscale("log")
        axes.set_xticks(ticks, [f"{x:.0f}" for x in ticks])
        axes.minorticks_off()
        axes.set_xlabel("optimiser steps per task")
        axes.set_title(panel)
        axes.grid(alpha=0.3)
    axes_row[0].set_ylabel(ylabel)
    axes_row[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.suptitle(title)
    return png_bytes(figure)
