"""Style once: style image(s) -> modulation signals, computed before the first frame."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from ..core.errors import InputError, OptionError, shown
from ..core.options import DEFAULT_MAX_PIXELS
from ..media.image import check_image, load_style_image
from ..models import MicroAST
from ..models.microast import MIN_SIDE
from ..models.signals import StyleSignals, mix_signals
from .signals_file import load_signals


def compute_signals(
    model: MicroAST,
    styles: Sequence[str | os.PathLike[str]],
    weights: Sequence[float] | None = None,
    *,
    style_size: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> StyleSignals:
    """Load each style image, encode it once (float32), and mix the signals.

    Args:
        model: the network (any device; the style encoder runs there in float32).
        styles: one or more style image paths (JPEG, PNG, WebP, TIFF).
        weights: one per style, summing to 1; None = equal weights.
        style_size: longest side each style is resized to; None keeps its size up to 2048 px.
        max_pixels: refuse style images declaring more pixels (before decoding them).

    Returns:
        float32 :class:`StyleSignals` on the model's device.

    Raises:
        InputError: a style image that is missing, unreadable or too small.
    """
    if not styles:
        raise OptionError("at least one style image is needed")
    if weights is not None and len(weights) != len(styles):
        raise OptionError(f"need one style weight per style: {len(styles) = }, {len(weights) = }")
    device = next(model.parameters()).device
    signals = []
    with torch.inference_mode(), default_layout(model):
        for path in styles:
            image = load_style_image(path, style_size, max_pixels=max_pixels)
            h, w = image.shape[-2:]
            if min(h, w) < MIN_SIDE:
                raise InputError(f"style image {shown(path)}: {w}x{h} px is too small (each side needs {MIN_SIDE} px)")
            signals.append(model.encode_style(image.to(device)))
    return mix_signals(signals, weights)


@contextlib.contextmanager
def default_layout(model: MicroAST) -> Iterator[None]:
    """The model's weights in the default (NCHW) layout for the duration, whatever
    :func:`~microast_video.engine.stylizer.prepare_runtime` set: a style's signals are then the same
    numbers before and after a job in the same process (a batch worker's cached network)."""
    conv = next(p for p in model.parameters() if p.dim() == 4)
    last = not conv.is_contiguous() and conv.is_contiguous(memory_format=torch.channels_last)
    if last:
        model.to(memory_format=torch.contiguous_format)
    try:
        yield
    finally:
        if last:
            model.to(memory_format=torch.channels_last)


def check_style_source(styles: Sequence[object], signals_file: object | None,
                       weights: Sequence[float] | None = None, max_pixels: int | None = None) -> None:
    """A job takes its style from images or from a signals file: exactly one of them.

    With ``max_pixels``, each style image's header is read too (readable, complete, not
    larger than that), so a bad style is refused before any work.

    Raises:
        OptionError: both or neither, or ``weights`` that do not fit the styles.
        InputError: a style image or signals file that does not exist (or fails the checks).
    """
    if signals_file is not None and styles:
        raise OptionError("give either --style or --signals, not both")
    if signals_file is None and not styles:
        raise OptionError("a style is needed: --style IMAGE (or --signals FILE)")
    for style in styles:
        if not Path(style).is_file():
            raise InputError(f"style image {shown(style)}: file not found")
        if max_pixels is not None:
            check_image(style, what="style image", max_pixels=max_pixels)
    if signals_file is not None and not Path(signals_file).is_file():
        raise InputError(f"style signals {shown(signals_file)}: file not found")
    if weights is not None:
        if len(weights) != len(styles):
            raise OptionError(f"--style-weights has {len(weights)} weights for {len(styles)} style(s)")
        if any(not math.isfinite(w) or w < 0 for w in weights) or abs(sum(weights) - 1.0) > 1e-6:
            raise OptionError(f"--style-weights must be >= 0 and sum to 1, got {list(weights)}")


def parse_weights(text: str | None) -> tuple[float, ...] | None:
    """``"0.7,0.3"`` -> (0.7, 0.3); None stays None."""
    if text is None:
        return None
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise OptionError(f"--style-weights must be comma-separated numbers, got {text!r}") from None


def job_signals(
    model: MicroAST,
    styles: Sequence[str | os.PathLike[str]],
    weights: Sequence[float] | None,
    signals_file: str | os.PathLike[str] | None,
    style_size: int | None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> StyleSignals:
    """The job's style signals: loaded from ``signals_file``, or computed once from ``styles``."""
    check_style_source(styles, signals_file, weights)
    if signals_file is not None:
        return load_signals(signals_file)
    return compute_signals(model, styles, weights, style_size=style_size, max_pixels=max_pixels)
