"""The Python entry point: ``kaizen.run(config) -> Result``, the same path the CLI takes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from kaizen.config import (
    RunConfig,
    build_config,
    load_yaml,
    runtime_overrides,
    update_overrides,
)
from kaizen.data.updates import read_updates
from kaizen.engine.trainer import ContinualTrainer
from kaizen.eval.results import Result
from kaizen.presets import load_preset
from kaizen.production.versions import ModelVersions
from kaizen.storage.rundir import check_run_dir_path, read_run_config


def resolve_config(
    source: str | Path | RunConfig | dict[str, Any], overrides: Sequence[str] = ()
) -> RunConfig:
    """A validated config from a preset name, a YAML path, a config tree or a config object."""
    if isinstance(source, RunConfig):
        tree = source.model_dump()
    elif isinstance(source, dict):
        tree = source
    elif Path(source).suffix in (".yaml", ".yml") or Path(source).is_file():
        tree = load_yaml(Path(source))
    else:
        tree = load_preset(str(source))
    return build_config(tree, overrides)


def run(
    config: str | Path | RunConfig | dict[str, Any],
    out_dir: str | Path = "runs/latest",
    overrides: Sequence[str] = (),
    console: Console | None = None,
    force: bool = False,
) -> Result:
    """Run a continual sequence in the run directory ``out_dir``.

    Args:
        config: a preset name (``kaizen presets``), a YAML file, a dict tree or a RunConfig.
        out_dir: the run directory; one that already holds a run is refused unless ``force``.
        overrides: dotted ``key=value`` settings applied on top, e.g. ``["train.epochs=2"]``.
        force: replace a run already in ``out_dir``.

    The config and the data are checked before anything in ``out_dir`` is touched.
    """
    resolved = resolve_config(config, overrides)
    check_run_dir_path(Path(out_dir))
    trainer = ContinualTrainer(resolved, Path(out_dir), console, hooks=[ModelVersions])
    trainer.start_run_dir(force)
    return trainer.run()


def resume(
    out_dir: str | Path, console: Console | None = None, overrides: Sequence[str] = ()
) -> Result:
    """Continue the run in ``out_dir`` from its newest valid checkpoint.

    ``overrides`` may change where and how it executes (:data:`kaizen.config.RUNTIME_KEYS`:
    ``train.accelerator=cpu`` continues a GPU run on a CPU, say), nothing else. An update that
    was interrupted continues too, with the settings it was started with (its budget and
    rates, :data:`kaizen.config.UPDATE_KEYS`, included); ``overrides`` apply over them.
    """
    out_dir = Path(out_dir)
    updates = read_updates(out_dir)
    # the newest update's settings: those of the task still to train when it was interrupted
    started_with = list(updates[-1].overrides) if updates else []
    config = update_overrides(read_run_config(out_dir), started_with)
    config = runtime_overrides(config, overrides)
    trainer = ContinualTrainer(config, out_dir, console, updates, hooks=[ModelVersions])
    return trainer.run(resume=True)
