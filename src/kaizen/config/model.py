"""The network (``model:``): backbone, classifier heads, pre-trained weights."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from kaizen.config.section import Section
from kaizen.errors import ConfigError


def check_patch_grid(image_size: int, patch_size: int) -> int:
    """The side of the patch grid, ``image_size // patch_size``.

    Raises ``ConfigError`` unless both are positive and ``patch_size`` divides ``image_size``.
    """
    if patch_size < 1 or image_size < 1:
        raise ConfigError(
            f"ViT image size and patch size must be >= 1, got image size {image_size} and "
            f"patch size {patch_size}"
        )
    if image_size % patch_size:
        smaller = max(patch_size, image_size - image_size % patch_size)
        raise ConfigError(
            f"ViT image size {image_size} is not a multiple of the patch size {patch_size}; "
            f"resize the images to a multiple of {patch_size} (e.g. {smaller}) or choose a "
            f"patch size that divides {image_size}"
        )
    return image_size // patch_size


class ModelConfig(Section):
    """Backbone and classifier."""

    backbone: Literal["resnet18", "resnet50", "convnet", "vit_tiny", "vit_small", "vit_base"] = (
        "resnet18"
    )
    stem: Literal["cifar", "imagenet"] = "cifar"
    stem_padding: int | None = Field(
        None,
        ge=0,
        description="Padding of the ResNets' CIFAR stem convolution; none: 1 (same size). "
        "Kaizen's released code pads by 2.",
    )
    width: float = Field(1.0, gt=0.0)
    classifier_hidden_dim: int | None = Field(1000, ge=1)
    weights: Path | None = Field(
        None,
        description="Backbone weights to start from: a state dict (.pth, .pt, .bin, "
        ".safetensors; torchvision ResNet or timm ViT keys) or a kaizen-cl run directory.",
    )
    image_size: int | None = Field(
        None,
        ge=8,
        description="The backbone's input side: images are resized to it on the device "
        "(training views by the random crop, test images by resize and centre crop); none: "
        "the data's own size.",
    )
    patch_size: int = Field(16, ge=1, description="A Vision Transformer's patch side.")
    depth: int | None = Field(
        None, ge=1, description="A Vision Transformer's number of blocks; none: 12, as timm's."
    )
    batchnorm_views: Literal["stacked", "per-view"] = Field(
        "stacked",
        description="In training, BatchNorm layers normalise both augmented views of a batch "
        "together, or each view with its own statistics, as the released Kaizen and LUMP code "
        "run the network once per view.",
    )
    heads: Literal["single", "per-task"] = Field(
        "single",
        description="The classifier: one head over all classes (classifier_hidden_dim wide), "
        "or one linear head per task, concatenated (SLCA's).",
    )

    @model_validator(mode="after")
    def _patches_tile_the_image(self) -> ModelConfig:
        if self.backbone.startswith("vit_") and self.image_size is not None:
            check_patch_grid(self.image_size, self.patch_size)
        if self.depth is not None and not self.backbone.startswith("vit_"):
            raise ValueError(
                f"depth sets a Vision Transformer's blocks, and {self.backbone} is not one; "
                "remove model.depth"
            )
        return self
