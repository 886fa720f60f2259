"""Decode: any video FFmpeg reads -> upright RGB :class:`Frame`s, streaming, via PyAV."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, Interpolation

from ._errors import InputError
from ._frame import Frame
from ._transport import pack_planes, unpack_planes

# FFmpeg's names for the colour tags (AVColorPrimaries, AVColorTransferCharacteristic,
# AVColorSpace), as the ffmpeg program's -color_primaries / -color_trc / -colorspace take them.
PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film",
             9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "jedec-p22"}
TRANSFERS = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
             9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1",
             14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67"}
MATRICES = {0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
            8: "ycgco", 9: "bt2020nc", 10: "bt2020c"}
# AVColorSpace -> the swscale matrix PyAV converts with, and our YCbCr matrix name.
_SWS = {1: (Colorspace.ITU709, "bt709"), 4: (Colorspace.FCC, "bt601"), 5: (Colorspace.ITU601, "bt601"),
        6: (Colorspace.ITU601, "bt601"), 7: (Colorspace.SMPTE240M, "bt709"), 9: (Colorspace.BT2020, "bt2020"),
        10: (Colorspace.BT2020, "bt2020")}
_UNSPECIFIED = 2


@dataclasses.dataclass(frozen=True)
class StreamInfo:
    """A non-video stream the output carries over (audio or subtitles)."""

    index: int  # position among the streams of its kind (ffmpeg's a:N / s:N)
    codec: str
    language: str | None
    channels: int | None = None


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What the pipeline needs to know about an input file, read once up front.

    Sizes are in pixels; ``width, height`` are the stored (coded) picture's, before
    rotation. ``rotation`` is how far (degrees, clockwise) stored pictures turn to show
    upright, as players do. Times are exact ``Fraction``s of a second.
    """

    path: Path
    container: str
    codec: str
    width: int
    height: int
    pix_fmt: str
    bit_depth: int
    sar: Fraction
    rotation: int
    frame_rate: Fraction
    time_base: Fraction
    start_time: Fraction
    duration: Fraction | None
    frames: int | None  # the container's count, else estimated from duration x rate
    frames_listed: bool  # True when the container itself lists the frame count
    matrix: str  # YCbCr matrix used for RGB: "bt601", "bt709", "bt2020" (or "gbr")
    full_range: bool
    color_primaries: str | None  # tags as found (None = untagged)
    color_trc: str | None
    colorspace: str | None
    audio: tuple[StreamInfo, ...]
    subtitles: tuple[StreamInfo, ...]
    chapters: int
    metadata: dict[str, str]

    @property
    def upright_size(self) -> tuple[int, int]:
        """(width, height) of the stored pictures once rotated upright."""
        return (self.height, self.width) if self.rotation in (90, 270) else (self.width, self.height)

    @property
    def upright_sar(self) -> Fraction:
        """Sample aspect ratio of the upright pictures."""
        return 1 / self.sar if self.rotation in (90, 270) else self.sar

    @property
    def display_aspect(self) -> Fraction:
        """Display aspect ratio (width / height) of the upright pictures."""
        w, h = self.upright_size
        return Fraction(w, h) * self.upright_sar


def _tag(table: dict[int, str], value: int | None) -> str | None:
    return table.get(int(value)) if value not in (None, _UNSPECIFIED) else None


def _bit_depth(fmt: av.VideoFormat) -> int:
    try:
        return max(c.bits for c in fmt.components)
    except (AttributeError, ValueError):
        return 8


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Open ``path`` with PyAV and describe its first video stream.

    Raises:
        InputError: missing file, not a media file, or no video stream.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"input {path}: file not found")
    if not path.is_file():
        raise InputError(f"input {path}: not a file")
    if path.stat().st_size == 0:
        raise InputError(f"input {path}: file is empty (0 bytes)")
    try:
        container = av.open(str(path), metadata_errors="replace")
    except (av.FFmpegError, UnicodeDecodeError) as err:
        raise InputError(f"input {path}: not a media file FFmpeg can read ({_reason(err)})") from err
    with container:
        if not container.streams.video:
            raise InputError(f"input {path}: no video stream")
        stream = container.streams.video[0]
        cc = stream.codec_context
        if cc.width <= 0 or cc.height <= 0 or stream.codec_context.format is None:
            raise InputError(f"input {path}: the video stream has no usable picture size or pixel format")
        fmt = cc.format
        rotation = _stream_rotation(container, stream)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or rate <= 0:
            raise InputError(f"input {path}: cannot tell the video's frame rate")
        tb = stream.time_base or Fraction(1, 90000)
        start = Fraction(container.start_time, av.time_base) if container.start_time is not None else Fraction(0)
        if container.duration is not None:
            duration = Fraction(container.duration, av.time_base)
        elif stream.duration is not None:
            duration = stream.duration * tb
        else:
            duration = None
        frames = stream.frames or (round(float(duration * rate)) if duration else None)
        cs = int(cc.colorspace) if cc.colorspace is not None else _UNSPECIFIED
        matrix = "gbr" if cs == 0 else _SWS.get(cs, (None, None))[1] or default_matrix(cc.width, cc.height)
        full_range = int(cc.color_range or 0) == 2 or fmt.name.startswith("yuvj")
        audio = tuple(
            StreamInfo(i, s.codec_context.name, s.metadata.get("language"), s.codec_context.channels)
            for i, s in enumerate(container.streams.audio)
        )
        subtitles = tuple(
            StreamInfo(i, s.codec_context.name if s.codec_context else "unknown", s.metadata.get("language"))
            for i, s in enumerate(container.streams.subtitles)
        )
        try:
            chapters = len(container.chapters())
        except (AttributeError, av.FFmpegError):
            chapters = 0
        return VideoInfo(
            path=path,
            container=container.format.name,
            codec=cc.name,
            width=cc.width,
            height=cc.height,
            pix_fmt=fmt.name,
            bit_depth=_bit_depth(fmt),
            sar=Fraction(stream.sample_aspect_ratio) if stream.sample_aspect_ratio else Fraction(1),
            rotation=rotation,
            frame_rate=Fraction(rate),
            time_base=Fraction(tb),
            start_time=start,
            duration=duration,
            frames=frames or None,
            frames_listed=bool(stream.frames),
            matrix=matrix,
            full_range=full_range,
            color_primaries=_tag(PRIMARIES, cc.color_primaries),
            color_trc=_tag(TRANSFERS, cc.color_trc),
            colorspace=_tag(MATRICES, cc.colorspace),
            audio=audio,
            subtitles=subtitles,
            chapters=chapters,
            metadata=dict(container.metadata),
        )


def default_matrix(width: int, height: int) -> str:
    """The YCbCr matrix an untagged stream of this size most likely uses.

    HD and larger (width > 1024 or height > 576) is BT.709, as players assume; SD is BT.601.
    Never BT.601 for HD, which is what converters that ignore the size silently do.
    """
    return "bt709" if width > 1024 or height > 576 else "bt601"


def _stream_rotation(container: av.container.InputContainer, stream: av.VideoStream) -> int:
    """Clockwise degrees to turn stored pictures upright, from the first frame's display matrix.

    Decodes one frame of ``container`` (which ``probe`` then closes).
    """
    try:
        for frame in container.decode(stream):
            rotation = frame.rotation or 0
            break
        else:
            return 0
    except av.FFmpegError:
        return 0
    # PyAV reports the display matrix angle (counter-clockwise); players turn by its negative.
    return int(round(-rotation)) % 360 // 90 * 90


class FrameClock:
    """Puts constant-rate frames back on their exact frame grid; leaves the rest alone.

    Containers store times in coarse units (Matroska: 1 ms), so a 30000/1001 clip arrives
    with times rounded to the millisecond, and an MP4 written from those times would
    report 29.975 fps. A frame whose time lies within ``max(1 ms, one time-base unit)``
    of the grid ``t0 + k / rate`` (``t0``: the first frame's time) is placed exactly on
    it; any other frame (variable frame rate) keeps its own time. Output times are in a
    unit fine enough to hold both: ``1 / lcm(time base denominator, rate numerator)``.
    """

    def __init__(self, time_base: Fraction, rate: Fraction) -> None:
        self.source_tb = time_base
        self.rate = rate
        den = math.lcm(time_base.denominator, rate.numerator) if time_base.numerator == 1 else 0
        self.snapping = 0 < den <= 10**7
        self.time_base = Fraction(1, den) if self.snapping else time_base
        self.tolerance = max(Fraction(1, 1000), time_base)
        self._anchor: Fraction | None = None
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


def _reason(err: BaseException) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return " ".join(str(text).split()) or type(err).__name__


def decode_frames(
    info: VideoInfo,
    *,
    start: float = 0.0,
    duration: float | None = None,
    size: tuple[int, int] | None = None,
    deep: bool = False,
    threads: int = 0,
    planes: bool = False,
) -> Iterator[Frame]:
    """Decode the first video stream of ``info.path`` into upright RGB frames, one at a time.

    Args:
        info: from :func:`probe`.
        start: seconds from the start of the file to begin at (frames before are skipped).
        duration: seconds to decode from ``start`` (None: to the end).
        size: (width, height) of the upright output pictures; None keeps the stored size.
        deep: True for uint16 samples (10-bit and deeper sources), False for uint8.
        threads: FFmpeg decoding threads (0 = automatic).
        planes: yield 4:2:0 planes in the stream's own matrix and range (``layout
            "yuv420p"``, 1.5 samples per pixel; needs an even ``size``) instead of RGB,
            for a device that converts colour itself.

    Yields:
        :class:`Frame` s in presentation order, ``pts`` relative to the output's start
        (the file's start time plus ``start``), in the stream's time base.

    Raises:
        InputError: the stream is corrupt or cannot be decoded.
    """
    tb = info.time_base
    origin = info.start_time + Fraction(start).limit_denominator(1_000_000)
    origin_pts = math.floor(origin / tb)
    end_pts = None if duration is None else origin_pts + math.ceil(Fraction(duration).limit_denominator(1_000_000) / tb)
    upright = info.upright_size if size is None else size
    stored = (upright[1], upright[0]) if info.rotation in (90, 270) else upright
    shrinking = stored[0] * stored[1] < info.width * info.height
    options = dict(
        width=stored[0],
        height=stored[1],
        format="rgb48le" if deep else "rgb24",
        src_colorspace=_SWS.get({"bt709": 1, "bt601": 5, "bt2020": 9}.get(info.matrix, 1))[0],
        src_color_range=ColorRange.JPEG if info.full_range else ColorRange.MPEG,
        dst_color_range=ColorRange.JPEG,
        interpolation=(Interpolation.AREA if shrinking else Interpolation.BICUBIC)
        | Interpolation.ACCURATE_RND
        | Interpolation.FULL_CHR_H_INT,
    )
    if info.matrix == "gbr":
        options.pop("src_colorspace")
        options.pop("src_color_range")
    if planes:
        if stored[0] % 2 or stored[1] % 2:
            raise ValueError(f"4:2:0 planes need an even frame size, got {stored = }")
        same_range = ColorRange.JPEG if info.full_range else ColorRange.MPEG
        options.update(format="yuv420p10le" if deep else "yuv420p", dst_color_range=same_range)
        options.pop("src_colorspace", None)  # no matrix change: the samples stay YCbCr
    k = {0: 0, 90: -1, 180: 2, 270: 1}[info.rotation]  # np.rot90 turns counter-clockwise
    index = 0
    last_pts: int | None = None
    clock = FrameClock(tb, info.frame_rate)
    try:
        with av.open(str(info.path), metadata_errors="replace") as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            stream.thread_count = threads
            if start > 0:
                container.seek(origin_pts, stream=stream, backward=True, any_frame=False)
            for packet in container.demux(stream):
                for frame in packet.decode():
                    pts = frame.pts if frame.pts is not None else (last_pts + 1 if last_pts is not None else origin_pts)
                    if last_pts is not None and pts <= last_pts:
                        pts = last_pts + 1  # broken timestamps: keep them strictly increasing
                    last_pts = pts
                    if pts < origin_pts:
                        continue
                    if end_pts is not None and pts >= end_pts:
                        return
                    pixels = frame.to_ndarray(**options)
                    if k and planes:
                        pixels = pack_planes([np.rot90(p, k) for p in unpack_planes(pixels)])
                    elif k:
                        pixels = np.rot90(pixels, k)
                    out_pts, out_duration = clock.place(pts - origin_pts, frame.duration or None)
                    yield Frame(index, out_pts, out_duration, clock.time_base, np.ascontiguousarray(pixels),
                                "yuv420p" if planes else "rgb")
                    index += 1
    except av.FFmpegError as err:
        raise InputError(
            f"input {info.path}: corrupt or truncated video data after {index} frame(s) ({_reason(err)})"
        ) from err
