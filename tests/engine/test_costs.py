"""Cost meters: backward FLOPs by operator counting, and the peak of live tensor storages."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import Tensor, nn

from kaizen.engine.costs import BackwardFlops, LiveTensorPeak
from kaizen.models.backbones import build_backbone

MIB = 2**20
N, D0, D1, D2 = 8, 12, 20, 6


def _floats(nbytes: int) -> Tensor:
    return torch.empty(nbytes // 4, dtype=torch.float32)


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(D0, D1), nn.ReLU(), nn.Linear(D1, D2))


def _backward_flops(loss: Tensor) -> int:
    meter = BackwardFlops()
    with meter.measure():
        loss.backward()
    return meter.total


# --- backward FLOPs ---------------------------------------------------------------------------


def test_linear_backward_flops_are_grad_input_plus_grad_weight():
    layer = nn.Linear(D0, D1)
    x = torch.randn(N, D0, requires_grad=True)
    assert _backward_flops(layer(x).sum()) == 2 * (2 * N * D0 * D1)
    # Without a gradient for the input, only the weight gradient is computed.
    assert _backward_flops(layer(x.detach()).sum()) == 2 * N * D0 * D1


def test_frozen_first_layer_saves_its_backward_flops():
    x = torch.randn(N, D0)
    mlp = _mlp()
    full = _backward_flops(mlp(x).sum())
    assert full == 2 * N * D0 * D1 + 2 * (2 * N * D1 * D2)
    mlp.zero_grad()
    with torch.no_grad():
        hidden = mlp[1](mlp[0](x))
    frozen = _backward_flops(mlp[2](hidden).sum())
    assert frozen == 2 * N * D1 * D2
    assert full - frozen == 2 * N * D0 * D1 + 2 * N * D1 * D2


def test_backward_flops_hold_the_last_region():
    meter = BackwardFlops()
    assert meter.total == 0
    layer = nn.Linear(D0, D1)
    with meter.measure():
        layer(torch.randn(N, D0)).sum().backward()
    with meter.measure():
        layer(torch.randn(2 * N, D0)).sum().backward()
    # The second region only: its forward and the weight gradient, each 2 * (2N) * D0 * D1.
    assert meter.total == 2 * (2 * (2 * N) * D0 * D1)


def test_a_deeper_frozen_prefix_has_fewer_backward_flops():
    torch.manual_seed(0)
    backbone = build_backbone("convnet", width=0.25).train()
    images = torch.randn(4, 3, 16, 16)
    flops = []
    for depth in range(backbone.freezable_blocks + 1):
        backbone.freeze_prefix(depth)
        flops.append(_backward_flops(backbone(images).sum()))
    assert all(later < earlier for earlier, later in itertools.pairwise(flops))


# --- live tensor peak on the CPU ----------------------------------------------------------------


def test_peak_of_allocations_freed_in_between():
    baseline = [_floats(MIB // 4), torch.zeros(3)]
    peak = LiveTensorPeak("cpu")
    with peak.measure(persistent=baseline):
        big = _floats(MIB)
        del big
        small = _floats(MIB // 2)
    assert peak.bytes == MIB + MIB // 4 + 12
    assert small.numel() == MIB // 8
    assert peak.method.startswith("live tensor storages")


def test_views_and_repeated_tensors_count_once():
    base = _floats(MIB)
    peak = LiveTensorPeak("cpu")
    with peak.measure(persistent=[base, base[::2], base.view(2, -1)]):
        fresh = _floats(MIB // 2)
        views = [fresh[1:], fresh.view(-1, 4), fresh[::3]]
        fresh.add_(1)  # in place: the same storage
    assert peak.bytes == MIB + MIB // 2
    assert len(views) == 3


def test_untracked_tensors_modified_in_place_are_not_counted():
    existing = torch.zeros(MIB // 4)
    peak = LiveTensorPeak("cpu")
    with peak.measure():
        existing.add_(1)
        existing[:10].mul_(2)
        copy = existing.clone()
    assert peak.bytes == copy.untyped_storage().nbytes() == MIB


def test_a_persistent_tensor_freed_inside_the_region_leaves_the_count():
    tensors = [_floats(MIB)]
    peak = LiveTensorPeak("cpu")
    with peak.measure(persistent=tensors):
        tensors.clear()
        replacement = _floats(MIB)
    assert peak.bytes == MIB
    assert replacement.numel() == MIB // 4


def test_activations_kept_for_backward_raise_the_peak():
    torch.manual_seed(0)
    model = nn.Sequential(*(nn.Sequential(nn.Linear(256, 256), nn.Tanh()) for _ in range(6)))
    x = torch.randn(512, 256)
    params = list(model.parameters())

    def peak_of(grad: bool) -> int:
        model.zero_grad(set_to_none=True)
        peak = LiveTensorPeak("cpu")
        with peak.measure(persistent=params), torch.set_grad_enabled(grad):
            loss = model(x).square().mean()
            if grad:
                loss.backward()
        return peak.bytes

    weights = sum(p.numel() * 4 for p in params)
    activation = 512 * 256 * 4
    inference, training = peak_of(False), peak_of(True)
    assert weights < inference <= weights + 3 * activation  # a layer's input and output at most
    # The six Tanh outputs are saved for backward, so all are alive at the end of the forward.
    assert training >= weights + 6 * activation > inference


def test_freezing_lowers_the_peak_of_a_training_step():
    torch.manual_seed(0)
    backbone = build_backbone("convnet", width=0.25).train()
    images = torch.randn(8, 3, 32, 32)
    peaks = []
    for depth in (0, backbone.freezable_blocks):
        backbone.freeze_prefix(depth)
        backbone.zero_grad(set_to_none=True)
        peak = LiveTensorPeak("cpu")
        with peak.measure(persistent=[*backbone.parameters(), *backbone.buffers()]):
            backbone(images).sum().backward()
        peaks.append(peak.bytes)
    assert peaks[1] < peaks[0]


def test_live_tensor_peak_rejects_other_devices():
    with pytest.raises(ValueError, match="cpu or cuda"):
        LiveTensorPeak("meta")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_live_tensor_peak_on_cuda_uses_the_allocator_peak():
    device = torch.device("cuda")
    peak = LiveTensorPeak(device)
    before = torch.cuda.memory_allocated(device)
    with peak.measure():
        big = torch.empty(MIB // 4, device=device)
        del big
        small = torch.empty(MIB // 8, device=device)
    assert peak.bytes == before + MIB
    assert peak.method == "cuda max_memory_allocated"
    assert small.numel() == MIB // 8
