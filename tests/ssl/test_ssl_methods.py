"""SSL methods on a tiny backbone: loss runs, gradient flow, momentum encoder, MoCo queue."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from conftest import small_ssl
from kaizen.config import SSL_SETTINGS, BYOLSettings, SSLSettings
from kaizen.ssl.base import MomentumSSLMethod, SSLMethod, momentum_tau
from kaizen.ssl.distill import distill_loss, distill_predictor
from kaizen.ssl.mocov2plus import MoCoV2Plus
from kaizen.ssl.registry import SSL_METHODS, build_ssl_method

FEATURE_DIM = 16
LOSS_METHODS = sorted(name for name, method in SSL_METHODS.items() if method.has_loss)
"""The methods with a self-supervised loss (all but ``none``)."""


class TinyBackbone(nn.Sequential):
    """(M, 3, 8, 8) -> (M, 16), with a BatchNorm so there are buffers to copy."""

    feature_dim = FEATURE_DIM

    def __init__(self) -> None:
        super().__init__(nn.Flatten(), nn.Linear(3 * 8 * 8, FEATURE_DIM), nn.BatchNorm1d(16))


def tiny_settings(name: str, queue_size: int = 32) -> SSLSettings:
    output_dim = 24 if name == "vicreg" else 8
    return SSL_SETTINGS[name](**small_ssl(name, 24, output_dim, queue_size))


def tiny_method(name: str, queue_size: int = 32) -> tuple[SSLMethod, nn.Module]:
    torch.manual_seed(0)
    backbone = TinyBackbone()
    method = build_ssl_method(tiny_settings(name, queue_size), backbone.feature_dim)
    method.attach_backbone(backbone)
    return method, backbone


def views(n_images: int = 4, seed: int = 0) -> Tensor:
    return torch.randn(2 * n_images, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


def ssl_loss(method: SSLMethod, backbone: nn.Module, x: Tensor) -> Tensor:
    h = backbone(x)
    return method.loss(h, method.projector(h), x)


def momentum_modules(method: SSLMethod) -> list[nn.Module]:
    assert isinstance(method, MomentumSSLMethod)
    assert method.momentum_backbone is not None and method.momentum_projector is not None
    return [method.momentum_backbone, method.momentum_projector]


@pytest.mark.parametrize("name", LOSS_METHODS)
def test_loss_is_finite_scalar(name: str) -> None:
    method, backbone = tiny_method(name)
    x = views()
    z = method.projector(backbone(x))
    assert z.shape == (8, method.output_dim)
    loss = ssl_loss(method, backbone, x)
    assert loss.shape == ()
    assert loss.dtype == torch.float32
    assert torch.isfinite(loss)


@pytest.mark.parametrize("name", LOSS_METHODS)
def test_gradient_flow_with_distillation(name: str) -> None:
    method, backbone = tiny_method(name)
    predictor = distill_predictor(method.output_dim, hidden_dim=16)
    x = views()
    h = backbone(x)
    z = method.projector(h)
    teacher = torch.randn(z.shape, requires_grad=True)
    loss = method.loss(h, z, x) + distill_loss(method.distill_kind, predictor(z), teacher, 0.2)
    loss.backward()
    assert teacher.grad is None
    for module in (backbone, method.projector, predictor):
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads)
        assert sum(g.abs().sum() for g in grads if g is not None) > 0
    if method.uses_momentum:
        for module in momentum_modules(method):
            assert all(not p.requires_grad and p.grad is None for p in module.parameters())


@pytest.mark.parametrize("name", ["byol", "mocov2plus"])
def test_momentum_encoder_is_frozen_copy_in_train_mode(name: str) -> None:
    method, backbone = tiny_method(name)
    momentum_backbone, momentum_projector = momentum_modules(method)
    assert momentum_backbone is not backbone
    for online, target in ((backbone, momentum_backbone), (method.projector, momentum_projector)):
        for p, m in zip(online.parameters(), target.parameters(), strict=True):
            assert torch.equal(p, m) and p.data_ptr() != m.data_ptr()
    method.train()
    ssl_loss(method, backbone, views())
    assert momentum_backbone.training and momentum_projector.training


def test_momentum_loss_needs_attached_backbone() -> None:
    settings = BYOLSettings(proj_hidden_dim=8, pred_hidden_dim=8)
    method = build_ssl_method(settings, FEATURE_DIM)
    backbone = TinyBackbone()
    with pytest.raises(RuntimeError, match="attach_backbone"):
        ssl_loss(method, backbone, views())


def perturb(module: nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p))


@pytest.mark.parametrize("name", ["byol", "mocov2plus"])
def test_momentum_update_tau_endpoints_and_midpoint(name: str) -> None:
    method, backbone = tiny_method(name)
    online = [backbone, method.projector]
    targets = momentum_modules(method)
    perturb(backbone)
    perturb(method.projector)
    before = [p.clone() for m in targets for p in m.parameters()]
    after_online = [p.clone() for m in online for p in m.parameters()]

    method.momentum_update(backbone, 1.0)
    for old, new in zip(before, (p for m in targets for p in m.parameters()), strict=True):
        assert torch.equal(old, new)

    method.momentum_update(backbone, 0.5)
    current = [p for m in targets for p in m.parameters()]
    for old, o, new in zip(before, after_online, current, strict=True):
        assert torch.allclose(new, (old + o) / 2)

    method.momentum_update(backbone, 0.0)
    for o, new in zip(after_online, (p for m in targets for p in m.parameters()), strict=True):
        assert torch.equal(o, new)


def test_momentum_update_copies_buffers() -> None:
    method, backbone = tiny_method("byol")
    backbone.train()
    method.projector(backbone(views(seed=1)))  # moves the online running statistics
    method.momentum_update(backbone, 1.0)
    online = [*backbone.buffers(), *method.projector.buffers()]
    target = [b for m in momentum_modules(method) for b in m.buffers()]
    assert len(online) == len(target) > 0
    for o, t in zip(online, target, strict=True):
        assert torch.equal(o, t)


NON_MOMENTUM = sorted(name for name, cls in SSL_METHODS.items() if not cls.uses_momentum)


def test_momentum_methods_are_the_two_with_an_encoder_copy() -> None:
    assert sorted(set(SSL_METHODS) - set(NON_MOMENTUM)) == ["byol", "mocov2plus"]


@pytest.mark.parametrize("name", NON_MOMENTUM)
def test_non_momentum_methods_ignore_momentum_calls(name: str) -> None:
    method, backbone = tiny_method(name)
    state = {k: v.clone() for k, v in method.state_dict().items()}
    method.momentum_update(backbone, 0.0)
    assert not method.uses_momentum
    assert [method.momentum_rate(step, 10) for step in (0, 5, 10)] == [1.0, 1.0, 1.0]
    assert state.keys() == method.state_dict().keys()
    assert all(torch.equal(state[k], v) for k, v in method.state_dict().items())


@pytest.mark.parametrize(
    ("name", "tau_base", "tau_final"), [("byol", 0.99, 1.0), ("mocov2plus", 0.99, 0.999)]
)
def test_momentum_rate_follows_the_records_cosine_schedule(
    name: str, tau_base: float, tau_final: float
) -> None:
    method = build_ssl_method(tiny_settings(name), FEATURE_DIM)  # the record's default taus
    assert method.momentum_rate(0, 40) == pytest.approx(tau_base)
    assert method.momentum_rate(20, 40) == pytest.approx((tau_base + tau_final) / 2)
    assert method.momentum_rate(40, 40) == pytest.approx(tau_final)
    # cos(pi / 4) of the way: tau_final - (tau_final - tau_base) * (cos(pi/4) + 1) / 2
    quarter = tau_final - (tau_final - tau_base) * (math.sqrt(0.5) + 1) / 2
    assert method.momentum_rate(10, 40) == pytest.approx(quarter)
    custom = tiny_settings(name).model_copy(update={"tau_base": 0.5, "tau_final": 0.7})
    assert build_ssl_method(custom, FEATURE_DIM).momentum_rate(20, 40) == pytest.approx(0.6)


def test_momentum_tau_schedule() -> None:
    assert momentum_tau(0, 100, 0.99, 1.0) == pytest.approx(0.99)
    assert momentum_tau(100, 100, 0.99, 1.0) == pytest.approx(1.0)
    assert momentum_tau(50, 100, 0.99, 0.999) == pytest.approx(0.9945)
    assert momentum_tau(25, 100, 0.99, 1.0) < momentum_tau(75, 100, 0.99, 1.0)
    with pytest.raises(ValueError):
        momentum_tau(0, 0, 0.99, 1.0)


def expected_keys(method: MoCoV2Plus, x: Tensor) -> Tensor:
    """(2, N, D) normalised momentum keys of x, view 1 then view 2."""
    momentum_backbone, momentum_projector = momentum_modules(method)
    with torch.no_grad():
        keys = F.normalize(momentum_projector(momentum_backbone(x)), dim=1)
    return torch.stack(keys.chunk(2))


def test_moco_queue_fills_and_wraps_around() -> None:
    method, backbone = tiny_method("mocov2plus", queue_size=5)
    assert isinstance(method, MoCoV2Plus)
    initial = method.queue.clone()
    assert torch.allclose(initial.norm(dim=-1), torch.ones(2, 5))

    first, second = views(3, seed=1), views(3, seed=2)
    keys1, keys2 = expected_keys(method, first), expected_keys(method, second)
    ssl_loss(method, backbone, first)
    assert method.queue_ptr.item() == 3
    assert torch.allclose(method.queue[:, :3], keys1, atol=1e-6)
    assert torch.equal(method.queue[:, 3:], initial[:, 3:])

    ssl_loss(method, backbone, second)
    assert method.queue_ptr.item() == 1
    assert torch.allclose(method.queue[:, 3:], keys2[:, :2], atol=1e-6)
    assert torch.allclose(method.queue[:, :1], keys2[:, 2:], atol=1e-6)
    assert torch.allclose(method.queue[:, 1:3], keys1[:, 1:], atol=1e-6)


def test_moco_queue_smaller_than_batch_keeps_latest_keys() -> None:
    method, backbone = tiny_method("mocov2plus", queue_size=2)
    assert isinstance(method, MoCoV2Plus)
    x = views(3, seed=3)
    keys = expected_keys(method, x)
    ssl_loss(method, backbone, x)
    # Keys 0, 1, 2 go to slots 0, 1, 0: slot 0 holds key 2, slot 1 key 1; pointer 3 % 2.
    assert method.queue_ptr.item() == 1
    assert torch.allclose(method.queue[:, 0], keys[:, 2], atol=1e-6)
    assert torch.allclose(method.queue[:, 1], keys[:, 1], atol=1e-6)


def test_moco_queue_in_state_dict() -> None:
    method, _ = tiny_method("mocov2plus", queue_size=7)
    state = method.state_dict()
    assert state["queue"].shape == (2, 7, 8)
    assert state["queue_ptr"].dtype == torch.long
    assert any(k.startswith("momentum_backbone.") for k in state)


def test_no_ssl_passes_features_through_on_one_view_and_refuses_a_loss() -> None:
    method, backbone = tiny_method("none")
    x = views()
    h = backbone(x)
    assert method.views == 1 and not method.has_loss
    assert torch.equal(method.projector(h), h) and method.output_dim == FEATURE_DIM
    with pytest.raises(RuntimeError, match="no loss"):
        method.loss(h, h, x)
