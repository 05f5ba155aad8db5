"""BatchNorm per view: one pass over stacked views computes what one pass per view computes."""

from __future__ import annotations

import copy

import pytest
import torch

from conftest import small_learner_config
from kaizen.config import build_config, to_plain
from kaizen.errors import ConfigError
from kaizen.learner.learner import build_learner
from kaizen.models.batchnorm import PerViewBatchNorm1d, PerViewBatchNorm2d

pytestmark = pytest.mark.usefixtures("one_thread")


def _learners(ssl: str = "byol"):
    config = small_learner_config(ssl)
    per_view = build_config(to_plain(config), ["model.batchnorm_views=per-view"])
    torch.manual_seed(0)
    stacked = build_learner(config, in_channels=1, num_classes=4)
    torch.manual_seed(0)
    apart = build_learner(per_view, in_channels=1, num_classes=4)
    return stacked, apart


def test_per_view_learner_equals_a_stacked_learner_run_once_per_view():
    stacked, apart = _learners()
    assert any(isinstance(m, PerViewBatchNorm2d) for m in apart.backbone.modules())
    assert any(isinstance(m, PerViewBatchNorm1d) for m in apart.ssl.projector.modules())
    assert stacked.state_dict().keys() == apart.state_dict().keys()
    views = torch.randn(8, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    reference = copy.deepcopy(stacked).train()
    first, second = (reference(half) for half in views.chunk(2))
    out = apart.train()(views)
    expected = torch.cat([first.projections, second.projections])
    torch.testing.assert_close(out.projections, expected)
    joint = stacked.train()(views).projections
    assert not torch.allclose(joint, expected)  # stacking does change the statistics
    # Two passes move the running statistics as the two per-view passes did.
    torch.testing.assert_close(
        apart.backbone.state_dict(), reference.backbone.state_dict(), rtol=1e-5, atol=1e-6
    )


def test_momentum_encoder_and_eval_mode_are_covered():
    stacked, apart = _learners()
    assert any(isinstance(m, PerViewBatchNorm2d) for m in apart.ssl.momentum_backbone.modules())
    views = torch.randn(8, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(apart.eval()(views).projections, stacked.eval()(views).projections)


def test_per_view_with_synchronised_batchnorm_is_refused():
    config = small_learner_config()
    with pytest.raises(ConfigError, match="batchnorm_views=per-view"):
        build_config(
            to_plain(config), ["model.batchnorm_views=per-view", "train.sync_batchnorm=true"]
        )
