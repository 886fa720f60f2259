"""``microast-video bench``: frames per second, stage times and memory, against a naive baseline.

Every figure comes from a fresh child process, so each has its own peak RSS and no
measurement warms caches for another:

* ``model``: the engine alone (content path, style signals precomputed) on frames already
  decoded into memory: fast settings (strips, NHWC, bf16 where the CPU has it).
* ``pipeline``: the whole job, decode -> network -> encode to a real file.
* ``naive``: what looping the upstream test script over frames does: per frame, float32,
  eager, NCHW, whole frame, style recomputed every frame, no overlap (decode, network and
  encode one after the other).
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ._errors import MicroastError, OptionError
from ._image import read_image
from ._output import work_folder
from ._probe import file_url, probe
from ._process import popen
from ._weights import resolve_weights

_CHILD = "from microast_video._bench import child_main; child_main()"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _gpu_peak_mb(device: Any) -> float | None:
    import torch

    if getattr(device, "type", "cpu") != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20


def _read_frames(path: str, count: int) -> list[Any]:
    from ._decode import decode_frames
    from ._probe import probe

    info = probe(path)
    frames = []
    for frame in decode_frames(info):
        frames.append(frame)
        if len(frames) == count:
            break
    return frames


def _model_child(args: dict[str, Any]) -> dict[str, Any]:
    """Engine only, on frames decoded beforehand."""
    import torch

    import dataclasses

    from ._device import resolve_device, resolve_precision
    from ._engine import FrameEngine, Stylizer, engine_settings, prepare_runtime
    from ._image import load_style_image
    from ._pretrained import load_model
    from ._weights import cache_dir

    device = resolve_device(args["device"], quiet=True)
    dtype = resolve_precision(args["precision"], device)
    frames = _read_frames(args["input"], args["frames"])
    h, w = frames[0].data.shape[:2]
    model = load_model(args.get("weights"), device=device, progress=False)
    signals = model.encode_style(load_style_image(args["style"]).to(device))
    settings = engine_settings(device, dtype, h, w, frames=len(frames), kernel_cache=cache_dir() / "inductor")
    if args["compile"] != "auto":  # a long job's settings
        settings = dataclasses.replace(settings, compile=args["compile"] == "on", freeze=args["compile"] == "on")
    prepare_runtime(model, settings)
    stylizer = Stylizer(model, signals, settings)
    engine = FrameEngine(stylizer, args["batch_size"])
    t0 = time.perf_counter()
    first = None
    n = 0
    for _ in engine.run(frames):
        n += 1
        if first is None:
            first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    warm = (n - 1) / (total - first) if n > 1 and total > first else n / total
    return {"frames": n, "seconds": total, "fps": n / total, "fps_after_first": warm,
            "first_frame_s": first, "compile_seconds": stylizer.compile_seconds, "compile_note": stylizer.compile_note, "peak_rss_mb": _peak_rss_mb(), "gpu_peak_mb": _gpu_peak_mb(device),
            "settings": settings.describe(), "precision": str(dtype).removeprefix("torch."),
            "device": str(device), "resolution": [w, h], "threads": torch.get_num_threads()}


def _pipeline_child(args: dict[str, Any]) -> dict[str, Any]:
    from ._encode_plan import EncodeSettings
    from ._job import VideoJob
    from ._options import Codec, CompileMode, Precision
    from ._pipeline import run_video

    job = VideoJob(
        input=Path(args["input"]), styles=(Path(args["style"]),), output=Path(args["output"]),
        device=args["device"], precision=Precision(args["precision"]), batch_size=args["batch_size"],
        encode=EncodeSettings(codec=Codec(args["codec"]), preset=args.get("preset")),
        overwrite=True, weights=args.get("weights"), progress=False,
        compile=CompileMode(args["compile"]),
        freeze=args["compile"] == "on" or None,  # the steady state of a long job, as in the model run
    )
    report = run_video(job, log=lambda m: None)
    done = [f["encode"] for f in report.pop("per_frame") if "encode" in f]
    # Steady state: frames after the first over the time between their completions
    # (the first frame carries start-up and any compiling, reported as time to first frame).
    report["fps_after_first"] = (len(done) - 1) / (done[-1] - done[0]) if len(done) > 1 and done[-1] > done[0] else report["fps"]
    report["peak_rss_mb"] = _peak_rss_mb()
    return report


def _naive_child(args: dict[str, Any]) -> dict[str, Any]:
    """The upstream test script looped over frames: nothing reused, nothing overlapped."""
    import av
    import numpy as np
    import torch

    from ._device import resolve_device
    from ._encode_plan import ffmpeg_exe
    from ._image import load_style_image
    from ._pretrained import load_model

    device = resolve_device(args["device"], quiet=True)
    model = load_model(args.get("weights"), device=device, progress=False)
    style = load_style_image(args["style"]).to(device)
    net = 0.0
    n = 0
    t0 = time.perf_counter()
    proc = None
    with av.open(file_url(args["input"])) as container:
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            if proc is None:
                h, w = rgb.shape[:2]
                proc = popen(
                    [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                     "-s", f"{w}x{h}", "-r", "25", "-i", "pipe:", "-c:v", "libx264", "-preset", "medium",
                     "-pix_fmt", "yuv420p", args["output"]], stdin=subprocess.PIPE)
            t = time.perf_counter()
            with torch.no_grad():
                x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div(255).to(device)
                signals = model.encode_style(style)  # recomputed every frame
                out = model(x, signals)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                pixels = out.clamp(0, 1).mul(255).round().byte()[0].permute(1, 2, 0).cpu().numpy()
            net += time.perf_counter() - t
            proc.stdin.write(np.ascontiguousarray(pixels).tobytes())
            n += 1
            if n == args["frames"]:
                break
    proc.stdin.close()
    proc.wait()
    total = time.perf_counter() - t0
    return {"frames": n, "model_seconds": net, "model_fps": n / net, "pipeline_seconds": total,
            "pipeline_fps": n / total, "peak_rss_mb": _peak_rss_mb(), "gpu_peak_mb": _gpu_peak_mb(device)}


def child_main() -> None:
    """A measurement in its own process: one result line, or one error line."""
    args = json.loads(sys.stdin.read())
    kind = args.pop("kind")
    try:
        result = {"model": _model_child, "pipeline": _pipeline_child, "naive": _naive_child}[kind](args)
    except MicroastError as err:
        print("BENCH-ERROR " + " ".join(str(err).split()))
        sys.exit(1)
    print("BENCH-RESULT " + json.dumps(result))


def _run_child(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    """One measurement in a fresh process that dies with this one (a killed bench leaves no child)."""
    proc = popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(json.dumps({"kind": kind, **args}))
    for line in out.splitlines():
        if line.startswith("BENCH-RESULT "):
            return json.loads(line.removeprefix("BENCH-RESULT "))
        if line.startswith("BENCH-ERROR "):
            raise MicroastError(line.removeprefix("BENCH-ERROR "))
    tail = (err.strip().splitlines() or ["no output"])[-1]
    raise RuntimeError(f"bench {kind} run failed (exit {proc.returncode}): {tail}")


def parse_resolution(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise OptionError(f"--resolution must look like 3840x2160, got {text!r}") from None
    if w < 16 or h < 16:
        raise OptionError(f"--resolution must be at least 16x16, got {text!r}")
    return w, h


@dataclasses.dataclass(frozen=True)
class BenchOptions:
    """What ``microast-video bench`` measures (its command-line options)."""

    resolution: tuple[int, int] = (3840, 2160)
    frames: int = 8
    device: str = "auto"
    precision: str = "auto"
    batch_size: int = 1
    input_path: Path | None = None
    style: Path | None = None
    naive_frames: int | None = None
    codec: str = "h264"
    preset: str | None = None
    weights: Path | None = None
    compile: str = "on"


def run_bench(options: BenchOptions, log: Any = print) -> dict[str, Any]:
    """Run the three measurements and return the combined figures."""
    from ._encode_plan import ffmpeg_exe
    from ._procedural import painting, synth_clip

    resolution, frames, input_path, style = options.resolution, options.frames, options.input_path, options.style
    device, precision, batch_size, weights = options.device, options.precision, options.batch_size, options.weights
    codec, preset, naive_frames, compile = options.codec, options.preset, options.naive_frames, options.compile
    if frames < 1:
        raise OptionError(f"--frames must be >= 1, got {frames}")
    weights = resolve_weights(weights)  # a missing or bad weights folder is one line, before any child starts
    if input_path is not None:
        probe(input_path)
    if style is not None:
        read_image(style, what="style image")
    with work_folder("microast-bench-") as tmp:
        if input_path is None:
            input_path = tmp / f"synthetic_{resolution[0]}x{resolution[1]}.mp4"
            log(f"synthesizing {frames} frames of {resolution[0]}x{resolution[1]} footage ...")
            synth_clip(input_path, width=resolution[0], height=resolution[1], frames=frames, exe=ffmpeg_exe())
        if style is None:
            import cv2

            style = tmp / "style.png"
            cv2.imwrite(str(style), painting(512))
        common = {"input": str(input_path), "style": str(style), "device": device, "precision": precision,
                  "batch_size": batch_size, "weights": str(weights) if weights else None, "compile": compile}
        log("measuring the engine alone (model-only) ...")
        model = _run_child("model", {**common, "frames": frames})
        log("measuring the whole pipeline (decode -> network -> encode) ...")
        pipeline = _run_child("pipeline", {**common, "output": str(tmp / "out.mp4"), "codec": codec, "preset": preset})
        naive_n = naive_frames if naive_frames is not None else min(frames, 2 if resolution[0] * resolution[1] > 2_100_000 else 3)
        log(f"measuring the naive baseline on {naive_n} frame(s) ...")
        naive = _run_child("naive", {**common, "frames": naive_n, "output": str(tmp / "naive.mp4")})
    result = {
        "resolution": model["resolution"],
        "frames": frames,
        "device": model["device"],
        "precision": model["precision"],
        "batch_size": batch_size,
        "settings": model["settings"],
        # Steady-state rates (frames after the first); the first frame's cost, compiling
        # included, is time_to_first_frame_s and compile_seconds.
        "model_fps": model["fps_after_first"],
        "pipeline_fps": pipeline["fps_after_first"],
        "naive_fps": naive["model_fps"],
        "naive_pipeline_fps": naive["pipeline_fps"],
        "speedup_vs_naive": model["fps_after_first"] / naive["model_fps"],
        "pipeline_speedup_vs_naive": pipeline["fps_after_first"] / naive["pipeline_fps"],
        "pipeline_vs_model": pipeline["fps_after_first"] / model["fps_after_first"],
        "model_fps_incl_first": model["fps"],
        "pipeline_fps_wall": pipeline["fps"],
        "pipeline_wall_seconds": pipeline["wall_seconds"],
        "time_to_first_frame_s": pipeline["time_to_first_frame_s"],
        "model_first_frame_s": model["first_frame_s"],
        "compile_seconds": model["compile_seconds"],
        "pipeline_compile_seconds": pipeline.get("compile_seconds"),
        "compile_note": model["compile_note"],
        "stages": pipeline["stages"],
        "peak_rss_mb": pipeline["peak_rss_mb"],
        "model_peak_rss_mb": model["peak_rss_mb"],
        "naive_peak_rss_mb": naive["peak_rss_mb"],
        "gpu_peak_mb": model["gpu_peak_mb"],
        "naive_frames": naive["frames"],
        "threads": model["threads"],
        "versions": pipeline["versions"],
        "cpu": _cpu_name(),
    }
    return result


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x{os.cpu_count()}"
    except OSError:
        pass
    import platform

    return f"{platform.processor() or platform.machine()} x{os.cpu_count()}"


def _fmt_s(value: float | None) -> str:
    return "off" if value is None else f"{value:.1f}s"


def format_table(r: dict[str, Any]) -> str:
    """The figures as a small table followed by the ratios."""
    w, h = r["resolution"]
    rows = [
        ("", "fps", "peak RSS MB"),
        (f"model-only ({r['precision']}, {r['device']})", f"{r['model_fps']:.3f}", f"{r['model_peak_rss_mb']:.0f}"),
        ("end-to-end pipeline", f"{r['pipeline_fps']:.3f}", f"{r['peak_rss_mb']:.0f}"),
        ("naive model-only (fp32, per frame)", f"{r['naive_fps']:.3f}", f"{r['naive_peak_rss_mb']:.0f}"),
        ("naive end-to-end", f"{r['naive_pipeline_fps']:.3f}", ""),
    ]
    width = max(len(a) for a, _, _ in rows)
    lines = [f"microast-video bench: {w}x{h}, {r['frames']} frames, batch {r['batch_size']}, {r['cpu']}"]
    lines += [f"  {a:<{width}}  {b:>8}  {c:>11}" for a, b, c in rows]
    stages = ", ".join(f"{k} {v:.2f}s" for k, v in r["stages"].items())
    lines += [
        f"  speedup vs naive: model {r['speedup_vs_naive']:.2f}x, end-to-end {r['pipeline_speedup_vs_naive']:.2f}x;"
        f" pipeline/model {100 * r['pipeline_vs_model']:.0f}%",
        f"  time to first frame {r['time_to_first_frame_s']:.2f}s (compile {_fmt_s(r['compile_seconds'])});"
        f" pipeline wall {r['pipeline_wall_seconds']:.2f}s; stage busy time: {stages}",
        "  (fps figures are steady state: frames after the first; the first frame's cost is the time to first frame)",
    ]
    return "\n".join(lines)
