"""From text to a :class:`RunConfig`: YAML files, dotted ``key=value`` overrides, the layout of
run directories written by earlier releases, and every configuration error in one line."""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from kaizen.config.run import RunConfig
from kaizen.config.section import Section
from kaizen.config.ssl import DEFAULT_SSL_METHOD, SSL_SETTINGS
from kaizen.config.strategy import DEFAULT_STRATEGY, STRATEGY_SETTINGS, StrategySettings
from kaizen.errors import ConfigError


@dataclass(frozen=True)
class TaggedSection:
    """A section whose record is chosen by one of its keys (``ssl.method``, ``strategy.name``)."""

    section: str
    tag: str
    default: str

    @property
    def records(self) -> Mapping[str, type[Section]]:
        return SSL_SETTINGS if self.section == "ssl" else STRATEGY_SETTINGS

    def chosen(self, tree: dict[str, Any]) -> Any:
        """The tree's tag (the default when unset), or None when the section is no mapping."""
        section = tree.get(self.section, {})
        return section.get(self.tag, self.default) if isinstance(section, dict) else None

    def other_method_error(self, key: str, chosen: Any) -> ConfigError | None:
        """The error of key ``key`` given with a record that lacks it when another has it."""
        owners = [name for name, record in self.records.items() if key in record.model_fields]
        if not owners:
            return None
        choice = "that method" if len(owners) == 1 else "one of those methods"
        return ConfigError(
            f"config key '{self.section}.{key}' does not apply to {self.section}.{self.tag}="
            f"{chosen} (it is a setting of {', '.join(owners)}); remove it or choose {choice}"
        )

    def switch(self, tree: dict[str, Any], before: Any, overridden: set[str]) -> None:
        """After overrides changed the tag from ``before``: drop the tree's settings of other
        records that the new one lacks (a preset's queue size when a sweep switches MoCoV2+ to
        SimCLR). Keys set by the overrides themselves stay, and so are still rejected."""
        chosen = self.chosen(tree)
        if chosen == before or chosen not in self.records:
            return
        keep_only_own(tree, self, overridden)


SSL_SECTION = TaggedSection("ssl", "method", DEFAULT_SSL_METHOD)
STRATEGY_SECTION = TaggedSection("strategy", "name", DEFAULT_STRATEGY)
TAGGED_SECTIONS = (SSL_SECTION, STRATEGY_SECTION)

MOVED_INTO_STRATEGY = {"lump": ("lump",), "slca": ("seqft", "sl", "slca", "slcapp")}
"""Root sections of earlier releases whose keys are now fields of these strategies' records."""


def keep_only_own(
    tree: dict[str, Any], tagged: TaggedSection, kept: AbstractSet[str] = frozenset()
) -> None:
    """Drop from ``tree``'s tagged section the keys of other records that its chosen record
    lacks (keys named in ``kept`` and keys no record has stay, to be reported)."""
    chosen = tagged.chosen(tree)
    record = tagged.records.get(chosen) if isinstance(chosen, str) else None
    if record is None:
        return
    own = record.model_fields
    everyone = _fields(list(tagged.records.values()))
    tree[tagged.section] = {
        key: value
        for key, value in tree[tagged.section].items()
        if key in own or key in kept or key not in everyone
    }


def keep_chosen_strategy_keys(tree: dict[str, Any]) -> dict[str, Any]:
    """``tree`` with the keys of its ``strategy:`` section that only other strategies have
    left out: a preset family's settings apply to the strategies that have them."""
    tree = copy.deepcopy(tree)
    if isinstance(tree.get("strategy"), dict):
        keep_only_own(tree, STRATEGY_SECTION)
    return tree


def _first_line(error: Exception) -> str:
    problem = getattr(error, "problem", None)
    mark = getattr(error, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return str(error).splitlines()[0]


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into its key path and a YAML-parsed value.

    >>> parse_override("train.epochs=3")
    (['train', 'epochs'], 3)
    """
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} is not key=value: write e.g. train.epochs=10")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as error:
        raise ConfigError(
            f"override {text!r}: value is not valid YAML ({_first_line(error)})"
        ) from None
    return key.strip().split("."), value


def _section_models(annotation: Any) -> list[type[BaseModel]]:
    """The sections a field holds: its model, every model of a union (the SSL records), every
    registered strategy record for ``strategy``, or none."""
    members = (
        get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    )
    models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
    if models == [StrategySettings]:
        return list(STRATEGY_SETTINGS.values())
    return models


def _fields(models: Sequence[type[BaseModel]]) -> dict[str, FieldInfo]:
    """The fields of ``models`` together, by name: a union's keys are all its members' keys."""
    fields: dict[str, FieldInfo] = {}
    for model in models:
        for name, field in model.model_fields.items():
            fields.setdefault(name, field)
    return fields


def _known_keys(models: Sequence[type[BaseModel]] = (RunConfig,), prefix: str = "") -> list[str]:
    keys = []
    for name, field in _fields(models).items():
        keys.append(prefix + name)
        keys.extend(_known_keys(_section_models(field.annotation), f"{prefix}{name}."))
    return keys


def _unknown_key_error(dotted: str) -> ConfigError:
    section, _, key = dotted.partition(".")
    if section in MOVED_INTO_STRATEGY:
        owners = ", ".join(MOVED_INTO_STRATEGY[section])
        fix = f"write 'strategy.{key}'" if key else "move its keys under 'strategy:'"
        return ConfigError(
            f"config section '{section}' is now part of the strategy's own record: {fix} "
            f"(settings of strategy.name={owners})"
        )
    close = difflib.get_close_matches(dotted, _known_keys(), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(
        f"unknown config key '{dotted}'{hint}; `kaizen run --help` and the presets show the keys"
    )


def set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    """Set ``tree[path[0]][path[1]]... = value``, creating sections, rejecting unknown keys.

    A key of any SSL method is accepted under ``ssl``; whether it applies to the chosen method
    is checked when the tree is validated, after every override.
    """
    if path[0] in MOVED_INTO_STRATEGY:
        raise _unknown_key_error(".".join(path))
    models: list[type[BaseModel]] = [RunConfig]
    node = tree
    for depth, key in enumerate(path):
        field = _fields(models).get(key)
        if field is None:
            raise _unknown_key_error(".".join(path[: depth + 1]))
        if depth == len(path) - 1:
            node[key] = value
            return
        children = _section_models(field.annotation)
        if not children:
            raise _unknown_key_error(".".join(path[: depth + 2]))
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            child = node[key] = {}
        node, models = child, children


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """A new dict: ``base`` with ``update`` merged in, nested dicts merged key by key."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _location(loc: tuple[Any, ...]) -> str:
    """The dotted config key of a validation error location, without pydantic's union tags."""
    known = set(_known_keys())
    parts: list[str] = []
    for part in loc:
        candidate = ".".join([*parts, str(part)])
        if candidate in known or isinstance(part, int):
            parts.append(str(part))
    return ".".join(parts)


def _extra_key_error(loc: tuple[Any, ...], tree: dict[str, Any]) -> ConfigError:
    """The error of a key the schema has no place for at ``loc``."""
    section, key = _location(loc[:-1]), str(loc[-1])
    for tagged in TAGGED_SECTIONS:
        if section == tagged.section:
            error = tagged.other_method_error(key, tagged.chosen(tree))
            if error is not None:
                return error
    return _unknown_key_error(f"{section}.{key}" if section else key)


def validate_config(tree: dict[str, Any]) -> RunConfig:
    """Validate a config tree into a :class:`RunConfig`, or raise a one-line ConfigError."""
    name = STRATEGY_SECTION.chosen(tree)
    if isinstance(name, str) and name not in STRATEGY_SETTINGS:
        known = ", ".join(repr(known) for known in STRATEGY_SETTINGS)
        raise ConfigError(
            f"config value 'strategy.name' = {name!r}: Input should be one of {known}"
        )
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as error:
        first = error.errors()[0]
        if first["type"] == "extra_forbidden":
            raise _extra_key_error(first["loc"], tree) from None
        where = _location(first["loc"])
        given = first.get("input")
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "union_tag_invalid":
            # the section's tag (ssl.method) names no member of the union
            ctx = first["ctx"]
            tag_key = ctx["discriminator"].strip("'")
            where = f"{where}.{tag_key}"
            given = ctx["tag"]
            message = f"Input should be one of {ctx['expected_tags']}"
        shown = "" if isinstance(given, dict) else f" = {given!r}"
        raise ConfigError(f"config value '{where}'{shown}: {message}") from None


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping with the safe loader."""
    try:
        content = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ConfigError(f"cannot read config {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"config {path} is not valid YAML: {_first_line(error)}") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"config {path} must be a YAML mapping of sections, e.g. 'train:'")
    return content


def build_config(tree: dict[str, Any], overrides: Sequence[str] = ()) -> RunConfig:
    """Apply ``key=value`` overrides to a config tree and validate it.

    An ``ssl.method`` or ``strategy.name`` override that changes the tree's method leaves
    behind the tree's settings of the old method that the new one does not have; every other
    key that does not apply to the chosen method is an error.
    """
    tree = copy.deepcopy(tree)
    before = {tagged.section: tagged.chosen(tree) for tagged in TAGGED_SECTIONS}
    overridden: dict[str, set[str]] = {tagged.section: set() for tagged in TAGGED_SECTIONS}
    for text in overrides:
        path, value = parse_override(text)
        set_path(tree, path, value)
        if path[0] in overridden:
            section = {path[1]: value} if len(path) > 1 else value
            overridden[path[0]].update(section if isinstance(section, dict) else ())
    for tagged in TAGGED_SECTIONS:
        tagged.switch(tree, before[tagged.section], overridden[tagged.section])
    return validate_config(tree)


def to_plain(config: RunConfig) -> dict[str, Any]:
    """A JSON-ready dict of the config (paths as strings)."""
    return config.model_dump(mode="json")
