"""The three networks on the same frames, measured the same way: seconds a frame and peak
memory of a fresh process per network and size, through the engine (bf16 where the CPU has it,
NHWC, the network as the video command runs it; MicroAST in its exact strips).

AdaIN and Johnson run with the fixed random weights of ../shared/conformance (no trained
checkpoint can be fetched here): their speed and memory do not depend on the weights' values.

    python benchmarks/networks.py [--sizes 1920x1080,3840x2160] [--frames 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def weights(folder: Path) -> dict[str, str]:
    """The seed networks' files as users have them, written from the conformance weights."""
    import numpy as np
    import torch

    a = np.load(SHARED / "conformance" / "adain" / "weights.npz")
    torch.save({k[4:]: torch.from_numpy(a[k]) for k in a.files if k.startswith("vgg/")}, folder / "vgg_normalised.pth")
    torch.save({k[8:]: torch.from_numpy(a[k]) for k in a.files if k.startswith("decoder/")}, folder / "decoder.pth")
    j = np.load(SHARED / "conformance" / "johnson" / "weights.npz")
    torch.save({k: torch.from_numpy(j[k]) for k in j.files}, folder / "johnson.pth")
    return {"adain": str(folder), "johnson": str(folder / "johnson.pth")}


def child(network: str, size: str, frames: int, files: dict[str, str]) -> dict[str, float]:
    """One network at one size in this (fresh) process."""
    sys.path.insert(0, str(ROOT))
    import torch

    from microast_video.core.options import Network
    from microast_video.engine.device import resolve_precision
    from microast_video.engine.stylizer import Stylizer, engine_settings, prepare_runtime
    from microast_video.style.networks import load_network, no_signals

    w, h = (int(v) for v in size.split("x"))
    cpu = torch.device("cpu")
    net = Network(network)
    model = load_network(net, weights=files["adain"] if net is Network.adain else None,
                         style_model=files["johnson"], device=cpu, progress=False)
    style = torch.rand(1, 3, 256, 256)
    signals = no_signals() if net is Network.johnson else model.encode_style(style)
    settings = engine_settings(cpu, resolve_precision("auto", cpu), h, w, frames=1)
    prepare_runtime(model, settings)
    stylizer = Stylizer(model, signals, settings)
    x = (torch.rand(1, 3, h, w) * 255).to(torch.uint8)
    stylizer(x)  # warm-up
    t = time.perf_counter()
    for _ in range(frames):
        stylizer(x)
    return {"seconds_per_frame": (time.perf_counter() - t) / frames,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1920x1080,3840x2160")
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("NETWORK", "SIZE", "FILES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.frames, json.loads(args.child[2]))))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        files = weights(Path(tmp))
        print(f"{'network':<10} {'size':>10} {'s/frame':>9} {'peak GB':>8}")
        for size in args.sizes.split(","):
            for network in ("microast", "adain", "johnson"):
                proc = subprocess.run([sys.executable, __file__, "--frames", str(args.frames), "--child", network, size,
                                       json.dumps(files)], capture_output=True, text=True)
                if proc.returncode != 0:
                    print(f"{network:<10} {size:>10} failed: {proc.stderr.strip().splitlines()[-1:]}")
                    continue
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                print(f"{network:<10} {size:>10} {r['seconds_per_frame']:>9.2f} {r['peak_rss_gb']:>8.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
