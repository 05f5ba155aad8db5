"""Training a module's every parameter for a while, frozen ones included."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def every_parameter_trainable(module: nn.Module) -> Iterator[list[nn.Parameter]]:
    """Yield ``module``'s parameters with ``requires_grad`` set on all of them; on leaving, each
    takes back the flag it had (frozen parameters are frozen again)."""
    parameters = list(module.parameters())
    flags = [parameter.requires_grad for parameter in parameters]
    for parameter in parameters:
        parameter.requires_grad_(True)
    try:
        yield parameters
    finally:
        for parameter, flag in zip(parameters, flags, strict=True):
            parameter.requires_grad_(flag)
