"""What each bench child process runs: one arm, one result line (or one error line)."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ..core.errors import MicroastError
from ..core.options import Codec, CompileMode, Network, Precision, Temporal
from ..core.paths import cache_dir
from ..core.process import openmp_wait_setting
from ..engine.device import (
    allocator_tuned,
    resolve_device,
    resolve_precision,
    tune_cpu_allocator,
)
from ..engine.onnx import (
    ExportSpec,
    export_onnx,
    onnxruntime_runner,
    openvino_has_bf16,
    openvino_runner,
)
from ..engine.stylizer import (
    TRIAL_CALLS,
    FrameEngine,
    Stylizer,
    engine_settings,
    prepare_runtime,
)
from ..jobs.plan import VideoJob
from ..jobs.video import run_video
from ..media.encode_plan import CODECS, EncodeSettings
from ..media.image import load_style_image
from ..media.probe import probe
from ..style.networks import load_network, no_signals
from ..style.pretrained import load_model
from ..style.signals import compute_signals
from .arms import (
    Timing,
    clock,
    decoded,
    decoded_rgb,
    naive_encoder,
    naive_frames,
    peer_frames,
    process_settings,
)


def _model(args: dict[str, Any]) -> Any:
    device = resolve_device(args["device"], quiet=True)
    return load_model(args.get("weights"), device=device, progress=False), device


def _signals(model: Any, args: dict[str, Any], device: Any) -> Any:
    return compute_signals(model, [args["style"]])


def macs_per_pixel(model: Any) -> float:
    """Multiply-accumulates of the content path per input pixel (counted on a 64x64 frame on the
    model's own device)."""
    total = 0
    device = next(model.parameters()).device

    def count(conv: Any, _: Any, out: Any) -> None:
        nonlocal total
        total += out.numel() * conv.in_channels // conv.groups * conv.kernel_size[0] * conv.kernel_size[1]

    convs = [m for part in (model.content_encoder, model.decoder) for m in part.modules()
             if isinstance(m, torch.nn.Conv2d)]
    hooks = [c.register_forward_hook(count) for c in convs]
    try:
        with torch.inference_mode():
            model(torch.rand(1, 3, 64, 64, device=device), model.encode_style(torch.rand(1, 3, 64, 64, device=device)))
    finally:
        for hook in hooks:
            hook.remove()
    return total / (64 * 64)


def arm_ours(args: dict[str, Any]) -> dict[str, Any]:
    """The engine on frames in memory (the fast settings for this size and precision)."""


    model, device = _model(args)
    macs = macs_per_pixel(model)
    dtype = resolve_precision(args["precision"], device)
    warmup = _warmup(args, device)
    count = warmup + args["frames"]
    frames = list(decoded(args["input"], count))
    h, w = frames[0].data.shape[:2]
    signals = _signals(model, args, device)
    settings = engine_settings(device, dtype, h, w, frames=count, kernel_cache=cache_dir() / "inductor")
    if args["compile"] != "auto":
        settings = dataclasses.replace(settings, compile=args["compile"] == "on", freeze=args["compile"] == "on")
    native_note = prepare_runtime(model, settings)
    stylizer = Stylizer(model, signals, settings)
    timing = clock(FrameEngine(stylizer, args["batch_size"]).run(iter(frames)), warmup)
    return {**timing.summary(), **process_settings(allocator_tuned()), "macs_per_pixel": macs, "native_note": native_note,
            "warmup": warmup,
            "precision": str(dtype).removeprefix("torch."), "settings": settings.describe(),
            "compile_seconds": stylizer.compile_seconds, "device": str(device), "torch_threads": torch.get_num_threads()}


def _warmup(args: dict[str, Any], device: Any) -> int:
    """Warm-up frames: a compiled CUDA graph is recorded on one of its first calls, which must
    not be timed (one warm-up frame timed the recording)."""
    compiled_cuda = device.type == "cuda" and args["compile"] != "off"
    return max(args["warmup"], (TRIAL_CALLS + 1) * args["batch_size"]) if compiled_cuda else args["warmup"]


def arm_naive(args: dict[str, Any]) -> dict[str, Any]:
    """The upstream way on frames in memory; ``allocator``: with our allocator setting."""

    tuned = tune_cpu_allocator() if args["allocator"] else False
    model, device = _model(args)
    style = load_style_image(args["style"])
    frames = list(decoded_rgb(args["input"], args["warmup"] + args["frames"]))
    timing = clock(naive_frames(model, style, frames), args["warmup"])
    return {**timing.summary(), **process_settings(tuned), "precision": "float32"}


def arm_export(args: dict[str, Any]) -> dict[str, Any]:
    """The content path with this style fixed inside, at the footage's size, as ONNX."""

    model, device = _model(args)
    signals = _signals(model, args, device)
    size = probe(args["input"]).upright_size
    export_onnx(model.cpu(), ExportSpec(signals, size), Path(args["onnx"]), overwrite=True)
    return {"onnx": args["onnx"]}


def arm_peer(args: dict[str, Any]) -> dict[str, Any]:
    """A peer runtime on the exported content path, untuned, on frames in memory."""


    threads = torch.get_num_threads()
    if args["runtime"] == "onnxruntime":
        runner = onnxruntime_runner(Path(args["onnx"]), threads)
    else:
        if args["peer_precision"] == "bf16" and not openvino_has_bf16():
            return {"skipped": "OpenVINO offers no bf16 on this CPU"}
        runner = openvino_runner(Path(args["onnx"]), threads, args["peer_precision"])
    frames = list(decoded_rgb(args["input"], args["warmup"] + args["frames"]))
    timing = clock(peer_frames(runner, frames), args["warmup"])
    return {**timing.summary(), **process_settings(False), "precision": args["peer_precision"]}


def arm_pipeline(args: dict[str, Any]) -> dict[str, Any]:
    """Our whole job on the clip; the last frame is done when the file is complete."""

    job = VideoJob(input=Path(args["input"]), styles=(Path(args["style"]),), output=Path(args["output"]),
                   device=args["device"], precision=Precision(args["precision"]), batch_size=args["batch_size"],
                   encode=EncodeSettings(codec=Codec(args["codec"]), preset=args.get("preset")), overwrite=True,
                   weights=args.get("weights"), progress=False, compile=CompileMode(args["compile"]),
                   freeze=args["compile"] == "on" or None,  # with compile on: the model-only arm's settings
                   temporal=Temporal(args.get("temporal", "on")))
    called, called_wall = time.perf_counter(), time.time()
    report = run_video(job, log=lambda m: None)
    returned = time.perf_counter()
    # The report's clock starts when the frames start (after planning, weights and signals);
    # its wall time ends when ffmpeg has flushed and exited (the file complete).
    setup = (returned - called) - report["wall_seconds"]
    done = [setup + f["encode"] for f in report["per_frame"]][:-1] + [returned - called]
    timing = Timing(tuple(done), args["warmup"])
    cold = (called_wall - args["spawned"]) + setup + report["time_to_first_frame_s"]  # from launching the process
    return {**timing.summary(), **process_settings(allocator_tuned()), "precision": report["precision"],
            "temporal": report["temporal"], "cold_first_frame_s": cold, "compile_seconds": report["compile_seconds"], "stages": report["stages"],
            "versions": report["versions"], "frames_written": report["frames"]}


def arm_naive_pipeline(args: dict[str, Any]) -> dict[str, Any]:
    """Decode, the upstream way, encode (same codec settings as ours), one after the other."""

    model, device = _model(args)
    spec = CODECS[Codec.h264]
    style = load_style_image(args["style"])
    encoder = naive_encoder(Path(args["output"]), probe(args["input"]).upright_size, args["rate"], spec.crf,
                            args.get("preset") or spec.preset)

    def frames() -> Any:
        for pixels in naive_frames(model, style, decoded_rgb(args["input"], args["warmup"] + args["frames"])):
            encoder.stdin.write(pixels.tobytes())
            yield pixels

    def finish() -> None:
        encoder.stdin.close()
        encoder.wait()

    timing = clock(frames(), args["warmup"], end=finish)
    return {**timing.summary(), **process_settings(False), "precision": "float32"}


def arm_ceiling(args: dict[str, Any]) -> dict[str, Any]:
    """torch's matmul rate on the arms' device (bf16, fp16 on CUDA, and fp32), the threads every arm uses."""
    device = resolve_device(args.get("device", "cpu"), quiet=True)
    cuda = device.type == "cuda"
    size = 8192 if cuda else 2048
    rates = {}
    for name, dtype in (("bf16", torch.bfloat16), *((("fp16", torch.float16),) if cuda else ()), ("fp32", torch.float32)):
        a, b = (torch.rand(size, size, dtype=dtype, device=device) for _ in range(2))
        torch.mm(a, b)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 2.0:
            torch.mm(a, b)
            n += 1
            if cuda:
                torch.cuda.synchronize(device)  # a rate of finished products, not of launches
        rates[f"{name}_gflops"] = 2 * size**3 * n / (time.perf_counter() - t0) / 1e9
    return {**rates, "threads": torch.get_num_threads(), "openmp_wait": openmp_wait_setting(os.environ),
            "device": str(device)}


def arm_network(args: dict[str, Any]) -> dict[str, Any]:
    """A seed network (AdaIN, Johnson) through the engine on the same frames as ``ours``."""
    device = resolve_device(args["device"], quiet=True)
    network = Network(args["network"])
    model = load_network(network, weights=args.get("adain_weights"), style_model=args.get("style_model"),
                         device=device, progress=False)
    dtype = resolve_precision(args["precision"], device)
    warmup = args["warmup"]
    frames = list(decoded(args["input"], warmup + args["frames"]))
    h, w = frames[0].data.shape[:2]
    signals = no_signals() if network is Network.johnson else compute_signals(model, [args["style"]])
    settings = engine_settings(device, dtype, h, w, frames=1)
    prepare_runtime(model, settings)
    timing = clock(FrameEngine(Stylizer(model, signals, settings), args["batch_size"]).run(iter(frames)), warmup)
    return {**timing.summary(), **process_settings(allocator_tuned()), "warmup": warmup,
            "precision": str(dtype).removeprefix("torch."), "device": str(device), "torch_threads": torch.get_num_threads()}


_ARMS = {"ours": arm_ours, "naive": arm_naive, "export": arm_export, "peer": arm_peer, "pipeline": arm_pipeline,
         "naive-pipeline": arm_naive_pipeline, "ceiling": arm_ceiling, "network": arm_network}


def child_main() -> None:
    """One arm in this process: one result line, or one error line."""
    args = json.loads(sys.stdin.read())
    kind = args.pop("kind")
    try:
        result = _ARMS[kind](args)
    except MicroastError as err:
        print("BENCH-ERROR " + " ".join(str(err).split()))
        sys.exit(1)
    print("BENCH-RESULT " + json.dumps(result))


