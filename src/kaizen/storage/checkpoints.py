"""Checkpoint files: atomic writes, a SHA-256 beside each, the last K kept, the newest valid found.

A checkpoint holds the whole run state (see ``RunState.to_checkpoint``). Files are named after
the position they resume at, so their names sort in the order they were written.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from kaizen.config import RunConfig, same_run
from kaizen.errors import KaizenError
from kaizen.storage.atomic import atomic_write_bytes, atomic_write_text
from kaizen.testpoints import reached

CHECKSUM_SUFFIX = ".sha256"
CHECKPOINT_FORMAT = 2
"""The layout of the run state a checkpoint holds; a file of another format is refused."""


@dataclass(frozen=True, order=True)
class Position:
    """Where a run continues: the next batch ``batch`` of epoch ``epoch`` of task ``task``."""

    task: int
    epoch: int
    batch: int

    @property
    def file_name(self) -> str:
        return f"ckpt-t{self.task:03d}-e{self.epoch:05d}-b{self.batch:07d}.pt"

    @property
    def at_task_start(self) -> bool:
        return self.epoch == 0 and self.batch == 0


class CheckpointStore:
    """The checkpoints of one run directory.

    Args:
        folder: where the files live (``<run>/checkpoints``).
        keep: how many of the newest checkpoints to keep.
        warn: called with a one-line message when a file is skipped as corrupt.
    """

    def __init__(self, folder: Path, keep: int, warn: Callable[[str], None]) -> None:
        self.folder = folder
        self.keep = keep
        self.warn = warn

    def paths(self) -> list[Path]:
        """Checkpoint files, oldest first."""
        return sorted(self.folder.glob("ckpt-*.pt")) if self.folder.exists() else []

    def save(self, state: dict[str, Any], position: Position) -> Path:
        """Write ``state`` for ``position``, then its checksum, then drop the oldest files."""
        buffer = io.BytesIO()
        torch.save(state, buffer)
        payload = buffer.getvalue()
        path = self.folder / position.file_name
        atomic_write_bytes(path, payload)
        reached(f"checkpoint {position.task}.{position.epoch}.{position.batch}")
        atomic_write_text(_checksum_path(path), hashlib.sha256(payload).hexdigest() + "\n")
        for old in self.paths()[: -self.keep]:
            old.unlink(missing_ok=True)
            _checksum_path(old).unlink(missing_ok=True)
        return path

    def load_latest(self) -> tuple[dict[str, Any], Path] | None:
        """The newest checkpoint whose checksum matches and that loads; None when there is none."""
        for path in reversed(self.paths()):
            problem, state = _read_verified(path)
            if state is not None:
                return state, path
            self.warn(f"skipping checkpoint {path.name}: {problem}; trying the previous one")
        return None

    def load_run(
        self, config: RunConfig, config_file: Path, scenario_tasks: int, say: Callable[[str], None]
    ) -> dict[str, Any] | None:
        """The newest valid checkpoint for the run ``config`` describes; None when there is
        none. One of another format or of another config than ``config_file``'s is refused
        (KaizenError); the budget of a task may differ only from the first update on (tasks
        ``scenario_tasks``.. may be trained with ``kaizen update``'s settings)."""
        found = self.load_latest()
        if found is None:
            self.warn(f"no valid checkpoint in {self.folder}; starting from the first task")
            return None
        state, path = found
        if state.get("format") != CHECKPOINT_FORMAT:
            raise KaizenError(
                f"{path} has checkpoint format {state.get('format')}, this version reads "
                f"{CHECKPOINT_FORMAT}; resume it with the kaizen-cl version that wrote it"
            )
        in_update = state["position"]["task"] >= scenario_tasks
        if not same_run(state["config"], config, in_update):
            raise KaizenError(
                f"{path} was written with another config than {config_file}; restore that "
                "file or start a new run"
            )
        say(f"resuming from {path.name}")
        return state


def _checksum_path(path: Path) -> Path:
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def _read_verified(path: Path) -> tuple[str, dict[str, Any] | None]:
    checksum = _checksum_path(path)
    if not checksum.exists():
        return "its checksum file is missing (the write did not finish)", None
    payload = path.read_bytes()
    if hashlib.sha256(payload).hexdigest() != checksum.read_text().strip():
        return "checksum mismatch (the file is corrupt or truncated)", None
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as error:  # any unpickling failure means the file is unusable
        return f"it does not load ({type(error).__name__})", None
    return "", state
