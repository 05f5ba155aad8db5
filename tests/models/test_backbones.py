"""Backbones: shapes, stems, torchvision-compatible state dicts, weight loading, gradients."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from kaizen.errors import ConfigError
from kaizen.models.backbones import (
    BACKBONES,
    STEMS,
    ConvNet,
    ResNet,
    build_backbone,
)
from kaizen.models.weights import load_backbone_weights

# (name, stem, width): resnet50 only at width 0.25 to keep the suite fast on CPU.
CHEAP_CONFIGS = [
    *[("resnet18", stem, width) for stem in STEMS for width in (0.25, 1.0)],
    *[("resnet50", stem, 0.25) for stem in STEMS],
    *[("convnet", "cifar", width) for width in (0.25, 1.0)],
]
FEATURE_DIMS = {
    ("resnet18", 0.25): 128,
    ("resnet18", 1.0): 512,
    ("resnet50", 0.25): 512,
    ("convnet", 0.25): 64,
    ("convnet", 1.0): 256,
}


def _bn_shapes(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.weight": (channels,),
        f"{prefix}.bias": (channels,),
        f"{prefix}.running_mean": (channels,),
        f"{prefix}.running_var": (channels,),
        f"{prefix}.num_batches_tracked": (),
    }


def _torchvision_resnet18_shapes() -> dict[str, tuple[int, ...]]:
    """Parameter and buffer shapes of torchvision's ``resnet18()``, written out without ``fc``."""
    shapes = {"conv1.weight": (64, 3, 7, 7), **_bn_shapes("bn1", 64)}
    in_channels = 64
    for stage, channels in enumerate((64, 128, 256, 512), start=1):
        for index in range(2):
            prefix = f"layer{stage}.{index}"
            block_in = in_channels if index == 0 else channels
            shapes[f"{prefix}.conv1.weight"] = (channels, block_in, 3, 3)
            shapes.update(_bn_shapes(f"{prefix}.bn1", channels))
            shapes[f"{prefix}.conv2.weight"] = (channels, channels, 3, 3)
            shapes.update(_bn_shapes(f"{prefix}.bn2", channels))
            if stage > 1 and index == 0:
                shapes[f"{prefix}.downsample.0.weight"] = (channels, in_channels, 1, 1)
                shapes.update(_bn_shapes(f"{prefix}.downsample.1", channels))
        in_channels = channels
    return shapes


def _state_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize(("name", "stem", "width"), CHEAP_CONFIGS)
def test_output_shape_and_feature_dim(name: str, stem: str, width: float, in_channels: int):
    model = build_backbone(name, stem=stem, width=width, in_channels=in_channels).eval()
    with torch.no_grad():
        features = model(torch.randn(2, in_channels, 32, 32))
    assert model.feature_dim == FEATURE_DIMS[(name, width)]
    assert features.shape == (2, model.feature_dim)


def test_build_backbone_types():
    assert BACKBONES == ("resnet18", "resnet50", "convnet", "vit_tiny", "vit_small", "vit_base")
    assert STEMS == ("cifar", "imagenet")
    assert isinstance(build_backbone("resnet18"), ResNet)
    assert isinstance(build_backbone("convnet", stem="imagenet"), ConvNet)


@pytest.mark.parametrize("side", [16, 28, 32])
def test_convnet_input_sizes(side: int):
    model = ConvNet(width=0.25, in_channels=1).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, side, side)).shape == (2, 64)


def test_width_rounds_and_keeps_at_least_eight_channels():
    tiny = build_backbone("resnet18", width=0.05)
    assert tiny.conv1.out_channels == 8
    assert tiny.layer4[0].conv1.out_channels == round(512 * 0.05)
    assert build_backbone("convnet", width=0.5).feature_dim == 128


@pytest.mark.parametrize(("stem", "side"), [("cifar", 32), ("imagenet", 8)])
def test_stem_resolution_into_layer1(stem: str, side: int):
    model = build_backbone("resnet18", stem=stem, width=0.25).eval()
    seen: list[torch.Size] = []
    model.layer1[0].register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0].shape))
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
    assert seen == [torch.Size([2, 16, side, side])]
    kernel = 3 if stem == "cifar" else 7
    assert model.conv1.kernel_size == (kernel, kernel)


def test_resnet18_state_dict_matches_torchvision_layout():
    shapes = _state_shapes(build_backbone("resnet18", stem="imagenet"))
    assert list(shapes.items()) == list(_torchvision_resnet18_shapes().items())
    assert shapes["layer1.0.conv1.weight"] == (64, 64, 3, 3)
    assert shapes["layer2.0.downsample.0.weight"] == (128, 64, 1, 1)
    assert shapes["layer4.1.bn2.running_var"] == (512,)
    assert not any(key.startswith("fc") for key in shapes)


def test_resnet50_bottleneck_layout():
    full = build_backbone("resnet50", stem="imagenet")
    assert full.feature_dim == 2048
    shapes = _state_shapes(full)
    assert sum(key.endswith("conv1.weight") and key.startswith("layer") for key in shapes) == 16
    assert shapes["layer1.0.downsample.0.weight"] == (256, 64, 1, 1)
    assert shapes["layer2.0.conv2.weight"] == (128, 128, 3, 3)  # stride on the 3x3 conv
    assert shapes["layer4.2.conv3.weight"] == (2048, 512, 1, 1)
    model = build_backbone("resnet50", width=0.25)
    assert model.layer2[0].conv2.stride == (2, 2)
    assert model.layer2[0].conv1.stride == (1, 1)


def test_initialisation():
    model = build_backbone("resnet18", width=0.25)
    assert torch.equal(model.bn1.weight, torch.ones_like(model.bn1.weight))
    assert torch.equal(model.bn1.bias, torch.zeros_like(model.bn1.bias))
    weight = model.layer3[0].conv2.weight  # fan_out = 64 * 3 * 3
    assert abs(weight.std().item() - (2 / (64 * 9)) ** 0.5) < 0.01


@pytest.mark.parametrize(
    ("wrap", "prefix"),
    [
        (None, "module."),
        ("state_dict", "backbone."),
        ("model", "module.encoder."),
        ("backbone", ""),
    ],
)
def test_load_backbone_weights_round_trip(tmp_path: Path, wrap: str | None, prefix: str):
    torch.manual_seed(0)
    source = build_backbone("resnet18", stem="imagenet", width=0.25)
    state: dict[str, Tensor] = {prefix + k: v for k, v in source.state_dict().items()}
    state[prefix + "fc.weight"] = torch.randn(10, source.feature_dim)
    state[prefix + "fc.bias"] = torch.randn(10)
    path = tmp_path / "weights.pt"
    torch.save(state if wrap is None else {wrap: state, "epoch": 3}, path)

    torch.manual_seed(1)
    target = build_backbone("resnet18", stem="imagenet", width=0.25)
    load_backbone_weights(target, path)
    loaded = target.state_dict()
    for key, value in source.state_dict().items():
        assert torch.equal(loaded[key], value), key


def test_load_backbone_weights_without_num_batches_tracked(tmp_path: Path):
    source = build_backbone("convnet", width=0.25)
    state = {k: v for k, v in source.state_dict().items() if "num_batches_tracked" not in k}
    path = tmp_path / "old.pt"
    torch.save(state, path)
    load_backbone_weights(build_backbone("convnet", width=0.25), path)


@pytest.mark.parametrize(
    ("saved", "match"),
    [
        (("resnet18", "imagenet", 0.25), r"shape mismatch .*conv1\.weight.*stem and width"),
        (("resnet18", "cifar", 0.5), r"shape mismatch"),
        (("convnet", "cifar", 0.25), r"missing keys conv1\.weight.*unexpected keys features"),
    ],
)
def test_load_backbone_weights_mismatch(tmp_path: Path, saved: tuple[str, str, float], match):
    name, stem, width = saved
    path = tmp_path / "weights.pt"
    torch.save(build_backbone(name, stem=stem, width=width).state_dict(), path)
    with pytest.raises(ConfigError, match=match):
        load_backbone_weights(build_backbone("resnet18", stem="cifar", width=0.25), path)


def test_load_backbone_weights_bad_files(tmp_path: Path):
    model = build_backbone("convnet", width=0.25)
    with pytest.raises(ConfigError, match="not found"):
        load_backbone_weights(model, tmp_path / "absent.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="cannot read"):
        load_backbone_weights(model, garbage)
    no_tensors = tmp_path / "meta.pt"
    torch.save({"epoch": 3}, no_tensors)
    with pytest.raises(ConfigError, match="no state dict"):
        load_backbone_weights(model, no_tensors)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "vit"}, "valid backbones: resnet18, resnet50, convnet, vit_tiny, vit_small"),
        ({"name": "resnet18", "stem": "tiny"}, "valid stems: cifar, imagenet"),
        ({"name": "convnet", "stem": "tiny"}, "valid stems: cifar, imagenet"),
        ({"name": "resnet18", "width": 0.0}, "width"),
        ({"name": "convnet", "in_channels": 0}, "in_channels"),
    ],
)
def test_build_backbone_rejects_bad_config(kwargs: dict, match: str):
    name = kwargs.pop("name")
    with pytest.raises(ConfigError, match=match) as info:
        build_backbone(name, **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("name", "stem"), [("resnet18", "imagenet"), ("resnet50", "cifar"), ("convnet", "cifar")]
)
def test_gradients_reach_every_parameter(name: str, stem: str):
    torch.manual_seed(0)
    model = build_backbone(name, stem=stem, width=0.25).train()
    features = model(torch.randn(4, 3, 32, 32))
    (features * torch.randn_like(features)).sum().backward()
    for key, param in model.named_parameters():
        assert param.grad is not None, key
        assert torch.isfinite(param.grad).all(), key
        assert param.grad.abs().sum() > 0, key


@pytest.mark.parametrize(
    ("name", "stem"), [("resnet18", "cifar"), ("resnet50", "imagenet"), ("convnet", "cifar")]
)
def test_channels_last_matches_contiguous(name: str, stem: str):
    torch.manual_seed(0)
    model = build_backbone(name, stem=stem, width=0.25).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(images)
        model = model.to(memory_format=torch.channels_last)
        actual = model(images.contiguous(memory_format=torch.channels_last))
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)


def test_cifar_stem_padding_of_the_released_code_widens_the_first_stage():
    same = build_backbone("resnet18", stem="cifar", width=0.125)
    padded = build_backbone("resnet18", stem="cifar", width=0.125, stem_padding=2)
    images = torch.zeros(1, 3, 32, 32)
    assert same.conv1(images).shape[-1] == 32
    assert padded.conv1(images).shape[-1] == 34  # 3x3 kernel, padding 2: one more on each side
    assert padded(images).shape == same(images).shape
