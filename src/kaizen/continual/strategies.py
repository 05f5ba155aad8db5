"""Strategies: named sets of weighted loss terms plus how data and models carry across tasks.

- finetune: SSL + classifier CE (the paper's "No Distill"); replay; current task; model carried.
- cassle: SSL + feature KD + classifier CE; replay; current task; model carried.
- kaizen: SSL + feature KD + classifier CE + classifier KD; replay; current task; model carried.
- kaizen-replay-kd: kaizen with the classifier KD on the replayed images only.
- joint: SSL + classifier CE (upper bound); no replay; all tasks so far; model carried.
- scratch: SSL + classifier CE (retraining baseline); no replay; all tasks so far; fresh model.

At the first task every strategy uses SSL + classifier CE only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kaizen.config import StrategyConfig
from kaizen.continual.learner import Learner
from kaizen.continual.terms import (
    WeightedTerm,
    classifier_distill_term,
    classifier_term,
    feature_distill_term,
    ssl_term,
)


@dataclass(frozen=True)
class Strategy:
    """How a continual method trains: which terms, which data, which model."""

    name: str
    feature_distill: bool
    classifier_distill: bool
    replay: bool
    cumulative_data: bool
    fresh_model_each_task: bool
    classifier_distill_on_replay_only: bool = False
    """Classifier KD on the replayed rows only, whatever ``strategy.classifier_distill_rows``."""

    @property
    def needs_teacher(self) -> bool:
        return self.feature_distill or self.classifier_distill


STRATEGIES: dict[str, Strategy] = {
    "finetune": Strategy("finetune", False, False, True, False, False),
    "cassle": Strategy("cassle", True, False, True, False, False),
    "kaizen": Strategy("kaizen", True, True, True, False, False),
    "kaizen-replay-kd": Strategy("kaizen-replay-kd", True, True, True, False, False, True),
    "joint": Strategy("joint", False, False, False, True, False),
    "scratch": Strategy("scratch", False, False, False, True, True),
}


def task_terms(
    strategy: Strategy,
    config: StrategyConfig,
    learner: Learner,
    has_teacher: bool,
    teacher_classes: Sequence[int] | None = None,
) -> list[WeightedTerm]:
    """The weighted terms of one task; distillation terms only when a teacher exists.

    ``teacher_classes`` are the classes the teacher was trained on, which
    ``classifier_distill_classes=seen`` distils over (None: all classes).
    """
    terms = [
        WeightedTerm("ssl", 1.0, ssl_term(learner)),
        WeightedTerm("classifier", config.classifier_weight, classifier_term),
    ]
    if has_teacher and strategy.feature_distill:
        weight = config.feature_distill_weight
        if weight is None:
            weight = learner.ssl.default_distill_weight
        kind = learner.ssl.distill_kind
        terms.append(
            WeightedTerm(
                "feature_distill", weight, feature_distill_term(kind, config.distill_temperature)
            )
        )
    if has_teacher and strategy.classifier_distill:
        terms.append(
            WeightedTerm(
                "classifier_distill",
                config.classifier_distill_weight,
                classifier_distill_term(
                    config.classifier_distill_temperature,
                    teacher_classes if config.classifier_distill_classes == "seen" else None,
                    replay_rows_only=strategy.classifier_distill_on_replay_only
                    or config.classifier_distill_rows == "replay",
                ),
            )
        )
    return terms
