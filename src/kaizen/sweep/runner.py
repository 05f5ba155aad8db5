"""A grid of runs over SSL methods, strategies and seeds, run one after another, then compared."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from kaizen.api import resolve_config, resume, run
from kaizen.config import SSL_SETTINGS, STRATEGY_SETTINGS, to_plain
from kaizen.errors import ConfigError, KaizenError
from kaizen.presets import preset_names
from kaizen.report.compare import compare_runs
from kaizen.storage.rundir import holds_run, read_run_config
from kaizen.storage.runs import RESULTS_FILE, is_complete

Runner = Callable[[str, Path, list[str]], object]
"""Runs one config source into a run directory with ``key=value`` overrides."""

Resumer = Callable[[Path], object]
"""Continues the interrupted run in a run directory from its newest checkpoint."""


class SweepIncomplete(KaizenError):
    """Some points of a sweep failed; the others ran and were compared."""


def run_name(ssl_method: str, strategy: str, seed: int) -> str:
    """The run directory (and config name) of one grid point: ``<ssl>-<strategy>-seed<seed>``."""
    return f"{ssl_method}-{strategy}-seed{seed}"


def config_source(base: str, ssl_method: str, strategy: str) -> str:
    """The config a grid point starts from, before its overrides.

    When ``base`` names a family of presets ``<base>-<ssl>-<strategy>`` (``cifar100``), the
    point takes the family's preset of its SSL method (of its strategy when there is one), so
    that each SSL method keeps its own settings (VICReg's learning rate, for one), which an
    ``ssl.method`` override alone would not bring. A family without SSL methods,
    ``<base>-<strategy>`` (``slca-cifar100``, with ``--ssl none``), gives each strategy its own
    preset (SLCA++'s learning rates, the joint bound's single head). Any other base, a preset or
    a YAML file, is used as it is.
    """
    names = preset_names()
    exact = f"{base}-{ssl_method}-{strategy}"
    family = [name for name in names if name.startswith(f"{base}-{ssl_method}-")]
    if exact in names:
        return exact
    if f"{base}-{strategy}" in names:
        return f"{base}-{strategy}"
    if family:
        return family[0]
    members = [name for name in names if name.startswith(f"{base}-")]
    if base in names or not members:
        return base
    methods = sorted({name[len(base) + 1 :].split("-")[0] for name in members} & set(SSL_SETTINGS))
    choice = f"; its SSL methods are {', '.join(methods)}" if methods else ""
    raise ConfigError(
        f"the preset family '{base}' has no preset of SSL method '{ssl_method}' and strategy "
        f"'{strategy}'{choice} (`kaizen presets` lists every preset)"
    )


def check_names(ssl_methods: Sequence[str], strategies: Sequence[str]) -> None:
    """Refuse an SSL method or a strategy that does not exist, naming the ones that do."""
    for given, known, option in (
        (ssl_methods, SSL_SETTINGS, "--ssl"),
        (strategies, STRATEGY_SETTINGS, "--strategies"),
    ):
        for name in given:
            if name not in known:
                kind = "SSL method" if option == "--ssl" else "strategy"
                raise ConfigError(
                    f"unknown {kind} '{name}' in {option}: choose from {', '.join(known)}"
                )


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
    resumer: Resumer | None = None,
) -> list[Path]:
    """Run every (SSL method, strategy, seed) into ``out_root/<ssl>-<strategy>-seed<seed>``.

    Every point's config is resolved before the first run starts, so a bad name or override
    fails at once. Points run one after another with ``overrides`` followed by
    ``ssl.method=``, ``strategy.name=``, ``seed=`` and ``name=`` (the grid's values win). A
    point whose results.json is complete is skipped; a point interrupted part-way (killed, or
    stopped by a signal) is resumed from its newest checkpoint when its directory holds the
    same config, so a sweep can span several sessions. A point that fails (a non-finite loss,
    say) is logged and the sweep goes on. Finally the complete points are compared into
    ``out_root/compare``, and :class:`SweepIncomplete` names the points that failed.

    Args:
        base: a preset, a preset family (see :func:`config_source`) or a YAML file.
        runner: runs one point; by default :func:`kaizen.api.run`.
        log: receives one line per point (run, resumed, skipped or failed).
        resumer: continues an interrupted point; by default :func:`kaizen.api.resume`.

    Returns:
        The run directories of every point, in grid order.
    """
    grid = [
        (ssl, strategy, seed) for ssl in ssl_methods for strategy in strategies for seed in seeds
    ]
    if not grid:
        raise KaizenError("sweep needs at least one SSL method, one strategy and one seed")
    check_names(ssl_methods, strategies)
    plan = [
        (
            out_root / run_name(ssl, strategy, seed),
            config_source(base, ssl, strategy),
            [*overrides, *_grid_overrides(ssl, strategy, seed)],
        )
        for ssl, strategy, seed in grid
    ]
    configs = [
        to_plain(resolve_config(source, point_overrides)) for _, source, point_overrides in plan
    ]
    run_point, resume_point = runner or run, resumer or resume
    failures: list[str] = []
    for index, ((run_dir, source, point_overrides), config) in enumerate(
        zip(plan, configs, strict=True), start=1
    ):
        where = f"[{index}/{len(plan)}] {run_dir}"
        try:
            if is_complete(run_dir):
                log(f"{where}: complete, skipped")
            elif holds_run(run_dir):
                _check_same_config(run_dir, config)
                log(f"{where}: interrupted earlier, resuming")
                resume_point(run_dir)
            else:
                log(f"{where}: running {source}")
                run_point(source, run_dir, point_overrides)
        except KaizenError as error:
            log(f"{where}: failed: {error}")
            failures.append(f"{run_dir.name} ({error})")
    run_dirs = [run_dir for run_dir, _, _ in plan]
    if any(is_complete(run_dir) for run_dir in run_dirs):
        compare_runs(
            [run_dir for run_dir in run_dirs if (run_dir / RESULTS_FILE).is_file()],
            out_root / "compare",
        )
    if failures:
        raise SweepIncomplete(
            f"{len(failures)} of {len(plan)} sweep points failed: {'; '.join(failures)}; "
            "fix the cause and run the same sweep again (complete points are skipped)"
        )
    return run_dirs


def _check_same_config(run_dir: Path, config: dict[str, object]) -> None:
    """An interrupted point is resumed only when it was started with the point's config."""
    if to_plain(read_run_config(run_dir)) != config:
        raise KaizenError(
            f"{run_dir} holds an interrupted run of another config; move it away or finish it "
            f"with `kaizen resume {run_dir}`"
        )
