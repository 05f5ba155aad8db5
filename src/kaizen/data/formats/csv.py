"""CSV lists of image files: ``.csv`` files of update arrivals (no training reader).

Rows are ``path,label`` (a ``path,label`` header is optional; paths relative to the file's
folder), an empty label for an unlabelled image. Images decode to uint8 (N, C, H, W) in the
run's shape; a file that cannot be decoded is skipped, a file that does not exist is refused.
"""

from __future__ import annotations

import csv
from pathlib import Path

from kaizen.data.formats.common import arrival_from_files
from kaizen.data.formats.registry import reads_updates
from kaizen.data.imageset import Arrival, ImageShape
from kaizen.errors import DataError


@reads_updates(".csv", layout="a CSV of path,label")
def read_csv_arrival(path: Path, shape: ImageShape) -> Arrival:
    """The images the CSV ``path`` lists, in the run's ``shape``, with their labels."""
    return arrival_from_files(_csv_entries(path), shape, path)


def _csv_entries(path: Path) -> list[tuple[Path, str | None]]:
    """Each row's file (relative paths resolved against the CSV's folder) and label or None."""
    try:
        with path.open(newline="") as handle:
            rows = [row for row in csv.reader(handle) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"cannot read {path} as a CSV of path,label ({error})") from error
    if rows and [cell.strip().lower() for cell in rows[0]] == ["path", "label"]:
        rows = rows[1:]
    entries: list[tuple[Path, str | None]] = []
    for number, row in enumerate(rows, start=1):
        if len(row) != 2:
            raise DataError(f"{path} row {number} has {len(row)} fields: write path,label")
        file, label = Path(row[0].strip()), row[1].strip()
        entries.append((file if file.is_absolute() else path.parent / file, label or None))
    missing = [str(file) for file, _ in entries if not file.is_file()]
    if missing:
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        raise DataError(f"{path} names {len(missing)} files that do not exist: {shown}")
    if not entries:
        raise DataError(f"{path} lists no images: write one path,label row per image")
    return entries
