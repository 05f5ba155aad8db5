"""The objectives the built-in methods share: SSL + classifier, with optional distillations.

The Kaizen objective (Tang et al., WACV 2024, Eq. 1) at task t >= 1 is

    L = L_ssl + lambda_fe * L_fe_kd + w_cls * L_cls + lambda_c * L_cls_kd

fine-tuning keeps the first and third summands, CaSSLe (Fini et al., CVPR 2022) adds the
second; at the first task (no teacher) every method uses L_ssl + w_cls * L_cls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from kaizen.config import BarlowSettings, StrategySettings
from kaizen.learner.learner import Learner
from kaizen.learner.teacher import Teacher, TeacherBatchNorm
from kaizen.learner.terms import (
    WeightedTerm,
    classifier_distill_term,
    classifier_term,
    feature_distill_term,
    ssl_term,
)
from kaizen.methods.seam import TaskClasses, TermsFn
from kaizen.ssl.distill import DECORRELATION_WEIGHT


class ClassifierObjective(StrategySettings):
    """SSL + classifier: fine-tuning, joint training and retraining from scratch."""

    classifier_weight: float = Field(1.0, ge=0.0, description="w_cls.")


class FeatureDistillObjective(ClassifierObjective):
    """CaSSLe's feature distillation on top (Fini et al., CVPR 2022)."""

    feature_distill_weight: float | None = Field(
        None, ge=0.0, description="lambda_fe; default 1 (VICReg 25)."
    )
    distill_temperature: float = Field(0.2, gt=0.0, description="Contrastive distillation.")
    teacher_batchnorm: TeacherBatchNorm = Field(
        "running",
        description="How the frozen teacher's BatchNorm layers normalise: with their running "
        "statistics (eval mode), or with each batch's statistics, as Kaizen's and CaSSLe's "
        "released code leave the frozen model in train mode (the paper presets).",
    )


class KaizenObjective(FeatureDistillObjective):
    """Kaizen's classifier distillation on top (Tang et al., WACV 2024)."""

    classifier_distill_weight: float = Field(2.0, ge=0.0, description="lambda_c.")
    classifier_distill_temperature: float = Field(
        1.0, gt=0.0, description="T of the soft labels; the term is scaled by T^2 (Hinton)."
    )
    classifier_distill_classes: Literal["all", "seen"] = Field(
        "all",
        description="Soft labels over all classes (the paper) or only over the classes the "
        "teacher was trained on (Learning without Forgetting's form).",
    )
    classifier_distill_rows: Literal["all", "replay"] = Field(
        "all", description="Classifier distillation on every row (the paper) or on replay rows."
    )


def ssl_and_classifier(config: ClassifierObjective, learner: Learner) -> list[WeightedTerm]:
    """L_ssl (unless ``ssl.method=none``) and w_cls * L_cls."""
    classifier = WeightedTerm("classifier", config.classifier_weight, classifier_term)
    if not learner.ssl.has_loss:
        return [classifier]
    return [WeightedTerm("ssl", 1.0, ssl_term(learner)), classifier]


def feature_distillation(config: FeatureDistillObjective, learner: Learner) -> WeightedTerm:
    """lambda_fe * L_fe_kd in the SSL method's distillation family (its weight by default)."""
    weight = config.feature_distill_weight
    if weight is None:
        weight = learner.ssl.default_distill_weight
    kind, settings = learner.ssl.distill_kind, learner.ssl.settings
    decorrelation = (DECORRELATION_WEIGHT, 1.0)
    if isinstance(settings, BarlowSettings):
        decorrelation = (settings.distill_off_diagonal_weight, settings.distill_loss_scale)
    return WeightedTerm(
        "feature_distill",
        weight,
        feature_distill_term(kind, config.distill_temperature, decorrelation),
    )


def classifier_distillation(
    config: KaizenObjective, earlier_classes: Sequence[int], replay_rows_only: bool
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


def distilled_objective(config: ClassifierObjective, replay_rows_only: bool = False) -> TermsFn:
    """SSL + classifier, plus, whenever the task has a teacher, the distillations the record
    ``config`` has: feature distillation for a :class:`FeatureDistillObjective`, classifier
    distillation for a :class:`KaizenObjective`."""

    def terms(
        learner: Learner, teacher: Teacher | None, classes: TaskClasses
    ) -> list[WeightedTerm]:
        chosen = ssl_and_classifier(config, learner)
        if teacher is not None and isinstance(config, FeatureDistillObjective):
            chosen.append(feature_distillation(config, learner))
        if teacher is not None and isinstance(config, KaizenObjective):
            chosen.append(classifier_distillation(config, classes.earlier, replay_rows_only))
        return chosen

    return terms
