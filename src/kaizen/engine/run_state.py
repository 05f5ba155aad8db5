"""A run's state between steps, to and from one checkpoint (read back by
:meth:`kaizen.storage.checkpoints.CheckpointStore.load_run`).

A checkpoint holds the whole run: the learner, the method's parts with their buffers,
statistics and teachers, the optimiser, the epoch's batch order, the results so far, every RNG
state and the position to continue from, so that a resumed run ends as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from kaizen.config import RunConfig, to_plain
from kaizen.data.scenario import Task
from kaizen.data.stream import Stream
from kaizen.engine.costs import BackwardFlops, LiveTensorPeak
from kaizen.engine.rng import capture_rng, restore_rng
from kaizen.eval.accuracy import CLASSIFIER_PROTOCOLS, scenario_protocol
from kaizen.eval.evaluator import TaskEvaluation, probe_protocols
from kaizen.eval.results import Result, TaskCost, TaskRecord
from kaizen.learner.learner import Learner
from kaizen.methods.seam import Method
from kaizen.storage.checkpoints import CHECKPOINT_FORMAT, Position


@dataclass
class RunState:
    """What the task loop carries from step to step besides the learner and the method.

    Attributes:
        result: the results so far (task records, costs, the random-init row).
        sampler: the generator every batch, replay row and mixup draw comes from.
        previous_correct: bool (N_test,) per-image correctness after the previous task, for
            the negative flip rate; None before the first task ends.
    """

    result: Result
    sampler: torch.Generator
    previous_correct: Tensor | None = None

    @classmethod
    def start(cls, config: RunConfig, stream: Stream, environment: dict[str, str]) -> RunState:
        """The state of a run of ``config`` over ``stream`` before its first step: no results,
        the classifier's and the probes' protocols named, the sampler seeded."""
        kind, probes = config.scenario.kind, probe_protocols(config.eval)
        result = Result(
            config,
            scenario_protocol(kind, CLASSIFIER_PROTOCOLS[config.eval.classes]),
            {name: scenario_protocol(kind, text) for name, text in probes.items()},
            environment=environment,
            planned_tasks=len(stream.tasks),
        )
        index_device = stream.train_images.index_device
        return cls(result, torch.Generator(index_device).manual_seed(config.seed))

    def checkpoint(
        self,
        config: RunConfig,
        position: Position,
        learner: Learner,
        method: Method,
        optimizer: torch.optim.Optimizer | None,
        order: Tensor | None,
        task_clock: dict[str, float],
    ) -> dict[str, Any]:
        """The checkpoint that continues at ``position``; ``order`` is the current epoch's
        batch order (None at an epoch's start) and ``task_clock`` the task's times so far."""
        return {
            "format": CHECKPOINT_FORMAT,
            "config": to_plain(config),
            "position": asdict(position),
            "learner": learner.state_dict(),
            "method": method.state_dict(),
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "epoch_order": order.cpu() if order is not None else None,
            "records": [asdict(record) for record in self.result.tasks],
            "random_init": self.result.random_init,
            "previous_correct": self.previous_correct,
            "costs": [asdict(cost) for cost in self.result.costs],
            "task_clock": task_clock,
            "rng": capture_rng(),
            "sampler_rng": self.sampler.get_state(),
        }

    def record_task(
        self,
        task: Task,
        evaluation: TaskEvaluation,
        steps: int,
        images: int,
        reports: dict[str, dict[str, Any]],
    ) -> TaskRecord:
        """Record ``task``'s evaluation, how much it trained and what its parts report."""
        record = TaskRecord(
            task.index,
            task.classes,
            evaluation.accuracies,
            images,
            steps,
            len(task.test_indices),
            evaluation.negative_flip_rate,
            evaluation.probes,
            reports,
        )
        self.result.tasks.append(record)
        return record

    def record_costs(
        self,
        record: TaskRecord,
        seconds: dict[str, float],
        memory: tuple[int, str],
        flops: BackwardFlops,
        step_memory: LiveTensorPeak,
    ) -> None:
        """What the task of ``record`` cost: ``seconds`` of wall time, of the training loop and
        of the parts' hooks at the task's start and end (``wall``, ``train``, ``hooks``; the
        charged training time is loop plus hooks), the memory peak and how it was measured, and
        one step's backward FLOPs and live-tensor peak."""
        self.result.costs.append(
            TaskCost(
                record.task,
                seconds["wall"],
                seconds["train"] + seconds["hooks"],
                record.images_seen,
                memory[0],
                memory[1],
                flops.total,
                step_memory.bytes,
                step_memory.method,
                seconds["hooks"],
            )
        )

    def restore(self, state: dict[str, Any], reseed: int, warn: Callable[[str], None]) -> None:
        """The results, RNG states and sampler of ``state``; a sampler state written on another
        kind of device does not transfer, so the sampler is seeded with ``reseed`` instead."""
        self.result.tasks = [
            TaskRecord(**{**record, "classes": tuple(record["classes"])})
            for record in state["records"]
        ]
        self.result.costs = [TaskCost(**cost) for cost in state["costs"]]
        self.result.random_init = state["random_init"]
        self.previous_correct = state["previous_correct"]
        restore_rng(state["rng"])
        saved_sampler = state["sampler_rng"]
        if saved_sampler.numel() == self.sampler.get_state().numel():
            self.sampler.set_state(saved_sampler)
        else:
            warn(
                "the checkpoint was written on another kind of device: batches from here on "
                "are drawn in another order than an uninterrupted run's"
            )
            self.sampler.manual_seed(reseed)
