"""Batched image augmentation on the training device (kornia), and evaluation normalisation."""

from __future__ import annotations

from collections.abc import Sequence

import kornia.augmentation as K
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from kaizen.config import AugmentConfig
from kaizen.data.resample import Interpolation, resize_like_pillow
from kaizen.errors import ConfigError

TEST_CROP_FRACTION = 0.875
"""The share of the resized test image the centre crop keeps (224 of 256, as SLCA tests)."""


class Normalize(nn.Module):
    """uint8 images to normalised float: (x / 255 - mean) / std, per channel; with ``size``,
    first resized to ``size / 0.875`` and centre-cropped to ``size``. The resize is torch's
    bilinear (no antialiasing) or, with ``interpolation="bicubic"``, Pillow's bicubic
    (:func:`resize_like_pillow`), the ``Resize(256, interpolation=3)`` of SLCA's released test
    transform.

    Shapes: (N, C, H, W) uint8 -> (N, C, H, W) float32, or (N, C, size, size).
    """

    mean: Tensor
    std: Tensor

    def __init__(
        self,
        mean: Tensor,
        std: Tensor,
        size: int | None = None,
        interpolation: Interpolation = "bilinear",
    ) -> None:
        super().__init__()
        self.register_buffer("mean", mean.reshape(1, -1, 1, 1).float())
        self.register_buffer("std", std.reshape(1, -1, 1, 1).float())
        self.size = size
        self.interpolation: Interpolation = interpolation

    def forward(self, images: Tensor) -> Tensor:
        pixels = images.float() / 255.0
        if self.size is not None and tuple(pixels.shape[-2:]) != (self.size, self.size):
            resized = round(self.size / TEST_CROP_FRACTION)
            if self.interpolation == "bicubic":
                pixels = resize_like_pillow(pixels, resized, "bicubic")
            else:
                pixels = F.interpolate(pixels, size=(resized, resized), mode="bilinear")
            start = (resized - self.size) // 2
            pixels = pixels[..., start : start + self.size, start : start + self.size]
        return (pixels - self.mean) / self.std


def channel_stats(images: Tensor, max_images: int = 50_000) -> tuple[Tensor, Tensor]:
    """Per-channel mean and std in [0, 1] units of uint8 images (N, C, H, W), evenly subsampled."""
    step = max(1, len(images) // max_images)
    sample = images[::step].float() / 255.0
    return sample.mean(dim=(0, 2, 3)), sample.std(dim=(0, 2, 3)).clamp_min(1e-3)


def _blur_kernel(side: int) -> int:
    kernel = max(3, side // 10)
    return kernel if kernel % 2 else kernel + 1


class ResizeThenCrop(nn.Module):
    """Every image resized to ``resize_to`` x ``resize_to`` (:func:`resize_like_pillow`), then
    one ``size`` window per image at an offset drawn uniformly from every position inside it:
    torchvision's ``Resize((300, 300), interpolation=3)`` and ``RandomCrop(224)``, SLCA's
    released training crop on CUB-200 and Cars-196 (Zhang et al., ICCV 2023; ``utils/data.py``).

    Shapes: (N, C, H, W) float in [0, 1] -> (N, C, size[0], size[1]).
    """

    def __init__(self, resize_to: int, size: tuple[int, int], interpolation: Interpolation) -> None:
        super().__init__()
        self.resize_to = resize_to
        self.size = size
        self.interpolation: Interpolation = interpolation

    def forward(self, pixels: Tensor) -> Tensor:
        resized = resize_like_pillow(pixels, self.resize_to, self.interpolation)
        count, device = len(pixels), pixels.device
        height, width = self.size
        tops = torch.randint(0, self.resize_to - height + 1, (count, 1, 1), device=device)
        lefts = torch.randint(0, self.resize_to - width + 1, (count, 1, 1), device=device)
        rows = tops + torch.arange(height, device=device).reshape(1, height, 1)
        columns = lefts + torch.arange(width, device=device).reshape(1, 1, width)
        images = torch.arange(count, device=device).reshape(count, 1, 1)
        # (N, side, side, C) indexed by (N, h, w) grids -> (N, h, w, C)
        windows = resized.permute(0, 2, 3, 1)[images, rows, columns]
        return windows.permute(0, 3, 1, 2)


def _training_crop(config: AugmentConfig, size: tuple[int, int]) -> nn.Module:
    """The first step of a training view: ``augment.crop`` at output ``size``."""
    if config.crop == "random-resized":
        # "resample": one batched affine warp; the default slicing crops image by image.
        return K.RandomResizedCrop(
            size,
            scale=config.crop_scale,
            cropping_mode="resample",
            resample=config.crop_interpolation,
        )
    side = config.resize_to
    if side is None or side < max(size):
        raise ConfigError(
            f"augment.resize_to={side} is smaller than the {size[0]} x {size[1]} training "
            f"crop; set augment.resize_to to at least {max(size)} (SLCA: 300 for 224)"
        )
    return ResizeThenCrop(side, size, config.crop_interpolation)


def _view_pipeline(
    config: AugmentConfig, size: tuple[int, int], channels: int, solarize: float, blur: float
) -> nn.Sequential:
    colour = channels == 3
    ops: list[nn.Module] = [
        _training_crop(config, size),
        K.ColorJitter(
            config.brightness,
            config.contrast,
            config.saturation if colour else 0.0,
            config.hue if colour else 0.0,
            p=config.jitter_prob,
        ),
    ]
    if colour and config.grayscale_prob > 0:
        ops.append(K.RandomGrayscale(p=config.grayscale_prob))
    if blur > 0:
        ops.append(K.RandomGaussianBlur((_blur_kernel(size[0]),) * 2, (0.1, 2.0), p=blur))
    if solarize > 0:
        ops.append(K.RandomSolarize(0.0, 0.0, p=solarize))
    if config.hflip_prob > 0:
        ops.append(K.RandomHorizontalFlip(p=config.hflip_prob))
    return nn.Sequential(*ops)


WEAK_CROP_SCALE = (0.08, 1.0)
"""Area range of the weak view's random resized crop."""


class ViewAugment(nn.Module):
    """Independently augmented, normalised views of a batch: two for the SSL terms, or one
    (the first view's pipeline) for a learner without them; and, on request, a weak view.

    View 1 and view 2 may differ in solarisation and blur probability (asymmetric
    augmentation as in BYOL). Grayscale images are jittered in brightness and contrast only.

    Shapes: (N, C, H, W) uint8 -> (V N, C, H, W) float32 for V views; rows 0..N-1 are view 1,
    N..2N-1 view 2.
    """

    def __init__(
        self,
        config: AugmentConfig,
        size: tuple[int, int],
        channels: int,
        normalize: Normalize,
        num_views: int = 2,
    ) -> None:
        super().__init__()
        self.channels = channels
        pipelines = list(zip(config.solarize_prob, config.blur_prob, strict=True))[:num_views]
        self.views = nn.ModuleList(
            _view_pipeline(config, size, channels, solarize, blur) for solarize, blur in pipelines
        )
        self.weak = nn.Sequential(
            K.RandomResizedCrop(
                size, scale=WEAK_CROP_SCALE, resample="bicubic", cropping_mode="resample"
            ),
            K.RandomHorizontalFlip(),
        )
        self.normalize = normalize

    def _augmented(self, images: Tensor, pipelines: list[nn.Module]) -> Tensor:
        """uint8 (N, C, H, W) -> each pipeline's normalised view, stacked (P N, C, H', W')."""
        pixels = images.float() / 255.0
        if self.channels == 1:
            pixels = pixels.expand(-1, 3, -1, -1)
        stacked = torch.cat([pipeline(pixels) for pipeline in pipelines])
        if self.channels == 1:
            stacked = stacked[:, :1]
        return (stacked - self.normalize.mean) / self.normalize.std

    def forward(self, images: Tensor) -> Tensor:
        return self._augmented(images, list(self.views))

    def weak_view(self, images: Tensor) -> Tensor:
        """One weak, normalised view: a random resized crop of :data:`WEAK_CROP_SCALE` (bicubic)
        and a horizontal flip, no colour change (the transform LUMP's released code gives its
        buffer images, Madaan et al., ICLR 2022).

        Shapes: (N, C, H, W) uint8 -> (N, C, H', W') float32.
        """
        return self._augmented(images, [self.weak])


def augment_for(
    config: AugmentConfig,
    images: Tensor,
    input_size: int | None = None,
    num_views: int = 2,
    statistics: tuple[Sequence[float], Sequence[float]] | None = None,
) -> ViewAugment:
    """:class:`ViewAugment` of ``num_views`` views for uint8 ``images`` (N, C, H, W), normalised
    with the per-channel (mean, std) ``statistics``, or else with their own
    (:func:`channel_stats`); its ``normalize`` also serves evaluation.

    With ``input_size``, the views come out ``input_size`` square (the training crop resizes
    to it) and ``normalize`` resizes (``augment.test_interpolation``) and centre-crops test
    images to it; otherwise both keep the images' own size. Raises ``ConfigError`` when
    ``augment.resize_to`` is smaller than the training crop.
    """
    size = (images.shape[2], images.shape[3]) if input_size is None else (input_size,) * 2
    if statistics is None:
        mean, std = channel_stats(images)
    else:
        mean, std = (torch.tensor(values, dtype=torch.float32) for values in statistics)
        if len(mean) != images.shape[1]:
            raise ConfigError(
                f"data.normalize_mean and data.normalize_std give {len(mean)} channels and the "
                f"images have {images.shape[1]}; give one value per channel"
            )
    normalize = Normalize(mean, std, size=input_size, interpolation=config.test_interpolation)
    return ViewAugment(config, size, images.shape[1], normalize, num_views)
