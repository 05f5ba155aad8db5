"""Classifier alignment: class statistics on hand-made features, sampling, the logit
normalisation, an alignment that removes a classifier's bias towards the last task, and the
alignment loop's draws and learning rates."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

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


def _two_classes() -> ClassStatistics:
    generator = torch.Generator().manual_seed(3)
    stats = ClassStatistics(3)
    features = torch.cat([torch.randn(32, 3, generator=generator) + 4.0 * c for c in (0, 1)])
    stats.add(features, torch.tensor([0, 1]).repeat_interleave(32))
    return stats


def _inputs_per_step(**options) -> tuple[list[Tensor], Tensor]:
    """The features each step of an alignment of two classes fed the classifier, and the
    classifier's weight after it; 8 features per class, 3 epochs, seed 11."""
    classifier = nn.Linear(3, 2)
    for parameter in classifier.parameters():  # the same start on every call
        nn.init.zeros_(parameter)
    seen: list[Tensor] = []
    classifier.register_forward_hook(lambda module, args, output: seen.append(args[0].clone()))
    align_classifier(
        classifier,
        _two_classes(),
        [[0], [1]],
        torch.Generator().manual_seed(11),
        samples_per_class=8,
        epochs=3,
        **options,
    )
    return seen, classifier.weight.detach().clone()


def _as_set(rows: Tensor) -> Tensor:
    """``rows`` (N, D) in a fixed order, to compare draws whatever their shuffle."""
    return rows[rows[:, 0].argsort()]


def test_per_epoch_sampling_draws_new_features_every_epoch_from_the_seed():
    # 16 features in batches of 16: one step per epoch, each step sees its epoch's whole draw
    per_epoch, weight = _inputs_per_step(batch_size=16, sampling="epoch")
    assert len(per_epoch) == 3
    for first in range(3):
        for second in range(first + 1, 3):
            assert not torch.allclose(_as_set(per_epoch[first]), _as_set(per_epoch[second]))
    again, weight_again = _inputs_per_step(batch_size=16, sampling="epoch")
    assert all(torch.equal(a, b) for a, b in zip(per_epoch, again, strict=True))
    assert torch.equal(weight, weight_again)
    # sampled once: every epoch reshuffles the same draw, which is the first epoch's
    once, _ = _inputs_per_step(batch_size=16, sampling="once")
    assert not torch.equal(once[0], once[1])
    for epoch in once:
        torch.testing.assert_close(_as_set(epoch), _as_set(once[0]), rtol=0, atol=0)
    torch.testing.assert_close(_as_set(once[0]), _as_set(per_epoch[0]), rtol=0, atol=0)


def _learning_rates(**options) -> list[float]:
    """The learning rate of every alignment step (16 features in batches of 8, 3 epochs)."""
    rates: list[float] = []
    handle = register_optimizer_step_pre_hook(
        lambda optimizer, args, kwargs: rates.append(optimizer.param_groups[0]["lr"])
    )
    try:
        _inputs_per_step(batch_size=8, lr=0.2, **options)
    finally:
        handle.remove()
    return rates


def test_the_cosine_steps_per_epoch_or_per_batch_down_to_zero():
    def cosine(position: int, length: int) -> float:
        return 0.2 * (1 + math.cos(math.pi * position / length)) / 2

    per_epoch = _learning_rates(schedule="epoch")
    # SLCA's CosineAnnealingLR(T_max=epochs) stepped after each epoch: both steps of epoch e
    # train at its rate
    assert per_epoch == pytest.approx([cosine(step // 2, 3) for step in range(6)])
    per_step = _learning_rates(schedule="step")
    assert per_step == pytest.approx([cosine(step, 6) for step in range(6)])
