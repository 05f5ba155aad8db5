"""Vision Transformer backbones (ViT-Ti/S/B with 16x16 patches) as block backbones.

An image is cut into non-overlapping P x P patches, each projected linearly to a D-dimensional
token; a learned [CLS] token is prepended and a learned position embedding (one per token, the
[CLS] position included) is added; then ``depth`` pre-norm Transformer blocks
(multi-head self-attention, then a two-layer GELU MLP of width 4D, each with a residual
connection) run over the tokens. The features are the [CLS] token after a final LayerNorm.

Parameter names and shapes are those of timm's ``vit_{tiny,small,base}_patch16_224`` without
the classification head, so those ImageNet weights load (``load_backbone_weights``). The final
LayerNorm is always freshly initialised: SLCA (Zhang et al., ICCV 2023) drops the pretrained
final norm and head and trains a new LayerNorm on top of the pretrained blocks.

Reference: A. Dosovitskiy et al. "An Image is Worth 16x16 Words: Transformers for Image
Recognition at Scale." ICLR 2021.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kaizen.config import check_patch_grid
from kaizen.errors import ConfigError
from kaizen.models.blocks import BlockBackbone

VIT_WIDTHS: dict[str, tuple[int, int]] = {"tiny": (192, 3), "small": (384, 6), "base": (768, 12)}
"""Token dimension D and number of attention heads of each named width."""

MLP_RATIO = 4
LAYER_NORM_EPS = 1e-6
INIT_STD = 0.02
CLS_INIT_STD = 1e-6


def _layer_norm(dim: int) -> nn.LayerNorm:
    return nn.LayerNorm(dim, eps=LAYER_NORM_EPS)


class PatchEmbedding(nn.Module):
    """Non-overlapping P x P patches, each projected to a D-dimensional token.

    Shapes: (N, C_in, H, W) -> (N, L, D), L = (H / P) * (W / P), the patches in row-major order.
    """

    def __init__(self, in_channels: int, dim: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: Tensor) -> Tensor:
        return self.proj(images).flatten(2).transpose(1, 2)


class SelfAttention(nn.Module):
    """Multi-head self-attention with one fused query/key/value projection.

    The rows of ``qkv.weight`` (3D, D) are the queries', then the keys', then the values'
    projections, each split into ``num_heads`` consecutive groups of D / num_heads rows.
    Shapes: (N, L, D) -> (N, L, D).
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        batch, length, dim = x.shape
        # (N, L, 3D) -> (3, N, heads, L, D / heads)
        qkv = self.qkv(x).reshape(batch, length, 3, self.num_heads, dim // self.num_heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attended = F.scaled_dot_product_attention(query, key, value)
        return self.proj(attended.transpose(1, 2).reshape(batch, length, dim))


class MLP(nn.Module):
    """Two linear layers with a GELU between: (N, L, D) -> (N, L, hidden) -> (N, L, D)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class TransformerBlock(nn.Module):
    """A pre-norm Transformer encoder block: x + MSA(LN(x)), then x + MLP(LN(x)).

    Shapes: (N, L, D) -> (N, L, D).
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.norm1 = _layer_norm(dim)
        self.attn = SelfAttention(dim, num_heads)
        self.norm2 = _layer_norm(dim)
        self.mlp = MLP(dim, MLP_RATIO * dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def resample_position_embedding(pos_embed: Tensor, grid: int) -> Tensor:
    """Position embeddings of a square patch grid resampled to a ``grid`` x ``grid`` one.

    The patch positions, seen as a D-channel image, are interpolated bicubically with
    antialiasing (``align_corners=False``, in float32), as timm's ``resample_abs_pos_embed``
    does when it loads a checkpoint at another grid: torch's antialiased bicubic is Pillow's
    (cubic coefficient -0.5, kernel widened when shrinking), so pre-trained weights resample
    as they do in timm. The [CLS] position is kept as it is.
    Shapes: (1, 1 + G * G, D) -> (1, 1 + grid * grid, D). Raises ``ValueError`` when the
    number of patch positions is not a square.
    """
    cls_position, patches = pos_embed[:, :1], pos_embed[:, 1:]
    if not _is_square(patches.shape[1]):
        raise ValueError(f"{patches.shape[1]} patch position embeddings do not form a square grid")
    old_grid = math.isqrt(patches.shape[1])
    dim = patches.shape[-1]
    image = patches.reshape(1, old_grid, old_grid, dim).permute(0, 3, 1, 2).float()
    image = F.interpolate(
        image, size=(grid, grid), mode="bicubic", align_corners=False, antialias=True
    )
    patches = image.permute(0, 2, 3, 1).reshape(1, grid * grid, dim).to(pos_embed.dtype)
    return torch.cat([cls_position, patches], dim=1)


class VisionTransformer(BlockBackbone):
    """Vision Transformer (Dosovitskiy et al., ICLR 2021) without the classification head.

    Args:
        width_name: ``"tiny"`` (D 192, 3 heads), ``"small"`` (384, 6) or ``"base"`` (768, 12);
            None to give ``dim`` and ``num_heads`` instead.
        dim: token dimension D (only without ``width_name``).
        num_heads: attention heads; must divide ``dim`` (only without ``width_name``).
        depth: number of Transformer blocks.
        patch_size: patch side P.
        image_size: side of the square input images; a multiple of P.
        in_channels: image channels C_in.

    Shapes: (N, C_in, image_size, image_size) -> (N, D): the [CLS] token after the final
    LayerNorm ``norm``; ``feature_dim`` = D. Inside, tokens are (N, 1 + L, D) with
    L = (image_size / P)^2 and the [CLS] token first.

    Blocks: the embedding ("embed": ``patch_embed``, ``cls_token`` and ``pos_embed``), then the
    Transformer blocks "blocks.0" .. "blocks.{depth-1}"; all but the last may be frozen. The
    final norm belongs to no block and is never frozen.

    Initialisation (from torch's global RNG): truncated normal (std 0.02, cut at two standard
    deviations) for the linear weights, the patch projection and ``pos_embed``; normal with
    std 1e-6 for ``cls_token``; zero biases; LayerNorm weight 1 and bias 0.
    """

    def __init__(
        self,
        width_name: str | None = None,
        *,
        dim: int | None = None,
        num_heads: int | None = None,
        depth: int = 12,
        patch_size: int = 16,
        image_size: int = 224,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        dim, num_heads = _resolve_width(width_name, dim, num_heads)
        if depth < 1:
            raise ConfigError(f"ViT depth must be >= 1, got {depth}")
        if in_channels < 1:
            raise ConfigError(
                f"backbone in_channels must be >= 1 (usually 1 or 3), got {in_channels}"
            )
        grid = check_patch_grid(image_size, patch_size)
        self.image_size = image_size
        self.patch_size = patch_size
        self.patch_embed = PatchEmbedding(in_channels, dim, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, dim))
        self.blocks = nn.Sequential(*(TransformerBlock(dim, num_heads) for _ in range(depth)))
        self.norm = _layer_norm(dim)
        self.feature_dim: int = dim
        self._init_weights()

    def _init_weights(self) -> None:
        """Truncated-normal weights, zero biases, unit LayerNorms (see the class docstring)."""
        nn.init.trunc_normal_(self.pos_embed, std=INIT_STD, a=-2 * INIT_STD, b=2 * INIT_STD)
        nn.init.normal_(self.cls_token, std=CLS_INIT_STD)
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Conv2d):
                nn.init.trunc_normal_(module.weight, std=INIT_STD, a=-2 * INIT_STD, b=2 * INIT_STD)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    @property
    def grid_size(self) -> int:
        """The side of the patch grid, image_size / patch_size."""
        return self.image_size // self.patch_size

    def embed(self, images: Tensor) -> Tensor:
        """Tokens of ``images``: (N, C_in, H, W) -> (N, 1 + L, D), [CLS] first, positions added.

        Raises ``ValueError`` unless the images are ``image_size`` x ``image_size``.
        """
        if images.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"this ViT takes {self.image_size}x{self.image_size} images, got "
                f"{images.shape[-2]}x{images.shape[-1]}"
            )
        patches = self.patch_embed(images)
        cls_token = self.cls_token.expand(patches.shape[0], -1, -1)
        return torch.cat([cls_token, patches], dim=1) + self.pos_embed

    def block_layout(self) -> list[tuple[str, tuple[str, ...]]]:
        return [
            ("embed", ("patch_embed", "cls_token", "pos_embed")),
            *((f"blocks.{index}", (f"blocks.{index}",)) for index in range(len(self.blocks))),
        ]

    def apply_block(self, index: int, x: Tensor) -> Tensor:
        """Block ``index``: the embedding (images -> tokens) or a Transformer block (tokens)."""
        return self.embed(x) if index == 0 else super().apply_block(index, x)

    def pool(self, x: Tensor) -> Tensor:
        """The final LayerNorm of the [CLS] token: (N, 1 + L, D) -> (N, D)."""
        return self.norm(x[:, 0])

    def summarise(self, x: Tensor) -> Tensor:
        """The average of the patch tokens: (N, 1 + L, D) -> (N, D).

        The counterpart of a CNN's average over space; the [CLS] token is left out, as after
        the embedding it is the same for every image.
        """
        return x[:, 1:].mean(dim=1)

    @property
    def freezable_blocks(self) -> int:
        return len(self.blocks)


def _resolve_width(
    width_name: str | None, dim: int | None, num_heads: int | None
) -> tuple[int, int]:
    """(D, heads) of a named width, or the explicit ``dim`` and ``num_heads``, checked."""
    if width_name is not None:
        if width_name not in VIT_WIDTHS:
            raise ConfigError(
                f"unknown ViT width {width_name!r}; valid widths: {', '.join(VIT_WIDTHS)}"
            )
        if dim is not None or num_heads is not None:
            raise ConfigError("give a ViT either a width name or dim and num_heads, not both")
        return VIT_WIDTHS[width_name]
    if dim is None or num_heads is None:
        raise ConfigError("a ViT needs a width name (tiny, small, base) or dim and num_heads")
    if dim < 1 or num_heads < 1 or dim % num_heads:
        raise ConfigError(
            f"ViT dim must be a positive multiple of num_heads, got dim {dim} and "
            f"num_heads {num_heads}"
        )
    return dim, num_heads


_NOT_LOADED = frozenset({"head", "head_drop", "fc_norm"})
"""First atoms of the keys of a ViT file that are not loaded: the classification head and a
pooled final norm. The final norm ``norm.*`` is replaced by the model's own."""


def vit_state_for(model: VisionTransformer, state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A ViT state dict in timm's layout, made ready to load strictly into ``model``.

    Drops ``head.*``, ``head_drop.*`` and ``fc_norm.*`` and puts the model's own ``norm.*`` in
    place of the file's, so the final norm stays freshly initialised; resamples ``pos_embed``
    (:func:`resample_position_embedding`) when it has the model's D and a square patch grid
    of another size. Other keys are left as they are, for the strict check to report.
    """
    adapted = {
        key: value for key, value in state.items() if key.split(".", 1)[0] not in _NOT_LOADED
    }
    adapted.update({f"norm.{name}": value for name, value in model.norm.state_dict().items()})
    pos_embed = adapted.get("pos_embed")
    expected = model.pos_embed.shape
    if (
        pos_embed is not None
        and pos_embed.ndim == 3
        and pos_embed.shape[0] == 1
        and pos_embed.shape[2] == expected[2]
        and pos_embed.shape[1] != expected[1]
        and _is_square(pos_embed.shape[1] - 1)
    ):
        adapted["pos_embed"] = resample_position_embedding(pos_embed, model.grid_size)
    return adapted


def _is_square(count: int) -> bool:
    """Whether ``count`` patches form a square grid of side >= 1."""
    return count >= 1 and math.isqrt(count) ** 2 == count
