"""Kaizen (Tang et al., WACV 2024): SSL + feature distillation + classifier + classifier
distillation towards the previous task's frozen model, with a small labelled replay set.

``kaizen-replay-kd`` and ``kaizen-refit`` are this project's extensions, not the paper's
method: Kaizen with the classifier distillation on the replayed images only, and Kaizen whose
classifier is re-fitted class-balanced at each task's end (docs/classifier.md).
"""

from __future__ import annotations

from kaizen.config import RunConfig
from kaizen.methods.objective import KaizenObjective, distilled_objective
from kaizen.methods.parts.refit import ClassifierRefit
from kaizen.methods.parts.replay import LabelledReplay
from kaizen.methods.parts.teacher import TeacherSnapshot
from kaizen.methods.registry import method, settings_of
from kaizen.methods.seam import Method


def _kaizen(config: RunConfig, name: str, replay_rows_only: bool) -> Method:
    settings = settings_of(config, KaizenObjective)
    return Method(
        name,
        distilled_objective(settings, replay_rows_only),
        [TeacherSnapshot(settings.teacher_batchnorm), LabelledReplay(config.replay, config.seed)],
        needs_ssl=True,
    )


@method("kaizen", KaizenObjective)
def build(config: RunConfig) -> Method:
    return _kaizen(config, "kaizen", replay_rows_only=False)


@method(
    "kaizen-replay-kd",
    KaizenObjective,
    extension_of="Kaizen with its classifier distillation on the replayed images only",
)
def build_replay_kd(config: RunConfig) -> Method:
    return _kaizen(config, "kaizen-replay-kd", replay_rows_only=True)


@method(
    "kaizen-refit",
    KaizenObjective,
    extension_of="Kaizen with its classifier re-fitted at each task's end on the kept and the "
    "task's labelled images, every class drawn equally often (classifier.refit_*)",
)
def build_refit(config: RunConfig) -> Method:
    built = _kaizen(config, "kaizen-refit", replay_rows_only=False)
    built.parts.insert(
        0, ClassifierRefit(config.classifier, config.replay, config.seed, list(built.parts))
    )
    return built
