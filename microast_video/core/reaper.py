"""A watcher that ends processes this one started but cannot give ``PR_SET_PDEATHSIG`` to
(a local Ray cluster's servers and workers) when this process ends, however it ends.

The watcher is a small process of its own session that holds the read end of a pipe; this
process holds the write end. Four times a second it notes every process this one started
since the watch began and everything below those (one whose parent died is still known:
Ray's agents outlive their raylet). When this
process exits, crashes or is killed (SIGKILL included), the kernel closes the pipe, the
watcher reads end-of-file and kills every process it noted. A process that already ended
(or whose number now belongs to another process: its start time is checked) is left alone.

    python -m microast_video.core.reaper PARENT_PID:START [OLDER_CHILD_PID:START ...]
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

_WATCHERS: list[subprocess.Popen[bytes]] = []  # held for this process's life: their pipes stay open


def start_time(pid: int) -> str | None:
    """The start time (clock ticks since boot) of ``pid``, or None where it does not run."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]  # field 22 of stat, counted after the command name


def children() -> dict[int, list[int]]:
    """Every running process's children, by parent."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
                tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int, tree: dict[int, list[int]]) -> list[int]:
    """``pid`` and everything below it in ``tree``."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(tree.get(p, []))
    return found


def watch_new_children() -> None:
    """Have every process this one starts from now on (and what those start) killed when this
    process ends, however it ends (Linux; elsewhere nothing)."""
    me = os.getpid()
    start = start_time(me)
    if start is None or not sys.platform.startswith("linux"):
        return
    present = [f"{child}:{start_time(child)}" for child in children().get(me, [])]
    _WATCHERS.append(subprocess.Popen([sys.executable, "-m", "microast_video.core.reaper", f"{me}:{start}", *present],
                                      stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True))


def note(known: set[tuple[int, str]], parent: tuple[int, str], older: set[tuple[int, str]]) -> None:
    """Add to ``known`` every running process below ``parent`` but not below ``older`` (its
    children from before the watch) nor this watcher, and every process below ``known``."""
    tree = children()
    pid, start = parent
    roots = {(c, s) for c in tree.get(pid, []) if (s := start_time(c)) is not None} if start_time(pid) == start else set()
    roots -= older | {(os.getpid(), start_time(os.getpid()) or "")}
    for p, s in list(roots | known):
        if start_time(p) == s:
            known.update((d, t) for d in descendants(p, tree) if (t := start_time(d)) is not None)


def reap(known: set[tuple[int, str]]) -> None:
    """SIGKILL each process of ``known`` that still runs as that process."""
    for pid, start in known:
        if start_time(pid) == start:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def main(marks: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C of the terminal is for the watched run
    parent, *older = [(int(pid), start) for pid, _, start in (mark.partition(":") for mark in marks)]
    known: set[tuple[int, str]] = set()
    stdin = sys.stdin.buffer.raw
    with contextlib.suppress(OSError):
        while True:
            note(known, parent, set(older))
            if select.select([stdin], [], [], 0.25)[0] and not stdin.read(4096):
                break
    note(known, parent, set(older))
    reap(known)


if __name__ == "__main__":
    main(sys.argv[1:])
