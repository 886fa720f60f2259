"""Stage machinery: a chain of stages in threads joined by bounded queues.

A :class:`Stage` is one job in the flow a frame takes (decode, engine, temporal,
encode...): a function from an iterator of :class:`~microast_video.core.frame.Frame` s to an
iterator of frames. The first stage ignores its input (it is the source); the frames the
last stage yields are done (written). :func:`run_chain` runs each stage in its own thread
with a bounded queue between neighbours, so memory does not grow with the clip's length,
forwards the first error to the caller and stops the rest promptly, calls every stage's
``abort`` (ffmpeg is killed rather than waited for), and charges each stage's busy time
(time inside it, not waiting for its input) to :class:`StageTimes`.

Signals: :func:`terminate_on_signals` turns SIGTERM, SIGHUP and SIGQUIT into
:class:`~microast_video.core.errors.Terminated` in the main thread, as Ctrl-C is
KeyboardInterrupt, so every interruption cleans up the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .errors import Terminated
from .frame import Frame

#: Signals that end a run cleanly (nothing left at the output), like Ctrl-C.
TERMINATING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, name))


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


def install_signal_handlers() -> None:
    """Turn :data:`TERMINATING` signals into :class:`Terminated` for the whole process (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        for sig in TERMINATING:
            signal.signal(sig, _raise_terminated)


@contextlib.contextmanager
def terminate_on_signals() -> Iterator[None]:
    """Within the block, :data:`TERMINATING` signals raise :class:`Terminated`; restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in TERMINATING}
    try:
        install_signal_handlers()
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclasses.dataclass
class StageTimes:
    """Busy seconds per stage, and per-frame completion times (seconds since ``t0``)."""

    t0: float = dataclasses.field(default_factory=time.perf_counter)
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    per_frame: dict[int, dict[str, float]] = dataclasses.field(default_factory=dict)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def add(self, stage: str, seconds: float, indices: Sequence[int] = (), done_at: float | None = None) -> None:
        """Charge ``seconds`` of work to ``stage``; stamp frames ``indices`` as done with it."""
        at = (time.perf_counter() if done_at is None else done_at) - self.t0
        with self.lock:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
            for i in indices:
                self.per_frame.setdefault(i, {})[stage] = round(at, 6)

    def stamp(self, index: int, key: str, value: float) -> None:
        """Attach a value (such as the frame's presentation time) to frame ``index``."""
        with self.lock:
            self.per_frame.setdefault(index, {})[key] = value


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of the chain.

    Attributes:
        name: what its busy time is reported as.
        run: frames in -> frames out (the first stage gets an empty iterator).
        timed: charge the time spent inside ``run`` to ``name``; False for a stage that
            reports finer parts itself (the engine: upload, network, download).
        abort: called from the supervising thread as soon as any stage fails or the run
            is interrupted (kill a child process a blocked call waits on).
        in_caller: run in the calling thread instead of a thread of its own (at most one
            stage). For the network: glibc gives every other thread its own malloc arena,
            where the allocator tuning of the fast CPU path does not hold, and the network
            ran 2.2x slower there (measured on our 2-core CPU, 640x360, batch 8).
    """

    name: str
    run: Callable[[Iterator[Frame]], Iterator[Frame]]
    timed: bool = True
    abort: Callable[[], None] | None = None
    in_caller: bool = False


class Stopped(Exception):
    """A stage noticed that another one failed (or the run was interrupted)."""


_END = object()
_POLL_S = 0.05


class _Chain:
    def __init__(self, stages: Sequence[Stage], queue_frames: int, times: StageTimes,
                 on_output: Callable[[Frame], None]) -> None:
        self.stages, self.times, self.on_output = list(stages), times, on_output
        self.queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=queue_frames) for _ in self.stages[1:]]
        self.counts = {s.name: 0 for s in self.stages}
        self.waited = [0.0] * len(self.stages)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def fail(self, err: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = err
        self.stop.set()

    def put(self, q: queue.Queue[Any], item: Any) -> None:
        while True:
            if self.stop.is_set():
                raise Stopped
            try:
                q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def inputs(self, i: int) -> Iterator[Frame]:
        """Frames for stage ``i`` from the queue before it; time blocked there is not busy time."""
        q = self.queues[i - 1]
        while True:
            t = time.perf_counter()
            while True:
                if self.stop.is_set():
                    raise Stopped
                try:
                    item = q.get(timeout=_POLL_S)
                    break
                except queue.Empty:
                    continue
            self.waited[i] += time.perf_counter() - t
            if item is _END:
                return
            yield item

    def work(self, i: int) -> None:
        stage, last = self.stages[i], i == len(self.stages) - 1
        out = stage.run(iter(()) if i == 0 else self.inputs(i))
        try:
            while True:
                t, waited = time.perf_counter(), self.waited[i]
                frame = next(out, _END)
                if stage.timed:
                    busy = time.perf_counter() - t - (self.waited[i] - waited)
                    self.times.add(stage.name, busy, () if frame is _END else (frame.index,))
                if frame is _END:
                    break
                self.counts[stage.name] += 1
                if last:
                    self.on_output(frame)
                else:
                    self.put(self.queues[i], frame)
            if not last:
                self.put(self.queues[i], _END)
        finally:
            close = getattr(out, "close", None)
            if close is not None:
                close()

    def spawn(self, i: int) -> None:
        def guard() -> None:
            try:
                self.work(i)
            except Stopped:
                pass
            except BaseException as err:  # noqa: BLE001 - handed to the supervising thread
                self.fail(err)

        thread = threading.Thread(target=guard, name=f"stage-{self.stages[i].name}", daemon=True)
        self.threads.append(thread)
        thread.start()

    def join(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self.threads:
            while thread.is_alive():
                if deadline is not None and time.monotonic() > deadline:
                    return
                if timeout is None and self.stop.is_set():
                    self.abort()  # a failed stage: unblock the others now
                    timeout, deadline = 10.0, time.monotonic() + 10.0
                thread.join(0.1)  # short waits keep the main thread responsive to signals

    def abort(self) -> None:
        for stage in self.stages:
            if stage.abort is not None:
                stage.abort()


def run_chain(stages: Sequence[Stage], *, queue_frames: int, times: StageTimes,
              on_output: Callable[[Frame], None] = lambda frame: None) -> dict[str, int]:
    """Run ``stages`` to the end; returns how many frames each stage yielded.

    Raises the first error of any stage (after stopping and joining the others), or the
    KeyboardInterrupt / :class:`Terminated` that reached the calling thread.
    """
    if not stages:
        raise ValueError("a chain needs at least one stage")
    if queue_frames < 1:
        raise ValueError(f"queues must hold at least one frame, got {queue_frames = }")
    in_caller = [i for i, s in enumerate(stages) if s.in_caller]
    if len(in_caller) > 1:
        raise ValueError(f"at most one stage runs in the calling thread, got {len(in_caller)}")
    chain = _Chain(stages, queue_frames, times, on_output)
    try:
        for i in range(len(chain.stages)):
            if i not in in_caller:
                chain.spawn(i)
        for i in in_caller:
            try:
                chain.work(i)
            except Stopped:
                pass
            except Exception as err:  # noqa: BLE001 - the same path as a thread's error
                chain.fail(err)
        chain.join()
    except BaseException as err:
        chain.fail(err)
        chain.abort()
        chain.join(timeout=10)
        raise
    if chain.error is not None:
        chain.abort()
        raise chain.error
    return dict(chain.counts)
