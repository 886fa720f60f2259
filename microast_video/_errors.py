"""User-facing errors.

Every problem a user can cause (a missing file, a bad image, tampered weights, ...)
is raised as a :class:`MicroastError` whose message is one line naming the file and
the problem. The CLI prints that line and exits non-zero, without a traceback.
"""

from __future__ import annotations


class MicroastError(Exception):
    """A problem the user can fix; ``str(err)`` is a one-line message."""

    exit_code = 1


class InputError(MicroastError):
    """A bad input file (missing, unreadable, not an image or video, truncated...)."""


class OutputError(MicroastError):
    """The output cannot be written (folder missing or read-only, exists, disk full...)."""


class WeightsError(MicroastError):
    """The network's weights are missing, unreachable or fail their SHA-256 check."""


class DeviceError(MicroastError):
    """The requested device or precision is not available on this machine."""


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM (exit code 143), as KeyboardInterrupt is on Ctrl-C."""
