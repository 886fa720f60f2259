"""The quarter-resolution middle in strips too: residual blocks and FeatMod as strip ops.

The middle (the encoder's two residual blocks, then FeatMod + modulated block twice) was
held whole because FeatMod needs each map's per-channel mean and spread over the whole
frame. Taking those statistics in a separate pass over strips (:func:`strip_mean_std`,
two passes: the mean, then the spread around it, as the whole-frame maths does) lets every
layer of the middle run strip by strip like the head and the tail: only the maps the
statistics are taken on (and the next one) exist whole, instead of every temporary of
every block. Each strip reads exactly the rows it depends on, so the result equals
whole-frame execution up to float rounding.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .kernels import MiddleKernels
from .strips import Conv


def strip_mean_std(x: Tensor, bounds: Sequence[tuple[int, int]], eps: float, middle: MiddleKernels | None = None
                   ) -> tuple[Tensor, Tensor]:
    """Per-channel mean and ``sqrt(unbiased var + eps)`` of (N, C, H, W) ``x``, strip by strip
    (float64 sums; no frame-sized temporary), or by ``middle``'s native kernel. Returns
    (N, C, 1, 1) float32 each."""
    native = None if middle is None else middle.stats(x, eps)
    if native is not None:
        return native
    n, c, h, w = x.shape
    total = torch.zeros(n, c, dtype=torch.float64, device=x.device)
    for a, b in bounds:
        total += x[:, :, a:b].sum(dim=(2, 3), dtype=torch.float64)
    mean = total / (h * w)
    square = torch.zeros_like(total)
    m = mean.view(n, c, 1, 1)
    for a, b in bounds:
        square += (x[:, :, a:b].double() - m).square_().sum(dim=(2, 3))
    var = square / (h * w - 1)
    return mean.float().view(n, c, 1, 1), (var + eps).sqrt().float().view(n, c, 1, 1)


@dataclasses.dataclass(frozen=True)
class Residual:
    """``x + conv2(relu(conv1(x)))``, or with filter modulation ``w, b`` (N, C, 1, 1)
    ``x + (w*conv2(h) + b*h)`` with ``h = relu(w*conv1(x) + b*x)``, as a strip op."""

    conv1: torch.nn.Conv2d
    conv2: torch.nn.Conv2d
    w: Tensor | None = None
    b: Tensor | None = None
    middle: MiddleKernels | None = None  # native kernels for the convs' input and tail (bf16 autocast)

    def out_height(self, h: int) -> int:
        return h

    def needs(self, o0: int, o1: int, h: int) -> tuple[int, int]:
        c = Conv(self.conv1, False)
        return c.needs(*c.needs(o0, o1, h), h)

    def apply(self, x: Tensor, a: int, h: int, o0: int, o1: int) -> Tensor:
        m0, m1 = Conv(self.conv1, False).needs(o0, o1, h)
        if self.middle is not None and torch.is_autocast_enabled(x.device.type):
            out = self._natively(x, a, h, o0, o1, m0, m1)
            if out is not None:
                return out
        mid = Conv(self.conv1, False, centred=True).apply(x, a, h, m0, m1)
        if self.w is not None:
            mid = mid.mul_(self.w).add_(self.b * x.narrow(2, m0 - a, m1 - m0))
        mid = F.relu(mid, inplace=True)
        out = Conv(self.conv2, False, centred=True).apply(mid, m0, h, o0, o1)
        if self.w is not None:
            out = out.mul_(self.w).add_(self.b * mid.narrow(2, o0 - m0, o1 - o0))
        return out.add_(x.narrow(2, o0 - a, o1 - o0))

    def _natively(self, x: Tensor, a: int, h: int, o0: int, o1: int, m0: int, m1: int) -> Tensor | None:
        """:meth:`apply` with each conv's input and its pointwise tail made by the native
        :class:`~.kernels.MiddleKernels` (one pass each, the same operations); None where they
        do not apply."""
        modulated = self.w is not None
        got = Conv(self.conv1, False, centred=True, middle=self.middle).centred_raw(x, a, h, m0, m1)
        z = x.narrow(2, m0 - a, m1 - m0) if modulated else None
        mid = None if got is None else self.middle.tail(*got, self.w, self.b, z, None, True)
        got = None if mid is None else Conv(self.conv2, False, centred=True, middle=self.middle).centred_raw(mid, m0, h, o0, o1)
        if got is None:
            return None
        z = mid.narrow(2, o0 - m0, o1 - o0) if modulated else None
        return self.middle.tail(*got, self.w, self.b, z, x.narrow(2, o0 - a, o1 - o0), False)


@dataclasses.dataclass(frozen=True)
class Modulate:
    """FeatMod with the map's statistics taken beforehand, then the content-style weight:
    ``alpha * ((x - m) / s * std + mean) + (1 - alpha) * x`` (pixel-wise, float32)."""

    m: Tensor
    s: Tensor
    mean: Tensor
    std: Tensor
    alpha: float | Tensor = 1.0
    middle: MiddleKernels | None = None  # FeatMod in one native pass (bf16 autocast)

    def out_height(self, h: int) -> int:
        return h

    def needs(self, o0: int, o1: int, h: int) -> tuple[int, int]:
        return o0, o1

    def apply(self, x: Tensor, a: int, h: int, o0: int, o1: int) -> Tensor:
        rows = x.narrow(2, o0 - a, o1 - o0).float()
        native = None if self.middle is None else self.middle.modulate(rows, self.m, self.s, self.mean, self.std,
                                                                        self.alpha)
        if native is not None:
            return native
        out = (rows - self.m).div_(self.s).mul_(self.std).add_(self.mean)
        if isinstance(self.alpha, float) and self.alpha == 1.0:
            return out
        return out.mul_(self.alpha).add_((1.0 - self.alpha) * rows)
