"""What writing an OpenEXR or DPX sequence costs a frame at UHD: OpenImageIO (what the tool uses
for these formats, with their headers: timecode, frame rate, chromaticities / transfer) against
FFmpeg's image2 muxer and its exr / dpx encoders (pixels only), measured the same way in one run.

Each arm writes the same frames (a smooth gradient with noise, as a stylized frame has) into a
fresh folder, each frame whole under a temporary name, through the writer interface the video
job uses (``write`` per frame, then ``finish``); seconds per frame are the wall time over the
frames. EXR: half-float, ZIP; DPX: 16-bit RGB.

    python benchmarks/frame_writers.py [--frames 8] [--size 3840x2160]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from microast_video.core.frame import Frame  # noqa: E402
from microast_video.media.encode import FFmpegWriter  # noqa: E402
from microast_video.media.encode_plan import EncodeSettings, ffmpeg_exe, plan_encode  # noqa: E402
from microast_video.media.frame_files import FrameFiles  # noqa: E402
from microast_video.media.probe import probe  # noqa: E402


def frames(count: int, w: int, h: int, dtype: type) -> list[Frame]:
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, w, dtype=np.float32)[None, :, None] * np.linspace(0.5, 1, h, dtype=np.float32)[:, None, None]
    out = []
    for k in range(count):
        rgb = np.clip(ramp + rng.normal(0, 0.02, (h, w, 3)).astype(np.float32) + 0.01 * k, 0, 1)
        data = rgb if dtype == np.float32 else (rgb * 65535 + 0.5).astype(np.uint16)
        out.append(Frame(k, k, 1, Fraction(1, 24), np.ascontiguousarray(data)))
    return out


def timed(writer, batch: list[Frame]) -> float:
    t = time.perf_counter()
    for frame in batch:
        writer.write(frame)
    writer.finish()
    return (time.perf_counter() - t) / len(batch)


def source(folder: Path, w: int, h: int, ext: str) -> object:
    """A one-frame input of the format (for the ffmpeg arm's plan: its depth and size)."""
    import OpenImageIO as oiio

    path = folder / f"src.0001{ext}"
    spec = oiio.ImageSpec(w, h, 3, "half" if ext == ".exr" else "uint16")
    out = oiio.ImageOutput.create(str(path))
    out.open(str(path), spec)
    out.write_image(np.zeros((h, w, 3), np.float32))
    out.close()
    return probe(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", default="3840x2160")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    exe = ffmpeg_exe()
    print(f"{args.frames} frames of {w}x{h}; seconds per frame (lower is better)")
    for ext, dtype in ((".exr", np.float32), (".dpx", np.uint16)):
        batch = frames(args.frames, w, h, dtype)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            info = source(folder, w, h, ext)
            (folder / "oiio").mkdir()
            (folder / "ffmpeg").mkdir()
            oiio_s = timed(FrameFiles(folder / "oiio" / f"o.%04d{ext}", 1, rate=Fraction(24), timecode="01:00:00:00",
                                      space="Linear Rec.709 (sRGB)" if ext == ".exr" else None), batch)
            target = folder / "ffmpeg" / f"f.%04d{ext}"
            plan = plan_encode(info, target, EncodeSettings(), exe=exe, first_number=1)
            ffmpeg_s = timed(FFmpegWriter(info, plan, target, exe=exe, carry=False), batch)
            shutil.rmtree(folder / "oiio")
        print(f"  {ext[1:].upper():4s} OpenImageIO (with headers) {oiio_s:.3f} s/frame   FFmpeg image2 {ffmpeg_s:.3f} "
              f"s/frame   OpenImageIO / FFmpeg = {oiio_s / ffmpeg_s:.2f}")


if __name__ == "__main__":
    main()
