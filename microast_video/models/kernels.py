"""The native kernels the strip ops try first, passed to them explicitly.

A :class:`StripKernels` value belongs to a model instance (:meth:`MicroAST.use_kernels
<microast_video.models.MicroAST.use_kernels>`); the model hands it to every strip op it
builds. ``microast_video.native.model`` makes the CPU engine's; :data:`PYTORCH` (no kernels)
runs PyTorch's ops everywhere. Each kernel returns None where it does not apply, and
PyTorch's ops run; the results are the same up to float rounding.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from torch import Tensor


@dataclasses.dataclass(frozen=True)
class MiddleKernels:
    """Native kernels for the quarter-resolution middle in strips under bf16 autocast (made by
    ``microast_video.native.model``). Each returns None where it does not apply, and PyTorch's ops
    run; the results are the same up to float rounding.

    Attributes:
        centre_pad: ``fn(rows, (left, right, top, bottom))`` on a centred conv's unpadded window
            rows: (the rows padded, minus their per-channel mean, rounded, NHWC; the mean,
            (N, C, 1, 1) float32). See :meth:`Conv.centred_raw`.
        tail: ``fn(y, shift, w, b, z, res, relu)``: a residual block's pointwise tail after
            such a conv (``microast_video.native.model.epilogue``).
        stats: ``fn(x, eps)``: FeatMod's (mean, spread) of a whole map (:func:`.strip_blocks.strip_mean_std`).
        modulate: ``fn(rows, m, s, mean, std, alpha)``: FeatMod on rows (:class:`.strip_blocks.Modulate`).
    """

    centre_pad: Callable[[Tensor, tuple[int, int, int, int]], tuple[Tensor, Tensor] | None]
    tail: Callable[..., Tensor | None]
    stats: Callable[[Tensor, float], tuple[Tensor, Tensor] | None]
    modulate: Callable[..., Tensor | None]


@dataclasses.dataclass(frozen=True)
class StripKernels:
    """The kernels of one model's strip ops.

    Attributes:
        up_dw: the fused upsampling + grouped conv of :class:`~.strips.UpConv`, called as
            ``fn(x, conv, a, h, o0, o1, blocked=..., relu=...)``; None: PyTorch's ops.
        middle: the quarter-resolution middle's kernels under bf16 autocast; None: PyTorch's ops.
    """

    up_dw: Callable[..., Tensor | None] | None = None
    middle: MiddleKernels | None = None


#: No native kernel: PyTorch's ops everywhere.
PYTORCH = StripKernels()
