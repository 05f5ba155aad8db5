"""What a run tells the layers above the task loop: a hook it is given, never one it imports.

The trainer knows nothing of model versions or release gates; the entry points (``kaizen run``,
``resume``, ``update``) hand it factories of :class:`RunHook`, each built once the run's data
is read, and the trainer calls them at a new run's start and at every task's end.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from torch import Tensor

from kaizen.config import RunConfig
from kaizen.data.scenario import Task
from kaizen.data.stream import Stream
from kaizen.learner.learner import Learner


class RunHook(Protocol):
    """Called by rank 0 only, after the files of the run directory for the same moment are
    written."""

    def run_started(self) -> None:
        """A new run directory was made (not called on resume)."""

    def task_finished(self, task: Task, learner: Learner, correct: Tensor) -> None:
        """``task`` ended and was evaluated; ``correct`` is a bool (N_test,) tensor, True where
        the classifier got test image i right."""


RunHookFactory = Callable[[Path, RunConfig, Stream], RunHook]
"""Builds a hook for the run directory, the run's config and its stream."""
