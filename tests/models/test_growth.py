"""Growing a classifier: the known rows keep their weights, the new rows are the fresh ones."""

from __future__ import annotations

import pytest
import torch

from kaizen.models.heads import Classifier, TaskHeads, with_leading_rows


def test_a_grown_single_head_keeps_the_known_rows_and_takes_the_new_ones_fresh():
    small, large = Classifier(8, 4, hidden_dim=16), Classifier(8, 6, hidden_dim=16)
    fresh = {key: value.clone() for key, value in large.state_dict().items()}
    large.load_state_dict(with_leading_rows(large.state_dict(), small.state_dict()))
    features = torch.randn(5, 8)
    # the known classes' logits are unchanged, the new ones come from the fresh rows
    torch.testing.assert_close(large(features)[:, :4], small(features))
    assert torch.equal(large.net[-1].weight[4:], fresh["net.2.weight"][4:])


def test_grown_task_heads_keep_the_known_heads_and_add_one():
    small = TaskHeads(8, 4, [[0, 1], [2, 3]])
    large = TaskHeads(8, 6, [[0, 1], [2, 3], [4, 5]])
    small.input_scales.copy_(torch.tensor([1.02, 1.0]))
    large.load_state_dict(with_leading_rows(large.state_dict(), small.state_dict()))
    torch.testing.assert_close(large.input_scales, torch.tensor([1.02, 1.0, 1.0]))
    features = torch.randn(3, 8)
    torch.testing.assert_close(large(features)[:, :4], small(features))


def test_a_tensor_that_cannot_grow_by_rows_is_refused():
    with pytest.raises(ValueError, match="cannot grow"):
        with_leading_rows({"w": torch.zeros(4, 3)}, {"w": torch.zeros(2, 5)})
