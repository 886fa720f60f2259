"""Encode: stylized frames -> the ffmpeg program (through ffmpeg-python), with the source's
audio, subtitles, chapters and metadata carried over.

Frames travel to ffmpeg as raw RGB inside a NUT stream written by PyAV on ffmpeg's stdin.
Unlike a bare rawvideo pipe at a constant rate, NUT carries every frame's timestamp, so
variable-frame-rate clips keep their timing and the audio stays in sync.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import shutil
import signal
import subprocess
import threading
from fractions import Fraction
from pathlib import Path

import av
import ffmpeg
import numpy as np

from ._decode import VideoInfo
from ._errors import InputError, OutputError
from ._frame import Frame
from ._options import Codec


@dataclasses.dataclass(frozen=True)
class _CodecSpec:
    encoder: str
    pix_fmt_8: str
    pix_fmt_deep: str
    containers: tuple[str, ...]  # output formats (ffmpeg muxer names) that hold it
    default_ext: str
    crf: int | None = None
    preset: str | None = None
    extra: tuple[tuple[str, str], ...] = ()


CODECS: dict[Codec, _CodecSpec] = {
    Codec.h264: _CodecSpec("libx264", "yuv420p", "yuv420p", ("mp4", "mov", "matroska"), ".mp4", 18, "medium"),
    Codec.hevc: _CodecSpec("libx265", "yuv420p", "yuv420p10le", ("mp4", "mov", "matroska"), ".mp4", 20, "medium",
                           (("x265-params", "log-level=error"),)),
    Codec.prores: _CodecSpec("prores_ks", "yuv422p10le", "yuv422p10le", ("mov", "matroska"), ".mov", None, None,
                             (("profile:v", "3"), ("vendor", "apl0"))),
    # ffv1 has no 8-bit planar RGB encoder format (ffmpeg would silently swap gbrp for bgr0).
    Codec.ffv1: _CodecSpec("ffv1", "bgr0", "gbrp16le", ("matroska", "mov"), ".mkv", None, None,
                           (("level", "3"), ("slicecrc", "1"), ("g", "1"))),
    Codec.h264_nvenc: _CodecSpec("h264_nvenc", "yuv420p", "yuv420p", ("mp4", "mov", "matroska"), ".mp4", 19, "p5"),
    Codec.hevc_nvenc: _CodecSpec("hevc_nvenc", "yuv420p", "p010le", ("mp4", "mov", "matroska"), ".mp4", 21, "p5"),
}

#: Output file extension -> ffmpeg muxer.
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}

#: Subtitle codecs that are text and can become mov_text for MP4/MOV.
_TEXT_SUBTITLES = {"subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text"}


#: ffmpeg -colorspace names -> the YCbCr matrix the scale filter converts with (also
#: microast_video._color's names for bt601, bt709 and bt2020).
SCALE_MATRIX = {"bt709": "bt709", "smpte170m": "bt601", "bt470bg": "bt601", "bt2020nc": "bt2020",
                "bt2020c": "bt2020", "fcc": "fcc", "smpte240m": "smpte240m"}

#: ffmpeg -colorspace names -> AVColorSpace values, to tag 4:2:0 frames sent down the pipe.
_AVCOL_SPC = {"bt709": 1, "fcc": 4, "bt470bg": 5, "smpte170m": 6, "smpte240m": 7, "bt2020nc": 9, "bt2020c": 10}


def _pipe_format(frame: Frame) -> str:
    """The pixel format a frame travels down the NUT pipe in."""
    deep = frame.data.dtype == np.uint16
    if frame.layout == "yuv420p":
        return "yuv420p10le" if deep else "yuv420p"
    return "rgb48le" if deep else "rgb24"


def ffmpeg_exe() -> str:
    """The ffmpeg program: ``$MICROAST_VIDEO_FFMPEG`` if set, else the one in imageio-ffmpeg."""
    exe = os.environ.get("MICROAST_VIDEO_FFMPEG")
    if exe:
        found = shutil.which(exe)
        if not found:
            raise OutputError(f"ffmpeg program {exe} (MICROAST_VIDEO_FFMPEG) not found or not executable")
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def available_encoders(exe: str) -> set[str]:
    """Names of the video/audio encoders the ffmpeg program ``exe`` has."""
    out = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True, check=False).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS":
            names.add(parts[1])
    return names


def _supported_codecs(muxer: str) -> set[str]:
    with av.open(os.devnull, "w", format=muxer) as probe:
        return set(probe.supported_codecs)


@dataclasses.dataclass(frozen=True)
class EncodeSettings:
    """How to encode the output (``--codec``, ``--crf``, ``--preset``, ``--pix-fmt``)."""

    codec: Codec = Codec.h264
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None


@dataclasses.dataclass(frozen=True)
class EncodePlan:
    """Everything decided before the first frame: formats, tags, which streams to carry."""

    muxer: str
    encoder: str
    pix_fmt: str
    size: tuple[int, int]  # (width, height) of the upright frames the network makes
    pad: tuple[int, int]  # columns, rows added (edge-replicated) for chroma subsampling
    sar: Fraction
    matrix: str  # ffmpeg -colorspace value used for RGB -> YUV and tagged
    color_primaries: str
    color_trc: str
    color_range: str  # "tv" or "pc"
    deep: bool  # 16-bit RGB through the pipeline (deep source and deep output format)
    audio: tuple[tuple[int, str], ...]  # (a:N, "copy" or encoder)
    subtitles: tuple[tuple[int, str], ...]  # (s:N, "copy" or "mov_text")
    notes: tuple[str, ...]  # what the user should know (re-encoded audio, dropped subtitles)
    codec_args: tuple[tuple[str, str], ...]


def chroma_alignment(pix_fmt: str) -> tuple[int, int]:
    """(x, y) multiples that the frame size must have for ``pix_fmt``'s chroma subsampling."""
    try:
        fmt = av.VideoFormat(pix_fmt)
    except (ValueError, av.FFmpegError) as err:
        raise OutputError(f"unknown pixel format {pix_fmt!r}") from err
    if fmt.is_rgb or len(fmt.components) < 3:
        return 1, 1
    probe = av.VideoFormat(pix_fmt, 16, 16)
    luma, chroma = probe.components[0], probe.components[1]
    return max(1, luma.width // max(chroma.width, 1)), max(1, luma.height // max(chroma.height, 1))


def plan_encode(info: VideoInfo, output: Path, settings: EncodeSettings, *, exe: str,
                height: int | None = None) -> EncodePlan:
    """Decide the output's size, formats and streams up front.

    Without ``height`` the output keeps the upright stored size and its sample aspect
    ratio. With ``height`` the frames are ``height`` rows high and as wide as the display
    aspect ratio asks (square pixels), the width rounded to the chroma subsampling's
    multiple. A side the pixel format cannot hold (odd, for 4:2:0) is padded by one
    edge-replicated column or row, never a failed encode.

    Raises:
        OutputError: an extension, codec/container pair or encoder that cannot work.
        ValueError: a ``height`` too small for the network.
    """
    muxer = CONTAINERS.get(output.suffix.lower())
    if muxer is None:
        raise OutputError(f"output {output}: unsupported extension {output.suffix!r} (use .mp4, .mov or .mkv)")
    spec = CODECS[settings.codec]
    if muxer not in spec.containers:
        exts = sorted({e for e, m in CONTAINERS.items() if m in spec.containers})
        raise OutputError(f"output {output}: codec {settings.codec.value} cannot be stored in {output.suffix}; use {' or '.join(exts)}")
    encoders = available_encoders(exe)
    if spec.encoder not in encoders:
        raise OutputError(f"the ffmpeg program {exe} has no {spec.encoder} encoder (for --codec {settings.codec.value})")
    pix_fmt = settings.pix_fmt or (spec.pix_fmt_deep if info.bit_depth > 8 else spec.pix_fmt_8)
    ax, ay = chroma_alignment(pix_fmt)
    out_fmt = av.VideoFormat(pix_fmt)
    deep = info.bit_depth > 8 and max(c.bits for c in out_fmt.components) > 8
    if height is None:
        (w, h), sar = info.upright_size, info.upright_sar
    else:
        if height < 5:
            raise ValueError(f"--height must be at least 5 px, got {height = }")
        w, h, sar = max(ax, round(height * info.display_aspect / ax) * ax), height, Fraction(1)
    pad = ((-w) % ax, (-h) % ay)
    # Colour: tags copied from the source; untagged material gets the size's usual standard.
    matrix = info.colorspace if info.colorspace not in (None, "gbr") else (
        "bt709" if info.matrix in ("bt709", "gbr") else ("bt2020nc" if info.matrix == "bt2020" else "smpte170m"))
    hd = matrix not in ("smpte170m", "bt470bg")
    primaries = info.color_primaries or ("bt709" if hd else "smpte170m")
    trc = info.color_trc or ("bt709" if hd else "smpte170m")
    color_range = "pc" if info.full_range or out_fmt.is_rgb else "tv"  # RGB is always full range
    supported = _supported_codecs(muxer)
    notes = []
    audio = []
    for stream in info.audio:
        if stream.codec in supported:
            audio.append((stream.index, "copy"))
        else:
            target = "libopus" if muxer == "webm" else "aac"
            audio.append((stream.index, target))
            notes.append(f"audio stream {stream.index} ({stream.codec}) cannot be stored in {output.suffix}; re-encoding it to {target}")
    subtitles = []
    for stream in info.subtitles:
        if stream.codec in supported:
            subtitles.append((stream.index, "copy"))
        elif stream.codec in _TEXT_SUBTITLES and "mov_text" in supported:
            subtitles.append((stream.index, "mov_text"))
        else:
            notes.append(f"subtitle stream {stream.index} ({stream.codec}) cannot be stored in {output.suffix}; dropped (use .mkv to keep it)")
    args: list[tuple[str, str]] = list(spec.extra)
    if settings.crf is not None and not 0 <= settings.crf <= 51:
        raise ValueError(f"--crf must be between 0 and 51, got {settings.crf}")
    crf = settings.crf if settings.crf is not None else spec.crf
    if crf is not None:
        args.append(("cq" if "nvenc" in spec.encoder else "crf", str(crf)))
    elif settings.crf is not None:
        notes.append(f"--crf does not apply to {settings.codec.value}; ignored")
    preset = settings.preset or spec.preset
    if preset is not None:
        args.append(("preset", preset))
    if settings.codec is Codec.hevc and muxer in ("mp4", "mov"):
        args.append(("tag:v", "hvc1"))  # plays in Apple players
    return EncodePlan(muxer, spec.encoder, pix_fmt, (w, h), pad, sar, matrix, primaries, trc,
                      color_range, deep, tuple(audio), tuple(subtitles), tuple(notes), tuple(args))


class FFmpegWriter:
    """Pipes :class:`Frame` s into an ffmpeg process that writes ``target``.

    Use as a context manager; :meth:`write` each frame in order, then :meth:`finish`.
    Leaving the block without ``finish`` (an error, Ctrl-C) kills ffmpeg; the caller
    removes the partial file.
    """

    def __init__(self, info: VideoInfo, plan: EncodePlan, target: Path, *, exe: str,
                 start: float = 0.0, duration: float | None = None, label: Path | None = None) -> None:
        self.info, self.plan, self.target, self.exe = info, plan, target, exe
        self.label = label or target  # what messages call the output (the final path, not the temp file)
        self.start, self.duration = start, duration
        self._proc: subprocess.Popen[bytes] | None = None
        self._mux: av.container.OutputContainer | None = None
        self._stream: av.VideoStream | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=30)
        self._stderr_thread: threading.Thread | None = None
        self._lock = threading.Lock()  # abort() vs. starting ffmpeg in another thread
        self._aborted = False
        self.frames = 0

    def command(self, first_offset: float, layout: str = "rgb") -> list[str]:
        """The ffmpeg command line (built with ffmpeg-python; never a shell string).

        ``layout`` is how frames arrive: "rgb" (ffmpeg converts to YUV with the output's
        matrix and range) or "yuv420p" (already in the output's matrix and range: the
        scale filter only repacks, if the output format differs at all).
        """
        p, info = self.plan, self.info
        video_in = ffmpeg.input("pipe:", format="nut", itsoffset=f"{first_offset:.6f}")
        src_kwargs: dict[str, object] = {}
        if self.start > 0:
            src_kwargs["ss"] = f"{self.start:.6f}"
        if self.duration is not None:
            src_kwargs["t"] = f"{self.duration:.6f}"
        source = ffmpeg.input(str(info.path), **src_kwargs)
        matrix_for_scale = SCALE_MATRIX.get(p.matrix, "bt709")
        scale: dict[str, str] = {"out_color_matrix": matrix_for_scale, "out_range": p.color_range,
                                 "flags": "bicubic+accurate_rnd+full_chroma_int"}
        if layout == "yuv420p":
            scale.update(in_color_matrix=matrix_for_scale, in_range=p.color_range)
        video = video_in.video.filter("scale", **scale).filter("format", p.pix_fmt).filter("setsar", f"{p.sar.numerator}/{p.sar.denominator}").filter(
            # ffmpeg takes the encoder's colour tags from the frames: -color_primaries and
            # -color_trc alone are dropped, so the frames must carry them.
            "setparams", color_primaries=p.color_primaries, color_trc=p.color_trc
        )
        streams = [video]
        out_kwargs: dict[str, object] = {
            "f": p.muxer,
            "c:v": p.encoder,
            "pix_fmt": p.pix_fmt,
            "color_primaries": p.color_primaries,
            "color_trc": p.color_trc,
            "colorspace": p.matrix,
            "color_range": p.color_range,
            "fps_mode": "passthrough",
            "enc_time_base:v": "demux",
        }
        out_kwargs.update(p.codec_args)
        for n, (index, how) in enumerate(p.audio):
            streams.append(source[f"a:{index}"])
            out_kwargs[f"c:a:{n}"] = how
        for n, (index, how) in enumerate(p.subtitles):
            streams.append(source[f"s:{index}"])
            out_kwargs[f"c:s:{n}"] = how
        if p.muxer in ("mp4", "mov"):
            out_kwargs["movflags"] = "+faststart"
        out = ffmpeg.output(*streams, str(self.target), **out_kwargs)
        args = out.compile(cmd=self.exe)
        # Metadata and chapters come from the source: find its input number in the command.
        inputs = [args[i + 1] for i, a in enumerate(args) if a == "-i"]
        if str(info.path) not in inputs:
            # No audio or subtitles mapped: ffmpeg-python leaves the unused source out, but
            # metadata and chapters still come from it, so add it as the last input.
            after = max(i for i, a in enumerate(args) if a == "-i") + 2
            source_args = [x for k, v in src_kwargs.items() for x in (f"-{k}", str(v))] + ["-i", str(info.path)]
            args = args[:after] + source_args + args[after:]
            inputs.append(str(info.path))
        src = str(inputs.index(str(info.path)))
        out_pos = len(args) - 1 - args[::-1].index(str(self.target))
        # One explicit per-stream -map_metadata turns off ffmpeg's automatic copy for all
        # streams, so every carried stream's tags (language, title) are mapped by hand.
        stream_meta = ["-map_metadata:s:v:0", f"{src}:s:v:0"]
        for kind, carried in (("a", p.audio), ("s", p.subtitles)):
            for n, (index, _) in enumerate(carried):
                stream_meta += [f"-map_metadata:s:{kind}:{n}", f"{src}:s:{kind}:{index}"]
        return (
            args[:1]
            + ["-hide_banner", "-nostats", "-loglevel", "error", "-y"]
            + args[1:out_pos]
            + ["-map_metadata", src, "-map_chapters", src, *stream_meta]
            + args[out_pos:]
        )

    def _start(self, first: Frame) -> None:
        offset = float(first.pts * first.time_base)
        cmd = self.command(offset, first.layout)
        with self._lock:  # an abort() now either waits for the process or prevents it
            if self._aborted:
                raise OutputError(f"ffmpeg for {self.target} was stopped before it started")
            try:
                self._proc = subprocess.Popen(
                    cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                    start_new_session=True,  # Ctrl-C reaches us, not ffmpeg: we decide what happens
                )
            except OSError as err:
                raise OutputError(f"cannot start ffmpeg ({self.exe}): {err.strerror or err}") from err
            self._stderr_thread = threading.Thread(target=self._drain, name="ffmpeg-stderr", daemon=True)
            self._stderr_thread.start()
        self._mux = av.open(self._proc.stdin, "w", format="nut")
        h, w = first.data.shape[:2]
        stream = self._mux.add_stream("rawvideo", rate=self.info.frame_rate)
        stream.width, stream.height = w + self.plan.pad[0], h + self.plan.pad[1]
        if first.layout == "yuv420p":
            stream.height = first.data.shape[0] * 2 // 3
        stream.pix_fmt = _pipe_format(first)
        stream.time_base = first.time_base
        stream.codec_context.time_base = first.time_base
        self._stream = stream

    def _drain(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        try:
            for raw in self._proc.stderr:
                line = raw.decode("utf-8", "replace").strip()
                if line:
                    self._stderr.append(line)
        except (OSError, ValueError):  # abort() closed the pipe: nothing more to read
            pass

    def write(self, frame: Frame) -> None:
        """Send one frame (in order) to ffmpeg."""
        if self._proc is None:
            self._start(frame)
        data = frame.data
        if self.plan.pad != (0, 0) and frame.layout == "rgb":
            data = np.pad(data, ((0, self.plan.pad[1]), (0, self.plan.pad[0]), (0, 0)), mode="edge")
        vf = av.VideoFrame.from_ndarray(data, format=_pipe_format(frame))
        if frame.layout == "yuv420p":  # tag the samples so ffmpeg reads them as they are
            vf.colorspace = _AVCOL_SPC.get(self.plan.matrix, 1)
            vf.color_range = 2 if self.plan.color_range == "pc" else 1
        vf.pts = frame.pts
        vf.time_base = frame.time_base
        if frame.duration:
            vf.duration = frame.duration
        try:
            for packet in self._stream.encode(vf):
                self._mux.mux(packet)
        except (OSError, av.FFmpegError) as err:
            raise self._failure(err) from err
        self.frames += 1

    def _failure(self, err: BaseException | None = None) -> OutputError:
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=2)
        text = " | ".join(list(self._stderr)[-3:])
        if any("No space left" in line for line in self._stderr) or (isinstance(err, OSError) and err.errno == 28):
            return OutputError(f"output {self.label}: disk full while writing")
        detail = text or (str(err) if err else "unknown error")
        return OutputError(f"ffmpeg failed writing {self.label}: {detail}")

    def finish(self) -> None:
        """Flush the pipe, wait for ffmpeg, and raise if it failed."""
        if self._proc is None:
            raise InputError(f"input {self.info.path}: no video frames to encode (empty clip or --start past the end)")
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

    def __enter__(self) -> FFmpegWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self.abort()
