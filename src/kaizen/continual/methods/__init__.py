"""The registry of continual methods: ``strategy.name`` -> a builder of its :class:`Method`.

Adding a method is a module with a ``build(config) -> Method`` function and one line here.
"""

from __future__ import annotations

from collections.abc import Callable

from kaizen.config import RunConfig
from kaizen.continual.method import Method
from kaizen.continual.methods import cassle, finetune, joint, kaizen, scratch

METHODS: dict[str, Callable[[RunConfig], Method]] = {
    "finetune": finetune.build,
    "cassle": cassle.build,
    "kaizen": kaizen.build,
    "kaizen-replay-kd": kaizen.build_replay_kd,
    "joint": joint.build,
    "scratch": scratch.build,
}


def build_method(config: RunConfig) -> Method:
    """The method ``config.strategy.name`` names, built for ``config``."""
    return METHODS[config.strategy.name](config)
