"""Lightning Fabric for a run: the machine checked, threads, precision, strategy and loggers."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.fabric import Fabric
from lightning.fabric.strategies import DDPStrategy

from kaizen.config import RunConfig
from kaizen.engine.experiment_log import build_loggers
from kaizen.engine.hardware import check_hardware
from kaizen.errors import ConfigError

FABRIC_PRECISION = {"32": "32-true", "bf16-mixed": "bf16-mixed", "16-mixed": "16-mixed"}


def start_fabric(config: RunConfig, out_dir: Path) -> Fabric:
    """Fabric launched as ``config.train`` says, its loggers writing into ``out_dir``; the
    hardware and the batch split over processes are checked first (ConfigError)."""
    train = config.train
    check_hardware(train)
    if train.num_threads is not None:
        torch.set_num_threads(train.num_threads)
    fabric = Fabric(
        accelerator=train.accelerator,
        devices=train.devices,
        num_nodes=train.num_nodes,
        strategy=(DDPStrategy(find_unused_parameters=True) if train.strategy == "ddp" else "auto"),
        precision=FABRIC_PRECISION[train.precision],  # type: ignore[arg-type]
        loggers=build_loggers(train.logger, out_dir),
    )
    fabric.launch()
    check_parallel_config(config, fabric)
    return fabric


def check_parallel_config(config: RunConfig, fabric: Fabric) -> None:
    """Batches must split evenly over processes; synchronised BatchNorm needs an accelerator."""
    world = fabric.world_size
    train, replay = config.train, config.replay
    for key, size in (
        ("train.batch_size", train.batch_size),
        ("replay.batch_size", replay.batch_size),
    ):
        if size % world:
            raise ConfigError(
                f"{key}={size} does not split over {world} processes; use a multiple of {world}"
            )
    if train.sync_batchnorm and fabric.device.type == "cpu":
        raise ConfigError(
            "train.sync_batchnorm=true needs GPUs (PyTorch synchronises BatchNorm on accelerators "
            "only); set it to false on CPU"
        )
