"""Image sequences: numbered frames in a folder (``shot.1001.png`` ...), named by the folder, a
printf pattern (``shot.%04d.png``), a ``####`` pattern (``shot.####.png``) or any one frame.

FFmpeg's image2 demuxer reads PNG (8/16-bit), TIFF (8/16-bit), DPX (10/12/16-bit) and JPEG
frames faithfully, so a sequence goes through the same decoder as a movie, at ``--fps``
frames a second, its own frame numbers kept; OpenEXR's half or float samples are
colour-managed (:mod:`microast_video.colour.ocio`).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from ..core.errors import InputError, OptionError, shown

#: Frame formats read as sequences (FFmpeg's own decoders read these faithfully; OpenEXR's
#: half and float samples come as float, colour-managed by OpenColorIO).
READ = (".png", ".tif", ".tiff", ".dpx", ".jpg", ".jpeg", ".exr")
#: Frame formats written as sequences: extension -> FFmpeg encoder.
WRITE = {".png": "png", ".tif": "tiff", ".tiff": "tiff", ".dpx": "dpx", ".exr": "exr"}
#: Scene-linear formats (by default Linear Rec.709, colour-managed).
LINEAR = (".exr",)

_NUMBERED = re.compile(r"^(?P<prefix>.*?)(?P<digits>\d+)(?P<suffix>\.[A-Za-z0-9]+)$")
_PRINTF = re.compile(r"%0?(\d*)d")
_HASHES = re.compile(r"#+")


@dataclasses.dataclass(frozen=True)
class ImageSequence:
    """Frames ``folder/prefix<number>suffix`` for number in [first, last], ``padding`` digits
    (0: not padded); ``missing`` lists the numbers in that range that have no file."""

    folder: Path
    prefix: str
    suffix: str
    padding: int
    first: int
    last: int
    missing: tuple[int, ...] = ()

    @property
    def pattern(self) -> Path:
        """The printf pattern FFmpeg reads and writes (``shot.%04d.png``)."""
        return self.folder / f"{self.prefix}%{f'0{self.padding}' if self.padding else ''}d{self.suffix}"

    @property
    def stem(self) -> str:
        """What names the sequence in an output: its frame prefix (``sh010`` of ``sh010.%04d.dpx``)
        or, without one, its folder's name."""
        return self.prefix.rstrip("._-") or self.folder.name

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def frame(self, number: int) -> Path:
        return self.folder / f"{self.prefix}{number:0{self.padding}d}{self.suffix}"

    def check_complete(self) -> None:
        """Refuse a gap in the numbering, naming the first missing frame."""
        if self.missing:
            raise InputError(f"input {shown(self.pattern)}: frame {self.missing[0]} ({shown(self.frame(self.missing[0]))}) "
                             f"is missing ({len(self.missing)} missing between {self.first} and {self.last}; "
                             "--missing hold repeats the frame before a gap)")


def is_pattern(path: Path) -> bool:
    """A printf (``%04d``) or ``####`` pattern in the file name."""
    return bool(_PRINTF.search(path.name) or _HASHES.search(path.name))


def pattern_parts(path: Path) -> tuple[str, str, int]:
    """(prefix, suffix, padding) of a pattern name."""
    m = _PRINTF.search(path.name) or _HASHES.search(path.name)
    if m is None:
        raise ValueError(f"not a pattern: {path = }")
    padding = (int(m.group(1) or 0) if m.re is _PRINTF else len(m.group(0)))
    return path.name[:m.start()], path.name[m.end():], padding


def find_sequence(path: Path) -> ImageSequence | None:
    """The sequence ``path`` names (a folder, a pattern, or one numbered frame with others
    beside it), or None where it names something else (a movie, a lone picture)."""
    if path.is_dir():
        return _in_folder(path)
    if is_pattern(path):
        prefix, suffix, padding = pattern_parts(path)
        return _numbered(path.parent, prefix, suffix, padding, what=str(path))
    m = _NUMBERED.match(path.name)
    if m is None or not path.is_file() or m["suffix"].lower() not in READ:
        return None
    found = _numbered(path.parent, m["prefix"], m["suffix"], _padding(path.parent, m["prefix"], m["suffix"]),
                      what=str(path))
    return found if found.count > 1 else None


def _padding(folder: Path, prefix: str, suffix: str) -> int:
    """The digits every frame beside has (padded numbers), or 0 where they differ (not padded)."""
    numbered = re.compile(re.escape(prefix) + r"(\d+)" + re.escape(suffix) + "$")
    widths = {len(m.group(1)) for entry in folder.iterdir() if (m := numbered.match(entry.name))}
    return widths.pop() if len(widths) == 1 else 0


def _in_folder(folder: Path) -> ImageSequence:
    groups: dict[tuple[str, str, int], int] = {}
    for entry in folder.iterdir():
        m = _NUMBERED.match(entry.name)
        if m and m["suffix"].lower() in READ and entry.is_file():
            key = (m["prefix"], m["suffix"], len(m["digits"]))
            groups[key] = groups.get(key, 0) + 1
    if not groups:
        raise InputError(f"input {shown(folder)}: not a file, and a folder without numbered frames ({', '.join(READ)})")
    prefix, suffix, digits = max(groups, key=lambda k: groups[k])
    return _numbered(folder, prefix, suffix, digits, what=str(folder))


def _numbered(folder: Path, prefix: str, suffix: str, padding: int, what: str) -> ImageSequence:
    digits = r"(\d{%d,})" % padding if padding else r"(\d+)"  # padded to at least `padding` digits
    pattern = re.compile(re.escape(prefix) + digits + re.escape(suffix) + "$")
    numbers = sorted(int(m.group(1)) for entry in (folder.iterdir() if folder.is_dir() else ())
                     if (m := pattern.match(entry.name)))
    if not numbers:
        raise InputError(f"input {shown(what)}: no frames match it")
    present = set(numbers)
    missing = tuple(n for n in range(numbers[0], numbers[-1] + 1) if n not in present)
    return ImageSequence(folder, prefix, suffix, padding, numbers[0], numbers[-1], missing)


def output_sequence(path: Path) -> ImageSequence | None:
    """The sequence an output pattern (``renders/shot.%04d.png``) names, or None for a movie."""
    if not is_pattern(path):
        return None
    prefix, suffix, padding = pattern_parts(path)
    if suffix.lower() not in WRITE:
        raise OptionError(f"output {shown(path)}: frames are written as {', '.join(sorted(set(WRITE)))}")
    return ImageSequence(path.parent, prefix, suffix, padding, 0, -1)
