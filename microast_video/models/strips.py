"""Exact strip (tile) execution of MicroAST's full-resolution layers.

The network has two global operations only, the FeatMod statistics over the
quarter-resolution features; everything else is local. So the full-resolution head of
the content encoder (9x9 conv ... down to 1/4 resolution) and the upsampling tail of the
decoder run here on horizontal strips, and the big full-resolution tensors (16 channels
at 4K: 530 MB each in float32) never exist in full.

Each strip is computed from exactly the rows it depends on: working back from the
strip's output rows through every layer gives the input rows needed; rows beyond the
frame's edge are reflected (the layers' reflection padding) or clamped (bilinear
upsampling), exactly as whole-frame execution sees them, and interior rows come from
real neighbours. The result equals whole-frame execution up to float rounding.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .kernels import MiddleKernels
from .samples import autocast_dtype


def centred_conv(conv: nn.Conv2d, x: Tensor, *, valid: bool = False) -> Tensor:
    """``conv(x)``, arranged so that a reduced-precision autocast loses little.

    ``valid``: ``x`` is already padded (a strip, see :class:`Conv`): no padding here.

    In float32 this is exactly ``conv(x)``. Under bf16/fp16 autocast, the per-channel mean
    ``mu`` of ``x`` is taken out before rounding, the convolution runs without its bias,
    and ``bias + W·mu`` is added back in float32. That is exact algebra: reflection
    padding of a constant map is constant, so ``conv(mu)`` is one number per output
    channel. Rounding then only touches the small centred values, not the large offsets
    the features carry (bf16 keeps 8 significant bits), which lifts bf16 output from
    ~34 dB to over 45 dB PSNR on dark video frames (measured on the shared clips).

    Returns float32.
    """
    run = (lambda t, w, b: F.conv2d(t, w, b, stride=conv.stride, groups=conv.groups)) if valid else conv._conv_forward
    if not torch.is_autocast_enabled(x.device.type):
        return run(x, conv.weight, conv.bias) if valid else conv(x)  # the module call: its hooks run
    mu = x.float().mean(dim=(2, 3), keepdim=True)
    centred = (x - mu).to(autocast_dtype(x.device.type))  # the cast autocast would make, done now
    y = run(centred, conv.weight, None)
    del centred
    return y.float().add_(_centring_shift(conv, mu))


def _centring_shift(conv: nn.Conv2d, mu: Tensor) -> Tensor:
    """``bias + W·mu``, (N, out, 1, 1) float32: the conv of the constant map ``mu`` (N, in, 1, 1)."""
    taps = conv.weight.float().sum(dim=(2, 3))  # (out, in): W applied to a constant map
    # In float32 (autocast would round a matmul to bf16: per strip, the error is not a
    # constant the next FeatMod removes) and as a product and a sum, not a matmul, so the
    # result does not depend on the number of threads (a Ray worker's output is bit for bit
    # a local run's).
    shift = (mu.flatten(1)[:, None, :] * taps).sum(dim=2) + conv.bias.float()
    return shift[:, :, None, None]


@dataclasses.dataclass(frozen=True)
class Conv:
    """A reflection-padded conv (optionally followed by ReLU) as a strip op."""

    conv: nn.Conv2d
    relu: bool
    phases: int = 1  # > 1: compute as a W-polyphase conv (stride 1 only; see _phased_conv)
    built: tuple[Tensor, Tensor | None] | None = None  # polyphase or reordered (weight, bias), once per pass
    centred: bool = False  # through centred_conv (the quarter-resolution blocks under autocast)
    blocks_out: int = 1  # > 1: outputs in blocked order (see blocked_order) for the next conv
    blocked_in: bool = False  # the input's channels arrive in blocked order (a summed-groups conv)
    middle: MiddleKernels | None = None  # native kernels of a centred conv (:meth:`centred_raw`)

    def prepared(self) -> Conv:
        """This op with its polyphase or reordered weights built (once, not per strip)."""
        if (self.phases == 1 and self.blocks_out == 1) or self.built is not None:
            return self
        w, b = self.conv.weight, self.conv.bias
        if self.blocks_out > 1:
            order = blocked_order(w.shape[0], self.blocks_out, w.device)
            return dataclasses.replace(self, built=(w[order], None if b is None else b[order]))
        w = _phase_weight(w, self.phases).to(memory_format=torch.channels_last)
        b = b.repeat_interleave(self.phases) if b is not None else None
        return dataclasses.replace(self, built=(w, b))

    @property
    def k(self) -> int:
        return self.conv.kernel_size[0]

    @property
    def s(self) -> int:
        return self.conv.stride[0]

    @property
    def p(self) -> int:
        return self.k // 2

    def out_height(self, h: int) -> int:
        return (h + 2 * self.p - self.k) // self.s + 1

    def needs(self, o0: int, o1: int, h: int) -> tuple[int, int]:
        """Input rows [i0, i1) that output rows [o0, o1) read, after reflection."""
        lo, hi = o0 * self.s - self.p, (o1 - 1) * self.s - self.p + self.k - 1
        edge_rows = [_reflect(i, h) for i in (*range(lo, min(0, hi + 1)), *range(max(h, lo), hi + 1))]
        inside = [i for i in (lo, hi) if 0 <= i < h] + ([0] if lo < 0 <= hi else []) + ([h - 1] if lo < h <= hi else [])
        rows = edge_rows + inside
        return min(rows), max(rows) + 1

    def _window(self, x: Tensor, a: int, h: int, o0: int, o1: int) -> Tensor:
        """The padded input window of output rows [o0, o1) (see :meth:`apply`)."""
        return _padded(*self._window_rows(x, a, h, o0, o1), self.conv.weight)

    def _window_rows(self, x: Tensor, a: int, h: int, o0: int, o1: int) -> tuple[Tensor, tuple[int, int, int, int]]:
        """The rows of ``x`` the window holds, and its reflection padding (left, right, top, bottom)."""
        p = self.p
        lo = o0 * self.s - p
        n = (o1 - 1 - o0) * self.s + self.k
        top, bottom = max(0, -lo), max(0, lo + n - h)  # rows past the frame's edges
        return x.narrow(2, max(lo, 0) - a, n - top - bottom), (p, p, top, bottom)

    def apply(self, x: Tensor, a: int, h: int, o0: int, o1: int) -> Tensor:
        """Output rows [o0, o1) from ``x`` = input rows [a, a + len) of a height-``h`` map."""
        c = self.conv
        if _summed_groups(c):
            return self.summed(x, a, h, o0, o1)
        rows = self._window(x, a, h, o0, o1)
        if self.centred:
            y = centred_conv(c, rows, valid=True)
        elif self.phases > 1:
            weight, bias = self.prepared().built
            y = _phased_conv(rows, weight, bias, c.weight.shape, self.phases)
        else:
            weight, bias = self.prepared().built if self.blocks_out > 1 else (c.weight, c.bias)
            y = F.conv2d(rows, weight, bias, stride=c.stride, padding=0, groups=c.groups)
        return F.relu(y) if self.relu else y

    def centred_raw(self, x: Tensor, a: int, h: int, o0: int, o1: int) -> tuple[Tensor, Tensor] | None:
        """:func:`centred_conv` of the window with its input centred, rounded and padded in one
        native pass (:attr:`MiddleKernels.centre_pad`; the mean is the unpadded rows', which
        centres as exactly): the raw output (reduced precision, no bias) and the float32
        ``bias + W·mu`` (N, out, 1, 1) that completes it; None where the native centring does not apply."""
        got = None if self.middle is None else self.middle.centre_pad(*self._window_rows(x, a, h, o0, o1))
        if got is None:
            return None
        rows, mu = got
        y = F.conv2d(rows, self.conv.weight, None, stride=self.conv.stride, groups=self.conv.groups)
        return y, _centring_shift(self.conv, mu)

    def summed(self, x: Tensor, a: int, h: int, o0: int, o1: int,
               before: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """:meth:`apply` for a :func:`_summed_groups` conv (the decoder's 64->32 and 32->16,
        two inputs per group): one depthwise conv per input of a group, summed. Input ``k``
        of every group is the channel slice ``k::per``, or block ``k`` with ``blocked_in``
        (:func:`blocked_order`). Exact algebra, in a different order of additions.

        oneDNN runs a grouped conv with two inputs per group on a generic path and true
        depthwise convs on a fast one: 1.5-4x less time for the layer (measured at 1080p).
        ``before`` maps each block's slice of ``x`` to this conv's input (an upsampling,
        :class:`UpConv`), so that compiled code never reads an interleaved slice.
        """
        c = self.conv
        per, g = c.in_channels // c.groups, c.groups
        y: Tensor | None = None
        for k in range(per):
            part = x[:, k * g:(k + 1) * g] if self.blocked_in else x[:, k::per]
            rows = self._window(part if before is None else before(part), a, h, o0, o1)
            z = F.conv2d(rows, c.weight[:, k:k + 1], c.bias if k == 0 else None, stride=c.stride, groups=g)
            y = z if y is None else y.add_(z)
        return F.relu(y) if self.relu else y


def blocked_order(channels: int, per: int, device: torch.device | None = None) -> Tensor:
    """Channel order that puts input ``k`` of every ``per``-input group in block ``k``.

    ``x[:, blocked_order(C, per)]`` has channel ``k*G + g`` = channel ``g*per + k`` of ``x``
    (``G = C // per`` groups), so each block is a plain channel range: in NHWC memory a
    run of ``G`` contiguous values per pixel, which compiled kernels read vectorised (the
    interleaved slice ``k::per`` is read an element at a time).
    """
    return torch.arange(channels, device=device).view(channels // per, per).T.flatten()


def _reflected(rows: Tensor, dim: int, before: int, after: int) -> Tensor:
    """``rows`` reflection-padded along ``dim``, as a concatenation of mirrored slices
    (the same values as ``F.pad(mode="reflect")``; compiled, this stays a plain copy where
    F.pad's index arithmetic, fused with a bilinear upsampling, ran 5-20x slower)."""
    if not before and not after:
        return rows
    n = rows.shape[dim]
    parts = [rows.narrow(dim, 1, before).flip(dim)] if before else []
    parts.append(rows)
    if after:
        parts.append(rows.narrow(dim, n - 1 - after, after).flip(dim))
    return torch.cat(parts, dim)


def _padded(rows: Tensor, pad: tuple[int, int, int, int], weight: Tensor) -> Tensor:
    """``rows`` reflection-padded (one copy pads W, and H where a strip meets the frame's
    edge), in the memory format of ``weight`` (an NCHW frame goes NHWC strip by strip)."""
    left, right, top, bottom = pad
    rows = _reflected(_reflected(rows, 3, left, right), 2, top, bottom)
    if weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous():
        rows = rows.contiguous(memory_format=torch.channels_last)
    return rows


def _summed_groups(conv: nn.Conv2d) -> bool:
    """A grouped conv whose every group reads several inputs and writes one output."""
    return 1 < conv.groups == conv.out_channels < conv.in_channels


def _phase_weight(w: Tensor, phases: int) -> Tensor:
    """Weights of the W-polyphase form of a stride-1 conv (see :func:`_phased_conv`).

    ``out[o*P + r, c*P + s, i, t] = w[o, c, i, P*t + s - r]`` (zero outside the kernel);
    built by gathering, without in-place writes, so it also traces under torch.compile.
    """
    o, c, k, kw = w.shape
    taps = math.ceil((phases - 1 + kw) / phases)
    padded = F.pad(w, (phases - 1, phases * taps - kw))
    r = torch.arange(phases, device=w.device).view(phases, 1, 1)  # made on the device: no host copy
    s = torch.arange(phases, device=w.device).view(1, phases, 1)
    t = torch.arange(taps, device=w.device).view(1, 1, taps)
    idx = phases * t + s - r + phases - 1  # (r, s, t) -> column of ``padded``
    gathered = padded[..., idx]  # (o, c, k, r, s, t)
    return gathered.permute(0, 3, 1, 4, 2, 5).reshape(o * phases, c * phases, k, taps)


def _phased_conv(x: Tensor, weight: Tensor, bias: Tensor | None, shape: torch.Size, phases: int) -> Tensor:
    """A valid stride-1 conv computed on ``phases`` interleaved column phases at once.

    Output column ``phases*q + r`` becomes channel ``r`` of column ``q``, so a conv with 3
    output channels (the 9x9 RGB output layer, which oneDNN pads to 16 channels
    internally) becomes one with 12 outputs and 4x the inputs over a quarter of the
    width: the same sums, ~1.8x faster (measured). Exact algebra; float rounding order
    differs from the direct conv. ``weight, bias`` come from :meth:`Conv.prepared`;
    ``shape`` is the original weight's (out, in, kh, kw).
    """
    n, c, h, wp = x.shape
    o, _, kh, kw = shape
    width = wp - kw + 1
    q = math.ceil(wp / phases)
    if q * phases != wp:
        x = F.pad(x, (0, q * phases - wp))
    xs = x.reshape(n, c, h, q, phases).permute(0, 1, 4, 2, 3).reshape(n, c * phases, h, q)
    if x.is_contiguous(memory_format=torch.channels_last):
        xs = xs.contiguous(memory_format=torch.channels_last)
    y = F.conv2d(xs, weight, bias)
    qo = y.shape[-1]
    y = y.reshape(n, o, phases, h - kh + 1, qo).permute(0, 1, 3, 4, 2)
    return y.reshape(n, o, y.shape[2], qo * phases)[..., :width]


@dataclasses.dataclass(frozen=True)
class Upsample2:
    """Bilinear x2 upsampling (align_corners=False) as a strip op."""

    def out_height(self, h: int) -> int:
        return 2 * h

    def needs(self, o0: int, o1: int, h: int) -> tuple[int, int]:
        first = max(0, math.floor((o0 + 0.5) / 2 - 0.5))
        last = min(h - 1, math.floor((o1 - 1 + 0.5) / 2 - 0.5) + 1)
        return first, last + 1

    def apply(self, x: Tensor, a: int, h: int, o0: int, o1: int) -> Tensor:
        up = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return up.narrow(2, o0 - 2 * a, o1 - o0)


@dataclasses.dataclass(frozen=True)
class UpConv:
    """:class:`Upsample2` followed by a summed-groups :class:`Conv`, one input block at a
    time: each block of channels is upsampled, padded and convolved on its own, so no
    kernel reads an interleaved channel slice of the upsampled map (compiled, such reads
    made the upsampling 2-3x slower; measured)."""

    conv: Conv
    up_dw: Callable[..., Tensor | None] | None = None  # the fused kernel (:attr:`.kernels.StripKernels.up_dw`)

    def out_height(self, h: int) -> int:
        return self.conv.out_height(2 * h)

    def needs(self, o0: int, o1: int, h: int) -> tuple[int, int]:
        return Upsample2().needs(*self.conv.needs(o0, o1, 2 * h), h)

    def apply(self, x: Tensor, a: int, h: int, o0: int, o1: int) -> Tensor:
        if self.up_dw is not None:
            out = self.up_dw(x, self.conv.conv, a, h, o0, o1, blocked=self.conv.blocked_in, relu=self.conv.relu)
            if out is not None:
                return out
        m0, m1 = self.conv.needs(o0, o1, 2 * h)
        return self.conv.summed(x, m0, 2 * h, o0, o1, before=lambda part: Upsample2().apply(part, a, h, m0, m1))


def _reflect(i: int, h: int) -> int:
    """Row ``i`` of a reflection-padded map of height ``h`` (one reflection is enough here)."""
    if i < 0:
        return -i
    if i >= h:
        return 2 * (h - 1) - i
    return i


Op = Conv | Upsample2 | UpConv
