"""Vision Transformer backbone: timm's state-dict layout, forward, weight loading from files and
run directories, position-embedding resampling, errors and the block view."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import Tensor, nn
from torch.nn import functional as F

from conftest import pillow_resized
from kaizen.errors import ConfigError
from kaizen.models.backbones import build_backbone
from kaizen.models.vit import VisionTransformer, resample_position_embedding
from kaizen.models.weights import load_backbone_weights
from kaizen.storage.checkpoints import CheckpointStore, Position

# A ViT small enough for CPU tests: D 32, 2 heads, 2 blocks, 32x32 images in 8x8 patches.
SMALL = {"dim": 32, "num_heads": 2, "depth": 2, "patch_size": 8, "image_size": 32}


def _timm_shapes(
    dim: int, depth: int = 12, patch: int = 16, image: int = 224, in_channels: int = 3
) -> dict[str, tuple[int, ...]]:
    """Keys and shapes of timm's ``vit_*_patch{patch}_{image}`` state dict, in its order, with
    the final norm and without the head (written out from timm's model definition)."""
    hidden = 4 * dim
    shapes: dict[str, tuple[int, ...]] = {
        "cls_token": (1, 1, dim),
        "pos_embed": (1, 1 + (image // patch) ** 2, dim),
        "patch_embed.proj.weight": (dim, in_channels, patch, patch),
        "patch_embed.proj.bias": (dim,),
    }
    for index in range(depth):
        block = {
            "norm1.weight": (dim,),
            "norm1.bias": (dim,),
            "attn.qkv.weight": (3 * dim, dim),
            "attn.qkv.bias": (3 * dim,),
            "attn.proj.weight": (dim, dim),
            "attn.proj.bias": (dim,),
            "norm2.weight": (dim,),
            "norm2.bias": (dim,),
            "mlp.fc1.weight": (hidden, dim),
            "mlp.fc1.bias": (hidden,),
            "mlp.fc2.weight": (dim, hidden),
            "mlp.fc2.bias": (dim,),
        }
        shapes.update({f"blocks.{index}.{key}": shape for key, shape in block.items()})
    shapes.update({"norm.weight": (dim,), "norm.bias": (dim,)})
    return shapes


def _small(seed: int = 0, **overrides: int) -> VisionTransformer:
    torch.manual_seed(seed)
    return VisionTransformer(**{**SMALL, **overrides})


def _images(n: int = 3, side: int = 32, seed: int = 1) -> Tensor:
    return torch.randn(n, 3, side, side, generator=torch.Generator().manual_seed(seed))


def _with_head(state: dict[str, Tensor], dim: int) -> dict[str, Tensor]:
    """``state`` as timm saves it: its own final norm (not the model's) and a 10-class head."""
    generator = torch.Generator().manual_seed(7)
    return {
        **state,
        "norm.weight": torch.rand(dim, generator=generator) + 2.0,
        "norm.bias": torch.rand(dim, generator=generator) + 2.0,
        "head.weight": torch.randn(10, dim, generator=generator),
        "head.bias": torch.randn(10, generator=generator),
    }


@pytest.mark.parametrize(
    ("name", "dim", "heads"), [("tiny", 192, 3), ("small", 384, 6), ("base", 768, 12)]
)
def test_state_dict_is_timms_vit_patch16_224_without_the_head(name: str, dim: int, heads: int):
    with torch.device("meta"):
        model = build_backbone(f"vit_{name}")
    shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert list(shapes.items()) == list(_timm_shapes(dim).items())
    assert isinstance(model, VisionTransformer)
    assert model.feature_dim == dim
    assert all(block.attn.num_heads == heads for block in model.blocks)
    assert all(block.norm1.eps == 1e-6 for block in model.blocks) and model.norm.eps == 1e-6
    assert isinstance(model.blocks[0].mlp.act, nn.GELU)
    assert model.blocks[0].mlp.act.approximate == "none"


def test_forward_is_the_final_norm_of_the_cls_token():
    model = VisionTransformer("tiny", patch_size=8, image_size=32, depth=2).eval()
    images = _images()
    with torch.no_grad():
        features = model(images)
        patches = model.patch_embed.proj(images).flatten(2).transpose(1, 2)  # (N, 16, D)
        cls = model.cls_token.expand(len(images), -1, -1)
        tokens = torch.cat([cls, patches], dim=1) + model.pos_embed
        for block in model.blocks:
            tokens = block(tokens)
        expected = model.norm(tokens[:, 0])
    assert features.shape == (3, 192)
    torch.testing.assert_close(features, expected, rtol=0, atol=0)


def test_attention_matches_torch_multihead_attention_with_the_same_weights():
    # The fused qkv rows are queries, keys, values, each split into heads: timm's layout, and
    # nn.MultiheadAttention's in_proj layout.
    torch.manual_seed(0)
    model = _small()
    attention = model.blocks[0].attn
    reference = nn.MultiheadAttention(32, 2, batch_first=True)
    with torch.no_grad():
        reference.in_proj_weight.copy_(attention.qkv.weight)
        reference.in_proj_bias.copy_(attention.qkv.bias)
        reference.out_proj.weight.copy_(attention.proj.weight)
        reference.out_proj.bias.copy_(torch.randn(32))
        attention.proj.bias.copy_(reference.out_proj.bias)
        x = torch.randn(2, 5, 32)
        expected, _ = reference(x, x, x, need_weights=False)
        torch.testing.assert_close(attention(x), expected, rtol=1e-5, atol=1e-5)


def test_initialisation_is_seeded_and_follows_the_vit_scheme():
    first, second = _small(seed=3), _small(seed=3)
    for (key, value), other in zip(
        first.state_dict().items(), second.state_dict().values(), strict=True
    ):
        assert torch.equal(value, other), key
    assert not torch.equal(first.pos_embed, _small(seed=4).pos_embed)
    block = first.blocks[0]
    assert torch.all(block.attn.qkv.bias == 0) and torch.all(first.patch_embed.proj.bias == 0)
    assert torch.all(block.norm1.weight == 1) and torch.all(first.norm.bias == 0)
    for weight in (block.attn.qkv.weight, block.mlp.fc1.weight, first.pos_embed):
        assert weight.abs().max() <= 0.04 and 0.01 < weight.std() < 0.02
    assert first.cls_token.abs().max() < 1e-4


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_round_trip_drops_the_head_and_keeps_the_fresh_norm(tmp_path: Path, suffix: str):
    source = _small(seed=0)
    state = _with_head(source.state_dict(), 32)
    path = tmp_path / f"vit{suffix}"
    if suffix == ".safetensors":
        save_file(state, path)
    else:
        torch.save({"model": state}, path)
    target = _small(seed=1)
    fresh_norm = {key: value.clone() for key, value in target.norm.state_dict().items()}
    load_backbone_weights(target, path)
    loaded = target.state_dict()
    for key, value in source.state_dict().items():
        if key.startswith("norm."):
            assert torch.equal(loaded[key], fresh_norm[key.removeprefix("norm.")]), key
            assert not torch.equal(loaded[key], state[key]), key
        else:
            assert torch.equal(loaded[key], value), key


def test_resampling_to_the_same_grid_is_the_identity():
    pos_embed = torch.randn(1, 1 + 16, 8)
    torch.testing.assert_close(resample_position_embedding(pos_embed, 4), pos_embed)


def test_resampling_keeps_the_cls_position_and_the_grid_orientation():
    # Each patch position holds its row index: after resampling, rows stay rows.
    rows = torch.arange(4.0).repeat_interleave(4)  # row-major 4x4 grid
    pos_embed = torch.cat([torch.full((1, 1, 2), 5.0), rows.reshape(1, 16, 1).expand(1, 16, 2)], 1)
    resampled = resample_position_embedding(pos_embed, 8)
    assert resampled.shape == (1, 65, 2)
    assert torch.equal(resampled[:, 0], pos_embed[:, 0])
    grid = resampled[0, 1:, 0].reshape(8, 8)
    torch.testing.assert_close(grid, grid[:, :1].expand(8, 8))  # constant along each row
    assert torch.all(grid[1:, 0] > grid[:-1, 0])  # increasing down the rows


def _pos_embed(grid: int, dim: int = 5) -> Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(1, 1 + grid * grid, dim, generator=generator)


def _pillow_resampled(pos_embed: Tensor, grid: int) -> Tensor:
    """The patch positions of (1, 1 + G * G, D) resized channel by channel by Pillow's bicubic,
    which torch's antialiased bicubic (timm's resampling) mirrors: (1, grid * grid, D)."""
    old_grid = math.isqrt(pos_embed.shape[1] - 1)
    planes = pos_embed[0, 1:].reshape(old_grid, old_grid, -1).permute(2, 0, 1)
    return pillow_resized(planes, grid).permute(1, 2, 0).reshape(1, grid * grid, -1)


@pytest.mark.parametrize(("old_grid", "grid"), [(4, 7), (14, 8)], ids=["enlarge", "shrink"])
def test_resampling_is_timms_antialiased_bicubic(old_grid: int, grid: int):
    pos_embed = _pos_embed(old_grid)
    resampled = resample_position_embedding(pos_embed, grid)
    assert resampled.shape == (1, 1 + grid * grid, 5)
    assert torch.equal(resampled[:, :1], pos_embed[:, :1])
    torch.testing.assert_close(
        resampled[:, 1:], _pillow_resampled(pos_embed, grid), atol=1e-5, rtol=0
    )


def test_bicubic_without_antialiasing_differs_from_timm_when_shrinking():
    # The resampling before timm's antialiasing was adopted: the test above would fail on it.
    pos_embed = _pos_embed(14)
    image = pos_embed[:, 1:].reshape(1, 14, 14, 5).permute(0, 3, 1, 2)
    plain = F.interpolate(image, size=(8, 8), mode="bicubic", align_corners=False)
    patches = plain.permute(0, 2, 3, 1).reshape(1, 64, 5)
    assert (patches - _pillow_resampled(pos_embed, 8)).abs().max() > 1e-2


def test_a_file_at_another_grid_loads_with_resampled_positions(tmp_path: Path):
    source = _small(seed=0)  # 32 / 8: a 4x4 grid
    path = tmp_path / "grid4.safetensors"
    save_file(source.state_dict(), path)
    target = _small(seed=1, image_size=64)  # 64 / 8: an 8x8 grid
    load_backbone_weights(target, path)
    assert target.pos_embed.shape == (1, 65, 32)
    assert torch.equal(target.pos_embed[:, 0], source.pos_embed[:, 0])
    torch.testing.assert_close(
        target.pos_embed, resample_position_embedding(source.pos_embed.detach(), 8)
    )
    assert torch.equal(target.blocks[1].mlp.fc2.weight, source.blocks[1].mlp.fc2.weight)
    assert target(_images(side=64)).shape == (3, 32)


def _one_line_error(backbone: nn.Module, path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_backbone_weights(backbone, path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_vit_base_file_into_vit_small_names_the_mis_shaped_keys(tmp_path: Path):
    base = {key: torch.zeros(shape) for key, shape in _timm_shapes(768, depth=1, image=32).items()}
    path = tmp_path / "vit_base.pth"
    torch.save(_with_head(base, 768), path)
    small = VisionTransformer("small", depth=1, image_size=32)
    message = _one_line_error(small, path)
    assert "shape mismatch (file vs model) cls_token (1, 1, 768) vs (1, 1, 384)" in message
    assert "missing keys" not in message and "unexpected keys" not in message
    assert "patch size" in message


def test_a_resnet_file_into_a_vit_names_missing_and_unexpected_keys(tmp_path: Path):
    path = tmp_path / "resnet18.pt"
    torch.save(build_backbone("resnet18", width=0.25).state_dict(), path)
    message = _one_line_error(_small(), path)
    assert "missing keys cls_token, pos_embed, patch_embed.proj.weight ..." in message
    assert "unexpected keys conv1.weight, bn1.weight, bn1.bias ..." in message


def test_a_truncated_safetensors_file_cannot_be_read(tmp_path: Path):
    path = tmp_path / "vit.safetensors"
    save_file(_small().state_dict(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    message = _one_line_error(_small(), path)
    assert message.startswith(f"cannot read backbone weights {path}: ")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"image_size": 30, "patch_size": 8},
            r"image size 30 is not a multiple of the patch size 8",
        ),
        ({"image_size": 4, "patch_size": 8}, r"image size 4 .* patch size 8"),
        ({"num_heads": 3}, r"dim 32 and num_heads 3"),
        ({"depth": 0}, r"depth must be >= 1"),
    ],
)
def test_bad_vit_configs_are_one_line_config_errors(kwargs: dict[str, int], match: str):
    with pytest.raises(ConfigError, match=match) as info:
        VisionTransformer(**{**SMALL, **kwargs})
    assert "\n" not in str(info.value)


def test_build_backbone_checks_vit_arguments():
    with pytest.raises(ConfigError, match="width scales the CNNs only"):
        build_backbone("vit_tiny", width=0.5, image_size=32)
    with pytest.raises(ConfigError, match="resize the images to a multiple of 16"):
        build_backbone("vit_small", image_size=100)
    with pytest.raises(ConfigError, match="valid widths: tiny, small, base"):
        VisionTransformer("huge")
    with pytest.raises(ValueError, match="takes 32x32 images, got 64x64"):
        _small()(_images(side=64))


def test_vit_blocks_and_freezable_prefix():
    model = _small(depth=3)
    assert model.block_names() == ["embed", "blocks.0", "blocks.1", "blocks.2"]
    assert model.freezable_blocks == 3
    embed_state = model.block_state(0)
    assert any(t is model.cls_token for t in embed_state)
    assert any(t is model.pos_embed for t in embed_state)
    assert any(t is model.patch_embed.proj.weight for t in embed_state)
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        model.freeze_prefix(4)


@pytest.mark.parametrize("depth", [1, 2])
def test_freeze_prefix_leaves_the_first_blocks_without_gradients(depth: int):
    model = _small(depth=3).train()
    model(_images()).sum().backward()  # a stale gradient, which freezing must clear
    model.freeze_prefix(depth)
    frozen = {id(t) for index in range(depth) for t in model.block_state(index)}
    assert all(
        p.grad is None and not p.requires_grad for p in model.parameters() if id(p) in frozen
    )
    model(_images()).sum().backward()
    for key, param in model.named_parameters():
        if id(param) in frozen:
            assert param.grad is None, key
        else:
            assert param.requires_grad and param.grad is not None, key
    assert model.norm.weight.grad is not None


@pytest.mark.parametrize("frozen", [0, 2])
def test_forward_from_prefix_features_is_the_forward(frozen: int):
    model = _small(depth=3).eval()
    model.freeze_prefix(frozen)
    images = _images()
    expected = model(images)
    for depth in (1, 2, 3):
        prefix = model.prefix_features(images, depth)
        assert prefix.shape == (3, 17, 32) and not prefix.requires_grad
        torch.testing.assert_close(model(prefix, depth), expected, rtol=0, atol=0)


def test_pooled_block_features_average_the_patch_tokens_of_each_block():
    model = _small(depth=2).eval()
    images = _images()
    features = model.pooled_block_features(images)
    assert [f.shape for f in features] == [(3, 32)] * 3
    with torch.no_grad():
        tokens = model.embed(images)
        torch.testing.assert_close(features[0], tokens[:, 1:].mean(dim=1), rtol=0, atol=0)
        for block, pooled in zip(model.blocks, features[1:], strict=True):
            tokens = block(tokens)
            torch.testing.assert_close(pooled, tokens[:, 1:].mean(dim=1), rtol=0, atol=0)


def _save_run_checkpoint(run_dir: Path, model: nn.Module, position: Position) -> None:
    """A checkpoint as the trainer writes it: the learner's state under ``"learner"``, with the
    backbone's entries under ``backbone.`` beside other modules' (here a momentum copy)."""
    learner = {f"backbone.{key}": value for key, value in model.state_dict().items()}
    learner.update({f"ssl.momentum_backbone.{k}": v * 0 for k, v in model.state_dict().items()})
    learner["classifier.net.0.weight"] = torch.zeros(10, 32)
    state = {"format": 2, "position": {"task": position.task}, "learner": learner}
    CheckpointStore(run_dir / "checkpoints", keep=3, warn=print).save(state, position)


def test_weights_from_a_run_directory_come_from_its_newest_checkpoint(tmp_path: Path):
    older, newer = _small(seed=0), _small(seed=1)
    _save_run_checkpoint(tmp_path, older, Position(1, 0, 0))
    _save_run_checkpoint(tmp_path, newer, Position(2, 0, 0))
    target = _small(seed=2)
    fresh_norm = target.norm.weight.detach().clone()
    load_backbone_weights(target, tmp_path)
    assert torch.equal(target.pos_embed, newer.pos_embed)
    assert torch.equal(target.blocks[1].attn.qkv.weight, newer.blocks[1].attn.qkv.weight)
    assert torch.equal(target.norm.weight, fresh_norm)


def test_a_run_directory_without_checkpoints_is_a_one_line_error(tmp_path: Path):
    message = _one_line_error(_small(), tmp_path)
    assert f"{tmp_path} is a directory without a readable checkpoint in checkpoints/" in message
