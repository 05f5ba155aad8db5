"""Resume anywhere: interrupted runs continue to the same results as uninterrupted ones."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import kaizen
from kaizen import testpoints
from kaizen.api import resume
from kaizen.cli import main
from kaizen.config import deep_merge
from kaizen.engine.interrupt import RunInterrupted
from kaizen.engine.loss_watch import NonFiniteLossError
from kaizen.engine.step import TrainStep
from kaizen.errors import KaizenError
from kaizen.methods.registry import METHODS


def _resumable(tiny, strategy: str = "kaizen", ssl: str = "mocov2plus", epochs: int = 3) -> dict:
    tree = tiny(strategy, ssl)
    tree["train"].update({"epochs": epochs, "checkpoint_every_epochs": 1, "num_threads": 1})
    if strategy == "lump":  # the buffer of LUMP's presets: step updates and stored views
        tree["strategy"].update({"buffer_update": "step", "buffer_views": "stored"})
    return tree


def _results(out: Path) -> str:
    return (out / "results.json").read_text()


def _interrupt_at(monkeypatch: pytest.MonkeyPatch, call: int) -> None:
    """Send SIGINT to this process during the ``call``-th training step."""
    original = TrainStep.__call__
    calls = {"count": 0}

    def step(self, images, labels, tau, replayed=None):
        calls["count"] += 1
        if calls["count"] == call:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, images, labels, tau, replayed)

    monkeypatch.setattr(TrainStep, "__call__", step)


def test_the_same_config_and_seed_give_a_bit_identical_results_file(tiny, tmp_path: Path) -> None:
    tree = _resumable(tiny)
    kaizen.run(tree, tmp_path / "a")
    kaizen.run(tree, tmp_path / "b")
    assert _results(tmp_path / "a") == _results(tmp_path / "b")


@pytest.mark.parametrize("strategy", sorted(METHODS))
def test_sigint_saves_and_resume_matches_an_uninterrupted_run(
    strategy: str, tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = _resumable(tiny, strategy)
    kaizen.run(tree, tmp_path / "straight")
    # 3 steps per epoch x 3 epochs per task (6 for the cumulative strategies' task 1): call 14
    # is inside task 1, after a checkpoint of it.
    _interrupt_at(monkeypatch, 14)
    with pytest.raises(RunInterrupted, match=r"kaizen resume .*interrupted") as stopped:
        kaizen.run(tree, tmp_path / "interrupted")
    assert stopped.value.exit_code == 128 + signal.SIGINT
    assert "task 1, epoch" in str(stopped.value)
    monkeypatch.undo()
    resume(tmp_path / "interrupted")
    assert _results(tmp_path / "interrupted") == _results(tmp_path / "straight")


def test_a_resumed_task_keeps_the_previous_tasks_teacher(
    tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = _resumable(tiny)
    _interrupt_at(monkeypatch, 14)
    with pytest.raises(RunInterrupted):
        kaizen.run(tree, tmp_path / "run")
    checkpoints = sorted((tmp_path / "run" / "checkpoints").glob("*.pt"))
    end_of_task_0 = torch.load(checkpoints[0], weights_only=True)
    mid_task_1 = torch.load(checkpoints[-1], weights_only=True)
    assert end_of_task_0["position"] == {"task": 1, "epoch": 0, "batch": 0}
    assert mid_task_1["position"]["task"] == 1 and mid_task_1["position"]["epoch"] == 1
    teacher = mid_task_1["method"]["teacher"]["teacher"]
    assert teacher is not None
    for key in ("backbone.features.0.weight", "classifier.net.0.weight"):
        # the teacher is the model from the end of task 0, not the weights training had reached
        assert torch.equal(teacher[key], end_of_task_0["learner"][key])
        assert not torch.equal(teacher[key], mid_task_1["learner"][key])


def test_a_corrupt_newest_checkpoint_is_reported_and_the_previous_used(
    tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = _resumable(tiny)
    kaizen.run(tree, tmp_path / "straight")
    _interrupt_at(monkeypatch, 14)
    with pytest.raises(RunInterrupted):
        kaizen.run(tree, tmp_path / "run")
    monkeypatch.undo()
    newest = sorted((tmp_path / "run" / "checkpoints").glob("*.pt"))[-1]
    newest.write_bytes(newest.read_bytes()[:100])
    assert main(["resume", str(tmp_path / "run")]) == 0
    assert f"skipping checkpoint {newest.name}" in capsys.readouterr().out
    assert _results(tmp_path / "run") == _results(tmp_path / "straight")


def test_run_refuses_a_directory_that_holds_a_run(tiny, tmp_path: Path) -> None:
    tree = _resumable(tiny, epochs=1)
    kaizen.run(tree, tmp_path)
    before = _results(tmp_path)
    with pytest.raises(KaizenError, match="kaizen resume") as refused:
        kaizen.run(tree, tmp_path)
    assert "--force" in str(refused.value)
    assert _results(tmp_path) == before
    kaizen.run(tree, tmp_path, overrides=["seed=1"], force=True)
    assert json.loads(_results(tmp_path))["config"]["seed"] == 1


@pytest.mark.parametrize(
    ("precision", "fix"),
    [("32", "(lower optim.lr)"), ("bf16-mixed", "(lower optim.lr or use train.precision=32)")],
)
def test_a_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
    tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, precision: str, fix: str
) -> None:
    import kaizen.learner.terms as terms

    original = terms.classifier_cross_entropy
    calls = {"count": 0}

    def poisoned(logits, labels, views_per_image):
        calls["count"] += 1
        value = original(logits, labels, views_per_image)
        return value * float("nan") if calls["count"] == 11 else value

    monkeypatch.setattr(terms, "classifier_cross_entropy", poisoned)
    with pytest.raises(NonFiniteLossError) as stopped:
        kaizen.run(_resumable(tiny), tmp_path, overrides=[f"train.precision={precision}"])
    message = str(stopped.value)
    # call 11 is step 1 of task 1 (9 steps per task), so epoch 0
    assert "'classifier'" in message and "task 1, epoch 0, step 1" in message
    # fp32 is suggested only to a mixed-precision run
    assert message.endswith(fix) and "\n" not in message
    names = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.pt"))
    # nothing was saved after the bad step: the newest is the end of task 0
    assert names[-1] == "ckpt-t001-e00000-b0000000.pt"


def _checkpoints_written(run_dir: Path) -> set[str]:
    folder = run_dir / "checkpoints"
    return {p.name for p in folder.glob("*.sha256")} if folder.exists() else set()


CLI = [sys.executable, "-m", "kaizen.cli"]
KINDS = ("step", "checkpoint", "align", "refit", "task-end")


def _run_logging_points(
    tree: dict, out: Path, log: Path, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """Run ``tree`` into ``out`` uninterrupted; returns the test points it passed, in order."""
    with monkeypatch.context() as patched:
        patched.setenv(testpoints.LOG_VARIABLE, str(log))
        kaizen.run(tree, out)
    return log.read_text().splitlines()


def _kill_points(points: list[str], seed: str) -> list[str]:
    """One point of each kind the run passes, drawn by a generator seeded with ``seed``, in the
    order the run passes them: the same points on every run of the suite."""
    rng = random.Random(seed)
    chosen = []
    for kind in KINDS:
        candidates = [point for point in points if point.split()[0] == kind]
        if candidates:
            chosen.append(rng.choice(candidates))
    return sorted(chosen, key=points.index)


def _killed_at(command: list[str], point: str) -> None:
    """Run ``command`` until it passes ``point``, where it is SIGKILLed."""
    env = {**os.environ, testpoints.KILL_VARIABLE: point}
    killed = subprocess.run(command, capture_output=True, text=True, env=env)
    assert killed.returncode == -signal.SIGKILL, f"not killed at {point!r}: {killed.stderr}"


def _kill_at_each_then_finish(start: list[str], run_dir: Path, points: list[str]) -> None:
    """Run ``start``, SIGKILL it at the first of ``points``, resume it and SIGKILL it at each
    of the others, then resume it to the end."""
    _killed_at(start, points[0])
    for point in points[1:]:
        _killed_at([*CLI, "resume", str(run_dir)], point)
    finished = subprocess.run([*CLI, "resume", str(run_dir)], capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr


@pytest.mark.parametrize(
    ("strategy", "extra"),
    [
        ("kaizen", {}),
        ("lump", {}),
        # threshold 0 freezes every block before the last stage at task 1
        ("kaizen", {"freeze": {"enabled": True, "threshold": 0.0}}),
        # block input bases grown at each task's end, blocks frozen by rank within a budget
        (
            "kaizen",
            {
                "freeze": {
                    "enabled": True,
                    "measure": "subspace",
                    "selection": "ranking",
                    "threshold": 0.5,
                    "budget": 2,
                }
            },
        ),
        ("kaizen", {"classifier": {"align": True}}),
        # SLCA++ keeps no images: the re-fit keeps its own buffer, before the alignment
        ("slcapp", {"classifier": {"refit": True}}),
        # as Kaizen's released code runs: the replay's pass is state mid-task
        (
            "kaizen",
            {
                "model": {"batchnorm_views": "per-view"},
                "strategy": {"teacher_batchnorm": "batch"},
                "replay": {"selection": "first", "sampling": "passes"},
                "optim": {"lr_update": "epoch", "lr_bounds": "absolute", "lars_classifier": True},
            },
        ),
    ],
    ids=[
        "kaizen",
        "lump",
        "kaizen-freeze",
        "kaizen-freeze-subspace",
        "kaizen-align",
        "slcapp-refit",
        "kaizen-released",
    ],
)
def test_sigkills_at_seeded_points_then_resume_give_identical_results(
    strategy: str, extra: dict, tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = deep_merge(_resumable(tiny, strategy), extra)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tree))
    points = _run_logging_points(tree, tmp_path / "straight", tmp_path / "points", monkeypatch)
    chosen = _kill_points(points, f"{strategy}-{json.dumps(extra, sort_keys=True)}")
    corrections = extra.get("classifier", {})
    expected = {"step", "checkpoint", "task-end"} | (
        {"align"} if strategy == "slcapp" or corrections.get("align") else set()
    )
    expected |= {"refit"} if corrections.get("refit") else set()
    assert {point.split()[0] for point in chosen} == expected
    run_dir = tmp_path / "killed"
    _kill_at_each_then_finish([*CLI, "run", str(config), "--out", str(run_dir)], run_dir, chosen)
    assert _results(run_dir) == _results(tmp_path / "straight"), f"killed at {chosen}"


def test_a_kill_inside_the_alignment_leaves_the_task_unfinished(tiny, tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(_resumable(tiny, "slcapp")))
    run_dir = tmp_path / "killed"
    _killed_at([*CLI, "run", str(config), "--out", str(run_dir)], "align 1.1")
    # task 1's last epoch is saved, its end is not
    written = _checkpoints_written(run_dir)
    assert "ckpt-t001-e00002-b0000000.pt.sha256" in written
    assert not any(name.startswith("ckpt-t002") for name in written)


RELEASED_ALIGNMENT = {
    "align_from_task": 1,
    "align_sampling": "epoch",
    "align_schedule": "epoch",
    "align_epochs": 3,
    # 16 features per class: 2 steps per epoch at task 1 (4 classes), 3 at task 2 (6 classes)
    "align_batch_size": 32,
}
"""SLCA's released alignment loop, shortened: new draws every epoch, a per-epoch cosine, none
after task 0."""


def test_kills_in_later_epochs_of_the_released_alignment_then_resume_give_identical_results(
    tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = deep_merge(_resumable(tiny, "slcapp"), {"classifier": RELEASED_ALIGNMENT})
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tree))
    points = _run_logging_points(tree, tmp_path / "straight", tmp_path / "points", monkeypatch)
    aligned = [point for point in points if point.startswith("align")]
    assert aligned == [f"align 1.{step}" for step in range(6)] + [
        f"align 2.{step}" for step in range(9)
    ]
    # the first step of task 1's third epoch, the second step of task 2's second epoch
    chosen = ["align 1.4", "align 2.4"]
    run_dir = tmp_path / "killed"
    _kill_at_each_then_finish([*CLI, "run", str(config), "--out", str(run_dir)], run_dir, chosen)
    assert _results(run_dir) == _results(tmp_path / "straight")


def test_sigterm_saves_a_checkpoint_and_names_the_resume_command(tiny, tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(_resumable(tiny)))
    run_dir = tmp_path / "run"
    env = {
        **os.environ,
        testpoints.KILL_VARIABLE: "step 1.1.0",
        testpoints.SIGNAL_VARIABLE: "TERM",
    }
    stopped = subprocess.run(
        [*CLI, "run", str(config), "--out", str(run_dir)], capture_output=True, text=True, env=env
    )
    assert stopped.returncode == 128 + signal.SIGTERM
    assert f"kaizen resume {run_dir}" in stopped.stderr and "Traceback" not in stopped.stderr
    # the stop finished the step it was in and wrote a mid-epoch checkpoint after it
    assert max(_checkpoints_written(run_dir)) == "ckpt-t001-e00001-b0000001.pt.sha256"
