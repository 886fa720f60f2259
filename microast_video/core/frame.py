"""Frames as they travel through the stages, carrying their timestamps."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np


@dataclasses.dataclass(frozen=True, slots=True)
class Frame:
    """One picture of the clip and its timing.

    Attributes:
        index: 0-based position of the frame in the output clip; the stages keep this
            order and never drop a frame silently.
        pts: presentation timestamp in ``time_base`` units, relative to the start of the
            output (0 for the first frame of a clip that starts at 0).
        duration: how long the frame is shown, in ``time_base`` units (None if unknown).
        time_base: the unit of ``pts`` and ``duration`` in seconds (the source stream's).
        data: with ``layout == "rgb"``: (H, W, 3) RGB, upright (rotation applied),
            C-contiguous; uint8 in [0, 255] for 8-bit sources, uint16 in [0, 65535] for
            deeper ones. With ``layout == "yuv420p"``: (H * 3 / 2, W) 4:2:0 planes packed as
            PyAV's ``yuv420p`` (Y, then U, then V), uint8, or uint16 holding 10-bit samples,
            in the stream's own matrix and range.
        layout: "rgb" or "yuv420p".
        source: the decoded pixels this frame was stylized from (same shape, dtype and
            layout as ``data``), carried by the engine for stages that need them (the
            temporal stage's optical flow); None otherwise.
        matte: (H, W) uint8 region matte for this frame (255 = the foreground), set by the
            matte stage (``--matte``); None otherwise.
        state: on the first frame of a batch segment, the temporal stage's state just before
            it (so the segment can be resumed exactly); None otherwise.
    """

    index: int
    pts: int
    duration: int | None
    time_base: Fraction
    data: np.ndarray
    layout: str = "rgb"
    source: np.ndarray | None = None
    matte: np.ndarray | None = None
    state: dict | None = None

    @property
    def seconds(self) -> float:
        """Presentation time in seconds from the start of the output."""
        return float(self.pts * self.time_base)

    def with_data(self, data: np.ndarray, source: np.ndarray | None = None, *, keep_matte: bool = False) -> Frame:
        """The same frame (index, timing and layout) holding other pixels (and ``source``);
        the matte goes with the old pixels unless ``keep_matte``."""
        return dataclasses.replace(self, data=data, source=source, matte=self.matte if keep_matte else None)

    @property
    def top(self) -> float:
        """The largest sample value: 255 (8-bit), 1023 (10-bit planes) or 65535 (16-bit RGB)."""
        if self.data.dtype != np.uint16:
            return 255.0
        return 1023.0 if self.layout == "yuv420p" else 65535.0


def pack_planes(frame_planes: list[np.ndarray]) -> np.ndarray:
    """[Y (H, W), U (H/2, W/2), V (H/2, W/2)] -> (H*3/2, W) packed as PyAV's yuv420p."""
    y, u, v = frame_planes
    h, w = y.shape
    return np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(h * 3 // 2, w)


def unpack_planes(packed: np.ndarray) -> list[np.ndarray]:
    """Inverse of :func:`pack_planes`."""
    rows, w = packed.shape
    h = rows * 2 // 3
    flat, c = packed.reshape(-1), (h // 2) * (w // 2)
    return [flat[: h * w].reshape(h, w), flat[h * w : h * w + c].reshape(h // 2, w // 2),
            flat[h * w + c :].reshape(h // 2, w // 2)]
