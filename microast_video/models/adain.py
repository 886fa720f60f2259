"""AdaIN (Huang & Belongie 2017) as naoto0804/pytorch-AdaIN builds it: the normalised VGG-19 to
relu4_1 (the first 31 modules of its ``net.vgg``), an AdaIN layer, and the trained decoder.
Module indices follow upstream's ``nn.Sequential`` so its ``vgg_normalised.pth`` and
``decoder.pth`` keys load as they are (``vgg`` keys past ``30`` are the unused rest of VGG-19)."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _conv(cin: int, cout: int, relu: bool = True) -> list[nn.Module]:
    return [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3), *([nn.ReLU()] if relu else [])]


def _pool() -> nn.Module:
    return nn.MaxPool2d(2, 2, 0, ceil_mode=True)


def vgg_to_relu4_1() -> nn.Sequential:
    """Modules 0-30 of upstream's ``net.vgg``: (N, 3, H, W) in [0, 1] -> relu4_1 (N, 512, H/8, W/8)."""
    return nn.Sequential(nn.Conv2d(3, 3, 1), *_conv(3, 64), *_conv(64, 64), _pool(), *_conv(64, 128), *_conv(128, 128),
                         _pool(), *_conv(128, 256), *_conv(256, 256), *_conv(256, 256), *_conv(256, 256), _pool(),
                         *_conv(256, 512))


def decoder() -> nn.Sequential:
    """Upstream's ``net.decoder``: relu4_1 features -> (N, 3, 8h, 8w) raw pixels."""
    up = nn.Upsample(scale_factor=2, mode="nearest")
    return nn.Sequential(*_conv(512, 256), up, *_conv(256, 256), *_conv(256, 256), *_conv(256, 256), *_conv(256, 128),
                         up, *_conv(128, 128), *_conv(128, 64), up, *_conv(64, 64), *_conv(64, 3, relu=False))


@dataclasses.dataclass
class FeatureStats:
    """AdaIN's style signals: the relu4_1 channel means and standard deviations, (1, 512, 1, 1)
    each (affine in the decoder's input, so mixing them interpolates styles, as the paper does)."""

    mean: Tensor
    std: Tensor

    @staticmethod
    def names() -> tuple[str, ...]:
        return ("mean", "std")

    def tensors(self) -> tuple[Tensor, ...]:
        return self.mean, self.std

    def to(self, device: Any = None, dtype: torch.dtype | None = None) -> FeatureStats:
        return FeatureStats(*(t.to(device=device, dtype=dtype) for t in self.tensors()))


def mean_std(feat: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """Upstream's ``calc_mean_std``: per-channel mean and sqrt(unbiased variance + eps)."""
    n, c = feat.shape[:2]
    flat = feat.reshape(n, c, -1)
    return flat.mean(dim=2).view(n, c, 1, 1), (flat.var(dim=2) + eps).sqrt().view(n, c, 1, 1)


class AdaIN(nn.Module):
    """The network. :meth:`encode_style` gives a style's signals once; calling the module
    stylizes content frames (any size: padded to a multiple of 8 by reflection, cropped back)."""

    #: The decoder's output is 8x its input's features: sizes are padded to this multiple.
    MULTIPLE = 8

    def __init__(self) -> None:
        super().__init__()
        self.vgg = vgg_to_relu4_1()
        self.decoder = decoder()

    def use_kernels(self, kernels: Any) -> None:
        """MicroAST's strip kernels do not apply: AdaIN runs whole frames."""

    def encode_style(self, style: Tensor) -> FeatureStats:
        """(1, 3, H, W) float32 RGB in [0, 1] -> its relu4_1 statistics."""
        return FeatureStats(*mean_std(self.vgg(style)))

    def raw(self, content: Tensor, style: FeatureStats, alpha: float | Tensor = 1.0) -> Tensor:
        """Upstream's output exactly: ``decoder(alpha * AdaIN(f(c), s) + (1 - alpha) * f(c))``
        (8 times the pooled size: larger than ``content`` where it is not a multiple of 8)."""
        feat = self.vgg(content)
        c_mean, c_std = mean_std(feat)
        target = (feat - c_mean) / c_std * style.std + style.mean
        return self.decoder(alpha * target + (1 - alpha) * feat)

    def regions(self, content: Tensor, style: FeatureStats, matte: Tensor, background: FeatureStats | None,
                alpha: float | Tensor = 1.0) -> Tensor:
        """The paper's spatial control: AdaIN with each region's own content statistics, ``style``
        where the matte is 1 and ``background`` where it is 0 (without one, the content's own
        features there), soft edges blended at the features' resolution."""
        feat = self.vgg(content)
        m = F.interpolate(matte, size=feat.shape[-2:], mode="area")
        inside = _masked_adain(feat, m, style)
        outside = feat if background is None else _masked_adain(feat, 1 - m, background)
        target = m * inside + (1 - m) * outside
        return self.decoder(alpha * target + (1 - alpha) * feat)

    def forward(self, content: Tensor, signals: FeatureStats, alpha: float | Tensor = 1.0, *, matte: Tensor | None = None,
                background: FeatureStats | None = None, **engine: Any) -> Tensor:
        """(N, 3, H, W) in [0, 1] (or uint8 samples) -> the stylized frames, raw, the input's size;
        ``matte`` (N, 1, H, W) in [0, 1]: regions (:meth:`regions`). MicroAST's strip and kernel
        arguments of the engine do not apply (whole frames)."""
        x = content.float() / 255 if content.dtype == torch.uint8 else content
        h, w = x.shape[-2:]
        ph, pw = -h % self.MULTIPLE, -w % self.MULTIPLE
        pad = (0, pw, 0, ph)
        mode = "reflect" if min(h, w) > max(ph, pw) else "replicate"
        if ph or pw:
            x = F.pad(x, pad, mode=mode)
            matte = None if matte is None else F.pad(matte, pad, mode=mode)
        out = self.raw(x, signals, alpha) if matte is None else self.regions(x, signals, matte, background, alpha)
        return out[..., :h, :w]


def _masked_adain(feat: Tensor, weight: Tensor, style: FeatureStats, eps: float = 1e-5) -> Tensor:
    """AdaIN whose content statistics are those of the region ``weight`` (N, 1, h, w) in [0, 1]."""
    total = weight.sum(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    mean = (feat * weight).sum(dim=(2, 3), keepdim=True) / total
    var = ((feat - mean) ** 2 * weight).sum(dim=(2, 3), keepdim=True) / (total - 1).clamp_min(1e-6)
    return (feat - mean) / (var + eps).sqrt() * style.std + style.mean


def load_adain(vgg_state: dict[str, Tensor], decoder_state: dict[str, Tensor]) -> AdaIN:
    """The network from upstream's state dicts (``vgg_normalised.pth`` keys ``0.weight`` ... up
    to ``52.*``, of which modules 0-30 are used; ``decoder.pth``), in float32.

    Raises:
        KeyError / RuntimeError: a state dict that is not AdaIN's (missing or misshapen keys)."""
    net = AdaIN()
    used = {k: v for k, v in vgg_state.items() if int(k.split(".")[0]) < len(net.vgg)}
    net.vgg.load_state_dict({k: v.float() for k, v in used.items()})
    net.decoder.load_state_dict({k: v.float() for k, v in decoder_state.items()})
    return net.eval()
