"""The `kaizen` command: runs from presets, YAML and .npz data; one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from kaizen.cli import main
from kaizen.data.formats.synthetic import make_synthetic


def _write_yaml(tree: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(tree))
    return path


def _write_npz(path: Path) -> Path:
    data = make_synthetic(
        num_classes=10, train_per_class=12, test_per_class=4, image_size=12, seed=3
    )
    np.savez(
        path,
        x=data.train.images.permute(0, 2, 3, 1).numpy(),
        y=data.train.labels.numpy(),
        x_test=data.test.images.permute(0, 2, 3, 1).numpy(),
        y_test=data.test.labels.numpy(),
    )
    return path


def test_run_on_an_npz_file_writes_a_five_by_five_matrix(tiny, tmp_path: Path) -> None:
    tree = tiny("kaizen")
    tree["data"] = {"name": "npz", "path": str(_write_npz(tmp_path / "stream.npz"))}
    tree["scenario"] = {"num_tasks": 5}
    config = _write_yaml(tree, tmp_path / "run.yaml")
    out = tmp_path / "out"
    assert main(["run", str(config), "--out", str(out)]) == 0
    saved = json.loads((out / "results.json").read_text())
    matrix = saved["accuracy_matrix"]["values"]
    assert len(matrix) == 5 and all(len(row) == 5 for row in matrix)
    assert saved["config"]["data"]["name"] == "npz"
    for name in ("final_accuracy", "average_continual_accuracy", "forgetting", "backward_transfer"):
        assert 0.0 <= abs(saved["metrics"][name]["value"]) <= 1.0


def test_overrides_reach_the_run(tiny, tmp_path: Path) -> None:
    config = _write_yaml(tiny("finetune"), tmp_path / "run.yaml")
    out = tmp_path / "out"
    assert (
        main(["run", str(config), "scenario.num_tasks=2", "train.epochs=2", "--out", str(out)]) == 0
    )
    saved = json.loads((out / "results.json").read_text())
    assert saved["config"]["train"]["epochs"] == 2
    assert len(saved["accuracy_matrix"]["values"]) == 2


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("train.epoch=3", "train.epoch"),
        ("train.epochs=abc", "train.epochs"),
        ("data.path=/no/such/folder", "/no/such/folder"),
        ("replay.batch_size=-1", "replay.batch_size"),
        ("ssl.method=swav", "ssl.method"),
        ("ssl.queue_size=5", "'ssl.queue_size' does not apply to ssl.method=simclr"),
    ],
)
def test_bad_input_is_one_line_with_exit_code_2(
    override: str, named: str, tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _write_yaml(tiny("kaizen"), tmp_path / "run.yaml")
    assert main(["run", str(config), override, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and named in err and err.startswith("kaizen: error:")
    assert not (tmp_path / "out" / "results.json").exists()


def test_unknown_preset_names_the_presets_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "cifar100-swav-kaizen"]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'cifar100-swav-kaizen'" in err and "kaizen presets" in err


def test_presets_lists_the_demo_and_the_paper_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "demo" in out and "cifar100-vicreg-kaizen" in out and "cifar100-byol-finetune" in out
    assert "cifar100-simsiam-cassle" in out and "fmnist-barlow-kaizen" in out


def test_console_script_reports_a_missing_data_path_without_traceback(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "kaizen.cli", "run", "demo", f"data.path={tmp_path / 'missing'}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert completed.stderr.strip().count("\n") == 0
    assert "missing" in completed.stderr and "data.path" in completed.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["sweep", "fmnist", "--ssl", "byol", "--out", "R", "train.epochs=2", "seed=1"],
        ["sweep", "--ssl", "byol", "fmnist", "train.epochs=2", "--out", "R", "seed=1"],
        ["sweep", "--ssl", "byol", "--out", "R", "fmnist", "train.epochs=2", "seed=1"],
    ],
)
def test_overrides_may_come_before_between_or_after_the_options(argv: list[str]) -> None:
    from kaizen.cli import build_parser, parse_arguments

    args = parse_arguments(build_parser(), argv)
    assert (args.config, args.overrides, args.ssl, args.out) == (
        "fmnist",
        ["train.epochs=2", "seed=1"],
        ["byol"],
        "R",
    )


def test_an_unknown_option_is_still_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["sweep", "fmnist", "--no-such-option", "train.epochs=2"])
    assert stopped.value.code == 2
    assert "--no-such-option" in capsys.readouterr().err


def test_presets_piped_print_every_name_whole() -> None:
    from kaizen.presets import preset_names

    completed = subprocess.run(
        [sys.executable, "-m", "kaizen.cli", "presets"], capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr
    longest = max(preset_names(), key=len)
    assert len(longest) > 30 and "…" not in completed.stdout
    rows = [line.split("│")[1].strip() for line in completed.stdout.splitlines() if "│" in line]
    assert longest in rows and rows == preset_names()


def test_the_tables_of_a_run_and_of_a_comparison_print_whole_when_piped(
    tiny, make_run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a run prints its matrix and metrics as the demo does, side by side for two strategies
    config = _write_yaml(tiny("finetune"), tmp_path / "run.yaml")
    assert main(["run", str(config), "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "Accuracy matrix a[i][j] (finetune)" in out
    assert "Continual metrics (classifier, task-agnostic single head)" in out
    assert "average_continual_accuracy" in out and "…" not in out
    # a variant of a strategy is named by its setting, however long
    plain = make_run(tmp_path / "plain", strategy="kaizen")
    setting = {"strategy.classifier_distill_classes": "seen"}
    variant = make_run(tmp_path / "variant", strategy="kaizen", settings=setting)
    compared = ["compare", str(plain), str(variant), "--out", str(tmp_path / "compare")]
    assert main(compared) == 0
    out = capsys.readouterr().out
    assert "kaizen[strategy.classifier_distill_classes=seen]" in out and "…" not in out
