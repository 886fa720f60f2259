"""Memory of the engine and of whole jobs at UHD and 8K (issue 12's RSS target, issue 8's 8K).

1. ``middle``: one eager bf16 Stylizer on an 8-bit frame of the given size (as the job
   sends them), three calls, in a fresh process each, with the quarter-resolution middle in
   strips ("new") and whole ("old"): peak RSS and seconds per call. The "new" figure is the
   memory the engine needs for strips, the floor of a whole job's.
2. ``job``: ``microast-video CLIP -s samples/style.jpg --compile off`` on a synthesized clip,
   with and without the temporal stage: peak RSS of the job's process (ffmpeg, a process
   of its own, apart). ``--compile on``: the same job compiled with weight freezing (how
   long jobs and ``bench`` run; ``heap_timeline.run_job``). Run it
   at two lengths to see whether the peak is flat in the clip's length.

    python benchmarks/memory_targets.py middle 3840x2160
    python benchmarks/memory_targets.py job 3840x2160 --frames 8
    python benchmarks/memory_targets.py job 3840x2160 --frames 24 --compile on --temporal on
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_MIDDLE = """
import resource, sys, time, torch
from microast_video import load_model
from microast_video.models.microast import MicroAST
from microast_video.engine.stylizer import Stylizer, engine_settings, prepare_runtime
mode, w, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if mode == "old":
    def whole(self, feat, s, alpha, bounds):
        c2 = self.content_encoder.forward_res(feat)[1]
        del feat
        return self.decoder.forward_low_res(c2, s, alpha, None)
    MicroAST._middle_strips = whole
m = load_model(None, device="cpu", progress=False)
settings = engine_settings(torch.device("cpu"), torch.bfloat16, h, w, frames=3)
prepare_runtime(m, settings)
stylizer = Stylizer(m, m.encode_style(torch.rand(1, 3, 256, 256)), settings)
x = torch.randint(0, 256, (1, h, w, 3), dtype=torch.uint8).permute(0, 3, 1, 2)  # 8-bit frames, as the job sends them
times = []
for _ in range(3):
    t = time.perf_counter()
    stylizer(x)
    times.append(round(time.perf_counter() - t, 2))
print(f"middle {mode}: {w}x{h} eager bf16, s per call {times}, peak RSS "
      f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB")
"""


def middle(w: int, h: int) -> None:
    for mode in ("old", "new"):
        subprocess.run([sys.executable, "-c", _MIDDLE, mode, str(w), str(h)], check=True)


_JOB = """
import atexit, resource, sys
atexit.register(lambda: print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB"))
from microast_video.cli import main
sys.argv = ["microast-video", *sys.argv[1:]]
main()
"""

_COMPILED_JOB = """
import resource, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from heap_timeline import run_job
run_job(Path(sys.argv[2]), Path(sys.argv[3]), True, sys.argv[4])  # the sample style, as below
print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB")
"""


def job(w: int, h: int, frames: int, compiled: bool, temporals: tuple[str, ...]) -> None:
    from microast_video.media.encode_plan import ffmpeg_exe
    from microast_video.media.procedural import synth_clip

    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / f"clip_{w}x{h}.mp4"
        synth_clip(clip, width=w, height=h, frames=frames, exe=ffmpeg_exe())
        style, out = str(ROOT / "samples" / "style.jpg"), str(Path(tmp) / "out.mp4")
        for temporal in temporals:
            if compiled:
                script, args = _COMPILED_JOB, [str(ROOT / "benchmarks"), str(clip), out, temporal]
            else:
                script, args = _JOB, [str(clip), "-s", style, "-o", out, "--overwrite", "-q", "--compile", "off",
                                      "--temporal", temporal]
            t = time.time()
            done = subprocess.run([sys.executable, "-c", script, *args], check=True, stderr=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, text=True)
            print(f"job {w}x{h}, {frames} frames, compile {'on (frozen)' if compiled else 'off'}, "
                  f"temporal {temporal}: {time.time() - t:.1f} s, "
                  f"{done.stdout.strip()} (the job's process; ffmpeg apart)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["middle", "job"])
    parser.add_argument("size", help="WxH")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--compile", choices=["off", "on"], default="off", help="job only")
    parser.add_argument("--temporal", choices=["both", "on", "off"], default="both", help="job only")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    temporals = ("on", "off") if args.temporal == "both" else (args.temporal,)
    middle(w, h) if args.what == "middle" else job(w, h, args.frames, args.compile == "on", temporals)


if __name__ == "__main__":
    main()
