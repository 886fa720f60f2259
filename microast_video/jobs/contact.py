"""Contact sheets: thumbnails of a clip at a few points, labelled, in a grid (PNG).

Used by batch reports (input | output at several points of each clip) and by previews
(rows = points of the clip, columns = the input and each look).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ..core.options import Missing
from ..media.decode import decode_frames
from ..media.probe import probe

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def frames_at(path: Path, seconds: Sequence[float], height: int) -> list[tuple[float, np.ndarray]]:
    """(time, (height, w, 3) uint8 RGB) of the first frame at or after each of ``seconds``, streaming once
    (a sequence's gaps hold the frame before: a job that rendered it held them)."""
    info = probe(path, missing=Missing.hold)
    w, h = info.upright_size
    size = (max(2, round(w * info.upright_sar * height / h)), height)
    wanted = sorted(seconds)
    found: list[tuple[float, np.ndarray]] = []
    for frame in decode_frames(info, size=size):
        while wanted and frame.seconds >= wanted[0] - 1e-6:
            found.append((frame.seconds, frame.data))
            wanted.pop(0)
        if not wanted:
            break
    return found


def spread(duration: float | None, count: int) -> list[float]:
    """``count`` times spread over a clip: the middles of ``count`` equal parts."""
    span = duration if duration and duration > 0 else 1.0
    return [span * (i + 0.5) / count for i in range(count)]


def labelled(image: np.ndarray, text: str) -> np.ndarray:
    """``image`` with ``text`` on a dark band at its top-left (legible on any picture)."""
    out = np.ascontiguousarray(image).copy()
    scale = max(0.35, out.shape[0] / 360)
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, 1)
    cv2.rectangle(out, (0, 0), (min(out.shape[1], tw + 8), th + base + 6), (0, 0, 0), -1)
    cv2.putText(out, text, (4, th + 3), _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def sheet_grid(rows: Sequence[Sequence[np.ndarray]], headers: Sequence[str] = (), gap: int = 4) -> np.ndarray:
    """Images (RGB uint8, one height per row) in rows and columns on a white sheet, with column headers."""
    width = max(sum(im.shape[1] for im in row) + gap * (len(row) + 1) for row in rows)
    bands = []
    if headers:
        cells = [labelled(np.full((22, im.shape[1], 3), 255, np.uint8), h) for h, im in zip(headers, rows[0])]
        bands.append(_row(cells, width, gap))
    bands += [_row(row, width, gap) for row in rows]
    return np.vstack([np.full((gap, width, 3), 255, np.uint8), *bands])


def _row(images: Sequence[np.ndarray], width: int, gap: int) -> np.ndarray:
    h = max(im.shape[0] for im in images)
    band = np.full((h + gap, width, 3), 255, np.uint8)
    x = gap
    for im in images:
        band[: im.shape[0], x:x + im.shape[1]] = im
        x += im.shape[1] + gap
    return band


def sheet_times(duration: float | None, points: int, start: float = 0.0, window: float | None = None) -> list[float]:
    """``points`` moments of the rendered part of a clip, on the *output's* clock (0 = ``start``
    seconds into the source): the middles of equal parts of ``window`` seconds, or of what is
    left of the clip's ``duration`` after ``start``."""
    left = None if duration is None else max(0.0, duration - start)
    span = window if window is not None and (left is None or window < left) else left
    return spread(span, points)


def contact_sheet(source: Path, outputs: Sequence[Path], headers: Sequence[str], *, points: int = 4,
                  height: int = 135, start: float = 0.0, duration: float | None = None) -> np.ndarray:
    """Rows = ``points`` moments of the clip (the source's timestamps printed); columns = the
    source and each output. An output rendered from ``start`` (for ``duration`` seconds) is
    paired with the source at the same moment: its time t is the source's ``start`` + t."""
    info = probe(source, missing=Missing.hold)
    times = sheet_times(None if info.duration is None else float(info.duration), points, start, duration)
    columns = [frames_at(source, [start + t for t in times], height), *(frames_at(p, times, height) for p in outputs)]
    rows = []
    for i in range(min(len(c) for c in columns)):
        t = columns[0][i][0]
        rows.append([labelled(columns[0][i][1], f"{t:.2f} s"), *(c[i][1] for c in columns[1:])])
    return sheet_grid(rows, headers=["input", *headers])


def png_bytes(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB image (callers write them through the atomic writer)."""
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"cannot encode a PNG of {image.shape = }")
    return data.tobytes()
