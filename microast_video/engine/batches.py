"""Frames grouped into batches for the device, and batches kept in flight in order."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from ..core.frame import Frame

H = TypeVar("H")


class PaddedBatch(list):
    """A batch whose last frame is repeated up to the batch size; only the first ``real`` are kept."""

    real: int = 0


def padded(batches: Iterable[list[Frame]], size: int) -> Iterator[list[Frame]]:
    """Every batch at ``size`` frames: a short one (the last) gets copies of its last frame, so a
    compiled graph (one static shape) runs it as it is, instead of compiling a second time."""
    for batch in batches:
        if len(batch) == size:
            yield batch
            continue
        full = PaddedBatch(batch + [batch[-1]] * (size - len(batch)))
        full.real = len(batch)
        yield full


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


def pipelined(batches: Iterable[list[Frame]], submit: Callable[[list[Frame]], H],
              collect: Callable[[H], list[Frame]], depth: int) -> Iterator[Frame]:
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
