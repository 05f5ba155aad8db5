"""Production end to end: update a finished run from arrived data, gate, promote, predict and
export."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from PIL import Image

import kaizen
from kaizen import testpoints
from kaizen.cli import main
from kaizen.data.stream import load_stream
from kaizen.production.commands import REJECTED_EXIT_CODE
from kaizen.ssl.registry import views_of

CLI = [sys.executable, "-m", "kaizen.cli"]
OPEN_GATE = ["gate.max_old_drop=1", "gate.max_flip_rate=1"]


def _results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def _finish_tiny_run(strategy: str, run_dir: Path) -> Path:
    """A finished tiny ``strategy`` run of 3 tasks over synthetic classes class-0..class-5."""
    from conftest import tiny_tree

    tree = tiny_tree(strategy)
    tree["train"].update(
        {"epochs": 6, "checkpoint_every_epochs": 1, "progress": False, "num_threads": 1}
    )
    kaizen.run(tree, run_dir)
    return run_dir


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    return _finish_tiny_run("kaizen", tmp_path_factory.mktemp("runs") / "run")


@pytest.fixture(scope="module")
def finished_slcapp_run(tmp_path_factory) -> Path:
    """One head per task, grown by a head at an update, and alignment after every task."""
    return _finish_tiny_run("slcapp", tmp_path_factory.mktemp("runs") / "slcapp")


@pytest.fixture
def run_dir(finished_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


def _image(path: Path, value: float, seed: int, size: int = 16) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.normal(value, 25, (size, size, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)


@pytest.fixture
def arrived(tmp_path: Path) -> Path:
    """A folder of a known class, two new ones, unlabelled images and a corrupt file."""
    root = tmp_path / "arrived"
    for offset, name in enumerate(["class-0", "sandal", "boot", "_unlabelled"]):
        for i in range(8):
            _image(root / name / f"{i}.png", 40 + 50 * offset, seed=10 * offset + i)
    (root / "boot" / "corrupt.png").write_bytes(b"\x89PNG truncated")
    return root


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_an_update_with_new_classes_grows_the_classifier_and_appends_a_row(
    run_dir: Path, arrived: Path, capsys
) -> None:
    assert main(["update", str(run_dir), str(arrived), *OPEN_GATE]) == 0
    out = capsys.readouterr()
    assert "corrupt.png; it is left out" in out.out and "update trained as task 3" in out.out
    classes = json.loads((run_dir / "classes.json").read_text())
    # new names in first-seen order: the folders are read sorted
    assert classes == [f"class-{i}" for i in range(6)] + ["boot", "sandal"]
    results = _results(run_dir)
    matrix = results["accuracy_matrix"]["values"]
    assert len(matrix) == 4 and len(matrix[-1]) == 4 and results["complete"]
    assert results["tasks"][3]["classes"] == [0, 6, 7]
    # 8 images per class, 2 of each labelled class held out: 6 + 6 + 6 (one corrupt left out:
    # boot keeps 8) and 8 unlabelled for training
    assert results["tasks"][3]["test_size"] == 6
    model = kaizen.load_model(run_dir)
    assert model.folder.name == "v4" and len(model.class_names) == 8
    assert model.module(torch.zeros(2, 3, 16, 16, dtype=torch.uint8)).shape == (2, 8)
    history = [row["status"] for row in kaizen.production.versions.history(run_dir)]
    assert history == ["released"] * 4


def test_a_rejected_update_leaves_the_model_in_service_and_earlier_versions_untouched(
    run_dir: Path, arrived: Path, capsys
) -> None:
    before = _digests(run_dir / "models")
    strict = ["gate.max_old_drop=0", "gate.max_flip_rate=0"]
    assert main(["update", str(run_dir), str(arrived), *strict]) == REJECTED_EXIT_CODE
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("v4: kept as a candidate: against v3")
    assert (run_dir / "models" / "current").read_text().strip() == "v3"
    after = _digests(run_dir / "models")
    assert {k: v for k, v in after.items() if not k.startswith("v4/")} == before
    # promoted by hand, then listed as in service
    assert main(["promote", str(run_dir), "v4"]) == 0
    assert kaizen.load_model(run_dir).folder.name == "v4"
    assert main(["history", str(run_dir)]) == 0
    out = capsys.readouterr().out
    # piped, the table is printed whole: its title holds the run directory's path on one line
    lines = [line.strip() for line in out.splitlines()]
    assert "v4 *" in out and f"Model versions of {run_dir}" in lines


def test_a_saved_version_predicts_what_the_run_measured(run_dir: Path) -> None:
    from kaizen.api import resolve_config
    from kaizen.storage.rundir import read_run_config

    config = read_run_config(run_dir)
    resolved = resolve_config(config)
    stream = load_stream(resolved, _cpu_fabric(), views_of(resolved.ssl))
    model = kaizen.load_model(run_dir / "models" / "v3")
    predicted = model.logits(stream.test_images).argmax(dim=1)
    measured = json.loads((run_dir / "models" / "v3" / "model.json").read_text())["metrics"]
    for task, accuracy in zip(stream.tasks, measured["accuracy_per_task"], strict=True):
        hits = predicted[task.test_indices] == stream.test_labels[task.test_indices]
        assert float(hits.float().mean()) == pytest.approx(accuracy)


def _cpu_fabric():
    from lightning.fabric import Fabric

    return Fabric(accelerator="cpu", devices=1)


def test_predict_names_and_skips_an_unreadable_image_and_writes_csv(
    run_dir: Path, arrived: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "predictions.csv"
    args = ["predict", str(run_dir), str(arrived / "boot"), "--top-k", "2", "--out", str(out)]
    assert main(args) == 0
    assert "corrupt.png" in capsys.readouterr().out
    lines = out.read_text().splitlines()
    assert lines[0] == "path,class_1,probability_1,class_2,probability_2"
    assert len(lines) == 1 + 8
    first = lines[1].split(",")
    assert first[1] in {f"class-{i}" for i in range(6)} and float(first[2]) >= float(first[4])


def test_the_onnx_export_matches_pytorch_and_torchscript_too(
    run_dir: Path, tmp_path: Path, capsys
) -> None:
    model = kaizen.load_model(run_dir)
    images = torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8)
    expected = model.module(images).detach().numpy()
    onnx_file = tmp_path / "model.onnx"
    assert main(["export", str(run_dir), "--format", "onnx", "--out", str(onnx_file)]) == 0
    session = onnxruntime.InferenceSession(str(onnx_file))
    (logits,) = session.run(None, {"images": images.numpy()})
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=0)
    script = tmp_path / "model.pt"
    arguments = ["export", str(run_dir), "--format", "torchscript", "--out", str(script)]
    assert main([*arguments, "--check"]) == 0
    assert "checked: the file's logits match PyTorch's" in capsys.readouterr().out
    traced = torch.jit.load(str(script))
    np.testing.assert_allclose(traced(images).detach().numpy(), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["export", "{run}", "--format", "tflite"], "unknown export format 'tflite'"),
        (["predict", "{config}", "{run}/classes.json"], "is not a kaizen-cl model"),
        (["update", "{run}", "{csv}"], "names 1 files that do not exist"),
        (["update", "{run}", "{small}"], "but the run trains on 3-channel 16x16"),
        (["promote", "{run}", "v9"], "has no model version v9"),
        (
            ["export", "{run}", "--format", "onnx", "--out", "{tmp}/missing/m.onnx"],
            "missing does not exist; create the folder",
        ),
        (["export", "{run}", "--format", "onnx", "--out", "{tmp}"], "is a folder"),
        (["history", "{tmp}/small"], "small holds no run"),
        (["history", "{tmp}/nowhere"], "nowhere does not exist"),
    ],
    ids=[
        "export-format",
        "predict-not-a-model",
        "csv-missing-files",
        "image-size",
        "promote",
        "export-missing-folder",
        "export-to-a-folder",
        "history-no-run",
        "history-no-folder",
    ],
)
def test_bad_production_input_is_one_line_and_exit_2(
    run_dir: Path, tmp_path: Path, arguments: list[str], message: str, capsys
) -> None:
    csv = tmp_path / "list.csv"
    csv.write_text("path,label\nnowhere.png,boot\n")
    small = tmp_path / "small"
    _image(small / "boot" / "0.png", 100, seed=0, size=12)
    before = _digests(tmp_path)
    paths = {
        "run": run_dir,
        "config": run_dir / "config.yaml",
        "csv": csv,
        "small": small,
        "tmp": tmp_path,
    }
    assert main([a.format(**paths) for a in arguments]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("kaizen: error:") and len(error.splitlines()) == 1
    assert message in error, error
    assert _digests(tmp_path) == before and not (tmp_path / "missing").exists()


def test_history_of_a_run_without_versions_says_so(tmp_path: Path, capsys) -> None:
    from conftest import tiny_tree

    tree = tiny_tree("finetune")
    tree["train"]["save_models"] = False
    kaizen.run(tree, tmp_path / "run")
    capsys.readouterr()
    assert main(["history", str(tmp_path / "run")]) == 0
    assert "has no model versions yet" in capsys.readouterr().out


def test_an_update_of_an_unfinished_run_is_refused(run_dir: Path, arrived: Path, capsys) -> None:
    results = _results(run_dir)
    results["complete"] = False
    (run_dir / "results.json").write_text(json.dumps(results))
    assert main(["update", str(run_dir), str(arrived)]) == 2
    assert f"kaizen resume {run_dir}" in capsys.readouterr().err


def test_an_npz_update_then_a_csv_update_each_add_a_task(
    run_dir: Path, arrived: Path, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    npz = tmp_path / "new.npz"
    x = rng.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)
    np.savez(npz, x=x, y=np.array([0, 1] * 5 + [-1, -1]), class_names=np.array(["kite", "owl"]))
    kaizen.update(run_dir, npz, overrides=OPEN_GATE)
    csv = tmp_path / "more.csv"
    rows = [f"{p},boot" for p in sorted((arrived / "sandal").glob("*.png"))]
    csv.write_text("\n".join([*rows, f"{arrived / '_unlabelled' / '0.png'},"]) + "\n")
    outcome = kaizen.update(run_dir, csv, label_fraction=0.5, overrides=OPEN_GATE)
    assert outcome.version == "v5" and outcome.promoted
    classes = json.loads((run_dir / "classes.json").read_text())
    assert classes[6:] == ["kite", "owl", "boot"]
    assert [task["classes"] for task in _results(run_dir)["tasks"][3:]] == [[6, 7], [8]]


def _resume_to_the_same_update(killed: Path, straight: Path) -> None:
    """`kaizen resume` of the killed update ends with the uninterrupted one's results and v4."""
    finished = subprocess.run([*CLI, "resume", str(killed)], capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    assert (killed / "results.json").read_text() == (straight / "results.json").read_text()
    assert (killed / "models" / "v4" / "model.safetensors").read_bytes() == (
        straight / "models" / "v4" / "model.safetensors"
    ).read_bytes()


@pytest.mark.parametrize("finished", ["finished_run", "finished_slcapp_run"])
def test_an_update_killed_mid_task_resumes_to_the_same_results(
    finished: str, arrived: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    source: Path = request.getfixturevalue(finished)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    for target in (straight, killed):
        shutil.copytree(source, target)
    if finished == "finished_slcapp_run":  # one head per task: an update brings new classes only
        shutil.rmtree(arrived / "class-0")
    kaizen.update(straight, arrived, overrides=OPEN_GATE)
    command = [*CLI, "update", str(killed), str(arrived), *OPEN_GATE]
    # the first step of the update's second epoch: its first epoch is saved, its end is not
    env = {**os.environ, testpoints.KILL_VARIABLE: "step 3.1.0"}
    stopped = subprocess.run(command, capture_output=True, text=True, env=env)
    assert stopped.returncode == -signal.SIGKILL, stopped.stderr
    assert (killed / "checkpoints" / "ckpt-t003-e00001-b0000000.pt").exists()
    assert not (killed / "models" / "v4").exists()
    _resume_to_the_same_update(killed, straight)


UPDATE_BUDGET = ["train.epochs=2", "train.batch_size=8", "optim.lr=0.5"]


def test_an_updates_own_budget_trains_its_task_and_survives_a_kill(
    finished_run: Path, arrived: Path, tmp_path: Path, capsys
) -> None:
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    for target in (straight, killed):
        shutil.copytree(finished_run, target)
    before = _results(finished_run)
    kaizen.update(straight, arrived, overrides=[*OPEN_GATE, *UPDATE_BUDGET])
    results = _results(straight)
    record = json.loads((straight / "updates" / "u001" / "update.json").read_text())
    assert record["overrides"] == [*OPEN_GATE, *UPDATE_BUDGET]
    # the update's task trained 2 epochs of batches of 8; the finished tasks are as they were
    assert results["tasks"][3]["steps"] == 2 * (record["train_images"] // 8)
    assert results["tasks"][:3] == before["tasks"]
    # killed in the update's second epoch, it goes on with the settings it was started with
    command = [*CLI, "update", str(killed), str(arrived), *OPEN_GATE, *UPDATE_BUDGET]
    env = {**os.environ, testpoints.KILL_VARIABLE: "step 3.1.0"}
    stopped = subprocess.run(command, capture_output=True, text=True, env=env)
    assert stopped.returncode == -signal.SIGKILL, stopped.stderr
    # another update must wait until the interrupted one is finished
    interrupted = _digests(killed)
    assert main(["update", str(killed), str(arrived)]) == 2
    error = capsys.readouterr().err.strip()
    assert f"update 1 of {killed} was interrupted" in error and "kaizen resume" in error
    assert _digests(killed) == interrupted
    _resume_to_the_same_update(killed, straight)
    # a resume of the finished update trains nothing and writes nothing
    done = _digests(killed)
    assert main(["resume", str(killed)]) == 0
    assert _digests(killed) == done
    # the next update trains with the run's own budget: 6 epochs of batches of 16
    kaizen.update(killed, arrived, overrides=OPEN_GATE)
    second = json.loads((killed / "updates" / "u002" / "update.json").read_text())
    assert _results(killed)["tasks"][4]["steps"] == 6 * (second["train_images"] // 16)


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["update", "{run}", "{data}", "model.width=1"], ["`kaizen update`", "train.epochs"]),
        (["update", "{run}", "{data}", "strategy.end_to_end=true"], ["optim.lr", "kaizen run"]),
        (["resume", "{run}", "train.epochs=3"], ["`kaizen resume`", "kaizen update"]),
        (["resume", "{run}", "model.width=1"], ["`kaizen resume`", "kaizen run"]),
    ],
    ids=["update-model", "update-strategy", "resume-epochs", "resume-model"],
)
def test_a_setting_the_command_may_not_change_is_refused_naming_that_command(
    run_dir: Path, arrived: Path, arguments: list[str], named: list[str], capsys
) -> None:
    before = _digests(run_dir)
    assert main([a.format(run=run_dir, data=arrived) for a in arguments]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("kaizen: error:") and len(error.splitlines()) == 1
    assert all(text in error for text in named), error
    other = "`kaizen resume`" if arguments[0] == "update" else "`kaizen update` sets"
    assert other not in error
    assert _digests(run_dir) == before


def test_an_updated_run_gets_a_report_and_is_kept_out_of_comparisons(
    run_dir: Path, arrived: Path, capsys
) -> None:
    kaizen.update(run_dir, arrived, overrides=OPEN_GATE)
    assert main(["report", str(run_dir)]) == 0
    report = (run_dir / "report.md").read_text()
    # rows written before the update have no value for its task
    assert "| 0 | " in report and "| n/a |" in report
    assert main(["compare", str(run_dir), "--out", str(run_dir / "compare")]) == 2
    assert "was extended by kaizen update" in capsys.readouterr().err


def test_an_update_keeps_an_image_folder_cache_inside_the_run(
    arrived: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import tiny_tree

    for split in ("train", "val"):
        for offset, label in enumerate(("cat", "dog")):
            for i in range(4):
                _image(tmp_path / "folder" / split / label / f"{i}.png", 60 + 80 * offset, seed=i)
    tree = tiny_tree("kaizen")
    tree["data"] = {"name": "image-folder", "path": str(tmp_path / "folder"), "cache_dir": "cache"}
    tree["scenario"] = {"num_tasks": 2}
    tree["train"].update({"progress": False, "num_threads": 1})
    run_dir = tmp_path / "run"
    kaizen.run(tree, run_dir)
    cached = sorted((run_dir / "cache").iterdir())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    outcome = kaizen.update(run_dir, arrived, overrides=OPEN_GATE)
    assert outcome.version == "v3"
    assert not (elsewhere / "cache").exists()
    assert sorted((run_dir / "cache").iterdir()) == cached


def test_an_update_of_known_classes_on_a_run_of_task_heads_is_refused(
    finished_slcapp_run: Path, arrived: Path, tmp_path: Path, capsys
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(finished_slcapp_run, run_dir)
    before = _digests(run_dir)
    assert main(["update", str(run_dir), str(arrived)]) == 2
    error = capsys.readouterr().err.strip()
    assert "model.heads=per-task" in error and "class-0 are known" in error
    assert len(error.splitlines()) == 1
    assert _digests(run_dir) == before


def test_an_update_of_a_run_aligned_on_all_its_data_is_refused(
    arrived: Path, tmp_path: Path, capsys
) -> None:
    from conftest import tiny_tree

    tree = tiny_tree("kaizen")
    tree["classifier"] = {"align": True, "align_statistics": "all-data"}
    tree["train"].update({"progress": False, "num_threads": 1})
    run_dir = tmp_path / "run"
    kaizen.run(tree, run_dir)
    before = _digests(run_dir)
    assert main(["update", str(run_dir), str(arrived)]) == 2
    error = capsys.readouterr().err.strip()
    assert "classifier.align_statistics=all-data" in error and "stored" in error
    assert len(error.splitlines()) == 1
    assert _digests(run_dir) == before
