"""The engine: stylize batches of frames on the device with precomputed style signals.

* :class:`EngineSettings` (frozen) says how the network runs: precision, layout, strips,
  compiling; :func:`engine_settings` picks the fastest ones for a device, frame size and
  job length; :func:`prepare_runtime` applies the process-wide parts once, explicitly.
* :class:`Stylizer` stylizes (N, 3, H, W) tensors with one job's fixed settings.
* :class:`FrameEngine` stylizes a stream of :class:`Frame` s in batches, in order (the
  CUDA path lives in :mod:`microast_video.engine.cuda`).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..colour.convert import preserve_color
from ..core.frame import Frame
from ..core.paths import cache_dir
from ..core.stages import StageTimes
from ..models import PYTORCH, MicroAST
from ..models.microast import to_samples, to_unit
from ..models.signals import StyleSignals
from ..models.strip_runner import KeptMap
from ..native import model as native_model
from ..native.build import cxx_compiler
from ..style.controls import Schedule
from .batches import batched, padded, pipelined
from .cuda import CudaRunner, host_array, host_tensor
from .device import tune_cpu_allocator
from .transport import RGBTransport, YUV420Transport, batch_matte


@dataclasses.dataclass(frozen=True)
class EngineSettings:
    """How the network runs; change with ``dataclasses.replace``.

    Attributes:
        dtype: compute dtype of the content path: float32 (exact), bfloat16 or float16.
        channels_last: feed the network NHWC tensors (the model's own layout is set by
            :func:`prepare_runtime`).
        strip_rows: None runs the network on whole frames; a number runs its
            full-resolution layers in exact strips of about that many rows.
        compile: run through ``torch.compile`` (fixed frame size; on CUDA with CUDA graphs,
            mode "reduce-overhead"). If compiling fails the engine runs eager and says why.
        freeze: with ``compile``, fold the fixed weights into the graph (inductor
            "freezing", oneDNN prepacked weights): ~4 % faster at UHD, but such graphs are
            not cached, so every run pays the full compile. Worth it for long jobs only.
        kernel_cache: where compiled kernels persist between runs (None: torch's default).
        native: on the CPU, run the decoder's upsampling + grouped convs in strips through
            the fused native kernel (:mod:`microast_video.native.model`; built on first use in
            ``kernel_cache``, PyTorch's ops when it cannot be built).
        whole_middle: with ``compile`` and strips, compile the quarter-resolution middle on
            the whole map (inductor fuses it: the fastest form) instead of running it in place
            in strips, uncompiled (one quarter-resolution map, kept from frame to frame while
            not compiling). Whole, the middle's maps and temporaries are new for every frame: at
            UHD ~400 MB more at its peak and a heap broken into pieces (see
            :data:`WHOLE_MIDDLE_MAX_PIXELS`).
    """

    dtype: torch.dtype = torch.float32
    channels_last: bool = False
    strip_rows: int | None = None
    compile: bool = False
    freeze: bool = False
    kernel_cache: Path | None = None
    native: bool = False
    whole_middle: bool = True

    def __post_init__(self) -> None:
        if self.strip_rows is not None and self.strip_rows < 1:
            raise ValueError(f"strip_rows must be >= 1 or None, got {self.strip_rows = }")

    def describe(self) -> dict[str, Any]:
        """The settings as JSON-friendly values (for reports)."""
        return {"dtype": str(self.dtype).removeprefix("torch."), "channels_last": self.channels_last,
                "strip_rows": self.strip_rows, "compile": self.compile, "freeze": self.freeze, "native": self.native,
                "whole_middle": self.whole_middle}


#: Work (pixels x frames) from which compiling pays for itself even with a cold cache:
#: compiling took ~27-45 s cold (~6 s warm) and saved ~0.27 s per 1080p frame on our
#: 2-core CPU, so about 150 full-HD frames (6 s of footage) or 38 UHD frames.
COMPILE_MIN_WORK = 150 * 1920 * 1080
#: Work (frames x pixels) from which compiling pays on CUDA. An estimate, not a measurement:
#: a compile of tens of seconds against ~10 ms a UHD frame saved (issue 29's model: eager 30-50
#: fps, compiled 70-120) breaks even near 3,000 UHD frames; the device check is to measure it.
CUDA_COMPILE_MIN_WORK = 3000 * 3840 * 2160
#: Work from which weight freezing pays: it makes compiling uncacheable (~45 s at every
#: UHD run) for ~4 % less time per frame, so only jobs of about ten minutes and more.
FREEZE_MIN_WORK = 40 * COMPILE_MIN_WORK
#: Frame size up to which a compiled CPU job runs the middle whole (EngineSettings.whole_middle).
#: At 3840x2160 the whole compiled middle took the job's peak RSS to 1.85 GB against 1.39 GB in
#: strips, for ~8 % of the end-to-end time (benchmarks/heap_timeline.py, RESULTS.md); at 1080p
#: it is 15 % faster per frame and its maps are a quarter of the size.
WHOLE_MIDDLE_MAX_PIXELS = 2560 * 1440


#: Full-resolution activation elements alive at once per pixel in a whole-frame pass: the
#: widest maps are 16 channels at full resolution (models/microast.py), at most about six of
#: them alive (input, skip, convolution output, normalisation temporaries): an estimate with margin.
WHOLE_FRAME_ELEMENTS_PER_PIXEL = 16 * 6


def whole_frame_fits(device: torch.device, dtype: torch.dtype, height: int, width: int) -> bool:
    """Whether a whole frame's activations take at most half of the GPU's free memory (8K at
    fp16: about 6.4 GB)."""
    need = height * width * WHOLE_FRAME_ELEMENTS_PER_PIXEL * torch.finfo(dtype).bits // 8
    free, _ = torch.cuda.mem_get_info(device)
    return need <= free // 2


def engine_settings(device: torch.device, dtype: torch.dtype, height: int, width: int,
                    frames: int | None = None, *, kernel_cache: Path | None = None) -> EngineSettings:
    """The settings that run fastest for this device, precision, frame size and length.

    CPU: NHWC layout and exact strips of about 256 rows at 1080p (fewer for wider
    frames, so a strip's activations stay small), whatever the precision; compiled, the
    middle whole up to :data:`WHOLE_MIDDLE_MAX_PIXELS` (in strips above, to bound memory).
    CUDA: NHWC for fp16/bf16 (tensor cores), whole frames where they fit (:func:`whole_frame_fits`:
    8K on an 80 GB card), strips above that to bound memory. ``torch.compile`` when the job is long enough to amortise compiling, and
    weight freezing on top for very long CPU jobs (never on CUDA, where the compile is cached).
    """
    work = 0 if frames is None else frames * height * width
    long_job, very_long = work >= COMPILE_MIN_WORK, work >= FREEZE_MIN_WORK
    if device.type == "cuda":  # never frozen: a frozen graph is not cached, and a GPU compile costs tens of seconds
        whole = height * width <= 3840 * 2160 or whole_frame_fits(device, dtype, height, width)
        return EngineSettings(dtype, channels_last=dtype != torch.float32, strip_rows=None if whole else 512,
                              compile=work >= CUDA_COMPILE_MIN_WORK, freeze=False, kernel_cache=kernel_cache)
    rows = max(32, int(256 * 1920 / max(width, 1)) // 4 * 4)
    return EngineSettings(dtype, channels_last=True, strip_rows=rows, compile=long_job, freeze=very_long,
                          kernel_cache=kernel_cache, native=True, whole_middle=height * width <= WHOLE_MIDDLE_MAX_PIXELS)


def prepare_runtime(model: MicroAST, settings: EngineSettings) -> str | None:
    """Apply the process-wide parts of ``settings``, once per job, in one visible place.

    Puts the model in the settings' memory format (in place), turns on cuDNN autotuning on
    CUDA (fixed frame sizes), tunes glibc's allocator for the fast CPU path (see
    :func:`~microast_video.engine.device.tune_cpu_allocator`), points inductor's kernel
    cache at ``settings.kernel_cache`` when compiling, makes ``cuda:N`` the current device and
    float32 exact on CUDA (no TF32), and gives the model its native kernels
    for strips, or none (:mod:`microast_video.native.model`, :meth:`MicroAST.use_kernels`).

    Returns None, or a note: why the native kernel asked for could not run.
    """
    device = next(model.parameters()).device
    model.to(memory_format=torch.channels_last if settings.channels_last else torch.contiguous_format)
    if device.type == "cuda":
        torch.cuda.set_device(device)  # cuda:N: its context and pinned memory, not GPU 0's
        torch.backends.cudnn.benchmark = True
        exact_float32(settings.dtype)
    elif settings.strip_rows is not None or settings.channels_last:
        tune_cpu_allocator()
    if settings.compile and settings.kernel_cache is not None:
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(settings.kernel_cache))
    if not (settings.native and device.type == "cpu" and settings.strip_rows is not None):
        model.use_kernels(PYTORCH)
        return None
    kernels, why = native_model.strip_kernels(cache_dir())
    model.use_kernels(kernels)
    return why


def exact_float32(dtype: torch.dtype) -> None:
    """float32 on CUDA is float32: Ampere and later would run its matmuls and convs in TF32
    (10-bit mantissas) unless told not to; the reduced precisions leave them as they are."""
    exact = dtype == torch.float32
    torch.backends.cuda.matmul.allow_tf32 = not exact
    torch.backends.cudnn.allow_tf32 = not exact


def compile_unavailable() -> str | None:
    """Why ``torch.compile`` cannot work on this machine (None when it can)."""
    if not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no torch.compile"
    if cxx_compiler() is None:
        return "no C++ compiler found (inductor needs one on the CPU)"
    return None


@dataclasses.dataclass
class Stylizer:
    """Stylizes (N, 3, H, W) batches with one job's fixed settings.

    Attributes:
        model: the network in eval mode, on :attr:`device`.
        signals: the style's signals (moved to the device in float32 on construction).
        settings: how the network runs (:class:`EngineSettings`).
        alpha: content-style weight in [0, 1].
        color_matrix: None, or the YCbCr matrix (a :mod:`microast_video.colour.spaces` name)
            in which to keep the content's chroma (colour preservation).
        background: with a matte, the style of the region where the matte is 0; None keeps
            the original picture there.
        schedule: style and alpha keyframes (signals and alpha per frame, by time).
    """

    model: MicroAST
    signals: StyleSignals
    settings: EngineSettings = EngineSettings()
    alpha: float = 1.0
    color_matrix: str | None = None
    background: StyleSignals | None = None
    schedule: Schedule | None = None
    compile_seconds: float | None = dataclasses.field(default=None, init=False)
    compile_note: str | None = dataclasses.field(default=None, init=False)
    native_note: str | None = dataclasses.field(default=None, init=False)  # from prepare_runtime
    _compiled: Callable[[Tensor], Tensor] | None = dataclasses.field(default=None, init=False, repr=False)
    _failed: bool = dataclasses.field(default=False, init=False, repr=False)
    _trial_calls: int = dataclasses.field(default=0, init=False, repr=False)  # compiled calls watched after the first
    _kept: KeptMap = dataclasses.field(default_factory=KeptMap, init=False, repr=False)  # the eager middle's map

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha = }")
        self.signals = self.signals.to(self.device, torch.float32)
        if self.background is not None:
            self.background = self.background.to(self.device, torch.float32)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def compiled(self) -> bool:
        """True once the network runs through ``torch.compile``."""
        return self._compiled is not None

    def __call__(self, content: Tensor, times: Sequence[float] | None = None, matte: Tensor | None = None) -> Tensor:
        """Stylize a batch.

        Args:
            content: (N, 3, H, W) float32 RGB in [0, 1] on :attr:`device`, or uint8 samples
                (any strides; in strips they are converted a strip at a time).
            times: each frame's time (s), for :attr:`schedule`'s keyframes.
            matte: (N, 1, H, W) float32 in [0, 1] on :attr:`device`: regions (``--matte``).

        Returns:
            (N, 3, H, W) float32 RGB clamped to [0, 1], on :attr:`device`; for uint8
            ``content``, uint8 samples (rounded), in NHWC memory when run in strips.
        """
        with torch.inference_mode():
            if matte is not None or (self.schedule is not None and times is not None):
                return self._forward(content, times, matte)  # per-frame controls: eager
            if self.settings.compile and not self._failed and self._compiled is None:
                return self._first_compiled_call(content)
            if self._compiled is not None and self._trial_calls < TRIAL_CALLS:
                return self._trial_call(content)
            return (self._compiled or self._forward)(content)

    def _forward(self, content: Tensor, times: Sequence[float] | None = None, matte: Tensor | None = None) -> Tensor:
        s = self.settings
        signals, alpha = self.signals, self.alpha
        if self.schedule is not None and times is not None:
            signals, alpha = self.schedule.batch(times, self.signals, self.alpha, self.device)
        eight_bit = content.dtype == torch.uint8
        plain = matte is None and self.color_matrix is None  # the output needs nothing of the input
        if eight_bit and not (plain and s.strip_rows is not None):
            content = to_unit(content)  # the input is needed whole in float (or the network runs whole)
        # Whole frames go NHWC here; in strips, each strip goes NHWC as it is cut (no full copy).
        x = content.contiguous(memory_format=torch.channels_last) if s.channels_last and s.strip_rows is None else content
        compiling = s.compile and not self._failed
        whole = compiling and s.whole_middle
        with torch.autocast(self.device.type, dtype=s.dtype, enabled=s.dtype != torch.float32):
            # Compiled, the whole middle is fastest (strips there unroll into many small graphs,
            # so in strips it runs uncompiled); eager, the strips save memory and time.
            out = self.model(x, signals, alpha, strip_rows=s.strip_rows, matte=matte, background=self.background,
                             strip_middle=not whole, quantize=eight_bit and plain,
                             kept=None if compiling else self._kept)
        if out.dtype == torch.uint8:
            return out
        out = out.float()
        if self.color_matrix is not None:
            out = preserve_color(out.clamp(0.0, 1.0), content, self.color_matrix)
        if matte is not None and self.background is None:  # one style: the original outside the matte
            out = torch.lerp(content, out.clamp(0.0, 1.0), matte)
        return to_samples(out) if eight_bit else out.clamp_(0.0, 1.0)

    def _trial_call(self, content: Tensor) -> Tensor:
        """One of the first compiled calls after the first: CUDA graphs are recorded on one of
        these, and a failure there falls back to eager with a note, as the first call's does."""
        self._trial_calls += 1
        try:
            return self._compiled(content)
        except Exception as err:  # noqa: BLE001 - any compiler or graph failure: keep going in eager
            self._fall_back(err)
            return self._forward(content)

    def _fall_back(self, err: Exception) -> None:
        self._failed, self._compiled = True, None
        first = (str(err).splitlines() or [""])[0][:200]
        self.compile_note = f"torch.compile failed, running eager instead ({type(err).__name__}: {first})"

    def _first_compiled_call(self, content: Tensor) -> Tensor:
        t = time.perf_counter()
        # On CUDA, "reduce-overhead" also captures the fixed-shape graph as a CUDA graph
        # (one launch per batch instead of hundreds of small kernel launches).
        mode = "reduce-overhead" if self.device.type == "cuda" else None
        compiled = torch.compile(self._forward, dynamic=False, mode=mode)
        try:
            import torch._inductor.config as inductor_config

            with inductor_config.patch(freezing=self.settings.freeze):
                out = compiled(content)
        except Exception as err:  # noqa: BLE001 - any compiler failure: keep going in eager
            self._fall_back(err)
            return self._forward(content)
        self.compile_seconds = time.perf_counter() - t
        self._compiled = compiled
        return out


#: Compiled calls after the first whose failure still falls back to eager (CUDA graphs are
#: recorded on the second or third call of a "reduce-overhead" graph).
TRIAL_CALLS = 3


class FrameEngine:
    """Stylizes a stream of :class:`Frame` s in batches on the stylizer's device.

    On the CPU each batch runs synchronously; on CUDA up to two batches are in flight
    (:class:`~microast_video.engine.cuda.CudaRunner`). Batching and ordering are the same code
    on both paths (:func:`batched`, :func:`pipelined`). ``transport`` says how frames
    travel: packed RGB (default) or 4:2:0 planes, whose colour conversion then runs here,
    on the device (:mod:`microast_video.engine.transport`).
    """

    def __init__(self, stylizer: Stylizer, batch_size: int = 4, times: StageTimes | None = None,
                 transport: RGBTransport | YUV420Transport | None = None, keep_source: bool = False) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size = }")
        self.keep_source = keep_source  # stylized frames carry their decoded pixels (for the temporal stage)
        self.transport = transport or RGBTransport()
        self.stylizer = stylizer
        self.batch_size = batch_size
        self.times = times or StageTimes()
        self.device = stylizer.device

    def run(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        """Stylized frames, in the order given, each with its original index and timing."""
        batches = batched(frames, self.batch_size)
        if self.stylizer.settings.compile:  # a compiled graph has one batch size: pad the last batch to it
            batches = padded(batches, self.batch_size)
        if self.device.type == "cuda":
            runner = CudaRunner(self)
            return pipelined(batches, runner.submit, runner.collect, runner.depth)
        return pipelined(batches, self._run_cpu, lambda done: done, 0)

    def _run_cpu(self, batch: list[Frame]) -> list[Frame]:
        real = getattr(batch, "real", len(batch))  # frames beyond it pad the batch (see padded)
        idx = [f.index for f in batch[:real]]
        deep = batch[0].data.dtype == np.uint16
        t = time.perf_counter()
        data = host_tensor(np.stack([f.data for f in batch]) if len(batch) > 1 else batch[0].data[None])
        # 8-bit RGB goes to the network as samples (an NCHW view of the NHWC frames): in strips
        # the network converts them, and makes its 8-bit output, a strip at a time.
        samples = isinstance(self.transport, RGBTransport) and data.dtype == torch.uint8
        x = data.permute(0, 3, 1, 2) if samples else self.transport.to_float(data)
        matte = batch_matte(batch, self.device)
        t1 = time.perf_counter()
        self.times.add("upload", t1 - t, idx, t1)
        out = self.stylizer(x, [f.seconds for f in batch], matte)
        t2 = time.perf_counter()
        self.times.add("network", t2 - t1, idx, t2)
        out = out.permute(0, 2, 3, 1) if samples else self.transport.from_float(out, deep)
        pixels = host_array(out.contiguous(), deep)
        t3 = time.perf_counter()
        self.times.add("download", t3 - t2, idx, t3)
        keep = self.keep_source
        return [f.with_data(p, f.data if keep else None, keep_matte=keep) for f, p in zip(batch[:real], pixels)]
