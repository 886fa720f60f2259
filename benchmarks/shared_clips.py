"""Run the video job on every clip in ../shared/media/videos at a small height and print
frame counts, timing, audio sync and speed.

    python benchmarks/shared_clips.py [--height 120] [--style samples/style.jpg]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]


def spans(path: Path) -> dict[str, object]:
    """Frame count and first/last presentation times of the video and first audio stream."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        times = [float(f.pts * f.time_base) for f in c.decode(v)]
    out: dict[str, object] = {"frames": len(times), "v0": times[0], "v1": times[-1]}
    with av.open(str(path)) as c:
        if c.streams.audio:
            a = c.streams.audio[0]
            at = [(float(f.pts * f.time_base), f.samples / f.sample_rate) for f in c.decode(a) if f.pts is not None]
            out.update(a0=at[0][0], a1=at[-1][0] + at[-1][1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--style", default=str(ROOT / "samples" / "style.jpg"))
    args = parser.parse_args()
    videos = sorted((ROOT.parent / "shared" / "media" / "videos").iterdir())
    print("clip | frames in/out | out size | fps | network s | audio start offset vs video, in/out (ms) | audio end, in/out (s)")
    with tempfile.TemporaryDirectory() as tmp:
        for clip in videos:
            out, report = Path(tmp) / f"{clip.stem}.mp4", Path(tmp) / f"{clip.stem}.json"
            cmd = [sys.executable, "-c", "from microast_video.cli import main; main()", str(clip), "--style",
                   args.style, "--height", str(args.height), "-o", str(out), "--quiet", "--report", str(report)]
            subprocess.run(cmd, check=True)
            r = json.loads(report.read_text())
            a, b = spans(clip), spans(out)
            print(f"{clip.name} | {a['frames']}/{b['frames']} | {r['output_resolution'][0]}x{r['output_resolution'][1]} | "
                  f"{r['fps']:.2f} | {r['stages']['network']:.2f} | "
                  f"{1000 * (a['a0'] - a['v0']):.1f}/{1000 * (b['a0'] - b['v0']):.1f} | "
                  f"{a['a1'] - a['v0']:.3f}/{b['a1'] - b['v0']:.3f}")


if __name__ == "__main__":
    main()
