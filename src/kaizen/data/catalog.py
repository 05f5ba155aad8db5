"""Choosing and loading a dataset by name and path, as the config says."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from kaizen.config import DataConfig
from kaizen.data.image_folder import read_image_folder
from kaizen.data.imageset import ImageSet, LabelledData
from kaizen.data.readers import (
    FASHION_MNIST_CLASSES,
    MNIST_CLASSES,
    read_cifar,
    read_idx,
    read_npz,
)
from kaizen.data.synthetic import make_synthetic
from kaizen.errors import DataError

DATA_ROOT_ENV = "KAIZEN_DATA_ROOT"
DEBIAN_DATASETS = Path("/usr/share/datasets")
_IDX_DEFAULTS = {"fashion-mnist": FASHION_MNIST_CLASSES, "mnist": MNIST_CLASSES}


def _has_idx(folder: Path) -> bool:
    return any(
        (folder / name).exists()
        for name in ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz")
    )


def _default_idx_folder(name: str) -> Path:
    candidates = []
    root = os.environ.get(DATA_ROOT_ENV)
    if root:
        candidates += [Path(root) / name, Path(root)]
    candidates.append(DEBIAN_DATASETS / name)
    for folder in candidates:
        if _has_idx(folder):
            return folder
    raise DataError(
        f"{name} not found (looked in {', '.join(str(c) for c in candidates)}); install "
        f"Debian's dataset-{name} package, or set {DATA_ROOT_ENV} or data.path to the folder "
        "of its IDX files"
    )


def _required_path(config: DataConfig) -> Path:
    if config.path is None:
        raise DataError(f"data.name={config.name} needs data.path: the folder or file holding it")
    return config.path


def _read(config: DataConfig, seed: int) -> LabelledData:
    if config.path is not None and not config.path.exists():
        raise DataError(f"data path {config.path} does not exist; set data.path to your data")
    name = config.name
    if name in _IDX_DEFAULTS:
        folder = config.path or _default_idx_folder(name)
        return read_idx(folder, name=name, class_names=_IDX_DEFAULTS[name])
    if name == "idx":
        return read_idx(_required_path(config))
    if name in ("cifar10", "cifar100"):
        return read_cifar(_required_path(config))
    if name == "image-folder":
        return read_image_folder(
            _required_path(config), config.image_size, config.cache_dir, config.test_fraction
        )
    if name == "domain-folder":
        raise DataError(
            "data.name=domain-folder holds one dataset per domain: set "
            "scenario.kind=domain-incremental"
        )
    if name == "npz":
        return read_npz(_required_path(config), test_fraction=config.test_fraction, seed=seed)
    synthetic = config.synthetic
    return make_synthetic(
        num_classes=synthetic.num_classes,
        train_per_class=synthetic.train_per_class,
        test_per_class=synthetic.test_per_class,
        image_size=synthetic.image_size,
        channels=synthetic.channels,
        seed=seed,
    )


def subsample_per_class(split: ImageSet, per_class: int, generator: torch.Generator) -> ImageSet:
    """At most ``per_class`` seeded random images of each class, in their original order."""
    keep = []
    for label in torch.unique(split.labels).tolist():
        members = torch.nonzero(split.labels == label, as_tuple=True)[0]
        keep.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    chosen = torch.cat(keep).sort().values
    return ImageSet(split.images[chosen], split.labels[chosen])


def load_dataset(config: DataConfig, seed: int) -> LabelledData:
    """Read the configured dataset and apply the per-class subsets, deterministic for ``seed``."""
    data = _read(config, seed)
    generator = torch.Generator().manual_seed(seed)
    train, test = data.train, data.test
    if config.train_per_class is not None:
        train = subsample_per_class(train, config.train_per_class, generator)
    if config.test_per_class is not None:
        test = subsample_per_class(test, config.test_per_class, generator)
    return LabelledData(data.name, train, test, data.class_names)
