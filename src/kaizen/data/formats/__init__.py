"""The data formats: one module each, registering what it reads (:mod:`.registry`).

Importing this package imports every module in it, so every format is registered and every
``data.name`` it reads is a valid config value; nothing else lists the formats. A new format is
one new module here that registers itself with :func:`~.registry.reads` (training data, by
``data.name``), :func:`~.registry.reads_domains` (one dataset per domain) and optionally
:func:`~.registry.reads_updates` (``kaizen update`` arrivals, by folder or file suffix); what
formats share is in :mod:`.common`.
"""

from __future__ import annotations

import importlib
import pkgutil

from kaizen.data.formats.registry import (
    DATASETS,
    UPDATE_FORMATS,
    DatasetFormat,
    UpdateFormat,
    dataset_format,
    update_format,
    update_kinds,
)

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "DATASETS",
    "UPDATE_FORMATS",
    "DatasetFormat",
    "UpdateFormat",
    "dataset_format",
    "update_format",
    "update_kinds",
]
