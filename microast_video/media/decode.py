"""Decode: any video FFmpeg reads -> upright :class:`Frame` s, streaming, via PyAV (torch only for
the native colour conversion's matrix, imported when a decode needs it)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from fractions import Fraction

import av
import av.filter
import numpy as np
from av.video.reformatter import ColorRange, Interpolation

from ..colour import spaces as cs
from ..core.errors import InputError, shown
from ..core.frame import Frame
from ..core.paths import cache_dir
from ..native.colour import colour_kernels
from .gaps import held_frames
from .probe import VideoInfo, reason

#: np.rot90 turns (counter-clockwise quarter turns) that put stored pictures upright.
_ROT90 = {0: 0, 90: -1, 180: 2, 270: 1}
#: FFmpeg's bwdif, one output frame per input frame (timing kept), only on interlaced frames.
BWDIF = "mode=send_frame:parity=auto:deint=interlaced"


@dataclasses.dataclass
class DecodeStats:
    """What a decode saw, filled in as it goes (for the truncation checks after it).

    Attributes:
        frames: frames yielded.
        discarded: packets the container's edit list hides (decoded for reference, never shown).
        end_seconds: where the last yielded frame ends, in seconds from the output's start.
        damaged: yielded frames FFmpeg flagged corrupt (decoding errors it concealed).
    """

    frames: int = 0
    discarded: int = 0
    end_seconds: float = 0.0
    damaged: int = 0


class FrameClock:
    """Puts constant-rate frames back on their exact frame grid; leaves the rest alone.

    Containers store times in coarse units (Matroska: 1 ms), so a 30000/1001 clip arrives
    with times rounded to the millisecond, and an MP4 written from those times would
    report 29.975 fps. A frame whose time lies within ``max(1 ms, one time-base unit)``
    of the grid ``t0 + k / rate`` (``t0``: the first frame's time) is placed exactly on
    it; any other frame (variable frame rate) keeps its own time. Output times are in a
    unit fine enough to hold both: ``1 / lcm(time base denominator, rate numerator)``.
    """

    def __init__(self, time_base: Fraction, rate: Fraction, anchor: Fraction | None = None) -> None:
        """``anchor``: the time (s) of the grid's origin; None = the first frame placed."""
        self.source_tb = time_base
        self.rate = rate
        den = math.lcm(time_base.denominator, rate.numerator) if time_base.numerator == 1 else 0
        self.snapping = 0 < den <= 10**7
        self.time_base = Fraction(1, den) if self.snapping else time_base
        self.tolerance = max(Fraction(1, 1000), time_base)
        self._anchor: Fraction | None = anchor
        self._last_slot = -1

    def place(self, pts: int, duration: int | None) -> tuple[int, int | None]:
        """(pts, duration) in :attr:`time_base` for a frame at ``pts`` source units."""
        if not self.snapping:
            return pts, duration
        t = pts * self.source_tb
        scale = 1 / self.time_base
        if self._anchor is None:
            self._anchor = t
        slot = round((t - self._anchor) * self.rate)
        grid = self._anchor + slot / self.rate
        if slot > self._last_slot and abs(t - grid) <= self.tolerance:
            self._last_slot = slot
            return int(grid * scale), int(scale / self.rate)
        self._last_slot = max(self._last_slot, math.floor((t - self._anchor) * self.rate))
        return int(t * scale), None if duration is None else int(duration * self.source_tb * scale)


def reformat_options(info: VideoInfo, stored: tuple[int, int], *, deep: bool, planes: bool) -> dict[str, object]:
    """PyAV ``to_ndarray`` arguments: size, pixel format, the stream's matrix and range.

    RGB output is full range, converted with the stream's own matrix (the swscale
    constant :mod:`microast_video.colour.spaces` gives for it), chroma upsampled bilinearly
    (luma and chroma bicubic when enlarging, area when shrinking). ``planes`` keeps the samples
    as 4:2:0 YCbCr in the stream's own matrix and range, for a device that converts colour.
    """
    shrinking = stored[0] * stored[1] < info.width * info.height
    scaling = Interpolation.AREA if shrinking else Interpolation.BICUBIC
    options: dict[str, object] = dict(
        width=stored[0], height=stored[1], format="rgb48le" if deep else "rgb24",
        dst_color_range=ColorRange.JPEG,
        # at the stored size only chroma is resampled: bilinear, as the native conversion
        # (:func:`_rgb_converter`) and the device transport do it
        interpolation=(scaling if stored != (info.width, info.height) else Interpolation.BILINEAR)
        | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT,
    )
    source_range = ColorRange.JPEG if info.full_range else ColorRange.MPEG
    if planes:
        if stored[0] % 2 or stored[1] % 2:
            raise ValueError(f"4:2:0 planes need an even frame size, got {stored = }")
        options.update(format="yuv420p10le" if deep else "yuv420p", src_color_range=source_range,
                       dst_color_range=source_range)
    elif info.matrix != "gbr":
        options.update(src_colorspace=cs.matrix(info.matrix).sws, src_color_range=source_range)
    return options


def decode_frames(
    info: VideoInfo, *, start: float = 0.0, duration: float | None = None, size: tuple[int, int] | None = None,
    deep: bool = False, threads: int = 0, planes: bool = False, deinterlace: bool = False,
    stats: DecodeStats | None = None, origin: float | None = None, anchor: int | None = None,
    native: bool = True,
    gpu: str | None = None,
    to_display: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Iterator[Frame]:
    """Decode the first video stream of ``info.path`` into upright frames, one at a time.

    Args:
        info: from :func:`~microast_video.media.probe.probe`.
        start: seconds from the start of the file to begin at (frames before are skipped).
        duration: seconds to decode from ``start`` (None: to the end).
        size: (width, height) of the upright output pictures; None keeps the stored size.
        deep: True for uint16 samples (10-bit and deeper sources), False for uint8.
        threads: FFmpeg decoding threads (0 = automatic).
        planes: yield 4:2:0 planes in the stream's own matrix and range (``layout
            "yuv420p"``, 1.5 samples per pixel; needs an even ``size`` and an unrotated
            clip) instead of RGB, for a device that converts colour itself.
        deinterlace: run FFmpeg's bwdif on interlaced frames (one frame out per frame in).
        stats: filled in with what the decode saw (see :class:`DecodeStats`).
        origin: seconds from the start of the file that output time 0 stands for (default
            ``start``); a part of a clip (a batch segment) keeps the whole clip's clock.
        anchor: where the frame grid of constant-rate clips starts, in the stream's time
            base from ``origin`` (default: the first frame decoded); the whole clip's first
            frame (:func:`first_frame_offset`) puts a segment's frames on the clip's grid.
        native: convert 8-bit 4:2:0 frames at their stored size to RGB with the native kernel
            where it can be built (:func:`_rgb_converter`; the same RGB as FFmpeg's, to a level).
        gpu: decode on this CUDA device's NVDEC ("0"; :func:`nvdec_problem`); None: the CPU.
        to_display: OpenColorIO (float RGB in its own space -> display-referred [0, 1]).

    Yields:
        :class:`Frame` s in presentation order, ``pts`` relative to the output's start
        (the file's start time plus ``start``), in the stream's time base.

    Raises:
        InputError: the stream is corrupt or cannot be decoded.
    """
    if planes and info.rotation:
        raise ValueError(f"4:2:0 planes cannot be turned upright; {info.rotation = }")
    upright = info.upright_size if size is None else size
    stored = (upright[1], upright[0]) if info.rotation in (90, 270) else upright
    options = reformat_options(info, stored, deep=deep, planes=planes)
    to_pixels = _rgb_converter(info, stored, options) if native and not (deep or planes) else None
    window = _Window.of(info, start, duration, origin)
    clock = FrameClock(info.time_base, info.frame_rate, None if anchor is None else anchor * info.time_base)
    stats = stats if stats is not None else DecodeStats()
    decoded = _timed_frames(info, start, window.first, threads, deinterlace, stats, gpu)
    pixels = to_pixels if to_pixels is not None else (lambda frame: frame.to_ndarray(**options))
    if to_display is not None:
        pixels = _managed(options, to_display)
    yield from _placed(info, decoded, window, pixels, clock, "yuv420p" if planes else "rgb", stats)


@dataclasses.dataclass(frozen=True)
class _Window:
    """The frames a decode keeps, in the stream's time base: [first, end), and where output time 0 is."""

    first: int
    origin: int
    end: int | None

    @staticmethod
    def of(info: VideoInfo, start: float, duration: float | None, origin: float | None) -> _Window:
        tb = info.time_base
        # the first frame at or after ``start`` (a coarse time base, a sequence's 1/24 s, puts a frame
        # just before it on the tick below), as the output's frame numbers and timecode count
        first = math.ceil((info.start_time + Fraction(start).limit_denominator(1_000_000)) / tb)
        zero = start if origin is None else origin
        origin_pts = math.floor((info.start_time + Fraction(zero).limit_denominator(1_000_000)) / tb)
        end = None if duration is None else first + math.ceil(Fraction(duration).limit_denominator(1_000_000) / tb)
        return _Window(first, origin_pts, end)


def _placed(info: VideoInfo, decoded: Iterator[tuple[int, av.VideoFrame]], window: _Window,
            pixels: Callable[[av.VideoFrame], np.ndarray], clock: FrameClock, layout: str,
            stats: DecodeStats) -> Iterator[Frame]:
    """The decoded frames inside ``window``, upright, on the output's clock, counted in ``stats``."""
    index = 0
    try:
        for pts, frame in decoded:
            if pts < window.first:
                continue
            if window.end is not None and pts >= window.end:
                return
            data = pixels(frame)
            stats.damaged += bool(frame.is_corrupt)
            if info.rotation:
                data = np.rot90(data, _ROT90[info.rotation])
            out_pts, out_duration = clock.place(pts - window.origin, frame.duration or None)
            out = Frame(index, out_pts, out_duration, clock.time_base, np.ascontiguousarray(data), layout)
            stats.frames = index = index + 1
            stats.end_seconds = out.seconds + (float(out.duration * out.time_base) if out.duration
                                               else 1 / float(info.frame_rate))
            yield out
    except av.FFmpegError as err:
        raise InputError(
            f"input {shown(info.path)}: corrupt or truncated video data after {index} frame(s) ({reason(err)})"
        ) from err


def _managed(options: dict[str, object], to_display: Callable[[np.ndarray], np.ndarray]
             ) -> Callable[[av.VideoFrame], np.ndarray]:
    """Frames as float RGB (float samples kept as they are, integer ones in [0, 1]) through
    ``to_display``, as 16-bit display-referred RGB."""
    float_options = {**options, "format": "gbrpf32le"}

    def convert(frame: av.VideoFrame) -> np.ndarray:
        if "f32" in frame.format.name or "f16" in frame.format.name:
            rgb = frame.to_ndarray(**float_options)
        else:
            rgb = frame.to_ndarray(**{**options, "format": "rgb48le"}).astype(np.float32) * (1 / 65535)
        display = to_display(rgb)
        if options["format"] == "rgb24":
            return (display * 255 + 0.5).astype(np.uint8)
        return (display * 65535 + 0.5).astype(np.uint16)

    return convert


def _rgb_converter(info: VideoInfo, stored: tuple[int, int], options: dict[str, object]
                   ) -> Callable[[av.VideoFrame], np.ndarray] | None:
    """8-bit 4:2:0 frames at their stored size -> (H, W, 3) uint8 RGB with the native kernel
    (``native/colour.cpp``: FFmpeg's accurate bilinear conversion to within one level, in a
    sixth of its time: ~4 against ~23 ms a 1080p frame on one core); other frames through
    swscale with ``options``, as are interlaced frames left woven (their chroma belongs to
    each field). None where the kernel cannot be built or does not apply."""
    if info.matrix == "gbr" or stored != (info.width, info.height) or stored[0] % 2 or stored[1] % 2:
        return None
    kernels = colour_kernels(cache_dir())
    if kernels is None:
        return None
    matrix, lv = cs.ycbcr_to_rgb_rows(info.matrix), cs.levels(8, info.full_range)

    def convert(frame: av.VideoFrame) -> np.ndarray:
        if (frame.format.name not in ("yuv420p", "yuvj420p") or (frame.width, frame.height) != stored
                or frame.interlaced_frame):  # interlaced chroma: swscale converts each field apart
            return frame.to_ndarray(**options)
        planes = tuple(np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, :p.width] for p in frame.planes)
        return kernels.yuv420_to_rgb8(planes, matrix, lv)

    return convert


def first_frame_offset(info: VideoInfo, start: float = 0.0) -> int:
    """Where the first frame at or after ``start`` lies, in the stream's time base from ``start``."""
    for frame in decode_frames(info, start=start, size=(16, 16)):
        return round(frame.pts * frame.time_base / info.time_base)
    return 0


def _timed_frames(info: VideoInfo, start: float, window_pts: int, threads: int, deinterlace: bool,
                  stats: DecodeStats, gpu: str | None = None) -> Iterator[tuple[int, av.VideoFrame]]:
    """Decoded frames of the first video stream with strictly increasing timestamps.

    With ``start`` > 0 the decode seeks to the keyframe before the window; where there is
    none (a clip of one long GOP) the seek lands past the window, and the decode starts
    over from the beginning instead, so no frame of the window is ever lost.
    """
    if info.sequence is not None and info.sequence.missing:  # --missing hold
        yield from held_frames(info, window_pts if start > 0 else None)
        return
    if start > 0:
        seeked = _timestamped(info, window_pts, threads, deinterlace, stats, gpu)
        try:
            first = next(seeked, None)
        except av.FFmpegError:  # a seek past the last frame (image2 refuses it): from the start instead
            first = None
        if first is not None and first[0] <= window_pts:
            yield first
            yield from seeked
            return
        seeked.close()
        stats.discarded = 0
    yield from _timestamped(info, None, threads, deinterlace, stats, gpu)


def _timestamped(info: VideoInfo, seek: int | None, threads: int, deinterlace: bool,
                 stats: DecodeStats, gpu: str | None = None) -> Iterator[tuple[int, av.VideoFrame]]:
    """Missing timestamps follow the previous frame; broken (non-increasing) ones are moved
    just after it, so the output's timing is always valid. Each frame lasts until the next
    one (a decoder's own durations follow its packets' order, not the pictures'); the last
    lasts its own duration or one nominal frame, whichever is shorter (a variable-rate clip
    with a 10,000 s gap had its last frame shown for 3,334 s)."""
    last_pts: int | None = None
    held: av.VideoFrame | None = None
    with _open(info, gpu) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.thread_count = threads
        if seek is not None:
            container.seek(seek, stream=stream, backward=True, any_frame=False)
        frames = _packets_decoded(container, stream, stats)
        for frame in _bwdif(stream, frames) if deinterlace else frames:
            pts = frame.pts if frame.pts is not None else (last_pts + 1 if last_pts is not None else (seek or 0))
            if last_pts is not None and pts <= last_pts:
                pts = last_pts + 1
            if held is not None and last_pts is not None:
                held.duration = pts - last_pts
                yield last_pts, held
            last_pts, held = pts, frame
        if held is not None and last_pts is not None:
            nominal = max(1, round(info.frame_seconds / info.time_base))
            held.duration = min(held.duration or nominal, nominal)
            yield last_pts, held


#: Codecs NVIDIA's decoder (NVDEC, FFmpeg's ``*_cuvid`` and ``cuda`` hwaccel) takes.
NVDEC_CODECS = frozenset({"h264", "hevc", "av1", "vp9", "vp8", "mpeg1video", "mpeg2video", "mpeg4", "vc1", "mjpeg"})


def _open(info: VideoInfo, gpu: str | None) -> av.container.InputContainer:
    """The input, its video decoded on CUDA device ``gpu`` (no software fallback) or the CPU."""
    if gpu is None:
        return av.open(info.url, metadata_errors="replace", **info.open_args)
    from av.codec.hwaccel import HWAccel

    return av.open(info.url, metadata_errors="replace", **info.open_args,
                   hwaccel=HWAccel("cuda", device=gpu, allow_software_fallback=False))


def nvdec_problem(info: VideoInfo, gpu: str) -> str | None:
    """Why the clip cannot be decoded on CUDA device ``gpu`` 's NVDEC (None: it can): a codec
    NVDEC does not take, an FFmpeg without CUDA, or a first frame that does not decode there."""
    if info.codec not in NVDEC_CODECS:
        return f"NVDEC does not decode {info.codec}"
    from av.codec.hwaccel import hwdevices_available

    if "cuda" not in hwdevices_available():
        return "this FFmpeg has no CUDA decoding"
    try:
        with _open(info, gpu) as container:
            next(container.decode(video=0))
    except (av.FFmpegError, OSError, StopIteration, ValueError) as err:
        return f"NVDEC could not decode it ({reason(err) if isinstance(err, av.FFmpegError) else err})"
    return None


def _packets_decoded(container: av.container.InputContainer, stream: av.VideoStream,
                     stats: DecodeStats) -> Iterator[av.VideoFrame]:
    for packet in container.demux(stream):
        if packet.is_discard:
            stats.discarded += 1  # an edit list hides it: decoded as a reference, never shown
        yield from packet.decode()


def _bwdif(stream: av.VideoStream, frames: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
    """``frames`` through FFmpeg's bwdif deinterlacer (timestamps kept, flushed at the end).

    bwdif halves the time base (it can also output fields); its frames are put back on the
    stream's time base, so the rest of the decode sees the stream's own timing.
    """
    tb = stream.time_base
    graph = av.filter.Graph()
    source = graph.add_buffer(template=stream)
    bwdif = graph.add("bwdif", BWDIF)
    sink = graph.add("buffersink")
    source.link_to(bwdif)
    bwdif.link_to(sink)
    graph.configure()
    def pushed(frame: av.VideoFrame | None) -> Iterator[av.VideoFrame]:
        graph.vpush(frame)
        while True:
            try:
                out = graph.vpull()
            except (av.BlockingIOError, av.EOFError):
                return
            if out.pts is not None and out.time_base and out.time_base != tb:
                scale = Fraction(out.time_base) / tb
                out.pts = round(out.pts * scale)
                out.duration = round(out.duration * scale) if out.duration else 0
                out.time_base = tb
            yield out

    for frame in frames:  # one at a time: streaming, never the whole clip
        yield from pushed(frame)
    yield from pushed(None)
