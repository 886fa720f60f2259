"""Helpers shared by several test modules: clips made with the package's own ffmpeg program."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np

from microast_video.media.encode_plan import ffmpeg_exe
from microast_video.core.output import TEMP_SUFFIX

FFMPEG = ffmpeg_exe()


def ffmpeg(*args: str | Path) -> None:
    """Run the bundled ffmpeg quietly (an argument list, never a shell string)."""
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *map(str, args)], check=True, timeout=120)


def make_clip(path: Path, *, size: str = "96x64", seconds: float = 2, rate: int | str = 25,
              source: str = "testsrc2", audio: bool = False, extra: tuple[str, ...] = ()) -> Path:
    """An H.264 yuv420p clip of an FFmpeg test source (with a sine tone if ``audio``)."""
    args: list[str] = ["-f", "lavfi", "-i", f"{source}=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac", "-shortest"]
    ffmpeg(*args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", *extra, path)
    return path


def make_style(path: Path, seed: int = 2) -> Path:
    """A small random-colour style image."""
    rng = np.random.default_rng(seed)
    img = (rng.random((9, 9, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(path), cv2.resize(img, (48, 40), interpolation=cv2.INTER_LINEAR))
    return path


def temp_files(folder: Path) -> list[Path]:
    """The tool's temporary files left in ``folder``."""
    return sorted(folder.glob(f".*{TEMP_SUFFIX}"))
