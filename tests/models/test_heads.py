"""MLP heads and the classifier: layer structure and shapes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from kaizen.models.heads import Classifier, mlp


def _layer_types(module: nn.Sequential) -> list[type[nn.Module]]:
    return [type(layer) for layer in module]


def test_mlp_with_batch_norm():
    net = mlp(16, [32, 24], 8)
    assert _layer_types(net) == [
        nn.Linear,
        nn.BatchNorm1d,
        nn.ReLU,
        nn.Linear,
        nn.BatchNorm1d,
        nn.ReLU,
        nn.Linear,
    ]
    assert (net[0].in_features, net[0].out_features) == (16, 32)
    assert net[0].bias is None  # BatchNorm follows, so the Linear has no bias
    assert (net[3].in_features, net[3].out_features) == (32, 24)
    assert (net[6].in_features, net[6].out_features) == (24, 8)
    assert net[6].bias is not None
    assert net(torch.randn(4, 16)).shape == (4, 8)


def test_mlp_without_batch_norm_and_with_last_batch_norm():
    net = mlp(16, [32], 8, batch_norm=False, last_batch_norm=True)
    assert _layer_types(net) == [nn.Linear, nn.ReLU, nn.Linear, nn.BatchNorm1d]
    assert net[0].bias is not None
    assert net[2].bias is None  # the BatchNorm would cancel it
    assert not net[3].affine
    assert net(torch.randn(4, 16)).shape == (4, 8)


def test_mlp_without_hidden_layers_is_one_linear():
    net = mlp(16, [], 8)
    assert _layer_types(net) == [nn.Linear]
    assert net(torch.randn(3, 16)).shape == (3, 8)


@pytest.mark.parametrize(
    ("hidden_dim", "types"),
    [(None, [nn.Linear]), (64, [nn.Linear, nn.ReLU, nn.Linear])],
)
def test_classifier(hidden_dim: int | None, types: list[type[nn.Module]]):
    head = Classifier(32, 10, hidden_dim=hidden_dim)
    assert head.num_classes == 10
    assert _layer_types(head.net) == types
    assert head.net[0].in_features == 32
    assert head.net[-1].out_features == 10
    if hidden_dim is not None:
        assert head.net[0].out_features == hidden_dim
    logits = head(torch.randn(5, 32))
    assert logits.shape == (5, 10)


def test_classifier_default_hidden_width():
    head = Classifier(512, 100)
    assert head.net[0].out_features == 1000
    assert head(torch.randn(2, 512)).shape == (2, 100)
