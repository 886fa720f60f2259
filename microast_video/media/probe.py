"""Probe: what a video file holds, read once up front with PyAV (no frames kept)."""

from __future__ import annotations

import dataclasses
import os
import re
from fractions import Fraction
from pathlib import Path

import av

from ..colour import spaces as cs
from ..core.errors import InputError, shown
from ..core.options import Missing
from .frame_header import read_header
from .sequence import ImageSequence, find_sequence


def file_url(path: str | os.PathLike[str]) -> str:
    """``path`` as FFmpeg must open it: always a local file, never a protocol.

    FFmpeg reads ``concat:a.mp4|b.mp4`` or ``http://...`` in a file name as a protocol;
    the ``file:`` prefix with an absolute path makes it open exactly that file.
    """
    return "file:" + os.path.abspath(os.fspath(path))


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
    matrix: str  # the YCbCr matrix the samples use (a _colorspace name), or "gbr" for RGB
    full_range: bool
    color_primaries: str | None  # tags as found (None = untagged)
    color_trc: str | None
    colorspace: str | None
    audio: tuple[StreamInfo, ...]
    subtitles: tuple[StreamInfo, ...]
    chapters: int
    metadata: dict[str, str]
    video_streams: int = 1  # only the first is processed
    interlaced: bool = False  # the first frame is flagged interlaced (field-coded)
    alpha: bool = False  # the stream carries an alpha channel (which the output cannot keep)
    nominal_rate: Fraction | None = None  # FFmpeg's guess of the rate frames are timed on (None: frame_rate)
    timecode: str | None = None  # SMPTE timecode of the first frame (video stream, tmcd track or container tag)
    sequence: ImageSequence | None = None  # numbered frames read at frame_rate (--fps), not a movie
    colour_space: str | None = None  # what an EXR / DPX frame's header declares (an OpenColorIO name)
    colour_declared_by: str | None = None  # the header field that declared it

    @property
    def frame_seconds(self) -> Fraction:
        """How long one frame lasts at the nominal rate (a variable-rate clip's usual frame)."""
        return 1 / (self.nominal_rate or self.frame_rate)

    @property
    def pixels(self) -> int:
        """Pixels per stored picture."""
        return self.width * self.height

    @property
    def hdr(self) -> str | None:
        """"PQ" or "HLG" for high-dynamic-range material, else None."""
        return {"smpte2084": "PQ", "arib-std-b67": "HLG"}.get(self.color_trc or "")

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

    @property
    def url(self) -> str:
        """The path as FFmpeg opens it (see :func:`file_url`; a sequence's printf pattern)."""
        return file_url(self.sequence.pattern if self.sequence is not None else self.path)

    @property
    def open_args(self) -> dict[str, object]:
        """What ``av.open`` needs besides :attr:`url`: a sequence's demuxer, rate and first number."""
        if self.sequence is None:
            return {}
        return {"format": "image2", "options": sequence_options(self.sequence, self.frame_rate)}


def _bit_depth(fmt: av.VideoFormat) -> int:
    try:
        return max(c.bits for c in fmt.components)
    except (AttributeError, ValueError):
        return 8


def reason(err: BaseException) -> str:
    """An FFmpeg or OS error as a short one-line reason."""
    text = getattr(err, "strerror", None) or str(err)
    return " ".join(str(text).split()) or type(err).__name__


#: A name FFmpeg would read as a protocol or URL ("http://...", "concat:a|b", "pipe:").
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _check_file(path: Path, what: str = "input") -> None:
    if not path.exists() and _URL.match(str(path)):
        raise InputError(f"{what} {shown(path)}: not a local file (URLs and FFmpeg protocols are not read; "
                         "download the file first)")
    if not path.exists():
        raise InputError(f"{what} {shown(path)}: file not found")
    if not path.is_file():
        raise InputError(f"{what} {shown(path)}: not a file")
    if path.stat().st_size == 0:
        raise InputError(f"{what} {shown(path)}: file is empty (0 bytes)")


#: Frames a second of an image sequence unless --fps says otherwise.
DEFAULT_FPS = Fraction(24)


def sequence_options(sequence: ImageSequence, rate: Fraction) -> dict[str, str]:
    """FFmpeg's image2 demuxer options for ``sequence`` at ``rate``."""
    return {"framerate": f"{rate.numerator}/{rate.denominator}", "start_number": str(sequence.first),
            "pattern_type": "sequence"}


def probe(path: str | os.PathLike[str], what: str = "input", fps: Fraction | None = None,
          missing: Missing = Missing.error) -> VideoInfo:
    """Open ``path`` with PyAV and describe its first video stream; errors call it ``what``
    ("input", "matte"...). A folder of numbered frames, a ``%04d`` / ``####`` pattern or one
    frame of a sequence is read as a clip at ``fps`` (24 by default); a gap in its numbering
    is refused, or with ``missing`` hold, kept in ``sequence.missing`` for the decoder to hold.

    Raises:
        InputError: missing file, not a media file, no video stream, or a gap in a sequence.
    """
    path = Path(path)
    sequence = find_sequence(path)
    if sequence is not None:
        if Missing(missing) is Missing.error:
            sequence.check_complete()
        return _probe_sequence(path, sequence, fps or DEFAULT_FPS, what)
    _check_file(path, what)
    try:
        container = av.open(file_url(path), metadata_errors="replace")
    except (av.FFmpegError, UnicodeDecodeError) as err:
        raise InputError(f"{what} {shown(path)}: not a media file FFmpeg can read ({reason(err)})") from err
    with container:
        if not container.streams.video:
            raise InputError(f"{what} {shown(path)}: no video stream")
        stream = container.streams.video[0]
        cc = stream.codec_context
        if cc.width <= 0 or cc.height <= 0 or cc.format is None:
            raise InputError(f"{what} {shown(path)}: the video stream has no usable picture size or pixel format")
        return VideoInfo(path=path, container=container.format.name, codec=cc.name, width=cc.width,
                         height=cc.height, pix_fmt=cc.format.name, bit_depth=_bit_depth(cc.format),
                         sar=Fraction(stream.sample_aspect_ratio) if stream.sample_aspect_ratio else Fraction(1),
                         **_first_frame(container, stream), **_timing(container, stream, path, what),
                         **_colour(cc), **_carried(container))


def _probe_sequence(path: Path, sequence: ImageSequence, rate: Fraction, what: str) -> VideoInfo:
    """A sequence's description: its first frame's picture, ``rate`` frames a second, its count."""
    try:
        container = av.open(file_url(sequence.pattern), format="image2", metadata_errors="replace",
                            options=sequence_options(sequence, rate))
    except (av.FFmpegError, UnicodeDecodeError) as err:
        raise InputError(f"{what} {shown(sequence.pattern)}: frames FFmpeg cannot read ({reason(err)})") from err
    with container:
        stream = container.streams.video[0]
        cc = stream.codec_context
        duration = sequence.count / rate
        header = read_header(sequence.frame(sequence.first))
        carried = {**_carried(container), **({"timecode": header.timecode} if header.timecode else {})}
        timing = {"frame_rate": rate, "nominal_rate": rate, "time_base": Fraction(stream.time_base or 1 / rate),
                  "start_time": Fraction(0), "duration": duration, "frames": sequence.count, "frames_listed": True}
        return VideoInfo(path=path, container="image2", codec=cc.name, width=cc.width, height=cc.height,
                         pix_fmt=cc.format.name, bit_depth=_bit_depth(cc.format), sar=Fraction(1),
                         **_first_frame(container, stream), **timing, **_colour(cc), **carried,
                         sequence=sequence, colour_space=header.colour_space,
                         colour_declared_by=header.declared_by)


def _timing(container: av.container.InputContainer, stream: av.VideoStream, path: Path, what: str
            ) -> dict[str, object]:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or rate <= 0:
        raise InputError(f"{what} {shown(path)}: cannot tell the video's frame rate")
    tb = stream.time_base or Fraction(1, 90000)
    start = Fraction(container.start_time, av.time_base) if container.start_time is not None else Fraction(0)
    if container.duration is not None:
        duration = Fraction(container.duration, av.time_base)
    elif stream.duration is not None:
        duration = stream.duration * tb
    else:
        duration = None
    frames = stream.frames or (round(float(duration * rate)) if duration else None)
    nominal = stream.guessed_rate or stream.base_rate
    return {"frame_rate": Fraction(rate), "nominal_rate": Fraction(nominal) if nominal and nominal > 0 else None,
            "time_base": Fraction(tb), "start_time": start, "duration": duration,
            "frames": frames or None, "frames_listed": bool(stream.frames)}


def _colour(cc: av.VideoCodecContext) -> dict[str, object]:
    code = int(cc.colorspace) if cc.colorspace is not None else cs.UNSPECIFIED
    if code == cs.RGB_CODE:
        matrix = "gbr"
    else:
        found = cs.from_code(code)
        matrix = (found or cs.default_for_size(cc.width, cc.height)).name
    return {"matrix": matrix, "full_range": int(cc.color_range or 0) == 2 or cc.format.name.startswith("yuvj"),
            "color_primaries": cs.tag_name(cs.PRIMARIES, cc.color_primaries),
            "color_trc": cs.tag_name(cs.TRANSFERS, cc.color_trc),
            "colorspace": cs.tag_name(cs.COLORSPACE_NAMES, cc.colorspace)}


def _carried(container: av.container.InputContainer) -> dict[str, object]:
    """The streams and tags the output carries over: audio, subtitles, chapters, metadata."""
    audio = tuple(StreamInfo(i, s.codec_context.name, s.metadata.get("language"), s.codec_context.channels)
                  for i, s in enumerate(container.streams.audio))
    subtitles = tuple(StreamInfo(i, s.codec_context.name if s.codec_context else "unknown", s.metadata.get("language"))
                      for i, s in enumerate(container.streams.subtitles))
    try:
        chapters = len(container.chapters())
    except (AttributeError, av.FFmpegError):
        chapters = 0
    tagged = [s.metadata for s in (*container.streams.video[:1], *container.streams.data)] + [container.metadata]
    timecode = next((str(t["timecode"]) for t in tagged if t.get("timecode")), None)
    return {"audio": audio, "subtitles": subtitles, "chapters": chapters, "metadata": dict(container.metadata),
            "video_streams": len(container.streams.video), "timecode": timecode}


def _has_alpha(stream: av.VideoStream) -> bool:
    """An alpha channel in the pixel format, or VP9/VP8 alpha in WebM (``alpha_mode`` tag)."""
    name = stream.codec_context.format.name
    return str(stream.metadata.get("alpha_mode", stream.metadata.get("ALPHA_MODE", ""))) == "1" or any(
        tag in name for tag in ("yuva", "rgba", "bgra", "argb", "abgr", "gbrap", "ya8", "ya16", "pal8"))


def _first_frame(container: av.container.InputContainer, stream: av.VideoStream) -> dict[str, object]:
    """What only a decoded frame tells: rotation (display matrix), interlacing, alpha.

    Rotation: clockwise degrees to turn stored pictures upright (players turn by the
    negative of the display matrix angle PyAV reports). Decodes one frame of ``container``
    (which ``probe`` then closes).
    """
    found: dict[str, object] = {"rotation": 0, "interlaced": False, "alpha": _has_alpha(stream)}
    try:
        for frame in container.decode(stream):
            found["rotation"] = int(round(-(frame.rotation or 0))) % 360 // 90 * 90
            found["interlaced"] = bool(frame.interlaced_frame)
            break
    except av.FFmpegError:
        pass
    return found
