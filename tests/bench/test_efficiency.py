"""The scripts of benchmarks/efficiency: the table of docs/efficiency.md from the committed run
records, with whole-run savings, and the threshold choice made before the held-out comparison."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from kaizen.report.aggregate import Spread

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "benchmarks" / "efficiency"
RECORDS = ROOT / "docs" / "efficiency" / "runs"


@pytest.fixture(scope="module")
def scripts() -> tuple[ModuleType, ModuleType]:
    sys.path.insert(0, str(SCRIPTS))
    try:
        import choose
        import table
    finally:
        sys.path.remove(str(SCRIPTS))
    return table, choose


def test_the_table_of_the_committed_records_has_whole_run_savings(
    scripts: tuple[ModuleType, ModuleType],
) -> None:
    table, _ = scripts
    rows = {
        (row[0], row[3]): dict(zip(table.COLUMNS, row, strict=True)) for row in table.rows(RECORDS)
    }
    assert len(rows) == 9
    simsiam = rows[("simsiam lump", "0.8")]
    assert simsiam["freezing variant"] == "covariance-prefix"
    assert (simsiam["backward FLOPs 1..T"], simsiam["backward FLOPs 0..T"]) == ("-76.8%", "-61.5%")
    # task 0 never freezes: the whole run's largest step is plain's task-0 step
    assert simsiam["step memory 0..T, largest / mean"].startswith("+0.0% / ")
    for row in rows.values():
        for cost in ("train time", "backward FLOPs"):
            later, whole = (float(row[f"{cost} {tasks}"].rstrip("%")) for tasks in ("1..T", "0..T"))
            assert later <= whole <= 0  # task 0 dilutes a saving, never adds to it


def test_the_threshold_kept_is_the_largest_saving_within_plains_spread(
    scripts: tuple[ModuleType, ModuleType],
) -> None:
    _, choose = scripts
    plain = Spread(0.90, 0.02)
    candidates = [
        choose.Candidate(0.8, 0.6, 0.87),  # saves most, but more than one std below plain
        choose.Candidate(0.9, 0.4, 0.885),
        choose.Candidate(0.95, 0.2, 0.91),
    ]
    assert choose.choose(candidates, plain) == 0.9
    assert choose.choose(candidates[:1], plain) is None
    assert choose.choose([choose.Candidate(0.9, None, 0.95)], plain) is None


def test_the_held_out_protocol_chooses_then_prints_both_tables(
    scripts: tuple[ModuleType, ModuleType], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table, choose = scripts
    for stage in ("selection", "comparison"):
        (tmp_path / stage).mkdir()
        (tmp_path / stage / "simsiam-lump").symlink_to(RECORDS / "simsiam-lump")
    choice = tmp_path / "choice.json"
    choose.main([str(tmp_path / "selection"), str(choice)])
    record = json.loads(choice.read_text())["strategies"]["simsiam-lump"]["covariance-prefix"]
    assert [c["threshold"] for c in record["candidates"]] == [0.8, 0.9, 0.95]
    assert record["threshold"] == 0.8
    capsys.readouterr()
    choose.main(["--read", str(choice), "simsiam-lump", "covariance-prefix"])
    assert capsys.readouterr().out == "0.8\n"
    table.main([str(tmp_path)])
    printed = capsys.readouterr().out
    assert printed.index("Held-out comparison") < printed.index("Selection")
    assert printed.count("| simsiam lump | knn-task | covariance-prefix | 0.8 |") == 2
