"""Classifier alignment: class statistics on hand-made features, sampling, the logit
normalisation, and an alignment that removes a classifier's bias towards the last task."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from kaizen.learner.alignment import (
    COVARIANCE_RIDGE,
    ClassStatistics,
    align_classifier,
    normalised_logits,
)


def test_statistics_of_hand_made_features():
    features = torch.tensor([[1.0, 2.0], [3.0, 2.0], [2.0, 5.0], [9.0, 9.0]])
    labels = torch.tensor([0, 0, 0, 1])
    stats = ClassStatistics(2)
    assert stats.add(features, labels) == [0, 1]
    torch.testing.assert_close(stats.means[0], torch.tensor([2.0, 3.0], dtype=torch.float64))
    # class 0: centred rows (-1, -1), (1, -1), (0, 2); covariance with n - 1 = 2
    expected = torch.tensor([[1.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    expected += COVARIANCE_RIDGE * torch.eye(2, dtype=torch.float64)
    torch.testing.assert_close(stats.covariance(0), expected, rtol=1e-6, atol=1e-7)
    # one image: the covariance is the ridge alone, still positive definite
    torch.testing.assert_close(
        stats.covariance(1), COVARIANCE_RIDGE * torch.eye(2, dtype=torch.float64), rtol=1e-5, atol=0
    )


def test_old_classes_keep_their_statistics():
    stats = ClassStatistics(2)
    stats.add(torch.tensor([[0.0, 0.0], [2.0, 2.0]]), torch.tensor([0, 0]))
    assert stats.add(torch.tensor([[10.0, 10.0], [5.0, 5.0]]), torch.tensor([0, 1])) == [1]
    torch.testing.assert_close(stats.means[0], torch.tensor([1.0, 1.0], dtype=torch.float64))


def test_fewer_images_than_dimensions_is_well_posed():
    stats = ClassStatistics(16)
    stats.add(torch.randn(3, 16, generator=torch.Generator().manual_seed(0)), torch.zeros(3).long())
    assert torch.linalg.eigvalsh(stats.covariance(0)).min() > 0


def test_samples_follow_the_stored_distribution():
    generator = torch.Generator().manual_seed(0)
    mixing = torch.tensor([[2.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.5, 0.3]])
    features = torch.randn(4000, 3, generator=generator) @ mixing.T + torch.tensor([1.0, -2, 3])
    stats = ClassStatistics(3)
    stats.add(features, torch.full((4000,), 7))
    drawn, labels = stats.sample([7], 20000, generator)
    assert drawn.shape == (20000, 3) and set(labels.tolist()) == {7}
    torch.testing.assert_close(drawn.mean(0), stats.means[7].float(), atol=0.05, rtol=0)
    torch.testing.assert_close(
        torch.cov(drawn.T.double()), stats.covariance(7), atol=0.08, rtol=0.05
    )


def test_memory_per_class_and_checkpoint_round_trip():
    # ViT-B: 768-d features; 200 classes stay far below 1 GB
    assert ClassStatistics.bytes_per_class(768) == 8 * 768 + 4 * 768 * 769 // 2
    assert 200 * ClassStatistics.bytes_per_class(768) < 250e6
    stats = ClassStatistics(4)
    generator = torch.Generator().manual_seed(1)
    stats.add(torch.randn(10, 4, generator=generator), torch.tensor([0] * 5 + [3] * 5))
    state = stats.state_dict()
    stored = sum(state[k].numel() * state[k].element_size() for k in ("means", "factors"))
    assert stored == 2 * ClassStatistics.bytes_per_class(4)
    restored = ClassStatistics.from_state_dict(state)
    assert restored.classes == [0, 3]
    torch.testing.assert_close(restored.covariance(3), stats.covariance(3))


def test_logits_are_divided_by_the_mean_block_norm_times_the_temperature():
    logits = torch.tensor([[3.0, 4.0, 0.0, 1.0]])  # block norms 5 and 1: mean 3
    blocks = [torch.tensor([0, 1]), torch.tensor([2, 3])]
    torch.testing.assert_close(normalised_logits(logits, blocks, 0.1), logits / 0.3)


def test_alignment_removes_a_bias_towards_the_last_task():
    generator = torch.Generator().manual_seed(0)
    centres = 4.0 * torch.eye(4)
    stats = ClassStatistics(4)
    features = torch.cat([c + torch.randn(64, 4, generator=generator) for c in centres])
    stats.add(features, torch.arange(4).repeat_interleave(64))
    classifier = nn.Linear(4, 6)  # two further classes not seen yet
    with torch.no_grad():
        classifier.weight.zero_()
        classifier.weight[:4] = torch.eye(4)
        classifier.bias.zero_()
        classifier.bias[2:4] = 6.0  # the last task's classes win almost everywhere
    test, labels = stats.sample(range(4), 100, torch.Generator().manual_seed(5))
    before = (classifier(test)[:, :4].argmax(1) == labels).float().mean().item()
    align_classifier(classifier, stats, [[0, 1], [2, 3]], torch.Generator().manual_seed(2))
    after = (classifier(test)[:, :4].argmax(1) == labels).float().mean().item()
    assert before < 0.6 and after > 0.95
    with pytest.raises(ValueError, match=r"without statistics cannot be aligned: \[4\]"):
        align_classifier(classifier, stats, [[0, 1], [4]], torch.Generator())


def test_replace_recomputes_the_classes_given():
    stats = ClassStatistics(2)
    stats.add(torch.tensor([[0.0, 0.0], [2.0, 2.0]]), torch.tensor([0, 0]))
    assert stats.add(torch.tensor([[4.0, 4.0], [6.0, 6.0]]), torch.tensor([0, 0]), replace=True)
    torch.testing.assert_close(stats.means[0], torch.tensor([5.0, 5.0], dtype=torch.float64))
