"""Measuring flicker: how steady a stylized clip is over time (``microast-video flicker``).

Definitions, so figures agree with the literature (all clips resized to a common height
first, RGB values in [0, 1]):

* **warping error** (Lai et al., "Learning Blind Video Temporal Consistency", ECCV 2018):
  optical flow on the *source* frames (OpenCV DIS, frame t -> t-1 and t-1 -> t); pixels
  failing the forward-backward check (``|f + b|^2 > 0.01 (|f|^2 + |b|^2) + 0.5``) are
  occluded. Per frame pair: the mean squared RGB difference (mean over non-occluded pixels
  and the three channels) between frame t and frame t-1 warped onto t; then the mean over
  pairs. Measured on the source too: the floor that flow error alone gives.
* **texture ratio**: mean Sobel gradient magnitude of luma, candidate / reference. A
  stabilizer that averages uncorrelated textures makes the picture soft and scores below 1.
* **low-pass fidelity**: PSNR between the Gaussian-blurred (sigma = 1 % of the height)
  candidate and reference clips (the squared error averaged over the whole clip). Ghost
  trails and colour drift show up here.

Everything streams: two frames of each clip are held at a time.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from ..colour.convert import luma
from ..core.errors import InputError, shown
from ..core.options import FLICKER_HEIGHT, Missing
from ..media.decode import decode_frames
from ..media.probe import probe


def frames_at_height(path: str | Path, height: int, limit: int | None = None, *, start: float = 0.0,
                     duration: float | None = None) -> Iterator[np.ndarray]:
    """The clip's frames (from ``start`` s, for ``duration`` s), upright, resized to ``height``
    rows (area filter): (h, w, 3) float32 in [0, 1]; a sequence's gaps hold the frame before."""
    info = probe(path, missing=Missing.hold)
    w, h = info.upright_size
    width = max(2, round(w * height / h))
    for i, frame in enumerate(decode_frames(info, start=start, duration=duration, size=(width, height))):
        if limit is not None and i >= limit:
            return
        yield frame.data.astype(np.float32) / 255.0


def gray_u8(rgb: np.ndarray) -> np.ndarray:
    """(h, w, 3) float RGB in [0, 1] -> (h, w) uint8 luma, what DIS takes."""
    return np.clip(luma(rgb) * 255.0 + 0.5, 0, 255).astype(np.uint8)


class FlowPair:
    """DIS flow between consecutive source frames, both ways, and the non-occluded mask."""

    def __init__(self, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) -> None:
        self.dis = cv2.DISOpticalFlow_create(preset)

    def __call__(self, prev_gray: np.ndarray, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(map, valid): ``map`` (h, w, 2) float32 absolute coordinates in frame t-1 of each
        pixel of frame t (for ``cv2.remap``); ``valid`` (h, w) bool, not occluded."""
        fwd = self.dis.calc(gray, prev_gray, None)  # t -> t-1
        bwd = self.dis.calc(prev_gray, gray, None)  # t-1 -> t
        h, w = gray.shape
        grid = np.mgrid[0:h, 0:w][::-1].transpose(1, 2, 0).astype(np.float32)
        coords = grid + fwd
        back = cv2.remap(bwd, coords[..., 0], coords[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        total = fwd + back
        valid = (total ** 2).sum(-1) <= 0.01 * ((fwd ** 2).sum(-1) + (back ** 2).sum(-1)) + 0.5
        inside = (coords[..., 0] >= 0) & (coords[..., 0] <= w - 1) & (coords[..., 1] >= 0) & (coords[..., 1] <= h - 1)
        return coords, valid & inside


def warp(image: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """``image`` (frame t-1) sampled at ``coords`` (bilinear): frame t-1 as seen from frame t."""
    return cv2.remap(image, coords[..., 0], coords[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def texture(rgb: np.ndarray) -> float:
    """Mean Sobel gradient magnitude of luma."""
    y = luma(rgb)
    gx, gy = cv2.Sobel(y, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(y, cv2.CV_32F, 0, 1, ksize=3)
    return float(np.sqrt(gx * gx + gy * gy).mean())


@dataclasses.dataclass
class ClipScore:
    """Figures of one clip (sums while measuring, means once :meth:`done`)."""

    name: str
    warping_error: float = 0.0
    pairs: int = 0
    texture: float = 0.0
    frames: int = 0
    lowpass_se: float = 0.0
    lowpass_values: int = 0
    pair_errors: list[float] = dataclasses.field(default_factory=list)  # pair (t-1, t) at t-1; NaN: no valid pixel

    def add_pair(self, current: np.ndarray, previous_warped: np.ndarray, valid: np.ndarray) -> None:
        if not valid.any():
            self.pair_errors.append(math.nan)
            return
        error = float(((current - previous_warped) ** 2)[valid].mean())
        self.pair_errors.append(error)
        self.warping_error += error
        self.pairs += 1

    @property
    def mean_warping_error(self) -> float:
        return self.warping_error / max(self.pairs, 1)

    @property
    def mean_texture(self) -> float:
        return self.texture / max(self.frames, 1)

    @property
    def lowpass_psnr(self) -> float | None:
        if not self.lowpass_values:
            return None
        mse = self.lowpass_se / self.lowpass_values
        return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def measure_flicker(source: Path, stylized: Sequence[Path], *, reference: Path | None = None, height: int = FLICKER_HEIGHT,
            frames: int | None = None, start: float = 0.0, duration: float | None = None,
            log=lambda m: None) -> dict[str, object]:
    """Warping error of the source and of each clip; texture ratio and low-pass PSNR against ``reference``.

    ``start`` and ``duration`` pick the part of the source the clips were made from.

    Returns a JSON-friendly dict: ``{"height", "frames", "source", "clips": [...]}``.

    Raises:
        InputError: a clip that cannot be read, or one with a different frame count.
    """
    if not 16 <= height <= 4320:
        raise ValueError(f"--height must be between 16 and 4320, got {height = }")
    names = [("source", source), *((str(p), p) for p in stylized), *([("reference", reference)] if reference else [])]
    streams = [frames_at_height(p, height, frames, **({"start": start, "duration": duration} if i == 0 else {}))
               for i, (_, p) in enumerate(names)]
    scores = [ClipScore(n) for n, _ in names]
    flow, sigma = FlowPair(), 0.01 * height
    prev: list[np.ndarray] | None = None
    prev_gray = None
    count = 0
    for current in _lockstep(streams, names):
        gray = gray_u8(current[0])
        if prev is not None:
            coords, valid = flow(prev_gray, gray)
            for score, now, before in zip(scores, current, prev):
                score.add_pair(now, warp(before, coords), valid)
        for score, now in zip(scores, current):
            score.texture += texture(now)
            score.frames += 1
        if reference is not None:
            ref_blur = cv2.GaussianBlur(current[-1], (0, 0), sigma)
            for score, now in zip(scores[1:-1], current[1:-1]):
                score.lowpass_se += float(((cv2.GaussianBlur(now, (0, 0), sigma) - ref_blur) ** 2).sum())
                score.lowpass_values += now.size
        prev, prev_gray, count = current, gray, count + 1
        if count % 25 == 0:
            log(f"{count} frames measured")
    return _summary(scores, height, count, reference is not None)


def _lockstep(streams: list[Iterator[np.ndarray]], names: list[tuple[str, Path]]) -> Iterator[list[np.ndarray]]:
    """Frame t of every clip together; clips of different lengths or sizes are refused."""
    index = 0
    while True:
        current = [next(s, None) for s in streams]
        if all(c is None for c in current):
            return
        if any(c is None for c in current):
            short = [shown(p) for (_, p), c in zip(names, current) if c is None]
            raise InputError(f"clip {short[0]} has {index} frames, fewer than the others; flicker compares frame by frame")
        shapes = {c.shape for c in current}
        if len(shapes) > 1:
            raise InputError(f"clips differ in aspect ratio at {current[0].shape[0]} px height ({sorted(shapes)}); "
                             "compare outputs of the same source")
        index += 1
        yield current


def _summary(scores: list[ClipScore], height: int, frames: int, with_reference: bool) -> dict[str, object]:
    source, clips = scores[0], scores[1:]
    reference = clips[-1] if with_reference else None
    rows = []
    for score in clips:
        row = {"clip": score.name, "warping_error": score.mean_warping_error,
               "vs_source": score.mean_warping_error / max(source.mean_warping_error, 1e-12),
               "pair_errors": [None if math.isnan(e) else e for e in score.pair_errors]}
        if reference is not None and score is not reference:
            row.update(vs_reference=score.mean_warping_error / max(reference.mean_warping_error, 1e-12),
                       texture_ratio=score.mean_texture / max(reference.mean_texture, 1e-12),
                       lowpass_psnr_db=score.lowpass_psnr)
        rows.append(row)
    return {"height": height, "frames": frames, "source_warping_error": source.mean_warping_error, "clips": rows}


def format_flicker(result: dict[str, object]) -> str:
    """The figures as a table."""
    lines = [f"flicker at {result['height']} px height over {result['frames']} frames; "
             f"source warping error {result['source_warping_error']:.6f} (the floor flow error gives)",
             f"  {'clip':<40} {'warp err':>10} {'x source':>9} {'x ref':>7} {'texture':>8} {'low-pass':>9}"]
    for row in result["clips"]:
        ref = f"{row['vs_reference']:.3f}" if "vs_reference" in row else "-"
        tex = f"{row['texture_ratio']:.3f}" if "texture_ratio" in row else "-"
        lp = row.get("lowpass_psnr_db")
        lps = "-" if lp is None else ("inf" if math.isinf(lp) else f"{lp:.1f} dB")
        name = row["clip"] if len(row["clip"]) <= 40 else "..." + row["clip"][-37:]
        lines.append(f"  {name:<40} {row['warping_error']:>10.6f} {row['vs_source']:>9.2f} {ref:>7} {tex:>8} {lps:>9}")
    return "\n".join(lines)
