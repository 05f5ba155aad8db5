"""Low-rank adapters on linear layers, as SLCA++'s hybrid slow learner uses them.

LoRA (Hu et al., ICLR 2022) adds to a frozen weight W (out, in) a trainable product
``scale * B @ A`` with A (rank, in) and B (out, rank). SLCA++ (Zhang et al., arXiv 2408.08295)
initialises A from the top ``rank`` right singular vectors of W and B with zeros, so the adapted
layer starts as the pre-trained one, with rank 4 and scale 0.8. Its released code builds
adapters on the qkv projection and both MLP linears of every transformer block but trains only
the qkv ones (``strategy.lora_targets`` chooses the layers here).

:class:`LoRALinear` is an ``nn.Linear`` with two more parameters, so the adapted model keeps the
pre-trained state-dict keys (``blocks.0.attn.qkv.weight``) and adds ``.lora_a`` / ``.lora_b``
beside them; a plain ``nn.Linear`` replaces it when the adapter is merged for inference and
export. A short module of our own rather than ``peft``: peft moves the wrapped weight to
``base_layer.weight``, which would break loading timm-keyed files and our checkpoints, and it
would be a dependency for about fifty lines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from kaizen.errors import ConfigError


class LoRALinear(nn.Linear):
    """``x W^T + b + scale * (x A^T) B^T``; shapes: (..., in) -> (..., out).

    Attributes:
        lora_a: (rank, in), the top right singular vectors of the weight at creation.
        lora_b: (out, rank), zeros at creation.
        scale: the adapter's factor.
    """

    def __init__(self, linear: nn.Linear, rank: int, scale: float) -> None:
        out_features, in_features = linear.weight.shape
        if not 1 <= rank <= min(out_features, in_features):
            raise ConfigError(
                f"LoRA rank must be in [1, {min(out_features, in_features)}] for a "
                f"{in_features} -> {out_features} linear layer, got {rank}"
            )
        super().__init__(
            in_features,
            out_features,
            bias=linear.bias is not None,
            device=linear.weight.device,
            dtype=linear.weight.dtype,
        )
        with torch.no_grad():
            self.weight.copy_(linear.weight)
            if linear.bias is not None:
                self.bias.copy_(linear.bias)
            _, _, right = torch.linalg.svd(linear.weight.double(), full_matrices=False)
        self.weight.requires_grad_(linear.weight.requires_grad)
        if self.bias is not None and linear.bias is not None:
            self.bias.requires_grad_(linear.bias.requires_grad)
        self.lora_a = nn.Parameter(right[:rank].to(linear.weight.dtype).contiguous())
        self.lora_b = nn.Parameter(linear.weight.new_zeros(out_features, rank))
        self.scale = scale

    def delta(self) -> Tensor:
        """The adapter's change of the weight, ``scale * B @ A``: (out, in)."""
        return self.scale * self.lora_b @ self.lora_a

    def forward(self, x: Tensor) -> Tensor:
        adapted = F.linear(F.linear(x, self.lora_a), self.lora_b)
        return F.linear(x, self.weight, self.bias) + self.scale * adapted

    def merged(self) -> nn.Linear:
        """A plain linear layer computing the same function: weight ``W + scale * B @ A``."""
        linear = nn.Linear(
            self.in_features,
            self.out_features,
            bias=self.bias is not None,
            device=self.weight.device,
            dtype=self.weight.dtype,
        )
        with torch.no_grad():
            linear.weight.copy_(self.weight + self.delta())
            if self.bias is not None:
                linear.bias.copy_(self.bias)
        return linear


def add_lora(
    model: nn.Module, targets: Callable[[str], bool], rank: int = 4, scale: float = 0.8
) -> list[str]:
    """Replace, in place, every ``nn.Linear`` of ``model`` whose name ``targets`` accepts.

    Returns the adapted layers' names. A model without such a layer is a ``ConfigError``.
    """
    adapted = [
        name
        for name, module in model.named_modules()
        if type(module) is nn.Linear and targets(name)
    ]
    if not adapted:
        raise ConfigError(
            f"LoRA needs linear layers to adapt, and {type(model).__name__} has none that it "
            "targets: use a Vision Transformer backbone (model.backbone=vit_*)"
        )
    for name in adapted:
        _replace(model, name, LoRALinear(cast(nn.Linear, model.get_submodule(name)), rank, scale))
    return adapted


def merge_lora(model: nn.Module) -> int:
    """Replace, in place, every :class:`LoRALinear` of ``model`` by its merged ``nn.Linear``.

    Returns how many layers were merged; the model computes the same function afterwards.
    """
    names = [name for name, module in model.named_modules() if isinstance(module, LoRALinear)]
    for name in names:
        layer = model.get_submodule(name)
        assert isinstance(layer, LoRALinear)
        _replace(model, name, layer.merged())
    return len(names)


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)
