"""The continual methods by ``strategy.name``: each method module registers itself.

A method module defines its builder and decorates it with :func:`method`, naming the strategy
and its settings record (a :class:`~kaizen.config.StrategySettings` of its own, or a shared
one); :mod:`kaizen.methods.strategies` imports every module of its package, so adding a method
is adding one file there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from kaizen.config import RunConfig, StrategySettings, register_strategy_settings
from kaizen.methods.seam import Method

Record = TypeVar("Record", bound=StrategySettings)

MethodBuilder = Callable[[RunConfig], Method]
"""Builds a method for a run's config."""

METHODS: dict[str, MethodBuilder] = {}
"""Every registered method's builder by strategy name."""

EXTENSIONS: dict[str, str] = {}
"""The strategies that are this project's own, not a published method, with what they change."""


def method(
    name: str, settings: type[StrategySettings], extension_of: str | None = None
) -> Callable[[MethodBuilder], MethodBuilder]:
    """Register the decorated builder as strategy ``name``, configured by ``settings``;
    ``extension_of`` says what published method it changes when it is this project's own
    (reports label it so)."""

    def register(build: MethodBuilder) -> MethodBuilder:
        if name in METHODS:
            raise ValueError(f"strategy {name!r} is registered twice")
        METHODS[name] = build
        register_strategy_settings(name, settings)
        if extension_of is not None:
            EXTENSIONS[name] = extension_of
        return build

    return register


def settings_of(config: RunConfig, record: type[Record]) -> Record:
    """``config.strategy`` as ``record``, the record its method registered or one that record
    derives from."""
    settings = config.strategy
    if not isinstance(settings, record):
        raise TypeError(
            f"strategy {settings.name} is configured by {type(settings).__name__}, not "
            f"{record.__name__}"
        )
    return settings
