"""The engine: stylize batches of frames on the device with precomputed style signals."""

from __future__ import annotations

import collections
import dataclasses
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor

from ._color import preserve_color
from ._device import tune_cpu_allocator
from ._frame import Frame
from ._signals import StyleSignals
from ._transport import RGBTransport, YUV420Transport
from .models import MicroAST

H = TypeVar("H")


@dataclasses.dataclass
class Stylizer:
    """Stylizes (N, 3, H, W) batches with one job's fixed settings.

    Attributes:
        model: the network in eval mode, on ``device``.
        signals: the style's signals (moved to ``device`` in float32 on construction).
        dtype: compute dtype of the content path: float32 (exact), bfloat16 or float16.
        alpha: content-style weight in [0, 1].
        color_matrix: None, or the YCbCr matrix ("bt601", "bt709", "bt2020") in which to
            keep the content's chroma (colour preservation).
        strip_rows: None runs the network on whole frames; a number runs its
            full-resolution layers in exact strips of about that many rows (see
            :func:`fast_settings`).
        channels_last: run in NHWC memory layout (converts the model once, in place).
        compile: run the network through ``torch.compile`` (fixed frame size; on CUDA with
            CUDA graphs, mode "reduce-overhead"). The first
            call compiles (tens of seconds cold; seconds with the persistent cache in
            :func:`inductor_cache_dir`); if compiling fails the engine falls back to eager
            and records why in :attr:`compile_note`.
        freeze: with ``compile``, fold the fixed weights into the graph (inductor
            "freezing", oneDNN prepacked weights): ~4 % faster at UHD, but such graphs are
            not cached, so every run pays the full compile (measured 20 s at 1080p, 45 s
            at UHD on our CPU). Worth it only for long jobs (see :func:`fast_settings`).
    """

    model: MicroAST
    signals: StyleSignals
    dtype: torch.dtype = torch.float32
    alpha: float = 1.0
    color_matrix: str | None = None
    strip_rows: int | None = None
    channels_last: bool = False
    compile: bool = False
    freeze: bool = False
    compile_seconds: float | None = dataclasses.field(default=None, init=False)
    compile_note: str | None = dataclasses.field(default=None, init=False)
    _compiled: Callable[[Tensor], Tensor] | None = dataclasses.field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha = }")
        if self.strip_rows is not None and self.strip_rows < 1:
            raise ValueError(f"strip_rows must be >= 1 or None, got {self.strip_rows = }")
        self.signals = self.signals.to(self.device, torch.float32)
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        self.model.to(memory_format=layout)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed frame sizes: let cuDNN pick kernels once
        elif self.strip_rows is not None or self.channels_last:  # the fast CPU path
            tune_cpu_allocator()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def __call__(self, content: Tensor) -> Tensor:
        """Stylize a batch.

        Args:
            content: (N, 3, H, W) float32 RGB in [0, 1] on :attr:`device`.

        Returns:
            (N, 3, H, W) float32 RGB clamped to [0, 1], on :attr:`device`.
        """
        with torch.inference_mode():
            if self.compile and self._compiled is None:
                return self._first_compiled_call(content)
            run = self._compiled if self.compile else self._forward
            return run(content)

    def _forward(self, content: Tensor) -> Tensor:
        reduced = self.dtype != torch.float32
        x = content.contiguous(memory_format=torch.channels_last) if self.channels_last else content
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=reduced):
            out = self.model(x, self.signals, self.alpha, strip_rows=self.strip_rows)
        out = out.float()
        if self.color_matrix is not None:
            out = preserve_color(out.clamp(0.0, 1.0), content, self.color_matrix)
        return out.clamp_(0.0, 1.0)

    def _first_compiled_call(self, content: Tensor) -> Tensor:
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(inductor_cache_dir()))
        t = time.perf_counter()
        # On CUDA, "reduce-overhead" also captures the fixed-shape graph as a CUDA graph
        # (one launch per batch instead of hundreds of small kernel launches).
        mode = "reduce-overhead" if self.device.type == "cuda" else None
        compiled = torch.compile(self._forward, dynamic=False, mode=mode)
        try:
            import torch._inductor.config as inductor_config

            with inductor_config.patch(freezing=self.freeze):
                out = compiled(content)
        except Exception as err:  # noqa: BLE001 - any compiler failure: keep going in eager
            self.compile = False
            self.compile_note = f"torch.compile failed, running eager instead ({type(err).__name__}: {str(err).splitlines()[0][:200]})"
            return self._forward(content)
        self.compile_seconds = time.perf_counter() - t
        self._compiled = compiled
        return out


def inductor_cache_dir() -> Path:
    """Where compiled kernels persist between runs: ``<user cache>/microast-video/inductor``."""
    from ._weights import cache_dir

    return cache_dir() / "inductor"


#: Work (pixels x frames) from which compiling pays for itself even with a cold cache:
#: compiling took ~27-45 s cold (~6 s warm) and saved ~0.27 s per 1080p frame on our
#: 2-core CPU, so about 150 full-HD frames (6 s of footage) or 38 UHD frames.
COMPILE_MIN_WORK = 150 * 1920 * 1080
#: Work from which weight freezing pays: it makes compiling uncacheable (~45 s at every
#: UHD run) for ~4 % less time per frame, so only jobs of about ten minutes and more.
FREEZE_MIN_WORK = 40 * COMPILE_MIN_WORK


def fast_settings(device: torch.device, dtype: torch.dtype, height: int, width: int,
                  frames: int | None = None) -> dict[str, object]:
    """The engine settings that run fastest for this device, precision, frame size and length.

    CPU: NHWC layout and exact strips of about 256 rows at 1080p (fewer for wider
    frames, so a strip's activations stay small), whatever the precision. CUDA: NHWC for
    fp16/bf16 (tensor cores), whole frames up to UHD and strips above that (8K) to bound
    memory. ``torch.compile`` when the job is long enough to amortise compiling, and
    weight freezing on top for very long jobs.
    """
    work = 0 if frames is None else frames * height * width
    long_job, very_long = work >= COMPILE_MIN_WORK, work >= FREEZE_MIN_WORK
    if device.type == "cuda":
        return {"channels_last": dtype != torch.float32,
                "strip_rows": None if height * width <= 3840 * 2160 else 512, "compile": long_job,
                "freeze": very_long}
    rows = max(32, int(256 * 1920 / max(width, 1)) // 4 * 4)
    return {"channels_last": True, "strip_rows": rows, "compile": long_job, "freeze": very_long}


# --------------------------------------------------------------------------------------
# Batched frame engine: frames in, stylized frames out, in order.

@dataclasses.dataclass
class StageTimes:
    """Busy seconds per stage, and per-frame completion times (seconds since ``t0``)."""

    t0: float = dataclasses.field(default_factory=time.perf_counter)
    seconds: dict[str, float] = dataclasses.field(
        default_factory=lambda: dict.fromkeys(STAGES, 0.0)
    )
    per_frame: dict[int, dict[str, float]] = dataclasses.field(default_factory=dict)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def add(self, stage: str, seconds: float, indices: Sequence[int] = (), done_at: float | None = None) -> None:
        """Charge ``seconds`` of work to ``stage``; stamp frames ``indices`` as done with it."""
        at = (time.perf_counter() if done_at is None else done_at) - self.t0
        with self.lock:
            self.seconds[stage] += seconds
            for i in indices:
                self.per_frame.setdefault(i, {})[stage] = round(at, 6)


    def stamp(self, index: int, key: str, value: float) -> None:
        """Attach a value (such as the frame's presentation time) to frame ``index``."""
        with self.lock:
            self.per_frame.setdefault(index, {})[key] = value


STAGES = ("decode", "upload", "network", "download", "encode")


def batched(frames: Iterable[Frame], size: int) -> Iterator[list[Frame]]:
    """Group frames in order into lists of up to ``size`` frames of one shape and dtype."""
    if size < 1:
        raise ValueError(f"batch size must be >= 1, got {size = }")
    batch: list[Frame] = []
    for frame in frames:
        if batch and (frame.data.shape != batch[0].data.shape or frame.data.dtype != batch[0].data.dtype):
            yield batch
            batch = []
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def pipelined(
    batches: Iterable[list[Frame]],
    submit: Callable[[list[Frame]], H],
    collect: Callable[[H], list[Frame]],
    depth: int,
) -> Iterator[Frame]:
    """Keep up to ``depth`` submitted batches in flight; yield their frames in submission order.

    ``submit`` starts a batch (on CUDA: queues copies and kernels, returns at once) and
    ``collect`` waits for that batch only and returns its frames. With ``depth=0`` each
    batch is collected right after it is submitted (the CPU path).
    """
    pending: collections.deque[H] = collections.deque()
    for batch in batches:
        pending.append(submit(batch))
        while len(pending) > depth:
            yield from collect(pending.popleft())
    while pending:
        yield from collect(pending.popleft())


def _host_tensor(data: np.ndarray) -> Tensor:
    """A numpy batch as a tensor without a copy; uint16 samples travel as int16 bits."""
    return torch.from_numpy(data.view(np.int16) if data.dtype == np.uint16 else data)


def _host_array(t: Tensor, deep: bool) -> np.ndarray:
    """The inverse of :func:`_host_tensor` for a CPU tensor."""
    a = t.numpy()
    return a.view(np.uint16) if deep else a


class FrameEngine:
    """Stylizes a stream of :class:`Frame` s in batches on the stylizer's device.

    On the CPU each batch runs synchronously. On CUDA, host frames are copied into a ring
    of pinned buffers, uploaded on a side stream, run on the compute stream once an event
    says the upload is done, and downloaded on a third stream into pinned memory; the
    host waits on a batch's own event only when it needs that batch's frames, so the next
    batch's upload overlaps the current batch's compute (``depth`` batches in flight).
    Batching and ordering are the same code on both paths (:func:`batched`, :func:`pipelined`).

    ``transport`` says how frames travel: packed RGB (default) or 4:2:0 planes, whose
    colour conversion then runs here, on the device (:mod:`microast_video._transport`).
    """

    def __init__(self, stylizer: Stylizer, batch_size: int = 4, times: StageTimes | None = None,
                 transport: RGBTransport | YUV420Transport | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size = }")
        self.transport = transport or RGBTransport()
        self.stylizer = stylizer
        self.batch_size = batch_size
        self.times = times or StageTimes()
        self.device = stylizer.device
        self.depth = 2 if self.device.type == "cuda" else 0
        self._ring: list[_CudaSlot] = []
        self._next_slot = 0

    def run(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        """Stylized frames, in the order given, each with its original index and timing."""
        submit, collect = (self._submit_cuda, self._collect_cuda) if self.device.type == "cuda" else (
            self._run_cpu, lambda done: done)
        return pipelined(batched(frames, self.batch_size), submit, collect, self.depth)

    # -- CPU ---------------------------------------------------------------------------
    def _run_cpu(self, batch: list[Frame]) -> list[Frame]:
        idx = [f.index for f in batch]
        deep = batch[0].data.dtype == np.uint16
        t = time.perf_counter()
        x = self.transport.to_float(_host_tensor(np.stack([f.data for f in batch])))
        t1 = time.perf_counter()
        self.times.add("upload", t1 - t, idx, t1)
        out = self.stylizer(x)
        t2 = time.perf_counter()
        self.times.add("network", t2 - t1, idx, t2)
        pixels = _host_array(self.transport.from_float(out, deep).contiguous(), deep)
        t3 = time.perf_counter()
        self.times.add("download", t3 - t2, idx, t3)
        return [f.with_data(p) for f, p in zip(batch, pixels)]

    # -- CUDA --------------------------------------------------------------------------
    def _slot(self, shape: tuple[int, ...], dtype: np.dtype) -> _CudaSlot:
        """The next pinned buffer pair of the ring (reallocated if the frame shape changed)."""
        if len(self._ring) < self.depth + 1:
            self._ring.append(_CudaSlot.allocate(shape, dtype, self.batch_size, self.device))
            slot = self._ring[-1]
        else:
            slot = self._ring[self._next_slot % len(self._ring)]
            slot.done.synchronize()  # its previous batch was collected already; cheap no-op
            if slot.shape != shape or slot.dtype != dtype:
                slot = self._ring[self._next_slot % len(self._ring)] = _CudaSlot.allocate(
                    shape, dtype, self.batch_size, self.device)
        self._next_slot += 1
        return slot

    def _submit_cuda(self, batch: list[Frame]) -> tuple[_CudaSlot, list[Frame]]:
        n = len(batch)
        data0 = batch[0].data
        slot = self._slot(data0.shape, data0.dtype)
        t = time.perf_counter()
        for i, f in enumerate(batch):  # host copy into pinned memory (the only CPU-side copy)
            slot.host_in[i].copy_(_host_tensor(f.data))
        compute = torch.cuda.current_stream(self.device)
        with torch.cuda.stream(slot.upload):
            slot.ev_start.record()
            dev_in = slot.host_in[:n].to(self.device, non_blocking=True)
            slot.ev_uploaded.record()
        compute.wait_stream(slot.upload)
        dev_in.record_stream(compute)  # the allocator must not reuse it before compute ends
        deep = data0.dtype == np.uint16
        # Colour conversion (for 4:2:0 planes) and scaling run here, on the device.
        out = self.transport.from_float(self.stylizer(self.transport.to_float(dev_in)), deep).contiguous()
        slot.ev_computed.record(compute)
        slot.download.wait_event(slot.ev_computed)
        with torch.cuda.stream(slot.download):
            out.record_stream(slot.download)
            slot.host_out[:n].copy_(out, non_blocking=True)
            slot.done.record()
        self.times.add("upload", time.perf_counter() - t)  # host-side share; GPU share on collect
        return slot, batch

    def _collect_cuda(self, handle: tuple[_CudaSlot, list[Frame]]) -> list[Frame]:
        slot, batch = handle
        slot.done.synchronize()  # waits for this batch only, never the whole device
        idx = [f.index for f in batch]
        now = time.perf_counter()
        self.times.add("upload", slot.ev_start.elapsed_time(slot.ev_uploaded) / 1000, idx, now)
        self.times.add("network", slot.ev_uploaded.elapsed_time(slot.ev_computed) / 1000, idx, now)
        self.times.add("download", slot.ev_computed.elapsed_time(slot.done) / 1000, idx, now)
        host = _host_array(slot.host_out[: len(batch)], batch[0].data.dtype == np.uint16)
        return [f.with_data(host[i].copy()) for i, f in enumerate(batch)]


@dataclasses.dataclass
class _CudaSlot:
    """One ring entry: pinned input/output buffers, its side streams and events."""

    shape: tuple[int, ...]
    dtype: np.dtype
    host_in: Tensor
    host_out: Tensor
    upload: torch.cuda.Stream
    download: torch.cuda.Stream
    ev_start: torch.cuda.Event
    ev_uploaded: torch.cuda.Event
    ev_computed: torch.cuda.Event
    done: torch.cuda.Event

    @classmethod
    def allocate(cls, shape: tuple[int, ...], dtype: np.dtype, batch: int, device: torch.device) -> _CudaSlot:
        tdtype = torch.int16 if dtype == np.uint16 else torch.uint8
        buf = (batch, *shape)
        return cls(
            shape, dtype,
            torch.empty(buf, dtype=tdtype).pin_memory(),
            torch.empty(buf, dtype=tdtype).pin_memory(),
            torch.cuda.Stream(device), torch.cuda.Stream(device),
            *(torch.cuda.Event(enable_timing=True) for _ in range(4)),
        )
