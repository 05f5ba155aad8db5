"""The experiment log: Fabric's CSV and TensorBoard loggers under <run>/logs."""

from __future__ import annotations

import csv
from pathlib import Path

import kaizen


def test_a_csv_log_holds_losses_learning_rates_throughput_and_task_accuracies(tiny, tmp_path):
    tree = tiny()
    tree["train"].update({"logger": "csv", "log_every": 1})
    kaizen.run(tree, tmp_path)
    with (tmp_path / "logs" / "version_0" / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    columns = set(rows[0])
    assert {"loss/ssl", "loss/classifier", "images_per_second", "accuracy/task_2"} <= columns
    assert any(name.startswith("lr/") for name in columns)
    accuracies = [row for row in rows if row["accuracy/seen_tasks"]]
    assert [int(row["step"]) for row in accuracies] == [0, 1, 2]
    assert all(float(row["loss/ssl"]) > 0 for row in rows if row["loss/ssl"])


def test_a_tensorboard_log_writes_an_event_file(tiny, tmp_path: Path):
    tree = tiny()
    tree["train"]["logger"] = "tensorboard"
    kaizen.run(tree, tmp_path)
    assert list((tmp_path / "logs" / "version_0").glob("events.out.tfevents.*"))
