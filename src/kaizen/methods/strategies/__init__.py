"""One module per continual method; importing this package registers every one of them.

Each module registers its builder with :func:`kaizen.methods.registry.method`; nothing else
lists the methods.
"""

from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
