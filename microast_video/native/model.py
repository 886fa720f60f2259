"""The network's native CPU kernels: the decoder's fused upsampling + grouped 3x3 conv, the
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
(:func:`modulate`, one pass): :class:`~microast_video.models.kernels.MiddleKernels`, under bf16 autocast only.
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

from pathlib import Path

import torch
from torch import Tensor

from ..models.kernels import PYTORCH, MiddleKernels, StripKernels
from ..models.samples import autocast_dtype
from .build import library, loaded

#: (groups, inputs per group) that up_dw.cpp is built for: MicroAST's two upsampling convs.
SHAPES = frozenset({(32, 2), (16, 2)})
_registered: list[object] = []  # the custom op, registered once per process


def strip_kernels(cache: Path) -> tuple[StripKernels, str | None]:
    """The CPU engine's native kernels for a model's strip ops (built once per machine, loaded
    once per process), for :meth:`MicroAST.use_kernels <microast_video.models.MicroAST.use_kernels>`:
    (them, None), or (:data:`~microast_video.models.kernels.PYTORCH`, one line saying why
    PyTorch's ops run instead)."""
    if not hasattr(torch.library, "custom_op"):
        return PYTORCH, f"native kernel unavailable with torch {torch.__version__} (needs torch.library.custom_op)"
    lib, why = library(cache)
    if lib is None:
        return PYTORCH, why
    if not _registered:
        _registered.append(_register())
    return StripKernels(fused_up_dw, MiddleKernels(centre_pad, epilogue, channel_stats, modulate)), None


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
    lib = loaded()
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
        if autocast_dtype("cpu") != torch.bfloat16 or x.dtype not in (torch.float32, torch.bfloat16):
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
        rc = loaded().microast_centre_pad(rows[i].data_ptr(), rows.stride(2), r, w, c, top, bottom, left, right,
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
        rc = loaded().microast_epilogue(
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
    return (_nhwc_layout(x) and torch.is_autocast_enabled("cpu") and autocast_dtype("cpu") == torch.bfloat16
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
    lib, threads = loaded(), torch.get_num_threads()
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
    lib, threads = loaded(), torch.get_num_threads()
    for i in range(n):
        if lib.microast_modulate(rows[i].data_ptr(), rows.stride(2), r, w, c, *(_item(t, i) for t in per_channel),
                                 alpha, out[i].data_ptr(), threads):
            return None
    return out
