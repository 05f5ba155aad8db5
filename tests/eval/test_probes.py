"""Representation probes: feature extraction, weighted kNN and the linear probe."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from kaizen.data.augment import Normalize
from kaizen.eval.probes import extract_features, knn_predict, linear_probe_predict


def _backbone() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1))


def _normalize() -> Normalize:
    return Normalize(torch.tensor([0.5, 0.5, 0.5]), torch.tensor([0.25, 0.25, 0.25]))


@pytest.mark.parametrize("training", [True, False])
def test_extract_features_shape_mode_and_flag_restore(training):
    backbone = _backbone().train(training)
    running_mean = backbone[1].running_mean.clone()
    images = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    features = extract_features(backbone, images, _normalize(), batch_size=2)
    assert features.shape == (5, 4)
    assert features.dtype == torch.float32
    assert not features.requires_grad
    assert backbone.training is training
    # eval mode: BatchNorm statistics are not updated by the probe
    assert torch.equal(backbone[1].running_mean, running_mean)
    # batching does not change the features
    whole = extract_features(backbone, images, _normalize(), batch_size=64)
    assert torch.allclose(features, whole, atol=1e-6)


def test_extract_features_of_no_images():
    images = torch.zeros((0, 3, 8, 8), dtype=torch.uint8)
    assert extract_features(_backbone(), images, _normalize(), batch_size=2).shape[0] == 0


def _unit(degrees: float) -> list[float]:
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


def test_knn_classifies_two_dimensional_clusters():
    # three directions (0, 120, 240 degrees), three points each, a few degrees apart
    centres = {0: 0.0, 1: 120.0, 2: 240.0}
    bank = torch.tensor([_unit(c + d) for c in centres.values() for d in (-5, 0, 5)])
    labels = torch.tensor([label for label in centres for _ in range(3)])
    # the scale of a feature does not matter: cosine similarity
    queries = torch.tensor([_unit(10.0), _unit(110.0), _unit(250.0)]) * 7.0
    assert knn_predict(bank, labels, queries, k=3).tolist() == [0, 1, 2]


def test_knn_weighting_overrules_an_unweighted_majority():
    # query at 0 degrees; one class-0 neighbour at 0 degrees (cos 1.0), two class-1 neighbours
    # at +-60 degrees (cos 0.5). Unweighted, k = 3: class 1 wins 2 votes to 1.
    # Weighted, T = 0.07: class 0 gets exp(1 / 0.07) = e^14.29, class 1 gets 2 exp(0.5 / 0.07)
    # = 2 e^7.14; e^14.29 > 2 e^7.14, so class 0 wins.
    bank = torch.tensor([_unit(0.0), _unit(60.0), _unit(-60.0)])
    labels = torch.tensor([0, 1, 1])
    query = torch.tensor([_unit(0.0)])
    assert knn_predict(bank, labels, query, k=3, temperature=0.07).tolist() == [0]
    # a very large temperature makes every weight about 1: the plain majority, class 1
    assert knn_predict(bank, labels, query, k=3, temperature=1e4).tolist() == [1]
    # with k = 1 only the nearest neighbour votes
    assert knn_predict(bank, labels, query, k=1, temperature=1e4).tolist() == [0]


def test_knn_chunks_and_small_banks_give_the_same_predictions():
    generator = torch.Generator().manual_seed(0)
    bank = torch.randn(40, 6, generator=generator)
    labels = torch.randint(0, 4, (40,), generator=generator)
    queries = torch.randn(25, 6, generator=generator)
    whole = knn_predict(bank, labels, queries, k=5)
    assert torch.equal(knn_predict(bank, labels, queries, k=5, chunk_size=3), whole)
    assert whole.shape == (25,)
    assert whole.dtype == torch.int64
    # k beyond the bank size uses the whole bank
    assert knn_predict(bank[:3], labels[:3], queries, k=20).shape == (25,)


def _clusters(per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three Gaussian clusters in 5-D (centres 4 apart, std 0.5), on a large offset and scale."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(3).repeat_interleave(per_class)
    centres = 4.0 * torch.eye(3, 5)
    points = centres[labels] + 0.5 * torch.randn(len(labels), 5, generator=generator)
    return 1000.0 * points + 50.0, labels


def test_linear_probe_separates_linearly_separable_data():
    train, train_labels = _clusters(30, seed=0)
    test, test_labels = _clusters(20, seed=1)
    predictions = linear_probe_predict(train, train_labels, test, num_classes=3, epochs=50)
    assert predictions.dtype == torch.int64
    assert torch.equal(predictions, test_labels)


def test_linear_probe_is_deterministic_and_leaves_the_global_rng_alone():
    generator = torch.Generator().manual_seed(2)
    train = torch.randn(60, 8, generator=generator)
    labels = torch.randint(0, 4, (60,), generator=generator)
    test = torch.randn(30, 8, generator=generator)
    state = torch.get_rng_state()
    first = linear_probe_predict(train, labels, test, 4, epochs=5, seed=3, batch_size=16)
    assert torch.equal(torch.get_rng_state(), state)
    second = linear_probe_predict(train, labels, test, 4, epochs=5, seed=3, batch_size=16)
    assert torch.equal(first, second)


def test_probes_reject_an_empty_bank():
    empty = torch.zeros(0, 2)
    with pytest.raises(ValueError, match="knn_predict"):
        knn_predict(empty, torch.zeros(0, dtype=torch.int64), torch.ones(1, 2))
    with pytest.raises(ValueError, match="linear_probe_predict"):
        linear_probe_predict(empty, torch.zeros(0, dtype=torch.int64), torch.ones(1, 2), 2)
