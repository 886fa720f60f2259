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
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclasses.dataclass(frozen=True)
class Conv:
    """A reflection-padded conv (optionally followed by ReLU) as a strip op."""

    conv: nn.Conv2d
    relu: bool

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

    def apply(self, x: Tensor, a: int, h: int, o0: int, o1: int) -> Tensor:
        """Output rows [o0, o1) from ``x`` = input rows [a, a + len) of a height-``h`` map."""
        lo = o0 * self.s - self.p
        n = (o1 - 1 - o0) * self.s + self.k
        if lo >= 0 and lo + n <= h:
            rows = x.narrow(2, lo - a, n)
        else:
            idx = torch.tensor([_reflect(i, h) - a for i in range(lo, lo + n)], device=x.device)
            rows = x.index_select(2, idx)
        if self.p:
            rows = F.pad(rows, (self.p, self.p, 0, 0), mode="reflect")
        c = self.conv
        y = F.conv2d(rows, c.weight, c.bias, stride=c.stride, padding=0, groups=c.groups)
        return F.relu(y) if self.relu else y


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


def _reflect(i: int, h: int) -> int:
    """Row ``i`` of a reflection-padded map of height ``h`` (one reflection is enough here)."""
    if i < 0:
        return -i
    if i >= h:
        return 2 * (h - 1) - i
    return i


Op = Conv | Upsample2


def run_strip(ops: Sequence[Op], x: Tensor, r0: int, r1: int) -> Tensor:
    """Rows [r0, r1) of ``ops`` applied in turn to the whole map ``x`` (N, C, H, W).

    Only the rows each layer needs are computed; the result equals slicing the output of
    whole-map execution (up to float rounding).
    """
    heights = [x.shape[2]]
    for op in ops:
        heights.append(op.out_height(heights[-1]))
    ranges = [(r0, r1)]
    for op, h in zip(reversed(ops), reversed(heights[:-1])):
        ranges.append(op.needs(*ranges[-1], h))
    ranges.reverse()
    a, b = ranges[0]
    cur = x.narrow(2, a, b - a)
    for op, h, (o0, o1) in zip(ops, heights, ranges[1:]):
        cur = op.apply(cur, a, h, o0, o1)
        a = o0
    return cur


def strip_bounds(height: int, rows: int) -> list[tuple[int, int]]:
    """Split ``height`` rows into consecutive strips of about ``rows`` rows (at least 1)."""
    rows = max(1, rows)
    count = max(1, math.ceil(height / rows))
    edges = [round(i * height / count) for i in range(count + 1)]
    return [(edges[i], edges[i + 1]) for i in range(count) if edges[i + 1] > edges[i]]
