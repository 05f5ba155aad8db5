"""The SLCA family (Zhang et al., "SLCA: Slow Learner with Classifier Alignment", ICCV 2023;
SLCA++, arXiv 2408.08295): supervised fine-tuning of a pre-trained backbone, one head per task,
trained on the current task's logits, so the paper's ablation is one sweep over strategy.name:

- ``seqft``: sequential fine-tuning, the backbone at the heads' learning rate;
- ``sl``: the slow learner, the backbone at ``optim.lr`` against the heads' ``classifier_lr``;
- ``slca``: the slow learner with classifier alignment and SLCA's mean shrinkage;
- ``slcapp``: SLCA++: the symmetric cross-entropy, the hybrid slow learner (LoRA) and the
  alignment with old-task feature scaling.

``strategy.freeze_backbone`` keeps the backbone as pre-trained (every strategy but ``slcapp``,
whose adapters are part of the backbone).

``joint`` (every task's data so far, every logit) is the family's upper bound. All of them run
with ``ssl.method=none`` and ``strategy.end_to_end=true`` (their records' default); the
``slca-*`` presets set ``ssl.method=none``.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field, field_validator

from kaizen.config import RunConfig, StrategySettings
from kaizen.errors import ConfigError
from kaizen.learner.learner import Learner
from kaizen.learner.teacher import Teacher
from kaizen.learner.terms import WeightedTerm, current_task_term
from kaizen.methods.parts.alignment import ClassifierAlignment
from kaizen.methods.parts.frozen_backbone import FrozenBackbone
from kaizen.methods.parts.hybrid import HybridSlowLearner, LoraTarget
from kaizen.methods.parts.one_lr import OneLearningRate
from kaizen.methods.parts.task_heads import CurrentTaskHead
from kaizen.methods.registry import method, settings_of
from kaizen.methods.seam import Method, Part, TaskClasses, TermsFn


class SLCASettings(StrategySettings):
    """The family's training loss (SLCA, Zhang et al., ICCV 2023)."""

    end_to_end: bool = Field(
        True, description="The family trains the backbone through its heads; it must stay true."
    )
    loss: Literal["ce", "sce"] | None = Field(
        None,
        description="Cross-entropy on the current task's logits, or the symmetric "
        "cross-entropy alpha CE + beta RCE; none: the strategy's own (sce for slcapp).",
    )
    sce_alpha: float = Field(1.0, ge=0.0, description="alpha of the symmetric cross-entropy.")
    sce_beta: float = Field(0.1, ge=0.0, description="beta of the symmetric cross-entropy.")
    freeze_backbone: bool = Field(
        False,
        description="true: the pre-trained backbone does not train at all (no optimiser step, "
        "eval mode), only the heads and their alignment, as SLCA's released code runs with "
        "bcb_lrscale=0; needs model.weights and contradicts slcapp's adapters. false: the "
        "strategy's own backbone rate (the released experiments and the slca-* presets).",
    )


class SLCAPlusSettings(SLCASettings):
    """SLCA++ (arXiv 2408.08295): the hybrid slow learner (LoRA) and old-task feature scaling."""

    lora_targets: list[LoraTarget] = Field(
        default_factory=lambda: list(get_args(LoraTarget)),
        min_length=1,
        description="The linear layers of every block that get a trained adapter: qkv (the "
        "attention's query, key and value projection), fc1 and fc2 (the MLP's two layers); the "
        "others get none. Default: all three; SLCA++'s released code trains the qkv adapters "
        "only (its MLP adapters stay zero) and the slca-* presets set [qkv].",
    )
    lora_rank: int = Field(4, ge=1, description="Rank of the hybrid slow learner's adapters.")
    lora_scale: float = Field(0.8, gt=0.0, description="Factor of the adapters' product.")
    lora_first_task_lr: float = Field(
        0.005, gt=0.0, description="The adapters' learning rate at the first task."
    )
    lora_lr: float = Field(0.001, gt=0.0, description="The adapters' learning rate after it.")
    feature_scale: float = Field(
        0.02,
        ge=0.0,
        description="SLCA++'s mu: alignment shrinks task i's sampled features by "
        "1 / (1 + u (t - i)), u ~ U[mu - 0.01, mu + 0.01], and inference scales the input of "
        "task i's head by 1 + mu (t - i); 0: off.",
    )

    @field_validator("lora_targets")
    @classmethod
    def _each_layer_once(cls, targets: list[LoraTarget]) -> list[LoraTarget]:
        if len(set(targets)) != len(targets):
            raise ValueError("name each layer once, e.g. [qkv, fc1, fc2]")
        return targets


FAMILY = ("seqft", "sl", "slca", "slcapp")
"""The family's strategies, in the order of the paper's ablation."""


def _current_task_loss(config: RunConfig, default_loss: str) -> TermsFn:
    slca = settings_of(config, SLCASettings)
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
    settings = settings_of(config, SLCASettings)
    if not settings.end_to_end:
        raise ConfigError(
            f"strategy {name} trains the backbone through its heads: set "
            "strategy.end_to_end=true (the slca-* presets do)"
        )
    if settings.freeze_backbone:
        if config.model.weights is None:
            raise ConfigError(
                "strategy.freeze_backbone=true keeps the backbone as it was built, and without "
                "model.weights it is random: give model.weights or set "
                "strategy.freeze_backbone=false"
            )
        parts = [*parts, FrozenBackbone()]
    return Method(name, _current_task_loss(config, default_loss), [*parts, CurrentTaskHead(name)])


@method("seqft", SLCASettings)
def build_seqft(config: RunConfig) -> Method:
    return _family(config, "seqft", [OneLearningRate()])


@method("sl", SLCASettings)
def build_sl(config: RunConfig) -> Method:
    return _family(config, "sl", [])


@method("slca", SLCASettings)
def build_slca(config: RunConfig) -> Method:
    alignment = ClassifierAlignment(config.classifier, config.seed, [], mean_shrink=True)
    return _family(config, "slca", [alignment])


@method("slcapp", SLCAPlusSettings)
def build_slcapp(config: RunConfig) -> Method:
    settings = settings_of(config, SLCAPlusSettings)
    if settings.freeze_backbone:
        raise ConfigError(
            "strategy.freeze_backbone=true contradicts slcapp, whose hybrid slow learner trains "
            "adapters, norms and biases inside the backbone: use strategy.name=slca, or set "
            "strategy.freeze_backbone=false"
        )
    alignment = ClassifierAlignment(
        config.classifier, config.seed, [], feature_scale=settings.feature_scale
    )
    hybrid = HybridSlowLearner(settings, config.optim)
    return _family(config, "slcapp", [alignment, hybrid], default_loss="sce")
