"""``kaizen update``: one more task on a finished run, from data that arrived after it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from kaizen.config import update_overrides
from kaizen.data.imageset import ImageShape
from kaizen.data.incoming import read_arrival
from kaizen.data.stream import load_scenario
from kaizen.data.updates import (
    Update,
    build_update,
    read_updates,
    split_arrival,
    write_update,
)
from kaizen.engine.trainer import ContinualTrainer
from kaizen.errors import ConfigError, DataError, KaizenError
from kaizen.eval.results import Result
from kaizen.production.model import read_spec
from kaizen.production.versions import ModelVersions, models_folder, version_name
from kaizen.storage.rundir import read_run_config, with_cache_in_run_dir
from kaizen.storage.runs import is_complete, load_run


@dataclass(frozen=True)
class UpdateOutcome:
    """What an update did.

    Attributes:
        result: the run's results with the update's task appended.
        version: the update's model version (None when ``train.save_models`` is off).
        promoted: whether it was put in service.
        reason: the gate's one-line decision.
    """

    result: Result
    version: str | None
    promoted: bool
    reason: str


def update(
    run_dir: str | Path,
    data: str | Path,
    *,
    label_fraction: float = 1.0,
    test: str | Path | None = None,
    test_fraction: float = 0.2,
    overrides: Sequence[str] = (),
    console: Console | None = None,
) -> UpdateOutcome:
    """Train one more task on the finished run in ``run_dir`` from ``data`` (a folder of
    ``<class>/*`` and ``_unlabelled/*``, an ``.npz`` or a CSV of ``path,label``).

    ``test_fraction`` of each labelled class is held out for testing (seeded), unless ``test``
    gives the test data; ``label_fraction`` of the labelled training images keep their label.
    ``overrides`` may set the task's budget and rates (:data:`kaizen.config.UPDATE_KEYS`:
    ``train.epochs=20``, ``optim.lr=0.1``), runtime keys and the gate (``gate.max_old_drop=0.1``);
    they are kept with the update, so that a resume of it trains with them too, and later tasks
    do not inherit them. The task trains with the run's strategy, its teacher and replay; the
    run's accuracy matrix gets a row.
    """
    run_dir, console = Path(run_dir), console or Console(stderr=True)
    if not 0.0 <= label_fraction <= 1.0:
        raise ConfigError(f"--label-fraction must lie in [0, 1], got {label_fraction}")
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"--test-fraction must lie strictly between 0 and 1, got {test_fraction}")
    config = update_overrides(read_run_config(run_dir), overrides)
    if not is_complete(run_dir):
        raise KaizenError(
            f"{run_dir} is not finished: continue it with `kaizen resume {run_dir}`, then update"
        )
    earlier = read_updates(run_dir)
    scenario = load_scenario(with_cache_in_run_dir(config, run_dir))
    _check_earlier_updates_trained(run_dir, len(scenario[1]), len(earlier))
    base = scenario[0]
    known = earlier[-1].class_names if earlier else base.class_names
    channels, height, width = base.train.images.shape[1:]
    shape = ImageShape(channels, height, width, config.data.image_size)
    arrival = read_arrival(Path(data), shape)
    for skipped in arrival.skipped:
        console.print(
            f"[yellow]warning:[/yellow] cannot decode {skipped}; it is left out", soft_wrap=True
        )
    number = len(earlier) + 1
    if test is not None:
        train, held_out = arrival, read_arrival(Path(test), shape)
    else:
        train, held_out = split_arrival(arrival, test_fraction, config.seed + number)
    staged, warnings = build_update(
        number, known, train, held_out, label_fraction, tuple(overrides)
    )
    if config.model.heads == "per-task":
        _check_only_new_classes(staged, len(known))
    # the trainer checks the data and the model before the update is written
    trainer = ContinualTrainer(
        config, run_dir, console, [*earlier, staged], scenario, hooks=[ModelVersions]
    )
    about = {
        "data": str(data),
        "test": str(test) if test is not None else f"held out: {test_fraction:g} per class",
        "skipped_files": list(arrival.skipped),
    }
    write_update(run_dir, staged, about)
    for warning in warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)
    result = trainer.run(resume=True)
    return outcome_of(run_dir, result)


def _check_earlier_updates_trained(run_dir: Path, scenario_tasks: int, updates: int) -> None:
    """Every update registered in ``run_dir`` has trained its task: an interrupted one goes on
    with its own settings (``kaizen resume``) before another may start."""
    trained = len(load_run(run_dir).results["tasks"])
    if trained < scenario_tasks + updates:
        raise KaizenError(
            f"update {updates} of {run_dir} was interrupted: finish it with "
            f"`kaizen resume {run_dir}`, then update"
        )


def _check_only_new_classes(staged: Update, known: int) -> None:
    """A run with one head per task learns each class in one task: an update of it may bring
    new classes only."""
    repeated = [staged.class_names[c] for c in staged.classes if c < known]
    if repeated:
        raise DataError(
            f"the run has one head per task (model.heads=per-task), so an update brings new "
            f"classes only, and {', '.join(repeated)} are known: leave their images out"
        )


def outcome_of(run_dir: Path, result: Result) -> UpdateOutcome:
    """The gate's decision on the newest task of ``run_dir``."""
    if not result.config.train.save_models:
        return UpdateOutcome(result, None, True, "trained (train.save_models is off: no version)")
    name = version_name(len(result.tasks) - 1)
    spec = read_spec(models_folder(run_dir) / name)
    gate = spec.extra.get("gate")
    promoted = spec.extra["status"] == "released"
    reason = gate["reason"] if gate else "put in service (no version was in service)"
    return UpdateOutcome(result, name, promoted, reason)
