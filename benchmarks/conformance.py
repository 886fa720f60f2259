"""Print the network's relative error against every upstream conformance case.

    python benchmarks/conformance.py [../shared/conformance]

float32 on the CPU, official weights (MICROAST_VIDEO_WEIGHTS, the cache, or download).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from microast_video import load_model

# conformance array -> StyleSignals field
SIGNALS = {"style_mean0": "mean1", "style_std0": "std1", "style_mean1": "mean2", "style_std1": "std2",
           "w0": "w1", "b0": "b1", "w1": "w2", "b1": "b2"}


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b.astype(np.float64)))


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "conformance"
    model = load_model(progress=False)
    for case in sorted(folder.glob("*.npz")):
        data = np.load(case)
        with torch.inference_mode():
            signals = model.encode_style(torch.from_numpy(data["style"]))
            out = model(torch.from_numpy(data["content"]), signals, alpha=float(data["alpha"]))
        worst = max(rel(getattr(signals, ours).numpy(), data[ref]) for ref, ours in SIGNALS.items())
        print(f"{case.stem:22s} output rel. error {rel(out.numpy(), data['output']):.2e}   "
              f"worst of 8 signals {worst:.2e}   (bound 1e-5)")


if __name__ == "__main__":
    main()
