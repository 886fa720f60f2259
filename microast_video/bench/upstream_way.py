"""The network run the way the upstream test script runs it: the bench's naive arm.

Same weights and maths as :class:`~.microast.MicroAST`, arranged as the upstream code
arranges them: layers applied one after another with in-place ReLUs, float32, eager,
whole frames in NCHW, and the style encoded again on every call (the script stylizes one
content image with one style image per call). Written for this project from the design
note; it exists so the bench's baseline is what a user of the upstream code gets, and a
test checks it gives the same pixels as the project's network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.microast import EPS, Encoder, MicroAST, ModulatedResBlock, ResBlock


def _stats(f: Tensor) -> tuple[Tensor, Tensor]:
    n, c = f.shape[:2]
    var = f.view(n, c, -1).var(dim=2) + EPS
    return f.view(n, c, -1).mean(dim=2).view(n, c, 1, 1), var.sqrt().view(n, c, 1, 1)


def _adain(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    x_mean, x_std = _stats(x)
    return (x - x_mean) / x_std * std + mean


def _res(block: ResBlock, x: Tensor) -> Tensor:
    return x + block.conv2(F.relu(block.conv1(x), inplace=True))


def _modulated(block: ModulatedResBlock, x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    h = F.relu(w * block.conv1(x) + b * x, inplace=True)
    return x + (w * block.conv2(h) + b * h)


def _encode(enc: Encoder, x: Tensor) -> tuple[Tensor, Tensor]:
    for conv in (enc.conv_in, enc.down1, enc.point1, enc.down2, enc.point2):
        x = F.relu(conv(x), inplace=True)
    f1 = _res(enc.res1, x)
    return f1, _res(enc.res2, f1)


class UpstreamWay(nn.Module):
    """``(content, style) -> stylized`` (float32, raw): both (1, 3, H, W) in [0, 1], H and W multiples of 4."""

    def __init__(self, model: MicroAST) -> None:
        super().__init__()
        self.model = model

    @torch.no_grad()
    def forward(self, content: Tensor, style: Tensor) -> Tensor:
        m = self.model
        s1, s2 = _encode(m.style_encoder, style)
        mod = m.modulator
        w1, b1 = mod.weight1(s1).mean(dim=(2, 3), keepdim=True), mod.bias1(s1).mean(dim=(2, 3), keepdim=True)
        w2, b2 = mod.weight2(s2).mean(dim=(2, 3), keepdim=True), mod.bias2(s2).mean(dim=(2, 3), keepdim=True)
        _, c2 = _encode(m.content_encoder, content)
        dec = m.decoder
        x = _modulated(dec.block1, _adain(c2, *_stats(s2)), w2, b2)
        x = _modulated(dec.block2, _adain(x, *_stats(s1)), w1, b1)
        for dw, pw in ((dec.up1_dw, dec.up1_pw), (dec.up2_dw, dec.up2_pw)):
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            x = F.relu(pw(F.relu(dw(x), inplace=True)), inplace=True)
        return dec.conv_out(x)
