"""Named points of a run where a test may stop the process, deterministically.

The trainer, the checkpoint writer and the classifier alignment call :func:`reached` with the
name of the point they pass, for example ``step 1.2.0`` (task 1, epoch 2, batch 0 has just
been trained), ``checkpoint 1.3.0`` (the checkpoint that resumes at that position is written
but its checksum is not), ``align 1.4`` (alignment step 4 of task 1 is done) or
``task-end 1`` (task 1 is evaluated and its results written, its last checkpoint not yet).

Two environment variables, meant for tests only, act on them:

- ``KAIZEN_TESTPOINT_LOG=FILE`` appends every point passed to FILE, one per line, so a test
  can run once, then choose where to stop a second run;
- ``KAIZEN_KILL_AT=POINT`` sends this process ``KAIZEN_KILL_SIGNAL`` (``KILL`` unless set to
  ``TERM`` or ``INT``) the first time it passes POINT.

With neither set, :func:`reached` only reads the environment.
"""

from __future__ import annotations

import os
import signal

LOG_VARIABLE = "KAIZEN_TESTPOINT_LOG"
KILL_VARIABLE = "KAIZEN_KILL_AT"
SIGNAL_VARIABLE = "KAIZEN_KILL_SIGNAL"
_SIGNALS = {"KILL": signal.SIGKILL, "TERM": signal.SIGTERM, "INT": signal.SIGINT}


def reached(point: str) -> None:
    """Log ``point`` and stop this process there when the environment asks for it."""
    log = os.environ.get(LOG_VARIABLE)
    if log:
        with open(log, "a", encoding="utf-8") as file:
            file.write(point + "\n")
    if os.environ.get(KILL_VARIABLE) == point:
        name = os.environ.get(SIGNAL_VARIABLE, "KILL")
        signal.raise_signal(_SIGNALS[name])
