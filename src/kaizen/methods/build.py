"""A run's method: the strategy ``strategy.name`` names, with the parts the config adds.

Layer freezing (``freeze.*``) composes with any method (one that keeps earlier images, for the
covariance measure), and so do the classifier's corrections at each task's end: alignment
(``classifier.align``; the SLCA family aligns already), the class-balanced re-fit
(``classifier.refit``) and weight aligning (``classifier.weight_align``).
"""

from __future__ import annotations

import kaizen.methods.strategies  # noqa: F401  (registers every method)
from kaizen.config import STRATEGY_SETTINGS, RunConfig
from kaizen.errors import ConfigError
from kaizen.methods.parts.alignment import ClassifierAlignment
from kaizen.methods.parts.freezing import LayerFreezing
from kaizen.methods.parts.refit import ClassifierRefit
from kaizen.methods.parts.weight_align import WeightAligning
from kaizen.methods.registry import METHODS
from kaizen.methods.seam import Method


def _buildable(config: RunConfig) -> dict[str, Method]:
    """The methods that ``config`` can run with their default settings (a strategy that
    refuses it is left out)."""
    methods = {}
    for name, build in METHODS.items():
        try:
            methods[name] = build(
                config.model_copy(update={"strategy": STRATEGY_SETTINGS[name](name=name)})
            )
        except ConfigError:
            continue
    return methods


def _check_backbone_learns(config: RunConfig) -> None:
    """Refuse a backbone that would stay as it was built, random: no SSL term, no classifier
    loss reaching it and no pre-trained weights. With weights it is a linear probe."""
    if (
        config.ssl.method == "none"
        and not config.strategy.end_to_end
        and config.model.weights is None
    ):
        raise ConfigError(
            "ssl.method=none with strategy.end_to_end=false trains no part of the backbone, and "
            "without model.weights it stays random: set strategy.end_to_end=true, choose an SSL "
            "method (e.g. ssl.method=simclr), or give model.weights (a linear probe of a "
            "pre-trained backbone)"
        )


def build_method(config: RunConfig) -> Method:
    """The method ``config.strategy.name`` names, built for ``config``, with layer freezing
    when ``freeze.enabled`` and the classifier's corrections ``classifier.*`` asks for."""
    method = METHODS[config.strategy.name](config)
    if method.needs_ssl and config.ssl.method == "none":
        raise ConfigError(
            f"strategy {method.name} has self-supervised terms and ssl.method=none has none: "
            "choose an SSL method (e.g. ssl.method=simclr)"
        )
    _check_backbone_learns(config)
    if config.freeze.enabled:
        if config.freeze.measure == "covariance" and not any(
            part.keeps_memory for part in method.parts
        ):
            keeping = sorted(
                name
                for name, other in _buildable(config).items()
                if any(part.keeps_memory for part in other.parts)
            )
            raise ConfigError(
                f"freeze.enabled=true with freeze.measure=covariance needs earlier images to "
                f"measure the task correlation, and strategy '{method.name}' keeps none; use "
                f"one of {', '.join(keeping)}, or freeze.measure=subspace, which needs none"
            )
        method.parts.append(
            LayerFreezing(config.freeze, config.model, list(method.parts), config.seed)
        )
    if config.classifier.align and not method.has_part(ClassifierAlignment.name):
        # first: the trained classifier is back before a teacher snapshots it
        method.parts.insert(
            0, ClassifierAlignment(config.classifier, config.seed, list(method.parts))
        )
    _add_classifier_corrections(method, config)
    return method


def _add_classifier_corrections(method: Method, config: RunConfig) -> None:
    """The re-fit (the strategy's own, or the one ``classifier.refit`` asks for), then weight
    aligning, first among the parts: at a task's end they see the earlier tasks' kept images
    before the replay adds the task's, they correct the trained classifier before an alignment
    keeps it, and the next task's teacher snapshots the corrected classifier."""
    corrections = [part for part in method.parts if part.name == ClassifierRefit.name]
    if config.classifier.refit and not corrections:
        corrections.append(
            ClassifierRefit(config.classifier, config.replay, config.seed, list(method.parts))
        )
    if config.classifier.weight_align:
        corrections.append(WeightAligning())
    others = [part for part in method.parts if part.name != ClassifierRefit.name]
    method.parts[:] = [*corrections, *others]
