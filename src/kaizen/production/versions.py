"""Model versions of a run and the release gate: ``models/v<k>/`` and ``models/current``.

Every task ends as version ``v<task + 1>``: the model (:mod:`kaizen.production.model`), its
accuracy row and per-image test results. ``models/current`` names the version in service. The
scenario's tasks are put in service as they end; an update's version is put in service only when
the gate holds against the version in service: its accuracy on the test images of the classes
that version was trained on drops by at most ``gate.max_old_drop``, and its negative flip rate
there (right before, wrong now) is at most ``gate.max_flip_rate``. Otherwise it stays a
candidate, which ``kaizen promote`` can put in service by hand. A version folder is written under
a temporary name and renamed, and ``current`` is replaced atomically, so a crash never leaves the
version in service half-written.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from kaizen.config import RunConfig, to_plain
from kaizen.data.classes import write_classes
from kaizen.data.scenario import Task
from kaizen.data.stream import Stream
from kaizen.errors import KaizenError
from kaizen.learner.learner import Learner
from kaizen.production.model import (
    ModelSpec,
    NotAModelError,
    architecture_of,
    inference_model,
    read_spec,
    save_model,
)
from kaizen.storage.atomic import atomic_write_text
from kaizen.storage.rundir import holds_run

MODELS_FOLDER = "models"
CURRENT_FILE = "current"
_CORRECT_FILE = "test-results.safetensors"


@dataclass(frozen=True)
class GateDecision:
    """Whether a version may replace the one in service, and why.

    Attributes:
        against: the version in service it was compared with.
        old_accuracy_drop: accuracy of ``against`` minus this version's, on the test images of
            the tasks ``against`` was trained on.
        flip_rate: share of those images ``against`` got right and this version gets wrong.
        passed: both within the gate's limits.
        reason: one line saying what decided.
    """

    against: str
    old_accuracy_drop: float
    flip_rate: float
    passed: bool
    reason: str


def version_name(task_index: int) -> str:
    return f"v{task_index + 1}"


def models_folder(run_dir: Path) -> Path:
    return run_dir / MODELS_FOLDER


def current_version(run_dir: Path) -> str | None:
    """The version in service, or None when no version is."""
    path = models_folder(run_dir) / CURRENT_FILE
    return path.read_text().strip() if path.is_file() else None


def set_current(run_dir: Path, name: str) -> None:
    atomic_write_text(models_folder(run_dir) / CURRENT_FILE, name + "\n")


def version_folders(run_dir: Path) -> list[Path]:
    """Every version folder of the run, oldest first."""
    folder = models_folder(run_dir)
    if not folder.is_dir():
        return []
    versions = [p for p in folder.iterdir() if p.is_dir() and p.name[1:].isdigit()]
    return sorted(versions, key=lambda p: int(p.name[1:]))


def promote(run_dir: Path, name: str) -> ModelSpec:
    """Put version ``name`` of ``run_dir`` in service by hand."""
    folder = models_folder(run_dir) / name
    try:
        spec = read_spec(folder)
    except NotAModelError as error:
        known = ", ".join(p.name for p in version_folders(run_dir)) or "none"
        raise KaizenError(f"{run_dir} has no model version {name} (versions: {known})") from error
    set_current(run_dir, name)
    return spec


def resolve_model_folder(path: Path) -> Path:
    """A model folder from a run directory (its version in service) or a version folder."""
    if (path / "model.json").is_file():
        return path
    current = current_version(path)
    if current is None:
        raise NotAModelError(
            f"{path} is not a kaizen-cl model: give a run directory with models/current or one "
            "of its models/v<k> folders"
        )
    return models_folder(path) / current


def decide(
    against: str,
    previous: Tensor,
    candidate: Tensor,
    rows: Tensor,
    max_drop: float,
    max_flip: float,
) -> GateDecision:
    """The gate on the test ``rows`` of the tasks the model in service ``against`` was trained
    on; ``previous`` and ``candidate`` are bool per-image results over the test split."""
    before, after = previous[rows], candidate[rows]
    drop = float(before.float().mean() - after.float().mean())
    flips = float((before & ~after).float().mean())
    problems = []
    if drop > max_drop:
        problems.append(f"old-class accuracy drops by {drop:.3f} (gate.max_old_drop={max_drop:g})")
    if flips > max_flip:
        problems.append(f"negative flip rate {flips:.3f} (gate.max_flip_rate={max_flip:g})")
    passed = not problems
    reason = (
        f"put in service: against {against}, old-class accuracy drop {drop:.3f}, negative "
        f"flip rate {flips:.3f}"
        if passed
        else f"kept as a candidate: against {against}, " + " and ".join(problems)
    )
    return GateDecision(against, drop, flips, passed, reason)


class ModelVersions:
    """Writes each finished task's model version and applies the gate to updates."""

    def __init__(self, run_dir: Path, config: RunConfig, stream: Stream) -> None:
        self.run_dir = run_dir
        self.config = config
        self.stream = stream

    def run_started(self) -> None:
        """A new run: the class names of its data in ``classes.json``."""
        write_classes(self.run_dir, self.stream.data.class_names[: self.stream.classes_at(0)])

    def task_finished(self, task: Task, learner: Learner, correct: Tensor) -> None:
        """Write the version of ``task`` and put it in service if it may be (an update only
        when the gate passes it; its decision is written into the version's model.json)."""
        if not self.config.train.save_models:
            return
        stream = self.stream
        name = version_name(task.index)
        folder = models_folder(self.run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        decision = None
        is_update = task.index >= stream.scenario_tasks
        if is_update:
            decision = self._gate(task, correct)
        model = inference_model(learner, stream.normalize)
        channels, height, width = stream.data.train.images.shape[1:]
        architecture = architecture_of(
            to_plain(self.config)["model"],
            (channels, height, width),
            model.classifier,
            model.normalize,
        )
        row = self._accuracy_row(correct, task)
        status = "released" if decision is None or decision.passed else "candidate"
        extra: dict[str, Any] = {
            "version": name,
            "task": task.index,
            "update": task.index - stream.scenario_tasks + 1 if is_update else None,
            "strategy": self.config.strategy.name,
            "status": status,
            "metrics": row,
            "gate": None if decision is None else decision.__dict__,
        }
        names = stream.data.class_names[: stream.classes_at(task.index)]
        staging = Path(tempfile.mkdtemp(dir=folder, prefix=f".{name}-"))
        try:
            save_model(staging, model, ModelSpec(architecture, tuple(names), extra))
            save_file({"correct": correct.to(torch.uint8).contiguous()}, staging / _CORRECT_FILE)
            target = folder / name
            if target.exists():  # written before an interruption: the same task again
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        write_classes(self.run_dir, names)
        if status == "released":
            set_current(self.run_dir, name)

    def _accuracy_row(self, correct: Tensor, task: Task) -> dict[str, Any]:
        tasks = self.stream.tasks
        per_task = [float(correct[t.test_indices].float().mean()) for t in tasks]
        seen = torch.cat([t.test_indices for t in tasks[: task.index + 1]])
        earlier = [t.test_indices for t in tasks[: task.index]]
        old = float(correct[torch.cat(earlier)].float().mean()) if earlier else None
        return {
            "accuracy_per_task": per_task,
            "seen_accuracy": float(correct[seen].float().mean()),
            "old_task_accuracy": old,
            "new_task_accuracy": per_task[task.index],
        }

    def _gate(self, task: Task, correct: Tensor) -> GateDecision | None:
        own = models_folder(self.run_dir) / version_name(task.index)
        against = current_version(self.run_dir)
        if against == own.name:  # written before an interruption: decide against the same one
            against = read_spec(own).extra["gate"]["against"]
        if against is None:
            return None
        spec = read_spec(models_folder(self.run_dir) / against)
        previous = load_file(models_folder(self.run_dir) / against / _CORRECT_FILE)["correct"]
        trained = self.stream.tasks[: spec.extra["task"] + 1]
        rows = torch.cat([t.test_indices for t in trained])
        gate = self.config.gate
        return decide(
            against,
            previous.bool(),
            correct[: len(previous)].bool(),
            rows,
            gate.max_old_drop,
            gate.max_flip_rate,
        )


def history(run_dir: Path) -> list[dict[str, Any]]:
    """Each version's ``model.json`` entries, oldest first, with ``in_service`` set; a
    directory that holds no run is a :class:`KaizenError`."""
    if not holds_run(run_dir):
        problem = "does not exist"
        if run_dir.exists():
            problem = "holds no run" if run_dir.is_dir() else "is not a folder"
        raise KaizenError(
            f"{run_dir} {problem}: give the run directory of `kaizen run` (its --out), "
            "e.g. runs/demo/kaizen"
        )
    current = current_version(run_dir)
    rows = []
    for folder in version_folders(run_dir):
        spec = read_spec(folder)
        rows.append(
            {**spec.extra, "classes": len(spec.class_names), "in_service": folder.name == current}
        )
    return rows
