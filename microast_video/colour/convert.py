"""Colour maths on (N, 3, H, W) RGB tensors: YCbCr conversion and colour preservation.

Matrices are named as :mod:`microast_video.colour.spaces` names them (``"bt709"``,
``"smpte170m"`` or its alias ``"bt601"``, ``"bt2020"``, ``"fcc"``, ``"smpte240m"``...).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import Tensor

from .spaces import luma_weights, rgb_to_ycbcr_rows, ycbcr_to_rgb_rows


def luma(rgb: np.ndarray, matrix: str = "bt709") -> np.ndarray:
    """(..., 3) RGB samples (any real dtype) -> (...) float32 luma ``Kr R + Kg G + Kb B``.

    Computed elementwise on purpose, never with numpy's ``@``: that calls OpenBLAS, whose
    fork handler hangs when another thread starts a process (the encoder's ffmpeg) while the
    call runs, and the stages run in threads.
    """
    kr, kg, kb = (np.float32(k) for k in luma_weights(matrix))
    x = rgb if rgb.dtype == np.float32 else rgb.astype(np.float32)
    return x[..., 0] * kr + x[..., 1] * kg + x[..., 2] * kb


def _rgb_to_ycbcr_matrix(matrix: str) -> Tensor:
    return torch.tensor(rgb_to_ycbcr_rows(matrix), dtype=torch.float64)


def rgb_to_ycbcr_matrix(matrix: str = "bt709") -> Tensor:
    """(3, 3) float32: (Y, Cb, Cr) = this @ RGB, RGB in [0, 1]."""
    return _rgb_to_ycbcr_matrix(matrix).to(torch.float32)


@functools.lru_cache(maxsize=64)
def _on_device(kind: str, matrix: str, device: torch.device) -> Tensor:
    """A conversion matrix on ``device``, copied there once per process: a per-batch copy from
    host memory was a blocking copy (a hidden synchronisation) on CUDA."""
    build = rgb_to_ycbcr_matrix if kind == "rgb_to_ycbcr" else ycbcr_to_rgb_matrix
    return build(matrix).to(device=device)


def rgb_to_ycbcr(rgb: Tensor, matrix: str = "bt709") -> Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> (N, 3, H, W) Y in [0, 1], Cb and Cr in [-0.5, 0.5]."""
    m = _on_device("rgb_to_ycbcr", matrix, rgb.device)
    return torch.einsum("ij,njhw->nihw", m, rgb.float())


def ycbcr_to_rgb_matrix(matrix: str = "bt709") -> Tensor:
    """(3, 3) float32: RGB = this @ (Y, Cb, Cr), the inverse of :func:`rgb_to_ycbcr`'s matrix."""
    return torch.tensor(ycbcr_to_rgb_rows(matrix), dtype=torch.float64).to(torch.float32)


def ycbcr_to_rgb(ycc: Tensor, matrix: str = "bt709") -> Tensor:
    """Inverse of :func:`rgb_to_ycbcr` (float32, not clamped)."""
    m = _on_device("ycbcr_to_rgb", matrix, ycc.device)
    return torch.einsum("ij,njhw->nihw", m, ycc.float())


def preserve_color(stylized: Tensor, content: Tensor, matrix: str = "bt709") -> Tensor:
    """Keep the content's chroma and take the stylized luma (Gatys et al.'s luminance-only transfer).

    Args:
        stylized: (N, 3, H, W) RGB, the network's output (clamped or not).
        content: (N, 3, H, W) RGB in [0, 1], the frames that were stylized.
        matrix: the YCbCr matrix of the material: "bt709" for HD/UHD video, "bt601" for
            SD video and for JPEG-style still images, "bt2020" for UHD HDR/WCG, or any
            other name :func:`microast_video.colour.spaces.matrix` knows.

    Returns:
        (N, 3, H, W) float32 RGB whose luma is the stylized luma and whose Cb, Cr are the
        content's; not clamped.
    """
    if stylized.shape != content.shape:
        raise ValueError(f"shapes differ: {tuple(stylized.shape) = }, {tuple(content.shape) = }")
    y = rgb_to_ycbcr(stylized, matrix)[:, :1]
    cbcr = rgb_to_ycbcr(content, matrix)[:, 1:]
    return ycbcr_to_rgb(torch.cat([y, cbcr], dim=1), matrix)


def uint16_bits_to_float(x: Tensor) -> Tensor:
    """uint16 samples carried as int16 bits (torch's uint16 has few ops) -> float32."""
    return x.to(torch.int32).bitwise_and_(0xFFFF).float()
