"""The classifier's corrections at a task's end: the class-balanced re-fit and weight
aligning."""

from __future__ import annotations

import torch
from torch import nn

from kaizen.learner.refit import align_new_weights, balanced_draw, refit_classifier


def _clusters(counts: list[int], generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (N, 8) of len(counts) well-separated Gaussian classes, class c with counts[c]
    rows, and their labels (N,)."""
    centres = 4.0 * torch.eye(8)[: len(counts)]
    features = torch.cat(
        [centres[c] + 0.5 * torch.randn(n, 8, generator=generator) for c, n in enumerate(counts)]
    )
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    return features, labels


def test_a_balanced_draw_takes_each_class_equally_often_from_its_own_rows() -> None:
    labels = torch.tensor([0] * 3 + [1] * 50 + [4] * 7)
    drawn = balanced_draw(labels, 20, torch.Generator().manual_seed(0))
    assert drawn.shape == (60,)
    assert torch.bincount(labels[drawn]).tolist() == [20, 20, 0, 0, 20]
    again = balanced_draw(labels, 20, torch.Generator().manual_seed(0))
    assert torch.equal(drawn, again)


def test_the_refit_undoes_a_bias_towards_the_newest_classes() -> None:
    generator = torch.Generator().manual_seed(0)
    # classes 0, 1 kept with 10 images, classes 2, 3 with 500: the newest task's
    features, labels = _clusters([10, 10, 500, 500], generator)
    test, test_labels = _clusters([200, 200, 200, 200], generator)
    classifier = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 6))
    with torch.no_grad():
        classifier[2].bias[2:4] = 20.0  # every image goes to a class of the newest task
    classifier[0].weight.requires_grad_(False)
    untouched = classifier[2].weight[4:].detach().clone()
    before = (classifier(test).argmax(dim=1) == test_labels)[test_labels < 2].float().mean()
    assert before < 0.05
    refit_classifier(
        classifier,
        features,
        labels,
        torch.Generator().manual_seed(1),
        epochs=10,
        lr=0.05,
        samples_per_class=64,
        batch_size=32,
    )
    predicted = classifier(test)[:, :4].argmax(dim=1)
    old = test_labels < 2
    assert (predicted == test_labels)[old].float().mean() > 0.95
    assert (predicted == test_labels)[~old].float().mean() > 0.95
    # classes without images keep their rows; frozen parameters stay frozen
    assert torch.equal(classifier[2].weight[4:], untouched)
    assert not classifier[0].weight.requires_grad and classifier[2].weight.requires_grad


def test_weight_aligning_gives_the_new_classes_the_old_mean_norm() -> None:
    output = nn.Linear(4, 5)
    with torch.no_grad():
        output.weight.copy_(torch.arange(20.0).reshape(5, 4) + 1)
    norms = output.weight.detach().norm(dim=1)
    bias = output.bias.detach().clone()
    gamma = align_new_weights(output, old=[0, 1, 2], new=[3, 4])
    aligned = output.weight.norm(dim=1)
    torch.testing.assert_close(aligned[3:].mean(), norms[:3].mean())
    torch.testing.assert_close(aligned[:3], norms[:3])
    assert gamma == float(norms[:3].mean() / norms[3:].mean())
    torch.testing.assert_close(output.bias[3:], bias[3:] * gamma)
    assert align_new_weights(output, old=[], new=[3, 4]) == 1.0
    torch.testing.assert_close(output.weight.norm(dim=1), aligned)
