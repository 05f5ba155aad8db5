"""Atomic file writes: a temporary file in the same folder, fsync, then rename over the target.

A reader never sees a half-written file, and a failed write (a full disk, a kill) leaves the
previous file untouched.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from kaizen.errors import KaizenError


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Replace ``path`` with ``payload`` atomically; on failure the old file stays as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        _fsync_folder(path.parent)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        if error.errno == errno.ENOSPC:
            raise KaizenError(
                f"no space left on the device while writing {path}; the previous file is intact, "
                "free some space and continue with `kaizen resume`"
            ) from None
        raise KaizenError(f"cannot write {path}: {error.strerror}") from None


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))
