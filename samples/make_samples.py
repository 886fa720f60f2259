"""Generate the bundled samples: a short clip with sound, a still frame and a style image.

Everything here is made from scratch, so the project ships no media made by others:

* ``clip.mp4``   640x360, 25 fps, 4 s, H.264 + AAC stereo: FFmpeg's ``mandelbrot``
  test source (a slow zoom) and a 440 Hz tone that beeps at every whole second.
* ``frame.png``  the clip's first frame, for ``microast-video image``.
* ``style.jpg``  a procedural "painting": thick oriented brush strokes in a warm/cool
  palette, smeared along a swirling flow field.

* ``before_after.jpg`` (with ``--figure``): frame, style and the project's result side by
  side, for the README (needs the network's weights).
* ``style2.jpg``, ``matte.png``, ``preview_grid.png``, ``matte_example.png`` (with
  ``--controls``): a second procedural style, a soft-edged procedural matte, and the
  README's pictures of ``microast-video preview`` (three frames x two styles) and of a matte
  (one style inside, another outside), made with the commands the README shows.

Run ``python samples/make_samples.py [--figure] [--controls]`` (uses the ffmpeg binary of imageio-ffmpeg).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import imageio_ffmpeg

from microast_video.media.procedural import painting

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


def make_controls() -> list[str]:
    """The README's pictures of the creative controls, made by the CLI exactly as documented."""
    import numpy as np

    hsv = cv2.cvtColor(painting(512, seed=7)[:, :, ::-1], cv2.COLOR_BGR2HSV)
    hsv[..., 0] = (hsv[..., 0].astype(int) + 60) % 180  # hue turned by 120 degrees: another palette
    cv2.imwrite(str(HERE / "style2.jpg"), cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    yy, xx = np.mgrid[0:360, 0:640]
    inside = np.clip((140 - np.hypot(xx - 400, yy - 180)) / 30 + 0.5, 0, 1)  # a soft-edged disc
    cv2.imwrite(str(HERE / "matte.png"), (inside * 255).round().astype(np.uint8))
    cli = [sys.executable, "-m", "microast_video"]
    clip, a, b = (str(HERE / n) for n in ("clip.mp4", "style.jpg", "style2.jpg"))
    subprocess.run([*cli, "preview", clip, "-s", a, "-s", b, "--frames", "3", "--height", "180",
                    "-o", str(HERE / "preview_grid.png"), "--overwrite", "-q"], check=True)
    subprocess.run([*cli, "preview", clip, "-s", a, "-s", b, "--matte", str(HERE / "matte.png"), "--frames", "2",
                    "--height", "180", "-o", str(HERE / "matte_example.png"), "--overwrite", "-q"], check=True)
    return ["style2.jpg", "matte.png", "preview_grid.png", "matte_example.png"]


def main() -> int:
    make_clip(HERE / "clip.mp4")
    extract_frame(HERE / "clip.mp4", HERE / "frame.png")
    make_style(HERE / "style.jpg")
    names = ["clip.mp4", "frame.png", "style.jpg"]
    if "--figure" in sys.argv[1:]:
        make_figure(HERE / "before_after.jpg")
        names.append("before_after.jpg")
    if "--controls" in sys.argv[1:]:
        names += make_controls()
    for name in names:
        print(f"wrote samples/{name} ({(HERE / name).stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
