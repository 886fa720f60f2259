"""Look development: one shot x several styles x strengths -> one contact-sheet grid to choose a look from.

    python pipelines/look_dev.py shot.mp4 --style a.jpg --style b.jpg --strength 0.5 --strength 1 -o looks.png

Rows are styles, columns are strengths (as the video command's --strength: the look mixed
with the shot), all on the same frame of the shot (the middle, or --at SECONDS), each tile
labelled. Seconds, not hours: nothing is encoded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from microast_video import (
    MicroastError,
    OptionError,
    Stylizer,
    compute_signals,
    frames_at,
    labelled,
    load_model,
    png_bytes,
    probe,
    sheet_grid,
)
from microast_video.core.files import FilePlan
from microast_video.core.output import write_bytes
from microast_video.core.schema import OPTIONS
from microast_video.style.controls import with_strength


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shot", type=Path, help="the shot (any video FFmpeg reads)")
    parser.add_argument("--style", type=Path, action="append", required=True, help="a style image (repeat)")
    parser.add_argument("--strength", type=float, action="append",
                        help="a strength 0..1: 0 the shot itself, 1 the full style (repeat; default 0.5, 1)")
    parser.add_argument("--alpha", type=float, default=1.0,
                        help="the network's own content-style weight (default 1; below 0.99 it casts colours)")
    parser.add_argument("--at", type=float, help="seconds into the shot (default: its middle)")
    parser.add_argument("--height", type=int, default=270, help="tile height (default 270)")
    parser.add_argument("-o", "--output", type=Path, default=Path("looks.png"), help="the grid (PNG)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing grid")
    args = parser.parse_args(argv)
    strengths = [OPTIONS["strength"].check(v, "--strength") for v in args.strength or [0.5, 1.0]]
    OPTIONS["alpha"].check(args.alpha, "--alpha")
    OPTIONS["height"].check(args.height)
    if args.output.suffix.lower() != ".png":
        raise OptionError(f"--output {args.output}: the grid is a PNG image; name it .png")
    FilePlan().read("shot", args.shot).read("style", *args.style).write("grid", args.output).check(
        overwrite=args.overwrite)  # before any work: never the shot, a style or an existing file

    # 1. The frame: one picture of the shot, at the tile size.
    info = probe(args.shot)
    at = args.at if args.at is not None else float(info.duration or 0) / 2
    (t, rgb), = frames_at(args.shot, [at], args.height)
    content = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    # 2. The looks: each style stylized once, mixed with the frame at each strength.
    model = load_model()
    rows = []
    for style in args.style:
        full = _to_rgb(Stylizer(model, compute_signals(model, [style]), alpha=args.alpha)(content))
        rows.append([labelled(with_strength(full, rgb, v), f"{style.stem}  strength {v:g}") for v in strengths])
    # 3. The grid: the source frame first in each row.
    source = labelled(rgb, f"source at {t:.2f} s")
    sheet = sheet_grid([[source, *row] for row in rows], headers=["source", *(f"strength {v:g}" for v in strengths)])
    write_bytes(args.output, png_bytes(sheet), overwrite=args.overwrite, what="grid")
    print(f"wrote {args.output} ({len(args.style)} styles x {len(strengths)} strengths)")
    return 0


def _to_rgb(t: torch.Tensor):
    return (t[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype("uint8")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MicroastError as err:
        sys.exit(f"look_dev: error: {err}")
