"""``microast-video bench``: every arm measured the same way, in one run, against what users
would pick instead.

Each arm runs in a fresh child process (its own peak RSS, no arm warms another's caches)
under one timing rule (:mod:`._bench_arms`): the same frames, the same warm-up frames
excluded, the same number of measured frames, end-to-end ending when the file is complete.

Phases of :func:`run_bench`:

1. **check**: options, weights, input and style, before any child starts (one-line errors);
2. **footage**: the clip (synthesized with exactly ``warmup + frames`` frames, or ``--input``);
3. **the arms**: model-only: ours (bf16 where the CPU has it), ours exact fp32, the upstream
   way with glibc's allocator and with ours, then (``--peers``) the ONNX export and its
   runtimes; end to end: our pipeline (as a job runs it, with the temporal stage; again
   without it, to show that stage's cost; with ``--compile auto``) and the upstream way,
   decode to complete file;
4. **rounds**: with ``--repeat N``, N rounds of all the arms in turn, model-only and end to
   end alike (each arm's median run is its figure, and every ratio also comes as the range of
   its per-round ratios);
5. **ceiling**: the machine's own matmul rate (bf16, fp32) with the same threads;
6. **figures**: rates, ratios, achieved GFLOP/s, memory, time to first frame.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import cv2

from ..core.errors import InputError, MicroastError, OptionError, shown
from ..core.options import DEFAULT_MAX_PIXELS, Codec, CompileMode, Precision, megapixels
from ..core.output import work_folder
from ..core.process import openmp_waits, popen
from ..engine.onnx import missing
from ..media.encode_plan import ffmpeg_exe
from ..media.image import check_image
from ..media.probe import probe
from ..media.procedural import painting, synth_clip
from ..style.weights import resolve_weights
from .arms import median_run, ratio_range

_CHILD = "from microast_video.bench.children import child_main; child_main()"


@dataclasses.dataclass(frozen=True)
class BenchOptions:
    """What ``microast-video bench`` measures (its command-line options)."""

    resolution: tuple[int, int] = (3840, 2160)
    frames: int = 4
    warmup: int = 1
    device: str = "auto"
    precision: Precision = Precision.auto
    batch_size: int = 1
    input_path: Path | None = None
    style: Path | None = None
    codec: Codec = Codec.h264
    preset: str | None = None
    weights: Path | None = None
    compile: CompileMode = CompileMode.on
    peers: bool = False
    naive: bool = True
    repeat: int = 1  # rounds of every arm (model-only and end to end)
    networks: tuple[str, ...] = ()  # the seed networks measured beside ("adain", "johnson")
    adain_weights: Path | None = None  # AdaIN's folder (else $MICROAST_VIDEO_ADAIN_WEIGHTS)
    style_model: Path | None = None  # the Johnson network's checkpoint


def run_child(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    """One arm in a fresh process that dies with this one (a killed bench leaves no child)."""
    proc = popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True, env=openmp_waits(os.environ))  # the command line's setting
    out, err = proc.communicate(json.dumps({"kind": kind, "spawned": time.time(), **args}))
    for line in out.splitlines():
        if line.startswith("BENCH-RESULT "):
            return json.loads(line.removeprefix("BENCH-RESULT "))
        if line.startswith("BENCH-ERROR "):
            raise MicroastError(line.removeprefix("BENCH-ERROR "))
    tail = (err.strip().splitlines() or ["no output"])[-1]
    raise RuntimeError(f"bench {kind} run failed (exit {proc.returncode}): {tail}")


def _check(options: BenchOptions) -> Path | None:
    if options.frames < 1 or options.warmup < 0:
        raise OptionError(f"--frames must be >= 1 and --warmup >= 0, got {options.frames}, {options.warmup}")
    if options.repeat < 1:
        raise OptionError(f"--repeat must be >= 1, got {options.repeat}")
    weights = resolve_weights(options.weights)  # one line, before any child starts
    if options.input_path is not None:
        info = probe(options.input_path)
        if info.pixels > DEFAULT_MAX_PIXELS:
            raise InputError(f"--input {shown(options.input_path)}: its frames are {info.width}x{info.height} px, over "
                             f"{megapixels(DEFAULT_MAX_PIXELS)}")
        if info.frames is not None and info.frames < options.frames + options.warmup:
            raise OptionError(f"--input {shown(options.input_path)} has {info.frames} frames; the bench needs "
                              f"--warmup + --frames = {options.frames + options.warmup}")
    if options.style is not None:  # its declared size, before anything decodes it
        check_image(options.style, what="style image", max_pixels=DEFAULT_MAX_PIXELS)
    return weights


def _footage(options: BenchOptions, tmp: Path, log: Callable[[str], None]) -> tuple[Path, Path]:
    clip, style = options.input_path, options.style
    if clip is None:
        w, h = options.resolution
        clip = tmp / f"synthetic_{w}x{h}.mp4"
        count = options.warmup + options.frames
        log(f"synthesizing {count} frames of {w}x{h} footage ...")
        synth_clip(clip, width=w, height=h, frames=count, exe=ffmpeg_exe())
    if style is None:

        style = tmp / "style.png"
        cv2.imwrite(str(style), painting(512))
    return clip, style


#: One arm to run: (section, name, child kind, the child's arguments).
Spec = tuple[str, str, str, dict[str, Any]]


def _model_specs(options: BenchOptions, common: dict[str, Any], tmp: Path, log: Callable[[str], None]
                 ) -> tuple[list[Spec], dict[str, dict[str, Any]]]:
    """The model-only arms to run, and the peers skipped (a runtime not installed)."""
    specs: list[Spec] = []
    precisions = [options.precision] + ([Precision.fp32] if options.precision is not Precision.fp32 else [])
    for precision in precisions:
        name = "ours" if precision is options.precision else "ours-fp32"
        specs.append(("model-only", name, "ours", {**common, "precision": precision.value}))
    if options.naive:
        specs += [("model-only", name, "naive", {**common, "allocator": tuned})
                  for name, tuned in (("naive", False), ("naive+alloc", True))]
    skipped: dict[str, dict[str, Any]] = {}
    if options.peers:
        peer_specs, skipped = _peer_specs(common, tmp, log)
        specs += [("model-only", name, kind, args) for name, kind, args in peer_specs]
    for network in options.networks:  # the seed papers' networks on the same frames, the same way
        specs.append(("model-only", network, "network", {**common, "network": network, "precision":
                      options.precision.value, "adain_weights": str(options.adain_weights or "") or None,
                      "style_model": str(options.style_model or "") or None}))
    return specs, skipped


def _rounds(specs: list[Spec], repeat: int, log: Callable[[str], None]) -> dict[str, dict[str, dict[str, Any]]]:
    """``repeat`` rounds of every arm in turn (so that a drift of the machine's speed falls on
    every arm alike): per section, each arm's median run, with every run's rate."""
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {(section, name): [] for section, name, _, _ in specs}
    for round_ in range(repeat):
        for section, name, kind, args in specs:
            of = f", round {round_ + 1} of {repeat}" if repeat > 1 else ""
            log(f"{section}: {name}{' (the upstream way)' if kind.startswith('naive') else ''}{of} ...")
            runs[section, name].append(run_child(kind, args))
    out: dict[str, dict[str, dict[str, Any]]] = {"model-only": {}, "end-to-end": {}}
    for (section, name), results in runs.items():
        out[section][name] = median_run(results)
    return out


def _peer_specs(common: dict[str, Any], tmp: Path, log: Callable[[str], None]
                ) -> tuple[list[tuple[str, str, dict[str, Any]]], dict[str, dict[str, Any]]]:
    """The peer arms to run (after exporting the content path once), and those skipped."""

    names = (("onnxruntime-fp32", "onnxruntime", "f32"), ("openvino-fp32", "openvino", "f32"),
             ("openvino-bf16", "openvino", "bf16"))
    why = missing("onnx")
    if why:
        return [], {name: {"skipped": f"no ONNX export: {why}"} for name, _, _ in names}
    log("exporting the content path to ONNX ...")
    onnx_path = tmp / "content.onnx"
    run_child("export", {**common, "onnx": str(onnx_path)})
    specs, skipped = [], {}
    for name, runtime, precision in names:
        why = missing(runtime)
        if why:
            skipped[name] = {"skipped": why}
        else:
            specs.append((name, "peer", {**common, "onnx": str(onnx_path), "runtime": runtime,
                                         "peer_precision": precision}))
    return specs, skipped


def _pipeline_specs(options: BenchOptions, common: dict[str, Any], tmp: Path) -> list[Spec]:
    """The end-to-end arms (decode -> network -> encode, to the complete file): ours, ours with
    --temporal off (what that stage costs), --compile auto (a short job's time to first frame,
    from a cold start) and the upstream way."""
    specs: list[Spec] = [("end-to-end", "ours", "pipeline", {**common, "output": str(tmp / "ours.mp4")}),
                         ("end-to-end", "ours, temporal off", "pipeline",
                          {**common, "temporal": "off", "output": str(tmp / "off.mp4")})]
    if options.compile is not CompileMode.auto:
        specs.append(("end-to-end", "ours, compile auto", "pipeline",
                      {**common, "compile": "auto", "output": str(tmp / "auto.mp4")}))
    if options.naive:
        specs.append(("end-to-end", "naive", "naive-pipeline", {**common, "output": str(tmp / "naive.mp4")}))
    return specs


def run_bench(options: BenchOptions, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every arm and return the figures (see the module's phases)."""
    weights = _check(options)                                                      # 1. check
    with work_folder("microast-bench-") as tmp:
        clip, style = _footage(options, tmp, log)                                  # 2. footage
        info = probe(clip)
        common = {"input": str(clip), "style": str(style), "device": options.device,  # JSON for the children
                  "precision": options.precision.value, "batch_size": options.batch_size,
                  "weights": str(weights) if weights else None, "compile": options.compile.value,
                  "frames": options.frames, "warmup": options.warmup, "codec": options.codec.value,
                  "preset": options.preset, "rate": str(info.frame_rate)}
        specs, skipped = _model_specs(options, common, tmp, log)                   # 3. the arms
        specs += _pipeline_specs(options, common, tmp)
        measured = _rounds(specs, options.repeat, log)                             # 4. rounds of all
        model, pipeline = {**measured["model-only"], **skipped}, measured["end-to-end"]
        log("the machine's matmul ceiling ...")
        ceiling = run_child("ceiling", {"device": options.device})                 # 5. ceiling
    return _figures(options, info.upright_size, model, pipeline, ceiling)          # 6. figures


def _figures(options: BenchOptions, size: tuple[int, int], model: dict[str, Any], pipeline: dict[str, Any],
             ceiling: dict[str, Any]) -> dict[str, Any]:
    ours = model["ours"]
    w, h = size
    gflop = 2 * ours["macs_per_pixel"] * w * h / 1e9
    measured = {name: arm for name, arm in model.items() if "fps" in arm}
    pairs = [("ours", name) for name in measured if name != "ours"]
    if "ours-fp32" in measured:
        pairs += [("ours-fp32", peer) for peer in ("onnxruntime-fp32", "openvino-fp32", "naive", "naive+alloc")
                  if peer in measured]
    compared = [(f"{a} / {b}", measured[a], measured[b]) for a, b in pairs]
    if "naive" in pipeline:
        compared.append(("end-to-end ours / naive", pipeline["ours"], pipeline["naive"]))
    for key, arm in (("end-to-end / model-only (ours)", "ours"), ("end-to-end, temporal off / model-only",
                                                                   "ours, temporal off")):
        if arm in pipeline:
            compared.append((key, pipeline[arm], ours))
    ratios = {key: a["fps"] / b["fps"] for key, a, b in compared}
    ranges = {key: ratio_range(a, b) for key, a, b in compared} if options.repeat > 1 else {}
    peak = ceiling[{"bfloat16": "bf16_gflops", "float16": "fp16_gflops"}.get(ours["precision"], "fp32_gflops")]
    return {
        "resolution": [w, h], "frames": options.frames, "warmup": options.warmup, "batch_size": options.batch_size,
        "cpu": _cpu_name(), "versions": pipeline["ours"].get("versions"),
        "gflop_per_frame": gflop, "achieved_gflops": gflop * ours["fps"],
        "ceiling": ceiling, "share_of_peak": gflop * ours["fps"] / peak,
        "model": model, "pipeline": pipeline, "ratios": ratios, "ratio_ranges": ranges, "repeat": options.repeat,
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x{os.cpu_count()}"
    except OSError:
        pass

    return f"{platform.processor() or platform.machine()} x{os.cpu_count()}"


#: The arms in words a user knows (the JSON keeps the short keys).
ARM_WORDS = {"ours": "this tool", "ours-fp32": "this tool", "naive": "upstream code as published",
             "naive+alloc": "upstream code, faster memory allocator", "onnxruntime-fp32": "ONNX Runtime, fp32",
             "openvino-fp32": "OpenVINO, fp32", "openvino-bf16": "OpenVINO, bf16",
             "ours, temporal off": "this tool, temporal stage off", "ours, compile auto": "this tool, short clip",
             "adain": "AdaIN (VGG-19 + decoder)", "johnson": "Johnson feed-forward network"}
_PRECISION_WORDS = {"bfloat16": "bf16", "float32": "fp32", "float16": "fp16", "f32": "fp32", "bf16": "bf16"}
#: Frames a minute of footage holds, for "minutes of compute per minute of footage".
FOOTAGE_FPS = 24


def arm_name(name: str, arm: dict[str, Any]) -> str:
    """``ours`` (bfloat16) -> "this tool, bf16"; ``naive`` -> "upstream code as published, fp32"."""
    precision = _PRECISION_WORDS.get(arm.get("precision", ""), arm.get("precision", ""))
    words = ARM_WORDS.get(name, name)
    return words + (f", {precision}" if precision and not words.endswith(precision) else "")


def format_table(r: dict[str, Any]) -> str:
    """The figures in one unit (seconds a frame, frames a second beside), one aligned row per arm,
    and what a user schedules by: minutes of compute per minute of footage at 24 fps."""
    w, h = r["resolution"]
    what = "UHD footage" if (w, h) == (3840, 2160) else f"{w}x{h} footage"
    rounds = r["repeat"]
    lines = [f"microast-video bench: {w}x{h}, {r['frames']} measured frames per arm after {r['warmup']} warm-up, "
             f"batch {r['batch_size']}, {r['cpu']}"
             + (f"; each figure the median of {rounds} rounds" if rounds > 1 else ""),
             "", f"  {'':<52} {'s/frame':>8} {'fps':>8} {'min/min':>8} {'peak MB':>8}"]
    for title, arms in (("network only", r["model"]), ("whole job (decode, network, temporal, encode)", r["pipeline"])):
        lines.append(f"  {title}")
        for name, arm in arms.items():
            label = arm_name(name, arm)
            if "skipped" in arm:
                lines.append(f"    {label:<50} skipped: {arm['skipped']}")
                continue
            spf = arm["seconds_per_frame"]
            lines.append(f"    {label:<50} {spf:>8.3f} {arm['fps']:>8.2f} {spf * FOOTAGE_FPS:>8.1f} "
                         f"{arm['peak_rss_mb']:>8.0f}")
    lines += ["", f"  min/min: minutes of compute per minute of {what} at {FOOTAGE_FPS} fps (s/frame x {FOOTAGE_FPS})"]
    lines += _ratio_lines(r) + _detail_lines(r)
    return "\n".join(lines)


def _ratio_lines(r: dict[str, Any]) -> list[str]:
    ranges = r["ratio_ranges"]
    out = ["  how many times faster:"]
    for key, value in r["ratios"].items():
        lo_hi = ranges.get(key)
        out.append(f"    {_ratio_words(key):<80} {value:>6.2f}x" + (f"  ({lo_hi[0]:.2f}-{lo_hi[1]:.2f} by round)"
                                                                    if lo_hi else ""))
    return out


def _ratio_words(key: str) -> str:
    """``ours / naive`` -> "this tool over upstream code as published" (JSON keeps the key)."""
    words = {"ours": "this tool", "ours-fp32": "this tool in fp32", "end-to-end ours": "whole job: this tool",
             **{k: v for k, v in ARM_WORDS.items() if not k.startswith("ours")}}
    if " / " not in key:
        return key
    a, b = key.split(" / ", 1)
    if key.startswith("end-to-end /") or key.startswith("end-to-end, temporal off /"):
        return f"{a.replace('end-to-end', 'whole job')} against the network alone (below 1: the job waits on other stages)"
    return f"{words.get(a, a)} over {words.get(b, b)}"


def _detail_lines(r: dict[str, Any]) -> list[str]:
    c = r["ceiling"]
    out = [f"  this tool's network: {r['gflop_per_frame']:.1f} GFLOP a frame, {r['achieved_gflops']:.0f} GFLOP/s = "
           f"{100 * r['share_of_peak']:.0f}% of what this machine's matrix units reach (bf16 {c['bf16_gflops']:.0f}, "
           f"fp32 {c['fp32_gflops']:.0f} GFLOP/s on {c['threads']} threads)"]
    for name, e2e in r["pipeline"].items():
        if name.startswith("ours"):
            compiled = "" if e2e.get("compile_seconds") is None else f", of which compiling {e2e['compile_seconds']:.1f} s"
            out.append(f"  {arm_name(name, e2e)}: first frame after {e2e['cold_first_frame_s']:.1f} s from launch"
                       f"{compiled}; busy time: " + ", ".join(f"{k} {v:.2f} s" for k, v in e2e["stages"].items()))
    out.append(f"  (threads, allocator and OpenMP settings of every arm: in --json; OpenMP waits: {c['openmp_wait']})")
    return out
