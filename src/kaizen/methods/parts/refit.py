"""The class-balanced re-fit part: the classifier re-fitted at each task's end on the
labelled images at hand, every class weighing the same (``classifier.refit``)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from kaizen.config import ClassifierConfig, ReplayConfig
from kaizen.data.replay import ReplayBuffer
from kaizen.data.stream import Stream
from kaizen.errors import ConfigError
from kaizen.learner.refit import refit_classifier
from kaizen.methods.parts.features import kept_indices, training_features
from kaizen.methods.seam import Part, RunContext


class ClassifierRefit(Part):
    """At the end of each task, re-fit the classifier (:func:`refit_classifier`) on the
    backbone's features of the earlier classes' kept images and the task's labelled images.

    The kept images are the labelled ones among those a part of the strategy keeps (Kaizen's
    labelled replay); a strategy that keeps none gets a :class:`ReplayBuffer` of the
    ``replay`` section's size that this part fills itself, used by nothing else. The re-fit
    draws from a generator seeded ``seed + task``, so a run resumed inside it re-fits
    identically.

    Args:
        config: the ``classifier`` section (the ``refit_*`` settings).
        replay: the size of the buffer kept when the strategy keeps none.
        seed: the run's seed.
        memory: the method's other parts.

    Attributes:
        buffer: the part's own buffer, None when a part of the strategy keeps images.
    """

    name: ClassVar[str] = "refit"

    def __init__(
        self, config: ClassifierConfig, replay: ReplayConfig, seed: int, memory: list[Part]
    ) -> None:
        self.config = config
        self.seed = seed
        self.memory = memory
        keeps = any(part.keeps_memory for part in memory)
        self.buffer = None if keeps else ReplayBuffer(replay, seed)

    def validate(self, stream: Stream) -> None:
        if all(len(task.labelled_indices) == 0 for task in stream.tasks):
            raise ConfigError(
                "classifier.refit re-fits the classifier on labelled images, and no task has "
                "any: raise scenario.label_fraction above 0 or set classifier.refit=false"
            )

    def end_task(self, run: RunContext) -> None:
        task = run.current
        indices = torch.cat([self._kept_labelled(run), task.labelled_indices])
        if len(indices) > 0:
            features, labels = training_features(run, indices)
            refit_classifier(
                run.learner.classifier,
                features,
                labels,
                torch.Generator().manual_seed(self.seed + task.index),
                epochs=self.config.refit_epochs,
                lr=self.config.refit_lr,
                samples_per_class=self.config.refit_samples_per_class,
                batch_size=self.config.refit_batch_size,
                weight_decay=self.config.refit_weight_decay,
                point=f"refit {task.index}",
            )
        if self.buffer is not None:
            labelled = task.labelled_indices
            self.buffer.add(labelled, run.stream.data.train.labels[labelled])

    def _kept_labelled(self, run: RunContext) -> Tensor:
        """int64 (R,) the kept images that came with a label (a buffer of unlabelled images,
        such as LUMP's, may hold some without)."""
        kept = self._kept()
        if kept is None:
            return torch.empty(0, dtype=torch.int64)
        tasks = run.stream.tasks[: run.current.index]
        labelled = torch.cat([earlier.labelled_indices for earlier in tasks] or [kept[:0]])
        return kept[torch.isin(kept.cpu(), labelled.cpu())].cpu()

    def _kept(self) -> Tensor | None:
        if self.buffer is not None:
            return self.buffer.indices if len(self.buffer) else None
        return kept_indices(self.memory)

    def report(self) -> dict[str, Any]:
        kept = self._kept()
        return {"kept_images": 0 if kept is None else len(kept)}

    def state_dict(self) -> dict[str, Any]:
        return {"buffer": None if self.buffer is None else self.buffer.state_dict()}

    def load_state_dict(self, state: dict[str, Any], run: RunContext) -> None:
        if self.buffer is not None and state["buffer"] is not None:
            self.buffer.load_state_dict(state["buffer"])
