"""MLP heads: projectors, predictors and the classifiers (one head, or one per task)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor, nn

from kaizen.errors import ConfigError


def mlp(
    in_dim: int,
    hidden_dims: Sequence[int],
    out_dim: int,
    *,
    batch_norm: bool = True,
    last_batch_norm: bool = False,
    last_affine: bool = False,
) -> nn.Sequential:
    """A multi-layer perceptron: (Linear -> [BatchNorm1d] -> ReLU) per hidden layer, then Linear.

    Args:
        in_dim: input features D_in.
        hidden_dims: width of each hidden layer (may be empty: a single Linear).
        out_dim: output features D_out.
        batch_norm: add BatchNorm1d after each hidden Linear.
        last_batch_norm: add a BatchNorm1d after the last Linear (as SimSiam-style projectors
            do); that Linear then has no bias, which the BatchNorm would cancel.
        last_affine: give that BatchNorm1d a learned scale and shift (default: affine-free).

    Shapes: (N, D_in) -> (N, D_out).
    """
    layers: list[nn.Module] = []
    width = in_dim
    for hidden in hidden_dims:
        layers.append(nn.Linear(width, hidden, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm1d(hidden))
        layers.append(nn.ReLU(inplace=True))
        width = hidden
    layers.append(nn.Linear(width, out_dim, bias=not last_batch_norm))
    if last_batch_norm:
        layers.append(nn.BatchNorm1d(out_dim, affine=last_affine))
    return nn.Sequential(*layers)


class Classifier(nn.Module):
    """One head over all classes of the stream: feature -> [hidden -> ReLU] -> logits.

    The Kaizen paper uses 512 -> 1000 -> ReLU -> num_classes; ``hidden_dim=None`` gives a linear
    head. Shapes: (N, feature_dim) -> (N, num_classes).
    """

    def __init__(self, feature_dim: int, num_classes: int, hidden_dim: int | None = 1000) -> None:
        super().__init__()
        hidden = [] if hidden_dim is None else [hidden_dim]
        self.net = mlp(feature_dim, hidden, num_classes, batch_norm=False)
        self.num_classes = num_classes

    def forward(self, features: Tensor) -> Tensor:
        return self.net(features)


class TaskHeads(nn.Module):
    """One linear head per task, read as one classifier over all classes (SLCA, Zhang et al.,
    ICCV 2023): head i maps features to the logits of task i's classes.

    Heads start as SLCA's: weights from a normal of std 0.02 truncated at +-2 std, biases 0.
    ``input_scales`` (T,) multiplies the features each head reads: 1 while training; SLCA++'s
    fixed inference multipliers after alignment.

    Shapes: (N, feature_dim) -> (N, num_classes); column c holds class c's logit (-inf for a
    class of no task).
    """

    column_of: Tensor
    input_scales: Tensor

    def __init__(
        self, feature_dim: int, num_classes: int, task_classes: Sequence[Sequence[int]]
    ) -> None:
        super().__init__()
        flat = [label for classes in task_classes for label in classes]
        if len(set(flat)) != len(flat) or not all(0 <= c < num_classes for c in flat):
            raise ConfigError(
                "model.heads=per-task needs tasks with disjoint classes (a class-incremental "
                "scenario); use model.heads=single"
            )
        self.num_classes = num_classes
        self.task_classes = [list(classes) for classes in task_classes]
        self.heads = nn.ModuleList(nn.Linear(feature_dim, len(c)) for c in task_classes)
        for head in self._linear_heads():
            nn.init.trunc_normal_(head.weight, std=0.02, a=-0.04, b=0.04)
            nn.init.zeros_(head.bias)
        position = {label: i for i, label in enumerate(flat)}
        column_of = [position.get(c, len(flat)) for c in range(num_classes)]
        self.register_buffer("column_of", torch.tensor(column_of), persistent=False)
        self.register_buffer("input_scales", torch.ones(len(task_classes)))

    def _linear_heads(self) -> list[nn.Linear]:
        """The heads, in task order (``self.heads`` holds nothing but ``nn.Linear``)."""
        return [cast(nn.Linear, head) for head in self.heads]

    def forward(self, features: Tensor) -> Tensor:
        heads = self._linear_heads()
        weight = torch.cat([head.weight for head in heads])
        bias = torch.cat([head.bias for head in heads])
        scales = torch.cat(
            [
                scale.expand(len(classes))
                for scale, classes in zip(self.input_scales, self.task_classes, strict=True)
            ]
        )
        logits = (features @ weight.T) * scales + bias
        padding = logits.new_full((len(logits), 1), float("-inf"))
        return torch.cat([logits, padding], dim=1).index_select(1, self.column_of)


def with_leading_rows(target: dict[str, Tensor], source: dict[str, Tensor]) -> dict[str, Tensor]:
    """``target``'s state with every tensor of ``source`` written over it: whole where the shapes
    agree, into the leading rows where ``target`` has more rows (a classifier grown by classes
    or tasks: (K, ...) -> (K', ...), K' >= K). Keys only ``target`` has keep its values."""
    merged = dict(target)
    for key, value in source.items():
        if key not in target:
            raise ValueError(f"{key} of the smaller model is missing from the grown one")
        grown = target[key]
        if grown.shape == value.shape:
            merged[key] = value.to(grown.device)
            continue
        if grown.dim() != value.dim() or grown.shape[1:] != value.shape[1:]:
            raise ValueError(f"{key} cannot grow from {tuple(value.shape)} to {tuple(grown.shape)}")
        rows = grown.clone()
        rows[: len(value)] = value.to(grown.device)
        merged[key] = rows
    return merged
