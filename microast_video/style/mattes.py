"""Mattes (``--matte``): a :class:`MatteSource` is a matte clip (grey, or the alpha of ProRes
4444 / PNG / VP9-alpha) or a still image, mapped onto the input's frames by timestamp and
scaled to their size; the matte stage attaches one to each frame."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np

from ..colour.convert import luma
from ..core.errors import InputError, shown
from ..core.frame import Frame
from ..core.options import DEFAULT_MAX_PIXELS, megapixels
from ..media.image import check_image
from ..media.probe import VideoInfo, file_url, probe

_IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"}


def _matte_plane(frame: av.VideoFrame, alpha: bool) -> np.ndarray:
    """(h, w) uint8: the frame's alpha channel, or its luma."""
    if alpha:
        return np.ascontiguousarray(frame.to_ndarray(format="rgba")[..., 3])
    return np.clip(luma(frame.to_ndarray(format="rgb24")) + 0.5, 0, 255).astype(np.uint8)


def _image_plane(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputError(f"matte {shown(path)}: not a readable image")
    if image.dtype != np.uint8:
        image = (image / (65535.0 if image.dtype == np.uint16 else 1.0) * 255).clip(0, 255).astype(np.uint8)
    if image.ndim == 2:
        return image
    if image.shape[2] in (2, 4):
        return np.ascontiguousarray(image[..., -1])  # the alpha channel
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


@dataclasses.dataclass(frozen=True)
class MatteSource:
    """A matte: a still image (the same for every frame) or a clip (one frame per input frame)."""

    path: Path
    still: np.ndarray | None = None
    info: VideoInfo | None = None

    @staticmethod
    def open(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> MatteSource:
        """The matte at ``path``, its declared size checked against ``max_pixels`` before decoding."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"matte {shown(path)}: file not found")
        if path.suffix.lower() in _IMAGE_EXTENSIONS:
            check_image(path, what="matte", max_pixels=max_pixels)
            return MatteSource(path, still=_image_plane(path))
        info = probe(path, what="matte")
        if info.pixels > max_pixels:
            raise InputError(f"matte {shown(path)}: its frames are {info.width}x{info.height} px "
                             f"({megapixels(info.pixels)}), over the limit of {megapixels(max_pixels)}; raise it "
                             "with --max-pixels")
        return MatteSource(path, info=info)

    def check_covers(self, clip: VideoInfo, start: float, duration: float | None) -> list[str]:
        """Refuse a matte clip shorter than the part of the input it is for; notes on what is mapped."""
        if self.still is not None:
            return [] if self.still.shape[::-1] == clip.upright_size else [
                f"matte {shown(self.path)} ({self.still.shape[1]}x{self.still.shape[0]}) scaled to the frames"]
        m = self.info
        end = (float(clip.duration) if clip.duration else math.inf) if duration is None else start + duration
        if m.duration is not None and float(m.duration) < end - 1.5 / float(clip.frame_rate):
            raise InputError(f"matte {shown(self.path)} lasts {float(m.duration):.2f} s but the input runs to {end:.2f} s; "
                             "a matte needs one frame per input frame")
        notes = []
        if m.upright_size != clip.upright_size:
            notes.append(f"matte {shown(self.path)} ({m.upright_size[0]}x{m.upright_size[1]}) scaled to the frames")
        if m.frame_rate != clip.frame_rate:
            notes.append(f"matte {shown(self.path)} at {float(m.frame_rate):.3f} fps mapped onto the input's frames "
                         "by timestamp")
        return notes

    def frames(self) -> Iterator[tuple[float, np.ndarray]]:
        """(seconds from the matte's start, (h, w) uint8) for each matte frame, streaming."""
        m = self.info
        with av.open(file_url(self.path)) as container:
            stream = container.streams.video[0]
            decoder = None
            if m.alpha and m.codec in ("vp8", "vp9"):  # FFmpeg's own VP8/9 decoders drop the alpha
                decoder = av.CodecContext.create("libvpx-vp9" if m.codec == "vp9" else "libvpx", "r")
            for packet in container.demux(stream):
                for frame in (decoder.decode(packet) if decoder else packet.decode()):
                    t = float((frame.pts or 0) * stream.time_base - m.start_time)
                    yield t, _matte_plane(frame, m.alpha)


def matted(frames: Iterator[Frame], source: MatteSource, start: float) -> Iterator[Frame]:
    """The matte stage: each frame with its matte (uint8, the frame's size), by timestamp."""
    matte_frames = None if source.still is not None else source.frames()
    current = source.still
    upcoming = None if matte_frames is None else next(matte_frames, None)
    for frame in frames:
        if matte_frames is not None:
            t = start + frame.seconds + 1e-6
            while upcoming is not None and upcoming[0] <= t:
                current, upcoming = upcoming[1], next(matte_frames, None)
            if current is None:
                current = upcoming[1] if upcoming is not None else None
        if current is None:
            raise InputError(f"matte {shown(source.path)}: no frame for the input's frame at {frame.seconds:.3f} s")
        h, w = frame.data.shape[:2] if frame.layout == "rgb" else (frame.data.shape[0] * 2 // 3, frame.data.shape[1])
        matte = current if current.shape == (h, w) else cv2.resize(current, (w, h), interpolation=cv2.INTER_AREA)
        yield dataclasses.replace(frame, matte=matte)


def original_outside(frames: Iterator[Frame]) -> Iterator[Frame]:
    """After the temporal stage, one style with a matte: the original pixels outside the matte again.

    The stylizer already keeps them (``lerp(original, painted, matte)``), but the temporal
    stage carries texture across the whole frame; this puts back ``source`` where the matte
    is 0 and blends the soft edge the same way, so what is not ours stays exactly as it was.
    """
    for frame in frames:
        if frame.matte is None or frame.source is None:
            raise ValueError(f"frame {frame.index} reached the matte's last stage without its matte or source")
        m = _matte_for(frame)
        mixed = frame.source + m * (frame.data.astype(np.float32) - frame.source)
        yield frame.with_data(np.rint(mixed).astype(frame.data.dtype))


def _matte_for(frame: Frame) -> np.ndarray:
    """The frame's matte as float32 weights shaped like its data ((H, W, 1) RGB, or per 4:2:0 plane)."""
    m = frame.matte.astype(np.float32) / 255.0
    if frame.layout == "rgb":
        return m[:, :, None]
    h, w = m.shape
    half = cv2.resize(m, (w // 2, h // 2), interpolation=cv2.INTER_AREA).reshape(h // 4, w)  # U and V rows, packed
    return np.concatenate([m, half, half])
