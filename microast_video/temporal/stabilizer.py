"""Stabilize over time: keep the painted texture steady from frame to frame, reset at scene cuts.

The network stylizes every frame on its own and turns small differences between frames
(sensor noise, compression, slight motion) into different brush strokes: the texture
"boils". Per frame, this stage (:class:`Stabilizer`):

1. computes optical flow (OpenCV DIS, preset medium) between the previous and the current
   *source* frame on a small grey copy (``flow_height`` rows), both ways;
2. marks the reliable pixels: forward-backward consistent, inside the frame, and whose
   warped source matches (photometric check); a frame with almost no reliable pixels, or
   a large photometric change, is a **scene cut** and resets the state, so the first frame
   of a shot is the per-frame output itself;
3. warps the previous *output* onto the current frame and blends, split in two bands:
   the **texture** (detail above ``texture_sigma``) is carried along the flow with weight
   ``strength``, so the painted strokes move with the scene instead of being repainted;
   the **base** (colour, shading) is blended with ``lowpass * strength`` so the picture
   follows changes in light. Blending uncorrelated textures would lower their contrast
   (the picture goes soft), so the texture's local energy is restored to the current
   frame's (gain between 1 and ``max_gain``);
4. the smooth parts of the blend (weights, base, gain) are computed at the flow's size
   and the full-resolution work is two passes, the warp and ``out = ac * current + aw * warped
   + k``: native kernels (:class:`~microast_video.native.temporal.TemporalKernels`, one thread, no
   full-size temporaries) where they could be built, else OpenCV, numpy and torch in strips.
   Where nothing is reliable, ``ac = 1, aw = k = 0``: the output is the per-frame frame.

Frames are RGB, or 4:2:0 planes (the device transport), 8-bit or deep; the state is the
previous output (uint16 samples, steps of 1/65535) and the previous small grey frame: memory is
flat in clip length.
Why this method, with the figures of what else was tried: ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator

import cv2
import numpy as np
import torch

from ..colour.convert import luma
from ..core.frame import Frame, pack_planes, unpack_planes
from ..core.paths import cache_dir
from ..core.schema import default
from ..native.temporal import TemporalKernels, temporal_kernels
from .ahead import Ahead, computed_ahead
from .device import DeviceBlend
from .passes import STATE_TOP, _compose_up, _to_state, _warp

#: The smallest picture OpenCV's DIS flow takes: (longer side, shorter side), measured.
MIN_FLOW_SIDE = (12, 8)


@dataclasses.dataclass(frozen=True)
class TemporalSettings:
    """How the temporal stage works; ``strength`` is ``--temporal-strength``.

    Attributes:
        strength: how much of the previous output's texture carries over where the flow is
            reliable, in [0, 1] (0 = the per-frame output).
        method: "texture" (carry the texture along the flow, restore its energy) or "plain"
            (blend the warped previous output with the current one; kept for comparison).
        lowpass: share of ``strength`` applied to the base (colour, shading).
        flow_height: rows of the small copy the flow (and the smooth maps) are computed on.
        texture_sigma: Gaussian sigma splitting texture from base, as a fraction of the height.
        max_gain: the most texture-energy restoration may multiply the blended texture by.
        cut_valid: a frame whose share of consistent flow falls below this, and whose mean
            luma differs from the previous frame's by more than ``cut_change`` levels (8-bit,
            unwarped), starts a new shot. Both are needed: a fade or a dark, flat frame also
            defeats the flow, but changes little.
        cut_change: see ``cut_valid``.
        cut_error: a frame whose consistent pixels still differ by more than this (mean 8-bit
            luma levels, warped) starts a new shot too.
        photo_error: pixels whose warped source differs more than this (luma levels) are unreliable.
        flow_preset: OpenCV DIS preset ("ultrafast", "fast", "medium").
    """

    strength: float = default("temporal_strength")
    method: str = "texture"
    lowpass: float = 0.7
    flow_height: int = 270
    texture_sigma: float = 0.006
    max_gain: float = 2.0
    cut_valid: float = 0.2
    cut_change: float = 12.0
    cut_error: float = 15.0
    photo_error: float = 20.0
    flow_preset: str = "medium"
    flow_refine: int = 5  # DIS variational refinement iterations (medium's own is 5)

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"temporal strength must be in [0, 1], got {self.strength = }")
        if self.method not in ("texture", "plain"):
            raise ValueError(f"unknown temporal method {self.method = }")
        if self.flow_preset not in ("ultrafast", "fast", "medium"):
            raise ValueError(f"unknown flow preset {self.flow_preset = }")


def _grid(h: int, w: int) -> np.ndarray:
    """(h, w, 2) float32 pixel coordinates (x, y)."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.dstack([xs, ys])


class _Flow:
    """Flow between consecutive small grey frames, the reliable mask, and cut detection."""

    def __init__(self, settings: TemporalSettings) -> None:
        self.s = settings
        self.dis = cv2.DISOpticalFlow_create(getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{settings.flow_preset.upper()}"))
        self.dis.setVariationalRefinementIterations(settings.flow_refine)
        self._grid: np.ndarray | None = None

    def __call__(self, prev: np.ndarray, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """(flow t -> t-1 in small pixels, reliable mask as float32, scene cut?)."""
        s = self.s
        fwd = self.dis.calc(gray, prev, None)
        bwd = self.dis.calc(prev, gray, None)
        h, w = gray.shape
        if self._grid is None or self._grid.shape[:2] != (h, w):
            self._grid = _grid(h, w)
        coords = self._grid + fwd
        back = cv2.remap(bwd, coords, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        consistent = _norm2(fwd + back) <= 0.01 * (_norm2(fwd) + _norm2(back)) + 0.5
        error = np.abs(cv2.remap(prev, coords, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                       .astype(np.float32) - gray)
        inside = (coords[..., 0] >= 0) & (coords[..., 0] <= w - 1) & (coords[..., 1] >= 0) & (coords[..., 1] <= h - 1)
        reliable = (consistent & inside & (error <= s.photo_error)).astype(np.float32)
        mean_error = float(error[consistent].mean()) if consistent.any() else 0.0
        change = float(cv2.absdiff(prev, gray).mean())
        cut = (float(consistent.mean()) < s.cut_valid and change > s.cut_change) or mean_error > s.cut_error
        return fwd, reliable, cut


class Stabilizer:
    """The temporal state of one clip: call it with each (stylized, source) frame, in order.

    ``layout`` and ``top`` say what the frames hold: "rgb" (H, W, 3) or "yuv420p" planes
    (H * 3/2, W), with samples in [0, top]. ``kernels``: the native full-resolution passes
    (:func:`new_stabilizer` brings them), else OpenCV, numpy and torch (the same to 1/65535).
    """

    def __init__(self, settings: TemporalSettings = TemporalSettings(), kernels: TemporalKernels | None = None,
                 kernel_note: str | None = None, device: torch.device | None = None) -> None:
        self.settings = settings
        self.kernels = kernels
        self.kernel_note = kernel_note  # why the native kernels are not used, when they were asked for
        # on a GPU job (or where asked) the full-resolution work runs in torch on that device
        self.blend = DeviceBlend(settings, device) if device is not None else None
        self.flow = _Flow(settings)
        self._prev: list[np.ndarray] | None = None  # the last output's planes, uint16 samples (STATE_TOP)
        self._prev_gray: np.ndarray | None = None
        self._grids: dict[tuple[int, int], np.ndarray] = {}
        self._warped: list[np.ndarray] = []  # the native warp's output buffers, one per plane
        self.cuts: list[int] = []
        self.frames = 0
        self.flow_threads = 0  # threads computing the flow ahead (:func:`stabilized`); 0: here, in turn

    def __call__(self, stylized: np.ndarray, source: np.ndarray, layout: str = "rgb", top: float | None = None,
                 ahead: Ahead | None = None) -> np.ndarray:
        """``ahead``: this frame's small grey copy and its flow from the previous frame, computed
        ahead (:func:`stabilized`); None: computed here."""
        top = top or (65535.0 if stylized.dtype == np.uint16 else 255.0)
        index, self.frames = self.frames, self.frames + 1
        gray = ahead.gray if ahead is not None else self._small_gray(source, layout, top)
        planes = _planes(stylized, layout)
        fresh = self._prev_gray is None or self._prev_gray.shape != gray.shape or self.settings.strength == 0
        if not fresh:
            ready = ahead is not None and ahead.flow is not None and ahead.prev_gray is self._prev_gray
            flow, reliable, cut = ahead.flow.result() if ready else self.flow(self._prev_gray, gray)
            if cut:
                self.cuts.append(index)
            else:
                state, samples = zip(*self._blend(planes, top, stylized.dtype, flow, reliable))
                self._prev, self._prev_gray = list(state), gray
                return _join(list(samples), layout)
        self._prev_gray = gray
        self._prev = ([self.blend.state(self.blend.upload(p), top) for p in planes] if self.blend is not None
                      else [_to_state(p, top) for p in planes])
        return stylized

    def snapshot(self) -> dict[str, object]:
        """The state as it is now (copies), to continue from later (:meth:`restore`)."""
        prev = self._prev if self.blend is None or self._prev is None else [
            self.blend.download(p, np.dtype(np.uint16)) for p in self._prev]
        return {"prev": None if prev is None else [p.copy() for p in prev],
                "gray": None if self._prev_gray is None else self._prev_gray.copy(),
                "frames": self.frames, "cuts": list(self.cuts)}

    def restore(self, state: dict[str, object]) -> None:
        prev = state["prev"]  # float32 planes in [0, 1] from work folders of older versions
        # copies: the next frame's state is written into these buffers
        prev = None if prev is None else [p.copy() if p.dtype == np.uint16 else _to_state(p, 1.0) for p in prev]
        if prev is not None and self.blend is not None:
            prev = [self.blend.upload(p) for p in prev]
        self._prev, self._prev_gray = prev, state["gray"]
        self.frames, self.cuts = int(state["frames"]), list(state["cuts"])

    def where(self) -> str:
        """Where the full-resolution work runs, in words (for the report)."""
        if self.blend is not None:
            return f"torch on {self.blend.device}, the flow on {self.flow_threads} CPU thread(s) ahead"
        if self.kernels is not None:
            return "native"
        return "OpenCV / numpy / torch" + (f": {self.kernel_note}" if self.kernel_note else "")

    def gray_of(self, frame: Frame) -> np.ndarray:
        """The small grey copy of ``frame`` 's source the flow is computed on."""
        return self._small_gray(frame.source, frame.layout, frame.top)

    def _small_gray(self, source: np.ndarray, layout: str, top: float) -> np.ndarray:
        plane = _planes(source, layout)[0] if layout == "yuv420p" else source
        h, w = plane.shape[:2]
        fh = min(h, self.settings.flow_height)
        small = cv2.resize(plane, (max(8, round(w * fh / h)), fh), interpolation=cv2.INTER_AREA)
        small = small.astype(np.float32) * (255.0 / top)
        if small.ndim == 3:
            small = luma(small)
        return np.clip(small + 0.5, 0, 255).astype(np.uint8)

    def _blend(self, planes: list[np.ndarray], top: float, dtype: np.dtype, flow: np.ndarray, reliable: np.ndarray
               ) -> list[tuple[np.ndarray, np.ndarray]]:
        """The stabilized planes from the current ones (samples in [0, top]): per plane, (the
        next state, the output samples of ``dtype``); see :func:`_compose_up`.

        The warped state is uint16 like the state; the full-resolution float work runs in
        strips (:func:`_warp`, :func:`_compose_up`), or in torch on the job's device."""
        if self.blend is not None:
            done = self.blend([self.blend.upload(p) for p in planes], self._prev, top, flow, reliable)
            return [(state, self.blend.download(samples, dtype)) for state, samples in done]
        s, (fh, fw) = self.settings, reliable.shape
        a = reliable * s.strength
        warped = self._warp_planes(flow)
        spare = self._prev  # free once warped: the new state is written into it (no second state)
        kernels = self.kernels if dtype in (np.uint8, np.uint16) else None
        if s.method == "plain":
            return [_compose_up(c, w, 1 - a, a, np.zeros(a.shape + c.shape[2:], np.float32), top, dtype, into, kernels)
                    for c, w, into in zip(planes, warped, spare)]
        sigma = max(0.5, s.texture_sigma * fh)
        mid = [(_halve(c, fh, top), _halve(w, fh, STATE_TOP)) for c, w in zip(planes, warped)]  # <= 2x the flow size
        bases = [(cv2.GaussianBlur(_down(c, fw, fh), (0, 0), sigma), cv2.GaussianBlur(_down(w, fw, fh), (0, 0), sigma))
                 for c, w in mid]
        gain = self._gain(*mid[0], bases[0], a, sigma) if s.max_gain > 1 else np.ones_like(a)
        ac, aw = gain * (1 - a), gain * a
        out = []
        for c, w, (bc, bw), into in zip(planes, warped, bases, spare):
            ka = (1 - s.lowpass * a - ac)[..., None] if bc.ndim == 3 else 1 - s.lowpass * a - ac
            kw = (s.lowpass * a - aw)[..., None] if bw.ndim == 3 else s.lowpass * a - aw
            out.append(_compose_up(c, w, ac, aw, bc * ka + bw * kw, top, dtype, into, kernels))
        return out

    def _warp_planes(self, flow: np.ndarray) -> list[np.ndarray]:
        """The state's planes warped onto the current frame (uint16, like the state); the native
        warp writes into buffers kept from frame to frame (no 4K-sized allocation per frame)."""
        if self.kernels is None:
            return [_warp(prev, self._coords(prev.shape[:2], flow)) for prev in self._prev]
        if [b.shape for b in self._warped] != [p.shape for p in self._prev]:
            self._warped = [np.empty_like(p) for p in self._prev]
        return [self.kernels.warp(p, self._coords(p.shape[:2], flow), out) for p, out in zip(self._prev, self._warped)]

    def _gain(self, c: np.ndarray, w: np.ndarray, bases: tuple[np.ndarray, np.ndarray], a: np.ndarray,
              sigma: float) -> np.ndarray:
        """Texture energy of the current frame over that of the blended texture, local, in [1, max_gain].

        Measured on the first plane (RGB, or luma) at up to twice the flow's size, then
        averaged down to the flow's size."""
        fh, fw = a.shape
        sh, sw = c.shape[:2]
        tc = c - cv2.resize(bases[0], (sw, sh), interpolation=cv2.INTER_LINEAR)
        tw = w - cv2.resize(bases[1], (sw, sh), interpolation=cv2.INTER_LINEAR)
        ah = cv2.resize(a, (sw, sh), interpolation=cv2.INTER_LINEAR)
        blended = tc + (ah[..., None] if tc.ndim == 3 else ah) * (tw - tc)
        want, have = (_energy(t, fw, fh, 3 * sigma) for t in (tc, blended))
        return np.clip(np.sqrt(want / np.maximum(have, 1e-10)), 1.0, self.settings.max_gain)

    def _coords(self, size: tuple[int, int], flow: np.ndarray) -> np.ndarray:
        """Where each full-size pixel of the current frame comes from in the previous one,
        upsampled horizontally only: (flow rows, w, 2), for :func:`_rows_up` a strip at a time.

        Bilinear interpolation of (pixel-centre grid + flow), scaled to full-size units, is the
        upsampled flow plus the full-size grid (the grid is linear, so interpolating it is exact)."""
        h, w = size
        fh, fw = flow.shape[:2]
        key = (fh, fw, h, w)
        if key not in self._grids:
            scale = np.array([w / fw, h / fh], np.float32)
            self._grids[key] = ((_grid(fh, fw) + 0.5) * scale - 0.5, scale)
        centres, scale = self._grids[key]
        small = flow * scale
        small += centres
        return cv2.resize(small, (w, fh), interpolation=cv2.INTER_LINEAR)


def _with_source(frame: Frame) -> Frame:
    if frame.source is None:
        raise ValueError(f"frame {frame.index} reached the temporal stage without its source pixels")
    return frame


def _planes(data: np.ndarray, layout: str) -> list[np.ndarray]:
    return unpack_planes(data) if layout == "yuv420p" else [data]


def _join(planes: list[np.ndarray], layout: str) -> np.ndarray:
    return pack_planes(planes) if layout == "yuv420p" else planes[0]


def _down(x: np.ndarray, w: int, h: int) -> np.ndarray:
    return cv2.resize(x, (w, h), interpolation=cv2.INTER_AREA)


def _halve(x: np.ndarray, flow_height: int, top: float) -> np.ndarray:
    """``x`` averaged down to at most twice ``flow_height`` rows, as float32 in [0, 1]."""
    h, w = x.shape[:2]
    rows = min(h, 2 * flow_height)
    small = x if rows == h else _down(x, max(8, round(w * rows / h)), rows)
    return small.astype(np.float32) * (1.0 / top) if top != 1.0 or small.dtype != np.float32 else small


def _norm2(v: np.ndarray) -> np.ndarray:
    """Squared length of (h, w, 2) vectors."""
    return v[..., 0] * v[..., 0] + v[..., 1] * v[..., 1]


def _energy(texture: np.ndarray, w: int, h: int, sigma: float) -> np.ndarray:
    """Local mean of the texture's squared amplitude (summed over channels), at (h, w)."""
    squared = texture * texture
    if squared.ndim == 3:
        squared = squared[..., 0] + squared[..., 1] + squared[..., 2]
    return cv2.GaussianBlur(_down(squared, w, h), (0, 0), sigma)



def new_stabilizer(settings: TemporalSettings | None, device: torch.device | None = None) -> Stabilizer | None:
    """The temporal stage's state for one clip (None when the stage is off): on a CPU job with
    the native kernels when they can be built (:attr:`Stabilizer.kernel_note` says why not);
    on a GPU ``device``, its full-resolution work in torch there, the flow computed ahead."""
    if settings is None:
        return None

    kernels, why = temporal_kernels(cache_dir())
    if device is None or device.type == "cpu":
        return Stabilizer(settings, kernels, why)
    stabilizer = Stabilizer(settings, device=device)
    stabilizer.flow_threads = flow_threads(settings)
    return stabilizer


def flow_threads(settings: TemporalSettings) -> int:
    """CPU threads computing the flow ahead on a GPU job: a quarter of the cores, 1 to 4 (DIS
    at 270 rows takes ~10-20 ms a frame on one core: four keep up with 200 fps)."""
    return 0 if settings.strength == 0 else max(1, min(4, (os.cpu_count() or 1) // 4))


def stabilized(frames: Iterator[Frame], stabilizer: Stabilizer, boundaries: Iterable[float] = (),
               keep_source: bool = False) -> Iterator[Frame]:
    """The temporal stage: each stylized frame (with its ``source``) stabilized, in order.

    The frames leave without their ``source`` unless ``keep_source`` (for the strength stage) or
    they have a matte (for
    :func:`~microast_video.style.controls.original_outside`). The first
    frame at or after each of ``boundaries`` (seconds: batch segments) carries the state just
    before it, so the segment can later be resumed exactly."""
    marks = sorted(boundaries)
    for frame, ahead in computed_ahead(map(_with_source, frames), stabilizer.gray_of,
                                       lambda: _Flow(stabilizer.settings), stabilizer.flow_threads):
        state = None
        if marks and frame.seconds >= marks[0] - 1e-9:
            while marks and frame.seconds >= marks[0] - 1e-9:
                marks.pop(0)
            state = stabilizer.snapshot()
        steady = stabilizer(frame.data, frame.source, frame.layout, frame.top, ahead)
        out = frame.with_data(steady, frame.source if keep_source or frame.matte is not None else None, keep_matte=True)
        yield out if state is None else dataclasses.replace(out, state=state)
