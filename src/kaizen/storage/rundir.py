"""The run directory: what it holds, refusing to overwrite a run, and reading one back.

A run directory holds ``config.yaml`` (the resolved config), ``checkpoints/`` (the last K full
run states with their SHA-256 files), ``results.json`` (deterministic results), ``costs.json``
(wall time, images, peak memory per task) and ``metrics.csv`` (one row per task).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from kaizen.config import RunConfig, load_yaml, to_plain, upgrade_layout, validate_config
from kaizen.errors import KaizenError
from kaizen.storage.atomic import atomic_write_text

CONFIG_FILE = "config.yaml"
RUN_FILES = ("config.yaml", "results.json", "costs.json", "metrics.csv")
CHECKPOINT_FOLDER = "checkpoints"


def holds_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` already holds (part of) a run."""
    return any((run_dir / name).exists() for name in (*RUN_FILES, CHECKPOINT_FOLDER))


def occupied_error(run_dir: Path) -> KaizenError:
    """The refusal to start a run where one already is."""
    return KaizenError(
        f"{run_dir} already holds a run; continue it with `kaizen resume {run_dir}` "
        "or start over with --force"
    )


def check_run_dir_path(run_dir: Path) -> None:
    """Refuse a run directory path that names a file, or a folder under a file."""
    for path in (run_dir, *run_dir.parents):
        if path.is_dir():
            return
        if path.exists():
            where = "is a file" if path == run_dir else f"lies under {path}, which is a file"
            raise KaizenError(
                f"the run directory {run_dir} {where}, not a folder: choose another --out"
            )


def start_run_dir(run_dir: Path, config: RunConfig, force: bool) -> None:
    """Make ``run_dir`` ready for a new run and write its config.

    A directory that already holds a run is refused unless ``force``, which removes that run's
    files (only the files a run writes; anything else in the folder stays). A path that names
    a file is refused (:func:`check_run_dir_path`).
    """
    check_run_dir_path(run_dir)
    if holds_run(run_dir):
        if not force:
            raise occupied_error(run_dir)
        shutil.rmtree(run_dir / CHECKPOINT_FOLDER, ignore_errors=True)
        for name in RUN_FILES:
            (run_dir / name).unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / CONFIG_FILE, yaml.safe_dump(to_plain(config), sort_keys=False))


def read_run_config(run_dir: Path) -> RunConfig:
    """The config a run directory was started with."""
    path = run_dir / CONFIG_FILE
    if not path.exists():
        raise KaizenError(
            f"{run_dir} holds no run ({CONFIG_FILE} is missing); start one with `kaizen run`"
        )
    return validate_config(upgrade_layout(load_yaml(path)))


def with_cache_in_run_dir(config: RunConfig, run_dir: Path) -> RunConfig:
    """``config`` with ``data.cache_dir`` resolved inside ``run_dir`` (refused if it leaves it)."""
    if config.data.cache_dir is None:
        return config
    cache = inside_run_dir(run_dir, config.data.cache_dir, "data.cache_dir")
    return config.model_copy(update={"data": config.data.model_copy(update={"cache_dir": cache})})


def inside_run_dir(run_dir: Path, path: Path, key: str) -> Path:
    """``path`` resolved against ``run_dir``; a path that leaves the run directory is refused."""
    resolved = (run_dir / path).resolve()
    root = run_dir.resolve()
    if resolved != root and root not in resolved.parents:
        raise KaizenError(
            f"{key}={path} points outside the run directory {run_dir}; use a path inside it"
        )
    return resolved
