"""How long OpenMP threads spin before they sleep, end to end and model-only, on a long clip.

torch's CPU ops and compiled kernels run on libgomp. When one of the network's threads
waits at a barrier, libgomp keeps it spinning for 300,000 turns before it sleeps; on a CPU
job that core is wanted by the decoder, the temporal stage and the encoder. The command
line sets ``GOMP_SPINCOUNT`` to ``microast_video.core.process.OPENMP_SPINCOUNT`` instead (a
user's own setting wins). This script runs the bench's own arms (``microast-video bench``'s
child processes and timing rule) with each setting, alternating, over ``--rounds`` rounds:

* ``pipeline``: the whole default job (compiled, frozen, temporal stage on, libx264 ``fast``),
  one warm-up frame, the rest measured until the output file is complete;
* ``ours``: the network alone on the same frames (model-only).

The clip is long enough (default 73 frames) for libx264 to encode while the network runs,
as in a real job, instead of all at the end (its lookahead holds 30 frames).

    python benchmarks/openmp_waits.py --size 1920x1080 --frames 72 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import cv2

from microast_video.bench.bench import run_child
from microast_video.media.encode_plan import ffmpeg_exe
from microast_video.media.procedural import painting, synth_clip
from microast_video.core.process import OPENMP_SPINCOUNT

#: label -> GOMP_SPINCOUNT (300,000 is what libgomp uses when nothing is set)
SETTINGS = {"libgomp default": "300000", "the command line's": OPENMP_SPINCOUNT}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--frames", type=int, default=72, help="measured frames (after one warm-up frame)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="openmp-waits-") as tmp:
        clip, style = Path(tmp) / "clip.mp4", Path(tmp) / "style.png"
        synth_clip(clip, width=w, height=h, frames=args.frames + 1, exe=ffmpeg_exe())
        cv2.imwrite(str(style), painting(512))
        common = {"input": str(clip), "style": str(style), "device": "cpu", "precision": "auto", "batch_size": 1,
                  "weights": os.environ.get("MICROAST_VIDEO_WEIGHTS"), "compile": "on", "frames": args.frames,
                  "warmup": 1, "codec": "h264", "preset": None, "output": str(Path(tmp) / "out.mp4")}
        rows: dict[str, dict[str, list[float]]] = {label: {"pipeline": [], "ours": []} for label in SETTINGS}
        for n in range(args.rounds):
            for label, spins in SETTINGS.items():
                os.environ["GOMP_SPINCOUNT"] = spins  # the bench's children keep a setting already made
                for kind in ("pipeline", "ours"):
                    result = run_child(kind, common)
                    rows[label][kind].append(result["seconds_per_frame"])
                    print(f"round {n + 1}, {label} (GOMP_SPINCOUNT={result['openmp_wait'].split('=')[-1]}), "
                          f"{kind}: {result['seconds_per_frame']:.3f} s/frame", flush=True)
    print(f"{w}x{h}, 1 warm-up + {args.frames} measured frames, {args.rounds} rounds, s/frame by round:")
    for label, kinds in rows.items():
        e2e, model = kinds["pipeline"], kinds["ours"]
        shares = ", ".join(f"{m / e:.0%}" for m, e in zip(model, e2e))
        print(f"  {label:<20} end to end {' / '.join(f'{s:.3f}' for s in e2e)}; "
              f"model-only {' / '.join(f'{s:.3f}' for s in model)}; end to end / model-only {shares}")


if __name__ == "__main__":
    main()
