"""The teacher part: a frozen snapshot of the learner, taken as each task after the first starts."""

from __future__ import annotations

from typing import Any, ClassVar, cast

from kaizen.learner.teacher import Teacher, TeacherBatchNorm
from kaizen.methods.seam import Part, RunContext


class TeacherSnapshot(Part):
    """Keeps the model of the end of the previous task as the teacher of distillation terms.

    Args:
        batchnorm: how the teacher's BatchNorm layers normalise (:class:`Teacher`).

    Attributes:
        snapshot: the frozen model (on the training device), None during the first task.
    """

    name: ClassVar[str] = "teacher"

    def __init__(self, batchnorm: TeacherBatchNorm = "running") -> None:
        self.batchnorm = batchnorm
        self.snapshot: Teacher | None = None

    def _take(self, run: RunContext) -> Teacher:
        return cast(Teacher, run.fabric.to_device(Teacher.snapshot(run.learner, self.batchnorm)))

    def start_task(self, run: RunContext) -> None:
        self.snapshot = None
        if run.current.index > 0:
            self.snapshot = self._take(run)

    def teacher(self) -> Teacher | None:
        return self.snapshot

    def state_dict(self) -> dict[str, Any]:
        return {"teacher": self.snapshot.state_dict() if self.snapshot is not None else None}

    def load_state_dict(self, state: dict[str, Any], run: RunContext) -> None:
        self.snapshot = None
        if state["teacher"] is not None:
            self.snapshot = self._take(run)
            self.snapshot.load_state_dict(state["teacher"])
