"""The registry of continual methods: ``strategy.name`` -> a builder of its :class:`Method`.

Adding a method is a module with a ``build(config) -> Method`` function and one line here.
Layer freezing (``freeze.*``) composes with any method that keeps earlier images, classifier
alignment (``classifier.align``) with any method (the SLCA family aligns already).
"""

from __future__ import annotations

from collections.abc import Callable

from kaizen.config import RunConfig
from kaizen.errors import ConfigError
from kaizen.methods.parts.alignment import ClassifierAlignment
from kaizen.methods.parts.freezing import LayerFreezing
from kaizen.methods.seam import Method
from kaizen.methods.strategies import cassle, finetune, joint, kaizen, lump, scratch, slca

METHODS: dict[str, Callable[[RunConfig], Method]] = {
    "finetune": finetune.build,
    "cassle": cassle.build,
    "kaizen": kaizen.build,
    "kaizen-replay-kd": kaizen.build_replay_kd,
    "joint": joint.build,
    "scratch": scratch.build,
    "lump": lump.build,
    "seqft": slca.build_seqft,
    "sl": slca.build_sl,
    "slca": slca.build_slca,
    "slcapp": slca.build_slcapp,
}


def _buildable(config: RunConfig) -> dict[str, Method]:
    """The methods that ``config`` can run (a strategy that refuses it is left out)."""
    methods = {}
    for name, build in METHODS.items():
        try:
            methods[name] = build(config)
        except ConfigError:
            continue
    return methods


def build_method(config: RunConfig) -> Method:
    """The method ``config.strategy.name`` names, built for ``config``, with layer freezing
    when ``freeze.enabled`` and classifier alignment when ``classifier.align``."""
    method = METHODS[config.strategy.name](config)
    if method.needs_ssl and config.ssl.method == "none":
        raise ConfigError(
            f"strategy {method.name} has self-supervised terms and ssl.method=none has none: "
            "choose an SSL method (e.g. ssl.method=simclr)"
        )
    if config.freeze.enabled:
        if not any(part.keeps_memory for part in method.parts):
            keeping = sorted(
                name
                for name, other in _buildable(config).items()
                if any(part.keeps_memory for part in other.parts)
            )
            raise ConfigError(
                f"freeze.enabled=true needs earlier images to measure the task correlation, and "
                f"strategy '{method.name}' keeps none; use one of {', '.join(keeping)}"
            )
        method.parts.append(
            LayerFreezing(config.freeze, config.model, list(method.parts), config.seed)
        )
    if config.classifier.align and not method.has_part(ClassifierAlignment.name):
        # first: the trained classifier is back before a teacher snapshots it
        method.parts.insert(
            0, ClassifierAlignment(config.classifier, config.seed, list(method.parts))
        )
    return method
