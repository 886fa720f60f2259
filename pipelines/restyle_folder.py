"""Restyle a folder of shots with one look: every clip in FOLDER, one style, outputs in OUT.

    python pipelines/restyle_folder.py shots/ --style art.jpg --out restyled/ [--height 1080] [--codec prores]

Resumable: run it again after a crash and it continues from the last finished segment;
finished clips are skipped. A report (report.json, report.html) goes to OUT/report.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from microast_video import (
    BatchOptions,
    MicroastError,
    manifest_from_dict,
    probe,
    run_batch,
)
from microast_video.batch.manifest import expand


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder of shots (its video files)")
    parser.add_argument("--style", type=Path, required=True, help="the look's style image")
    parser.add_argument("--out", type=Path, required=True, help="folder for the restyled shots")
    parser.add_argument("--codec", default="h264", help="h264, hevc, prores or ffv1 (default h264)")
    parser.add_argument("--height", type=int, help="output height (default: each shot's own)")
    parser.add_argument("--alpha", type=float, default=1.0, help="style strength, 0..1")
    parser.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    parser.add_argument("--overwrite", action="store_true", help="replace outputs made with other settings")
    args = parser.parse_args(argv)

    # 1. The manifest: every readable clip of the folder x one look (an unreadable one fails alone).
    clips, unreadable = readable_clips(args.folder)
    for problem in unreadable:
        print(f"restyle_folder: skipped: {problem}", file=sys.stderr)
    if not clips:
        raise MicroastError(f"{args.folder}: no readable video file")
    options = {"codec": args.codec, **({"height": args.height} if args.height else {})}
    manifest = manifest_from_dict({
        "output": "{stem}_restyled{ext}", "output_dir": str(args.out.resolve()), "defaults": options,
        "inputs": [{"path": str(clip.resolve())} for clip in clips],
        "looks": {"look": {"style": str(args.style.resolve()), "alpha": args.alpha}},
    }, Path.cwd() / "restyle_folder")
    # 2. Run it (checked in full first), with the report beside the outputs.
    args.out.mkdir(parents=True, exist_ok=True)
    report = run_batch(manifest, BatchOptions(workers=args.workers, overwrite=args.overwrite,
                                              report_dir=args.out / "report"))
    # 3. Say how it went.
    s = report["summary"]
    print(f"{s['done']} restyled, {s['skipped']} up to date, {s['failed'] + len(unreadable)} failed; report: "
          f"{args.out / 'report'}")
    return 1 if s["failed"] or unreadable else 0


def readable_clips(folder: Path) -> tuple[list[Path], list[str]]:
    """The folder's video files that probe (outputs of earlier runs left out), and why the others don't."""
    if not folder.is_dir():
        raise MicroastError(f"{folder}: not a folder")
    clips, problems = [], []
    for path in expand(folder, "."):  # as a manifest lists a folder: earlier runs' outputs left out
        try:
            probe(path)
            clips.append(path)
        except MicroastError as err:
            problems.append(str(err))
    return clips, problems


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MicroastError as err:
        sys.exit(f"restyle_folder: error: {err}")
