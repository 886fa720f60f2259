"""Style modulation signals: what the decoder needs from a style image (pure data, no I/O)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch
from torch import Tensor

#: Variance epsilon of the network's statistics (added to the unbiased variance), as upstream.
EPS = 1e-5


@dataclasses.dataclass(frozen=True)
class StyleSignals:
    """The style's modulation signals ``m_s``: eight per-channel vectors.

    Each field is a (1, 64, 1, 1) float32 tensor. ``mean1, std1`` are the statistics of
    the style encoder's first feature map ``s1``, ``mean2, std2`` of its second ``s2``;
    ``w1, b1`` (from ``s1``) and ``w2, b2`` (from ``s2``) are the modulator's outputs.
    Every use in the decoder is affine in each of them, so signals can be mixed
    (:func:`mix_signals`) to interpolate styles.
    """

    mean1: Tensor
    std1: Tensor
    mean2: Tensor
    std2: Tensor
    w1: Tensor
    b1: Tensor
    w2: Tensor
    b2: Tensor

    @staticmethod
    def names() -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(StyleSignals))

    def tensors(self) -> tuple[Tensor, ...]:
        return tuple(getattr(self, n) for n in self.names())

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> StyleSignals:
        """A copy on ``device`` (and ``dtype`` if given)."""
        return StyleSignals(*(t.to(device=device, dtype=dtype) for t in self.tensors()))

    @property
    def device(self) -> torch.device:
        return self.mean1.device


def mix_signals(signals: Sequence[StyleSignals], weights: Sequence[float] | None = None) -> StyleSignals:
    """Style interpolation: the weighted mix ``sum_i weights[i] * signals[i]``.

    Args:
        signals: one or more styles' signals (same device).
        weights: non-negative, one per style, summing to 1 (within 1e-6); None means
            equal weights. ``(1, 0, ...)`` gives exactly the first style's signals.
    """
    if not signals:
        raise ValueError("mix_signals needs at least one style")
    if weights is None:
        weights = [1.0 / len(signals)] * len(signals)
    weights = [float(w) for w in weights]
    if len(weights) != len(signals):
        raise ValueError(f"need one weight per style: {len(signals) = }, {len(weights) = }")
    if any(w < 0 or not math.isfinite(w) for w in weights) or abs(sum(weights) - 1.0) > 1e-6:
        raise ValueError(f"style weights must be >= 0 and sum to 1, got {weights = }")
    if len(signals) == 1:
        return signals[0]
    mixed = []
    for parts in zip(*(s.tensors() for s in signals)):
        acc = weights[0] * parts[0]
        for w, t in zip(weights[1:], parts[1:]):
            acc = acc + w * t
        mixed.append(acc)
    return type(signals[0])(*mixed)  # any network's signals: each field is mixed alike
