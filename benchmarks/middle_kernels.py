"""The network's quarter-resolution middle in strips with the native kernels, against PyTorch's ops.

One process, one uncompiled bf16 stylizer (as short jobs run; compiled UHD jobs run the middle
this way too), a random frame of the given size. After one warm-up frame, three rounds; in each
round every arm stylizes the frame once, in turn, so the arms share the machine's drift:

* ``native``: every kernel of ``microast_video.native.model``'s ``MiddleKernels`` (the convs' input
  centred, rounded and padded; the residual tails; FeatMod's statistics and FeatMod);
* ``centring and tails``: the first two only (statistics and FeatMod in PyTorch);
* ``PyTorch``: none of them.

Printed per arm: the middle's seconds and the whole frame's, each round.

    python benchmarks/middle_kernels.py 3840x2160
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("size", help="WxH")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    from microast_video.engine.stylizer import Stylizer, engine_settings, prepare_runtime
    from microast_video.style.pretrained import load_model
    from microast_video.style.signals import compute_signals
    from microast_video.models import MiddleKernels, StripKernels, microast

    model = load_model(None)
    signals = compute_signals(model, [ROOT / "samples" / "style.jpg"])
    settings = engine_settings(torch.device("cpu"), torch.bfloat16, h, w)
    note = prepare_runtime(model, settings)
    full = model.kernels.middle
    if full is None:
        raise SystemExit(f"middle_kernels.py: the native kernels are not available here ({note})")
    arms = {"native": full,
            "centring and tails": MiddleKernels(full.centre_pad, full.tail, lambda *a: None, lambda *a: None),
            "PyTorch": None}
    middle: dict[str, list[float]] = {name: [] for name in arms}
    total: dict[str, list[float]] = {name: [] for name in arms}
    run_middle = microast.MicroAST._middle_strips
    arm = "warm-up"

    def timed_middle(*a, **k):  # the middle's own time, inside the frame's
        t = time.perf_counter()
        out = run_middle(*a, **k)
        middle.setdefault(arm, []).append(time.perf_counter() - t)
        return out

    microast.MicroAST._middle_strips = timed_middle
    stylizer = Stylizer(model, signals, settings)
    frame = torch.randint(0, 256, (1, h, w, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    x = frame.permute(0, 3, 1, 2)
    stylizer(x)
    for _ in range(args.rounds):
        for arm, kernels in arms.items():
            model.use_kernels(StripKernels(model.kernels.up_dw, kernels))
            t = time.perf_counter()
            stylizer(x)
            total[arm].append(time.perf_counter() - t)
    print(f"middle_kernels {args.size}, bf16, uncompiled, {torch.get_num_threads()} threads, {args.rounds} rounds")
    for name in arms:
        print(f"  {name:20s} middle {' '.join(f'{v:.3f}' for v in middle[name])} s; "
              f"frame {' '.join(f'{v:.3f}' for v in total[name])} s")


if __name__ == "__main__":
    main()
