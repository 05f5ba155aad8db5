"""A procedural image dataset for tests and smoke runs: ``data.name`` ``synthetic``.

Learnable, varied and instant to build: uint8 images (N, C, S, S) and int64 labels (N,) from
``data.synthetic``'s shape and the run's seed; no files.
"""

from __future__ import annotations

import math

import torch

from kaizen.config import DataConfig
from kaizen.data.formats.registry import reads
from kaizen.data.imageset import ImageSet, LabelledData

_STRIPE_FREQUENCIES = (1.5, 2.5, 3.5)  # cycles per image side
_BLOB_ORBIT = 0.28  # distance of the class blobs from the image centre, in image sides
_BLOB_WIDTH = 0.12
_MAX_SHIFT = 0.06
_MAX_PHASE = math.pi / 2
_NOISE = 0.08


@reads("synthetic")
def read_synthetic(config: DataConfig, seed: int) -> LabelledData:
    """The procedural dataset of ``data.synthetic``'s shape, drawn from ``seed``."""
    synthetic = config.synthetic
    return make_synthetic(
        num_classes=synthetic.num_classes,
        train_per_class=synthetic.train_per_class,
        test_per_class=synthetic.test_per_class,
        image_size=synthetic.image_size,
        channels=synthetic.channels,
        seed=seed,
    )


def make_synthetic(
    num_classes: int = 10,
    train_per_class: int = 64,
    test_per_class: int = 16,
    image_size: int = 16,
    channels: int = 3,
    seed: int = 0,
) -> LabelledData:
    """Build a dataset whose classes differ in stripe orientation, frequency, tint and blob place.

    Every class has stripes of its own orientation and frequency, a blob at its own position and
    its own colour tint. Every sample draws a stripe phase, a blob shift, a brightness and pixel
    noise, so no two samples are equal but a small ConvNet separates the classes in a few epochs.
    The same arguments always give the same tensors.

    Args:
        num_classes: number of classes.
        train_per_class: training images per class.
        test_per_class: test images per class.
        image_size: side of the square images.
        channels: 1 or 3.
        seed: seed of the class tints and of every per-sample draw.

    Returns:
        Data named ``synthetic`` with uint8 images of shape (N, channels, image_size, image_size)
        and labels of shape (N,), sorted by class.
    """
    generator = torch.Generator().manual_seed(seed)
    tints = 0.45 + 0.55 * torch.rand(num_classes, channels, generator=generator)
    splits = [
        _render(num_classes, per_class, image_size, tints, generator)
        for per_class in (train_per_class, test_per_class)
    ]
    class_names = tuple(f"class-{label}" for label in range(num_classes))
    return LabelledData(name="synthetic", train=splits[0], test=splits[1], class_names=class_names)


def _render(
    num_classes: int,
    per_class: int,
    image_size: int,
    tints: torch.Tensor,
    generator: torch.Generator,
) -> ImageSet:
    """Draw ``per_class`` images of every class.

    Args:
        tints: per-class channel gains, shape (num_classes, C).

    Returns:
        uint8 images (num_classes * per_class, C, image_size, image_size) and their labels.
    """
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    count = len(labels)
    coords = (torch.arange(image_size, dtype=torch.float32) + 0.5) / image_size
    rows, cols = coords[None, :, None], coords[None, None, :]  # (1, S, 1) and (1, 1, S)

    angle = math.pi * labels / num_classes
    frequency = torch.tensor(_STRIPE_FREQUENCIES)[labels % len(_STRIPE_FREQUENCIES)]
    phase = _MAX_PHASE * (2 * torch.rand(count, generator=generator) - 1)
    along = cols * angle.cos()[:, None, None] + rows * angle.sin()[:, None, None]
    stripes = torch.sin(2 * math.pi * frequency[:, None, None] * along + phase[:, None, None])

    orbit = 2 * math.pi * labels / num_classes
    shift = _MAX_SHIFT * (2 * torch.rand(count, 2, generator=generator) - 1)
    centre_row = 0.5 + _BLOB_ORBIT * orbit.sin() + shift[:, 0]
    centre_col = 0.5 + _BLOB_ORBIT * orbit.cos() + shift[:, 1]
    distance2 = (rows - centre_row[:, None, None]) ** 2 + (cols - centre_col[:, None, None]) ** 2
    blob = torch.exp(-distance2 / (2 * _BLOB_WIDTH**2))

    pattern = 0.35 + 0.2 * stripes + 0.45 * blob  # (N, S, S), roughly in [0, 1]
    brightness = 0.8 + 0.4 * torch.rand(count, 1, 1, 1, generator=generator)
    noise = _NOISE * torch.randn(count, tints.shape[1], image_size, image_size, generator=generator)
    pixels = tints[labels][:, :, None, None] * pattern[:, None] * brightness + noise
    images = (pixels.clamp(0, 1) * 255).round().to(torch.uint8)
    return ImageSet(images=images, labels=labels)
