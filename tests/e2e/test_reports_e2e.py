"""Reports and comparisons made from real runs."""

from __future__ import annotations

import csv
from pathlib import Path

import kaizen
from kaizen.cli import main


def test_report_and_compare_from_real_runs(tiny, tmp_path: Path) -> None:
    runs = []
    for strategy in ("finetune", "kaizen", "scratch"):
        for seed in (0, 1):
            run_dir = tmp_path / f"{strategy}-seed{seed}"
            kaizen.run(tiny(strategy), run_dir, overrides=[f"seed={seed}"])
            runs.append(run_dir)
    assert main(["report", str(runs[0])]) == 0
    report = (runs[0] / "report.md").read_text()
    assert "final_accuracy" in report and "## Accuracy matrix" in report
    assert "data:image/png;base64," in (runs[0] / "report.html").read_text()

    out = tmp_path / "compare"
    assert main(["compare", *map(str, runs), "--out", str(out)]) == 0
    with (out / "compare.csv").open() as handle:
        rows = {row["strategy"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"finetune", "kaizen", "scratch"}
    assert rows["scratch"]["seeds"] == "0 1"
    # per task, continual strategies see 2 classes x 24 images (+ 3 steps x 4 replay images after
    # the first task): 48 + 60 + 60 = 168; scratch retrains on everything so far: 48 + 96 + 144
    assert float(rows["finetune"]["images_seen"]) == 168
    assert float(rows["scratch"]["images_seen"]) == 288
    assert float(rows["kaizen"]["images_saving_vs_scratch"]) == 1 - 168 / 288
