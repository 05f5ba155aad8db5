"""Per-task head training: only the current task's head learns (SLCA, Zhang et al., ICCV 2023)."""

from __future__ import annotations

from typing import Any, ClassVar

from kaizen.errors import ConfigError
from kaizen.learner.learner import Learner
from kaizen.methods.seam import Part, RunContext
from kaizen.models.heads import TaskHeads


class CurrentTaskHead(Part):
    """Freezes the head of every task but the current one: an ended task's head is frozen for
    good (alignment aside), and later tasks' heads wait untouched, weight decay included.

    Which heads train follows from the task being trained, so the part keeps no state of its
    own: a resumed run recomputes it from the task it resumes in.
    """

    name: ClassVar[str] = "task_heads"

    def __init__(self, strategy: str) -> None:
        self.strategy = strategy

    def prepare_learner(self, learner: Learner) -> None:
        if not isinstance(learner.classifier, TaskHeads):
            raise ConfigError(
                f"strategy {self.strategy} trains one head per task: set model.heads=per-task"
            )

    def start_task(self, run: RunContext) -> None:
        heads = run.learner.classifier
        assert isinstance(heads, TaskHeads)
        for index, head in enumerate(heads.heads):
            head.requires_grad_(index == run.current.index)

    def load_state_dict(self, state: dict[str, Any], run: RunContext) -> None:
        if run.task is not None:
            self.start_task(run)
