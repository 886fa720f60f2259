"""Where a UHD job's memory goes over time: resident memory against what malloc holds and
what is in use, frame by frame, with the allocator knobs that decide the gap.

One job (``microast_video.jobs.video.run_video`` on a synthesized clip, the repository's
sample style), in this process, with a thread sampling every 20 ms: RSS (``/proc/self/statm``),
the heap malloc holds (``mallinfo2().arena``) and the part of it in use (``uordblks``).
Printed: the peak RSS, the peak so far when each frame was complete (is it level?), the
largest heap and in-use figures sampled, and the job's seconds per frame after the first.

Knobs (applied after the project's own allocator setting, ``tune_cpu_allocator``):
``--arena-max N`` (malloc arenas; ours: 1), ``--mmap-threshold-mb T`` (blocks of T MB and
more get their own mapping, returned when freed; ours: never). Linux with glibc only.

    python benchmarks/heap_timeline.py 3840x2160 --frames 24
    python benchmarks/heap_timeline.py 3840x2160 --frames 24 --compile on
    python benchmarks/heap_timeline.py 3840x2160 --frames 24 --mmap-threshold-mb 16
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]


class Sampler(threading.Thread):
    """(seconds, RSS MB, heap MB, in-use MB) every 20 ms until stopped."""

    def __init__(self, libc: ctypes.CDLL) -> None:
        super().__init__(daemon=True)
        self.libc, self.samples, self.running, self.t0 = libc, [], True, time.perf_counter()
        libc.mallinfo2.restype = _MallInfo2

    def run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE") / 2**20
        while self.running:
            with open("/proc/self/statm") as f:
                rss = int(f.read().split()[1]) * page
            info = self.libc.mallinfo2()
            self.samples.append((time.perf_counter() - self.t0, rss, info.arena / 2**20, info.uordblks / 2**20))
            time.sleep(0.02)


def knobs(libc: ctypes.CDLL, arena_max: int | None, mmap_threshold_mb: int | None) -> None:
    from microast_video.engine.device import M_ARENA_MAX, M_MMAP_MAX, M_MMAP_THRESHOLD, tune_cpu_allocator

    if not tune_cpu_allocator():
        raise SystemExit("heap_timeline.py: needs Linux with glibc")
    if arena_max is not None:
        libc.mallopt(M_ARENA_MAX, arena_max)
    if mmap_threshold_mb is not None:
        libc.mallopt(M_MMAP_MAX, 65536)
        libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold_mb << 20)


def run_job(clip: Path, out: Path, compiled: bool, temporal: str) -> dict:
    """The job on ``clip`` with the sample style; ``compiled``: as long jobs run (weights frozen)."""
    from microast_video.jobs.plan import VideoJob
    from microast_video.core.options import CompileMode, Temporal
    from microast_video.jobs.video import run_video

    job = VideoJob(input=clip, styles=(ROOT / "samples" / "style.jpg",), output=out, overwrite=True, progress=False,
                   compile=CompileMode.on if compiled else CompileMode.off, freeze=compiled or None,
                   temporal=Temporal(temporal))
    return run_video(job, log=lambda m: None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("size", help="WxH")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--compile", choices=["off", "on"], default="off", help="on: compiled, weights frozen")
    parser.add_argument("--temporal", choices=["on", "off"], default="on")
    parser.add_argument("--arena-max", type=int)
    parser.add_argument("--mmap-threshold-mb", type=int)
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    from microast_video.media.encode_plan import ffmpeg_exe
    from microast_video.media.procedural import synth_clip

    libc = ctypes.CDLL("libc.so.6")
    knobs(libc, args.arena_max, args.mmap_threshold_mb)
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        synth_clip(clip, width=w, height=h, frames=args.frames, exe=ffmpeg_exe())
        sampler = Sampler(libc)
        sampler.start()
        report = run_job(clip, Path(tmp) / "out.mp4", args.compile == "on", args.temporal)
        returned = time.perf_counter() - sampler.t0
        sampler.running = False
        sampler.join()
    # The report's clock starts when the frames start (after planning, weights and signals).
    frames_from = returned - report["wall_seconds"]
    done = [frames_from + f["encode"] for f in report["per_frame"]]
    s = sampler.samples
    at_frame = [max((r for t, r, _, _ in s if t <= d), default=0.0) for d in done]
    steady = (report["per_frame"][-1]["encode"] - report["per_frame"][0]["encode"]) / max(1, len(done) - 1)
    print(f"heap_timeline {args.size}, {len(done)} frames, compile {args.compile}, temporal {args.temporal}, "
          f"arena max {args.arena_max or '1 (ours)'}, mmap threshold {args.mmap_threshold_mb or 'off (ours)'} MB")
    print(f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; largest sampled: "
          f"heap {max(x[2] for x in s):.0f} MB, in use {max(x[3] for x in s):.0f} MB; "
          f"{steady:.2f} s per frame after the first")
    print("  peak RSS so far (MB) when frame k was complete: " + " ".join(f"{k + 1}:{v:.0f}" for k, v in enumerate(at_frame)))


if __name__ == "__main__":
    main()
