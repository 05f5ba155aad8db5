"""Pillow's antialiased resize as matrix products, checked against Pillow itself."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from conftest import pillow_resized
from kaizen.data.resample import Interpolation, resize_like_pillow


def _pixels(height: int, width: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, height, width, generator=generator)


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
@pytest.mark.parametrize(
    ("height", "width", "side"),
    [(9, 12, 20), (20, 25, 7), (12, 12, 12)],
    ids=["enlarge", "shrink", "same-size"],
)
def test_resize_matches_pillow(
    interpolation: Interpolation, height: int, width: int, side: int
) -> None:
    pixels = _pixels(height, width)
    resized = resize_like_pillow(pixels, side, interpolation)
    assert resized.shape == (2, 3, side, side)
    torch.testing.assert_close(
        resized, pillow_resized(pixels, side, interpolation).clamp(0.0, 1.0), atol=1e-5, rtol=0
    )


@pytest.mark.parametrize(("side", "new_side"), [(9, 20), (20, 7)], ids=["enlarge", "shrink"])
def test_pillows_bicubic_is_not_torchs_plain_bicubic(side: int, new_side: int) -> None:
    # torch's bicubic without antialiasing has coefficient -0.75 and a fixed support, so the
    # comparison with Pillow above would fail for it, enlarging as well as shrinking.
    pixels = _pixels(side, side)
    plain = F.interpolate(pixels, size=(new_side, new_side), mode="bicubic", align_corners=False)
    difference = (plain.clamp(0.0, 1.0) - pillow_resized(pixels, new_side).clamp(0.0, 1.0)).abs()
    assert difference.max() > 1e-2
