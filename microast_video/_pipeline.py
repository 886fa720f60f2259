"""The video job: decode -> style signals -> engine -> encode, as threads joined by bounded queues.

Phases of :func:`run_video`:

1. check everything up front (input, styles, output path, codec and container);
2. load the network and compute the style signals once;
3. run the stages: a decode thread (PyAV, FFmpeg's own frame threads) feeds a bounded
   queue; the calling thread batches frames through the engine; an encode thread pipes
   them, in order, into ffmpeg, which writes a temporary file beside the target;
4. on success rename the temporary file onto the target and write the report.

Any stage's exception stops the others promptly (every queue wait checks a shared stop
flag); errors, Ctrl-C and SIGTERM kill ffmpeg and remove the temporary file, so nothing
is ever left at the target path.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ._color import MATRICES
from ._decode import VideoInfo, decode_frames, probe
from ._device import resolve_device, resolve_precision
from ._encode import (CODECS, CONTAINERS, SCALE_MATRIX, EncodePlan, EncodeSettings, FFmpegWriter, chroma_alignment,
                      ffmpeg_exe, plan_encode)
from ._engine import FrameEngine, StageTimes, Stylizer, fast_settings
from ._errors import InputError, OutputError, Terminated
from ._options import Codec, CompileMode, Precision
from ._paths import check_output
from ._style import check_style_source, job_signals
from ._transport import RGBTransport, YUV420Transport
from .models import MicroAST


@dataclasses.dataclass(frozen=True)
class VideoJob:
    """One video to stylize, with every option of ``microast-video INPUT``."""

    input: Path
    styles: tuple[Path, ...] = ()
    output: Path | None = None
    style_weights: tuple[float, ...] | None = None
    signals: Path | None = None
    style_size: int | None = None
    alpha: float = 1.0
    preserve_color: bool = False
    device: str = "auto"
    precision: Precision = Precision.auto
    batch_size: int | None = None  # None: by frame size (see auto_batch_size)
    encode: EncodeSettings = EncodeSettings()
    start: float = 0.0
    duration: float | None = None
    height: int | None = None
    overwrite: bool = False
    report: Path | None = None
    weights: Path | None = None
    progress: bool = True
    queue_frames: int | None = None  # None: about 100 MB of frames per queue, 2 to 8 frames
    compile: CompileMode = CompileMode.auto
    transport: str = "auto"  # "rgb", "yuv420" (4:2:0 planes, colour converted on the device) or "auto"
    freeze: bool | None = None  # with compile: fold weights (None: only for very long jobs)


def choose_transport(job: VideoJob, info: VideoInfo, plan: EncodePlan, device: torch.device
                     ) -> tuple[RGBTransport | YUV420Transport, str | None]:
    """How frames travel to the device, and a note when a requested 4:2:0 transport can't be used.

    ``auto`` ships 4:2:0 planes to a CUDA device (1.5 instead of 3 bytes per pixel each
    way, colour converted on the GPU) whenever the clip allows it, RGB otherwise.
    """
    if job.transport not in ("auto", "rgb", "yuv420"):
        raise ValueError(f"--transport must be auto, rgb or yuv420, got {job.transport!r}")
    w, h = plan.size
    why = None
    if plan.pad != (0, 0) or w % 2 or h % 2:
        why = "the frame size is odd"
    elif info.matrix not in MATRICES or SCALE_MATRIX.get(plan.matrix) not in MATRICES or plan.matrix == "bt2020c":
        why = f"the colour matrix ({info.matrix} in, {plan.matrix} out) is not BT.601/709/2020"
    elif info.rotation:
        why = "the clip is rotated (turning 4:2:0 planes moves the chroma siting)"
    elif chroma_alignment(plan.pix_fmt) != (2, 2):
        why = f"the output pixel format {plan.pix_fmt} is not 4:2:0"
    wanted = job.transport == "yuv420" or (job.transport == "auto" and device.type == "cuda")
    if not wanted or why:
        note = f"4:2:0 transport not used: {why}; frames travel as RGB" if job.transport == "yuv420" else None
        return RGBTransport(), note
    return YUV420Transport(in_matrix=info.matrix, out_matrix=SCALE_MATRIX[plan.matrix], in_full=info.full_range,
                           out_full=plan.color_range == "pc", bits=10 if plan.deep else 8), None


def auto_batch_size(width: int, height: int) -> int:
    """Frames per batch: about two megapixels per batch (1 at 1080p and above, 8 at 360p).

    Strips already keep the CPU busy within a frame, so large frames gain nothing from
    batching and would only hold more memory; small frames amortise per-op overhead.
    """
    return max(1, min(8, (2_100_000 // max(1, width * height))))


def default_output(input_path: Path, codec: Codec) -> Path:
    """``INPUT_stylized.EXT`` beside the input; EXT is the input's if it can hold ``codec``."""
    ext = input_path.suffix.lower()
    if CONTAINERS.get(ext) not in CODECS[codec].containers:
        ext = CODECS[codec].default_ext
    return input_path.with_name(f"{input_path.stem}_stylized{ext}")


class _Stopped(Exception):
    """A stage noticed that another one failed (or the job was interrupted)."""


_END = object()


class _Stages:
    """Threads, bounded queues and a shared stop flag; the first error wins."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def spawn(self, name: str, fn: Callable[[], None]) -> None:
        def guard() -> None:
            try:
                fn()
            except _Stopped:
                pass
            except BaseException as err:  # noqa: BLE001 - handed to the main thread
                self.fail(err)

        thread = threading.Thread(target=guard, name=name, daemon=True)
        self.threads.append(thread)
        thread.start()

    def fail(self, err: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = err
        self.stop.set()

    def put(self, q: queue.Queue[Any], item: Any) -> None:
        while True:
            if self.stop.is_set():
                raise _Stopped
            try:
                q.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def items(self, q: queue.Queue[Any]) -> Iterator[Any]:
        while True:
            if self.stop.is_set():
                raise _Stopped
            try:
                item = q.get(timeout=0.05)
            except queue.Empty:
                continue
            if item is _END:
                return
            yield item

    def join(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self.threads:
            while thread.is_alive():
                if deadline is not None and time.monotonic() > deadline:
                    return
                thread.join(0.1)  # short waits keep the main thread responsive to signals


def _temp_path(output: Path) -> Path:
    return output.with_name(f".{output.name}.{os.getpid()}.part")


def _expected_frames(info: VideoInfo, start: float, duration: float | None) -> int | None:
    if info.duration is None:
        return None if duration is None else round(duration * info.frame_rate)
    left = max(0.0, float(info.duration) - start)
    seconds = left if duration is None else min(left, duration)
    return max(0, round(seconds * info.frame_rate))


def _versions(exe: str) -> dict[str, str]:
    import av
    import numpy as np

    from . import __version__

    return {
        "microast_video": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "av": av.__version__,
        "ffmpeg_libs": str(getattr(av, "ffmpeg_version_info", "")),
        "ffmpeg_program": exe,
        "numpy": np.__version__,
    }


def _install_sigterm() -> Callable[[], None]:
    """Turn SIGTERM into :class:`Terminated` in the main thread; returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: object) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


def run_video(job: VideoJob, *, log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> dict[str, Any]:
    """Stylize a video file; returns the run's report (also written to ``job.report``).

    Raises:
        InputError, OutputError, WeightsError, DeviceError: user-fixable problems (one line).
        ValueError: bad option values.
        KeyboardInterrupt, Terminated: the run was interrupted; nothing is left behind.
    """
    # 1. Checks up front: nothing is computed before the whole job is known to make sense.
    if job.batch_size is not None and job.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {job.batch_size}")
    if job.start < 0 or (job.duration is not None and job.duration <= 0):
        raise ValueError(f"--start must be >= 0 and --duration > 0, got {job.start = }, {job.duration = }")
    check_style_source(job.styles, job.signals)
    for style in job.styles:
        if not style.is_file():
            raise InputError(f"style image {style}: file not found")
    info = probe(job.input)
    if info.duration is not None and job.start >= float(info.duration):
        raise ValueError(f"--start {job.start} s is past the end of {job.input} ({float(info.duration):.3f} s)")
    output = job.output or default_output(job.input, job.encode.codec)
    check_output(output, (job.input, *job.styles, job.signals), overwrite=job.overwrite)
    if job.report is not None and not job.report.parent.is_dir():
        raise OutputError(f"report {job.report}: folder {job.report.parent} does not exist")
    exe = ffmpeg_exe()
    plan = plan_encode(info, output, job.encode, exe=exe, height=job.height)
    for note in plan.notes:
        log(f"microast-video: note: {note}")
    device = resolve_device(job.device)
    dtype = resolve_precision(job.precision, device)
    transport, transport_note = choose_transport(job, info, plan, device)
    if transport_note:
        log(f"microast-video: note: {transport_note}")

    # 2. The network and the style signals, once per job.
    model = MicroAST.from_pretrained(job.weights, device=device)
    signals = job_signals(model, job.styles, job.style_weights, job.signals, job.style_size)
    color_matrix = info.matrix if info.matrix != "gbr" else "bt709"
    expected = _expected_frames(info, job.start, job.duration)
    settings = fast_settings(device, dtype, plan.size[1], plan.size[0], frames=expected)
    if job.compile is not CompileMode.auto:
        settings["compile"] = job.compile is CompileMode.on
    if job.freeze is not None:
        settings["freeze"] = job.freeze
    settings["freeze"] = settings["freeze"] and settings["compile"]
    stylizer = Stylizer(model, signals, dtype=dtype, alpha=job.alpha,
                        color_matrix=color_matrix if job.preserve_color else None, **settings)

    # 3. The stages.
    times = StageTimes()
    batch_size = job.batch_size or auto_batch_size(*plan.size)
    engine = FrameEngine(stylizer, batch_size, times, transport)
    tmp = _temp_path(output)
    stages = _Stages()
    frame_bytes = plan.size[0] * plan.size[1] * 3 * (2 if plan.deep else 1)
    queue_frames = max(job.queue_frames or min(8, max(2, 100_000_000 // frame_bytes)), batch_size)
    decoded: queue.Queue[Any] = queue.Queue(maxsize=queue_frames)
    stylized: queue.Queue[Any] = queue.Queue(maxsize=queue_frames)
    counts = {"decoded": 0, "encoded": 0}
    first_frame_at: list[float] = []
    bar = tqdm(total=expected, unit="frame", desc=job.input.name, disable=not job.progress,
               file=sys.stderr, dynamic_ncols=True, leave=False)
    writer = FFmpegWriter(info, plan, tmp, exe=exe, start=job.start, duration=job.duration, label=output)

    def decode_stage() -> None:
        frames = decode_frames(info, start=job.start, duration=job.duration, size=plan.size, deep=plan.deep,
                               planes=isinstance(transport, YUV420Transport))
        try:
            while True:
                t = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                times.add("decode", time.perf_counter() - t, [frame.index])
                counts["decoded"] += 1
                stages.put(decoded, frame)
        finally:
            frames.close()
        stages.put(decoded, _END)

    def encode_stage() -> None:
        for frame in stages.items(stylized):
            if frame.index != counts["encoded"]:
                raise RuntimeError(f"frame order broken: got frame {frame.index}, expected {counts['encoded']}")
            times.stamp(frame.index, "pts_s", round(frame.seconds, 6))
            t = time.perf_counter()
            writer.write(frame)
            times.add("encode", time.perf_counter() - t, [frame.index])
            if not first_frame_at:
                first_frame_at.append(time.perf_counter() - times.t0)
            counts["encoded"] += 1
            bar.update(1)
        t = time.perf_counter()
        writer.finish()
        times.add("encode", time.perf_counter() - t)

    published = created = False
    restore_sigterm = _install_sigterm()
    try:
        # Created inside the try: an interrupt at any moment from here on removes it.
        try:
            tmp.touch(exist_ok=False)  # fails early on an unwritable folder
        except OSError as err:
            raise OutputError(f"output folder {output.parent}: cannot create a file there ({err.strerror or err})") from err
        created = True
        stages.spawn("decode", decode_stage)
        stages.spawn("encode", encode_stage)
        try:
            for frame in engine.run(stages.items(decoded)):
                stages.put(stylized, frame)
            stages.put(stylized, _END)
        except _Stopped:
            pass
        stages.join()
        if stages.error is not None:
            raise stages.error
        if counts["encoded"] != counts["decoded"]:
            raise RuntimeError(f"{counts['decoded']} frames decoded but {counts['encoded']} encoded")
        if info.frames_listed and job.start == 0 and job.duration is None and counts["decoded"] < info.frames:
            raise InputError(
                f"input {job.input}: truncated or corrupt: the container lists {info.frames} frames "
                f"but only {counts['decoded']} could be decoded"
            )
        # 4. Publish: the target appears only now, complete.
        if output.exists() and not job.overwrite:
            raise OutputError(f"output {output} appeared during the run; pass --overwrite to replace it")
        os.replace(tmp, output)
        published = True
    except BaseException as err:
        stages.fail(err if stages.error is None else stages.error)
        writer.abort()
        stages.join(timeout=10)
        raise
    finally:
        restore_sigterm()
        bar.close()
        if created and not published:
            tmp.unlink(missing_ok=True)

    wall = time.perf_counter() - times.t0
    n = counts["encoded"]
    report: dict[str, Any] = {
        "input": str(job.input),
        "output": str(output),
        "frames": n,
        "wall_seconds": round(wall, 4),
        "fps": round(n / wall, 4) if wall > 0 else None,
        "time_to_first_frame_s": round(first_frame_at[0], 4) if first_frame_at else None,
        "stages": {k: round(v, 4) for k, v in times.seconds.items()},
        "device": str(device),
        "precision": str(dtype).removeprefix("torch."),
        "batch_size": batch_size,
        "engine": {**settings, "transport": transport.name},
        "compile_seconds": None if stylizer.compile_seconds is None else round(stylizer.compile_seconds, 3),
        "input_resolution": list(info.upright_size),
        "output_resolution": list(plan.size),
        "padding": list(plan.pad),
        "codec": job.encode.codec.value,
        "encoder": plan.encoder,
        "pix_fmt": plan.pix_fmt,
        "color": {"matrix": plan.matrix, "primaries": plan.color_primaries, "trc": plan.color_trc,
                  "range": plan.color_range},
        "frame_rate": str(info.frame_rate),
        "alpha": job.alpha,
        "styles": [str(s) for s in job.styles] or None,
        "signals": str(job.signals) if job.signals else None,
        "notes": list(plan.notes) + [n for n in (stylizer.compile_note, transport_note) if n],
        "versions": _versions(exe),
        "per_frame": [
            {"index": i, **times.per_frame.get(i, {})} for i in range(n)
        ],
    }
    if job.report is not None:
        _write_json(job.report, report)
    return report


def summary_line(report: dict[str, Any]) -> str:
    """One line: frames, wall time, fps and the busy time of each stage."""
    stages = ", ".join(f"{k} {v:.2f}s" for k, v in report["stages"].items())
    return (f"{report['frames']} frames in {report['wall_seconds']:.2f} s = {report['fps']:.2f} fps "
            f"({report['output_resolution'][0]}x{report['output_resolution'][1]}, {report['device']}, "
            f"{report['precision']}, batch {report['batch_size']}); stage busy time: {stages}")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.part")
    try:
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"report {path}: cannot write ({err.strerror or err})") from err
