"""Op-level profile of the engine on one frame: where the time goes (torch.profiler).

    python benchmarks/profile_ops.py --resolution 1920x1080 --precision bf16 [--strip-rows 256] [--whole]

Prints the top operators by self time and the convolutions grouped by input shape, for
the eager engine (torch.compile fuses and renames kernels, so its profile says less).
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

import dataclasses

from microast_video import Stylizer, engine_settings, load_model, prepare_runtime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", default="1920x1080")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    parser.add_argument("--strip-rows", type=int, default=None)
    parser.add_argument("--whole", action="store_true", help="naive layout: whole frame, NCHW")
    args = parser.parse_args()
    w, h = (int(v) for v in args.resolution.split("x"))
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    model = load_model(progress=False)
    signals = model.encode_style(torch.rand(1, 3, 256, 256))
    settings = dataclasses.replace(engine_settings(torch.device("cpu"), dtype, h, w), compile=False)
    if args.strip_rows:
        settings = dataclasses.replace(settings, strip_rows=args.strip_rows)
    if args.whole:
        settings = dataclasses.replace(settings, strip_rows=None, channels_last=False)
    prepare_runtime(model, settings)
    stylizer = Stylizer(model, signals, settings)
    x = torch.rand(1, 3, h, w)
    stylizer(x)  # warm-up
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        stylizer(x)
    print(f"{w}x{h} {args.precision} {settings.describe()}")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))
    convs = [e for e in prof.key_averages(group_by_input_shape=True) if e.key == "aten::mkldnn_convolution"]
    convs.sort(key=lambda e: -e.self_cpu_time_total)
    print("convolutions by input shape (input, weight):")
    for e in convs[:12]:
        print(f"  {e.self_cpu_time_total / 1000:8.1f} ms  {e.count:3d} calls  {e.input_shapes[:2]}")


if __name__ == "__main__":
    main()
