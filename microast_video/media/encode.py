"""Encode: stylized frames -> the ffmpeg program (through ffmpeg-python), with the source's
audio, subtitles, chapters and metadata carried over.

Frames travel to ffmpeg as raw video inside a NUT stream written by PyAV on ffmpeg's stdin.
Unlike a bare rawvideo pipe at a constant rate, NUT carries every frame's timestamp, so
variable-frame-rate clips keep their timing and the audio stays in sync. 8-bit RGB frames
bound for a ``yuv420p`` output are converted here by the native kernel where it is built
(:meth:`FFmpegWriter.planes_converter`), so the pipe carries half the bytes and ffmpeg only
encodes; elsewhere ffmpeg's scale filter converts them.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import av
import ffmpeg
import numpy as np

from ..colour import spaces as cs
from ..core.errors import InputError, OutputError, shown
from ..core.frame import Frame
from ..core.paths import cache_dir
from ..core.process import popen
from ..native.colour import colour_kernels
from .encode_plan import EncodePlan
from .probe import VideoInfo, file_url
from .timecode import start_timecode


def pipe_format(frame: Frame) -> str:
    """The pixel format a frame travels down the NUT pipe in."""
    if frame.data.dtype == np.float32:  # scene-linear RGB for an OpenEXR output
        return "gbrpf32le"
    deep = frame.data.dtype == np.uint16
    if frame.layout == "yuv420p":
        return "yuv420p10le" if deep else "yuv420p"
    return "rgb48le" if deep else "rgb24"


def ffmpeg_command(info: VideoInfo, plan: EncodePlan, target: Path, *, exe: str, first_offset: float,
                   layout: str = "rgb", start: float = 0.0, duration: float | None = None, carry: bool = True
                   ) -> list[str]:
    """The ffmpeg command line (built with ffmpeg-python; never a shell string).

    Video comes from the NUT pipe; audio, subtitles, chapters and metadata from the source
    file (the same window of it), unless ``carry`` is False (a batch segment: video only).
    ``layout`` is how frames arrive: "rgb" (ffmpeg converts to YUV with the output's
    matrix and range) or "yuv420p" (already in the output's matrix and range: the scale
    filter only repacks, if the output format differs at all).
    """
    video = _video_filters(plan, first_offset, layout)
    if not carry:
        args = ffmpeg.output(video, file_url(target), **_output_options(plan)).compile(cmd=exe)
        return args[:1] + ["-hide_banner", "-nostats", "-loglevel", "error", "-y"] + args[1:]
    return _with_source(info, plan, [video], _output_options(plan), target, exe=exe, start=start, duration=duration)


def mux_command(info: VideoInfo, plan: EncodePlan, video_file: Path, target: Path, *, exe: str, start: float = 0.0,
                duration: float | None = None) -> list[str]:
    """ffmpeg command that copies the (assembled) video of ``video_file`` into ``target`` and
    carries over the source's audio, subtitles, chapters and metadata: no re-encoding."""
    video = ffmpeg.input(file_url(video_file)).video
    options: dict[str, object] = {"f": plan.muxer, "c:v": "copy"}
    if plan.muxer in ("mp4", "mov"):
        options["movflags"] = "+faststart"
    return _with_source(info, plan, [video], options, target, exe=exe, start=start, duration=duration)


def _with_source(info: VideoInfo, plan: EncodePlan, streams: list, out_kwargs: dict[str, object], target: Path, *,
                 exe: str, start: float, duration: float | None) -> list[str]:
    """The command writing ``streams`` plus the source's audio, subtitles, chapters and metadata."""
    src_kwargs: dict[str, object] = {}
    if start > 0:
        src_kwargs["ss"] = f"{start:.6f}"
    if duration is not None:
        src_kwargs["t"] = f"{duration:.6f}"
    if info.sequence is not None:  # numbered frames: FFmpeg's image2 demuxer, at the job's rate
        src_kwargs.update(f="image2", **info.open_args["options"])
    source_url, target_url = info.url, file_url(target)
    source = ffmpeg.input(source_url, **src_kwargs)
    if plan.alpha and "c:v" in out_kwargs and out_kwargs["c:v"] != "copy":  # the stylized RGB, the source's alpha
        alpha = source.video.filter("alphaextract").filter("scale", *plan.size)
        streams[0] = ffmpeg.filter([streams[0], alpha], "alphamerge").filter("format", plan.pix_fmt)
    for n, (index, how) in enumerate(plan.audio):
        streams.append(source[f"a:{index}"])
        out_kwargs[f"c:a:{n}"] = how
        if plan.muxer == "mxf" and how != "copy":
            out_kwargs[f"ar:a:{n}"] = "48000"  # MXF takes 48 kHz audio only
    for n, (index, how) in enumerate(plan.subtitles):
        streams.append(source[f"s:{index}"])
        out_kwargs[f"c:s:{n}"] = how
    args = ffmpeg.output(*streams, target_url, **out_kwargs).compile(cmd=exe)
    inputs = [args[i + 1] for i, a in enumerate(args) if a == "-i"]
    if source_url not in inputs:
        # No audio or subtitles mapped: ffmpeg-python leaves the unused source out, but
        # metadata and chapters still come from it, so add it as the last input.
        after = max(i for i, a in enumerate(args) if a == "-i") + 2
        source_args = [x for k, v in src_kwargs.items() for x in (f"-{k}", str(v))] + ["-i", source_url]
        args = args[:after] + source_args + args[after:]
        inputs.append(source_url)
    src = str(inputs.index(source_url))
    out_pos = len(args) - 1 - args[::-1].index(target_url)
    return (args[:1] + ["-hide_banner", "-nostats", "-loglevel", "error", "-y"] + args[1:out_pos]
            + ["-map_metadata", src, "-map_chapters", src, *_stream_metadata(plan, src), *_timecode(info, start)]
            + args[out_pos:])


def _timecode(info: VideoInfo, start: float) -> list[str]:
    """The source's timecode moved on by the frames ``--start`` skips (01:00:10:00 with --start 0.4
    at 25 fps is 01:00:10:10), over the copied tags and as the MOV/MP4 timecode track's; none
    where the source has none (or one that does not parse: then it is not carried at all)."""
    if not info.timecode:
        return []
    tc = start_timecode(info.timecode, info.nominal_rate or info.frame_rate, start) or ""
    return ["-metadata", f"timecode={tc}", "-metadata:s:v:0", f"timecode={tc}"]


def _video_filters(plan: EncodePlan, first_offset: float, layout: str) -> ffmpeg.nodes.FilterableStream:
    video_in = ffmpeg.input("pipe:", format="nut", itsoffset=f"{first_offset:.6f}")
    scale_matrix = cs.matrix(plan.matrix).scale
    # Chroma sited as MPEG-2 / H.264 place it (co-sited with even columns), where decoders and
    # the native conversion put it: left to itself, swscale sites it between columns (a quarter
    # pixel off, ~0.3 levels of chroma on smooth pictures against the native conversion).
    scale: dict[str, str] = {"out_color_matrix": scale_matrix, "out_range": plan.color_range,
                             "out_chroma_loc": "left", "flags": "bicubic+accurate_rnd+full_chroma_int"}
    if layout == "yuv420p":
        scale.update(in_color_matrix=scale_matrix, in_range=plan.color_range, in_chroma_loc="left")
    sar = f"{plan.sar.numerator}/{plan.sar.denominator}"
    # ffmpeg takes the encoder's colour tags from the frames: -color_primaries and
    # -color_trc alone are dropped, so the frames must carry them.
    return (video_in.video.filter("scale", **scale).filter("format", plan.pix_fmt).filter("setsar", sar)
            .filter("setparams", color_primaries=plan.color_primaries, color_trc=plan.color_trc))


def _output_options(plan: EncodePlan) -> dict[str, object]:
    options: dict[str, object] = {
        "f": plan.muxer, "c:v": plan.encoder, "pix_fmt": plan.pix_fmt,
        "color_primaries": plan.color_primaries, "color_trc": plan.color_trc, "colorspace": plan.matrix,
        "color_range": plan.color_range, "fps_mode": "passthrough", "enc_time_base:v": "demux",
    }
    options.update(plan.codec_args)
    if plan.muxer in ("mp4", "mov"):
        options["movflags"] = "+faststart"
    if plan.first_number is not None:  # frames: numbered, each written to a temporary name, then renamed
        options.update(start_number=str(plan.first_number), atomic_writing="1")
    return options


def encoder_tag(plan: EncodePlan) -> str:
    """The video stream's "encoder" tag: what encoded it (a MOV holds 31 characters of it, as the
    sample description's compressor name)."""
    return f"microast-video {plan.encoder}"[:31]


def _stream_metadata(plan: EncodePlan, src: str) -> list[str]:
    """One explicit per-stream ``-map_metadata`` turns off ffmpeg's automatic copy for all
    streams, so every carried stream's tags (language, title) are mapped by hand."""
    args = ["-map_metadata:s:v:0", f"{src}:s:v:0",  # the source's tags, but its "encoder" is not ours
            "-metadata:s:v:0", f"encoder={encoder_tag(plan)}"]
    for kind, carried in (("a", plan.audio), ("s", plan.subtitles)):
        for n, (index, _) in enumerate(carried):
            args += [f"-map_metadata:s:{kind}:{n}", f"{src}:s:{kind}:{index}"]
    return args


class FFmpegWriter:
    """Pipes :class:`Frame` s into an ffmpeg process that writes ``target``.

    :meth:`write` each frame in order, then :meth:`finish`. :meth:`abort` (on errors and
    interrupts, from any thread) kills ffmpeg; the caller removes the partial file. As a
    context manager, leaving the block with an exception aborts.
    """

    def __init__(self, info: VideoInfo, plan: EncodePlan, target: Path, *, exe: str,
                 start: float = 0.0, duration: float | None = None, label: Path | None = None,
                 carry: bool = True) -> None:
        self.info, self.plan, self.target, self.exe = info, plan, target, exe
        self.carry = carry  # False: video only (a batch segment)
        self._to_planes: Callable[[np.ndarray], np.ndarray] | None = None
        self.label = label or target  # what messages call the output (the final path, not the temp file)
        self.start, self.duration = start, duration
        self._proc: subprocess.Popen[bytes] | None = None
        self._mux: av.container.OutputContainer | None = None
        self._stream: av.VideoStream | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=30)
        self._stderr_thread: threading.Thread | None = None
        self._lock = threading.Lock()  # abort() vs. starting ffmpeg in another thread
        self._aborted = False

    def command(self, first_offset: float, layout: str = "rgb") -> list[str]:
        """The ffmpeg command line for a first frame at ``first_offset`` seconds."""
        return ffmpeg_command(self.info, self.plan, self.target, exe=self.exe, first_offset=first_offset,
                              layout=layout, start=self.start, duration=self.duration, carry=self.carry)

    def _start(self, first: Frame) -> None:
        cmd = self.command(float(first.pts * first.time_base), first.layout)
        with self._lock:  # an abort() now either waits for the process or prevents it
            if self._aborted:
                raise OutputError(f"ffmpeg for {shown(self.label)} was stopped before it started")
            try:
                self._proc = popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            except OSError as err:
                raise OutputError(f"cannot start ffmpeg ({shown(self.exe)}): {err.strerror or err}") from err
            self._stderr_thread = threading.Thread(target=self._drain, name="ffmpeg-stderr", daemon=True)
            self._stderr_thread.start()
        self._mux = av.open(self._proc.stdin, "w", format="nut")
        # ffmpeg times a last frame whose duration the pipe does not carry by this rate
        stream = self._mux.add_stream("rawvideo", rate=1 / self.info.frame_seconds)
        h, w = first.data.shape[:2]
        stream.width, stream.height = w + self.plan.pad[0], h + self.plan.pad[1]
        if first.layout == "yuv420p":
            stream.height = first.data.shape[0] * 2 // 3
        stream.pix_fmt = pipe_format(first)
        stream.time_base = first.time_base
        stream.codec_context.time_base = first.time_base
        self._stream = stream

    def _drain(self) -> None:
        try:
            for raw in self._proc.stderr:
                line = raw.decode("utf-8", "replace").strip()
                if line:
                    self._stderr.append(line)
        except (OSError, ValueError):  # abort() closed the pipe: nothing more to read
            pass

    def planes_converter(self, first: Frame) -> Callable[[np.ndarray], np.ndarray] | None:
        """(H, W, 3) uint8 RGB -> the output's 8-bit 4:2:0 planes (its matrix and range), with the
        native kernel (``native/colour.cpp``: the arithmetic of the CUDA path's
        :meth:`~microast_video.engine.transport.YUV420Transport.from_float`, ~4-5 ms a 1080p frame on
        this thread, where ffmpeg's scale filter took ~12 ms alone in its process). None where it does
        not apply: not 8-bit RGB, an output other than ``yuv420p``, a padded or odd frame size,
        or no kernel on this machine; ffmpeg converts those."""
        h, w = first.data.shape[:2]
        if (first.layout != "rgb" or first.data.dtype != np.uint8 or self.plan.pix_fmt != "yuv420p"
                or self.plan.pad != (0, 0) or h % 2 or w % 2):
            return None
        kernels = colour_kernels(cache_dir())
        if kernels is None:
            return None
        matrix, lv = cs.rgb_to_ycbcr_rows(self.plan.matrix), cs.levels(8, self.plan.full_range)
        return lambda rgb: kernels.rgb8_to_yuv420(rgb, matrix, lv)

    def write(self, frame: Frame) -> None:
        """Send one frame (in order) to ffmpeg."""
        if self._proc is None:
            self._to_planes = self.planes_converter(frame)
        if self._to_planes is not None and frame.layout == "rgb":
            frame = dataclasses.replace(frame, data=self._to_planes(frame.data), layout="yuv420p", source=None)
        if self._proc is None:
            self._start(frame)
        data = frame.data
        if self.plan.pad != (0, 0) and frame.layout == "rgb":
            data = np.pad(data, ((0, self.plan.pad[1]), (0, self.plan.pad[0]), (0, 0)), mode="edge")
        vf = av.VideoFrame.from_ndarray(data, format=pipe_format(frame))
        if frame.layout == "yuv420p":  # tag the samples so ffmpeg reads them as they are
            vf.colorspace = cs.matrix(self.plan.matrix).code
            vf.color_range = 2 if self.plan.full_range else 1
        vf.pts = frame.pts
        vf.time_base = frame.time_base
        if frame.duration:
            vf.duration = frame.duration
        try:
            for packet in self._stream.encode(vf):
                self._mux.mux(packet)
        except (OSError, av.FFmpegError) as err:
            raise self._failure(err) from err

    def _failure(self, err: BaseException | None = None) -> OutputError:
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=2)
        text = " | ".join(list(self._stderr)[-3:])
        if any("No space left" in line for line in self._stderr) or (isinstance(err, OSError) and err.errno == 28):
            return OutputError(f"output {shown(self.label)}: disk full while writing")
        detail = text or (str(err) if err else "unknown error")
        return OutputError(f"ffmpeg failed writing {shown(self.label)}: {' '.join(detail.split())}")

    def finish(self) -> None:
        """Flush the pipe, wait for ffmpeg, and raise if it failed."""
        if self._proc is None:
            raise InputError(f"input {shown(self.info.path)}: no video frames to encode "
                             "(empty clip or --start past the end)")
        try:
            for packet in self._stream.encode(None):
                self._mux.mux(packet)
            self._mux.close()
            self._mux = None
            self._proc.stdin.close()
        except (OSError, av.FFmpegError) as err:
            raise self._failure(err) from err
        rc = self._proc.wait()
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=5)
        if rc != 0:
            raise self._failure()

    def __enter__(self) -> FFmpegWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self.abort()

    def abort(self) -> None:
        """Stop ffmpeg now (on errors and interrupts), even if another thread is just starting it."""
        with self._lock:
            self._aborted = True
            proc, drain = self._proc, self._stderr_thread
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if drain is not None:
            drain.join(timeout=2)  # it ends at ffmpeg's EOF; close the pipe after
        for pipe in (proc.stdin, proc.stderr):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass
