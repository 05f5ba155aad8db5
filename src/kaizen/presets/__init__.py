"""Named presets: the paper's split CIFAR-100 settings, split CIFAR-10, a Fashion-MNIST
family, and the demo.

A preset is a config tree. ``<family>-<ssl>-<strategy>`` combines, each overlay where it
exists and over the ones before it: the family's ``<family>.yaml`` (on top of its base
family's, for ``cifar10``: ``cifar100``); the SSL method's ``ssl/<ssl>.yaml`` (the optimiser
settings of VICReg, SimSiam and Barlow Twins differ, and VICReg's augmentations); the family's
``<family>/<ssl>.yaml`` (on Fashion-MNIST each method's own settings, such as the MoCo queue,
and VICReg's gradient clipping); the strategy's ``strategy/<strategy>.yaml`` on every family
(what LUMP's released code runs: its optimiser, schedule, augmentation, buffer and evaluation);
the family's ``<family>/<strategy>.yaml`` (LUMP's paper budget on split CIFAR); the pair's
``ssl/<ssl>-<strategy>.yaml`` (LUMP's SimSiam and Barlow Twins: their projector, and Barlow
Twins' loss as LUMP's code computes it); and the strategy's name. ``demo`` is
``fmnist-simclr-kaizen`` named demo, and ``fmnist-domains`` the same over five domains of
Fashion-MNIST (``fmnist-domains.yaml``).

``slca-<benchmark>-<strategy>`` are SLCA's and SLCA++'s benchmarks (a pre-trained ViT-B/16, no
SSL): ``slca.yaml``, then ``slca/<benchmark>.yaml``, ``slca/<strategy>.yaml`` and
``slca/<benchmark>-<strategy>.yaml`` where they exist. ``slca-<benchmark>-mocov3-<strategy>``
start from the paper's second pre-training, MoCo v3, on its four benchmarks: the same files, then
``slca/mocov3.yaml`` and ``slca/mocov3-<strategy>.yaml``.

A family's ``strategy:`` settings apply to the strategies whose record has them (SLCA's
benchmark loss weights to ``seqft``..``slcapp``, not to ``joint``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from kaizen.config import deep_merge, keep_chosen_strategy_keys, load_yaml
from kaizen.errors import ConfigError

FAMILIES = ("fmnist", "cifar100", "cifar10")
FAMILY_BASES = {"cifar10": "cifar100"}
"""Families written as differences from another family."""
SSL_NAMES = ("simclr", "mocov2plus", "byol", "vicreg", "simsiam", "barlow")
PAPER_STRATEGIES = ("finetune", "cassle", "kaizen")
PRESET_STRATEGIES = (*PAPER_STRATEGIES, "kaizen-replay-kd", "kaizen-refit", "lump")
DEMO = ("fmnist", "simclr", "kaizen")
DOMAINS = "fmnist-domains"
"""The domain-incremental preset: the demo's settings over five domains of Fashion-MNIST."""
SLCA_BENCHMARKS = ("cifar100", "imagenetr", "cub200", "cars196", "fmnist")
SLCA_STRATEGIES = ("seqft", "sl", "slca", "slcapp", "joint")
SLCA_PRETRAININGS: dict[str, tuple[str, ...]] = {
    "mocov3": ("cifar100", "imagenetr", "cub200", "cars196")
}
"""The pre-trainings besides SLCA's default ImageNet-21K one, each with the benchmarks it has
presets for (the infix of ``slca-<benchmark>-<pretraining>-<strategy>``)."""


def _preset_dir() -> Path:
    return Path(str(resources.files("kaizen.presets")))


def _merged(files: list[Path]) -> dict[str, Any]:
    """The trees of those ``files`` that exist, each merged over the ones before it."""
    tree: dict[str, Any] = {}
    for overlay in files:
        if overlay.exists():
            tree = deep_merge(tree, load_yaml(overlay))
    return tree


def _slca_preset(benchmark: str, strategy: str, pretraining: str | None = None) -> dict[str, Any]:
    folder = _preset_dir() / "slca"
    files = [
        _preset_dir() / "slca.yaml",
        *(folder / f"{name}.yaml" for name in (benchmark, strategy)),
        folder / f"{benchmark}-{strategy}.yaml",
    ]
    if pretraining is not None:
        files += [folder / f"{pretraining}.yaml", folder / f"{pretraining}-{strategy}.yaml"]
    infix = f"{pretraining}-" if pretraining is not None else ""
    return keep_chosen_strategy_keys(
        deep_merge(
            _merged(files),
            {"name": f"slca-{benchmark}-{infix}{strategy}", "strategy": {"name": strategy}},
        )
    )


def _slca_name(rest: str) -> tuple[str, str, str | None] | None:
    """``rest`` of a name ``slca-<rest>`` as (benchmark, strategy, pretraining or None), or None
    where it names no preset."""
    benchmark, _, tail = rest.partition("-")
    pretraining, _, strategy = tail.rpartition("-")
    if strategy not in SLCA_STRATEGIES:
        return None
    if not pretraining:
        return (benchmark, strategy, None) if benchmark in SLCA_BENCHMARKS else None
    if benchmark in SLCA_PRETRAININGS.get(pretraining, ()):
        return benchmark, strategy, pretraining
    return None


def _family_preset(family: str, ssl: str, strategy: str) -> dict[str, Any]:
    lineage = [*([FAMILY_BASES[family]] if family in FAMILY_BASES else []), family]
    folder = _preset_dir()
    files = [
        *(folder / f"{name}.yaml" for name in lineage),
        folder / "ssl" / f"{ssl}.yaml",
        *(folder / name / f"{ssl}.yaml" for name in lineage),
        folder / "strategy" / f"{strategy}.yaml",
        *(folder / name / f"{strategy}.yaml" for name in lineage),
        folder / "ssl" / f"{ssl}-{strategy}.yaml",
    ]
    return keep_chosen_strategy_keys(
        deep_merge(
            _merged(files),
            {
                "name": f"{family}-{ssl}-{strategy}",
                "ssl": {"method": ssl},
                "strategy": {"name": strategy},
            },
        )
    )


def preset_names() -> list[str]:
    """Every preset name, the demo first."""
    return [
        "demo",
        DOMAINS,
        *(
            f"{family}-{ssl}-{strategy}"
            for family in FAMILIES
            for ssl in SSL_NAMES
            for strategy in PRESET_STRATEGIES
        ),
        *(
            f"slca-{benchmark}-{strategy}"
            for benchmark in SLCA_BENCHMARKS
            for strategy in SLCA_STRATEGIES
        ),
        *(
            f"slca-{benchmark}-{pretraining}-{strategy}"
            for pretraining, benchmarks in SLCA_PRETRAININGS.items()
            for benchmark in benchmarks
            for strategy in SLCA_STRATEGIES
        ),
    ]


def load_preset(name: str) -> dict[str, Any]:
    """The config tree of preset ``name``."""
    if name == "demo":
        return deep_merge(_family_preset(*DEMO), {"name": "demo"})
    if name == DOMAINS:
        domains = load_yaml(_preset_dir() / f"{DOMAINS}.yaml")
        return deep_merge(deep_merge(_family_preset(*DEMO), domains), {"name": DOMAINS})
    parts = name.split("-", 2)
    if len(parts) == 3:
        family, middle, strategy = parts
        if family in FAMILIES and middle in SSL_NAMES and strategy in PRESET_STRATEGIES:
            return _family_preset(family, middle, strategy)
        slca = _slca_name(f"{middle}-{strategy}") if family == "slca" else None
        if slca is not None:
            return _slca_preset(*slca)
    raise ConfigError(
        f"unknown preset '{name}'; `kaizen presets` lists them, or give the path of a YAML file"
    )
