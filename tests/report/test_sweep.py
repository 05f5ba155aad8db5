"""Sweeps: one run per (SSL method, strategy, seed), complete runs skipped, then compared."""

from __future__ import annotations

from pathlib import Path

import pytest

from kaizen.errors import KaizenError
from kaizen.report.sweep import config_source, sweep


class FakeRunner:
    """Records its calls and writes the results.json a real run would write."""

    def __init__(self, make_run) -> None:
        self.make_run = make_run
        self.calls: list[tuple[str, Path, list[str]]] = []

    def __call__(self, source: str, out_dir: Path, overrides: list[str]) -> None:
        self.calls.append((source, out_dir, overrides))
        values = dict(override.split("=", 1) for override in overrides)
        self.make_run(
            out_dir,
            ssl=values["ssl.method"],
            strategy=values["strategy.name"],
            seed=int(values["seed"]),
        )


def test_sweep_runs_only_the_missing_points_and_compares_them_all(make_run, tmp_path):
    make_run(tmp_path / "simclr-kaizen-seed0")  # complete: skipped
    make_run(
        tmp_path / "byol-kaizen-seed1", ssl="byol", seed=1, matrix=[[0.5, 0.1, 0.0]], complete=False
    )  # interrupted: run again
    runner = FakeRunner(make_run)
    lines: list[str] = []
    run_dirs = sweep(
        "demo",
        ["simclr", "byol"],
        ["kaizen"],
        [0, 1],
        tmp_path,
        ["train.epochs=1"],
        runner=runner,
        log=lines.append,
    )
    assert [path.name for path in run_dirs] == [
        "simclr-kaizen-seed0",
        "simclr-kaizen-seed1",
        "byol-kaizen-seed0",
        "byol-kaizen-seed1",
    ]
    assert [call[1].name for call in runner.calls] == [
        "simclr-kaizen-seed1",
        "byol-kaizen-seed0",
        "byol-kaizen-seed1",
    ]
    source, out_dir, overrides = runner.calls[0]
    assert source == "demo"
    assert out_dir == tmp_path / "simclr-kaizen-seed1"
    # the user's overrides first, the grid's values last (they win)
    assert overrides == [
        "train.epochs=1",
        "ssl.method=simclr",
        "strategy.name=kaizen",
        "seed=1",
        "name=simclr-kaizen-seed1",
    ]
    assert len(lines) == 4
    assert "skipped" in lines[0]
    compare_md = tmp_path / "compare" / "compare.md"
    assert "| simclr | kaizen | 0 1 |" in compare_md.read_text()
    assert "| byol | kaizen | 0 1 |" in compare_md.read_text()


def test_sweep_with_everything_complete_runs_nothing(make_run, tmp_path):
    make_run(tmp_path / "simclr-finetune-seed0", strategy="finetune")
    runner = FakeRunner(make_run)
    sweep("demo", ["simclr"], ["finetune"], [0], tmp_path, [], runner=runner)
    assert runner.calls == []
    assert (tmp_path / "compare" / "compare.html").is_file()


@pytest.mark.parametrize(
    ("ssl", "strategies", "overrides"),
    [(["simclr"], ["kaizen", "no-such-strategy"], []), (["simclr"], ["kaizen"], ["no.key=1"])],
)
def test_a_bad_point_fails_before_any_run(make_run, tmp_path, ssl, strategies, overrides):
    runner = FakeRunner(make_run)
    with pytest.raises(KaizenError):
        sweep("demo", ssl, strategies, [0], tmp_path, overrides, runner=runner)
    assert runner.calls == []


def test_an_empty_grid_is_refused(make_run, tmp_path):
    with pytest.raises(KaizenError, match="at least one"):
        sweep("demo", ["simclr"], [], [0], tmp_path, [], runner=FakeRunner(make_run))


def test_config_source_takes_each_ssl_methods_preset_of_a_family():
    # the paper presets keep each SSL method's own settings (VICReg's learning rate)
    assert config_source("cifar100", "vicreg", "kaizen") == "cifar100-vicreg-kaizen"
    # a strategy outside the family: the family's preset of the same SSL method
    assert config_source("cifar100", "vicreg", "scratch").startswith("cifar100-vicreg-")
    # a plain preset or a YAML file is used as it is
    assert config_source("demo", "vicreg", "kaizen") == "demo"
    assert config_source("runs/my.yaml", "byol", "cassle") == "runs/my.yaml"
