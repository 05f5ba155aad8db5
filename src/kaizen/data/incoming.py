"""Data that arrives for an update, read by the format that claims its path.

Every source gives uint8 images (N, C, H, W) of the run's shape and (N,) class names, None for
an image without a label (:class:`~kaizen.data.imageset.Arrival`). The formats register which
paths they read (:mod:`kaizen.data.formats`): today a folder of ``<class>/<images>`` and
``_unlabelled/<images>``, an ``.npz`` of ``x`` and ``y``, and a ``.csv`` of ``path,label`` rows.

Images must have the run's channels and size; when the run resizes (``data.image_size``) they
are converted and resized to its shape. An image file that cannot be decoded is skipped and
named in the arrival; a CSV that names files that do not exist is refused.
"""

from __future__ import annotations

from pathlib import Path

from kaizen.data.formats import update_format, update_kinds
from kaizen.data.imageset import Arrival, ImageShape
from kaizen.errors import DataError


def read_arrival(source: Path, shape: ImageShape) -> Arrival:
    """The images of ``source`` (a folder or a file a format claims), in the run's ``shape``."""
    if not source.exists():
        raise DataError(f"update data {source} does not exist: give {update_kinds()}")
    return update_format(source).read(source, shape)
