"""The engine: stylize batches of frames on the device with precomputed style signals."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from ._color import preserve_color
from ._signals import StyleSignals
from .models import MicroAST


@dataclasses.dataclass
class Stylizer:
    """Stylizes (N, 3, H, W) batches with one job's fixed settings.

    Attributes:
        model: the network in eval mode, on ``device``.
        signals: the style's signals (moved to ``device`` in float32 on construction).
        dtype: compute dtype of the content path: float32 (exact), bfloat16 or float16.
        alpha: content-style weight in [0, 1].
        color_matrix: None, or the YCbCr matrix ("bt601", "bt709", "bt2020") in which to
            keep the content's chroma (colour preservation).
    """

    model: MicroAST
    signals: StyleSignals
    dtype: torch.dtype = torch.float32
    alpha: float = 1.0
    color_matrix: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha = }")
        self.signals = self.signals.to(self.device, torch.float32)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def __call__(self, content: Tensor) -> Tensor:
        """Stylize a batch.

        Args:
            content: (N, 3, H, W) float32 RGB in [0, 1] on :attr:`device`.

        Returns:
            (N, 3, H, W) float32 RGB clamped to [0, 1], on :attr:`device`.
        """
        device = self.device
        reduced = self.dtype != torch.float32
        with torch.inference_mode():
            with torch.autocast(device.type, dtype=self.dtype, enabled=reduced):
                out = self.model(content, self.signals, self.alpha)
            out = out.float()
            if self.color_matrix is not None:
                out = preserve_color(out.clamp(0.0, 1.0), content, self.color_matrix)
            return out.clamp_(0.0, 1.0)
