"""benchmarks/parity/table.py: each row's runs set against the preset's own runs, seed by seed."""

from __future__ import annotations

from types import ModuleType

import pytest

from conftest import load_script


@pytest.fixture(scope="module")
def table() -> ModuleType:
    return load_script("parity/table.py", "parity_table")


def test_a_row_is_compared_with_the_default_runs_of_its_seeds(table, make_run, tmp_path, capsys):
    worse = [[0.9, 0.0, 0.0], [0.6, 0.9, 0.0], [0.5, 0.6, 0.9]]  # final accuracy 2/3
    knn = {"knn": worse}
    for seed in (0, 1, 2):  # the default has a seed the row lacks: it must be left out
        make_run(tmp_path / "default" / f"simclr-kaizen-seed{seed}", seed=seed, probes=knn)
    for seed in (0, 1):
        run_dir = tmp_path / "row-a" / f"simclr-kaizen-seed{seed}"
        make_run(run_dir, seed=seed, matrix=worse, probes=knn)
    make_run(tmp_path / "row-b" / "simclr-kaizen-seed0", complete=False)  # still running
    table.main(tmp_path)
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines if line.startswith("| row-")]
    assert len(rows) == 1
    cells = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert cells[:4] == ["row-a", "simclr", "kaizen", "0 1"]
    plain = table.group_runs([table.load_run(tmp_path / "default" / "simclr-kaizen-seed0")])[0]
    before = plain.accuracy["final_accuracy"].mean
    assert cells[4].endswith(f"({100 * (2 / 3 - before):+.2f})")
    assert cells[7].endswith("(+0.00)")  # the same kNN matrices


def test_a_family_without_probes_has_no_knn_cell(table, make_run, tmp_path, capsys):
    worse = [[0.9, 0.0, 0.0], [0.6, 0.9, 0.0], [0.5, 0.6, 0.9]]
    make_run(tmp_path / "default" / "simclr-kaizen-seed0", seed=0)
    make_run(tmp_path / "row-a" / "simclr-kaizen-seed0", seed=0, matrix=worse)
    table.main(tmp_path)
    (row,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| row-")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert len(cells) == 8 and cells[7] == "—"
    assert "→" in cells[4]
