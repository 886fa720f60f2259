"""Running strip ops over a map, strip by strip (see :mod:`.strips`): each strip from exactly
the rows it depends on, written into one output map (or in place), never the whole
full-resolution intermediate at once."""

from __future__ import annotations

import collections
import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .strips import Op


def _row_ranges(ops: Sequence[Op], height: int, r0: int, r1: int) -> list[tuple[int, int]]:
    """The rows each layer of ``ops`` computes for output rows [r0, r1) of a height-``height``
    input: the input rows first, the output rows last."""
    heights = [height]
    for op in ops:
        heights.append(op.out_height(heights[-1]))
    ranges = [(r0, r1)]
    for op, h in zip(reversed(ops), reversed(heights[:-1])):
        ranges.append(op.needs(*ranges[-1], h))
    return ranges[::-1]


def run_strip(ops: Sequence[Op], x: Tensor, r0: int, r1: int, prepare: Callable[[Tensor], Tensor] | None = None
              ) -> Tensor:
    """Rows [r0, r1) of ``ops`` applied in turn to the whole map ``x`` (N, C, H, W).

    Only the rows each layer needs are computed; the result equals slicing the output of
    whole-map execution (up to float rounding). ``prepare`` is applied to the rows of ``x``
    the strip reads (e.g. 8-bit samples to float), so ``x`` need not be converted whole.
    """
    h = x.shape[2]
    ranges = _row_ranges(ops, h, r0, r1)
    a, b = ranges[0]
    cur = x.narrow(2, a, b - a)
    if prepare is not None:
        cur = prepare(cur)
    for op, (o0, o1) in zip(ops, ranges[1:]):
        cur = op.apply(cur, a, h, o0, o1)
        h = op.out_height(h)
        a = o0
    return cur


def run_strips(ops: Sequence[Op], x: Tensor, bounds: Sequence[tuple[int, int]], *,
               prepare: Callable[[Tensor], Tensor] | None = None, finish: Callable[[Tensor], Tensor] | None = None,
               memory_format: torch.memory_format | None = None, in_place: bool = False,
               empty: Callable[..., Tensor] = torch.empty) -> Tensor:
    """``ops`` applied to ``x`` strip by strip, written into one preallocated output.

    Equals ``finish(torch.cat([run_strip(ops, x, a, b, prepare) for a, b in bounds], dim=2))``
    without holding every strip and the concatenation at once: ``prepare`` converts each
    strip's input rows and ``finish`` each output strip (e.g. to 8-bit samples), so neither
    conversion ever holds a whole frame. ``memory_format``: the output's (default: the
    strips' own). ``empty``: allocates the output (``torch.empty``'s signature; a
    :class:`KeptMap` reuses one map from call to call).

    ``in_place``: write the output over ``x`` (``ops`` keep its shape and dtype), so only one
    whole map exists: each output strip is held back until no later strip reads the input
    rows it covers (for the middle's short receptive fields, one strip at a time).
    """
    if in_place:
        return _run_strips_in_place(ops, x, bounds, prepare)
    out: Tensor | None = None
    height = bounds[-1][1]
    for a, b in bounds:
        piece = run_strip(ops, x, a, b, prepare)
        if finish is not None:
            piece = finish(piece)
        if out is None:
            layout = memory_format or (torch.channels_last if piece.is_contiguous(memory_format=torch.channels_last)
                                       and not piece.is_contiguous() else torch.contiguous_format)
            out = empty((piece.shape[0], piece.shape[1], height, piece.shape[3]), dtype=piece.dtype,
                        device=piece.device, memory_format=layout)
        out[:, :, a:b].copy_(piece)
        del piece
    return out


def _run_strips_in_place(ops: Sequence[Op], x: Tensor, bounds: Sequence[tuple[int, int]],
                         prepare: Callable[[Tensor], Tensor] | None) -> Tensor:
    """:func:`run_strips` writing over ``x`` (see its ``in_place``)."""
    height = x.shape[2]
    for op in ops:
        height = op.out_height(height)
    if height != x.shape[2] or bounds[-1][1] != height:
        raise ValueError(f"in-place strips need ops that keep the map's height, got {x.shape = }, {height = }")
    # The first input row each strip reads; a finished strip is written once every later one starts below it.
    starts = [_row_ranges(ops, x.shape[2], a, b)[0][0] for a, b in bounds] + [x.shape[2]]
    pending: collections.deque[tuple[int, int, Tensor]] = collections.deque()
    for i, (a, b) in enumerate(bounds):
        piece = run_strip(ops, x, a, b, prepare)
        if piece.dtype != x.dtype or piece.untyped_storage().data_ptr() == x.untyped_storage().data_ptr():
            raise ValueError(f"in-place strips need fresh output strips of the input's dtype, got {piece.dtype = }")
        pending.append((a, b, piece))
        while pending and pending[0][1] <= min(starts[i + 1:]):
            a0, b0, done = pending.popleft()
            x[:, :, a0:b0].copy_(done)
    return x


class KeptMap:
    """One whole map kept from call to call: an ``empty`` for :func:`run_strips` that returns the
    same tensor while the shape, dtype, device and layout stay the same (a new one otherwise).

    The quarter-resolution map of a UHD frame is 133 MB in float32. Allocated afresh for every
    frame, such blocks and the smaller ones between them broke glibc's heap into pieces that
    later blocks did not fit (the heap grew ~1.4x what was in use); kept, it is allocated once.
    The caller must be done with the previous call's map before the next call (one job's
    frames, in turn).
    """

    def __init__(self) -> None:
        self._map: Tensor | None = None

    def __call__(self, shape: Sequence[int], *, dtype: torch.dtype, device: torch.device,
                 memory_format: torch.memory_format = torch.contiguous_format) -> Tensor:
        m = self._map
        if (m is None or tuple(m.shape) != tuple(shape) or m.dtype != dtype or m.device != torch.device(device)
                or not m.is_contiguous(memory_format=memory_format)):
            self._map = m = None  # the old map goes before the new one is made
            m = self._map = torch.empty(tuple(shape), dtype=dtype, device=device, memory_format=memory_format)
        return m


def strip_bounds(height: int, rows: int) -> list[tuple[int, int]]:
    """Split ``height`` rows into consecutive strips of about ``rows`` rows (at least 1)."""
    rows = max(1, rows)
    count = max(1, math.ceil(height / rows))
    edges = [round(i * height / count) for i in range(count + 1)]
    return [(edges[i], edges[i + 1]) for i in range(count) if edges[i + 1] > edges[i]]
