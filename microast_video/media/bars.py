"""The picture area: constant black letterbox / pillarbox bars found on the source (or set by
hand with ``--crop W:H:X:Y``), so that the look paints the picture and leaves the bars black.

A bar is a band of rows (or columns) at an edge whose every sample stays at or below
:data:`BLACK` in every sampled frame; bands thinner than :data:`MIN_SHARE` of the frame are
not bars (a dark edge of the picture is not a letterbox).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from ..core.errors import OptionError
from ..core.frame import Frame, pack_planes, unpack_planes
from ..core.options import KeepBars
from .decode import decode_frames
from .probe import VideoInfo

#: The largest 8-bit RGB value of a "black" bar sample (limited-range black is 16 in YCbCr,
#: 0 in RGB; compression noise stays well under this).
BLACK = 24
#: The thinnest band counted as a bar, as a share of the frame's side.
MIN_SHARE = 0.02
#: The most a bar's samples may vary (8-bit levels): a bar is flat black, a dark gradient is not.
FLAT = 12


@dataclasses.dataclass(frozen=True)
class Picture:
    """The picture area of frames of ``size`` (width, height): columns [x0, x1), rows [y0, y1)."""

    x0: int
    y0: int
    x1: int
    y1: int
    size: tuple[int, int]

    @property
    def whole(self) -> bool:
        return (self.x0, self.y0, self.x1, self.y1) == (0, 0, *self.size)

    def describe(self) -> str:
        w, h = self.size
        return (f"{self.x1 - self.x0}x{self.y1 - self.y0} picture at ({self.x0}, {self.y0}) of {w}x{h}: bars of "
                f"{self.y0}/{h - self.y1} rows (top/bottom) and {self.x0}/{w - self.x1} columns (left/right) kept")


def _black_band(dark: np.ndarray) -> int:
    """How many leading entries of ``dark`` (booleans) are True."""
    return len(dark) if dark.all() else int(np.argmin(dark))


def find_bars(frames: list[np.ndarray]) -> Picture:
    """The picture area of ``frames`` ((H, W, 3) uint8 RGB, the same size): the bars black in all."""
    h, w = frames[0].shape[:2]
    rows = np.ones(h, bool)
    cols = np.ones(w, bool)
    for f in frames:
        top = f.max(axis=2)
        rows &= top.max(axis=1) <= BLACK
        cols &= top.max(axis=0) <= BLACK
    if rows.all() or cols.all():  # a black frame: no picture to tell bars from
        return Picture(0, 0, w, h, (w, h))
    y0, y1 = _black_band(rows), h - _black_band(rows[::-1])
    x0, x1 = _black_band(cols), w - _black_band(cols[::-1])
    y0, y1 = (y0 if y0 >= MIN_SHARE * h else 0), (y1 if h - y1 >= MIN_SHARE * h else h)
    x0, x1 = (x0 if x0 >= MIN_SHARE * w else 0), (x1 if w - x1 >= MIN_SHARE * w else w)
    flat = lambda band: all(int(f[band].max()) - int(f[band].min()) <= FLAT for f in frames)  # noqa: E731
    y0, y1 = (y0 if y0 == 0 or flat(np.s_[:y0]) else 0), (y1 if y1 == h or flat(np.s_[y1:]) else h)
    x0, x1 = (x0 if x0 == 0 or flat(np.s_[:, :x0]) else 0), (x1 if x1 == w or flat(np.s_[:, x1:]) else w)
    return Picture(x0 - x0 % 2, y0 - y0 % 2, x1 + x1 % 2, y1 + y1 % 2, (w, h))  # even: 4:2:0 chroma stays whole


def parse_crop(text: str, source: tuple[int, int], size: tuple[int, int]) -> Picture:
    """``--crop W:H:X:Y`` (ffmpeg's crop syntax, in the source's upright pixels) as the picture area
    of frames of ``size``."""
    try:
        cw, ch, cx, cy = (int(v) for v in text.split(":"))
    except ValueError:
        raise OptionError(f"--crop {text!r} must be W:H:X:Y in pixels (ffmpeg's crop syntax)") from None
    sw, sh = source
    if cw <= 0 or ch <= 0 or cx < 0 or cy < 0 or cx + cw > sw or cy + ch > sh:
        raise OptionError(f"--crop {text}: the area must lie inside the {sw}x{sh} picture")
    w, h = size
    x0, x1 = round(cx * w / sw), round((cx + cw) * w / sw)
    y0, y1 = round(cy * h / sh), round((cy + ch) * h / sh)
    return Picture(x0 - x0 % 2, y0 - y0 % 2, min(w, x1 + x1 % 2), min(h, y1 + y1 % 2), size)


def _outside(data: np.ndarray, source: np.ndarray, p: Picture, scale: int = 1) -> np.ndarray:
    out = data.copy()
    x0, y0, x1, y1 = p.x0 // scale, p.y0 // scale, p.x1 // scale, p.y1 // scale
    out[:y0], out[y1:] = source[:y0], source[y1:]
    out[:, :x0], out[:, x1:] = source[:, :x0], source[:, x1:]
    return out


def bars_kept(frames: Iterator[Frame], picture: Picture) -> Iterator[Frame]:
    """The bars stage: outside the picture area, each frame's own source samples (black bars stay black)."""
    for frame in frames:
        if frame.source is None:
            raise ValueError(f"frame {frame.index} reached the bars stage without its source pixels")
        if frame.layout == "yuv420p":
            planes = [_outside(d, s, picture, 1 if i == 0 else 2)
                      for i, (d, s) in enumerate(zip(unpack_planes(frame.data), unpack_planes(frame.source)))]
            data = pack_planes(planes)
        else:
            data = _outside(frame.data, frame.source, picture)
        yield frame.with_data(data, frame.source if frame.matte is not None else None, keep_matte=True)


#: Frames sampled to find bars (spread over the part rendered).
SAMPLES = 5


def sampled(info: VideoInfo, size: tuple[int, int], start: float, duration: float | None) -> list[np.ndarray]:
    """:data:`SAMPLES` frames spread over the part rendered, at ``size``, 8-bit RGB (a seek each)."""
    left = None if info.duration is None else max(0.0, float(info.duration) - start)
    span = duration if duration is not None and (left is None or duration < left) else (left or 1.0)
    found = []
    for i in range(SAMPLES):
        at = start + span * (i + 0.5) / SAMPLES
        frame = next(decode_frames(info, start=at, duration=max(span / SAMPLES, 0.5), size=size), None)
        if frame is not None:
            found.append(frame.data)
    return found


def picture_area(info: VideoInfo, size: tuple[int, int], *, crop: str | None, keep_bars: KeepBars,
                 start: float = 0.0, duration: float | None = None) -> tuple[Picture | None, str | None]:
    """(the picture area of the output's frames, or None where it is the whole frame; a note)."""
    if crop is not None:
        picture = parse_crop(crop, info.upright_size, size)
        return (None if picture.whole else picture), f"--crop: {picture.describe()}"
    if keep_bars is KeepBars.off:
        return None, None
    frames = sampled(info, size, start, duration)
    picture = find_bars(frames) if frames else None
    if picture is None or picture.whole:
        return None, None
    return picture, f"black bars found on the input: {picture.describe()} (--keep-bars off paints them)"
