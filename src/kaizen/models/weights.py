"""Pre-trained backbone weights: safetensors files, torch checkpoints and kaizen-cl run
directories, their keys normalised to the backbone's and checked in one line.

torchvision ResNet state dicts (without ``fc.*``) load into width-1.0 ResNets with the
ImageNet stem; timm ViT state dicts load into the ViT of the same width, their position
embeddings resampled to its patch grid; a run directory gives the backbone of its newest valid
checkpoint.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor, nn

from kaizen.errors import ConfigError
from kaizen.models.vit import VisionTransformer, vit_state_for
from kaizen.storage.checkpoints import CheckpointStore
from kaizen.storage.rundir import CHECKPOINT_FOLDER

_CHECKPOINT_KEYS = ("state_dict", "model", "backbone")
_KEY_PREFIXES = ("module.", "backbone.", "encoder.")
_HEAD_PREFIX = "fc."
_LEARNER_BACKBONE_PREFIX = "backbone."


def _strip_prefixes(key: str) -> str:
    """Remove any leading wrapper prefixes ("module.", "backbone.", "encoder.") from a key."""
    stripped = True
    while stripped:
        stripped = False
        for prefix in _KEY_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                stripped = True
    return key


def _extract_state_dict(checkpoint: object, path: Path) -> dict[str, Tensor]:
    """The backbone state dict inside a checkpoint: unwrapped, prefix-stripped, without fc.*."""
    if isinstance(checkpoint, Mapping):
        for key in _CHECKPOINT_KEYS:
            if isinstance(checkpoint.get(key), Mapping):
                checkpoint = checkpoint[key]
                break
    if not isinstance(checkpoint, Mapping) or not all(
        isinstance(value, Tensor) for value in checkpoint.values()
    ):
        raise ConfigError(
            f"backbone weights {path} hold no state dict; expected a mapping of tensors, "
            f"optionally under one of: {', '.join(_CHECKPOINT_KEYS)}"
        )
    state: dict[str, Tensor] = {}
    for key, value in checkpoint.items():
        name = _strip_prefixes(key)
        if not name.startswith(_HEAD_PREFIX):
            state[name] = value
    return state


def _one_line(exc: Exception) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    message = str(exc).strip()
    return message.splitlines()[0] if message else type(exc).__name__


def _read_weights(path: Path) -> object:
    """The contents of a weights file: ``.safetensors`` by safetensors, else by ``torch.load``."""
    try:
        if path.suffix == ".safetensors":
            return load_file(path, device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, pickle.UnpicklingError, SafetensorError) as exc:
        raise ConfigError(f"cannot read backbone weights {path}: {_one_line(exc)}") from exc


def _run_backbone_state(run_dir: Path) -> dict[str, Tensor]:
    """The backbone entries (``backbone.*``) of the learner in a run's newest valid checkpoint.

    The checkpoint is the one ``kaizen resume`` would continue from: the newest in
    ``run_dir/checkpoints`` whose checksum matches and that loads.
    """
    problems: list[str] = []
    found = CheckpointStore(run_dir / CHECKPOINT_FOLDER, keep=1, warn=problems.append).load_latest()
    if found is None:
        reason = f" ({len(problems)} corrupt)" if problems else ""
        raise ConfigError(
            f"backbone weights {run_dir} is a directory without a readable checkpoint in "
            f"{CHECKPOINT_FOLDER}/{reason}; point model.weights at a run directory with "
            "checkpoints or at a weights file"
        )
    state, path = found
    learner = state.get("learner")
    if not isinstance(learner, Mapping):
        raise ConfigError(f"checkpoint {path} holds no learner state; it was not written by a run")
    return {
        key[len(_LEARNER_BACKBONE_PREFIX) :]: value
        for key, value in learner.items()
        if key.startswith(_LEARNER_BACKBONE_PREFIX)
    }


def load_backbone_weights(backbone: nn.Module, path: Path) -> None:
    """Load backbone weights from a file or a run directory, strictly.

    ``path`` is a ``.safetensors`` file, a ``torch.save``-d file (``.pth``, ``.pt``, ``.bin``)
    or a kaizen-cl run directory, whose newest valid checkpoint gives the ``backbone.*``
    entries of its learner. A file holds a bare state dict or a checkpoint holding one under
    ``"state_dict"``, ``"model"`` or ``"backbone"``; the prefixes ``module.``, ``backbone.`` and
    ``encoder.`` are stripped and ``fc.*`` (torchvision's classifier) dropped. For a ViT the
    head and final norm are not loaded and ``pos_embed`` is resampled to the model's patch
    grid (:func:`kaizen.models.vit.vit_state_for`). Raises ``ConfigError`` when the weights
    cannot be read or their keys or shapes do not match the backbone (naming the first
    offending keys).
    """
    path = Path(path)
    if path.is_dir():
        checkpoint: object = _run_backbone_state(path)
    elif path.is_file():
        checkpoint = _read_weights(path)
    else:
        raise ConfigError(f"backbone weights file not found: {path}")
    state = _extract_state_dict(checkpoint, path)
    is_vit = isinstance(backbone, VisionTransformer)
    if isinstance(backbone, VisionTransformer):
        state = vit_state_for(backbone, state)

    expected = backbone.state_dict()
    # BatchNorm fills in a missing ``num_batches_tracked`` itself (older checkpoints lack it).
    missing = [
        key for key in expected if key not in state and not key.endswith("num_batches_tracked")
    ]
    unexpected = [key for key in state if key not in expected]
    wrong_shape = [
        f"{key} {tuple(state[key].shape)} vs {tuple(value.shape)}"
        for key, value in expected.items()
        if key in state and state[key].shape != value.shape
    ]
    problems = [
        f"{label} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatch (file vs model)", wrong_shape),
        )
        if keys
    ]
    if problems:
        hint = "the backbone name and patch size" if is_vit else "the backbone name, stem and width"
        raise ConfigError(
            f"backbone weights {path} do not fit the backbone: {'; '.join(problems)}; check {hint}"
        )
    backbone.load_state_dict(state, strict=True)
