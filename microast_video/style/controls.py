"""Creative controls that vary over time or space: style keyframes, alpha ramps, mattes.

* **Keyframes** (``--style-at 0:a.jpg --style-at 4.5:b.jpg``, ``--alpha-at 0:1 --alpha-at
  5:0.6``; times in seconds, or frames with an ``f``: ``120f``): a :class:`Schedule` gives
  the style signals and alpha at any time, interpolated between keyframes (linear or smooth
  easing). Signals are a few vectors, so they are mixed per frame, never recomputed.
* **Mattes** (``--matte``): a :class:`MatteSource` is a matte clip (grey, or the alpha of
  ProRes 4444 / PNG / VP9-alpha) or a still image, mapped onto the input's frames by
  timestamp and scaled to their size; the matte stage attaches one to each frame.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from ..colour.convert import luma
from ..core.errors import InputError, OptionError, shown
from ..core.files import read_settings_text
from ..core.frame import Frame
from ..core.options import DEFAULT_MAX_PIXELS, Ease, megapixels
from ..core.schema import KEYFRAME_OPTIONS, OPTIONS
from ..media.image import check_image
from ..media.probe import VideoInfo, file_url, probe
from ..models.signals import StyleSignals

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def parse_time(text: str, what: str) -> str:
    """A keyframe time as given ("4.5" seconds or "120f" frames), checked."""
    body = text[:-1] if text.endswith("f") else text
    try:
        value = int(body) if text.endswith("f") else float(body)
    except ValueError:
        raise OptionError(f"{what}: time {text!r} must be seconds (4.5) or a frame number (120f)") from None
    if not math.isfinite(value) or value < 0:
        raise OptionError(f"{what}: time {text!r} must be >= 0")
    return text


def seconds(time: str, rate: Fraction) -> float:
    """A checked keyframe time in seconds (frame numbers through the clip's frame rate)."""
    return float(Fraction(int(time[:-1])) / rate) if time.endswith("f") else float(time)


def parse_keyframe(text: str, what: str) -> tuple[str, str]:
    """``"4.5:b.jpg"`` -> ("4.5", "b.jpg")."""
    time, sep, value = text.partition(":")
    if not sep or not value:
        raise OptionError(f"{what} {text!r} must look like TIME:VALUE (4.5:b.jpg, 120f:0.6)")
    return parse_time(time.strip(), what), value.strip()


def alpha_value(text: str | float, where: str) -> float:
    """An alpha keyframe's value, checked as ``--alpha`` is (one line naming ``where``)."""
    try:
        value = float(text) if isinstance(text, str) else text
    except ValueError:
        value = text
    return OPTIONS["alpha"].check(value, where)


#: What a keyframes file may hold: style keyframes, and the options in ``KEYFRAME_OPTIONS``.
KEYFRAME_KEYS = ("style", *KEYFRAME_OPTIONS)


def load_keyframe_file(path: Path) -> tuple[list[tuple[str, str]], list[tuple[str, float]], Ease | None]:
    """A keyframe file (TOML): ``style = [[0, "a.jpg"], [4.5, "b.jpg"]]``, ``alpha = [[0, 1.0], ...]``,
    ``ease = "smooth"``; style paths relative to the file. Every value is checked as its
    option is on the command line; an unknown key is refused with the known ones."""
    name = f"keyframes {shown(path)}"
    try:
        data = tomllib.loads(read_settings_text(path, "keyframes"))
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{name}: not a readable TOML file ({' '.join(str(err).split())})") from None
    for key in data:
        if key not in KEYFRAME_KEYS:
            raise OptionError(f"{name}: {key}: unknown key (known: {', '.join(sorted(KEYFRAME_KEYS))})")
    styles, alphas = [], []
    try:
        for time, image in data.get("style", []):
            styles.append((parse_time(str(time), name), str(path.parent / image)))
        for i, (time, value) in enumerate(data.get("alpha", [])):
            alphas.append((parse_time(str(time), name), alpha_value(value, f"{name}: alpha[{i}]:")))
    except (TypeError, ValueError) as err:
        if isinstance(err, OptionError):
            raise
        raise InputError(f"{name}: {' '.join(str(err).split())}") from None
    ease = OPTIONS["ease"].check(data["ease"], f"{name}: ease:") if "ease" in data else None
    return styles, alphas, ease


def check_keyframes(times: Sequence[str], rate: Fraction, what: str) -> list[float]:
    """Keyframe times in seconds, strictly increasing."""
    found = [seconds(t, rate) for t in times]
    if any(b <= a for a, b in zip(found, found[1:])):
        raise OptionError(f"{what}: keyframe times must increase, got {', '.join(times)}")
    return found


def _mix(a: StyleSignals, b: StyleSignals, w: float) -> StyleSignals:
    return StyleSignals(*((1 - w) * x + w * y for x, y in zip(a.tensors(), b.tensors())))


def _where(keys: Sequence[float], t: float, ease: Ease) -> tuple[int, int, float]:
    """(i, j, w): ``t`` lies between keyframe i and j, a share ``w`` of the way (eased)."""
    if t <= keys[0]:
        return 0, 0, 0.0
    if t >= keys[-1]:
        return len(keys) - 1, len(keys) - 1, 0.0
    j = next(k for k, key in enumerate(keys) if key > t)
    return j - 1, j, ease.apply((t - keys[j - 1]) / (keys[j] - keys[j - 1]))


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Style signals and alpha at any time of the clip (seconds on the output's clock)."""

    style_times: tuple[float, ...]
    styles: tuple[StyleSignals, ...]
    alpha_times: tuple[float, ...]
    alphas: tuple[float, ...]
    ease: Ease = Ease.linear

    def signals_at(self, t: float, default: StyleSignals) -> StyleSignals:
        if not self.styles:
            return default
        i, j, w = _where(self.style_times, t, self.ease)
        return self.styles[i] if i == j or w == 0 else _mix(self.styles[i], self.styles[j], w)

    def alpha_at(self, t: float, default: float) -> float:
        if not self.alphas:
            return default
        i, j, w = _where(self.alpha_times, t, self.ease)
        return self.alphas[i] + w * (self.alphas[j] - self.alphas[i])

    def batch(self, times: Sequence[float], signals: StyleSignals, alpha: float, device: torch.device
              ) -> tuple[StyleSignals, torch.Tensor]:
        """Signals stacked per frame (N, 64, 1, 1 each) and alphas (N, 1, 1, 1), on ``device``."""
        per_frame = [self.signals_at(t, signals).to(device) for t in times]
        stacked = StyleSignals(*(torch.cat(parts) for parts in zip(*(s.tensors() for s in per_frame))))
        alphas = torch.tensor([self.alpha_at(t, alpha) for t in times], device=device).view(-1, 1, 1, 1)
        return stacked, alphas


# --- mattes ------------------------------------------------------------------------------

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
