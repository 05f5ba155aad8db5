"""Classes identified by name: ``classes.json`` of a run, in first-seen order.

A class's index is its position in the list and never changes: an update that brings new names
appends them, so the classifier grows by rows and the known rows keep their meaning.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from kaizen.errors import DataError
from kaizen.storage.atomic import atomic_write_text

CLASSES_FILE = "classes.json"


def _folded(name: str) -> str:
    """A name without case and whitespace differences: ``"T-Shirt "`` and ``"t-shirt"`` agree."""
    return re.sub(r"\s+", "", name).casefold()


def extend_classes(known: Sequence[str], names: Iterable[str]) -> tuple[tuple[str, ...], list[str]]:
    """``known`` followed by the names of ``names`` it lacks, in first-seen order, and a warning
    for every new name that differs from a known one only in case or spacing."""
    classes = list(known)
    warnings = []
    folded = {_folded(name): name for name in known}
    for name in names:
        if name in classes:
            continue
        twin = folded.get(_folded(name))
        if twin is not None:
            warnings.append(
                f"new class {name!r} differs from the known class {twin!r} only in case or "
                f"spacing; it is kept as a class of its own (rename the folder or label to "
                f"{twin!r} if they are the same)"
            )
        classes.append(name)
        folded.setdefault(_folded(name), name)
    return tuple(classes), warnings


def write_classes(folder: Path, names: Sequence[str]) -> None:
    """Write ``folder/classes.json``: the class names, index i naming class i."""
    atomic_write_text(folder / CLASSES_FILE, json.dumps(list(names), indent=2) + "\n")


def read_classes(folder: Path) -> tuple[str, ...]:
    """The class names of ``folder/classes.json``."""
    path = folder / CLASSES_FILE
    try:
        names = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise DataError(f"cannot read the class names {path} ({error})") from error
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise DataError(f"{path} must hold a JSON list of class names")
    return tuple(names)
