"""The settings that make the SSL pieces compute what Kaizen's released code computes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_ssl_methods import momentum_modules, tiny_method, tiny_settings, views

from kaizen.ssl.distill import decorrelative_distill, distill_loss
from kaizen.ssl.vicreg import variance_term, vicreg_loss

pytestmark = pytest.mark.usefixtures("one_thread")


def _embeddings(seed: int) -> torch.Tensor:
    return torch.randn(16, 6, generator=torch.Generator().manual_seed(seed)) * 0.3


def test_vicreg_summed_variance_adds_the_second_half_of_the_variance_term():
    z1, z2 = _embeddings(0), _embeddings(1)
    mean = vicreg_loss(z1, z2, 25.0, 25.0, 1.0)
    summed = vicreg_loss(z1, z2, 25.0, 25.0, 1.0, variance_branches="sum")
    variance = variance_term(z1) + variance_term(z2)
    assert variance > 0
    torch.testing.assert_close(summed - mean, 25.0 * variance / 2)


def test_decorrelative_distillation_takes_its_own_lambda_and_scale():
    p, teacher = _embeddings(2), _embeddings(3)
    paper = decorrelative_distill(p, teacher)
    released = distill_loss("decorrelative", p, teacher, 0.2, (5e-3, 0.1))
    torch.testing.assert_close(released, decorrelative_distill(p, teacher, 5e-3, 0.1))
    unscaled = decorrelative_distill(p, teacher, 5e-3, 1.0)
    torch.testing.assert_close(released, 0.1 * unscaled)
    assert not torch.isclose(paper, unscaled)  # lambda 5.1e-3 vs 5e-3


def test_moco_normalised_distillation_input_is_the_unit_query():
    method, _ = tiny_method("mocov2plus")
    z = _embeddings(4)
    assert torch.equal(method.distill_input(z), z)
    settings = tiny_settings("mocov2plus").model_copy(update={"distill_input": "normalized"})
    method.settings = settings
    torch.testing.assert_close(method.distill_input(z), F.normalize(z, dim=-1))


@pytest.mark.parametrize("buffers", ["copy", "own"])
def test_momentum_buffers_are_copied_or_kept(buffers):
    method, backbone = tiny_method("byol")
    method.settings = method.settings.model_copy(update={"momentum_buffers": buffers})
    backbone.train()
    backbone(views())  # moves the online running statistics
    before = [b.clone() for m in momentum_modules(method) for b in m.buffers()]
    method.momentum_update(backbone, 0.9)
    online = [*backbone.buffers(), *method.projector.buffers()]
    after = [b for m in momentum_modules(method) for b in m.buffers()]
    if buffers == "copy":
        assert all(torch.equal(a, o) for a, o in zip(after, online, strict=True))
    else:
        assert all(torch.equal(a, b) for a, b in zip(after, before, strict=True))
        assert not all(torch.equal(a, o) for a, o in zip(after, online, strict=True))
