"""What each libx264 preset costs and gives on stylized footage: CPU time, bitrate, PSNR, SSIM.

    python benchmarks/encoder_presets.py [--clip PATH] [--style PATH] [--height 1080] [--seconds 1]

1. the clip (default: the shared GoPro clip, scaled to ``--height``) is stylized with the
   default settings (temporal stage on) into a lossless FFV1 file: what the encoder of a
   real job gets;
2. that file is turned into raw 4:2:0 samples once, then encoded by libx264 at every preset
   (CRF 18, the default, and CRF 17 for the fast presets), each a separate ffmpeg process;
3. per preset: the CPU time the encoder took per frame (user + system, all its threads), its
   wall time, the bitrate, and PSNR and SSIM (ffmpeg's filters) against the lossless samples.

On a CPU job the network uses every core, so the encoder's CPU time is time the network
loses: this table chose the default preset (``_encode_plan.CODECS``). Needs ``../shared``
for the default clip and style, and ``MICROAST_VIDEO_WEIGHTS`` (or the weights cache).
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from microast_video import probe
from microast_video._job import VideoJob
from microast_video._options import Codec
from microast_video._encode_plan import EncodeSettings, ffmpeg_exe
from microast_video._pipeline import run_video

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
CASES = [("medium", 18), ("fast", 18), ("faster", 18), ("veryfast", 18), ("veryfast", 17), ("superfast", 18),
         ("ultrafast", 18)]


def stylized_lossless(clip: Path, style: Path, height: int, seconds: float, out: Path) -> None:
    job = VideoJob(input=clip, styles=(style,), output=out, height=height, duration=seconds, progress=False,
                   encode=EncodeSettings(codec=Codec.ffv1), overwrite=True)
    run_video(job, log=lambda m: None)


def encode(exe: str, raw: Path, size: str, rate: str, preset: str, crf: int, out: Path) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one libx264 encode of the raw samples."""
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run([exe, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", size, "-r", rate,
                    "-i", str(raw), "-c:v", "libx264", "-crf", str(crf), "-preset", preset, str(out)], check=True)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def quality(exe: str, encoded: Path, raw: Path, size: str, rate: str) -> tuple[float, float]:
    """(PSNR dB, SSIM) of the encoded file against the raw samples."""
    err = subprocess.run([exe, "-i", str(encoded), "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", size, "-r", rate,
                          "-i", str(raw), "-lavfi", "[0:v][1:v]ssim;[0:v][1:v]psnr", "-f", "null", "-"],
                         capture_output=True, text=True, check=True).stderr
    return float(re.search(r"PSNR .*average:([\d.]+)", err).group(1)), float(re.search(r"SSIM .*All:([\d.]+)", err).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=MEDIA / "videos" / "gpmf__max-heromode.mp4")
    parser.add_argument("--style", type=Path, default=MEDIA / "styles" / "vangogh_starry_night.jpg")
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    exe = ffmpeg_exe()
    with tempfile.TemporaryDirectory() as tmp:
        lossless, raw, out = Path(tmp) / "stylized.mkv", Path(tmp) / "stylized.yuv", Path(tmp) / "encoded.mp4"
        stylized_lossless(args.clip, args.style, args.height, args.seconds, lossless)          # 1. stylize
        info = probe(lossless)
        (w, h), rate = info.upright_size, str(info.frame_rate)
        subprocess.run([exe, "-v", "error", "-y", "-i", str(lossless), "-f", "rawvideo", "-pix_fmt", "yuv420p",
                        str(raw)], check=True)                                                   # 2. raw samples
        frames = raw.stat().st_size // (w * h * 3 // 2)
        print(f"{args.clip.name} stylized with {args.style.name} at {w}x{h}, {frames} frames; libx264 per preset:")
        print(f"  {'preset':10s} crf  cpu ms/frame  wall ms/frame  Mb/s   PSNR dB  SSIM")
        for preset, crf in CASES:                                                                # 3. per preset
            cpu, wall = encode(exe, raw, f"{w}x{h}", rate, preset, crf, out)
            psnr, ssim = quality(exe, out, raw, f"{w}x{h}", rate)
            mbps = out.stat().st_size * 8 / (frames / float(info.frame_rate)) / 1e6
            print(f"  {preset:10s} {crf:3d}  {cpu / frames * 1e3:12.0f}  {wall / frames * 1e3:13.0f}  {mbps:5.1f}"
                  f"  {psnr:7.2f}  {ssim:.4f}")


if __name__ == "__main__":
    main()
