"""A trained model on its own: preprocessing, backbone and classifier, uint8 images in.

A model folder (``models/v<k>/`` of a run) holds ``model.safetensors`` (the weights, adapters
merged), ``model.json`` (the architecture, the preprocessing, the classes, the metrics) and
``classes.json``. :func:`load_model` reads it back without the run, its data or its config.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from kaizen.data.augment import Normalize
from kaizen.errors import KaizenError
from kaizen.learner.learner import Learner
from kaizen.models.backbones import build_backbone
from kaizen.models.heads import Classifier, TaskHeads
from kaizen.models.lora import merge_lora

MODEL_FORMAT = "kaizen-cl model 1"
WEIGHTS_FILE = "model.safetensors"
SPEC_FILE = "model.json"


class NotAModelError(KaizenError):
    """A path that does not hold a kaizen-cl model."""


class InferenceModel(nn.Module):
    """Preprocessing, backbone and classifier in one module.

    Shapes: uint8 images (N, C, H, W) at the model's input size -> logits (N, K); classes of
    no task (per-task heads before their task) have logit -inf.
    """

    def __init__(self, normalize: Normalize, backbone: nn.Module, classifier: nn.Module) -> None:
        super().__init__()
        self.normalize = normalize
        self.backbone = backbone
        self.classifier = classifier

    def features(self, images: Tensor) -> Tensor:
        """uint8 (N, C, H, W) -> backbone features (N, F)."""
        return self.backbone(self.normalize(images))

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier(self.features(images))


@dataclass(frozen=True)
class ModelSpec:
    """What rebuilds a model: architecture, preprocessing and class names (``model.json``)."""

    architecture: dict[str, Any]
    class_names: tuple[str, ...]
    extra: dict[str, Any]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images the model takes."""
        channels, height, width = self.architecture["input_shape"]
        return int(channels), int(height), int(width)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "architecture": self.architecture,
            "classes": list(self.class_names),
            **self.extra,
        }


def inference_model(learner: Learner, normalize: Normalize) -> InferenceModel:
    """A CPU copy of ``learner``'s backbone and classifier with ``normalize`` in front; LoRA
    adapters are merged into their weights."""
    backbone = copy.deepcopy(learner.backbone).cpu().eval()
    merge_lora(backbone)
    classifier = copy.deepcopy(learner.classifier).cpu().eval()
    return InferenceModel(copy.deepcopy(normalize).cpu(), backbone, classifier).eval()


def architecture_of(
    model_config: dict[str, Any],
    input_shape: tuple[int, int, int],
    classifier: nn.Module,
    normalize: Normalize,
) -> dict[str, Any]:
    """The ``architecture`` entry of ``model.json``: enough to rebuild the module's shapes."""
    channels, height, _ = input_shape
    heads: dict[str, Any]
    if isinstance(classifier, TaskHeads):
        heads = {"kind": "per-task", "task_classes": classifier.task_classes}
    else:
        heads = {"kind": "single", "hidden_dim": model_config["classifier_hidden_dim"]}
    return {
        "backbone": model_config["backbone"],
        "stem": model_config["stem"],
        "width": model_config["width"],
        "patch_size": model_config["patch_size"],
        "depth": model_config["depth"],
        "stem_padding": model_config["stem_padding"],
        "backbone_input": model_config["image_size"] or height,
        "input_shape": list(input_shape),
        "num_classes": classifier.num_classes,
        "heads": heads,
        "normalize": {
            "mean": normalize.mean.flatten().tolist(),
            "std": normalize.std.flatten().tolist(),
            "size": normalize.size,
            "interpolation": normalize.interpolation,
        },
        "in_channels": channels,
    }


def save_model(folder: Path, model: InferenceModel, spec: ModelSpec) -> None:
    """Write ``model.safetensors``, ``model.json`` and ``classes.json`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    save_file(state, folder / WEIGHTS_FILE, metadata={"format": MODEL_FORMAT})
    (folder / SPEC_FILE).write_text(json.dumps(spec.to_json(), indent=2) + "\n")
    (folder / "classes.json").write_text(json.dumps(list(spec.class_names), indent=2) + "\n")


def read_spec(folder: Path) -> ModelSpec:
    """The ``model.json`` of ``folder``; :class:`NotAModelError` when it is not a model."""
    path = folder / SPEC_FILE
    try:
        plain = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise NotAModelError(
            f"{folder} is not a kaizen-cl model ({SPEC_FILE}: {error}); give a run directory or "
            "one of its models/v<k> folders"
        ) from error
    found = plain.get("format") if isinstance(plain, dict) else None
    if found != MODEL_FORMAT:
        raise NotAModelError(
            f"{path} is not a kaizen-cl model file (format {found!r}, expected {MODEL_FORMAT!r})"
        )
    extra = {k: v for k, v in plain.items() if k not in ("format", "architecture", "classes")}
    return ModelSpec(plain["architecture"], tuple(plain["classes"]), extra)


def build_model(spec: ModelSpec) -> InferenceModel:
    """An :class:`InferenceModel` of ``spec``'s shapes, randomly initialised."""
    arch = spec.architecture
    backbone = build_backbone(
        arch["backbone"],
        stem=arch["stem"],
        width=arch["width"],
        in_channels=arch["in_channels"],
        image_size=arch["backbone_input"],
        patch_size=arch["patch_size"],
        depth=arch["depth"],
        stem_padding=arch.get("stem_padding"),  # absent from models saved before it existed
    )
    heads = arch["heads"]
    classifier: nn.Module
    if heads["kind"] == "per-task":
        classifier = TaskHeads(backbone.feature_dim, arch["num_classes"], heads["task_classes"])
    else:
        classifier = Classifier(backbone.feature_dim, arch["num_classes"], heads["hidden_dim"])
    norm = arch["normalize"]
    normalize = Normalize(
        torch.tensor(norm["mean"]),
        torch.tensor(norm["std"]),
        norm["size"],
        norm.get("interpolation", "bilinear"),  # absent from models saved before it existed
    )
    return InferenceModel(normalize, backbone, classifier).eval()


def load_model_folder(folder: Path) -> tuple[InferenceModel, ModelSpec]:
    """The model saved in ``folder`` and its spec."""
    spec = read_spec(folder)
    model = build_model(spec)
    try:
        state = load_file(folder / WEIGHTS_FILE)
        model.load_state_dict(state)
    except (OSError, SafetensorError, RuntimeError) as error:
        raise NotAModelError(
            f"cannot load the weights {folder / WEIGHTS_FILE}: {str(error).splitlines()[0]}"
        ) from error
    return model.eval(), spec
