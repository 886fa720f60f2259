"""bf16 against exact fp32 on the shared photos and clip frames: PSNR of the 8-bit output.

    python benchmarks/bf16_psnr.py [--width 480] [--frame 10]

Every shared photo and the 11th frame of every shared clip (resized to ``--width``), with
every shared style, through three bf16 paths of the engine, each against the fp32
whole-frame output:

* ``whole``: the network on the whole frame under bf16 autocast;
* ``strips``: eager strips of 64 rows with the quarter-resolution middle in strips too (what
  ``--compile auto`` runs for a short job);
* ``strips, middle whole``: strips with the middle on the whole map (what the compiled
  engine runs), here eager.

The strips use the native upsampling kernel, as the CPU engine does (``--no-native``: PyTorch's ops).

Prints one line per case and the minimum and mean per path. Needs ``../shared`` and
``MICROAST_VIDEO_WEIGHTS`` (or the weights cache).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch

from microast_video import decode_frames, load_model, load_style_image, probe
from microast_video.models import PYTORCH
from microast_video.native import model as _native
from microast_video.media.image import read_image
from microast_video.core.paths import cache_dir

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
PATHS = {"whole": {}, "strips": {"strip_rows": 64}, "strips, middle whole": {"strip_rows": 64, "strip_middle": False}}


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB) of two float images in [0, 1] after rounding both to 8 bits."""
    qa, qb = (a.float().clamp(0, 1) * 255).round(), (b.float().clamp(0, 1) * 255).round()
    return 10 * float(np.log10(255**2 / max(float(((qa - qb) ** 2).mean()), 1e-12)))


def contents(width: int, frame: int) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, (1, 3, H, W) float32 in [0, 1]) for every shared photo and clip frame."""
    for path in sorted((MEDIA / "photos").iterdir()):
        img = read_image(path)
        img = cv2.resize(img, (width, round(width * img.shape[0] / img.shape[1])), interpolation=cv2.INTER_AREA)
        yield path.name, torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
    for path in sorted((MEDIA / "videos").iterdir()):
        info = probe(path)
        w, h = info.upright_size
        size = (width, round(width * h / w) // 2 * 2)
        frames = decode_frames(info, size=size)
        picked = next(f for i, f in enumerate(frames) if i == frame)
        frames.close()
        yield path.name, torch.from_numpy(picked.data).permute(2, 0, 1)[None].float() / 255


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--frame", type=int, default=10)
    parser.add_argument("--no-native", action="store_true", help="strips with PyTorch's upsampling and convs")
    args = parser.parse_args()
    kernels, why = (PYTORCH, None) if args.no_native else _native.strip_kernels(cache_dir())
    print(f"native kernel: {'off' if args.no_native else why or 'on'}")
    model = load_model(None, device="cpu", progress=False).to(memory_format=torch.channels_last)  # the engine's layout
    model.use_kernels(kernels)
    styles = sorted((MEDIA / "styles").iterdir())
    results: dict[str, list[float]] = {name: [] for name in PATHS}
    with torch.inference_mode():
        signals = {s.name: model.encode_style(load_style_image(s, 256)) for s in styles}
        for name, content in contents(args.width, args.frame):
            for style, sig in signals.items():
                exact = model(content, sig)
                figures = []
                for path, kwargs in PATHS.items():
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        out = model(content, sig, **kwargs)
                    results[path].append(psnr(out, exact))
                    figures.append(f"{path} {results[path][-1]:.1f}")
                print(f"{name} × {style}: " + ", ".join(figures) + " dB", flush=True)
    for path, values in results.items():
        print(f"{path}: min {min(values):.1f} dB, mean {np.mean(values):.1f} dB over {len(values)} cases")


if __name__ == "__main__":
    main()
