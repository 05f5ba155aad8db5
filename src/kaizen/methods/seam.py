"""The method seam: a continual method is weighted loss terms plus parts, each with its own state.

The trainer knows methods only through :class:`Method`: it asks for the task's loss terms, which
tasks' data to train on, and calls every :class:`Part` at the start and the end of each task,
for extra training rows, for a transform of the views, after each step, and for the parameter
groups. Each part keeps its state (buffers, teachers, decisions) in the run checkpoint under
its name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from lightning.fabric import Fabric
from torch import Tensor

from kaizen.data.scenario import Task
from kaizen.data.stream import Stream
from kaizen.learner.learner import Learner
from kaizen.learner.teacher import Teacher
from kaizen.learner.terms import WeightedTerm


@dataclass
class RunContext:
    """What parts see of a run: its data, its Fabric, the current learner and task.

    The trainer owns it and keeps ``learner`` (a fresh one when a method retrains from scratch)
    and ``task`` (the task being trained, or finished at :meth:`Part.end_task`) up to date.
    """

    stream: Stream
    fabric: Fabric
    learner: Learner
    task: Task | None = None

    @property
    def current(self) -> Task:
        """The task being trained; a part hook is only called while there is one."""
        if self.task is None:
            raise RuntimeError("no task is being trained")
        return self.task

    @property
    def earlier_classes(self) -> list[int]:
        """Sorted classes of the tasks before the current one."""
        tasks = self.stream.tasks[: self.current.index]
        return sorted({c for earlier in tasks for c in earlier.classes})

    @property
    def task_classes(self) -> TaskClasses:
        """The earlier tasks' classes and the current task's."""
        return TaskClasses(self.earlier_classes, sorted(self.current.classes))


@dataclass(frozen=True)
class TaskClasses:
    """The classes a task's loss terms may single out.

    Attributes:
        earlier: sorted classes of the tasks before the current one.
        current: sorted classes of the current task.
    """

    earlier: Sequence[int]
    current: Sequence[int] = ()


class Part:
    """One optional piece of a method with its own state; every hook does nothing by default.

    :meth:`prepare_learner` is called on every newly built learner, before its weights are
    restored from a checkpoint. Then, in the order the trainer calls them for a task:
    :meth:`classes_grown` (an update that brings new classes), :meth:`start_task` (not when the
    task resumes from a checkpoint taken inside it: the state is then restored instead),
    :meth:`parameter_groups`, then each step :meth:`step_rows`, :meth:`transform` and, after the
    update, :meth:`end_step`, and finally :meth:`end_task` (after training, before the
    evaluation) and :meth:`report`.
    """

    name: ClassVar[str]
    keeps_memory: ClassVar[bool] = False
    """Whether :meth:`memory_indices` gives earlier tasks' images once a task has ended."""

    def validate(self, stream: Stream) -> None:
        """Refuse, before anything is written, data this part cannot work with (ConfigError)."""

    def prepare_learner(self, learner: Learner) -> None:
        """Change a newly built learner's structure or trainable parameters, in place."""

    def start_task(self, run: RunContext) -> None:
        """Prepare the task ``run.task`` before its optimiser is built."""

    def end_task(self, run: RunContext) -> None:
        """Update the part's state after training ``run.task``."""

    def classes_grown(self, run: RunContext) -> None:
        """``run.learner`` was rebuilt with more classes (or task heads) for ``run.task``, an
        update: the known classes' weights are as before. Called before :meth:`start_task`."""

    def parameter_groups(self, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The optimiser's parameter groups, as this part wants them (dicts as torch takes)."""
        return groups

    def rows_per_step(self) -> int:
        """How many training indices :meth:`step_rows` appends to every global batch."""
        return 0

    def step_rows(self, generator: torch.Generator) -> Tensor | None:
        """int64 (R,) training indices appended to this step's global batch, or None."""
        return None

    def transform(self, views: Tensor, generator: torch.Generator) -> Tensor:
        """This process's views (2B, C, H, W) before the loss; returned unchanged by default."""
        return views

    def end_step(self, rows: Tensor) -> None:
        """After the optimiser step: ``rows`` int64 (B,) are the training indices of the step's
        global batch (every process's, the same on each; without the rows parts added)."""

    def teacher(self) -> Teacher | None:
        """The frozen previous model this part keeps for the current task, if it keeps one."""
        return None

    def memory_indices(self) -> Tensor | None:
        """int64 (R,) training indices of earlier tasks this part keeps, or None."""
        return None

    def report(self) -> dict[str, Any]:
        """What the task's record in results.json keeps about this part (empty: nothing)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any], run: RunContext) -> None:
        """Restore :meth:`state_dict`; ``run`` gives the restored learner and the device."""


TermsFn = Callable[[Learner, "Teacher | None", TaskClasses], list[WeightedTerm]]
"""The weighted loss terms of a task: given the learner, the task's teacher (None: no
distillation) and the classes of the earlier and the current tasks."""


@dataclass
class Method:
    """A named continual method.

    Attributes:
        name: the ``strategy.name`` it is registered under.
        terms: the task's weighted loss terms.
        parts: the method's parts, called in this order.
        cumulative_data: train on every task so far (else on the current task only).
        fresh_learner: start every task from a newly initialised learner.
        needs_ssl: the method has self-supervised terms (``ssl.method=none`` cannot run it).
    """

    name: str
    terms: TermsFn
    parts: list[Part] = field(default_factory=list)
    cumulative_data: bool = False
    fresh_learner: bool = False
    needs_ssl: bool = False

    @property
    def teacher(self) -> Teacher | None:
        """The frozen previous model a part keeps for this task, if any."""
        teachers = (part.teacher() for part in self.parts)
        return next((teacher for teacher in teachers if teacher is not None), None)

    def has_part(self, name: str) -> bool:
        """Whether one of the parts is registered under ``name``."""
        return any(part.name == name for part in self.parts)

    def training_tasks(self, task: Task, tasks: Sequence[Task]) -> list[Task]:
        """The tasks whose training images ``task`` trains on."""
        return list(tasks[: task.index + 1]) if self.cumulative_data else [task]

    def parameter_groups(self, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The optimiser's parameter groups as every part, in order, adjusts them."""
        for part in self.parts:
            groups = part.parameter_groups(groups)
        return groups

    def view_transform(self, sampler: torch.Generator) -> Callable[[Tensor], Tensor]:
        """The parts' transforms of a step's views (V B, C, H, W), in order, drawing from the
        run's batch ``sampler``."""

        def transform(views: Tensor) -> Tensor:
            for part in self.parts:
                views = part.transform(views, sampler)
            return views

        return transform

    def step_rows(self, batch: Tensor, sampler: torch.Generator, world: int, rank: int) -> Tensor:
        """``batch`` (int64 (B,) indices of this process) followed by this process's share of
        the rows every part adds to the step (replayed or buffered images), drawn from
        ``sampler`` identically on every process."""
        for part in self.parts:
            rows = part.step_rows(sampler)
            if rows is not None:
                batch = torch.cat([batch, rows.tensor_split(world)[rank]])
        return batch

    def end_step(self, rows: Tensor) -> None:
        """Every part's :meth:`Part.end_step` after the step on the global batch ``rows``."""
        for part in self.parts:
            part.end_step(rows)

    def state_dict(self) -> dict[str, Any]:
        return {part.name: part.state_dict() for part in self.parts}

    def load_state_dict(self, state: dict[str, Any], run: RunContext) -> None:
        for part in self.parts:
            part.load_state_dict(state[part.name], run)
