"""What a run records of the machine it ran on: versions, device, precision, memory peaks."""

from __future__ import annotations

import platform
import resource

import torch
from lightning.fabric import Fabric

from kaizen.config import RunConfig
from kaizen.version import __version__


def run_environment(fabric: Fabric, config: RunConfig) -> dict[str, str]:
    """kaizen-cl's and torch's versions, the device, precision, threads and processes."""
    device = fabric.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine()
    return {
        "kaizen": __version__,
        "torch": torch.__version__,
        "device": f"{device.type}: {name}",
        "precision": config.train.precision,
        "threads": str(torch.get_num_threads()),
        "processes": str(fabric.world_size),
    }


def peak_memory(device: torch.device) -> tuple[int, str]:
    """The memory peak since the last call and how it was measured: the CUDA allocator's peak
    (reset here) on a GPU, the process's max RSS on a CPU."""
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        return int(peak), "cuda max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process max RSS"
