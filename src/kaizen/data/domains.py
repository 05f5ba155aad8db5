"""Domain-incremental streams: the same classes in every task, a new domain per task.

Two sources of domains:

- a dataset that holds one dataset per domain, read by its format (``domain-folder``,
  :mod:`kaizen.data.formats.domain_folder`): task k is domain k;
- seeded transforms of one dataset (``scenario.domains`` names them from
  :data:`DOMAIN_TRANSFORMS`): the training split is cut into one seeded shard per task, and task
  k trains on its shard and is tested on the whole test split, both seen through transform k.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from kaizen.config import ScenarioConfig
from kaizen.data.imageset import ImageSet, LabelledData
from kaizen.data.scenario import Task, labelled_mask
from kaizen.errors import ConfigError, DataError


def _rotated(images: Tensor, generator: torch.Generator) -> Tensor:
    return torch.rot90(images, 1, dims=(2, 3)).contiguous()


def _inverted(images: Tensor, generator: torch.Generator) -> Tensor:
    return 255 - images


def _noisy(images: Tensor, generator: torch.Generator) -> Tensor:
    noise = torch.randn(images.shape, generator=generator) * 40.0
    return (images.float() + noise).round().clamp(0, 255).to(torch.uint8)


def _blurred(images: Tensor, generator: torch.Generator) -> Tensor:
    channels = images.shape[1]
    kernel = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
    kernel = (kernel[:, None] * kernel[None, :]) / 256.0
    weight = kernel.expand(channels, 1, 5, 5)
    blurred = F.conv2d(
        F.pad(images.float(), (2, 2, 2, 2), mode="replicate"), weight, groups=channels
    )
    return blurred.round().clamp(0, 255).to(torch.uint8)


DOMAIN_TRANSFORMS: dict[str, Callable[[Tensor, torch.Generator], Tensor]] = {
    "original": lambda images, generator: images,
    "rotated": _rotated,
    "inverted": _inverted,
    "noisy": _noisy,
    "blurred": _blurred,
}
"""uint8 (N, C, H, W) -> uint8 (N, C, H, W): rotated by 90 degrees, inverted, Gaussian noise of
std 40 (seeded), a 5 x 5 binomial blur."""


@dataclass(frozen=True)
class DomainData:
    """Data whose images each belong to one domain.

    Attributes:
        data: every domain's images, one split each for training and testing.
        names: the domains, in task order.
        train_domain: int64 (N,) the domain of each training image.
        test_domain: int64 (M,) the domain of each test image.
    """

    data: LabelledData
    names: tuple[str, ...]
    train_domain: Tensor
    test_domain: Tensor


def check_domain_count(scenario: ScenarioConfig, count: int, where: str) -> None:
    """Refuse a stream whose ``count`` domains (given at ``where``) are not its tasks."""
    if scenario.num_tasks != count:
        raise ConfigError(
            f"{where} gives {count} domains but scenario.num_tasks is {scenario.num_tasks}; "
            f"set scenario.num_tasks={count}"
        )


def concatenated_domains(
    name: str, parts: list[LabelledData], names: tuple[str, ...]
) -> DomainData:
    """One dataset of ``parts``, domain k's images after domain k-1's, named ``names``."""
    train = ImageSet(
        torch.cat([p.train.images for p in parts]), torch.cat([p.train.labels for p in parts])
    )
    test = ImageSet(
        torch.cat([p.test.images for p in parts]), torch.cat([p.test.labels for p in parts])
    )
    train_domain = torch.cat([torch.full((len(p.train),), k) for k, p in enumerate(parts)])
    test_domain = torch.cat([torch.full((len(p.test),), k) for k, p in enumerate(parts)])
    data = LabelledData(name, train, test, parts[0].class_names)
    return DomainData(data, names, train_domain, test_domain)


def transformed_domains(data: LabelledData, scenario: ScenarioConfig, seed: int) -> DomainData:
    """``data`` seen through each of ``scenario.domains``' transforms: a seeded shard of the
    training images per domain (each class cut evenly), the whole test split in every
    domain."""
    names = tuple(scenario.domains or ())
    if not names:
        raise ConfigError(
            "a domain-incremental stream of one dataset needs scenario.domains, one transform "
            f"per task from: {', '.join(DOMAIN_TRANSFORMS)}"
        )
    unknown = [name for name in names if name not in DOMAIN_TRANSFORMS]
    if unknown:
        raise ConfigError(
            f"unknown domain transform {unknown[0]!r}: choose from {', '.join(DOMAIN_TRANSFORMS)}"
        )
    check_domain_count(scenario, len(names), "scenario.domains")
    if "rotated" in names and data.image_size[0] != data.image_size[1]:
        raise ConfigError("the rotated domain needs square images; drop it or resize the data")
    generator = torch.Generator().manual_seed(seed)
    shards = _stratified_shards(data.train.labels, len(names), generator)
    parts = []
    for name, shard in zip(names, shards, strict=True):
        transform = DOMAIN_TRANSFORMS[name]
        train = ImageSet(transform(data.train.images[shard], generator), data.train.labels[shard])
        test = ImageSet(transform(data.test.images, generator), data.test.labels)
        parts.append(LabelledData(data.name, train, test, data.class_names))
    return concatenated_domains(data.name, parts, names)


def _stratified_shards(labels: Tensor, count: int, generator: torch.Generator) -> list[Tensor]:
    """``count`` disjoint sorted index sets over ``labels`` (N,), each class cut evenly across
    them in a seeded order, so that every shard holds every class that has ``count`` images."""
    pieces: list[list[Tensor]] = [[] for _ in range(count)]
    for label in torch.unique(labels).tolist():
        members = torch.nonzero(labels == label, as_tuple=True)[0]
        order = members[torch.randperm(len(members), generator=generator)]
        for shard, piece in zip(pieces, order.tensor_split(count), strict=True):
            shard.append(piece)
    return [torch.cat(shard).sort().values for shard in pieces]


def domain_tasks(domains: DomainData, scenario: ScenarioConfig, seed: int) -> list[Task]:
    """Task k: the training and test images of domain k, every class they hold."""
    generator = torch.Generator().manual_seed(seed + 1)
    tasks = []
    for index in range(len(domains.names)):
        train = torch.nonzero(domains.train_domain == index, as_tuple=True)[0]
        test = torch.nonzero(domains.test_domain == index, as_tuple=True)[0]
        if len(train) == 0:
            raise DataError(f"domain {domains.names[index]} has no training images")
        classes = tuple(sorted(set(domains.data.train.labels[train].tolist())))
        labelled = labelled_mask(len(train), scenario.label_fraction_of(index), generator)
        tasks.append(Task(index, classes, train, test, labelled))
    return tasks
