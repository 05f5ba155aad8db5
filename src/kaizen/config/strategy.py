"""The ``strategy:`` section: the record of the method ``strategy.name`` names.

Every strategy's record derives from :class:`StrategySettings`, which holds what the learner
reads whatever the method; the rest of a record is the method's own and lives beside the method
(``kaizen/methods/strategies/<name>.py``), which registers it with
:func:`register_strategy_settings` when the method registers itself. A key of another method
is refused, as under ``ssl:``.
"""

from __future__ import annotations

from pydantic import Field

from kaizen.config.section import Section

DEFAULT_STRATEGY = "kaizen"
"""The strategy of a ``strategy:`` section that does not name one."""


class StrategySettings(Section):
    """What every strategy has: its name and what the learner is built with."""

    name: str = DEFAULT_STRATEGY
    end_to_end: bool = Field(
        False, description="Let classifier terms train the backbone (default: stop-gradient)."
    )
    distill_predictor_hidden_dim: int = Field(
        2048,
        ge=1,
        description="Hidden width of the feature-distillation predictor, which every learner "
        "with an SSL method builds (strategies without feature distillation leave it unused).",
    )


STRATEGY_SETTINGS: dict[str, type[StrategySettings]] = {}
"""Each strategy's settings record by ``strategy.name``, filled as the methods register."""


def register_strategy_settings(name: str, record: type[StrategySettings]) -> None:
    """Make ``record`` the settings of strategy ``name``."""
    STRATEGY_SETTINGS[name] = record


def strategy_record(name: object) -> type[StrategySettings]:
    """The settings record of strategy ``name``; ValueError naming the known ones otherwise."""
    record = STRATEGY_SETTINGS.get(name) if isinstance(name, str) else None
    if record is None:
        known = ", ".join(sorted(STRATEGY_SETTINGS))
        raise ValueError(f"unknown strategy {name!r}; choose one of {known}")
    return record
