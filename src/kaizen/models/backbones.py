"""Image backbones: ResNet-18/50 (He et al. 2016), a small CPU-friendly ConvNet and
Vision Transformers (``kaizen.models.vit``); their pre-trained weights load through
``kaizen.models.weights``.

Every backbone maps images (N, C_in, H, W) to features (N, feature_dim) and exposes
``feature_dim``; each is a ``BlockBackbone``, whose leading blocks can be frozen. ResNet
parameter names follow the torchvision layout, so torchvision ImageNet weights (without
``fc.*``) load into width-1.0 models with the ImageNet stem; ViT names follow timm's, so its
``vit_*_patch16_224`` weights (without the head) load into the ViT of the same width.

Reference: K. He, X. Zhang, S. Ren, J. Sun. "Deep Residual Learning for Image Recognition."
CVPR 2016.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from kaizen.errors import ConfigError
from kaizen.models.blocks import BlockBackbone
from kaizen.models.vit import VisionTransformer

VIT_BACKBONES: dict[str, str] = {"vit_tiny": "tiny", "vit_small": "small", "vit_base": "base"}
"""The ViT backbones and their widths (``kaizen.models.vit.VIT_WIDTHS``)."""
BACKBONES: tuple[str, ...] = ("resnet18", "resnet50", "convnet", *VIT_BACKBONES)
STEMS: tuple[str, ...] = ("cifar", "imagenet")

_BASE_CHANNELS = 64
_CONVNET_BASE_CHANNELS = 32
_MIN_CHANNELS = 8


def _scaled(channels: int, width: float) -> int:
    """Channel count ``channels * width`` rounded to an int, at least ``_MIN_CHANNELS``."""
    return max(_MIN_CHANNELS, round(channels * width))


def _check_input_args(width: float, in_channels: int) -> None:
    """Raise ``ConfigError`` for a non-positive width or channel count."""
    if width <= 0:
        raise ConfigError(f"backbone width must be > 0, got {width}")
    if in_channels < 1:
        raise ConfigError(f"backbone in_channels must be >= 1 (usually 1 or 3), got {in_channels}")


def _init_weights(model: nn.Module) -> None:
    """Kaiming-normal (fan-out, ReLU) convolutions; BatchNorm weight 1 and bias 0."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def _conv_bn(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    padding: int | None = None,
) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    """A bias-free convolution and the BatchNorm that follows it; "same" padding unless
    ``padding`` is given."""
    conv = nn.Conv2d(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=kernel_size // 2 if padding is None else padding,
        bias=False,
    )
    return conv, nn.BatchNorm2d(out_channels)


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Sequential | None:
    """Projection shortcut (1x1 conv + BN) when the residual changes shape, else identity."""
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(*_conv_bn(in_channels, out_channels, 1, stride))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34).

    Shapes: (N, in_channels, H, W) -> (N, planes, H / stride, W / stride).
    """

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(in_channels, planes, 3, stride)
        self.conv2, self.bn2 = _conv_bn(planes, planes, 3)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_channels, planes, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (strided) -> 1x1 expand by 4, with a residual connection (ResNet-50).

    The stride sits on the 3x3 convolution (the "v1.5" variant of He et al. 2016).
    Shapes: (N, in_channels, H, W) -> (N, 4 * planes, H / stride, W / stride).
    """

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1, self.bn1 = _conv_bn(in_channels, planes, 1)
        self.conv2, self.bn2 = _conv_bn(planes, planes, 3, stride)
        self.conv3, self.bn3 = _conv_bn(planes, out_channels, 1)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_channels, out_channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(BlockBackbone):
    """Residual network (He et al. 2016) without the classification layer.

    Args:
        block: ``BasicBlock`` (ResNet-18: layers (2, 2, 2, 2)) or ``Bottleneck``
            (ResNet-50: layers (3, 4, 6, 3)).
        layers: number of blocks in each of the four stages.
        stem: ``"cifar"``: 3x3 conv, stride 1, no max-pool (layer1 sees H x W);
            ``"imagenet"``: 7x7 conv, stride 2, then 3x3 max-pool, stride 2 (layer1 sees H/4 x W/4).
        stem_padding: the CIFAR stem convolution's padding; None: 1 ("same"). Kaizen's
            released code pads by 2, so layer1 sees (H + 2) x (W + 2).
        width: multiplier on all channel counts (base 64), each rounded and at least 8.
        in_channels: image channels C_in (1 or 3).

    Stages 2-4 halve the resolution, so layer4 runs at H/8 (CIFAR stem) or H/32 (ImageNet stem).
    Shapes: (N, C_in, H, W) -> (N, feature_dim), after global average pooling;
    ``feature_dim`` = 8 * 64 * width * block.expansion (512 for ResNet-18, 2048 for ResNet-50).

    Blocks: the stem, then every residual block of layer1..layer4 ("stem", "layer1.0", ...;
    9 for ResNet-18); the stem and the blocks of layer1..layer3 may be frozen.
    """

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: Sequence[int],
        *,
        stem: str = "cifar",
        width: float = 1.0,
        in_channels: int = 3,
        stem_padding: int | None = None,
    ) -> None:
        super().__init__()
        if stem not in STEMS:
            raise ConfigError(f"unknown backbone stem {stem!r}; valid stems: {', '.join(STEMS)}")
        _check_input_args(width, in_channels)
        stem_channels = _scaled(_BASE_CHANNELS, width)
        if stem == "cifar":
            self.conv1, self.bn1 = _conv_bn(in_channels, stem_channels, 3, padding=stem_padding)
            self.maxpool: nn.Module = nn.Identity()
        else:
            self.conv1, self.bn1 = _conv_bn(in_channels, stem_channels, 7, stride=2)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.relu = nn.ReLU(inplace=True)

        channels = stem_channels
        stages: list[nn.Sequential] = []
        for index, num_blocks in enumerate(layers):
            planes = _scaled(_BASE_CHANNELS * 2**index, width)
            blocks: list[nn.Module] = []
            for block_index in range(num_blocks):
                stride = 2 if index > 0 and block_index == 0 else 1
                blocks.append(block(channels, planes, stride))
                channels = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim: int = channels
        _init_weights(self)

    def block_layout(self) -> list[tuple[str, tuple[str, ...]]]:
        layout: list[tuple[str, tuple[str, ...]]] = [("stem", ("conv1", "bn1", "relu", "maxpool"))]
        stages = (self.layer1, self.layer2, self.layer3, self.layer4)
        for stage_index, stage in enumerate(stages, start=1):
            names = (f"layer{stage_index}.{index}" for index in range(len(stage)))
            layout.extend((name, (name,)) for name in names)
        return layout

    @property
    def freezable_blocks(self) -> int:
        return 1 + len(self.layer1) + len(self.layer2) + len(self.layer3)


class ConvNet(BlockBackbone):
    """A small four-stage CNN for quick CPU runs.

    Each stage is conv3x3 -> BatchNorm -> ReLU with channels base * (1, 2, 4, 8),
    base = round(32 * width) (at least 8); stages 1-3 end with a 2x2 max-pool.
    Works for inputs of side 16 and above (16, 28, 32, ...).
    Shapes: (N, C_in, H, W) -> (N, feature_dim) after global average pooling,
    ``feature_dim`` = 8 * base (256 at width 1).

    Blocks: the four stages "stage1".."stage4" (slices of ``features``); stages 1-3 may be frozen.
    """

    def __init__(self, *, width: float = 1.0, in_channels: int = 3) -> None:
        super().__init__()
        _check_input_args(width, in_channels)
        base = _scaled(_CONVNET_BASE_CHANNELS, width)
        layers: list[nn.Module] = []
        channels = in_channels
        for index, multiplier in enumerate((1, 2, 4, 8)):
            out_channels = base * multiplier
            layers.extend((*_conv_bn(channels, out_channels, 3), nn.ReLU(inplace=True)))
            if index < 3:
                layers.append(nn.MaxPool2d(2))
            channels = out_channels
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim: int = channels
        _init_weights(self)

    def block_layout(self) -> list[tuple[str, tuple[str, ...]]]:
        starts = [i for i, layer in enumerate(self.features) if isinstance(layer, nn.Conv2d)]
        ends = [*starts[1:], len(self.features)]
        return [
            (f"stage{index}", tuple(f"features.{i}" for i in range(start, end)))
            for index, (start, end) in enumerate(zip(starts, ends, strict=True), start=1)
        ]

    @property
    def freezable_blocks(self) -> int:
        return len(self.block_names()) - 1


_RESNET_LAYOUTS: dict[str, tuple[type[BasicBlock | Bottleneck], tuple[int, ...]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}


def build_backbone(
    name: str,
    *,
    stem: str = "cifar",
    width: float = 1.0,
    in_channels: int = 3,
    image_size: int = 224,
    patch_size: int = 16,
    depth: int | None = None,
    stem_padding: int | None = None,
) -> ResNet | ConvNet | VisionTransformer:
    """Build a backbone by name: ``"resnet18"``, ``"resnet50"``, ``"convnet"``, ``"vit_tiny"``,
    ``"vit_small"`` or ``"vit_base"``.

    ``stem`` selects the ResNet input stem (``"cifar"`` or ``"imagenet"``); the ConvNet and the
    ViTs ignore it, but it must still be valid. ``width`` scales the CNNs' channels; a ViT's
    width is in its name, so it must be 1. ``stem_padding`` pads the ResNets' CIFAR stem
    (None: "same"). ``image_size`` (the side of the square input
    images), ``patch_size`` and ``depth`` (blocks; None: 12) are used by the ViTs only.
    Raises ``ConfigError`` for an unknown name or stem, a ViT width other than 1 or an image
    size that is not a multiple of the patch size. The returned module maps
    (N, in_channels, H, W) -> (N, module.feature_dim).
    """
    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone {name!r}; valid backbones: {', '.join(BACKBONES)}")
    if stem not in STEMS:
        raise ConfigError(f"unknown backbone stem {stem!r}; valid stems: {', '.join(STEMS)}")
    if name in VIT_BACKBONES:
        if width != 1.0:
            raise ConfigError(
                f"backbone width scales the CNNs only, got width {width} for {name}; set "
                "width to 1 and pick the ViT size by name (vit_tiny, vit_small, vit_base)"
            )
        return VisionTransformer(
            VIT_BACKBONES[name],
            patch_size=patch_size,
            image_size=image_size,
            in_channels=in_channels,
            depth=depth or 12,
        )
    if name == "convnet":
        return ConvNet(width=width, in_channels=in_channels)
    block, layers = _RESNET_LAYOUTS[name]
    return ResNet(
        block, layers, stem=stem, width=width, in_channels=in_channels, stem_padding=stem_padding
    )
