"""One file plan per job: every file it reads and every file it writes, known before any work.

A job names what it reads (clip, styles, keyframe styles and files, mattes, signals,
manifests) and what it writes (video, frames, report, chart, sheet, records) in a
:class:`FilePlan`; :meth:`FilePlan.check` then refuses, in one line and before anything is
decoded or loaded, an output that is one of the inputs (by real path and inode: links and
``..`` resolved), two outputs that are one file, and an output outside the folder it must
stay in. ``--overwrite`` only ever lets an output replace an earlier file of that name,
never an input or another output of the same job.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

from .errors import InputError, OutputError, shown
from .output import check_output


def identity(path: Path) -> tuple[object, ...]:
    """What makes two names one file: the inode where the file exists, else the real path."""
    try:
        st = os.stat(path)
        return ("inode", st.st_dev, st.st_ino)
    except OSError:
        return ("path", str(Path(os.path.realpath(path))))


@dataclasses.dataclass
class FilePlan:
    """The files of one job: ``reads`` and ``writes``, each as (what, path) in the order given."""

    reads: list[tuple[str, Path]] = dataclasses.field(default_factory=list)
    writes: list[tuple[str, Path]] = dataclasses.field(default_factory=list)

    def read(self, what: str, *paths: Path | str | None) -> FilePlan:
        """Add files the job reads (None: not given)."""
        self.reads += [(what, Path(p)) for p in paths if p is not None]
        return self

    def write(self, what: str, *paths: Path | str | None) -> FilePlan:
        """Add files the job writes (None: not asked for)."""
        self.writes += [(what, Path(p)) for p in paths if p is not None]
        return self

    def inputs(self) -> list[Path]:
        return [p for _, p in self.reads]

    def check(self, *, overwrite: bool, inside: Path | None = None) -> None:
        """Refuse (one :class:`OutputError` line) an output that is an input, a second output
        that is the same file as another, an output outside ``inside`` (when given), and
        everything :func:`~.output.check_output` refuses (an existing file without
        ``overwrite``, a missing or unwritable folder, a name too long)."""
        seen: dict[tuple[object, ...], str] = {}
        for what, path in self.writes:
            check_output(path, self.inputs(), overwrite=overwrite, what=what)
            key = identity(path)
            if key in seen:
                raise OutputError(f"{what} {shown(path)} is the same file as the {seen[key]}; give each its own name")
            seen[key] = what
            if inside is not None and not within(path, inside):
                raise OutputError(f"{what} {shown(path)} is outside its folder {shown(inside)}")


def within(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or below it, links and ``..`` resolved."""
    real, base = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    return real == base or base in real.parents


#: The largest settings file (manifest, keyframes) the tool reads: far more than any holds.
SETTINGS_BYTES = 1 << 20


def read_settings_text(path: Path, what: str, limit: int = SETTINGS_BYTES) -> str:
    """A small text file (a manifest, a keyframes file), refused in one line unless it is a
    regular file of at most ``limit`` bytes (``/dev/zero`` was read without bound, and a FIFO
    with no writer blocked for ever)."""
    name = f"{what} {shown(path)}"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{name}: file not found") from None
    except OSError as err:
        raise InputError(f"{name}: cannot be read ({err.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{name}: not a regular file")
    if st.st_size > limit:
        raise InputError(f"{name}: {st.st_size} bytes; a {what} file holds at most {limit}")
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as err:
        raise InputError(f"{name}: cannot be read ({err.strerror})") from None
    if len(data) > limit:
        raise InputError(f"{name}: over {limit} bytes; a {what} file holds at most {limit}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{name}: not UTF-8 text") from None
