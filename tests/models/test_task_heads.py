"""Per-task heads read as one classifier: columns in class order, input scales, disjoint tasks."""

from __future__ import annotations

import pytest
import torch

from kaizen.errors import ConfigError
from kaizen.models.heads import TaskHeads


def test_each_class_column_comes_from_its_tasks_head() -> None:
    torch.manual_seed(0)
    heads = TaskHeads(4, 6, [[4, 1], [0, 5], [2]])  # class 3 is in no task
    features = torch.randn(3, 4)
    logits = heads(features)
    assert logits.shape == (3, 6)
    for task, classes in enumerate([[4, 1], [0, 5], [2]]):
        expected = heads.heads[task](features)
        torch.testing.assert_close(logits[:, classes], expected)
    assert torch.isneginf(logits[:, 3]).all()


def test_heads_start_as_slcas_and_input_scales_multiply_the_features() -> None:
    torch.manual_seed(0)
    heads = TaskHeads(8, 4, [[0, 1], [2, 3]])
    for head in heads.heads:
        assert head.weight.abs().max() <= 0.04 and torch.equal(head.bias, torch.zeros(2))
    features = torch.randn(5, 8)
    heads.input_scales.copy_(torch.tensor([1.5, 1.0]))
    torch.testing.assert_close(heads(features)[:, :2], heads.heads[0](1.5 * features))
    torch.testing.assert_close(heads(features)[:, 2:], heads.heads[1](features))
    assert "input_scales" in heads.state_dict()  # the checkpoint keeps them


def test_tasks_sharing_a_class_are_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match="disjoint classes") as refused:
        TaskHeads(4, 3, [[0, 1], [1, 2]])
    assert "\n" not in str(refused.value)
