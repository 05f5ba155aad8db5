"""Configs saved with a run: what ``kaizen resume`` and ``kaizen update`` may change in them,
whether a checkpoint's config describes the same run, and the upgrade of configs written in
an earlier release's layout."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from kaizen.config.overrides import (
    MOVED_INTO_STRATEGY,
    STRATEGY_SECTION,
    build_config,
    keep_only_own,
    parse_override,
    to_plain,
    validate_config,
)
from kaizen.config.run import RunConfig
from kaizen.config.strategy import DEFAULT_STRATEGY, STRATEGY_SETTINGS
from kaizen.errors import ConfigError

RUNTIME_KEYS = (
    "train.accelerator",
    "train.devices",
    "train.num_nodes",
    "train.strategy",
    "train.precision",
    "train.channels_last",
    "train.compile",
    "train.sync_batchnorm",
    "train.num_threads",
    "train.progress",
    "train.log_every",
    "train.logger",
    "gate.max_old_drop",
    "gate.max_flip_rate",
)
"""Settings of where and how a run executes; a resumed run may change them (another machine)."""

UPDATE_KEYS = (
    "train.epochs",
    "train.batch_size",
    "optim.lr",
    "optim.classifier_lr",
    "optim.warmup_epochs",
    "optim.min_lr",
)
"""The training budget and rates of one task, which ``kaizen update`` may set for its own task
besides the :data:`RUNTIME_KEYS`. The trainer reads them afresh at every task, so they act on
the update's task alone; what defines the model (``model``, ``ssl``, ``strategy``, ``data``,
``scenario``, ...) stays as the run was started."""


def _without(plain: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """``plain`` (from :func:`to_plain`) without the dotted ``keys``."""
    trimmed = copy.deepcopy(plain)
    for dotted in keys:
        section, key = dotted.split(".")
        trimmed.get(section, {}).pop(key, None)
    return trimmed


def without_runtime(plain: dict[str, Any]) -> dict[str, Any]:
    """``plain`` (from :func:`to_plain`) without the :data:`RUNTIME_KEYS`."""
    return _without(plain, RUNTIME_KEYS)


def same_run(saved: dict[str, Any], config: RunConfig, in_update: bool = False) -> bool:
    """Whether a checkpoint's config tree ``saved`` describes the run ``config`` describes.

    The saved tree is read through the current schema first, so a key added since (with a
    default) does not make it another run; the :data:`RUNTIME_KEYS` may differ. With
    ``in_update`` (the checkpoint resumes at or after an update's task) so may the
    :data:`UPDATE_KEYS`: a run's last checkpoint before an update holds the run's own budget,
    the update's checkpoints the update's.
    """
    try:
        current = validate_config(upgrade_layout(saved))
    except ConfigError:
        return False
    ignored = (*RUNTIME_KEYS, *UPDATE_KEYS) if in_update else RUNTIME_KEYS
    return _without(to_plain(current), ignored) == _without(to_plain(config), ignored)


def _refusal(command: str, key: str) -> ConfigError:
    """The error of an override ``key`` that ``kaizen <command>`` may not change."""
    runtime = ", ".join(RUNTIME_KEYS)
    if command == "update":
        return ConfigError(
            f"`kaizen update` sets only the new task's budget and rates "
            f"({', '.join(UPDATE_KEYS)}) and where and how it runs ({runtime}); '{key}' "
            "defines the model: change it in a new run with `kaizen run`"
        )
    after = (
        f" (an update sets it for its own task: `kaizen update RUN_DIR DATA {key}=...`)"
        if key in UPDATE_KEYS
        else ""
    )
    return ConfigError(
        f"`kaizen resume` changes only where and how a run executes ({runtime}); '{key}' "
        f"would change the run itself: start a new one with `kaizen run`{after}"
    )


def _limited_overrides(
    config: RunConfig, overrides: Sequence[str], allowed: Sequence[str], command: str
) -> RunConfig:
    for text in overrides:
        key = ".".join(parse_override(text)[0])
        if key not in allowed:
            raise _refusal(command, key)
    return build_config(to_plain(config), overrides)


def runtime_overrides(config: RunConfig, overrides: Sequence[str]) -> RunConfig:
    """``config`` with ``overrides`` that may only name :data:`RUNTIME_KEYS` (``kaizen
    resume``)."""
    return _limited_overrides(config, overrides, RUNTIME_KEYS, "resume")


def update_overrides(config: RunConfig, overrides: Sequence[str]) -> RunConfig:
    """``config`` with the overrides of an update, which may name :data:`RUNTIME_KEYS` and
    :data:`UPDATE_KEYS` (``kaizen update``, and a resume of an update)."""
    return _limited_overrides(config, overrides, (*RUNTIME_KEYS, *UPDATE_KEYS), "update")


def upgrade_layout(tree: dict[str, Any]) -> dict[str, Any]:
    """A config tree written by an earlier release (a run directory's config.yaml or a
    checkpoint's config), in the current layout.

    Earlier releases kept ``lump:`` and ``slca:`` at the root and every strategy setting in
    ``strategy:`` whatever the strategy; a method read only its own. The keys of the chosen
    strategy move into its record and the others are dropped, as the method ignored them.
    A tree in the current layout comes back unchanged.
    """
    tree = copy.deepcopy(tree)
    strategy = tree.setdefault("strategy", {})
    if not isinstance(strategy, dict):
        return tree
    name = strategy.get("name", DEFAULT_STRATEGY)
    moved = [section for section in MOVED_INTO_STRATEGY if section in tree]
    for section in moved:
        values = tree.pop(section)
        if name in MOVED_INTO_STRATEGY[section] and isinstance(values, dict):
            own = STRATEGY_SETTINGS[name].model_fields
            strategy.update({key: value for key, value in values.items() if key in own})
    if moved:
        keep_only_own(tree, STRATEGY_SECTION)
    return tree
