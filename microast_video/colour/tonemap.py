"""HDR -> SDR: tone-map decoded HLG or PQ frames to BT.709 before the network (``--hdr tonemap``).

The decoded frames are R'G'B' in BT.2020 primaries (converted from YCbCr with the BT.2020
matrix), 16-bit. Per pixel, in float32:

1. to display light in nits: PQ's EOTF (SMPTE ST 2084), or HLG's inverse OETF followed by
   its OOTF for a 1000-nit display (BT.2100, system gamma 1.2);
2. BT.2020 -> BT.709 primaries (linear light; out-of-gamut colours clip);
3. luminance relative to HDR reference white (203 nits, BT.2408) through an extended
   Reinhard curve whose white point is the 1000-nit peak, colour scaled with it;
4. BT.709 SDR encoding for a BT.1886 display (gamma 1/2.4), to 8 or 16 bits.

Mid greys and skin tones land near their SDR levels; highlights roll off instead of
clipping. It is a plain, documented operator, not a grading tool.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch

from ..core.frame import Frame
from .spaces import luma_weights

#: HDR reference white and the peak the curve maps to SDR white, in nits.
REFERENCE_WHITE = 203.0
PEAK = 1000.0
_BT2020_TO_BT709 = torch.tensor([[1.6605, -0.5876, -0.0728],
                                 [-0.1246, 1.1329, -0.0083],
                                 [-0.0182, -0.1006, 1.1187]])
_LUMA_2020 = torch.tensor(luma_weights("bt2020"))
_LUMA_709 = torch.tensor(luma_weights("bt709"))
_HLG_A, _HLG_B = 0.17883277, 0.28466892
_HLG_C = 0.5 - _HLG_A * math.log(4 * _HLG_A)


def pq_to_nits(e: torch.Tensor) -> torch.Tensor:
    """SMPTE ST 2084 EOTF: signal in [0, 1] -> display light in nits."""
    m1, m2, c1, c2, c3 = 0.1593017578125, 78.84375, 0.8359375, 18.8515625, 18.6875
    p = e.clamp(0, 1) ** (1 / m2)
    return 10000.0 * ((p - c1).clamp_min(0) / (c2 - c3 * p)) ** (1 / m1)


def hlg_to_nits(e: torch.Tensor) -> torch.Tensor:
    """BT.2100 HLG inverse OETF and OOTF (1000-nit display, gamma 1.2): (..., 3) RGB -> nits."""
    e = e.clamp(0, 1)
    scene = torch.where(e <= 0.5, e * e / 3.0, (torch.exp((e - _HLG_C) / _HLG_A) + _HLG_B) / 12.0)
    ys = (scene * _LUMA_2020).sum(-1, keepdim=True)
    return PEAK * ys.clamp_min(1e-12) ** 0.2 * scene


def tonemap(rgb: np.ndarray, transfer: str, *, deep_out: bool) -> np.ndarray:
    """One frame: (H, W, 3) uint16 BT.2020 HLG/PQ R'G'B' -> (H, W, 3) BT.709 SDR uint8 (or uint16)."""
    if transfer not in ("HLG", "PQ"):
        raise ValueError(f"unknown HDR transfer {transfer = }; choose HLG or PQ")
    e = torch.from_numpy(rgb.astype(np.float32) / 65535.0)
    nits = hlg_to_nits(e) if transfer == "HLG" else pq_to_nits(e)
    linear = (nits / REFERENCE_WHITE) @ _BT2020_TO_BT709.T
    linear = linear.clamp_min(0)
    y = (linear * _LUMA_709).sum(-1, keepdim=True)
    white = PEAK / REFERENCE_WHITE
    mapped = y * (1 + y / (white * white)) / (1 + y)
    sdr = (linear * (mapped / y.clamp_min(1e-6))).clamp(0, 1) ** (1 / 2.4)
    top = 65535.0 if deep_out else 255.0
    out = (sdr * top).round_()
    return out.numpy().astype(np.uint16 if deep_out else np.uint8)


def tonemapped(frames: Iterator[Frame], transfer: str, deep_out: bool) -> Iterator[Frame]:
    """The tone-mapping stage: every frame mapped, index and timing kept."""
    for frame in frames:
        yield frame.with_data(tonemap(frame.data, transfer, deep_out=deep_out))
