"""Child processes (ffmpeg, bench workers) that never outlive the run that started them."""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[[], None] | None:
    """A function that asks Linux to SIGKILL the calling process when its parent dies."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    kill = int(signal.SIGKILL)

    def die_with_parent() -> None:  # runs in the child between fork and exec: a syscall, nothing more
        prctl(_PR_SET_PDEATHSIG, kill, 0, 0, 0)

    return die_with_parent


_DIE_WITH_PARENT = _load_prctl()


def popen(cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen`` for a child that is killed (SIGKILL) if this process dies.

    On Linux the child gets ``PR_SET_PDEATHSIG``, so a SIGKILL of the run, a closed
    terminal or a crash also ends ffmpeg: it never goes on alone to finish a partial file.
    It fires when the *thread* that started the child ends, so start children from a
    thread that outlives them (the stage thread that also waits for them). Elsewhere the
    child is an ordinary one. The child runs in its own session (Ctrl-C reaches us, and we
    decide what happens to it).
    """
    if _DIE_WITH_PARENT is not None:
        kwargs.setdefault("preexec_fn", _DIE_WITH_PARENT)
    kwargs.setdefault("start_new_session", True)
    return subprocess.Popen(list(cmd), **kwargs)
