"""Creative controls that vary over time: style keyframes and alpha ramps (the controls that vary
over space, mattes, are :mod:`.mattes`; this module reads no media, so the engine imports no PyAV).

* **Keyframes** (``--style-at 0:a.jpg --style-at 4.5:b.jpg``, ``--alpha-at 0:1 --alpha-at
  5:0.6``; times in seconds, or frames with an ``f``: ``120f``): a :class:`Schedule` gives
  the style signals and alpha at any time, interpolated between keyframes (linear or smooth
  easing). Signals are a few vectors, so they are mixed per frame, never recomputed.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import torch

from ..core.errors import InputError, OptionError, shown
from ..core.files import read_settings_text
from ..core.frame import Frame
from ..core.options import Ease
from ..core.schema import KEYFRAME_OPTIONS, KEYFRAME_VALUES, OPTIONS
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


def keyed_value(name: str, text: str | float, where: str) -> float:
    """A keyframe's value of option ``name`` (strength, alpha), checked as the option is (one
    line naming ``where``)."""
    try:
        value = float(text) if isinstance(text, str) else text
    except ValueError:
        value = text
    return OPTIONS[name].check(value, where)


#: What a keyframes file may hold: style keyframes, and the options in ``KEYFRAME_OPTIONS``.
KEYFRAME_KEYS = ("style", *KEYFRAME_OPTIONS)


def load_keyframe_file(path: Path) -> tuple[list[tuple[str, str]], dict[str, list[tuple[str, float]]], Ease | None]:
    """A keyframe file (TOML): ``style = [[0, "a.jpg"], [4.5, "b.jpg"]]``, ``strength = [[0, 1.0],
    ...]``, ``alpha = [[0, 1.0], ...]``, ``ease = "smooth"``; style paths relative to the file.
    Returns (style keyframes, each keyframed number's keyframes by name, easing). Every value
    is checked as its option is on the command line; an unknown key is refused with the known ones."""
    name = f"keyframes {shown(path)}"
    try:
        data = tomllib.loads(read_settings_text(path, "keyframes"))
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{name}: not a readable TOML file ({' '.join(str(err).split())})") from None
    for key in data:
        if key not in KEYFRAME_KEYS:
            raise OptionError(f"{name}: {key}: unknown key (known: {', '.join(sorted(KEYFRAME_KEYS))})")
    styles: list[tuple[str, str]] = []
    values: dict[str, list[tuple[str, float]]] = {key: [] for key in KEYFRAME_VALUES}
    try:
        for time, image in data.get("style", []):
            styles.append((parse_time(str(time), name), str(path.parent / image)))
        for key in KEYFRAME_VALUES:
            for i, (time, value) in enumerate(data.get(key, [])):
                values[key].append((parse_time(str(time), name), keyed_value(key, value, f"{name}: {key}[{i}]:")))
    except (TypeError, ValueError) as err:
        if isinstance(err, OptionError):
            raise
        raise InputError(f"{name}: {' '.join(str(err).split())}") from None
    ease = OPTIONS["ease"].check(data["ease"], f"{name}: ease:") if "ease" in data else None
    return styles, values, ease


def check_keyframes(times: Sequence[str], rate: Fraction, what: str) -> list[float]:
    """Keyframe times in seconds, strictly increasing."""
    found = [seconds(t, rate) for t in times]
    if any(b <= a for a, b in zip(found, found[1:])):
        raise OptionError(f"{what}: keyframe times must increase, got {', '.join(times)}")
    return found


def with_strength(data: np.ndarray, source: np.ndarray, strength: float) -> np.ndarray:
    """The look at ``strength`` (``--strength``): ``S * data + (1 - S) * source`` per sample,
    rounded, of ``data`` 's dtype and layout (RGB, or 4:2:0 planes: the matrices are affine, so
    a mix of planes is the mix of the pictures). S = 1 gives ``data`` itself (bit for bit),
    S = 0 a copy of ``source``. A convex mix never clips a sample that neither side clips."""
    if strength >= 1.0:
        return data
    if strength <= 0.0:
        return source.copy()
    return cv2.addWeighted(data, strength, source, 1.0 - strength, 0.0)


def at_strength(frames: Iterator[Frame], curve: Curve, default: float) -> Iterator[Frame]:
    """The strength stage (after the temporal stage): each frame mixed with its ``source`` at the
    look's strength at its time (:func:`with_strength`); the source stays with it (the bars and
    matte stages after it need it; the encoder drops it)."""
    for frame in frames:
        if frame.source is None:
            raise ValueError(f"frame {frame.index} reached the strength stage without its source pixels")
        mixed = with_strength(frame.data, frame.source, curve.at(frame.seconds, default))
        yield frame.with_data(mixed, frame.source, keep_matte=True)


def _mix(a: StyleSignals, b: StyleSignals, w: float) -> StyleSignals:
    return type(a)(*((1 - w) * x + w * y for x, y in zip(a.tensors(), b.tensors())))


def _where(keys: Sequence[float], t: float, ease: Ease) -> tuple[int, int, float]:
    """(i, j, w): ``t`` lies between keyframe i and j, a share ``w`` of the way (eased)."""
    if t <= keys[0]:
        return 0, 0, 0.0
    if t >= keys[-1]:
        return len(keys) - 1, len(keys) - 1, 0.0
    j = next(k for k, key in enumerate(keys) if key > t)
    return j - 1, j, ease.apply((t - keys[j - 1]) / (keys[j] - keys[j - 1]))


@dataclasses.dataclass(frozen=True)
class Curve:
    """A keyframed number (``--strength-at``) at any time of the clip (seconds, output's clock)."""

    times: tuple[float, ...]
    values: tuple[float, ...]
    ease: Ease = Ease.linear

    def at(self, t: float, default: float) -> float:
        if not self.values:
            return default
        i, j, w = _where(self.times, t, self.ease)
        return self.values[i] + w * (self.values[j] - self.values[i])


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
        return Curve(self.alpha_times, self.alphas, self.ease).at(t, default)

    def batch(self, times: Sequence[float], signals: StyleSignals, alpha: float, device: torch.device
              ) -> tuple[StyleSignals, torch.Tensor]:
        """Signals stacked per frame (N, 64, 1, 1 each) and alphas (N, 1, 1, 1), on ``device``."""
        per_frame = [self.signals_at(t, signals).to(device) for t in times]
        stacked = type(signals)(*(torch.cat(parts) for parts in zip(*(s.tensors() for s in per_frame))))
        alphas = torch.tensor([self.alpha_at(t, alpha) for t in times], device=device).view(-1, 1, 1, 1)
        return stacked, alphas


# --- mattes ------------------------------------------------------------------------------
