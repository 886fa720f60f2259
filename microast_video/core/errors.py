"""User-facing errors.

Every problem a user can cause (a missing file, a bad image, tampered weights, ...)
is raised as a :class:`MicroastError` whose message is one line naming the file and
the problem. The CLI prints that line and exits non-zero, without a traceback.
"""

from __future__ import annotations

import os


def shown(path: object) -> str:
    """A path (or any text) as messages show it: on one line, control characters escaped."""
    text = os.fsdecode(path) if isinstance(path, (bytes, os.PathLike)) else str(path)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class MicroastError(Exception):
    """A problem the user can fix; ``str(err)`` is a one-line message."""

    exit_code = 1


class InputError(MicroastError):
    """A bad input file (missing, unreadable, not an image or video, truncated...)."""


class OutputError(MicroastError):
    """The output cannot be written (folder missing or read-only, exists, disk full...)."""


class WeightsError(MicroastError):
    """The network's weights are missing, unreachable or fail their SHA-256 check."""


class OptionError(MicroastError, ValueError):
    """A bad option value (``--alpha 2``, ``--batch-size 0``...); exit code 2, as a usage error.

    Also a ``ValueError``, so library callers passing bad values can catch it as one.
    """

    exit_code = 2


class DeviceError(MicroastError):
    """The requested device or precision is not available on this machine."""


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM, SIGHUP or SIGQUIT, as KeyboardInterrupt is on Ctrl-C.

    ``exit_code`` is 128 + the signal's number, as a shell reports a process killed by it.
    """

    def __init__(self, signum: int = 15) -> None:
        super().__init__(signum)
        self.signum = signum
        self.exit_code = 128 + signum
