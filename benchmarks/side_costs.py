"""The CPU time of the work beside the network, per frame: decode, temporal stage, encoder.

    python benchmarks/side_costs.py [--clip PATH] [--style PATH] [--height 1080] [--seconds 1]

A CPU job's network keeps every core busy, so each CPU-second the other stages take is time
the network loses. This measures them one at a time, alone (user + system time of all
their threads):

1. the clip (default: the shared GoPro clip, scaled to ``--height``) is stylized with the
   default settings into a lossless FFV1 file, so steps 3 and 4 see real stylized frames;
2. **decode**: the clip decoded to RGB at that size, with FFmpeg's own thread count and with
   one thread (what a CPU job uses, ``_device.side_threads``); then at the clip's own size
   with its colour converted by swscale and by the native kernel (``native/colour.cpp``);
3. **temporal stage**: the stylized frames stabilized against the source frames, with
   OpenCV's thread pool as it is and with one thread (a CPU job's setting);
4. **encoder**: the stylized frames as raw 4:2:0 samples, encoded by libx264 at each preset
   (CRF 18, the default, and CRF 17 for veryfast), each a separate ffmpeg process: CPU and
   wall time per frame, bitrate, PSNR and SSIM (ffmpeg's filters) against the lossless samples.

Needs ``../shared`` for the default clip and style, and ``MICROAST_VIDEO_WEIGHTS`` (or the
weights cache).
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2

from microast_video import decode_frames, probe
from microast_video.media.encode_plan import EncodeSettings, ffmpeg_exe
from microast_video.jobs.plan import VideoJob
from microast_video.core.options import Codec
from microast_video.jobs.video import run_video
from microast_video.temporal.stabilizer import TemporalSettings, new_stabilizer

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
PRESETS = [("medium", 18), ("fast", 18), ("faster", 18), ("veryfast", 18), ("veryfast", 17), ("superfast", 18),
           ("ultrafast", 18)]


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def per_frame(work: Callable[[], int], who: int = resource.RUSAGE_SELF) -> tuple[float, float]:
    """(CPU ms, wall ms) per frame of ``work`` (which returns its frame count)."""
    cpu, wall = cpu_seconds(who), time.perf_counter()
    frames = work()
    return (cpu_seconds(who) - cpu) / frames * 1e3, (time.perf_counter() - wall) / frames * 1e3


def stabilize_all(pairs: Iterable[tuple]) -> int:
    stabilizer, count = new_stabilizer(TemporalSettings()), 0
    for stylized, source in pairs:
        stabilizer(stylized, source)
        count += 1
    return count


def encode(exe: str, raw: Path, size: str, rate: str, preset: str, crf: int, out: Path, frames: int) -> int:
    """libx264 over the raw samples into ``out``; returns ``frames`` (for :func:`per_frame`)."""
    subprocess.run([exe, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", size, "-r", rate,
                    "-i", str(raw), "-c:v", "libx264", "-crf", str(crf), "-preset", preset, str(out)], check=True)
    return frames


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
        run_video(VideoJob(input=args.clip, styles=(args.style,), output=lossless, height=args.height,   # 1. stylize
                           duration=args.seconds, progress=False, encode=EncodeSettings(codec=Codec.ffv1),
                           overwrite=True), log=lambda m: None)
        info, source = probe(lossless), probe(args.clip)
        (w, h), rate = info.upright_size, str(info.frame_rate)
        print(f"{args.clip.name} stylized with {args.style.name} at {w}x{h}; CPU and wall ms per frame, alone:")
        for threads in (0, 1):                                                                     # 2. decode
            cpu, wall = per_frame(lambda: sum(1 for _ in decode_frames(source, size=(w, h), duration=args.seconds,
                                                                        threads=threads)))
            print(f"  decode, {'FFmpeg auto' if threads == 0 else '1 thread'}: {cpu:.0f} CPU ms, {wall:.0f} ms")
        for native in (False, True):  # at the clip's stored size only colour is converted
            cpu, wall = per_frame(lambda: sum(1 for _ in decode_frames(source, duration=args.seconds, threads=1,
                                                                        native=native)))
            print(f"  decode at the clip's own {source.width}x{source.height}, 1 thread, colour by "
                  f"{'the native kernel' if native else 'swscale'}: {cpu:.0f} CPU ms, {wall:.0f} ms")
        pairs = list(zip((f.data for f in decode_frames(info)),
                         (f.data for f in decode_frames(source, size=(w, h), duration=args.seconds))))
        default = cv2.getNumThreads()
        for threads in (default, 1):                                                               # 3. temporal
            cv2.setNumThreads(threads)
            cpu, wall = per_frame(lambda: stabilize_all(pairs))
            print(f"  temporal stage, OpenCV {threads} thread(s): {cpu:.0f} CPU ms, {wall:.0f} ms")
        cv2.setNumThreads(default)
        pairs.clear()
        subprocess.run([exe, "-v", "error", "-y", "-i", str(lossless), "-f", "rawvideo", "-pix_fmt", "yuv420p",
                        str(raw)], check=True)
        frames = raw.stat().st_size // (w * h * 3 // 2)
        print(f"  libx264 on the {frames} stylized frames:")                                       # 4. encoder
        print(f"    {'preset':10s} crf  CPU ms  wall ms  Mb/s   PSNR dB  SSIM")
        for preset, crf in PRESETS:
            cpu, wall = per_frame(lambda: encode(exe, raw, f"{w}x{h}", rate, preset, crf, out, frames),
                                  resource.RUSAGE_CHILDREN)
            psnr, ssim = quality(exe, out, raw, f"{w}x{h}", rate)
            mbps = out.stat().st_size * 8 / (frames / float(info.frame_rate)) / 1e6
            print(f"    {preset:10s} {crf:3d}  {cpu:6.0f}  {wall:7.0f}  {mbps:5.1f}  {psnr:7.2f}  {ssim:.4f}")


if __name__ == "__main__":
    main()
