"""Pillow's antialiased resize of image batches, as two matrix products.

torchvision's ``Resize`` on PIL images (the released code of SLCA, Zhang et al., ICCV 2023)
resamples with Pillow's filters: each output pixel is a normalised, separable weighting of the
input pixels whose centres lie within the filter's support, the support widened by the scale
when the image shrinks (antialiasing). The weights depend only on the two sizes, so a resize is
``rows @ images @ columns.T``: batched on the device, and exported to ONNX and TorchScript as
plain matrix products with constant weights.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

Interpolation = Literal["bilinear", "bicubic"]
"""A filter's name, as ``augment.crop_interpolation`` and ``augment.test_interpolation``."""

BICUBIC_COEFFICIENT = -0.5
"""Pillow's cubic convolution coefficient (torch's non-antialiased bicubic uses -0.75)."""


def _filter(distance: NDArray[np.float64], interpolation: Interpolation) -> NDArray[np.float64]:
    """Pillow's filter at ``distance`` (in input pixels at scale 1): the triangle, or Keys'
    cubic convolution kernel with coefficient :data:`BICUBIC_COEFFICIENT`; 0 beyond the support.
    """
    x = np.abs(distance)
    if interpolation == "bilinear":
        return np.clip(1.0 - x, 0.0, None)
    a = BICUBIC_COEFFICIENT
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


@lru_cache(maxsize=32)
def resize_weights(
    in_size: int,
    out_size: int,
    interpolation: Interpolation,
    device: torch.device,
    dtype: torch.dtype,
) -> Tensor:
    """The (out_size, in_size) matrix whose row i weights the input pixels of output pixel i,
    each row summing to 1 (Pillow's ``precompute_coeffs``): centre (i + 0.5) * scale, filter
    stretched by max(scale, 1), where scale = in_size / out_size. Computed in float64, then
    kept on ``device`` in ``dtype``, so that each step reuses it without a transfer."""
    scale = in_size / out_size
    stretch = max(scale, 1.0)
    centres = (np.arange(out_size, dtype=np.float64) + 0.5) * scale
    positions = np.arange(in_size, dtype=np.float64) + 0.5
    weights = _filter((positions[None, :] - centres[:, None]) / stretch, interpolation)
    weights /= weights.sum(axis=1, keepdims=True)
    return torch.from_numpy(weights).to(device=device, dtype=dtype)


def resize_like_pillow(pixels: Tensor, side: int, interpolation: Interpolation) -> Tensor:
    """Images in [0, 1] resized to ``side`` x ``side`` as Pillow resizes them (the filter of
    that name, antialiased), clipped to [0, 1] as Pillow saturates 8-bit pixels.

    Shapes: (N, C, H, W) float -> (N, C, side, side).
    """
    # plain ints: a trace for export sees the image size as a constant, as the weights are
    height, width = (int(length) for length in pixels.shape[-2:])
    rows = resize_weights(height, side, interpolation, pixels.device, pixels.dtype)
    columns = resize_weights(width, side, interpolation, pixels.device, pixels.dtype)
    return (rows @ pixels @ columns.T).clamp(0.0, 1.0)
