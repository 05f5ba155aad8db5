"""The learner's lifecycle in a run: built for the classes known at a task, grown when a task
brings new classes, and checked on the meta device before anything is written."""

from __future__ import annotations

import torch

from kaizen.config import RunConfig
from kaizen.data.stream import Stream
from kaizen.learner.learner import Learner, build_learner
from kaizen.methods.seam import Method
from kaizen.models.heads import with_leading_rows


class LearnerFactory:
    """Builds the learners of one run: ``config``'s architecture over ``stream``'s data, each
    prepared by every part of ``method`` (adapters added, heads frozen, ...)."""

    def __init__(self, config: RunConfig, stream: Stream, method: Method) -> None:
        self.config = config
        self.stream = stream
        self.method = method

    def new(self, task_index: int, pretrained: bool = True) -> Learner:
        """A fresh learner whose classifier covers the classes known while ``task_index``
        trains; without ``pretrained``, the backbone keeps its random initialisation."""
        config = self.config if pretrained else _without_weights(self.config)
        data, stream = self.stream.data, self.stream
        side = data.train.images.shape[-1]
        task_classes = [task.classes for task in stream.tasks_known_at(task_index)]
        learner = build_learner(
            config, data.channels, stream.classes_at(task_index), side, task_classes
        )
        for part in self.method.parts:
            part.prepare_learner(learner)
        return learner

    def grown(self, learner: Learner, task_index: int) -> Learner:
        """``learner`` with the classifier rows (or heads) of the classes task ``task_index`` is
        the first to bring: the known ones keep their weights, the new ones start as a fresh
        learner's."""
        grown = self.new(task_index, pretrained=False)
        grown.load_state_dict(with_leading_rows(grown.state_dict(), learner.state_dict()))
        return grown

    def check(self) -> None:
        """Build the learner of the whole stream on the meta device and let every part prepare
        it, so that a part refusing it (ConfigError) does so before anything is written."""
        data = self.stream.data
        task_classes = [task.classes for task in self.stream.tasks]
        side = data.train.images.shape[-1]
        with torch.device("meta"):
            learner = build_learner(
                _without_weights(self.config), data.channels, data.num_classes, side, task_classes
            )
            for part in self.method.parts:
                part.prepare_learner(learner)


def _without_weights(config: RunConfig) -> RunConfig:
    return config.model_copy(update={"model": config.model.model_copy(update={"weights": None})})
