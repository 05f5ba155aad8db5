"""`kaizen resume DIR key=value`: runtime settings may change, the run itself may not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import kaizen
from kaizen.cli import main


def _interrupted_run(tiny, run_dir: Path) -> dict:
    """A finished tiny run with its last checkpoint removed: resuming trains the last task."""
    kaizen.run(tiny("kaizen"), run_dir)
    finished = json.loads((run_dir / "results.json").read_text())
    newest = sorted((run_dir / "checkpoints").glob("*.pt"))[-1]
    newest.unlink()
    newest.with_name(newest.name + ".sha256").unlink()
    return finished


def test_resume_may_change_how_the_run_executes(tiny, tmp_path: Path, capsys) -> None:
    finished = _interrupted_run(tiny, tmp_path / "run")
    assert main(["resume", str(tmp_path / "run"), "train.num_threads=1", "train.log_every=5"]) == 0
    resumed = json.loads((tmp_path / "run" / "results.json").read_text())
    assert resumed["complete"]
    assert resumed["config"]["train"]["num_threads"] == 1
    # the tasks before the checkpoint are the ones the first process trained
    assert resumed["accuracy_matrix"]["values"][:2] == finished["accuracy_matrix"]["values"][:2]


def test_resume_refuses_a_change_of_the_run_itself(tiny, tmp_path: Path, capsys) -> None:
    _interrupted_run(tiny, tmp_path / "run")
    before = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert main(["resume", str(tmp_path / "run"), "optim.lr=0.5"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "'optim.lr' would change the run itself" in error
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == before


@pytest.mark.parametrize("override", ["train.accelerator=gpu", "train.devices=0"])
def test_a_bad_runtime_value_is_named(override: str, tiny, tmp_path: Path, capsys) -> None:
    _interrupted_run(tiny, tmp_path / "run")
    assert main(["resume", str(tmp_path / "run"), override]) == 2
    assert override.split("=")[0] in capsys.readouterr().err
