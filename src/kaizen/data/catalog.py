"""Loading the dataset that ``data.name`` and ``data.path`` name, by its registered format."""

from __future__ import annotations

import torch

from kaizen.config import DataConfig
from kaizen.data.formats import dataset_format
from kaizen.data.imageset import LabelledData, subsample
from kaizen.errors import DataError


def load_dataset(config: DataConfig, seed: int) -> LabelledData:
    """Read the configured dataset and apply the per-class subsets, deterministic for ``seed``.

    Returns:
        uint8 images (N, C, H, W) and int64 labels (N,) for both splits, with class names.
    """
    if config.path is not None and not config.path.exists():
        raise DataError(f"data path {config.path} does not exist; set data.path to your data")
    read = dataset_format(config.name).read
    if read is None:
        raise DataError(
            f"data.name={config.name} holds one dataset per domain: set "
            "scenario.kind=domain-incremental"
        )
    data = read(config, seed)
    generator = torch.Generator().manual_seed(seed)
    return subsample(data, config.train_per_class, config.test_per_class, generator)
