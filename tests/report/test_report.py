"""The report of one run: report.md with PNG figures, and a self-contained report.html."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from kaizen.errors import KaizenError
from kaizen.report import write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MATRIX = [
    [0.90, 0.10, 0.00],
    [0.80, 0.85, 0.05],
    [0.60, 0.70, 0.80],
]
KNN = [
    [0.4321, 0.0, 0.0],
    [0.40, 0.45, 0.0],
    [0.35, 0.40, 0.50],
]
LINEAR = [
    [0.6543, 0.0, 0.0],
    [0.60, 0.62, 0.0],
    [0.55, 0.58, 0.63],
]


@pytest.fixture(scope="module")
def report(make_run, tmp_path_factory) -> tuple[Path, Path]:
    run_dir = make_run(
        tmp_path_factory.mktemp("run") / "simclr-kaizen-seed0",
        matrix=MATRIX,
        probes={"knn": KNN, "linear": LINEAR},
    )
    return write_report(run_dir)


def image_sources(html: str) -> list[str]:
    return re.findall(r'<img [^>]*src="([^"]*)"', html)


def test_report_files_are_written_in_the_run_directory(report):
    markdown, html = report
    assert markdown.name == "report.md"
    assert html.name == "report.html"
    assert markdown.parent == html.parent
    assert markdown.is_file()
    assert html.is_file()


def test_markdown_has_metrics_with_protocols_and_every_matrix(report):
    text = report[0].read_text()
    # metrics of MATRIX: final (0.6 + 0.7 + 0.8) / 3 = 0.7; forgetting (0.3 + 0.15) / 2 = 0.225
    assert "| final_accuracy | 0.7000 |" in text
    assert "| forgetting | 0.2250 |" in text
    assert "mean_j a[T-1][j]" in text
    for row in MATRIX + KNN + LINEAR:
        assert " | ".join(f"{value:.4f}" for value in row) in text
    assert "kNN probe" in text
    assert "linear probe" in text
    # random-init accuracies, per-task records and costs
    assert "0.0123" in text
    assert "0.1250" in text  # negative flip rate of task 1
    assert "| total | 30.0 | 24.0 | 3000 | 102.0 |" in text


def test_markdown_figures_are_png_files_beside_it(report):
    markdown = report[0]
    names = re.findall(r"\]\(([^)]+\.png)\)", markdown.read_text())
    # accuracy matrix and two probes: a heatmap and per-task curves each
    assert len(names) == 6
    for name in names:
        assert "/" not in name
        assert (markdown.parent / name).read_bytes().startswith(PNG_SIGNATURE)


def test_html_is_self_contained(report):
    html = report[1].read_text()
    sources = image_sources(html)
    assert len(sources) == 6
    assert all(source.startswith("data:image/png;base64,") for source in sources)
    assert 'src="http' not in html
    assert "<link" not in html
    assert ".png" not in html
    # the same content as the markdown, escaped
    assert "0.7000" in html
    assert "mean_(j&lt;=i) a[i][j]" in html


def test_report_without_probes_or_costs(make_run, tmp_path):
    run_dir = make_run(tmp_path / "run", wall_seconds=None)
    markdown, html = write_report(run_dir)
    text = markdown.read_text()
    assert "probe" not in text
    assert "No costs.json" in text
    assert len(image_sources(html.read_text())) == 2


def test_report_of_a_partial_run(make_run, tmp_path):
    run_dir = make_run(tmp_path / "run", matrix=MATRIX[:2], complete=False)
    text = write_report(run_dir)[0].read_text()
    assert "| complete | no |" in text
    assert "0.8000 | 0.8500 | 0.0500" in text


def test_report_of_a_directory_without_results_names_it_and_the_fix(tmp_path):
    with pytest.raises(KaizenError, match=r"empty has no results\.json: run `kaizen run"):
        write_report(tmp_path / "empty")


def test_report_of_a_broken_results_file(tmp_path):
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(KaizenError, match="not valid JSON"):
        write_report(tmp_path)
    (tmp_path / "results.json").write_text('{"config": {}}')
    with pytest.raises(KaizenError, match=r"lacks 'config\.name'"):
        write_report(tmp_path)


def test_the_frozen_blocks_of_an_earlier_release_are_its_frozen_depth(tmp_path: Path) -> None:
    # results of an earlier release name neither the measure nor the frozen blocks
    runs = Path(__file__).parents[2] / "docs" / "efficiency" / "runs" / "simsiam-lump"
    run_dir = shutil.copytree(runs / "freeze-0.8" / "simsiam-lump-seed0", tmp_path / "run")
    text = write_report(run_dir)[0].read_text().split("## Layer freezing", 1)[1]
    assert "covariance measure" in text
    assert "| 1 | 0.899* | 0.721 | 0.636 | 0.480 |" in text  # frozen depth 1
    assert "| 2 | 0.897* | 0.876* | 0.886* | 0.856 |" in text  # frozen depth 3


def test_the_classifier_stands_beside_the_linear_probe_task_by_task(report):
    text = report[0].read_text()
    assert "## Classifier against the linear probe on its features" in text
    # task 0: just trained 0.90 (probe 0.6543), after task 2 0.60 (probe 0.55): gap -0.05
    assert "| 0 | 0.9000 | 0.6543 | 0.6000 | 0.5500 | -0.0500 |" in text
    assert "| 2 | 0.8000 | 0.6300 | 0.8000 | 0.6300 | -0.1700 |" in text
