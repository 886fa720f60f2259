"""How frames travel between the host and the device: packed RGB, or 4:2:0 planes.

RGB (``(H, W, 3)``, 3 bytes per pixel at 8 bits) is converted from and to YUV on the
CPU by FFmpeg. 4:2:0 planes (``(H * 3 / 2, W)`` as PyAV packs ``yuv420p``: Y, then U,
then V; 1.5 bytes per pixel) halve the host<->device traffic; the YCbCr <-> RGB
conversion and the chroma resampling then run on the device, here, in torch.

Both directions use the stream's own matrix and range. Chroma siting follows MPEG-2 /
H.264 (the default): horizontally on even luma columns, vertically between rows.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..colour.convert import rgb_to_ycbcr, uint16_bits_to_float, ycbcr_to_rgb
from ..colour.spaces import levels
from ..core.frame import Frame


@dataclasses.dataclass(frozen=True)
class RGBTransport:
    """Frames as (H, W, 3) uint8 or uint16 RGB."""

    name = "rgb"

    def to_float(self, frames: Tensor) -> Tensor:
        """(N, H, W, 3) uint8 / int16-bits-of-uint16 -> (N, 3, H, W) float32 in [0, 1]."""
        if frames.dtype == torch.uint8:
            return frames.permute(0, 3, 1, 2).float().div_(255.0)
        return uint16_bits_to_float(frames).permute(0, 3, 1, 2).div_(65535.0)

    def from_float(self, rgb: Tensor, deep: bool) -> Tensor:
        """(N, 3, H, W) float in [0, 1] -> (N, H, W, 3) uint8 (or int16 holding uint16 bits)."""
        x = rgb.permute(0, 2, 3, 1)
        if deep:
            return x.mul(65535.0).round_().to(torch.int32).to(torch.int16)
        return x.mul(255.0).round_().to(torch.uint8)


@dataclasses.dataclass(frozen=True)
class YUV420Transport:
    """Frames as packed 4:2:0 planes, (H * 3 / 2, W), converted on the device.

    Attributes:
        in_matrix, out_matrix: "bt601", "bt709" or "bt2020" (decode and encode side).
        in_full, out_full: full ("pc") rather than limited ("tv") range.
        bits: 8 (uint8 samples) or 10 (10-bit samples in uint16).
    """

    in_matrix: str
    out_matrix: str
    in_full: bool = False
    out_full: bool = False
    bits: int = 8
    name = "yuv420"

    def _levels(self, full: bool) -> tuple[float, float, float, float]:
        return levels(self.bits, full)

    def to_float(self, planes: Tensor) -> Tensor:
        """(N, H*3/2, W) samples -> (N, 3, H, W) float32 RGB (not clamped)."""
        n, rows, w = planes.shape
        h = rows * 2 // 3
        x = planes.float() if planes.dtype == torch.uint8 else uint16_bits_to_float(planes)
        flat = x.reshape(n, -1)  # the planes follow each other byte by byte, not row by row
        c = (h // 2) * (w // 2)
        y = flat[:, : h * w].reshape(n, h, w)
        u = flat[:, h * w : h * w + c].reshape(n, 1, h // 2, w // 2)
        v = flat[:, h * w + c :].reshape(n, 1, h // 2, w // 2)
        y0, yr, c0, cr = self._levels(self.in_full)
        chroma = _upsample_chroma(torch.cat([u, v], dim=1))
        ycc = torch.cat([((y - y0) / yr)[:, None], (chroma - c0) / cr], dim=1)
        return ycbcr_to_rgb(ycc, self.in_matrix)

    def from_float(self, rgb: Tensor, deep: bool) -> Tensor:
        """(N, 3, H, W) float in [0, 1] -> (N, H*3/2, W) samples (uint8, or int16 bits of uint16)."""
        n, _, h, w = rgb.shape
        ycc = rgb_to_ycbcr(rgb, self.out_matrix)
        y0, yr, c0, cr = self._levels(self.out_full)
        top = float((1 << self.bits) - 1)
        y = (ycc[:, 0] * yr + y0).round_().clamp_(0, top)
        chroma = (_downsample_chroma(ycc[:, 1:]) * cr + c0).round_().clamp_(0, top)
        packed = torch.cat([y.reshape(n, -1), chroma[:, 0].reshape(n, -1), chroma[:, 1].reshape(n, -1)], dim=1)
        packed = packed.reshape(n, h * 3 // 2, w)
        if self.bits > 8:
            return packed.to(torch.int32).to(torch.int16)
        return packed.to(torch.uint8)


def _upsample_chroma(c: Tensor) -> Tensor:
    """(N, 2, H/2, W/2) -> (N, 2, H, W): vertical midpoint siting, horizontal co-sited left."""
    c = F.interpolate(c, scale_factor=(2.0, 1.0), mode="bilinear", align_corners=False)
    right = torch.cat([c[..., 1:], c[..., -1:]], dim=-1)
    out = torch.stack([c, (c + right) * 0.5], dim=-1)  # even columns: the sample; odd: midpoint
    return out.flatten(-2)


def _downsample_chroma(c: Tensor) -> Tensor:
    """(N, 2, H, W) -> (N, 2, H/2, W/2) with the same siting: [1, 2, 1]/4 centred on even
    columns, then the mean of each row pair (edges replicated)."""
    left = torch.cat([c[..., :1], c[..., :-1]], dim=-1)
    right = torch.cat([c[..., 1:], c[..., -1:]], dim=-1)
    across = (left + 2 * c + right)[..., ::2] * 0.25
    return (across[..., 0::2, :] + across[..., 1::2, :]) * 0.5


def batch_matte(batch: list[Frame], device: torch.device) -> Tensor | None:
    """The batch's mattes as (N, 1, H, W) float32 in [0, 1] on ``device`` (None without mattes)."""
    if batch[0].matte is None:
        return None
    mattes = torch.from_numpy(np.stack([f.matte for f in batch]))[:, None]
    return mattes.to(device, non_blocking=True).float().div_(255.0)
