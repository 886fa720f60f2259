"""Spatial control: two styles (or a style and the original) in regions given by a matte, one pass.

FeatMod and FilterMod are per-channel affine maps, so a style can differ from pixel to
pixel: each modulation signal becomes a map, ``m * foreground + (1 - m) * background``.
Following the AdaIN paper's spatial control, the *content* statistics are taken per
region too: features in the foreground are normalised by the foreground's own mean and
standard deviation (weighted by the soft matte), those in the background by the
background's, so each region gets its style's statistics exactly where the matte is 0 or
1, and a soft edge blends the two. Pure tensor maths; no I/O.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor

from .signals import EPS, StyleSignals

#: A region with less weight than this (in quarter-resolution pixels) is empty: its
#: statistics fall back to the whole frame's.
MIN_WEIGHT = 2.0


@dataclasses.dataclass(frozen=True)
class Regions:
    """A soft matte at the features' size and the background's signals.

    Attributes:
        mask: (N, 1, h, w) in [0, 1]: 1 = the foreground (the main signals' region).
        background: the other region's signals; None for one style with a matte (the
            caller keeps the original picture outside the matte).
    """

    mask: Tensor
    background: StyleSignals | None = None

    @staticmethod
    def from_matte(matte: Tensor, size: tuple[int, int], background: StyleSignals | None) -> Regions:
        """``matte`` (N, 1, H, W) at the (padded) frame's size -> area-averaged to ``size`` (h, w)."""
        return Regions(F.adaptive_avg_pool2d(matte.float(), size).clamp_(0.0, 1.0), background)


def region_mean_std(f: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and ``sqrt(unbiased var + eps)`` of ``f`` weighted by ``weight``.

    Args:
        f: (N, C, h, w) features; weight: (N, 1, h, w) in [0, 1].

    Returns:
        (N, C, 1, 1) float32 each. With a 0/1 weight these are the statistics of the
        selected pixels (the unbiased variance over them); a region with almost no weight
        takes the whole frame's statistics instead.
    """
    f = f.float()
    total = weight.sum(dim=(2, 3), keepdim=True)
    mean = (f * weight).sum(dim=(2, 3), keepdim=True) / total.clamp_min(1e-6)
    var = ((f - mean).square_() * weight).sum(dim=(2, 3), keepdim=True) / (total - 1).clamp_min(1e-6)
    whole_var, whole_mean = torch.var_mean(f, dim=(2, 3), keepdim=True, unbiased=True)
    empty = total < MIN_WEIGHT
    mean = torch.where(empty, whole_mean, mean)
    var = torch.where(empty, whole_var, var)
    return mean, (var + EPS).sqrt()


def featmod_regions(x: Tensor, mean: Tensor, std: Tensor, regions: Regions, bg_mean: Tensor | None,
                    bg_std: Tensor | None) -> Tensor:
    """FeatMod per region: each region normalised by its own statistics and given its style's."""
    m = regions.mask
    fg_mean, fg_std = region_mean_std(x, m)
    out = (x.float() - fg_mean).div_(fg_std).mul_(std).add_(mean)
    if bg_mean is None:
        return out
    bg_x_mean, bg_x_std = region_mean_std(x, 1 - m)
    bg = (x.float() - bg_x_mean).div_(bg_x_std).mul_(bg_std).add_(bg_mean)
    return out.mul_(m).add_(bg.mul_(1 - m))


def mixed(fg: Tensor, bg: Tensor | None, regions: Regions) -> Tensor:
    """A per-channel signal (N, C, 1, 1) as a per-pixel map: ``m * fg + (1 - m) * bg``."""
    if bg is None:
        return fg
    m = regions.mask
    return fg * m + bg * (1 - m)
