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
