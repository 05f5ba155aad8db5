"""The procedural dataset: shapes, determinism, balance, variety and learnability."""

from __future__ import annotations

import pytest
import torch

from kaizen.data.formats.synthetic import make_synthetic


@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_types(channels: int) -> None:
    data = make_synthetic(
        num_classes=4, train_per_class=5, test_per_class=2, image_size=12, channels=channels
    )
    assert data.name == "synthetic"
    assert data.num_classes == 4 and len(set(data.class_names)) == 4
    assert data.train.images.shape == (20, channels, 12, 12)
    assert data.test.images.shape == (8, channels, 12, 12)
    assert data.train.images.dtype == torch.uint8 and data.train.labels.dtype == torch.int64


def test_labels_are_balanced() -> None:
    data = make_synthetic(num_classes=7, train_per_class=9, test_per_class=3)
    assert torch.bincount(data.train.labels).tolist() == [9] * 7
    assert torch.bincount(data.test.labels).tolist() == [3] * 7


def test_same_seed_same_data_other_seed_other_data() -> None:
    first, again, other = (make_synthetic(seed=seed) for seed in (3, 3, 4))
    for split in ("train", "test"):
        assert torch.equal(getattr(first, split).images, getattr(again, split).images)
        assert torch.equal(getattr(first, split).labels, getattr(again, split).labels)
        assert not torch.equal(getattr(first, split).images, getattr(other, split).images)


def test_samples_vary_and_use_the_pixel_range() -> None:
    images = make_synthetic().train.images
    assert len(torch.unique(images.flatten(1), dim=0)) == len(images)
    assert images.float().std() > 20
    assert int(images.min()) < 30 and int(images.max()) > 200


@pytest.mark.parametrize("channels", [1, 3])
def test_nearest_class_mean_separates_classes(channels: int) -> None:
    data = make_synthetic(num_classes=10, channels=channels, seed=1)
    train = data.train.images.flatten(1).float()
    means = torch.stack([train[data.train.labels == label].mean(0) for label in range(10)])
    predicted = torch.cdist(data.test.images.flatten(1).float(), means).argmin(1)
    accuracy = (predicted == data.test.labels).float().mean().item()
    assert accuracy > 0.8  # chance is 0.1
