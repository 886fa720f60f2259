"""The bench's arms: each runs in a fresh child process, under one timing rule.

**The rule** (:func:`clock`): every arm processes the same ``warmup + measured`` frames and
records the moment each one is done; its rate is ``measured`` frames over the time from
the end of the last warm-up frame to the end of the last measured frame. For the
end-to-end arms, "done" for the last frame is the output file complete (the encoder
flushed and exited), not the last write. Each arm reports its threads and whether the
allocator setting (:func:`~microast_video.engine.device.tune_cpu_allocator`) was on, and how its
OpenMP threads wait (every child gets the command line's setting, :func:`~microast_video.core.process.openmp_waits`).

Model-only arms take frames decoded beforehand (the same frames for every arm) and give
back 8-bit RGB frames, conversions included:

* ``ours``, ``ours-fp32``: the engine (strips, NHWC, bf16 where the CPU has it / exact fp32).
* ``naive``, ``naive+alloc``: :class:`~microast_video.bench.upstream_way.UpstreamWay`, the
  upstream test script's way (NCHW, in-place ReLU, fp32, eager, whole frame, the style
  encoded again for every frame), with glibc's default allocator / with the setting ours uses.
* ``onnxruntime-fp32``, ``openvino-fp32``, ``openvino-bf16``: the content path exported to
  ONNX (this style fixed inside) and run untuned by the peer runtime.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.process import openmp_wait_setting, popen
from ..media.decode import decode_frames
from ..media.encode_plan import ffmpeg_exe
from ..media.probe import probe
from .upstream_way import UpstreamWay


@dataclasses.dataclass(frozen=True)
class Timing:
    """When each frame of an arm was done, seconds from the arm's start."""

    done: tuple[float, ...]
    warmup: int

    @property
    def measured(self) -> int:
        return len(self.done) - self.warmup

    @property
    def seconds(self) -> float:
        """The measured span: end of the last warm-up frame to end of the last frame."""
        return self.done[-1] - (self.done[self.warmup - 1] if self.warmup else 0.0)

    @property
    def fps(self) -> float:
        return self.measured / self.seconds

    def summary(self) -> dict[str, Any]:
        return {"warmup_frames": self.warmup, "measured_frames": self.measured, "measured_seconds": self.seconds,
                "fps": self.fps, "seconds_per_frame": self.seconds / self.measured, "first_frame_s": self.done[0]}


def clock(outputs: Iterable[Any], warmup: int, end: Any = None) -> Timing:
    """Time an arm: consume ``outputs`` (one item per frame done); ``end`` (a callable), if
    given, runs after the last item and the last frame counts as done when it returns."""
    t0 = time.perf_counter()
    done = [time.perf_counter() - t0 for _ in outputs]
    if end is not None:
        end()
        done[-1] = time.perf_counter() - t0
    if len(done) <= warmup:
        raise ValueError(f"an arm needs more frames than its warm-up: {len(done) = }, {warmup = }")
    return Timing(tuple(done), warmup)


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One arm's figure from its runs (``--repeat``): the run with the median rate (the lower
    middle one for an even count), plus every run's rate in order, as ``runs_fps``."""
    if not runs:
        raise ValueError(f"an arm needs at least one run, got {len(runs) = }")
    ordered = sorted(runs, key=lambda r: r["fps"])
    return {**ordered[(len(ordered) - 1) // 2], "runs_fps": [r["fps"] for r in runs]}


def ratio_range(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, float]:
    """The lowest and highest of ``a``'s rate over ``b``'s, round by round (runs of the same
    round ran minutes apart, so a drift of the machine touches both alike)."""
    per_round = [x / y for x, y in zip(a["runs_fps"], b["runs_fps"], strict=True)]
    return min(per_round), max(per_round)


def process_settings(allocator: bool) -> dict[str, Any]:
    return {"threads": torch.get_num_threads(), "allocator": "tuned" if allocator else "glibc default",
            "openmp_wait": openmp_wait_setting(os.environ),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def to_tensor(rgb: np.ndarray) -> Any:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 NCHW contiguous in [0, 1] (what the upstream script feeds)."""

    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div_(255).contiguous()


def to_pixels(out: Any) -> np.ndarray:
    """(1, 3, H, W) float -> (H, W, 3) uint8."""
    out = torch.as_tensor(out)
    return np.ascontiguousarray(out.clamp(0, 1).mul(255).round().byte()[0].permute(1, 2, 0).numpy())


def naive_frames(model: Any, style: Any, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """The upstream way over frames: the style encoded again for every frame, nothing reused."""

    net = UpstreamWay(model)
    device = next(model.parameters()).device  # the device the arm was given, not the CPU's
    style = style.to(device)
    for rgb in frames:
        with torch.no_grad():
            yield to_pixels(net(to_tensor(rgb).to(device), style).cpu())


def peer_frames(runner: Any, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    for rgb in frames:
        yield to_pixels(runner(to_tensor(rgb).numpy()))


def naive_encoder(path: Path, size: tuple[int, int], rate: str, crf: int, preset: str) -> subprocess.Popen:
    """ffmpeg reading raw RGB on stdin with the settings our pipeline uses for h264."""

    w, h = size
    return popen([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                  "-s", f"{w}x{h}", "-r", rate, "-i", "pipe:", "-c:v", "libx264", "-crf", str(crf), "-preset", preset,
                  "-pix_fmt", "yuv420p", str(path)], stdin=subprocess.PIPE)


def decoded(path: str, count: int) -> Iterator[Any]:
    """The clip's first ``count`` frames (:class:`~microast_video.Frame`, RGB), decoded one by one
    by the project's decoder: every arm gets the same pixels."""

    for _, frame in zip(range(count), decode_frames(probe(path))):
        yield frame


def decoded_rgb(path: str, count: int) -> Iterator[np.ndarray]:
    """The same frames as (H, W, 3) uint8 arrays."""
    for frame in decoded(path, count):
        yield frame.data
