"""benchmarks/classifier/table.py: the classifier beside its linear probe per variant, and the
recommended strategy against scratch."""

from __future__ import annotations

from types import ModuleType

import pytest

from conftest import load_script

CLASSIFIER = [[0.9, 0.0, 0.0], [0.6, 0.9, 0.0], [0.5, 0.6, 0.7]]  # final 0.6, plasticity 5/6
PROBE = [[0.9, 0.0, 0.0], [0.8, 0.9, 0.0], [0.8, 0.8, 0.8]]  # final 0.8


@pytest.fixture(scope="module")
def table() -> ModuleType:
    return load_script("classifier/table.py", "classifier_table")


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_each_variant_stands_beside_its_probe(table, make_run, tmp_path, capsys):
    folder = tmp_path / "select" / "5x2" / "kaizen-refit"
    for seed in (0, 1):
        make_run(folder / f"seed{seed}", seed=seed, matrix=CLASSIFIER, probes={"linear": PROBE})
    make_run(folder / "seed2", seed=2, complete=False, probes={"linear": PROBE})
    table.main(tmp_path)
    (row,) = [line for line in capsys.readouterr().out.splitlines() if "kaizen-refit" in line]
    assert _cells(row) == [
        "kaizen-refit",
        "0 1",
        "0.6000 ± 0.0000",
        f"{(0.9 + 0.75 + 0.6) / 3:.4f} ± 0.0000",
        "0.8000 ± 0.0000",
        "20.0 ± 0.0",
        f"{(0.9 + 0.9 + 0.7) / 3:.4f} ± 0.0000",
    ]


def test_the_demo_is_set_against_scratch_seed_by_seed(table, make_run, tmp_path, capsys):
    demo = tmp_path / "scratch" / "demo"
    make_run(demo / "scratch-seed0", strategy="scratch", matrix=PROBE, wall_seconds=(10, 20, 30))
    make_run(demo / "kaizen-refit-seed0", matrix=CLASSIFIER, wall_seconds=(10, 10, 10))
    table.main(tmp_path)
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 0 ")]
    # train seconds are 0.8 of the wall seconds: 48 against 24
    assert _cells(rows[0]) == ["0", "0.8000", "48.0", "0.6000", "24.0", "0.750", "0.500"]
