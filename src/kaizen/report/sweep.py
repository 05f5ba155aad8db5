"""A grid of runs over SSL methods, strategies and seeds, run one after another, then compared."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from kaizen.errors import KaizenError
from kaizen.presets import preset_names
from kaizen.report.compare import compare_runs
from kaizen.report.runs import is_complete

Runner = Callable[[str, Path, list[str]], object]
"""Runs one config source into a run directory with ``key=value`` overrides."""


def run_name(ssl_method: str, strategy: str, seed: int) -> str:
    """The run directory (and config name) of one grid point: ``<ssl>-<strategy>-seed<seed>``."""
    return f"{ssl_method}-{strategy}-seed{seed}"


def config_source(base: str, ssl_method: str, strategy: str) -> str:
    """The config a grid point starts from, before its overrides.

    When ``base`` names a family of presets ``<base>-<ssl>-<strategy>`` (``cifar100``), the
    point takes the family's preset of its SSL method (of its strategy when there is one), so
    that each SSL method keeps its own settings (VICReg's learning rate, for one), which an
    ``ssl.method`` override alone would not bring. Any other base, a preset or a YAML file, is
    used as it is.
    """
    names = preset_names()
    exact = f"{base}-{ssl_method}-{strategy}"
    family = [name for name in names if name.startswith(f"{base}-{ssl_method}-")]
    if exact in names:
        return exact
    return family[0] if family else base


def _grid_overrides(ssl_method: str, strategy: str, seed: int) -> list[str]:
    return [
        f"ssl.method={ssl_method}",
        f"strategy.name={strategy}",
        f"seed={seed}",
        f"name={run_name(ssl_method, strategy, seed)}",
    ]


def sweep(
    base: str,
    ssl_methods: Sequence[str],
    strategies: Sequence[str],
    seeds: Sequence[int],
    out_root: Path,
    overrides: Sequence[str],
    runner: Runner | None = None,
    log: Callable[[str], object] = lambda message: None,
) -> list[Path]:
    """Run every (SSL method, strategy, seed) into ``out_root/<ssl>-<strategy>-seed<seed>``.

    Every point's config is resolved before the first run starts, so a bad name or override
    fails at once. Points run one after another with ``overrides`` followed by
    ``ssl.method=``, ``strategy.name=``, ``seed=`` and ``name=`` (the grid's values win); a
    point whose results.json is complete is skipped, so an interrupted sweep resumes where it
    stopped. Finally all points are compared into ``out_root/compare``.

    Args:
        base: a preset, a preset family (see :func:`config_source`) or a YAML file.
        runner: runs one point; by default :func:`kaizen.api.run`.
        log: receives one line per point (run or skipped).

    Returns:
        The run directories of every point, in grid order.
    """
    from kaizen.api import resolve_config, run

    grid = [
        (ssl, strategy, seed) for ssl in ssl_methods for strategy in strategies for seed in seeds
    ]
    if not grid:
        raise KaizenError("sweep needs at least one SSL method, one strategy and one seed")
    plan = [
        (
            out_root / run_name(ssl, strategy, seed),
            config_source(base, ssl, strategy),
            [*overrides, *_grid_overrides(ssl, strategy, seed)],
        )
        for ssl, strategy, seed in grid
    ]
    for _, source, point_overrides in plan:
        resolve_config(source, point_overrides)
    run_point = runner or run
    for index, (run_dir, source, point_overrides) in enumerate(plan, start=1):
        if is_complete(run_dir):
            log(f"[{index}/{len(plan)}] {run_dir}: complete, skipped")
            continue
        log(f"[{index}/{len(plan)}] {run_dir}: running {source}")
        run_point(source, run_dir, point_overrides)
    compare_runs([run_dir for run_dir, _, _ in plan], out_root / "compare")
    return [run_dir for run_dir, _, _ in plan]
