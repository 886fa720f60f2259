"""The feed-forward transform network of Johnson et al. 2016 (with Ulyanov's instance
normalisation) as pytorch/examples ``fast_neural_style`` builds it (``TransformerNet``): one
network per style, pixels in [0, 255]. Attribute names follow upstream's, so its checkpoints
(the four published and any trained with its script) load as they are."""

from __future__ import annotations

import re
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ConvLayer(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel // 2)
        self.conv2d = nn.Conv2d(cin, cout, kernel, stride)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2d(self.reflection_pad(x))


class UpsampleConvLayer(ConvLayer):
    """Nearest-neighbour upsampling by 2, then a convolution (no checkerboard of a transposed conv)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(F.interpolate(x, mode="nearest", scale_factor=2))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1, self.in1 = ConvLayer(channels, channels, 3, 1), nn.InstanceNorm2d(channels, affine=True)
        self.conv2, self.in2 = ConvLayer(channels, channels, 3, 1), nn.InstanceNorm2d(channels, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.in2(self.conv2(F.relu(self.in1(self.conv1(x)))))


class TransformerNet(nn.Module):
    """(N, 3, H, W) pixels in [0, 255] -> raw pixels (4 times the twice-strided size: larger
    than the input where it is not a multiple of 4); :meth:`forward` crops back."""

    MULTIPLE = 4

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.in1 = ConvLayer(3, 32, 9, 1), nn.InstanceNorm2d(32, affine=True)
        self.conv2, self.in2 = ConvLayer(32, 64, 3, 2), nn.InstanceNorm2d(64, affine=True)
        self.conv3, self.in3 = ConvLayer(64, 128, 3, 2), nn.InstanceNorm2d(128, affine=True)
        self.res1, self.res2, self.res3, self.res4, self.res5 = (ResidualBlock(128) for _ in range(5))
        self.deconv1, self.in4 = UpsampleConvLayer(128, 64, 3, 1), nn.InstanceNorm2d(64, affine=True)
        self.deconv2, self.in5 = UpsampleConvLayer(64, 32, 3, 1), nn.InstanceNorm2d(32, affine=True)
        self.deconv3 = ConvLayer(32, 3, 9, 1)

    def raw(self, x: Tensor) -> Tensor:
        """Upstream's ``forward`` exactly (pixels in [0, 255], raw output)."""
        y = F.relu(self.in1(self.conv1(x)))
        y = F.relu(self.in2(self.conv2(y)))
        y = F.relu(self.in3(self.conv3(y)))
        y = self.res5(self.res4(self.res3(self.res2(self.res1(y)))))
        y = F.relu(self.in4(self.deconv1(y)))
        y = F.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)

    def forward(self, content: Tensor, signals: Any = None, alpha: Any = 1.0, **engine: Any) -> Tensor:
        """(N, 3, H, W) in [0, 1] (or uint8 samples) -> the stylized frames in [0, 1] (clamped),
        the input's size. A Johnson network has no style signals and no content-style weight; with
        a matte the engine keeps the original outside it (the network paints the whole frame)."""
        x = content.float() if content.dtype == torch.uint8 else content * 255
        h, w = x.shape[-2:]
        return (self.raw(x)[..., :h, :w] / 255).clamp(0, 1)

    def encode_style(self, style: Tensor) -> None:
        raise ValueError("a Johnson network is trained for one style; it takes no style image")

    def use_kernels(self, kernels: Any) -> None:
        """MicroAST's strip kernels do not apply: the network runs whole frames."""


class NoSignals:
    """The style signals of a network that has its style built in: none (mixing keeps none)."""

    @staticmethod
    def names() -> tuple[str, ...]:
        return ()

    def tensors(self) -> tuple[Tensor, ...]:
        return ()

    def to(self, device: Any = None, dtype: Any = None) -> NoSignals:
        return self


#: Keys of old published checkpoints that today's InstanceNorm2d does not have (the examples'
#: own loader deletes them the same way).
OLD_KEYS = re.compile(r"in\d+\.running_(mean|var)$")


def load_johnson(state: dict[str, Tensor]) -> TransformerNet:
    """The network from a ``TransformerNet`` state dict (old ``inN.running_*`` keys dropped), float32.

    Raises:
        KeyError / RuntimeError: a state dict that is not a TransformerNet's."""
    net = TransformerNet()
    net.load_state_dict({k: v.float() for k, v in state.items() if not OLD_KEYS.search(k)})
    return net.eval()
