"""Helpers shared by the test modules: clips made with the package's own ffmpeg program, and
the command line run in-process or as a user runs it, with its one-line errors checked."""

from __future__ import annotations

import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import av
import cv2
import numpy as np
from typer.testing import CliRunner

from microast_video.cli import app
from microast_video.core.output import TEMP_SUFFIX
from microast_video.media.encode_plan import ffmpeg_exe

FFMPEG = ffmpeg_exe()


def ffmpeg(*args: str | Path) -> None:
    """Run the bundled ffmpeg quietly (an argument list, never a shell string)."""
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *map(str, args)], check=True, timeout=120)


def make_clip(path: Path, *, size: str = "96x64", seconds: float = 2, rate: int | str = 25,
              source: str = "testsrc2", audio: bool = False, extra: tuple[str, ...] = (),
              faststart: bool = False) -> Path:
    """An H.264 yuv420p clip of an FFmpeg test source (with a sine tone if ``audio``; its index
    at the front of an MP4 / MOV with ``faststart``)."""
    args: list[str] = ["-f", "lavfi", "-i", f"{source}=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac", "-shortest"]
    if faststart and path.suffix in (".mp4", ".mov"):
        extra = (*extra, "-movflags", "+faststart")
    ffmpeg(*args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", *extra, path)
    return path


def lavfi_clip(path: Path, video: str, *, audio: str | None = None, audio_offset: float = 0.0,
               out: tuple[object, ...] = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"),
               audio_codec: str = "aac") -> Path:
    """A clip from any lavfi video source (and optional lavfi audio source, maybe offset)."""
    args: list[object] = ["-f", "lavfi", "-i", video]
    if audio is not None:
        if audio_offset:
            args += ["-itsoffset", audio_offset]
        args += ["-f", "lavfi", "-i", audio, "-c:a", audio_codec]
    ffmpeg(*args, *out, path)
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


def video_frames(path: Path) -> tuple[list[float], av.VideoFrame]:
    """Presentation times (s) of every decoded frame of the first video stream, and the first frame."""
    times, first = [], None
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            times.append(float(frame.pts * frame.time_base))
            if first is None:
                first = frame
    return times, first

def png_declaring(path: Path, width: int, height: int) -> Path:
    """A tiny file whose PNG header declares ``width`` x ``height`` (a decompression bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    body = zlib.compress(b"\0" * 1000)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


RUNNER = CliRunner()


def run_cli(*args: object, expect: int | None = None):
    """The command line in this process (Typer's CliRunner); ``expect``: the exit code it must give."""
    result = RUNNER.invoke(app, [str(a) for a in args])
    if expect is not None:
        assert result.exit_code == expect, result.stderr
    return result


def one_line_error(result, *needles: str) -> str:
    """The command failed with exactly one ``error:`` line holding every needle, and no traceback."""
    assert result.exit_code != 0, result.output
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.output and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def command(*args: object) -> list[str]:
    """The command line as a user runs it: a fresh Python process."""
    return [sys.executable, "-c", "from microast_video.cli import main; main()", *map(str, args)]


def process_error(*args: object, timeout: float = 120) -> str:
    """Run ``command(*args)``: it must fail with exactly one ``error:`` line on stderr; that line."""
    proc = subprocess.run(command(*args), capture_output=True, text=True, timeout=timeout)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1 and "error:" in lines[0], proc.stderr
    return lines[0]


def cmdline(pid: int) -> str:
    """The command line of ``pid``, or "" where it no longer runs."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def children_of(pid: int, running: str = "") -> list[int]:
    """Live child processes of ``pid`` (whose command line contains ``running``)."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [child for child in map(int, out.split()) if (line := cmdline(child)) and running in line]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())
