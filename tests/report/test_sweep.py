"""Sweeps: one run per (SSL method, strategy, seed), complete runs skipped, then compared."""

from __future__ import annotations

from pathlib import Path

import pytest

from kaizen.api import resolve_config
from kaizen.errors import KaizenError
from kaizen.storage.rundir import start_run_dir
from kaizen.sweep.runner import SweepIncomplete, config_source, sweep


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


def _start_point(root: Path, ssl: str, strategy: str, seed: int, overrides: list[str]) -> Path:
    """A point's run directory as `kaizen run` leaves it when killed before its first task ends."""
    name = f"{ssl}-{strategy}-seed{seed}"
    grid = [f"ssl.method={ssl}", f"strategy.name={strategy}", f"seed={seed}", f"name={name}"]
    start_run_dir(root / name, resolve_config("demo", [*overrides, *grid]), force=False)
    return root / name


def test_sweep_runs_only_the_missing_points_and_compares_them_all(make_run, tmp_path):
    make_run(tmp_path / "simclr-kaizen-seed0")  # complete: skipped
    interrupted = _start_point(tmp_path, "byol", "kaizen", 1, ["train.epochs=1"])
    runner = FakeRunner(make_run)
    resumed: list[Path] = []

    def resumer(run_dir: Path) -> None:
        resumed.append(run_dir)
        make_run(run_dir, ssl="byol", seed=1)

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
        resumer=resumer,
    )
    assert [path.name for path in run_dirs] == [
        "simclr-kaizen-seed0",
        "simclr-kaizen-seed1",
        "byol-kaizen-seed0",
        "byol-kaizen-seed1",
    ]
    assert [call[1].name for call in runner.calls] == ["simclr-kaizen-seed1", "byol-kaizen-seed0"]
    assert resumed == [interrupted]
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
    assert "resuming" in lines[3]
    compare_md = tmp_path / "compare" / "compare.md"
    assert "| simclr | kaizen | 10 | 0 1 |" in compare_md.read_text()
    assert "| byol | kaizen | 10 | 0 1 |" in compare_md.read_text()


def test_a_failed_point_is_reported_and_the_others_still_run(make_run, tmp_path):
    # an interrupted point of another config is never resumed nor overwritten
    other = _start_point(tmp_path, "simclr", "kaizen", 0, ["train.epochs=3"])
    kept = (other / "config.yaml").read_bytes()

    class DivergingRunner(FakeRunner):
        def __call__(self, source: str, out_dir: Path, overrides: list[str]) -> None:
            if out_dir.name == "simclr-kaizen-seed1":
                raise KaizenError("loss term 'ssl' became NaN or infinite at task 2")
            super().__call__(source, out_dir, overrides)

    runner = DivergingRunner(make_run)
    lines: list[str] = []
    with pytest.raises(SweepIncomplete) as failure:
        sweep(
            "demo",
            ["simclr"],
            ["kaizen"],
            [0, 1, 2],
            tmp_path,
            ["train.epochs=1"],
            runner=runner,
            log=lines.append,
            resumer=lambda run_dir: pytest.fail("resumed"),
        )
    message = str(failure.value)
    assert message.startswith("2 of 3 sweep points failed")
    assert "simclr-kaizen-seed0" in message and "another config" in message
    assert "simclr-kaizen-seed1" in message and "NaN" in message
    assert [call[1].name for call in runner.calls] == ["simclr-kaizen-seed2"]  # after the failure
    assert (other / "config.yaml").read_bytes() == kept
    assert sum(": failed: " in line for line in lines) == 2
    # the point that finished is compared
    assert "| simclr | kaizen | 10 | 2 |" in (tmp_path / "compare" / "compare.md").read_text()


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


def test_config_source_takes_each_strategys_preset_of_a_family_without_ssl():
    # the SLCA ablation is one sweep: each strategy keeps its own preset's settings
    assert config_source("slca-cifar100", "none", "slcapp") == "slca-cifar100-slcapp"
    assert config_source("slca-cub200", "none", "joint") == "slca-cub200-joint"


@pytest.mark.parametrize(
    ("ssl", "strategies", "named"),
    [
        (["nope"], ["kaizen"], "unknown SSL method 'nope' in --ssl: choose from simclr, "),
        (["simclr"], ["nope"], "unknown strategy 'nope' in --strategies: choose from "),
        (["none"], ["kaizen"], "preset family 'fmnist' has no preset of SSL method 'none'"),
    ],
    ids=["ssl", "strategy", "ssl-outside-the-family"],
)
def test_an_unknown_name_of_a_sweep_is_named_before_anything_runs(
    ssl: list[str], strategies: list[str], named: str, tmp_path: Path, capsys
) -> None:
    from kaizen.cli import main

    out = tmp_path / "sweep"
    argv = ["sweep", "fmnist", "--ssl", ",".join(ssl), "--strategies", ",".join(strategies)]
    assert main([*argv, "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("kaizen: error:") and "\n" not in error
    assert named in error, error
    assert "unknown preset" not in error and not out.exists()
