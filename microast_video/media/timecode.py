"""SMPTE timecode: read from a source (its video stream's tag, a tmcd data track, or the
container's), and moved by ``--start`` so that a conform lands on the same frames.

Timecodes count frames at the nominal rate (25 for 25 fps, 30 for 29.97, 24 for 23.976);
drop-frame timecode (``;`` before the frames, 29.97 and 59.94) skips frame numbers 0 and 1
(0-3 at 59.94) at the start of every minute that is not a multiple of ten.
"""

from __future__ import annotations

import re
from fractions import Fraction

_TC = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;.,])(\d{2,3})$")


def nominal_fps(rate: Fraction) -> int:
    """The frames per second a timecode counts at ``rate`` (30 at 30000/1001)."""
    return max(1, round(rate))


def to_frames(timecode: str, rate: Fraction) -> tuple[int, bool]:
    """(frames since 00:00:00:00, drop-frame?) of ``timecode`` at ``rate``.

    Raises:
        ValueError: not a timecode, or a field out of range.
    """
    m = _TC.match(timecode.strip())
    if not m:
        raise ValueError(f"not a timecode: {timecode!r}")
    hh, mm, ss, ff = int(m[1]), int(m[2]), int(m[3]), int(m[5])
    fps, drop = nominal_fps(rate), m[4] in ";,"
    if mm > 59 or ss > 59 or ff >= fps:
        raise ValueError(f"timecode {timecode!r} out of range at {fps} fps")
    frames = ((hh * 60 + mm) * 60 + ss) * fps + ff
    if drop:
        skip = _dropped_per_minute(fps)
        minutes = hh * 60 + mm
        frames -= skip * (minutes - minutes // 10)
    return frames, drop


def from_frames(frames: int, rate: Fraction, drop: bool) -> str:
    """``frames`` since 00:00:00:00 as a timecode at ``rate`` (wrapping at 24 hours)."""
    fps = nominal_fps(rate)
    if drop:
        skip = _dropped_per_minute(fps)
        per_ten = fps * 600 - skip * 9  # frames in ten minutes
        per_minute = fps * 60 - skip
        tens, rest = divmod(frames, per_ten)
        frames += skip * 9 * tens + (skip * ((rest - skip) // per_minute) if rest > skip else 0)
    frames %= fps * 86400
    ff, seconds = frames % fps, frames // fps
    sep = ";" if drop else ":"
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}{sep}{ff:02d}"


def _dropped_per_minute(fps: int) -> int:
    if fps not in (30, 60):
        raise ValueError(f"drop-frame timecode needs 29.97 or 59.94 fps, not {fps} nominal")
    return 2 if fps == 30 else 4


def moved(timecode: str, rate: Fraction, frames: int) -> str:
    """``timecode`` moved on by ``frames`` frames at ``rate`` (drop-frame kept as it was)."""
    start, drop = to_frames(timecode, rate)
    return from_frames(start + frames, rate, drop)


def packed(timecode: str) -> tuple[int, int]:
    """``timecode`` as the two 32-bit words of SMPTE 12M that EXR and DPX headers hold: the time
    in binary-coded decimal (drop-frame flag in bit 6), and zero user bits."""
    m = _TC.match(timecode.strip())
    if not m:
        raise ValueError(f"not a timecode: {timecode!r}")
    word = 0
    for shift, digits in zip((24, 16, 8, 0), (m[1], m[2], m[3], m[5][-2:]), strict=True):
        value = int(digits)
        word |= (value // 10 << 4 | value % 10) << shift
    return word | (0x40 if m[4] in ";," else 0), 0


def start_timecode(timecode: str | None, rate: Fraction, start: float) -> str | None:
    """The timecode of the first frame at or after ``start`` s of a clip whose first frame's is
    ``timecode`` (None where there is none, or it does not parse)."""
    if not timecode:
        return None
    try:
        return moved(timecode, rate, frames_before(start, rate))
    except ValueError:
        return None


def frames_before(start: float, rate: Fraction) -> int:
    """How many frames of a constant-rate clip come before the first frame at or after ``start`` s."""
    return -((-Fraction(start).limit_denominator(1_000_000) * rate) // 1) if start > 0 else 0
