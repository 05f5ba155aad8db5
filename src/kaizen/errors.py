"""User-facing errors: one line that names the problem and the fix."""

from __future__ import annotations


class KaizenError(Exception):
    """A problem with the user's input or environment, reported as one line (exit code 2).

    The message names what is wrong and how to fix it; the CLI prints it without a traceback.
    """


class ConfigError(KaizenError):
    """An unknown config key, a value of the wrong type or out of range, or an unknown preset."""


class DataError(KaizenError):
    """A missing data path, an unreadable file, or data that does not fit the expected format."""
