"""Procedural test material made from scratch: a painting-like style image and synthetic clips."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np


def painting(size: int = 512, seed: int = 2023) -> np.ndarray:
    """A procedural "painting": thick strokes in a warm/cool palette along a swirling flow.

    Returns:
        (size, size, 3) uint8 BGR (OpenCV order).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = 3.0 * np.sin(4.0 * xx + 2.0 * np.cos(3.0 * yy)) + 2.0 * np.cos(5.0 * yy - 1.5 * xx)
    palette = np.array(
        [[28, 42, 92], [45, 92, 160], [230, 190, 60], [240, 230, 170], [200, 90, 40], [20, 30, 40], [90, 150, 190]],
        np.float32,
    )[:, ::-1]
    base = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), size / 12)
    base = (base - base.min()) / (np.ptp(base) + 1e-6) * (len(palette) - 1)
    canvas = palette[np.clip(np.rint(base), 0, len(palette) - 1).astype(int)]
    for _ in range(int(9000 * (size / 512) ** 2)):
        x, y = rng.integers(0, size, 2)
        a = angle[y, x]
        length = rng.integers(6, 22)
        dx, dy = int(np.cos(a) * length), int(np.sin(a) * length)
        colour = palette[rng.integers(0, len(palette))] * rng.uniform(0.8, 1.15)
        cv2.line(canvas, (x - dx, y - dy), (x + dx, y + dy), colour.tolist(), int(rng.integers(2, 6)), cv2.LINE_AA)
    canvas = cv2.GaussianBlur(canvas, (3, 3), 0)
    canvas += rng.normal(0, 6, canvas.shape).astype(np.float32)
    return np.clip(canvas, 0, 255).astype(np.uint8)


def synth_clip(path: Path, *, width: int, height: int, frames: int, rate: str = "25", exe: str,
               source: str = "testsrc2", audio: bool = True, crf: int = 18, preset: str = "ultrafast") -> None:
    """Write ``frames`` frames of an FFmpeg test source (H.264, BT.709 tags, AAC tone) to ``path``."""
    video = f"{source}=size={width}x{height}:rate={rate}"
    cmd = [exe, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", video]
    if audio:
        cmd += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    cmd += ["-frames:v", str(frames), "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
            "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv"]
    if audio:
        cmd += ["-c:a", "aac", "-shortest"]
    cmd.append(str(path))
    subprocess.run(cmd, check=True)
