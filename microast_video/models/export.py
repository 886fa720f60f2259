"""The network in the two forms other runtimes take (ONNX export): pure modules, no I/O.

* :class:`ContentPath`: one style's signals fixed inside (constants), a frame in, the
  stylized frame out; what a video needs per frame (ONNX Runtime, OpenVINO, TensorRT,
  vs-mlrt, FFmpeg's dnn filters).
* :class:`FullNetwork`: a frame and a style image in, the stylized frame out; the style is
  encoded on every call, as the upstream test script does.

Both take (N, 3, H, W) float32 RGB in [0, 1] and give (N, 3, H, W) float32 clamped to [0, 1].
"""

from __future__ import annotations

from torch import Tensor, nn

from .microast import MicroAST
from .signals import StyleSignals


class ContentPath(nn.Module):
    """Content encoder + decoder with ``signals`` (a style) fixed as buffers."""

    def __init__(self, model: MicroAST, signals: StyleSignals, alpha: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.alpha = float(alpha)
        self._names = signals.names()
        for name, tensor in zip(self._names, signals.tensors()):
            self.register_buffer(name, tensor.detach().float().clone())

    def signals(self) -> StyleSignals:
        return StyleSignals(*(getattr(self, n) for n in self._names))

    def forward(self, content: Tensor) -> Tensor:
        return self.model(content, self.signals(), self.alpha).clamp(0.0, 1.0)


class FullNetwork(nn.Module):
    """Style encoder, modulator, content encoder and decoder: ``(content, style) -> stylized``."""

    def __init__(self, model: MicroAST, alpha: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.alpha = float(alpha)

    def forward(self, content: Tensor, style: Tensor) -> Tensor:
        return self.model(content, self.model.encode_style(style), self.alpha).clamp(0.0, 1.0)
