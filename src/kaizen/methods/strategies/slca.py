"""The SLCA family (Zhang et al., "SLCA: Slow Learner with Classifier Alignment", ICCV 2023;
SLCA++, arXiv 2408.08295): supervised fine-tuning of a pre-trained backbone, one head per task,
trained on the current task's logits, so the paper's ablation is one sweep over strategy.name:

- ``seqft``: sequential fine-tuning, the backbone at the heads' learning rate;
- ``sl``: the slow learner, the backbone at ``optim.lr`` against the heads' ``classifier_lr``;
- ``slca``: the slow learner with classifier alignment and SLCA's mean shrinkage;
- ``slcapp``: SLCA++: the symmetric cross-entropy, the hybrid slow learner (LoRA) and the
  alignment with old-task feature scaling.

``joint`` (every task's data so far, every logit) is the family's upper bound. All of them run
with ``ssl.method=none`` and ``strategy.end_to_end=true``; the ``slca-*`` presets set both.
"""

from __future__ import annotations

from kaizen.config import RunConfig
from kaizen.errors import ConfigError
from kaizen.learner.learner import Learner
from kaizen.learner.teacher import Teacher
from kaizen.learner.terms import WeightedTerm, current_task_term
from kaizen.methods.parts.alignment import ClassifierAlignment
from kaizen.methods.parts.hybrid import HybridSlowLearner
from kaizen.methods.parts.one_lr import OneLearningRate
from kaizen.methods.parts.task_heads import CurrentTaskHead
from kaizen.methods.seam import Method, Part, TaskClasses, TermsFn

FAMILY = ("seqft", "sl", "slca", "slcapp")
"""The family's strategies, in the order of the paper's ablation."""


def _current_task_loss(config: RunConfig, default_loss: str) -> TermsFn:
    slca = config.slca
    loss = slca.loss or default_loss

    def terms(
        learner: Learner, teacher: Teacher | None, classes: TaskClasses
    ) -> list[WeightedTerm]:
        fn = current_task_term(classes.current, loss, slca.sce_alpha, slca.sce_beta)
        return [WeightedTerm(loss, 1.0, fn)]

    return terms


def _family(config: RunConfig, name: str, parts: list[Part], default_loss: str = "ce") -> Method:
    if config.ssl.method != "none":
        raise ConfigError(
            f"strategy {name} fine-tunes with its classifier's loss alone: set ssl.method=none "
            "(the slca-* presets do)"
        )
    if not config.strategy.end_to_end:
        raise ConfigError(
            f"strategy {name} trains the backbone through its heads: set "
            "strategy.end_to_end=true (the slca-* presets do)"
        )
    return Method(name, _current_task_loss(config, default_loss), [*parts, CurrentTaskHead(name)])


def build_seqft(config: RunConfig) -> Method:
    return _family(config, "seqft", [OneLearningRate()])


def build_sl(config: RunConfig) -> Method:
    return _family(config, "sl", [])


def build_slca(config: RunConfig) -> Method:
    alignment = ClassifierAlignment(config.classifier, config.seed, [], mean_shrink=True)
    return _family(config, "slca", [alignment])


def build_slcapp(config: RunConfig) -> Method:
    alignment = ClassifierAlignment(
        config.classifier, config.seed, [], feature_scale=config.slca.feature_scale
    )
    hybrid = HybridSlowLearner(config.slca, config.optim)
    return _family(config, "slcapp", [alignment, hybrid], default_loss="sce")
