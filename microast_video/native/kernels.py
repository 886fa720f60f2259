"""The native CPU kernels: the decoder's fused upsampling + grouped 3x3 conv, the
quarter-resolution convs' centring under bf16, and the temporal stage's two full-resolution
passes.

The decoder's tail upsamples twice (bilinear x2), each time followed by a grouped 3x3
conv with two inputs per group. In PyTorch that is an upsampled map written out in full
(the tail's largest tensors), padded, then read back by the conv; compiled, inductor's
upsampling kernels alone took ~150 ms of a 0.71 s 1080p frame (RESULTS.md).
``native/up_dw.cpp`` computes the conv's output rows directly, three upsampled rows at a
time in float32, vectorized by the compiler: exact algebra, float32 accumulation.
``native/centre.cpp`` makes a bf16 conv's input in the middle's strips (:func:`centre_pad`):
the strip's mean, then the strip padded, centred and rounded in one pass (PyTorch's ops took
four passes, ~7x the time), the residual blocks' pointwise tail after each such conv
(:func:`epilogue`: shift, modulation, residual, ReLU in one pass), FeatMod's statistics
(:func:`channel_stats`, two reads, sums independent of the threads) and FeatMod itself
(:func:`modulate`, one pass): :class:`~.models.strips.MiddleKernels`, under bf16 autocast only.
Together the UHD middle takes a third less time (one process, interleaved: 0.95 s against
1.41 s per frame with PyTorch's ops).
``native/temporal.cpp`` warps the temporal stage's state and blends it with the current frame
(:class:`TemporalKernels`), each one pass over the frame on the calling thread, with the small
maps upsampled a row at a time (numpy, torch and OpenCV took 3-4x the CPU time, in passes
over full-size temporaries, on threads taken from the network's).

The sources ship with the package and are compiled on first use into one library with the
machine's C++ compiler (the one ``torch.compile`` needs too; ~3 s, ``-O3 -march=native
-fopenmp``) into the cache folder, keyed by the sources, compiler and CPU, and loaded with
:mod:`ctypes`. Loaded after torch, its OpenMP runtime is torch's own (the same ``libgomp.so.1``),
so up_dw's rows run on torch's idle worker threads (new threads ran 1.5-2x slower beside
workers still spinning). up_dw runs as the custom op ``microast_video::up_dw``, so compiled
graphs call it as one opaque kernel. Without a compiler, or if the build fails, :func:`enable`
and :func:`temporal_kernels` say why and the PyTorch / numpy code runs (same results up to
float rounding).
"""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..models import strips

SOURCES = tuple(Path(__file__).parent / name
                for name in ("up_dw.cpp", "temporal.cpp", "centre.cpp", "colour.cpp"))
HEADERS = (Path(__file__).parent / "bf16.h",)  # included by the sources: part of the build's key
#: -fno-trapping-math: float -> int conversions vectorize (nothing here reads FP exceptions)
_FLAGS = ("-O3", "-std=c++17", "-shared", "-fPIC", "-pthread", "-fno-trapping-math")
_state: dict[str, object] = {}  # "lib": the loaded library, "op": the registered custom op
_build_lock = threading.Lock()
#: (groups, inputs per group) that up_dw.cpp is built for: MicroAST's two upsampling convs.
SHAPES = frozenset({(32, 2), (16, 2)})


def enable(cache: Path) -> str | None:
    """Build (once per machine), load and switch on the fused kernel for strips.

    Returns None when it is on, or one line saying why the PyTorch ops run instead."""
    if not hasattr(torch.library, "custom_op"):
        disable()
        return f"native kernel unavailable with torch {torch.__version__} (needs torch.library.custom_op)"
    lib, why = library(cache)
    if lib is None:
        disable()
        return why
    if "op" not in _state:
        _state["op"] = _register()
    strips.use_fused_up_dw(fused_up_dw)
    strips.use_middle_kernels(strips.MiddleKernels(centre_pad, epilogue, channel_stats, modulate))
    return None


def library(cache: Path) -> tuple[ctypes.CDLL | None, str | None]:
    """The native library, built and loaded once per process: (it, None) or (None, why not).

    Thread-safe: the decoder's thread and the engine may ask at the same time."""
    with _build_lock:
        if "lib" not in _state:
            try:
                _state["lib"] = _load(_build(cache / "native"))
            except (OSError, RuntimeError, subprocess.SubprocessError) as err:
                _state["lib"] = None
                _state["why"] = f"native kernels unavailable, PyTorch / numpy instead ({' '.join(str(err).split())[:200]})"
    return _state["lib"], _state.get("why")  # type: ignore[return-value]


def disable() -> None:
    """Run the PyTorch ops again (the fused kernels stay loaded)."""
    strips.use_fused_up_dw(None)
    strips.use_middle_kernels(None)


def cxx_compiler() -> str | None:
    """The machine's C++ compiler (``$CXX``, else g++, c++, clang++), or None: the one lookup
    for this kernel and for ``torch.compile`` (:func:`~microast_video.engine.stylizer.compile_unavailable`)."""
    for name in (os.environ.get("CXX", ""), "g++", "c++", "clang++"):
        found = shutil.which(name) if name else None
        if found:
            return found
    return None


def _cpu_identity() -> str:
    """What ``-march=native`` depends on: the architecture and, on Linux, the CPU's flags."""
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            flags = next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        pass
    return platform.machine() + flags


def _build(folder: Path) -> Path:
    """The compiled library for this source, compiler and CPU (built now if not cached)."""
    cxx = cxx_compiler()
    if cxx is None:
        raise RuntimeError("no C++ compiler found")
    source = b"".join(path.read_bytes() for path in (*SOURCES, *HEADERS))
    key = hashlib.sha256(source + cxx.encode() + " ".join(_FLAGS).encode() + _cpu_identity().encode()).hexdigest()
    target = folder / f"native-{key[:20]}.so"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    last = ""
    # x86 / Arm spelling of "this CPU", then portable; OpenMP (torch's runtime), then threads.
    for arch, omp in itertools.product((("-march=native",), ("-mcpu=native",), ()), (("-fopenmp",), ())):
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
        os.close(fd)
        cmd = [cxx, *_FLAGS, *arch, *omp, *map(str, SOURCES), "-o", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        if done.returncode == 0:
            os.replace(tmp, target)  # atomic: a concurrent build of the same key is harmless
            for stale in [*folder.glob("native-*.so"), *folder.glob("up_dw-*.so")]:  # older sources, another CPU
                if stale != target:
                    stale.unlink(missing_ok=True)  # a process that loaded it keeps its mapping
            return target
        os.unlink(tmp)
        last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
    raise RuntimeError(f"{Path(cxx).name} failed: {last}")


def _load(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    i, i64, ptr = ctypes.c_int, ctypes.c_int64, ctypes.c_void_p
    lib.microast_up_dw.restype = i
    lib.microast_up_dw.argtypes = [ptr, i, i64, i, i, i, i, i, i, ptr, ptr, ptr, i, i64, i, i, i, i]
    f = ctypes.c_float
    lib.microast_warp.restype = i
    lib.microast_warp.argtypes = [ptr, i, i, i, ptr, i, ptr, i, i]
    lib.microast_compose.restype = i
    lib.microast_compose.argtypes = [ptr, i, ptr, i, i, i, ptr, ptr, ptr, i, f, f, ptr, ptr, i, f, i, i]
    lib.microast_centre_pad.restype = i
    lib.microast_centre_pad.argtypes = [ptr, i64, i, i, i, i, i, i, i, ptr, ptr, i]
    lib.microast_epilogue.restype = i
    lib.microast_epilogue.argtypes = [ptr, i, i, i, ptr, ptr, ptr, ptr, i64, ptr, i64, i, ptr, i]
    lib.microast_channel_sums.restype = i
    lib.microast_channel_sums.argtypes = [ptr, i64, i, i, i, ptr, ptr, i]
    lib.microast_modulate.restype = i
    lib.microast_modulate.argtypes = [ptr, i64, i, i, i, ptr, ptr, ptr, ptr, f, ptr, i]
    lib.microast_yuv420_to_rgb8.restype = i
    lib.microast_yuv420_to_rgb8.argtypes = [ptr, i64, ptr, ptr, i64, i, i, ptr, f, f, f, f, ptr, i, i]
    lib.microast_rgb8_to_yuv420.restype = i
    lib.microast_rgb8_to_yuv420.argtypes = [ptr, i64, i, i, ptr, f, f, f, f, ptr, ptr, ptr]
    return lib


def _register() -> object:
    """The custom op ``microast_video::up_dw`` (its shape rule for compiled graphs included)."""
    op = torch.library.custom_op("microast_video::up_dw", _up_dw, mutates_args=())

    @op.register_fake
    def _(x: Tensor, weight: Tensor, bias: Tensor, a: int, h: int, o0: int, o1: int, blocked: bool, relu: bool,
          bf16_out: bool) -> Tensor:
        return _empty_out(x, weight, o0, o1, bf16_out)

    return op


def _empty_out(x: Tensor, weight: Tensor, o0: int, o1: int, bf16_out: bool) -> Tensor:
    return torch.empty((x.shape[0], weight.shape[0], o1 - o0, 2 * x.shape[3]), device=x.device,
                       dtype=torch.bfloat16 if bf16_out else torch.float32, memory_format=torch.channels_last)


def _up_dw(x: Tensor, weight: Tensor, bias: Tensor, a: int, h: int, o0: int, o1: int, blocked: bool, relu: bool,
           bf16_out: bool) -> Tensor:
    """Rows [o0, o1) of ``relu(conv(pad(up2(x))))`` from ``x`` = rows [a, a + n) of a height-``h``
    map: (N, C, n, W) float32 or bfloat16; returns (N, G, o1 - o0, 2W), NHWC memory."""
    lib = _state["lib"]
    groups, per = weight.shape[0], x.shape[1] // weight.shape[0]
    if x.stride(1) != 1 or x.stride(3) != x.shape[1]:
        x = x.contiguous(memory_format=torch.channels_last)
    taps = weight.detach().float().reshape(groups, per, 3, 3).permute(2, 3, 1, 0).contiguous()
    b = bias.detach().float().contiguous()
    out = _empty_out(x, weight, o0, o1, bf16_out)
    threads = torch.get_num_threads()
    for n in range(x.shape[0]):
        rc = lib.microast_up_dw(x.data_ptr() + n * x.stride(0) * x.element_size(), int(x.dtype == torch.bfloat16),
                                x.stride(2), a, h, x.shape[3], groups, per, int(blocked), taps.data_ptr(),
                                b.data_ptr(), out.data_ptr() + n * out.stride(0) * out.element_size(), int(bf16_out),
                                out.stride(2), o0, o1, int(relu), threads)
        if rc != 0:
            raise ValueError(f"native up_dw cannot run this shape: {tuple(x.shape) = }, {tuple(weight.shape) = }")
    return out


def fused_up_dw(x: Tensor, conv: torch.nn.Conv2d, a: int, h: int, o0: int, o1: int, *, blocked: bool,
                relu: bool) -> Tensor | None:
    """The hook :mod:`.models.strips` calls for an upsampling + grouped conv (see
    :class:`~.models.strips.UpConv`): the output rows, or None where the kernel does not
    apply (not the CPU, another shape, dtype or autocast precision) and PyTorch's ops run."""
    if x.device.type != "cpu" or conv.kernel_size != (3, 3) or conv.stride != (1, 1):
        return None
    groups, channels = conv.groups, x.shape[1]
    if conv.out_channels != groups or channels % groups or (groups, channels // groups) not in SHAPES:
        return None
    if torch.is_autocast_enabled("cpu"):
        if strips._autocast_dtype("cpu") != torch.bfloat16 or x.dtype not in (torch.float32, torch.bfloat16):
            return None
        bf16_out = True
    elif x.dtype in (torch.float32, torch.bfloat16):
        bf16_out = x.dtype == torch.bfloat16
    else:
        return None
    bias = conv.bias if conv.bias is not None else torch.zeros(groups)
    return torch.ops.microast_video.up_dw(x, conv.weight, bias, a, h, o0, o1, blocked, relu, bf16_out)


def centre_pad(rows: Tensor, pad: tuple[int, int, int, int]) -> tuple[Tensor, Tensor] | None:
    """The hook :mod:`.models.strips` calls for a centred conv's input under bf16 autocast
    (``native/centre.cpp``): ``rows`` (N, C, R, W) float32 in NHWC memory, padded by reflection
    (left, right, top, bottom), minus its per-channel mean, rounded to bfloat16 (NHWC); and
    that mean (N, C, 1, 1) float32. None where the kernel does not apply (PyTorch's ops run)."""
    n, c, r, w = rows.shape
    if not _nhwc_rows(rows):
        return None
    left, right, top, bottom = pad
    out = torch.empty((n, c, r + top + bottom, w + left + right), dtype=torch.bfloat16,
                      memory_format=torch.channels_last)
    mu = torch.empty((n, c), dtype=torch.float32)
    threads = torch.get_num_threads()
    for i in range(n):
        rc = _state["lib"].microast_centre_pad(rows[i].data_ptr(), rows.stride(2), r, w, c, top, bottom, left, right,
                                               mu[i].data_ptr(), out[i].data_ptr(), threads)
        if rc != 0:
            return None
    return out, mu.view(n, c, 1, 1)


def epilogue(y: Tensor, shift: Tensor, w: Tensor | None, b: Tensor | None, z: Tensor | None, res: Tensor | None,
             relu: bool) -> Tensor | None:
    """The hook :class:`~.models.strip_blocks.Residual` calls after a centred bf16 conv
    (``native/centre.cpp``): ``float(y) + shift``, then ``* w + b * z`` (modulation), ``+ res``
    (the residual), ``relu``, in one pass and in PyTorch's order of operations. ``y`` (N, C, R, W)
    bfloat16 in NHWC memory; ``shift, w, b`` (N or 1, C, 1, 1); ``z, res`` float32 rows in NHWC
    memory. Returns (N, C, R, W) float32 in NHWC memory, or None where the kernel does not apply."""
    n, c, r, width = y.shape
    rows = [t for t in (z, res) if t is not None]
    per_channel = _per_channel((shift, w, b), n, c)
    if (y.device.type != "cpu" or y.dtype != torch.bfloat16 or not y.is_contiguous(memory_format=torch.channels_last)
            or any(not _nhwc_layout(t) or t.shape != y.shape for t in rows) or per_channel is None
            or (w is None) != (b is None) or (b is not None and z is None) or torch.compiler.is_compiling()):
        return None
    out = torch.empty(y.shape, dtype=torch.float32, memory_format=torch.channels_last)
    threads = torch.get_num_threads()
    for i in range(n):
        rc = _state["lib"].microast_epilogue(
            y[i].data_ptr(), r, width, c, *(_item(t, i) for t in per_channel),
            _item(z, i), 0 if z is None else z.stride(2), _item(res, i), 0 if res is None else res.stride(2),
            int(relu), out[i].data_ptr(), threads)
        if rc != 0:
            return None
    return out


def _per_channel(vectors: tuple[Tensor | None, ...], n: int, c: int) -> list[Tensor | None] | None:
    """(N or 1, C, 1, 1) vectors as contiguous (N or 1, C) float32 rows (None stays None), or None
    when one holds another number of frames."""
    rows = [None if t is None else t.detach().float().reshape(-1, c).contiguous() for t in vectors]
    return None if any(t is not None and t.shape[0] not in (1, n) for t in rows) else rows


def _item(t: Tensor | None, i: int) -> int | None:
    """The address of frame ``i`` of ``t`` (its only frame when it holds one, for every frame)."""
    return None if t is None else t[min(i, t.shape[0] - 1)].data_ptr()


def _nhwc_layout(x: Tensor) -> bool:
    """A float32 CPU map whose rows the kernels can read: NHWC memory, rows any stride apart."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4 and x.stride(1) == 1 \
        and x.stride(3) == x.shape[1]


def _nhwc_rows(x: Tensor) -> bool:
    """:func:`_nhwc_layout`, under bf16 autocast (the exact float32 path keeps PyTorch's ops), not compiling."""
    return (_nhwc_layout(x) and torch.is_autocast_enabled("cpu") and strips._autocast_dtype("cpu") == torch.bfloat16
            and not torch.compiler.is_compiling())


def channel_stats(x: Tensor, eps: float) -> tuple[Tensor, Tensor] | None:
    """FeatMod's per-channel mean and ``sqrt(unbiased var + eps)`` of (N, C, H, W) ``x`` (NHWC
    memory), in two native reads (float64 sums of float32 row sums); (N, C, 1, 1) float32 each,
    or None where the kernel does not apply."""
    n, c, h, w = x.shape
    if not _nhwc_rows(x) or h * w < 2:
        return None
    sums, squares = torch.empty((n, c), dtype=torch.float64), torch.empty((n, c), dtype=torch.float64)
    mean = torch.empty((n, c), dtype=torch.float32)
    lib, threads = _state["lib"], torch.get_num_threads()
    for i in range(n):
        if lib.microast_channel_sums(x[i].data_ptr(), x.stride(2), h, w, c, None, sums[i].data_ptr(), threads):
            return None
        mean[i] = (sums[i] / (h * w)).float()
        if lib.microast_channel_sums(x[i].data_ptr(), x.stride(2), h, w, c, mean[i].data_ptr(), squares[i].data_ptr(),
                                     threads):
            return None
    return mean.view(n, c, 1, 1), (squares / (h * w - 1) + eps).sqrt().float().view(n, c, 1, 1)


def modulate(rows: Tensor, m: Tensor, s: Tensor, mean: Tensor, std: Tensor, alpha: float | Tensor) -> Tensor | None:
    """FeatMod on ``rows`` (N, C, R, W) float32 NHWC with the statistics taken (each (N or 1, C, 1, 1)):
    ``(rows - m) / s * std + mean``, blended with ``rows`` by a number ``alpha``, in one native
    pass; (N, C, R, W) float32 NHWC, or None where the kernel does not apply (a per-frame alpha)."""
    n, c, r, w = rows.shape
    per_channel = _per_channel((m, s, mean, std), n, c)
    if not _nhwc_rows(rows) or not isinstance(alpha, float) or per_channel is None:
        return None
    out = torch.empty(rows.shape, dtype=torch.float32, memory_format=torch.channels_last)
    lib, threads = _state["lib"], torch.get_num_threads()
    for i in range(n):
        if lib.microast_modulate(rows[i].data_ptr(), rows.stride(2), r, w, c, *(_item(t, i) for t in per_channel),
                                 alpha, out[i].data_ptr(), threads):
            return None
    return out


_U16, _F32 = (np.dtype(np.uint16),), (np.dtype(np.float32),)


class TemporalKernels:
    """The temporal stage's full-resolution passes (``native/temporal.cpp``), on numpy arrays.

    Small maps come upsampled horizontally only, (fh, w[, ch]) float32, and are upsampled
    vertically a row at a time as ``cv2.resize`` does; frames are (h, w[, ch]) C-contiguous."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib

    def warp(self, prev: np.ndarray, coords: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``out`` = uint16 ``prev`` sampled bilinearly at ``coords`` (fh, w, 2) (x, y), borders replicated."""
        h, w = prev.shape[:2]
        _check(prev=(prev, prev.shape, _U16), out=(out, prev.shape, _U16),
               coords=(coords, (coords.shape[0], w, 2), _F32))
        rc = self.lib.microast_warp(prev.ctypes.data, h, w, _channels(prev), coords.ctypes.data, coords.shape[0],
                                    out.ctypes.data, 0, h)
        if rc != 0:
            raise ValueError(f"native warp cannot take this frame: {prev.shape = }")
        return out

    def compose(self, c: np.ndarray, warped: np.ndarray, ac: np.ndarray, aw: np.ndarray, k: np.ndarray,
                c_scale: float, w_scale: float, top: float, state: np.ndarray, samples: np.ndarray) -> None:
        """``v = ac * c * c_scale + aw * warped * w_scale + k`` per sample (``ac, aw`` broadcast over
        the channels); ``state`` = round(v * 65535) as uint16, ``samples`` = round(v * top) as
        ``c``'s dtype (uint8 or uint16), both clamped."""
        (h, w), fh, kinds = c.shape[:2], ac.shape[0], (np.dtype(np.uint8), np.dtype(np.uint16))
        _check(c=(c, c.shape, kinds), samples=(samples, c.shape, (c.dtype,)), warped=(warped, c.shape, _U16),
               state=(state, c.shape, _U16), ac=(ac, (fh, w), _F32), aw=(aw, (fh, w), _F32),
               k=(k, (fh, *c.shape[1:]), _F32))
        rc = self.lib.microast_compose(c.ctypes.data, int(c.dtype == np.uint16), warped.ctypes.data, h, w, _channels(c),
                                       ac.ctypes.data, aw.ctypes.data, k.ctypes.data, fh, c_scale, w_scale,
                                       state.ctypes.data, samples.ctypes.data, int(samples.dtype == np.uint16), top, 0, h)
        if rc != 0:
            raise ValueError(f"native compose cannot take these frames: {c.shape = }, {c.dtype = }")


def _channels(x: np.ndarray) -> int:
    return x.shape[2] if x.ndim == 3 else 1


def _check(**arrays: tuple[np.ndarray, tuple[int, ...], tuple[np.dtype, ...]]) -> None:
    """The kernels read raw memory: every array C-contiguous, of its shape and one of its dtypes."""
    for name, (array, shape, dtypes) in arrays.items():
        if not array.flags.c_contiguous or array.shape != tuple(shape) or array.dtype not in dtypes:
            raise ValueError(f"native temporal kernel: bad {name}: {array.shape = }, {array.dtype = }, "
                             f"want {tuple(shape)} of {[str(d) for d in dtypes]}, C-contiguous")


class ColourKernels:
    """The decoder's 8-bit 4:2:0 -> RGB conversion and the encoder's RGB -> 4:2:0
    (``native/colour.cpp``): the arithmetic of :meth:`~microast_video.engine.transport.YUV420Transport.to_float`
    and :meth:`~microast_video.engine.transport.YUV420Transport.from_float`, one pass each, on the calling thread."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib

    def yuv420_to_rgb8(self, planes: tuple[np.ndarray, np.ndarray, np.ndarray], matrix: np.ndarray,
                       levels: tuple[float, float, float, float]) -> np.ndarray:
        """(H, W, 3) uint8 RGB from uint8 planes Y (H, W), U and V (H/2, W/2), each with unit
        column stride (rows may be padded); ``matrix`` (3, 3) float32 takes (Y, Cb, Cr) to RGB,
        ``levels`` = (luma offset, luma range, chroma centre, chroma range) in code values."""
        y, u, v = planes
        h, w = y.shape
        if (h % 2 or w % 2 or u.shape != (h // 2, w // 2) or v.shape != u.shape or u.strides != v.strides
                or any(p.dtype != np.uint8 or p.strides[1] != 1 for p in planes)):
            raise ValueError(f"native colour conversion needs even 8-bit 4:2:0 planes: {y.shape = }, {u.shape = }")
        m = np.ascontiguousarray(matrix, np.float32)
        out = np.empty((h, w, 3), np.uint8)
        rc = self.lib.microast_yuv420_to_rgb8(y.ctypes.data, y.strides[0], u.ctypes.data, v.ctypes.data, u.strides[0],
                                              h, w, m.ctypes.data, *levels, out.ctypes.data, 0, h)
        if rc != 0:
            raise ValueError(f"native colour conversion cannot take this frame: {y.shape = }")
        return out

    def rgb8_to_yuv420(self, rgb: np.ndarray, matrix: np.ndarray, levels: tuple[float, float, float, float]
                       ) -> np.ndarray:
        """(H * 3/2, W) uint8 4:2:0 planes (Y, then U, then V, as PyAV packs ``yuv420p``) from
        (H, W, 3) uint8 RGB with even H, W and packed rows (rows may be padded); ``matrix``
        (3, 3) float32 takes RGB in [0, 1] to (Y, Cb, Cr), ``levels`` as for :meth:`yuv420_to_rgb8`."""
        h, w = rgb.shape[:2]
        if (rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or h % 2 or w % 2
                or rgb.strides[1:] != (3, 1)):
            raise ValueError(f"native colour conversion needs even packed 8-bit RGB: {rgb.shape = }, {rgb.strides = }")
        m = np.ascontiguousarray(matrix, np.float32)
        out = np.empty((h * 3 // 2, w), np.uint8)
        flat = out.reshape(-1)
        y, u, v = flat[: h * w], flat[h * w: h * w * 5 // 4], flat[h * w * 5 // 4:]
        rc = self.lib.microast_rgb8_to_yuv420(rgb.ctypes.data, rgb.strides[0], h, w, m.ctypes.data, *levels,
                                              y.ctypes.data, u.ctypes.data, v.ctypes.data)
        if rc != 0:
            raise ValueError(f"native colour conversion cannot take this frame: {rgb.shape = }")
        return out


def colour_kernels(cache: Path) -> ColourKernels | None:
    """The decoder's and the encoder's colour conversions (built and loaded once per process), or None."""
    lib, _ = library(cache)
    return None if lib is None else ColourKernels(lib)


def temporal_kernels(cache: Path) -> tuple[TemporalKernels | None, str | None]:
    """The temporal stage's kernels (built and loaded once per process), or (None, why not)."""
    lib, why = library(cache)
    return (TemporalKernels(lib), None) if lib is not None else (None, why)
