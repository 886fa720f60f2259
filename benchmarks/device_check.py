"""The device check: what a GPU machine does with this tool, in one call, figures under ``--out``.

On the GPU machine (one call; ``$OUT`` comes back; the weights travel in a carried folder)::

    python benchmarks/device_check.py --out "$OUT" --weights weights

Rehearsal on the CPU (the same steps, small frames)::

    python benchmarks/device_check.py --device cpu --sizes 320x180 --frames 3 --out /tmp/check

Steps, each timed and each failure recorded (the next step runs regardless):

1. **environment**: Python, torch, CUDA, the GPU (``nvidia-smi -L``), which optional
   packages are importable (PyAV and an ffmpeg program are absent on the lent machine);
2. **cuda tests**: ``pytest -m cuda`` (where pytest is importable);
3. **correctness**: the device's fp16 and fp32 output against the CPU's fp32 on the repository's
   sample frame resized to each size: PSNR, largest difference, all finite;
4. **model-only**: frames per second at each size, eager and compiled (the compile's seconds
   apart), the device's default precision;
5. **temporal**: the temporal stage alone at each size, on the device (torch, the flow on CPU
   threads ahead) and on the CPU (native kernels): frames per second of each and the largest
   difference between their outputs (8-bit levels) on a moving synthetic picture;
6. **end to end** (only where PyAV and an ffmpeg program are importable): the video command on
   a synthesized clip at the largest size, the temporal stage on and off, GPU utilisation
   sampled by ``nvidia-smi``; and libx264's own rate at the same settings.

Writes ``results.json`` (every figure, every error) and prints one line per figure. It claims
nothing: a figure is what it measured on the machine it ran on.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import platform
import shutil
import subprocess
import sys
import time
import traceback
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from microast_video.engine.device import resolve_device, resolve_precision  # noqa: E402
from microast_video.engine.stylizer import Stylizer, engine_settings, prepare_runtime  # noqa: E402
from microast_video.style.pretrained import load_model  # noqa: E402
from microast_video.style.signals import compute_signals  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for results.json (made if missing)")
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (the rehearsal)")
    parser.add_argument("--sizes", default="1920x1080,3840x2160", help="frame sizes WxH, comma-separated")
    parser.add_argument("--frames", type=int, default=60, help="timed frames per model-only arm")
    parser.add_argument("--weights", type=Path, help="the checkpoints' folder (else $MICROAST_VIDEO_WEIGHTS)")
    parser.add_argument("--skip", default="", help="steps to leave out, comma-separated (tests, e2e...)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "args": vars(args) | {"out": str(args.out)}}
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("environment", environment),
        ("cuda_tests", lambda: cuda_tests(args.out)),
        ("correctness", lambda: correctness(args.device, sizes, args.weights)),
        ("model_only", lambda: model_only(args.device, sizes, args.frames, args.weights)),
        ("temporal", lambda: temporal(args.device, sizes, max(4, args.frames // 4))),
        ("e2e", lambda: end_to_end(args.device, sizes[-1], args.out, args.weights)),
    ]
    for name, step in steps:
        if name in args.skip.split(","):
            continue
        t0 = time.perf_counter()
        try:
            results[name] = step()
        except Exception as err:  # noqa: BLE001 - record it; the next step still runs
            results[name] = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-2000:]}
        results[f"{name}_seconds"] = round(time.perf_counter() - t0, 1)
        (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
        print(f"{name}: {json.dumps(results[name], default=str)[:600]}", flush=True)
    return 0


def environment() -> dict[str, Any]:
    smi = shutil.which("nvidia-smi")
    return {
        "python": sys.version.split()[0], "platform": platform.platform(), "torch": torch.__version__,
        "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "nvidia_smi": subprocess.run([smi, "-L"], capture_output=True, text=True).stdout.strip() if smi else None,
        "cpu_threads": torch.get_num_threads(),
        "importable": {m: _importable(m) for m in ("av", "ffmpeg", "imageio_ffmpeg", "pytest", "onnxruntime", "cv2")},
    }


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def cuda_tests(out: Path) -> dict[str, Any]:
    if not _importable("pytest"):
        return {"skipped": "pytest is not importable here"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider",
                           str(ROOT / "tests")], capture_output=True, text=True, cwd=ROOT, timeout=300)
    (out / "cuda_tests.txt").write_text(proc.stdout + proc.stderr)
    return {"exit": proc.returncode, "last_line": (proc.stdout.strip().splitlines() or [""])[-1]}


def frame(size: tuple[int, int]) -> torch.Tensor:
    """The repository's sample frame at ``size``: (1, 3, H, W) float32 in [0, 1]."""
    image = cv2.imread(str(ROOT / "samples" / "frame.png"))[:, :, ::-1]
    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if size[0] <= image.shape[1] else cv2.INTER_CUBIC)
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255


def _setup(device_name: str, weights: Path | None) -> tuple[Any, Any, torch.device]:
    device = resolve_device(device_name, quiet=True)
    model = load_model(weights, device=device, progress=False)
    signals = compute_signals(model, [ROOT / "samples" / "style.jpg"])
    return model, signals, device


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float() - b.float()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def correctness(device_name: str, sizes: list[tuple[int, int]], weights: Path | None) -> dict[str, Any]:
    cpu_model = load_model(weights, device="cpu", progress=False)
    cpu_signals = compute_signals(cpu_model, [ROOT / "samples" / "style.jpg"])
    model, signals, device = _setup(device_name, weights)
    found = {}
    for w, h in sizes:
        x = frame((w, h))
        with torch.inference_mode():
            reference = Stylizer(cpu_model, cpu_signals)(x)
            for name, dtype in (("fp32", torch.float32), ("fp16" if device.type == "cuda" else "bf16",
                                                          torch.float16 if device.type == "cuda" else torch.bfloat16)):
                settings = engine_settings(device, dtype, h, w, frames=1)
                prepare_runtime(model, settings)
                out = Stylizer(model, signals, settings)(x.to(device)).float().cpu()
                found[f"{w}x{h} {name}"] = {"psnr_db": round(_psnr(out, reference), 2),
                                            "max_abs": round(float((out - reference).abs().max()), 5),
                                            "finite": bool(torch.isfinite(out).all())}
    return found


def _fps(stylizer: Stylizer, x: torch.Tensor, frames: int, device: torch.device) -> float:
    for _ in range(4):  # warm-up past any graph recording (engine.stylizer.TRIAL_CALLS)
        stylizer(x)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(frames):
        stylizer(x)
    _sync(device)
    return frames / (time.perf_counter() - t0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_only(device_name: str, sizes: list[tuple[int, int]], frames: int, weights: Path | None) -> dict[str, Any]:
    model, signals, device = _setup(device_name, weights)
    dtype = resolve_precision("auto", device)
    found = {}
    for w, h in sizes:
        x = frame((w, h)).to(device)
        for compiled in (False, True):
            settings = dataclasses.replace(engine_settings(device, dtype, h, w, frames=frames), compile=compiled,
                                           freeze=False)
            prepare_runtime(model, settings)
            stylizer = Stylizer(model, signals, settings)
            with torch.inference_mode():
                fps = _fps(stylizer, x, frames, device)
            found[f"{w}x{h} {'compiled' if compiled else 'eager'}"] = {
                "fps": round(fps, 2), "precision": str(dtype).removeprefix("torch."),
                "compile_seconds": stylizer.compile_seconds, "compile_note": stylizer.compile_note}
    return found


def temporal(device_name: str, sizes: list[tuple[int, int]], frames: int) -> dict[str, Any]:
    from microast_video.core.frame import Frame
    from microast_video.temporal.stabilizer import Stabilizer, TemporalSettings, flow_threads, new_stabilizer, stabilized

    device = resolve_device(device_name, quiet=True)
    found = {}
    for w, h in sizes:
        big = (frame((w + 8 * frames, h + 4 * frames))[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        rng = np.random.default_rng(0)
        source = [np.ascontiguousarray(big[4 * t:4 * t + h, 8 * t:8 * t + w]) for t in range(frames)]
        stylized = [np.clip(s + rng.integers(-12, 12, s.shape), 0, 255).astype(np.uint8) for s in source]
        arms = {}
        torch_way = Stabilizer(TemporalSettings(), device=device)  # what a job on this device runs (torch)
        torch_way.flow_threads = flow_threads(torch_way.settings)
        for arm, stab in (("device", torch_way), ("cpu native", new_stabilizer(TemporalSettings()))):
            clip = [Frame(i, i, 1, Fraction(1, 25), s, source=c) for i, (s, c) in enumerate(zip(stylized, source))]
            t0 = time.perf_counter()
            arms[arm] = [f.data for f in stabilized(iter(clip), stab)]
            found[f"{w}x{h} {arm}"] = {"fps": round(frames / (time.perf_counter() - t0), 2), "where": stab.where()}
        found[f"{w}x{h} max_difference_levels"] = int(max(np.abs(a.astype(int) - b).max()
                                                          for a, b in zip(arms["device"], arms["cpu native"])))
    return found


def end_to_end(device_name: str, size: tuple[int, int], out: Path, weights: Path | None) -> dict[str, Any]:
    missing = [m for m in ("av", "imageio_ffmpeg") if not _importable(m)]
    if missing:
        return {"skipped": f"not importable here: {', '.join(missing)} (install the carried wheels first)"}
    from microast_video.core.options import Temporal
    from microast_video.jobs.plan import VideoJob
    from microast_video.jobs.video import run_video
    from microast_video.media.encode_plan import ffmpeg_exe
    from microast_video.media.procedural import synth_clip

    w, h = size
    clip = out / f"clip_{w}x{h}.mp4"
    if not clip.exists():
        synth_clip(clip, width=w, height=h, frames=96, exe=ffmpeg_exe())
    found = {"encoder_alone_fps": _x264_rate(ffmpeg_exe(), w, h, out)}
    for temporal in (Temporal.on, Temporal.off):
        sampler = _gpu_sampler(out / f"gpu_{temporal.value}.csv")
        report = run_video(VideoJob(input=clip, styles=(ROOT / "samples" / "style.jpg",), output=out / "o.mp4",
                                    overwrite=True, device=device_name, weights=weights, progress=False,
                                    temporal=temporal), log=lambda m: None)
        util = _stop_sampler(sampler, out / f"gpu_{temporal.value}.csv")
        found[f"temporal {temporal.value}"] = {"fps": report["fps"], "bound_by": report["bound_by"],
                                               "stages": report["stages"], "gpu_util_percent": util}
    return found


def _x264_rate(exe: str, w: int, h: int, out: Path) -> float:
    """libx264 alone at the job's settings (preset fast, CRF 18, yuv420p) on a raw test source."""
    t0 = time.perf_counter()
    subprocess.run([exe, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size={w}x{h}:rate=24:duration=4", "-c:v", "libx264", "-preset", "fast", "-crf", "18",
                    "-pix_fmt", "yuv420p", str(out / "x264.mp4")], check=True)
    return round(96 / (time.perf_counter() - t0), 2)


def _gpu_sampler(path: Path) -> subprocess.Popen | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    return subprocess.Popen([smi, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "200"],
                            stdout=path.open("w"), stderr=subprocess.DEVNULL)


def _stop_sampler(proc: subprocess.Popen | None, path: Path) -> float | None:
    if proc is None:
        return None
    proc.terminate()
    proc.wait(5)
    values = [float(v) for v in path.read_text().split() if v.replace(".", "", 1).isdigit()]
    return round(sum(values) / len(values), 1) if values else None


if __name__ == "__main__":
    sys.exit(main())
