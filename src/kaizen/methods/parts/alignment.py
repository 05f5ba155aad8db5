"""The classifier-alignment part: SLCA's post-hoc step, offered to every strategy's classifier."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch

from kaizen.config import ClassifierConfig
from kaizen.data.stream import Stream
from kaizen.errors import ConfigError
from kaizen.learner.alignment import (
    ClassStatistics,
    align_classifier,
    inference_input_scales,
    shrunk_means,
)
from kaizen.learner.learner import Learner
from kaizen.methods.parts.features import kept_indices, training_features
from kaizen.methods.seam import Part, RunContext
from kaizen.models.heads import TaskHeads, with_leading_rows


class ClassifierAlignment(Part):
    """At the end of each task, store the new classes' feature statistics, keep the trained
    classifier, and align it (:func:`~kaizen.learner.alignment.align_classifier`) on every
    seen class; the task is evaluated with the aligned classifier, and the trained one is put
    back when the next task starts, so training continues from what training made. Tasks
    before ``align_from_task`` only store their statistics: they are evaluated with the
    trained classifier, which the next task trains on.

    Args:
        config: the ``classifier`` section (epochs, lr, samples, temperature, statistics).
        seed: the run's seed; task t samples from a generator seeded ``seed + t``.
        memory: the method's other parts, whose kept images ``align_statistics=replay`` reads.
            ``align_statistics=all-data`` reads every labelled training image of the tasks so
            far instead, an upper bound that needs the old data.
        mean_shrink: SLCA's shrinkage of older tasks' class means
            (:func:`~kaizen.learner.alignment.shrunk_means`).
        feature_scale: SLCA++'s mu, scaling older tasks' sampled features in the alignment and
            their heads' inputs at inference (per-task heads only); 0: off.

    Attributes:
        statistics: every seen class's mean and covariance factor (labelled images only).
        trained: the classifier's state before the last alignment, None until a task ends.
    """

    name: ClassVar[str] = "align"

    def __init__(
        self,
        config: ClassifierConfig,
        seed: int,
        memory: list[Part],
        mean_shrink: bool = False,
        feature_scale: float = 0.0,
    ) -> None:
        self.config = config
        self.seed = seed
        self.memory = memory
        self.mean_shrink = mean_shrink
        self.feature_scale = feature_scale
        self.statistics: ClassStatistics | None = None
        self.trained: dict[str, torch.Tensor] | None = None

    def validate(self, stream: Stream) -> None:
        if all(len(task.labelled_indices) == 0 for task in stream.tasks):
            raise ConfigError(
                "classifier alignment needs class statistics from labelled images, and no task "
                "has any: raise scenario.label_fraction above 0 or set classifier.align=false"
            )
        if self.config.align_from_task >= len(stream.tasks):
            raise ConfigError(
                f"classifier.align_from_task={self.config.align_from_task} but the run has "
                f"{len(stream.tasks)} tasks (0..{len(stream.tasks) - 1}), so no task would be "
                f"aligned: set it to at most {len(stream.tasks) - 1}"
            )
        has_updates = len(stream.tasks) > stream.scenario_tasks
        if self.config.align_statistics == "all-data" and has_updates:
            raise ConfigError(
                "classifier.align_statistics=all-data recomputes every class's statistics from "
                "all earlier tasks' images, an experiment's upper bound, not a way to update a "
                "model: update a run started with classifier.align_statistics=stored or replay"
            )

    def prepare_learner(self, learner: Learner) -> None:
        if self.feature_scale > 0 and not isinstance(learner.classifier, TaskHeads):
            raise ConfigError(
                "old-task feature scaling (strategy.feature_scale > 0) scales the input of each "
                "task's head: set model.heads=per-task, or strategy.feature_scale=0"
            )

    def classes_grown(self, run: RunContext) -> None:
        # the rollback restores the grown classifier: its new rows start as the learner's
        if self.trained is not None:
            grown = copy.deepcopy(run.learner.classifier.state_dict())
            self.trained = with_leading_rows(grown, self.trained)

    def start_task(self, run: RunContext) -> None:
        if self.trained is not None:
            run.learner.classifier.load_state_dict(self.trained)
            self.trained = None

    def end_task(self, run: RunContext) -> None:
        stream, task, learner = run.stream, run.current, run.learner
        self._update_statistics(run)
        if self.statistics is None or task.index < self.config.align_from_task:
            return  # nothing to align on yet, or not yet the first aligned task
        blocks = [
            (earlier.index, [c for c in earlier.classes if c in self.statistics.means])
            for earlier in stream.tasks[: task.index + 1]
        ]
        blocks = [(index, classes) for index, classes in blocks if classes]
        block_tasks = [index for index, _ in blocks]
        self.trained = copy.deepcopy(learner.classifier.state_dict())
        align_classifier(
            learner.classifier,
            self.statistics,
            [classes for _, classes in blocks],
            torch.Generator().manual_seed(self.seed + task.index),
            samples_per_class=self.config.align_samples_per_class,
            epochs=self.config.align_epochs,
            lr=self.config.align_lr,
            weight_decay=self.config.align_weight_decay,
            temperature=self.config.align_temperature,
            batch_size=self.config.align_batch_size,
            sampling=self.config.align_sampling,
            schedule=self.config.align_schedule,
            mean_factors=shrunk_means(task.index, block_tasks) if self.mean_shrink else None,
            ages=[task.index - index for index in block_tasks],
            feature_scale=self.feature_scale,
            point=f"align {task.index}",
        )
        if self.feature_scale > 0 and isinstance(learner.classifier, TaskHeads):
            scales = learner.classifier.input_scales
            scales.copy_(inference_input_scales(task.index, self.feature_scale, len(scales)))

    def _update_statistics(self, run: RunContext) -> None:
        """Store the statistics of the task's new classes (``stored``), then recompute the
        earlier ones from the replayed images (``replay``); or recompute every seen class's
        from all labelled images of the tasks so far (``all-data``)."""
        task = run.current
        if self.config.align_statistics == "all-data":
            so_far = [earlier.labelled_indices for earlier in run.stream.tasks[: task.index + 1]]
            self._add_statistics(run, torch.cat(so_far), replace=True)
            return
        self._add_statistics(run, task.labelled_indices, replace=False)
        if self.config.align_statistics == "replay":
            replayed = kept_indices(self.memory)
            if replayed is not None:
                self._add_statistics(run, replayed, replace=True)

    def _add_statistics(self, run: RunContext, indices: torch.Tensor, replace: bool) -> None:
        """Statistics of the classes of the training images ``indices``, from the current
        backbone in eval mode; the images are read a batch at a time."""
        if len(indices) == 0:  # a task without labelled images adds no statistics
            return
        features, labels = training_features(run, indices)
        if self.statistics is None:
            self.statistics = ClassStatistics(features.shape[1])
        self.statistics.add(features, labels, replace=replace)

    def state_dict(self) -> dict[str, Any]:
        statistics = self.statistics.state_dict() if self.statistics is not None else None
        return {"statistics": statistics, "trained": self.trained}

    def load_state_dict(self, state: dict[str, Any], run: RunContext) -> None:
        saved = state["statistics"]
        self.statistics = ClassStatistics.from_state_dict(saved) if saved is not None else None
        self.trained = state["trained"]
