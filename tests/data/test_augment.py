"""Normalisation, channel statistics, the two-view augmentation and SLCA's released training
and test transforms."""

from __future__ import annotations

import warnings

import pytest
import torch

from conftest import pillow_resized
from kaizen.config import AugmentConfig, build_config
from kaizen.data.augment import Normalize, ViewAugment, augment_for, channel_stats
from kaizen.errors import ConfigError

NO_OP = {
    "crop_scale": (1.0, 1.0),
    "jitter_prob": 0.0,
    "grayscale_prob": 0.0,
    "hflip_prob": 0.0,
    "solarize_prob": (0.0, 0.0),
    "blur_prob": (0.0, 0.0),
}


def _images(channels: int, n: int = 4, side: int = 16, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, side, side), generator=generator, dtype=torch.uint8)


# ---------------------------------------------------------------------------- Normalize


def test_normalize_single_channel_by_hand():
    normalize = Normalize(torch.tensor([0.2]), torch.tensor([0.4]))
    images = torch.tensor([0, 51, 255, 102], dtype=torch.uint8).reshape(1, 1, 2, 2)
    out = normalize(images)
    # 0 -> (0 - 0.2) / 0.4 = -0.5; 51 -> (0.2 - 0.2) / 0.4 = 0; 255 -> 0.8 / 0.4 = 2;
    # 102 -> (0.4 - 0.2) / 0.4 = 0.5
    expected = torch.tensor([-0.5, 0.0, 2.0, 0.5]).reshape(1, 1, 2, 2)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected)


def test_normalize_uses_each_channel_its_own_mean_and_std():
    normalize = Normalize(torch.tensor([0.0, 0.5, 1.0]), torch.tensor([1.0, 0.5, 0.25]))
    images = torch.full((2, 3, 1, 1), 255, dtype=torch.uint8)
    images[1] = 0
    out = normalize(images)
    # image 0 (all 1.0): (1 - 0) / 1 = 1, (1 - 0.5) / 0.5 = 1, (1 - 1) / 0.25 = 0
    # image 1 (all 0.0): (0 - 0) / 1 = 0, (0 - 0.5) / 0.5 = -1, (0 - 1) / 0.25 = -4
    torch.testing.assert_close(out[0].flatten(), torch.tensor([1.0, 1.0, 0.0]))
    torch.testing.assert_close(out[1].flatten(), torch.tensor([0.0, -1.0, -4.0]))


# ---------------------------------------------------------------------------- channel_stats


def test_channel_stats_of_a_known_tensor():
    images = torch.zeros(10, 3, 10, 10, dtype=torch.uint8)
    images[:, 0] = 51  # constant 0.2
    images[:5, 1] = 255  # half the pixels 1.0, half 0.0
    images[:, 2, :, :5] = 102  # half 0.4, half 0.0
    mean, std = channel_stats(images)
    torch.testing.assert_close(mean, torch.tensor([0.2, 0.5, 0.2]))
    # a two-valued channel split half / half has std |a - b| / 2 (1000 pixels: the n - 1
    # correction changes it by 0.05 %)
    torch.testing.assert_close(std[1:], torch.tensor([0.5, 0.2]), rtol=1e-3, atol=0)
    # a constant channel has std 0, clamped to a small positive floor
    assert 0.0 < std[0].item() < 1e-2


def test_channel_stats_subsamples_evenly():
    images = torch.zeros(4, 1, 2, 2, dtype=torch.uint8)
    images[1::2] = 255  # odd images white, even images black
    mean, _ = channel_stats(images, max_images=2)
    assert mean.item() == pytest.approx(0.0)  # every second image: 0 and 2
    mean_all, _ = channel_stats(images)
    assert mean_all.item() == pytest.approx(0.5)


# ---------------------------------------------------------------------------- ViewAugment


@pytest.mark.parametrize("channels", [1, 3])
def test_two_views_shape_and_type(channels):
    torch.manual_seed(0)
    normalize = Normalize(torch.full((channels,), 0.5), torch.full((channels,), 0.25))
    augment = ViewAugment(AugmentConfig(), (16, 16), channels, normalize)
    out = augment(_images(channels, n=5))
    assert out.shape == (10, channels, 16, 16)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("channels", [1, 3])
def test_two_views_differ(channels):
    torch.manual_seed(0)
    normalize = Normalize(torch.full((channels,), 0.5), torch.full((channels,), 0.25))
    augment = ViewAugment(AugmentConfig(), (16, 16), channels, normalize)
    images = _images(channels)
    out = augment(images)
    first, second = out[:4], out[4:]
    assert not torch.allclose(first, second)
    assert not torch.allclose(first, normalize(images))
    # a second call draws new augmentations
    assert not torch.allclose(augment(images), out)


@pytest.mark.parametrize("channels", [1, 3])
def test_no_op_augmentation_gives_the_normalised_input_twice(channels):
    torch.manual_seed(0)
    normalize = Normalize(torch.linspace(0.3, 0.5, channels), torch.linspace(0.2, 0.3, channels))
    augment = ViewAugment(AugmentConfig(**NO_OP), (16, 16), channels, normalize)
    images = _images(channels)
    out = augment(images)
    expected = normalize(images)
    torch.testing.assert_close(out[:4], expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(out[4:], expected, atol=1e-5, rtol=0)


def test_solarisation_can_differ_between_views():
    # view 1 always solarised, view 2 never; solarisation inverts the pixels at or above 0.5
    config = AugmentConfig(**{**NO_OP, "solarize_prob": (1.0, 0.0)})
    normalize = Normalize(torch.zeros(1), torch.ones(1))
    augment = ViewAugment(config, (8, 8), 1, normalize)
    images = torch.full((1, 1, 8, 8), 51, dtype=torch.uint8)  # 0.2: below the threshold
    images[..., :4] = 204  # 0.8: above, becomes 1 - 0.8 = 0.2
    out = augment(images)
    torch.testing.assert_close(out[0], torch.full((1, 8, 8), 0.2), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1], normalize(images)[0], atol=1e-5, rtol=0)


def test_horizontal_flip_mirrors_both_views():
    config = AugmentConfig(**{**NO_OP, "hflip_prob": 1.0})
    normalize = Normalize(torch.zeros(3), torch.ones(3))
    augment = ViewAugment(config, (16, 16), 3, normalize)
    images = _images(3, n=2)
    out = augment(images)
    mirrored = normalize(images).flip(-1)
    torch.testing.assert_close(out[:2], mirrored, atol=1e-5, rtol=0)
    torch.testing.assert_close(out[2:], mirrored, atol=1e-5, rtol=0)


def _operator_calls(augment: ViewAugment, images: torch.Tensor) -> int:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        augment(images)
    return sum(event.count for event in profiler.key_averages() if event.key.startswith("aten::"))


@pytest.mark.parametrize("crop", [{}, {"crop": "resize-then-crop", "resize_to": 20}])
@pytest.mark.parametrize("channels", [1, 3])
def test_augmentation_cost_in_operators_does_not_grow_with_the_batch(channels, crop):
    # Batched on the device: no per-image crop, resize or colour operation. A per-image loop
    # would add at least one operator per extra image and view; only a few shape-dependent
    # view operations (slicing) may differ. Every probability is 1 so every branch runs.
    config = AugmentConfig(
        jitter_prob=1.0,
        grayscale_prob=1.0,
        solarize_prob=(1.0, 1.0),
        blur_prob=(1.0, 1.0),
        **crop,
    )
    normalize = Normalize(torch.full((channels,), 0.5), torch.full((channels,), 0.25))
    augment = ViewAugment(config, (16, 16), channels, normalize)
    small, large = 4, 64
    extra = _operator_calls(augment, _images(channels, n=large)) - _operator_calls(
        augment, _images(channels, n=small)
    )
    assert extra < large - small


# ---------------------------------------------------------------------------- as released


def test_given_statistics_replace_the_measured_ones():
    images = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    cifar10 = ((0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261))
    given = augment_for(AugmentConfig(), images, statistics=cifar10).normalize
    torch.testing.assert_close(given.mean.flatten(), torch.tensor(cifar10[0]))
    torch.testing.assert_close(given.std.flatten(), torch.tensor(cifar10[1]))
    measured = augment_for(AugmentConfig(), images).normalize
    assert not torch.allclose(measured.mean.flatten(), given.mean.flatten())


def test_statistics_of_the_wrong_channel_count_are_refused():
    images = torch.zeros(2, 1, 8, 8, dtype=torch.uint8)
    with pytest.raises(ConfigError, match="3 channels and the images have 1"):
        augment_for(AugmentConfig(), images, statistics=((0.5,) * 3, (0.2,) * 3))


def test_bicubic_crop_resamples_differently_from_bilinear():
    images = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    outputs = []
    for interpolation in ("bilinear", "bicubic"):
        config = AugmentConfig(
            crop_scale=(0.3, 0.3),
            jitter_prob=0.0,
            grayscale_prob=0.0,
            solarize_prob=(0.0, 0.0),
            hflip_prob=0.0,
            crop_interpolation=interpolation,
        )
        torch.manual_seed(0)
        outputs.append(augment_for(config, images)(images))
    assert outputs[0].shape == outputs[1].shape
    assert not torch.allclose(outputs[0], outputs[1])


# ---------------------------------------------------------------------------- SLCA's transforms

IDENTITY = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
"""Normalisation statistics that leave pixels in [0, 1] as they are."""


def _resize_then_crop(resize_to: int, **values) -> AugmentConfig:
    return AugmentConfig(
        **{
            **NO_OP,
            "crop": "resize-then-crop",
            "resize_to": resize_to,
            "crop_interpolation": "bicubic",
            **values,
        }
    )


def test_resize_then_crop_cuts_windows_of_the_resized_image_at_every_offset():
    # 10 x 10 images resized to 13 x 13 by Pillow's bicubic, then 10 x 10 windows: 4 x 4
    # offsets, each one reached, none outside the resized image and nothing enlarged further.
    torch.manual_seed(0)
    images = _images(3, n=200, side=10)
    augment = augment_for(_resize_then_crop(13), images, num_views=1, statistics=IDENTITY)
    views = augment(images)
    assert views.shape == (200, 3, 10, 10)
    resized = pillow_resized(images.float() / 255.0, 13).clamp(0.0, 1.0)
    offsets = [(top, left) for top in range(4) for left in range(4)]
    windows = torch.stack([resized[..., t : t + 10, u : u + 10] for t, u in offsets], dim=1)
    distance = (windows - views[:, None]).abs().amax(dim=(2, 3, 4))  # (images, offsets)
    matches = distance < 1e-5
    assert torch.all(matches.sum(dim=1) == 1)
    assert set(matches.int().argmax(dim=1).tolist()) == set(range(len(offsets)))


@pytest.mark.parametrize("channels", [1, 3])
def test_resize_then_crop_gives_views_of_the_input_size(channels):
    torch.manual_seed(0)
    images = _images(channels, n=5, side=24)
    config = _resize_then_crop(20, hflip_prob=0.5)
    views = augment_for(config, images, input_size=16)(images)
    assert views.shape == (10, channels, 16, 16)
    assert torch.isfinite(views).all()


def test_a_resize_smaller_than_the_crop_is_refused():
    images = _images(3, n=2, side=16)
    with pytest.raises(ConfigError, match="resize_to=12 is smaller than the 16 x 16"):
        augment_for(_resize_then_crop(12), images)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["augment.crop=resize-then-crop"], "needs augment.resize_to"),
        (["augment.resize_to=300"], "set augment.crop=resize-then-crop"),
        (["augment.crop=centre"], "augment.crop"),
    ],
)
def test_contradictory_crop_settings_are_refused_in_one_line(overrides, named):
    with pytest.raises(ConfigError) as caught:
        build_config({}, overrides)
    message = str(caught.value)
    assert named in message and "\n" not in message


def test_brightness_only_jitter_scales_each_image_by_one_factor_in_range():
    # SLCA's CIFAR-100 ColorJitter(brightness=63/255), always applied: each image is multiplied
    # by one factor in [1 - b, 1 + b], so channel ratios (hue, saturation) are kept; contrast,
    # saturation or hue would break the proportion, a probability below 1 would leave some at 1.
    brightness = 63 / 255
    jitter = {"brightness": brightness, "contrast": 0.0, "saturation": 0.0, "hue": 0.0}
    config = AugmentConfig(**{**NO_OP, **jitter, "jitter_prob": 1.0})
    generator = torch.Generator().manual_seed(0)
    # at most 0.7 before, at most 0.7 (1 + b) < 1 after: nothing is clipped
    images = torch.randint(20, 179, (64, 3, 8, 8), generator=generator, dtype=torch.uint8)
    torch.manual_seed(0)
    views = augment_for(config, images, num_views=1, statistics=IDENTITY)(images)
    ratios = views / (images.float() / 255.0)
    factors = ratios.flatten(1).mean(dim=1)
    # the identity crop (area 1) resamples with errors near 1e-6
    same = factors.reshape(-1, 1, 1, 1).expand_as(ratios)
    torch.testing.assert_close(ratios, same, atol=1e-4, rtol=0)
    assert torch.all((factors >= 1 - brightness - 1e-4) & (factors <= 1 + brightness + 1e-4))
    assert torch.all((factors - 1).abs() > 1e-4)
    assert factors.max() - factors.min() > brightness


@pytest.mark.parametrize("side", [8, 40], ids=["enlarge", "shrink"])
def test_bicubic_test_resize_is_pillows_resize_then_centre_crop(side):
    # size 14: resized to round(14 / 0.875) = 16, then the centre 14 x 14 (offset 1)
    images = _images(3, n=2, side=side)
    normalize = Normalize(torch.zeros(3), torch.ones(3), size=14, interpolation="bicubic")
    expected = pillow_resized(images.float() / 255.0, 16).clamp(0.0, 1.0)[..., 1:15, 1:15]
    torch.testing.assert_close(normalize(images), expected, atol=1e-5, rtol=0)
    bilinear = Normalize(torch.zeros(3), torch.ones(3), size=14)
    assert not torch.allclose(bilinear(images), expected, atol=1e-3)


def test_the_test_interpolation_setting_reaches_the_normalisation():
    images = _images(3, n=2, side=8)
    config = AugmentConfig(test_interpolation="bicubic")
    assert augment_for(config, images, input_size=14).normalize.interpolation == "bicubic"
    assert augment_for(AugmentConfig(), images, input_size=14).normalize.interpolation == "bilinear"


def test_the_bicubic_test_resize_exports_to_onnx(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    normalize = Normalize(torch.zeros(3), torch.ones(3), size=14, interpolation="bicubic").eval()
    path = tmp_path / "normalize.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            normalize,
            (_images(3, n=1, side=8),),
            str(path),
            input_names=["images"],
            dynamic_axes={"images": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    images = _images(3, n=3, side=8, seed=1)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (exported,) = session.run(None, {"images": images.numpy()})
    torch.testing.assert_close(torch.from_numpy(exported), normalize(images), atol=1e-5, rtol=0)
