"""Style once: style image(s) -> modulation signals, computed before the first frame."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from ._image import load_style_image
from ._signals import StyleSignals, mix_signals
from .models import MicroAST


def compute_signals(
    model: MicroAST,
    styles: Sequence[str | os.PathLike[str]],
    weights: Sequence[float] | None = None,
    *,
    style_size: int | None = None,
) -> StyleSignals:
    """Load each style image, encode it once (float32), and mix the signals.

    Args:
        model: the network (any device; the style encoder runs there in float32).
        styles: one or more style image paths (JPEG, PNG, WebP, TIFF).
        weights: one per style, summing to 1; None = equal weights.
        style_size: longest side each style is resized to; None keeps its size up to 2048 px.

    Returns:
        float32 :class:`StyleSignals` on the model's device.
    """
    if not styles:
        raise ValueError("at least one style image is needed")
    if weights is not None and len(weights) != len(styles):
        raise ValueError(f"need one style weight per style: {len(styles) = }, {len(weights) = }")
    device = next(model.parameters()).device
    signals = []
    with torch.inference_mode():
        for path in styles:
            image = load_style_image(path, style_size)
            signals.append(model.encode_style(image.to(device)))
    return mix_signals(signals, weights)


def check_style_source(styles: Sequence[object], signals_file: object | None) -> None:
    """A job takes its style from images or from a signals file: exactly one of them."""
    if signals_file is not None and styles:
        raise ValueError("give either --style or --signals, not both")
    if signals_file is None and not styles:
        raise ValueError("a style is needed: --style IMAGE (or --signals FILE)")


def job_signals(
    model: MicroAST,
    styles: Sequence[str | os.PathLike[str]],
    weights: Sequence[float] | None,
    signals_file: str | os.PathLike[str] | None,
    style_size: int | None,
) -> StyleSignals:
    """The job's style signals: loaded from ``signals_file``, or computed once from ``styles``."""
    check_style_source(styles, signals_file)
    if signals_file is not None:
        return StyleSignals.load(signals_file)
    return compute_signals(model, styles, weights, style_size=style_size)
