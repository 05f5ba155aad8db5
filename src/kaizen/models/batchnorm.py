"""BatchNorm that normalises each augmented view of a training batch with its own statistics.

The released code of Kaizen (Tang et al., WACV 2024) and LUMP (Madaan et al., ICLR 2022) runs
the network once per view, so in training every BatchNorm layer sees one view's rows at a time.
kaizen-cl stacks the views into one batch; converting the layers reproduces the released
statistics without running the network twice.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn


def _per_view(norm: nn.modules.batchnorm._BatchNorm, x: Tensor, views: int) -> Tensor:
    """``norm`` applied to each of the ``views`` equal row blocks of ``x`` (V N, ...) in
    training; to the whole of ``x`` in eval mode, or when its rows do not split into
    ``views`` equal blocks (a batch that is not made of views)."""
    forward = super(type(norm), norm).forward
    if not norm.training or views == 1 or x.shape[0] % views:
        return forward(x)
    return torch.cat([forward(block) for block in x.chunk(views)])


class PerViewBatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` over each view's rows apart in training. Shapes: (V N, C) -> same."""

    views: int = 2

    def forward(self, x: Tensor) -> Tensor:
        return _per_view(self, x, self.views)


class PerViewBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` over each view's rows apart in training.
    Shapes: (V N, C, H, W) -> same."""

    views: int = 2

    def forward(self, x: Tensor) -> Tensor:
        return _per_view(self, x, self.views)


_PER_VIEW: dict[type[nn.Module], type[nn.Module]] = {
    nn.BatchNorm1d: PerViewBatchNorm1d,
    nn.BatchNorm2d: PerViewBatchNorm2d,
}


def normalise_views_apart(module: nn.Module, views: int) -> None:
    """Make every BatchNorm1d / BatchNorm2d layer of ``module`` normalise each of ``views``
    stacked views apart, in place: the layers keep their parameters, buffers and state-dict
    keys, so a model trained either way loads into the other."""
    for layer in module.modules():
        per_view = _PER_VIEW.get(type(layer))
        if per_view is not None:
            layer.__class__ = per_view
            cast(PerViewBatchNorm1d | PerViewBatchNorm2d, layer).views = views
