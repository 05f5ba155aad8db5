"""The experiment log of a run through Lightning Fabric's loggers (``train.logger``)."""

from __future__ import annotations

from pathlib import Path

from lightning.fabric.loggers import CSVLogger, Logger, TensorBoardLogger

from kaizen.errors import ConfigError

LOG_FOLDER = "logs"


def build_loggers(kind: str, run_dir: Path) -> list[Logger]:
    """The loggers of ``train.logger=kind``, writing under ``run_dir/logs/version_<n>`` (a
    resumed run adds a version)."""
    if kind == "none":
        return []
    if kind == "csv":
        return [CSVLogger(run_dir, name=LOG_FOLDER, flush_logs_every_n_steps=10)]
    try:
        return [TensorBoardLogger(run_dir, name=LOG_FOLDER, default_hp_metric=False)]
    except ModuleNotFoundError as error:
        raise ConfigError(
            "train.logger=tensorboard needs the tensorboard or tensorboardX package: "
            "pip install tensorboardX, or use train.logger=csv"
        ) from error
