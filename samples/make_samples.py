"""Generate the bundled samples: a short clip with sound, a still frame and a style image.

Everything here is made from scratch, so the project ships no media made by others:

* ``clip.mp4``   640x360, 25 fps, 4 s, H.264 + AAC stereo: FFmpeg's ``mandelbrot``
  test source (a slow zoom) and a 440 Hz tone that beeps at every whole second.
* ``frame.png``  the clip's first frame, for ``microast-video image``.
* ``style.jpg``  a procedural "painting": thick oriented brush strokes in a warm/cool
  palette, smeared along a swirling flow field.

* ``before_after.jpg`` (with ``--figure``): frame, style and the project's result side by
  side, for the README (needs the network's weights).

Run ``python samples/make_samples.py [--figure]`` (uses the ffmpeg binary of imageio-ffmpeg).
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


def make_figure(path: Path) -> None:
    """The README's before/after picture: the sample frame, the style, the result (fp32)."""
    import numpy as np

    from microast_video import Stylizer, load_content_image, load_model, load_style_image

    model = load_model()
    signals = model.encode_style(load_style_image(HERE / "style.jpg"))
    content = load_content_image(HERE / "frame.png")
    out = Stylizer(model, signals)(content)  # fp32, whole frame: the exact path
    to_bgr = lambda t: (t[0].permute(1, 2, 0).numpy()[..., ::-1] * 255).round().astype(np.uint8)  # noqa: E731
    before, after = to_bgr(content), to_bgr(out)
    h = before.shape[0]
    style = cv2.resize(cv2.imread(str(HERE / "style.jpg")), (h, h), interpolation=cv2.INTER_AREA)
    gap = np.full((h, 8, 3), 255, np.uint8)
    cv2.imwrite(str(path), np.hstack([before, gap, style, gap, after]), [cv2.IMWRITE_JPEG_QUALITY, 88])


def main() -> int:
    make_clip(HERE / "clip.mp4")
    extract_frame(HERE / "clip.mp4", HERE / "frame.png")
    make_style(HERE / "style.jpg")
    names = ["clip.mp4", "frame.png", "style.jpg"]
    if "--figure" in sys.argv[1:]:
        make_figure(HERE / "before_after.jpg")
        names.append("before_after.jpg")
    for name in names:
        print(f"wrote samples/{name} ({(HERE / name).stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
