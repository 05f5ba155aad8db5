"""Named presets: the paper's split CIFAR-100 settings and the embedded demo.

A preset is a config tree. ``cifar100-<ssl>-<strategy>`` combines the shared ``cifar100.yaml``,
the SSL method's overlay in ``ssl/<ssl>.yaml`` when it has one, and the strategy's name.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from kaizen.config import deep_merge, load_yaml
from kaizen.errors import ConfigError

SSL_NAMES = ("simclr", "mocov2plus", "byol", "vicreg")
PAPER_STRATEGIES = ("finetune", "cassle", "kaizen")


def _preset_dir() -> Path:
    return Path(str(resources.files("kaizen.presets")))


def _paper_preset(ssl: str, strategy: str) -> dict[str, Any]:
    tree = load_yaml(_preset_dir() / "cifar100.yaml")
    overlay = _preset_dir() / "ssl" / f"{ssl}.yaml"
    if overlay.exists():
        tree = deep_merge(tree, load_yaml(overlay))
    return deep_merge(
        tree,
        {
            "name": f"cifar100-{ssl}-{strategy}",
            "ssl": {"method": ssl},
            "strategy": {"name": strategy},
        },
    )


def preset_names() -> list[str]:
    """Every preset name, the demo first."""
    paper = [f"cifar100-{ssl}-{strategy}" for ssl in SSL_NAMES for strategy in PAPER_STRATEGIES]
    return ["demo", *paper]


def load_preset(name: str) -> dict[str, Any]:
    """The config tree of preset ``name``."""
    if name == "demo":
        return load_yaml(_preset_dir() / "demo.yaml")
    parts = name.split("-")
    if len(parts) == 3 and parts[0] == "cifar100":
        _, ssl, strategy = parts
        if ssl in SSL_NAMES and strategy in PAPER_STRATEGIES:
            return _paper_preset(ssl, strategy)
    raise ConfigError(
        f"unknown preset '{name}'; `kaizen presets` lists them, or give the path of a YAML file"
    )
