"""Child processes (ffmpeg, bench workers) that never outlive the run that started them, and
the one process setting that must be made before torch loads (how OpenMP threads wait)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any


def _die_with_parent_prefix() -> tuple[str, ...]:
    """The command that makes what it runs get SIGKILL when its parent dies: util-linux's
    ``setpriv --pdeathsig KILL --`` (Linux), or nothing where there is none."""
    if not sys.platform.startswith("linux"):
        return ()
    setpriv = shutil.which("setpriv")
    return (setpriv, "--pdeathsig", "KILL", "--") if setpriv else ()


_DIE_WITH_PARENT = _die_with_parent_prefix()


def die_with_parent(parent: int) -> None:
    """Make this process (a worker) get SIGKILL when ``parent`` dies (Linux; elsewhere nothing).

    Called in the worker itself, first thing: no fork hazard. If the parent already died
    before the request was made, exit now."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


_PR_SET_PDEATHSIG = 1


def popen(cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen`` for a child that is killed (SIGKILL) if this process dies.

    On Linux the child gets ``PR_SET_PDEATHSIG`` (set by ``setpriv``, which then becomes the
    command: same process), so a SIGKILL of the run, a closed terminal or a crash also ends
    ffmpeg: it never goes on alone to finish a partial file. It fires when the *thread* that
    started the child ends, so start children from a thread that outlives them (the stage
    thread that also waits for them). No Python code runs between fork and exec (a
    ``preexec_fn`` did: the child then freed other threads' objects, and a PyAV scaler's
    slice threads hung it for good). Without ``setpriv`` the child is an ordinary one. The
    child runs in its own session (Ctrl-C reaches us, and we decide what happens to it).
    """
    kwargs.setdefault("start_new_session", True)
    return subprocess.Popen([*_DIE_WITH_PARENT, *cmd], **kwargs)


#: Spins of libgomp's busy-wait before a waiting OpenMP thread sleeps (torch's CPU ops and
#: its compiled kernels run on libgomp). The default, 300,000, keeps a network thread that
#: waits at a barrier burning a core the decoder, the temporal stage and the encoder need.
#: On our 2-core machine a 1080p job ran 0.671 s a frame with the default and 0.632-0.648 s
#: with 1,000-100,000 spins; the network alone stayed at 0.50-0.51 s (RESULTS.md).
OPENMP_SPINCOUNT = "10000"


def openmp_waits(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with ``GOMP_SPINCOUNT`` set to :data:`OPENMP_SPINCOUNT`, unless it already says
    how OpenMP threads wait (``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY``: the user's choice stays)."""
    if "GOMP_SPINCOUNT" in env or "OMP_WAIT_POLICY" in env:
        return dict(env)
    return {**env, "GOMP_SPINCOUNT": OPENMP_SPINCOUNT}


def openmp_wait_setting(env: Mapping[str, str]) -> str:
    """How OpenMP threads wait under ``env``, as a bench reports it."""
    named = [f"{key}={env[key]}" for key in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY") if key in env]
    return ", ".join(named) or "libgomp default"


def quiet_openmp_waits() -> bool:
    """Set :func:`openmp_waits` in this process's environment (its children inherit it).

    libgomp reads the setting once, when torch loads it: so this runs first thing in the
    command line's ``main``, before torch is imported. Returns False (nothing done) if torch
    is already imported."""
    if "torch" in sys.modules:
        return False
    os.environ.update(openmp_waits(os.environ))
    return True
