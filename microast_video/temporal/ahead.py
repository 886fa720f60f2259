"""The temporal stage's flow computed ahead: the flow between consecutive small grey *source*
frames does not depend on the output, so a pool of CPU threads computes it a few frames
ahead while the blend (the only sequential part) runs on the job's device."""

from __future__ import annotations

import collections
import concurrent.futures as cf
import dataclasses
import threading
from collections.abc import Callable, Iterator

import numpy as np

from ..core.frame import Frame

#: (flow t -> t-1 in small pixels (h, w, 2) float32, reliable mask (h, w) float32, scene cut?)
FlowResult = tuple[np.ndarray, np.ndarray, bool]


@dataclasses.dataclass(frozen=True)
class Ahead:
    """A frame's small grey copy, the previous frame's (None for the first), and the flow
    between them being computed (None where there is none to compute)."""

    gray: np.ndarray
    prev_gray: np.ndarray | None
    flow: cf.Future[FlowResult] | None


def computed_ahead(frames: Iterator[Frame], gray_of: Callable[[Frame], np.ndarray],
                   new_flow: Callable[[], Callable[[np.ndarray, np.ndarray], FlowResult]], threads: int
                   ) -> Iterator[tuple[Frame, Ahead | None]]:
    """Each frame with its :class:`Ahead`, the flows computed on ``threads`` threads (each with
    its own flow object from ``new_flow``), at most ``threads + 1`` frames held ahead; with
    ``threads`` < 1, each frame with None (the stage computes its flow itself)."""
    if threads < 1:
        yield from ((frame, None) for frame in frames)
        return
    local = threading.local()

    def flow(prev: np.ndarray, gray: np.ndarray) -> FlowResult:
        if not hasattr(local, "flow"):
            local.flow = new_flow()
        return local.flow(prev, gray)

    with cf.ThreadPoolExecutor(threads, thread_name_prefix="flow") as pool:
        pending: collections.deque[tuple[Frame, Ahead]] = collections.deque()
        prev: np.ndarray | None = None
        for frame in frames:
            gray = gray_of(frame)
            same = prev is not None and prev.shape == gray.shape
            pending.append((frame, Ahead(gray, prev, pool.submit(flow, prev, gray) if same else None)))
            prev = gray
            if len(pending) > threads:
                yield pending.popleft()
        while pending:
            yield pending.popleft()
