"""Colour maths on (N, 3, H, W) RGB tensors: YCbCr matrices and colour preservation."""

from __future__ import annotations

import torch
from torch import Tensor

#: (Kr, Kb) luma coefficients of each matrix.
MATRICES: dict[str, tuple[float, float]] = {
    "bt601": (0.299, 0.114),
    "bt709": (0.2126, 0.0722),
    "bt2020": (0.2627, 0.0593),
}


def _rgb_to_ycbcr_matrix(matrix: str) -> Tensor:
    if matrix not in MATRICES:
        raise ValueError(f"unknown colour matrix {matrix = }; choose from {sorted(MATRICES)}")
    kr, kb = MATRICES[matrix]
    kg = 1.0 - kr - kb
    return torch.tensor(
        [
            [kr, kg, kb],
            [-kr / (2 * (1 - kb)), -kg / (2 * (1 - kb)), 0.5],
            [0.5, -kg / (2 * (1 - kr)), -kb / (2 * (1 - kr))],
        ],
        dtype=torch.float64,
    )


def rgb_to_ycbcr(rgb: Tensor, matrix: str = "bt709") -> Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> (N, 3, H, W) Y in [0, 1], Cb and Cr in [-0.5, 0.5]."""
    m = _rgb_to_ycbcr_matrix(matrix).to(device=rgb.device, dtype=torch.float32)
    return torch.einsum("ij,njhw->nihw", m, rgb.float())


def ycbcr_to_rgb(ycc: Tensor, matrix: str = "bt709") -> Tensor:
    """Inverse of :func:`rgb_to_ycbcr` (float32, not clamped)."""
    m = torch.linalg.inv(_rgb_to_ycbcr_matrix(matrix)).to(device=ycc.device, dtype=torch.float32)
    return torch.einsum("ij,njhw->nihw", m, ycc.float())


def preserve_color(stylized: Tensor, content: Tensor, matrix: str = "bt709") -> Tensor:
    """Keep the content's chroma and take the stylized luma (Gatys et al.'s luminance-only transfer).

    Args:
        stylized: (N, 3, H, W) RGB, the network's output (clamped or not).
        content: (N, 3, H, W) RGB in [0, 1], the frames that were stylized.
        matrix: the YCbCr matrix of the material: "bt709" for HD/UHD video, "bt601" for
            SD video and for JPEG-style still images, "bt2020" for UHD HDR/WCG.

    Returns:
        (N, 3, H, W) float32 RGB whose luma is the stylized luma and whose Cb, Cr are the
        content's; not clamped.
    """
    if stylized.shape != content.shape:
        raise ValueError(f"shapes differ: {tuple(stylized.shape) = }, {tuple(content.shape) = }")
    y = rgb_to_ycbcr(stylized, matrix)[:, :1]
    cbcr = rgb_to_ycbcr(content, matrix)[:, 1:]
    return ycbcr_to_rgb(torch.cat([y, cbcr], dim=1), matrix)
