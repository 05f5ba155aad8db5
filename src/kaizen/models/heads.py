"""MLP heads: projectors, predictors and the classifier."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


def mlp(
    in_dim: int,
    hidden_dims: Sequence[int],
    out_dim: int,
    *,
    batch_norm: bool = True,
    last_batch_norm: bool = False,
) -> nn.Sequential:
    """A multi-layer perceptron: (Linear -> [BatchNorm1d] -> ReLU) per hidden layer, then Linear.

    Args:
        in_dim: input features D_in.
        hidden_dims: width of each hidden layer (may be empty: a single Linear).
        out_dim: output features D_out.
        batch_norm: add BatchNorm1d after each hidden Linear.
        last_batch_norm: add an affine-free BatchNorm1d after the last Linear (as SimSiam-style
            projectors do); that Linear then has no bias, which the BatchNorm would cancel.

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
        layers.append(nn.BatchNorm1d(out_dim, affine=False))
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
