"""Folders of one image-folder tree per domain: ``data.name`` ``domain-folder``.

Layout: ``root/<domain>/{train,val}/<class>/<images>`` (DomainNet's, as CaSSLe uses it). Only a
domain-incremental stream reads it: task k is domain k (``scenario.domains`` orders them,
default sorted), and every domain must hold the same classes. Images decode as image folders
do, to uint8 (N, C, H, W), with int64 labels (N,) and the domain of each image.
"""

from __future__ import annotations

import torch

from kaizen.config import DataConfig, ScenarioConfig
from kaizen.data.domains import DomainData, check_domain_count, concatenated_domains
from kaizen.data.formats.common import subfolders
from kaizen.data.formats.image_folder import read_image_folder
from kaizen.data.formats.registry import reads_domains
from kaizen.data.imageset import LabelledData, subsample
from kaizen.errors import DataError


@reads_domains("domain-folder")
def read_domain_folder(config: DataConfig, scenario: ScenarioConfig, seed: int) -> DomainData:
    """Every domain of ``data.path`` (``<domain>/{train,val}/<class>``) as one dataset; the
    per-class subsets of ``data`` apply within each domain."""
    root = config.path
    if root is None or not root.is_dir():
        raise DataError(
            f"data.name=domain-folder needs data.path, a folder of <domain>/train/<class> and "
            f"<domain>/val/<class> trees; got {root}"
        )
    present = subfolders(root)
    names = tuple(scenario.domains or present)
    missing = [name for name in names if name not in present]
    if missing:
        raise DataError(f"{root} has no domain folder {missing[0]} (domains: {', '.join(present)})")
    check_domain_count(scenario, len(names), str(root))
    generator = torch.Generator().manual_seed(seed)
    parts: list[LabelledData] = []
    for name in names:
        part = read_image_folder(root / name, config.image_size, config.cache_dir)
        if parts and part.class_names != parts[0].class_names:
            raise DataError(
                f"domain {name} has other classes than domain {names[0]}: every domain of a "
                "domain-incremental stream needs the same class folders"
            )
        parts.append(subsample(part, config.train_per_class, config.test_per_class, generator))
    return concatenated_domains(root.name, parts, names)
