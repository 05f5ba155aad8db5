"""The report of one run: report.md with PNG figures beside it, and a self-contained report.html."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kaizen.report.document import Document, cell
from kaizen.report.plots import accuracy_heatmap, task_curves
from kaizen.report.probe_gap import run_gap_section
from kaizen.storage.runs import Run, load_run

_MIB = 2**20
_PROBE_LABELS = {"knn": "kNN probe", "linear": "linear probe"}


def _matrix_rows(values: Sequence[Sequence[float]]) -> tuple[list[str], list[list[str]]]:
    columns = len(values[0]) if values else 0
    header = ["after task", *(f"task {j}" for j in range(columns))]
    return header, [[str(i), *(cell(value) for value in row)] for i, row in enumerate(values)]


def _matrix_section(document: Document, name: str, label: str, matrix: dict[str, Any]) -> None:
    """A matrix a[i][j] with its protocol: table, heatmap and per-task curves."""
    values = matrix["values"]
    document.heading(label)
    document.paragraph(f"Protocol: {matrix['protocol']}. Row i: after training task i.")
    if not values:
        document.paragraph("No task has been trained yet.")
        return
    document.table(*_matrix_rows(values))
    document.figure(name, accuracy_heatmap(values, label), f"{label}: a[i][j]")
    document.figure(
        f"{name}_curves",
        task_curves(values, f"{label}: per-task accuracy"),
        f"{label}: each task after each training task",
    )


def _setup_section(document: Document, run: Run) -> None:
    config = run.config
    scenario = config["scenario"]
    document.table(
        ["setting", "value"],
        [
            ["data", config["data"]["name"]],
            ["scenario", f"{scenario['num_tasks']} tasks, {scenario['kind']}"],
            ["SSL method", run.ssl_method],
            ["strategy", run.strategy],
            ["seed", str(run.seed)],
            ["complete", cell(run.complete)],
        ],
    )


def _metrics_section(document: Document, run: Run) -> None:
    document.heading("Metrics")
    document.table(
        ["metric", "value", "protocol"],
        [
            [name, cell(metric["value"]), metric["protocol"]]
            for name, metric in run.results["metrics"].items()
        ],
    )


def _random_init_section(document: Document, run: Run) -> None:
    random_init = run.results.get("random_init") or {}
    values = random_init.get("values")
    if not values:
        return
    document.heading("Randomly initialised model")
    document.paragraph(f"Protocol: {random_init['protocol']}.")
    document.table([f"task {j}" for j in range(len(values))], [[cell(value) for value in values]])


def _tasks_section(document: Document, run: Run) -> None:
    document.heading("Tasks")
    document.table(
        ["task", "classes", "images seen", "steps", "test images", "negative flip rate"],
        [
            [
                str(task["task"]),
                " ".join(map(str, task["classes"])),
                cell(task.get("images_seen")),
                cell(task.get("steps")),
                cell(task.get("test_size")),
                cell(task.get("negative_flip_rate")),
            ]
            for task in run.results["tasks"]
        ],
    )


_MEASURES = {
    "covariance": "the alignment of the channel covariances of the block's pooled output on "
    "current-task images and on buffered earlier images",
    "subspace": "the share of the block's inputs on current-task images that lies in the "
    "subspace of the earlier tasks' inputs (TRGP)",
}


def _freezing_section(document: Document, run: Run) -> None:
    """Each task's block correlation ratios, the frozen blocks marked, when the run froze
    layers."""
    measured = [task for task in run.results["tasks"] if "freeze" in task.get("parts", {})]
    if not measured:
        return
    first = measured[0]["parts"]["freeze"]
    blocks = first["blocks"]
    # results of an earlier release name neither the measure nor the frozen blocks
    measure = first.get("measure", "covariance")
    document.heading("Layer freezing")
    document.paragraph(
        f"Correlation ratio of each backbone block ({measure} measure: {_MEASURES[measure]}), "
        "measured at the start of the task with the previous task's model; * marks the blocks "
        "frozen from that task on."
    )
    rows = []
    for task in measured:
        freeze = task["parts"]["freeze"]
        frozen = freeze.get("frozen", blocks[: freeze["frozen_depth"]])
        rows.append(
            [
                str(task["task"]),
                *(
                    cell(ratio, digits=3) + ("*" if block in frozen else "")
                    for block, ratio in zip(blocks, freeze["ratios"], strict=True)
                ),
            ]
        )
    document.table(["task", *blocks], rows)


def _costs_section(document: Document, run: Run) -> None:
    document.heading("Costs")
    if run.costs is None:
        document.paragraph("No costs.json in the run directory.")
        return
    tasks = run.costs["tasks"]
    rows = [
        [
            str(task["task"]),
            cell(task["wall_seconds"], digits=1),
            cell(task["train_seconds"], digits=1),
            cell(task["images_seen"]),
            cell(task["peak_memory_bytes"] / _MIB, digits=1),
        ]
        for task in tasks
    ]
    rows.append(
        [
            "total",
            cell(sum(task["wall_seconds"] for task in tasks), digits=1),
            cell(sum(task["train_seconds"] for task in tasks), digits=1),
            cell(sum(task["images_seen"] for task in tasks)),
            cell(max((task["peak_memory_bytes"] for task in tasks), default=0) / _MIB, digits=1),
        ]
    )
    document.table(
        ["task", "wall time (s)", "train time (s)", "images seen", "peak memory (MiB)"], rows
    )


def _environment_section(document: Document, run: Run) -> None:
    environment = run.results.get("environment") or {}
    if environment:
        document.heading("Environment")
        document.table(["", "value"], [[key, str(value)] for key, value in environment.items()])


def write_report(run_dir: Path) -> tuple[Path, Path]:
    """Write ``report.md`` (figures as PNG files beside it) and ``report.html`` to ``run_dir``.

    The report holds the setup, every metric with its protocol, the accuracy matrix (table,
    heatmap, per-task curves), the probe matrices when the run has them, the per-task records and
    the costs from costs.json when present. The HTML embeds its figures and needs no other file.

    Returns:
        The paths of report.md and report.html.
    """
    run = load_run(Path(run_dir))
    document = Document(f"Run report: {run.name}")
    _setup_section(document, run)
    _metrics_section(document, run)
    _matrix_section(document, "accuracy_matrix", "Accuracy matrix", run.results["accuracy_matrix"])
    _random_init_section(document, run)
    for name, probe in (run.results.get("probes") or {}).items():
        label = _PROBE_LABELS.get(name, f"{name} probe")
        _matrix_section(document, f"probe_{name}", label, probe)
    run_gap_section(document, run)
    _tasks_section(document, run)
    _freezing_section(document, run)
    _costs_section(document, run)
    _environment_section(document, run)
    return document.write(run.path, "report")
