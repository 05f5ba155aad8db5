"""The JSON report of ``kaizen bench``: the machine, the command, each measurement and the
ratios between them."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

import torch

from kaizen.bench.scaling import flatness, linear_drift
from kaizen.config import RunConfig, to_plain
from kaizen.version import __version__

_CPU_INFO = Path("/proc/cpuinfo")


def _cpu_model() -> str:
    try:
        for line in _CPU_INFO.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(threads: int) -> dict[str, Any]:
    """Platform, CPU model, cores (all and usable) and the torch intra-op ``threads`` used."""
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "torch_threads": threads,
    }


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU model."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return _cpu_model()


def command_line() -> str:
    """The command line of this process, program name without its directory."""
    return shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])


def build_report(
    config: RunConfig,
    settings: dict[str, Any],
    kaizen_step: dict[str, Any],
    reference_step: dict[str, Any],
    task_seconds: list[float],
    inputs: dict[str, dict[str, Any]] | None = None,
    profile: dict[str, Any] | None = None,
    layouts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything one bench run measured, with the machine, versions, command and config.

    ``inputs`` holds each pipeline's input measured alone (``kaizen``, ``reference``),
    ``profile`` the Kaizen step's profile and ``layouts`` the alternating layout comparison, each
    where taken.
    """
    device = torch.device(kaizen_step["device"])
    scaling = None
    if task_seconds:
        scaling = {
            "seconds_per_task": task_seconds,
            "max_over_min": flatness(task_seconds),
            "linear_drift": linear_drift(task_seconds),
            "steps_per_task": settings["steps_per_task"],
        }
    return {
        "machine": machine_info(config.train.num_threads or torch.get_num_threads()),
        "device": device_name(device),
        "torch": torch.__version__,
        "kaizen": __version__,
        "command": command_line(),
        "settings": settings,
        "config": to_plain(config),
        "kaizen_step": kaizen_step,
        "reference_step": reference_step,
        "speedup": kaizen_step["images_per_second"] / reference_step["images_per_second"],
        "input_alone": inputs,
        "kaizen_profile": profile,
        "layouts": layouts,
        "task_scaling": scaling,
    }


def write_report(report: dict[str, Any], path: Path) -> None:
    """Write the report as indented JSON, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median seconds per step (the lower middle one of an even number), with
    ``seconds_per_step_of_runs``: every run's seconds per step, in the order they were taken."""
    ranked = sorted(runs, key=lambda run: run["seconds_per_step"])
    return {
        **ranked[(len(ranked) - 1) // 2],
        "seconds_per_step_of_runs": [run["seconds_per_step"] for run in runs],
    }
