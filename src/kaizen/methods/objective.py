"""The objectives the built-in methods share: SSL + classifier, with optional distillations.

The Kaizen objective (Tang et al., WACV 2024, Eq. 1) at task t >= 1 is

    L = L_ssl + lambda_fe * L_fe_kd + w_cls * L_cls + lambda_c * L_cls_kd

fine-tuning keeps the first and third summands, CaSSLe (Fini et al., CVPR 2022) adds the
second; at the first task (no teacher) every method uses L_ssl + w_cls * L_cls.
"""

from __future__ import annotations

from collections.abc import Sequence

from kaizen.config import StrategyConfig
from kaizen.learner.learner import Learner
from kaizen.learner.teacher import Teacher
from kaizen.learner.terms import (
    WeightedTerm,
    classifier_distill_term,
    classifier_term,
    feature_distill_term,
    ssl_term,
)
from kaizen.methods.seam import TaskClasses, TermsFn


def ssl_and_classifier(config: StrategyConfig, learner: Learner) -> list[WeightedTerm]:
    """L_ssl (unless ``ssl.method=none``) and w_cls * L_cls."""
    classifier = WeightedTerm("classifier", config.classifier_weight, classifier_term)
    if not learner.ssl.has_loss:
        return [classifier]
    return [WeightedTerm("ssl", 1.0, ssl_term(learner)), classifier]


def feature_distillation(config: StrategyConfig, learner: Learner) -> WeightedTerm:
    """lambda_fe * L_fe_kd in the SSL method's distillation family (its weight by default)."""
    weight = config.feature_distill_weight
    if weight is None:
        weight = learner.ssl.default_distill_weight
    kind = learner.ssl.distill_kind
    return WeightedTerm(
        "feature_distill", weight, feature_distill_term(kind, config.distill_temperature)
    )


def classifier_distillation(
    config: StrategyConfig, earlier_classes: Sequence[int], replay_rows_only: bool
) -> WeightedTerm:
    """lambda_c * L_cls_kd as ``strategy.classifier_distill_*`` say (``replay_rows_only`` forces
    the replayed rows whatever ``classifier_distill_rows`` says)."""
    return WeightedTerm(
        "classifier_distill",
        config.classifier_distill_weight,
        classifier_distill_term(
            config.classifier_distill_temperature,
            earlier_classes if config.classifier_distill_classes == "seen" else None,
            replay_rows_only=replay_rows_only or config.classifier_distill_rows == "replay",
        ),
    )


def distilled_objective(
    config: StrategyConfig,
    feature_distill: bool,
    classifier_distill: bool,
    replay_rows_only: bool = False,
) -> TermsFn:
    """SSL + classifier, plus the chosen distillations whenever the task has a teacher."""

    def terms(
        learner: Learner, teacher: Teacher | None, classes: TaskClasses
    ) -> list[WeightedTerm]:
        chosen = ssl_and_classifier(config, learner)
        if teacher is not None and feature_distill:
            chosen.append(feature_distillation(config, learner))
        if teacher is not None and classifier_distill:
            chosen.append(classifier_distillation(config, classes.earlier, replay_rows_only))
        return chosen

    return terms
