"""Generate the bundled samples: a short clip with sound, a still frame and a style image.

Everything here is made from scratch, so the project ships no media made by others:

* ``clip.mp4``   640x360, 25 fps, 4 s, H.264 + AAC stereo: FFmpeg's ``mandelbrot``
  test source (a slow zoom) and a 440 Hz tone that beeps at every whole second.
* ``frame.png``  the clip's first frame, for ``microast-video image``.
* ``style.jpg``  a procedural "painting": thick oriented brush strokes in a warm/cool
  palette, smeared along a swirling flow field.

Run ``python samples/make_samples.py`` (uses the ffmpeg binary of imageio-ffmpeg).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import imageio_ffmpeg

from microast_video._procedural import painting

HERE = Path(__file__).resolve().parent


def make_clip(path: Path, seconds: float = 4.0) -> None:
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    video = "mandelbrot=size=640x360:rate=25:start_scale=3:end_scale=0.02:inner=mincol"
    audio = "aevalsrc=0.4*sin(2*PI*440*t)*(0.25+0.75*lt(mod(t\\,1)\\,0.1)):s=48000:c=stereo"
    cmd = [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", video,
        "-f", "lavfi", "-i", audio,
        "-t", str(seconds),
        "-c:v", "libx264", "-preset", "slow", "-crf", "26", "-pix_fmt", "yuv420p",
        "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-color_range", "tv",
        "-c:a", "aac", "-b:a", "96k",
        "-metadata", "title=microast-video sample (generated)",
        "-movflags", "+faststart",
        str(path),
    ]
    subprocess.run(cmd, check=True)


def extract_frame(clip: Path, path: Path) -> None:
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-i", str(clip), "-frames:v", "1", str(path)],
        check=True,
    )


def make_style(path: Path) -> None:
    cv2.imwrite(str(path), painting(512, seed=2023), [cv2.IMWRITE_JPEG_QUALITY, 90])


def main() -> int:
    make_clip(HERE / "clip.mp4")
    extract_frame(HERE / "clip.mp4", HERE / "frame.png")
    make_style(HERE / "style.jpg")
    for name in ("clip.mp4", "frame.png", "style.jpg"):
        print(f"wrote samples/{name} ({(HERE / name).stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
