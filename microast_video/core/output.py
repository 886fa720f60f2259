"""Every file the tool writes goes through here: one check up front, one atomic writer.

* :func:`check_output` refuses, before any work, an output that is one of the inputs, a
  folder, an existing file without ``--overwrite``, a name the file system cannot hold,
  or a missing or unwritable folder.
* :class:`AtomicFile` writes to a hidden temporary file beside the target (unique per
  process and per call, created exclusively, short enough for any legal target name),
  fsyncs it and renames it onto the target; every failure path removes it. Without
  ``overwrite`` the rename cannot clobber a file that appeared meanwhile (a hard link is
  made, which fails if the target exists), so two runs writing one target both end
  cleanly: one wins, the other reports it.
* A run killed with SIGKILL cannot clean up; its temporary file is recognised by the next
  run (its lock is free and it has not changed for a while) and removed by
  :func:`sweep_stale`.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from .errors import OutputError, shown

#: Suffix of every temporary file the tool makes beside a target.
TEMP_SUFFIX = ".microast-tmp"
#: Bytes of the target's name kept in the temporary name (the rest is dropped).
_NAME_BYTES = 60
#: A temporary file unchanged for this long whose lock is free belongs to a dead run.
STALE_AFTER_S = 5.0
#: The first name of a temporary file, until its writer holds its lock (then :data:`TEMP_SUFFIX`).
FRESH_SUFFIX = ".new"


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def check_output(output: Path, inputs: Iterable[Path | None] = (), *, overwrite: bool,
                 what: str = "output") -> None:
    """Raise a one-line :class:`OutputError` if ``output`` cannot or must not be written.

    Refuses an output that is one of ``inputs`` (even with ``overwrite``), a folder, an
    existing file without ``overwrite``, a name longer than the file system allows, and a
    missing or unwritable folder.
    """
    output = Path(output)
    name = f"{what} {shown(output)}"
    folder = output.parent
    limit = _name_max(folder) if folder.is_dir() else 255
    if len(os.fsencode(output.name)) > limit:
        raise OutputError(f"{name}: the file name is longer than the file system allows ({limit} bytes)")
    if not folder.is_dir():
        raise OutputError(f"{name}: folder {shown(folder)} does not exist")
    for path in inputs:
        if path is None:
            continue
        with contextlib.suppress(OSError):
            if Path(path).exists() and (output.resolve() == Path(path).resolve() or os.path.samefile(output, path)):
                raise OutputError(f"{name} is an input file; refusing to overwrite it")
    if output.is_dir():
        raise OutputError(f"{name} is a folder")
    if output.exists() and not overwrite:
        raise OutputError(f"{name} exists; pass --overwrite to replace it")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{name}: folder {shown(folder)} is not writable")


def temp_name(target: Path) -> str:
    """A hidden name beside ``target``: part of its name, a random token, :data:`TEMP_SUFFIX`."""
    head = os.fsencode(target.name)[:_NAME_BYTES].decode("utf-8", "ignore")
    return f".{head}.{secrets.token_hex(6)}{TEMP_SUFFIX}"


class AtomicFile:
    """A temporary file beside ``target`` that becomes ``target`` only on :meth:`publish`.

    Use as a context manager. Inside, write to :attr:`file` (binary) or let another
    program write to :attr:`path`; call :meth:`publish` when the content is complete.
    Leaving the block without publishing (an error, Ctrl-C, SIGTERM) removes the
    temporary file. The file stays locked (``flock``) while this object holds it, which
    is how :func:`sweep_stale` tells a live run's file from a dead one's.
    """

    def __init__(self, target: str | os.PathLike[str], *, overwrite: bool, what: str = "output") -> None:
        self.target = Path(target)
        self.overwrite = overwrite
        self.what = what
        self.path = self.target.with_name(temp_name(self.target))
        self.file: IO[bytes] | None = None
        self.published = False

    def __enter__(self) -> AtomicFile:
        sweep_once(self.target.parent)
        fresh = self.path.with_name(self.path.name + FRESH_SUFFIX)  # locked before it takes its swept name
        try:
            fd = os.open(fresh, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as err:
            raise self._error("cannot create a file in its folder", err) from err
        self.file = os.fdopen(fd, "wb")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a file system without locks: the name a sweep leaves alone while young
            self.path = fresh
            return self
        try:
            os.rename(fresh, self.path)
        except OSError as err:
            self.file.close()
            self.file = None
            with contextlib.suppress(OSError):
                os.unlink(fresh)
            raise self._error("cannot create a file in its folder", err) from err
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _error(self, doing: str, err: OSError) -> OutputError:
        if err.errno == errno.ENOSPC:
            return OutputError(f"{self.what} {shown(self.target)}: disk full while writing")
        return OutputError(f"{self.what} {shown(self.target)}: {doing} ({err.strerror or err})")

    def write(self, data: bytes) -> None:
        """Append ``data`` to the temporary file."""
        try:
            self.file.write(data)
        except OSError as err:
            raise self._error("cannot write", err) from err

    def publish(self) -> None:
        """fsync the temporary file and rename it onto the target (atomically)."""
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            if self.target.exists():
                os.chmod(self.path, self.target.stat().st_mode & 0o7777)
        except OSError as err:
            raise self._error("cannot write", err) from err
        if self.overwrite:
            self._rename(os.replace)
        else:
            self._rename(self._link_no_clobber)
        self.published = True
        _fsync_folder(self.target.parent)

    def _rename(self, how: Any) -> None:
        try:
            how(self.path, self.target)
        except FileExistsError:
            raise OutputError(f"{self.what} {shown(self.target)} was created by another program during the run; "
                              "it was left as it is (pass --overwrite to replace it)") from None
        except OSError as err:
            raise self._error("cannot rename the finished file into place", err) from err

    @staticmethod
    def _link_no_clobber(src: Path, dst: Path) -> None:
        try:
            os.link(src, dst)  # fails with FileExistsError if dst appeared meanwhile
        except FileExistsError:
            raise
        except OSError as err:  # a file system without hard links
            if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
                raise
            if dst.exists():
                raise FileExistsError(dst) from None
            os.rename(src, dst)
            return
        os.unlink(src)

    def close(self) -> None:
        """Release the temporary file; remove it unless it was published."""
        if self.file is not None:
            with contextlib.suppress(OSError):
                self.file.close()
            self.file = None
        if not self.published:
            with contextlib.suppress(OSError):
                os.unlink(self.path)


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes(target: str | os.PathLike[str], data: bytes, *, overwrite: bool, what: str = "output") -> None:
    """Write ``data`` to ``target`` atomically (see :class:`AtomicFile`)."""
    with AtomicFile(target, overwrite=overwrite, what=what) as out:
        out.write(data)
        out.publish()


def json_bytes(data: Any) -> bytes:
    """``data`` as the project's JSON files hold it (indented, one trailing newline)."""
    return (json.dumps(data, indent=1) + "\n").encode()


def sweep_stale(folder: Path, *, now: float | None = None) -> list[Path]:
    """Remove the temporary files of dead runs in ``folder``; returns what was removed.

    A temporary file (:data:`TEMP_SUFFIX`) is stale when no process holds its lock: its
    writer locks it before it takes that name (:class:`AtomicFile`), so a file under that name
    and unlocked is a dead run's, however young (a run started right after a kill sweeps it).
    A file still under its first name (:data:`FRESH_SUFFIX`: a run killed in the microseconds
    between creating and renaming it) is swept once unchanged for :data:`STALE_AFTER_S`.
    Files of live runs are left alone, whatever their process id.
    """
    removed: list[Path] = []
    now = time.time() if now is None else now
    try:
        entries = [e for e in os.scandir(folder)
                   if e.name.startswith(".") and e.name.endswith((TEMP_SUFFIX, TEMP_SUFFIX + FRESH_SUFFIX))]
    except OSError:
        return removed
    for entry in entries:
        try:
            young = entry.name.endswith(FRESH_SUFFIX) and now - entry.stat().st_mtime < STALE_AFTER_S
            if not entry.is_file(follow_symlinks=False) or young:
                continue
            fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass  # locked: a live run's file
        finally:
            os.close(fd)
    return removed


_SWEPT: set[str] = set()  # the folders this process writes to


def sweep_once(folder: Path) -> list[Path]:
    """:func:`sweep_stale` the first time this process writes into ``folder``, and again when it
    exits (a dead run's file younger than :data:`STALE_AFTER_S` at the start is old by then).
    Every writer goes through here (:class:`AtomicFile`), so every folder the tool writes to
    is swept: outputs, reports, charts, sheets, exports, batch outputs."""
    key = os.path.realpath(folder)
    if key in _SWEPT:
        return []
    if not _SWEPT:
        atexit.register(_sweep_all)
    _SWEPT.add(key)
    return sweep_stale(Path(key))


def _sweep_all() -> None:
    for folder in sorted(_SWEPT):
        sweep_stale(Path(folder))


_LOCK_NAME = ".lock"


@contextlib.contextmanager
def work_folder(prefix: str, parent: str | os.PathLike[str] | None = None) -> Iterator[Path]:
    """A temporary folder that is removed afterwards, or by a later run if this one is killed.

    The folder holds a locked file while in use; :func:`sweep_stale_folders` removes the
    folders of dead runs (lock free, unchanged for :data:`STALE_AFTER_S`) with the same
    ``prefix`` in ``parent`` (default: the system's temporary folder).
    """
    parent = Path(parent or tempfile.gettempdir())
    sweep_stale_folders(parent, prefix)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    lock = os.open(folder / _LOCK_NAME, os.O_CREAT | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield folder
    finally:
        os.close(lock)
        shutil.rmtree(folder, ignore_errors=True)


def sweep_stale_folders(parent: Path, prefix: str, *, now: float | None = None) -> list[Path]:
    """Remove the :func:`work_folder` s of dead runs in ``parent``; returns what was removed."""
    removed: list[Path] = []
    now = time.time() if now is None else now
    with contextlib.suppress(OSError):
        for entry in os.scandir(parent):
            if not (entry.name.startswith(prefix) and entry.is_dir(follow_symlinks=False)):
                continue
            lock_path = Path(entry.path) / _LOCK_NAME
            try:
                if now - lock_path.stat().st_mtime < STALE_AFTER_S:
                    continue
                fd = os.open(lock_path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(Path(entry.path))
            except OSError:
                pass  # locked: a live run's folder
            finally:
                os.close(fd)
    return removed
