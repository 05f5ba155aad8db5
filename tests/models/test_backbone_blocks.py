"""Backbone blocks and frozen blocks: the unfrozen forward is unchanged, the frozen blocks get no
gradient and keep BatchNorm statistics, a frozen prefix saves no activations for backward, and
a frozen block between trainable ones passes the gradient on without its own."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from torch import Tensor, nn

from kaizen.engine.costs import BackwardFlops
from kaizen.models.backbones import ConvNet, ResNet, build_backbone
from kaizen.models.blocks import BlockBackbone

# (name, stem): resnet50 and the ImageNet stem at width 0.25 only, like the other model tests.
CONFIGS = [("resnet18", "cifar"), ("resnet18", "imagenet"), ("resnet50", "cifar"), ("convnet", "")]


def _build(name: str, stem: str = "cifar", seed: int = 0) -> BlockBackbone:
    torch.manual_seed(seed)
    return build_backbone(name, stem=stem or "cifar", width=0.25)


def _reference_forward(model: BlockBackbone, x: Tensor) -> Tensor:
    """The backbones' forward written out as it was before the block view."""
    if isinstance(model, ResNet):
        x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        x = model.layer4(model.layer3(model.layer2(model.layer1(x))))
        return torch.flatten(model.avgpool(x), 1)
    assert isinstance(model, ConvNet)
    return torch.flatten(model.avgpool(model.features(x)), 1)


def _images(n: int = 4, seed: int = 1) -> Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize(("name", "stem"), CONFIGS)
def test_unfrozen_forward_is_bit_identical_to_the_reference(name: str, stem: str, training: bool):
    model = _build(name, stem).train(training)
    reference = copy.deepcopy(model)
    images = _images()
    assert torch.equal(model(images), _reference_forward(reference, images))
    # Same BatchNorm updates in train mode, same everything in eval mode.
    for (key, value), expected in zip(
        model.state_dict().items(), reference.state_dict().values(), strict=True
    ):
        assert torch.equal(value, expected), key


@pytest.mark.parametrize(("name", "stem"), CONFIGS)
def test_blocks_composed_then_pooled_are_the_forward(name: str, stem: str):
    model = _build(name, stem).eval()
    images = _images()
    with torch.no_grad():
        x = images
        for block in model.block_modules():
            x = block(x)
        assert torch.equal(torch.flatten(model.avgpool(x), 1), model(images))


def test_block_names_and_freezable_counts():
    resnet18 = _build("resnet18")
    assert resnet18.block_names() == [
        "stem",
        *(f"layer{stage}.{index}" for stage in range(1, 5) for index in range(2)),
    ]
    assert resnet18.freezable_blocks == 7
    assert resnet18.block_modules()[1] is resnet18.layer1[0]
    assert resnet18.block_modules()[0][0] is resnet18.conv1
    resnet50 = _build("resnet50")
    assert len(resnet50.block_modules()) == 17 and resnet50.freezable_blocks == 14
    assert resnet50.block_names()[-1] == "layer4.2"
    convnet = _build("convnet")
    assert convnet.block_names() == ["stage1", "stage2", "stage3", "stage4"]
    assert convnet.freezable_blocks == 3
    assert [len(stage) for stage in convnet.block_modules()] == [4, 4, 4, 3]
    assert convnet.block_modules()[3][0] is convnet.features[12]


@pytest.mark.parametrize(
    ("name", "first", "last"),
    [
        (
            "resnet18",
            ("conv1.weight", [0.084649026, -0.098495752, -0.019071857]),
            ("layer4.1.conv2.weight", [-0.021517744, 0.025610246, -0.003204759]),
        ),
        (
            "convnet",
            ("features.0.weight", [0.091326728, 0.169230163, -0.224920422]),
            ("features.12.weight", [-0.084024832, -0.043616965, -0.030313833]),
        ),
    ],
)
def test_seeded_initialisation_is_unchanged(name: str, first: tuple, last: tuple):
    state = _build(name).state_dict()
    for key, values in (first, last):
        torch.testing.assert_close(state[key].flatten()[:3], torch.tensor(values))


def test_state_dict_keys_do_not_depend_on_freezing():
    convnet = _build("convnet")
    expected = [
        f"features.{index}.{suffix}"
        for conv in (0, 4, 8, 12)
        for index, suffix in [
            (conv, "weight"),
            *((conv + 1, s) for s in ("weight", "bias", "running_mean", "running_var")),
            (conv + 1, "num_batches_tracked"),
        ]
    ]
    assert list(convnet.state_dict()) == expected
    resnet = _build("resnet18")
    keys = list(resnet.state_dict())
    resnet.freeze_prefix(resnet.freezable_blocks)
    convnet.freeze_prefix(convnet.freezable_blocks)
    assert list(resnet.state_dict()) == keys
    assert list(convnet.state_dict()) == expected
    assert "frozen_depth" not in dict(resnet.named_buffers())


@pytest.mark.parametrize(("name", "depth"), [("resnet18", 3), ("convnet", 2)])
def test_frozen_blocks_get_no_gradient_and_the_rest_the_same_one(name: str, depth: int):
    images = _images()
    full = _build(name).eval()
    (full(images) ** 2).sum().backward()

    model = _build(name).eval()
    model(images).sum().backward()  # a stale gradient, which freezing must clear
    model.freeze_prefix(depth)
    frozen = {id(p) for block in model.block_modules()[:depth] for p in block.parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert frozen and {id(p) for p in trainable} == {
        id(p) for p in model.parameters() if id(p) not in frozen
    }
    assert all(p.grad is None for p in model.parameters() if id(p) in frozen)
    model.zero_grad(set_to_none=True)
    (model(images) ** 2).sum().backward()
    for (key, param), full_param in zip(model.named_parameters(), full.parameters(), strict=True):
        if id(param) in frozen:
            assert param.grad is None, key
        else:
            torch.testing.assert_close(param.grad, full_param.grad, msg=key)


def _batchnorms(blocks: list[nn.Module]) -> list[nn.BatchNorm2d]:
    return [m for block in blocks for m in block.modules() if isinstance(m, nn.BatchNorm2d)]


def test_frozen_batchnorm_keeps_running_statistics_in_train_mode():
    model = _build("resnet18")
    model.freeze_prefix(3)
    model.train()
    frozen, live = _batchnorms(model.block_modules()[:3]), _batchnorms(model.block_modules()[3:])
    assert not any(bn.training for bn in frozen) and all(bn.training for bn in live)
    frozen_before = [(bn.running_mean.clone(), bn.running_var.clone()) for bn in frozen]
    live_before = [bn.running_mean.clone() for bn in live]
    model(_images())
    for bn, (mean, var) in zip(frozen, frozen_before, strict=True):
        assert torch.equal(bn.running_mean, mean) and torch.equal(bn.running_var, var)
        assert bn.num_batches_tracked.item() == 0
    assert all(not torch.equal(bn.running_mean, m) for bn, m in zip(live, live_before, strict=True))
    model.eval().train()
    assert not any(bn.training for bn in frozen) and all(bn.training for bn in live)
    assert model.training


def _saved_tensor_count(model: nn.Module, images: Tensor) -> int:
    saved: list[int] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(1) or t, lambda t: t):
        model(images).sum().backward()
    return len(saved)


@pytest.mark.parametrize("name", ["resnet18", "convnet"])
def test_a_deeper_frozen_prefix_saves_fewer_activations(name: str):
    model = _build(name).train()
    images = _images()
    counts = [_saved_tensor_count(model, images)]
    for depth in range(1, model.freezable_blocks + 1):
        model.freeze_prefix(depth)
        counts.append(_saved_tensor_count(model, images))
    assert all(later < earlier for earlier, later in itertools.pairwise(counts))


def test_frozen_forward_values_equal_the_unfrozen_ones_in_eval_mode():
    model = _build("resnet18").eval()
    images = _images()
    expected = model(images)
    model.freeze_prefix(5)
    torch.testing.assert_close(model(images), expected, rtol=0, atol=0)


def test_freeze_depth_bounds():
    model = _build("convnet")
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        model.freeze_prefix(4)
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        model.freeze_prefix(-1)
    model.freeze_prefix(2)
    model.freeze_prefix(2)
    with pytest.raises(ValueError, match="never decreases"):
        model.freeze_prefix(1)
    assert model.frozen_depth == 2


def test_deepcopy_keeps_the_frozen_prefix():
    model = _build("resnet18")
    model.freeze_prefix(4)
    twin = copy.deepcopy(model).train()
    assert twin.frozen_depth == 4
    assert [p.requires_grad for p in twin.parameters()] == [
        p.requires_grad for p in model.parameters()
    ]
    assert [all(bn.training for bn in _batchnorms([b])) for b in twin.block_modules()] == [
        False
    ] * 4 + [True] * 5
    with pytest.raises(ValueError, match="never decreases"):
        twin.freeze_prefix(3)


@pytest.mark.parametrize(("name", "stem"), CONFIGS)
def test_pooled_block_features(name: str, stem: str):
    model = _build(name, stem).eval()
    images = _images()
    features = model.pooled_block_features(images)
    assert len(features) == len(model.block_modules())
    with torch.no_grad():
        x = images
        for block, pooled in zip(model.block_modules(), features, strict=True):
            x = block(x)
            assert pooled.shape == x.shape[:2]
            assert not pooled.requires_grad
            torch.testing.assert_close(pooled, x.mean(dim=(2, 3)))
        torch.testing.assert_close(features[-1], model(images))


@pytest.mark.parametrize("name", ["resnet18", "convnet"])
def test_blocks_run_the_modules_that_replaced_theirs(name: str):
    model = _build(name)
    model.freeze_prefix(2)
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model).eval()
    batchnorms = [
        m for b in converted.block_modules() for m in b.modules() if "BatchNorm" in type(m).__name__
    ]
    assert batchnorms and all(isinstance(m, nn.SyncBatchNorm) for m in batchnorms)
    converted.train()
    frozen = [
        m
        for b in converted.block_modules()[:2]
        for m in b.modules()
        if isinstance(m, nn.SyncBatchNorm)
    ]
    assert frozen and not any(m.training for m in frozen)


@pytest.mark.parametrize(("name", "stem"), CONFIGS)
@pytest.mark.parametrize("frozen", [0, 2])
def test_forward_from_prefix_features_is_the_forward(name: str, stem: str, frozen: int):
    model = _build(name, stem).eval()
    model.freeze_prefix(frozen)
    images = _images()
    expected = model(images)
    for depth in (1, 2, 3):
        prefix = model.prefix_features(images, depth)
        assert not prefix.requires_grad
        torch.testing.assert_close(model(prefix, depth), expected, rtol=0, atol=0)


def test_forward_from_a_prefix_trains_only_the_blocks_it_runs():
    model = _build("convnet").train()
    images = _images()
    model(model.prefix_features(images, 1), 1).sum().backward()
    first, *rest = model.block_modules()
    assert all(p.grad is None for p in first.parameters())
    assert all(p.grad is not None for block in rest for p in block.parameters())


def _block_parameters(model: BlockBackbone, indices: set[int]) -> set[int]:
    blocks = model.block_modules()
    return {id(p) for index in indices for p in blocks[index].parameters()}


@pytest.mark.parametrize(("name", "frozen"), [("resnet18", {2, 4}), ("convnet", {1})])
def test_a_frozen_middle_block_gets_no_gradient_and_passes_the_earlier_ones_theirs(
    name: str, frozen: set[int]
):
    images = _images()
    full = _build(name).eval()
    (full(images) ** 2).sum().backward()
    model = _build(name).eval()
    model(images).sum().backward()  # a stale gradient, which freezing must clear
    model.freeze_blocks(frozen)
    assert model.frozen == frozen and model.frozen_depth == 0
    frozen_ids = _block_parameters(model, frozen)
    assert all(
        p.grad is None and not p.requires_grad for p in model.parameters() if id(p) in frozen_ids
    )
    model.zero_grad(set_to_none=True)
    (model(images) ** 2).sum().backward()
    for (key, param), full_param in zip(model.named_parameters(), full.parameters(), strict=True):
        if id(param) in frozen_ids:
            assert param.grad is None, key
        else:  # the stem, below the frozen block, included
            torch.testing.assert_close(param.grad, full_param.grad, msg=key)
    assert (
        model.get_parameter("conv1.weight" if name == "resnet18" else "features.0.weight").grad
        is not None
    )


def test_frozen_middle_blocks_keep_batchnorm_in_eval_mode_and_lower_backward_flops():
    model = _build("resnet18").train()
    images = _images()

    def backward_flops() -> int:
        meter = BackwardFlops()
        loss = model(images).sum()
        with meter.measure():
            loss.backward()
        model.zero_grad(set_to_none=True)
        return meter.total

    plain = backward_flops()
    model.freeze_blocks({2, 4})
    model.train()
    blocks = model.block_modules()
    assert not any(bn.training for bn in _batchnorms([blocks[2], blocks[4]]))
    assert all(bn.training for bn in _batchnorms([blocks[1], blocks[3], blocks[5]]))
    assert backward_flops() < plain


def test_frozen_blocks_never_thaw_and_stay_before_the_last_stage():
    model = _build("convnet")
    model.freeze_blocks({1})
    with pytest.raises(ValueError, match=r"stay frozen: \[1\]"):
        model.freeze_blocks({0})
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        model.freeze_blocks({1, 3})
    model.freeze_prefix(1)  # the prefix joins the frozen block
    assert model.frozen == {0, 1} and model.frozen_depth == 2
    model.freeze_blocks({0, 1, 2})
    assert model.frozen_depth == 3
