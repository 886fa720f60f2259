"""The video job: decode -> style signals -> engine -> encode, as a chain of stages.

:func:`run_video` runs these phases:

1. **plan**: check everything up front and freeze every decision (:func:`plan_video`);
2. **style**: load the network and compute the style signals once;
3. **stylizer**: apply the engine settings and build the stylizer;
4. **stages**: run the chain (:func:`video_stages`), each stage in its own thread joined
   by bounded queues; ffmpeg writes a temporary file beside the target;
5. **verify**: every decoded frame was encoded, and nothing went missing;
6. **publish**: write the report (side file) and rename the finished video into place.

A new stage (temporal stabilization, a matte...) is a new entry in :func:`video_stages`.
Errors, Ctrl-C, SIGTERM, SIGHUP and SIGQUIT kill ffmpeg and remove the temporary files,
so nothing is ever left at the target path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..colour.ocio import DISPLAY, in_output_space
from ..colour.tonemap import tonemapped
from ..core.errors import InputError, shown
from ..core.frame import Frame
from ..core.options import Network
from ..core.output import AtomicFile, json_bytes, sweep_once, write_bytes
from ..core.stages import Stage, StageTimes, run_chain, terminate_on_signals
from ..engine.device import opencv_threads, side_threads
from ..engine.stylizer import FrameEngine, Stylizer, prepare_runtime
from ..engine.transport import YUV420Transport
from ..media.bars import bars_kept
from ..media.decode import DecodeStats, decode_frames
from ..media.encode import FFmpegWriter
from ..media.frame_files import FrameFiles
from ..media.frame_header import HEADER_FORMATS, sequence_alpha
from ..media.frame_header import available as header_support
from ..media.sequence import output_sequence
from ..media.timecode import frames_before, start_timecode
from ..style.controls import Schedule, at_strength
from ..style.mattes import matted, original_outside
from ..style.networks import load_network, no_signals
from ..style.signals import compute_signals, job_signals
from ..temporal.stabilizer import Stabilizer, new_stabilizer, stabilized
from .chart import chart_png
from .frames import frame_print, frames_done, mark, resumed, sweep_partial
from .plan import JobPlan, VideoJob, early_end_note, frames_keep_alpha, plan_video
from .report import video_report

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def run_video(job: VideoJob, *, log: Log = _stderr) -> dict[str, Any]:
    """Stylize a video file; returns the run's report (also written to ``job.report``).

    Raises:
        InputError, OutputError, WeightsError, DeviceError, OptionError: user-fixable
            problems (one line each).
        KeyboardInterrupt, Terminated: the run was interrupted; nothing is left behind.
    """
    with terminate_on_signals():
        plan = plan_video(job, log=log)                                   # 1. plan
        _sweep(plan, log)
        model = load_network(job.network, weights=job.weights, style_model=job.style_model, device=plan.device,
                             progress=job.progress)
        stylizer = build_stylizer(plan, model)                            # 2. style, 3. stylizer
        stabilizer = new_stabilizer(plan.temporal, plan.device)
        plan, window, skipped = _resume(plan, log)
        if plan.expected_frames is not None and skipped >= plan.expected_frames:  # every frame is there
            report = {"output": str(plan.output), "frames": skipped, "up_to_date": True, "notes": list(plan.notes)}
            if job.report is not None:
                write_bytes(job.report, json_bytes(report), overwrite=job.overwrite, what="report")
            return report
        with _target(plan) as video:
            done = encode_window(plan, stylizer, video.path, stabilizer=stabilizer, window=window)  # 4. stages
            frames, notes = _verify(plan, done.counts, done.stats, skipped)                       # 5. verify
            for note in notes:
                log(f"microast-video: note: {note}")
            report = video_report(plan, stylizer, done.times, frames, time.perf_counter() - done.times.t0,
                                  done.first_frame_at)
            report["notes"] += notes
            report["temporal"] = temporal_report(plan, stabilizer)
            _publish(plan, video, report)                                            # 6. publish
    return report


@dataclasses.dataclass(frozen=True)
class Window:
    """A part of the job's clip, on the clip's own clock (a batch segment); the default is all of it.

    Attributes:
        start, end: seconds from the job's start (``--start``); ``end`` None: to the end.
        warmup: seconds decoded before ``start``, stylized and stabilized, then dropped, so a
            segment's first frames are steady too.
        anchor: the clip's first frame (:func:`~microast_video.media.decode.first_frame_offset`).
        carry: carry audio, subtitles, chapters and metadata (False: a video-only segment).
    """

    start: float = 0.0
    end: float | None = None
    warmup: float = 0.0
    anchor: int | None = None
    carry: bool = True


@dataclasses.dataclass
class Encoded:
    """What encoding a window produced: busy times, frame counts per stage, decode statistics."""

    times: StageTimes
    first_frame_at: float | None
    counts: dict[str, int]
    stats: DecodeStats


def encode_window(plan: JobPlan, stylizer: Stylizer, target: Path | None, *, window: Window = Window(),
                  stabilizer: Stabilizer | None = None, sink: Any = None, boundaries: tuple[float, ...] = (),
                  stats_sink: Any = None) -> Encoded:
    """Run the chain over ``window`` of the job's clip; ffmpeg writes ``target`` (the caller's
    temporary file), or ``sink`` (an object with FFmpegWriter's write/finish/abort) takes the
    frames. ``boundaries``: where the temporal stage hands its state over (batch segments)."""
    job = plan.job
    times, stats = StageTimes(), DecodeStats()
    if stats_sink is not None:
        stats_sink.stats = stats  # the sink's records read the decode's statistics
    first_frame_at: list[float] = []
    bar = tqdm(total=plan.expected_frames if window == Window() else None, unit="frame", desc=job.input.name,
               disable=not job.progress, file=sys.stderr, dynamic_ncols=True, leave=False)

    def done(frame: Frame) -> None:
        if not first_frame_at:
            first_frame_at.append(time.perf_counter() - times.t0)
        bar.update(1)

    try:
        duration = job.duration if window.end is None else window.end - window.start
        writer = sink or frame_writer(plan, target, window, duration)
        with opencv_threads(side_threads(plan.device)):
            counts = run_chain(video_stages(plan, stylizer, times, writer, stats, stabilizer, window, boundaries),
                               queue_frames=plan.queue_frames, times=times, on_output=done)
    finally:
        bar.close()
    return Encoded(times, (first_frame_at or [None])[0], counts, stats)


def frame_writer(plan: JobPlan, target: Path, window: Window, duration: float | None) -> FFmpegWriter | FrameFiles:
    """What writes the frames: OpenImageIO for an OpenEXR or DPX sequence (their headers:
    timecode, frame rate, colour), where it is installed; ffmpeg otherwise."""
    job, info, enc = plan.job, plan.info, plan.encode
    start = job.start + window.start
    out = output_sequence(plan.output) if enc.first_number is not None else None
    if out is None or out.suffix.lower() not in HEADER_FORMATS or not header_support():
        return FFmpegWriter(info, enc, target, exe=plan.exe, start=start, duration=duration, label=plan.output,
                            carry=window.carry)
    rate = info.nominal_rate or info.frame_rate
    space = plan.colour.target if plan.colour is not None and plan.colour.target != DISPLAY else None
    deep_dpx = info.sequence is not None and info.sequence.suffix.lower() == ".dpx" and info.bit_depth in (10, 12)
    alpha = (sequence_alpha(info.sequence, info.sequence.first + frames_before(start, rate))
             if frames_keep_alpha(info, plan.output) else None)
    return FrameFiles(plan.output, enc.first_number, rate=rate, timecode=start_timecode(info.timecode, rate, start),
                      space=space, bits=(info.bit_depth if deep_dpx else 16) if enc.deep else 8, alpha=alpha)


def build_stylizer(plan: JobPlan, model: Any) -> Stylizer:
    """The job's style signals, once (the main style and, with a matte, the background; or each
    keyframe's), then the runtime settings and the stylizer."""
    job = plan.job
    keys = plan.keyframes
    background = schedule = None
    if keys is not None and keys.style_paths:
        cache: dict[Path, Any] = {}
        for path in keys.style_paths:
            cache.setdefault(path, compute_signals(model, [path], style_size=job.style_size, max_pixels=job.max_pixels))
        styles = tuple(cache[p] for p in keys.style_paths)
        signals = styles[0]
        if plan.matte is not None and job.styles:  # the keyframed look inside the matte, this style outside
            background = compute_signals(model, job.styles, style_size=job.style_size, max_pixels=job.max_pixels)
    elif Network(job.network) is Network.johnson:  # its style is built in
        styles, signals = (), no_signals()
    else:
        styles = ()
        main = job.styles[:1] if plan.matte is not None else job.styles
        signals = job_signals(model, main, job.style_weights, job.signals, job.style_size, job.max_pixels)
        if plan.matte is not None and len(job.styles) == 2:
            background = compute_signals(model, job.styles[1:], style_size=job.style_size, max_pixels=job.max_pixels)
    if keys is not None and keys.network:
        schedule = Schedule(keys.style_times, styles, keys.alpha_times, keys.alphas, keys.ease)
    native_note = prepare_runtime(model, plan.engine)
    stylizer = Stylizer(model, signals, plan.engine, alpha=job.alpha, color_matrix=plan.color_matrix,
                        background=background, schedule=schedule)
    stylizer.native_note = native_note
    return stylizer


def _sweep(plan: JobPlan, log: Log) -> None:
    """Remove temporary files that killed runs left beside this job's outputs."""
    for _, target in plan.files.writes:
        for path in sweep_once(target.parent):
            log(f"microast-video: note: removed {shown(path)}, left by an interrupted run")


def video_stages(plan: JobPlan, stylizer: Stylizer, times: StageTimes, writer: FFmpegWriter,
                 stats: DecodeStats, stabilizer: Stabilizer | None, window: Window = Window(),
                 boundaries: tuple[float, ...] = ()) -> list[Stage]:
    """The chain a frame takes through the video job, in order."""
    strength, picture = plan.strength, plan.picture
    later = strength is not None or picture is not None  # stages after the temporal one that need the source
    engine = FrameEngine(stylizer, plan.batch_size, times, plan.transport, keep_source=stabilizer is not None or later)
    enc = plan.encode
    return [
        Stage("decode", lambda _: _decoded(plan, stats, window)),
        *([Stage("matte", lambda frames: matted(frames, plan.matte, plan.job.start))] if plan.matte else []),
        *([Stage("tonemap", lambda frames: tonemapped(frames, enc.tonemap, enc.deep))] if enc.tonemap else []),
        Stage("engine", engine.run, timed=False, in_caller=True),  # times upload / network / download itself
        *([Stage("temporal", lambda frames: stabilized(frames, stabilizer, boundaries, keep_source=later))]
          if stabilizer else []),
        *([Stage("strength", lambda frames: at_strength(frames, strength, plan.job.strength))] if strength else []),
        *([Stage("bars", lambda frames: bars_kept(frames, picture))] if picture else []),
        *([Stage("outside", original_outside)] if stabilizer and plan.matte and stylizer.background is None else []),
        *([Stage("colour", lambda frames: in_output_space(frames, plan.colour, enc.encoder == "exr"))]
          if plan.colour is not None and (plan.colour.target != DISPLAY or enc.encoder == "exr") else []),
        *([Stage("warm-up", lambda frames: _after(frames, window.start))] if window.warmup else []),
        Stage("encode", lambda frames: _encoded(frames, writer, times), abort=writer.abort),
    ]


def _decoded(plan: JobPlan, stats: DecodeStats, window: Window) -> Iterator[Frame]:
    job = plan.job
    first = job.start + max(0.0, window.start - window.warmup)
    end = job.duration if window.end is None else window.end
    duration = None if end is None else job.start + end - first
    return decode_frames(plan.info, start=first, duration=duration, size=plan.encode.size,
                         deep=plan.encode.deep or plan.encode.tonemap is not None,
                         planes=isinstance(plan.transport, YUV420Transport), deinterlace=plan.deinterlace,
                         gpu=plan.gpu_decode, to_display=plan.colour.to_display if plan.colour is not None else None,
                         stats=stats, origin=job.start, anchor=window.anchor, threads=side_threads(plan.device))


def _after(frames: Iterator[Frame], start: float) -> Iterator[Frame]:
    """Drop the warm-up frames (before ``start`` s on the clip's clock); number the rest from 0."""
    index = 0
    for frame in frames:
        if frame.pts * frame.time_base >= Fraction(start).limit_denominator(1_000_000):
            yield dataclasses.replace(frame, index=index)
            index += 1


def _encoded(frames: Iterator[Frame], writer: FFmpegWriter, times: StageTimes) -> Iterator[Frame]:
    expected = 0
    for frame in frames:
        if frame.index != expected:
            raise RuntimeError(f"frame order broken: got frame {frame.index}, expected {expected}")
        times.stamp(frame.index, "pts_s", round(frame.seconds, 6))
        writer.write(frame)
        expected += 1
        yield frame
    writer.finish()


def temporal_report(plan: JobPlan, stabilizer: Stabilizer | None) -> dict[str, Any]:
    if stabilizer is None:
        return {"on": False}
    s = plan.temporal
    return {"on": True, "strength": s.strength, "method": s.method, "flow": f"DIS {s.flow_preset} at {s.flow_height} rows",
            "scene_cuts": stabilizer.cuts,
            "kernels": stabilizer.where()}


def _resume(plan: JobPlan, log: Log) -> tuple[JobPlan, Window, int]:
    """A sequence output that an earlier run of this job began: (the plan numbering from the first
    missing frame, the window from there with its warm-up, the frames already done)."""
    if plan.encode.first_number is None:
        return plan, Window(), 0
    for path in sweep_partial(plan):
        log(f"microast-video: note: removed {shown(path)}, a frame an interrupted run left unfinished")
    print_ = frame_print(plan)
    done = frames_done(plan, print_)
    mark(plan, print_)
    if not done:
        return plan, Window(), 0
    step = resumed(done, plan)
    log(f"microast-video: note: {done} frame(s) of {shown(plan.output)} are complete from an earlier run of this "
        f"job; continuing at frame {step['first_number']}")
    encode = dataclasses.replace(plan.encode, first_number=step["first_number"])
    return dataclasses.replace(plan, encode=encode), Window(start=step["start"], warmup=step["warmup"]), done


def _verify(plan: JobPlan, counts: dict[str, int], stats: DecodeStats, skipped: int = 0) -> tuple[int, list[str]]:
    """Every decoded frame was encoded, and the whole clip (or window) was decoded.

    A file whose container lists more frames than could be decoded (edit lists counted:
    packets they hide are not frames) is an error. A decode that ends well before the
    container's duration (a cut-off MKV or TS) is reported in a note. ``skipped``: frames of a
    resumed sequence an earlier run made (and the warm-up before the first new one).
    """
    job, info = plan.job, plan.info
    decoded, encoded = counts["decode"], counts["encode"]
    if skipped:
        return encoded + skipped, early_end_note(job, info, stats.end_seconds)
    if encoded != decoded:
        raise RuntimeError(f"{decoded} frames decoded but {encoded} encoded")
    shown_frames = (info.frames or 0) - stats.discarded
    if info.frames_listed and job.start == 0 and job.duration is None and decoded < shown_frames:
        raise InputError(f"input {shown(job.input)}: truncated or corrupt: the container lists {shown_frames} "
                         f"frames but only {decoded} could be decoded")
    notes = [f"{stats.damaged} frame(s) of the input {shown(job.input)} are damaged (FFmpeg concealed decoding "
             "errors in them); they are stylized as decoded"] if stats.damaged else []
    notes += early_end_note(job, info, stats.end_seconds)
    return encoded, notes


class FramesTarget:
    """An image-sequence output: each frame is written to a temporary name and renamed when
    complete (ffmpeg's image2 muxer's ``atomic_writing``, or :class:`FrameFiles`), so an
    interrupted run leaves whole frames only; there is nothing to publish at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> FramesTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def publish(self) -> None:
        return None


def _target(plan: JobPlan) -> AtomicFile | FramesTarget:
    """Where ffmpeg writes: a temporary file renamed at the end, or a sequence's frames."""
    if plan.encode.first_number is not None:
        return FramesTarget(plan.output)
    return AtomicFile(plan.output, overwrite=plan.job.overwrite)


def _publish(plan: JobPlan, video: AtomicFile | FramesTarget, report: dict[str, Any]) -> None:
    """Side files are written in full before the video's rename; only their renames follow it."""
    job = plan.job
    with contextlib.ExitStack() as stack:
        sides = []
        if job.report is not None:
            sides.append(stack.enter_context(AtomicFile(job.report, overwrite=job.overwrite, what="report")))
            sides[-1].write(json_bytes(report))
        if job.chart is not None:
            sides.append(stack.enter_context(AtomicFile(job.chart, overwrite=job.overwrite, what="--chart")))
            sides[-1].write(chart_png(report))
        video.publish()
        for side in sides:
            side.publish()

