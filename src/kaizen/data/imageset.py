"""Decoded image data: uint8 tensors with integer labels and class names, and update arrivals
with class names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from kaizen.errors import DataError


@dataclass(frozen=True)
class ImageSet:
    """One split of a dataset, decoded once.

    Attributes:
        images: uint8 tensor of shape (N, C, H, W), C in {1, 3}.
        labels: int64 tensor of shape (N,), values in [0, num_classes).
    """

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise DataError(
                f"images must be a uint8 tensor N x C x H x W, got {self.images.dtype} "
                f"with shape {tuple(self.images.shape)}"
            )
        if self.labels.dtype != torch.int64 or self.labels.dim() != 1:
            raise DataError(
                f"labels must be an int64 vector, got {self.labels.dtype} "
                f"with shape {tuple(self.labels.shape)}"
            )
        if len(self.labels) != len(self.images):
            raise DataError(
                f"{len(self.images)} images but {len(self.labels)} labels: "
                "each image needs one label"
            )

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class LabelledData:
    """A dataset with a train and a test split sharing one label space.

    Attributes:
        name: a short name for reports, e.g. ``fashion-mnist``.
        train: the training split.
        test: the test split.
        class_names: one name per class; labels index into it.
    """

    name: str
    train: ImageSet
    test: ImageSet
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        num_classes = len(self.class_names)
        for split_name, split in (("train", self.train), ("test", self.test)):
            if len(split) and (split.labels.min() < 0 or split.labels.max() >= num_classes):
                raise DataError(
                    f"{self.name} {split_name} labels span [{int(split.labels.min())}, "
                    f"{int(split.labels.max())}] but there are {num_classes} classes: labels must "
                    f"be integers in [0, {num_classes - 1}]"
                )
        if self.train.images.shape[1:] != self.test.images.shape[1:]:
            raise DataError(
                f"{self.name}: train images are {tuple(self.train.images.shape[1:])} but test "
                f"images are {tuple(self.test.images.shape[1:])}; both splits need one shape"
            )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return int(self.train.images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.train.images.shape[2]), int(self.train.images.shape[3])


def subsample_per_class(split: ImageSet, per_class: int, generator: torch.Generator) -> ImageSet:
    """At most ``per_class`` seeded random images of each class, in their original order."""
    keep = []
    for label in torch.unique(split.labels).tolist():
        members = torch.nonzero(split.labels == label, as_tuple=True)[0]
        keep.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    chosen = torch.cat(keep).sort().values
    return ImageSet(split.images[chosen], split.labels[chosen])


def subsample(
    data: LabelledData,
    train_per_class: int | None,
    test_per_class: int | None,
    generator: torch.Generator,
) -> LabelledData:
    """``data`` with at most ``train_per_class`` training and ``test_per_class`` test images
    of each class (None: all), drawn from ``generator``, training images first."""
    train, test = data.train, data.test
    if train_per_class is not None:
        train = subsample_per_class(train, train_per_class, generator)
    if test_per_class is not None:
        test = subsample_per_class(test, test_per_class, generator)
    return LabelledData(data.name, train, test, data.class_names)


@dataclass(frozen=True)
class ImageShape:
    """The images a run trains on: channels, height and width, and its resize side if any."""

    channels: int
    height: int
    width: int
    resize: int | None = None

    def describe(self) -> str:
        return f"{self.channels}-channel {self.width}x{self.height}"


@dataclass(frozen=True)
class Arrival:
    """Images that arrived for an update, and what is known of them.

    Attributes:
        images: uint8 (N, C, H, W) in the run's shape.
        names: (N,) class names, None where the image has no label.
        skipped: files that could not be decoded and were left out.
    """

    images: torch.Tensor
    names: tuple[str | None, ...]
    skipped: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.names)

    def labelled_names(self) -> list[str]:
        """The class names of the labelled images, in first-seen order, each once."""
        return list(dict.fromkeys(name for name in self.names if name is not None))

    def subset(self, rows: Sequence[int]) -> Arrival:
        index = torch.as_tensor(list(rows), dtype=torch.int64)
        return Arrival(self.images[index], tuple(self.names[i] for i in rows), self.skipped)
