"""The engine's CUDA path: pinned host buffers in a ring, copies on side streams ordered by events.

Host frames are copied into a ring of pinned buffers, uploaded on a side stream, run on
the compute stream once an event says the upload is done, and downloaded on a third
stream into pinned memory; the host waits on a batch's own event only when it needs that
batch's frames (never ``torch.cuda.synchronize()``), so the next batch's upload overlaps
the current batch's compute. The pattern is apex's ``data_prefetcher``: pinned memory,
side stream, ``non_blocking`` copies, ``wait_stream`` and ``record_stream``.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from ..core.frame import Frame
from .transport import batch_matte

if TYPE_CHECKING:
    from .stylizer import FrameEngine


def host_tensor(data: np.ndarray) -> Tensor:
    """A numpy frame or batch as a tensor without a copy; uint16 samples travel as int16 bits."""
    return torch.from_numpy(data.view(np.int16) if data.dtype == np.uint16 else data)


def host_array(t: Tensor, deep: bool) -> np.ndarray:
    """The inverse of :func:`host_tensor` for a CPU tensor."""
    a = t.numpy()
    return a.view(np.uint16) if deep else a


@dataclasses.dataclass
class _Slot:
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
    def allocate(cls, shape: tuple[int, ...], dtype: np.dtype, batch: int, device: torch.device) -> _Slot:
        tdtype = torch.int16 if dtype == np.uint16 else torch.uint8
        buf = (batch, *shape)
        return cls(
            shape, dtype,
            torch.empty(buf, dtype=tdtype).pin_memory(),
            torch.empty(buf, dtype=tdtype).pin_memory(),
            torch.cuda.Stream(device), torch.cuda.Stream(device),
            *(torch.cuda.Event(enable_timing=True) for _ in range(4)),
        )


class CudaRunner:
    """Submits batches to the GPU without waiting, and collects each when its frames are needed."""

    #: Batches in flight: the next batch's upload overlaps this one's compute.
    depth = 2

    def __init__(self, engine: FrameEngine) -> None:
        self.engine = engine
        self._ring: list[_Slot] = []
        self._next = 0

    def _slot(self, shape: tuple[int, ...], dtype: np.dtype) -> _Slot:
        """The next pinned buffer pair of the ring (reallocated if the frame shape changed)."""
        e = self.engine
        if len(self._ring) < self.depth + 1:
            self._ring.append(_Slot.allocate(shape, dtype, e.batch_size, e.device))
            slot = self._ring[-1]
        else:
            slot = self._ring[self._next % len(self._ring)]
            slot.done.synchronize()  # its previous batch was collected already; cheap no-op
            if slot.shape != shape or slot.dtype != dtype:
                slot = self._ring[self._next % len(self._ring)] = _Slot.allocate(shape, dtype, e.batch_size, e.device)
        self._next += 1
        return slot

    def submit(self, batch: list[Frame]) -> tuple[_Slot, list[Frame]]:
        e, n, data0 = self.engine, len(batch), batch[0].data
        slot = self._slot(data0.shape, data0.dtype)
        t = time.perf_counter()
        for i, f in enumerate(batch):  # host copy into pinned memory (the only CPU-side copy)
            slot.host_in[i].copy_(host_tensor(f.data))
        compute = torch.cuda.current_stream(e.device)
        with torch.cuda.stream(slot.upload):
            slot.ev_start.record()
            dev_in = slot.host_in[:n].to(e.device, non_blocking=True)
            slot.ev_uploaded.record()
        compute.wait_stream(slot.upload)
        dev_in.record_stream(compute)  # the allocator must not reuse it before compute ends
        deep = data0.dtype == np.uint16
        # Colour conversion (for 4:2:0 planes) and scaling run here, on the device.

        styled = e.stylizer(e.transport.to_float(dev_in), [f.seconds for f in batch], batch_matte(batch, e.device))
        out = e.transport.from_float(styled, deep).contiguous()
        slot.ev_computed.record(compute)
        slot.download.wait_event(slot.ev_computed)
        with torch.cuda.stream(slot.download):
            out.record_stream(slot.download)
            slot.host_out[:n].copy_(out, non_blocking=True)
            slot.done.record()
        e.times.add("upload", time.perf_counter() - t)  # host-side share; GPU share on collect
        return slot, batch

    def collect(self, handle: tuple[_Slot, list[Frame]]) -> list[Frame]:
        slot, batch = handle
        batch = batch[:getattr(batch, "real", len(batch))]  # the padding of a last batch is dropped
        slot.done.synchronize()  # waits for this batch only, never the whole device
        idx = [f.index for f in batch]
        now = time.perf_counter()
        times = self.engine.times
        times.add("upload", slot.ev_start.elapsed_time(slot.ev_uploaded) / 1000, idx, now)
        times.add("network", slot.ev_uploaded.elapsed_time(slot.ev_computed) / 1000, idx, now)
        times.add("download", slot.ev_computed.elapsed_time(slot.done) / 1000, idx, now)
        host = host_array(slot.host_out[: len(batch)], batch[0].data.dtype == np.uint16)
        keep = self.engine.keep_source
        return [f.with_data(host[i].copy(), f.data if keep else None, keep_matte=keep) for i, f in enumerate(batch)]
