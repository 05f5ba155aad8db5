"""The image-file decoder every format uses, under its resize and conversion policies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kaizen.data.formats.common import DecodePolicy, decode_image, decode_to_shape
from kaizen.data.imageset import ImageShape
from kaizen.errors import DataError


def _save(path: Path, pixels: np.ndarray) -> Path:
    Image.fromarray(pixels).save(path)
    return path


def test_without_a_policy_grayscale_stays_one_channel_and_colour_three(tmp_path: Path) -> None:
    gray = _save(tmp_path / "gray.png", np.full((4, 6), 9, np.uint8))
    rgb = _save(tmp_path / "rgb.png", np.full((4, 6, 3), 9, np.uint8))
    assert decode_image(gray, DecodePolicy()).shape == (4, 6)
    assert decode_image(rgb, DecodePolicy()).shape == (4, 6, 3)


def test_a_policy_converts_and_resizes(tmp_path: Path) -> None:
    rgb = _save(tmp_path / "rgb.png", np.full((4, 6, 3), (10, 20, 30), np.uint8))
    pixels = decode_image(rgb, DecodePolicy(size=(3, 2), channels=1))
    assert pixels.shape == (2, 3) and len(np.unique(pixels)) == 1


def test_sixteen_bit_grayscale_is_one_channel_only_for_the_wide_modes(tmp_path: Path) -> None:
    deep = _save(tmp_path / "deep.png", np.full((4, 4), 300, np.uint16))
    assert decode_image(deep, DecodePolicy()).shape == (4, 4, 3)
    assert decode_to_shape(deep, ImageShape(1, 4, 4)).shape == (1, 4, 4)


def test_a_file_of_another_shape_is_refused_and_a_broken_one_raises_what_pil_raises(
    tmp_path: Path,
) -> None:
    rgb = _save(tmp_path / "rgb.png", np.zeros((4, 6, 3), np.uint8))
    with pytest.raises(DataError, match=r"rgb\.png is a 3-channel 6x4 image but the run"):
        decode_to_shape(rgb, ImageShape(3, 4, 4))
    assert decode_to_shape(rgb, ImageShape(3, 4, 4, resize=4)).shape == (3, 4, 4)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(OSError):
        decode_to_shape(broken, ImageShape(3, 4, 4))
