"""What the config asks of the machine, checked before anything starts or is written."""

from __future__ import annotations

import torch

from kaizen.config import TrainConfig
from kaizen.errors import ConfigError


def _no_gpu_reason() -> str:
    if torch.version.cuda is None:
        return f"this PyTorch ({torch.__version__}) is built without CUDA"
    return f"this machine has no CUDA GPU that PyTorch {torch.__version__} can use"


def resolved_accelerator(train: TrainConfig) -> str:
    """``cuda`` or ``cpu``: what ``train.accelerator`` means on this machine (``auto``: CUDA
    when there is a GPU)."""
    if train.accelerator == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return train.accelerator


def check_hardware(train: TrainConfig) -> None:
    """Refuse, with one line naming the fix, settings this machine cannot run.

    - ``train.accelerator=cuda`` without a usable CUDA GPU;
    - ``train.devices`` above the number of GPUs when training on CUDA (on CPU, devices are
      processes and any number runs);
    - ``train.precision=16-mixed`` on CPU, where PyTorch has no float16 autocast (it would run
      as bf16-mixed while the results said 16-mixed).
    """
    if train.accelerator == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"train.accelerator=cuda but {_no_gpu_reason()}; use train.accelerator=cpu "
            "(or auto, which takes a GPU when there is one)"
        )
    accelerator = resolved_accelerator(train)
    if accelerator == "cuda":
        available = torch.cuda.device_count()
        if train.devices > available:
            raise ConfigError(
                f"train.devices={train.devices} but this machine has {available} CUDA "
                f"GPU{'s' if available != 1 else ''}; use train.devices={available} or fewer"
            )
    elif train.precision == "16-mixed":
        raise ConfigError(
            "train.precision=16-mixed needs a CUDA GPU (PyTorch has no float16 autocast on "
            "CPU); use train.precision=bf16-mixed or 32 on CPU"
        )
