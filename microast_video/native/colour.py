"""The decoder's and the encoder's 8-bit 4:2:0 <-> RGB conversions (``colour.cpp``) on numpy arrays."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from .build import library


class ColourKernels:
    """The decoder's 8-bit 4:2:0 -> RGB conversion and the encoder's RGB -> 4:2:0
    (``native/colour.cpp``): the arithmetic of :meth:`~microast_video.engine.transport.YUV420Transport.to_float`
    and :meth:`~microast_video.engine.transport.YUV420Transport.from_float`, one pass each, on the calling thread."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib

    def yuv420_to_rgb8(self, planes: tuple[np.ndarray, np.ndarray, np.ndarray], matrix: np.ndarray,
                       levels: tuple[float, float, float, float]) -> np.ndarray:
        """(H, W, 3) uint8 RGB from uint8 planes Y (H, W), U and V (H/2, W/2), each with unit
        column stride (rows may be padded); ``matrix`` (3, 3) float32 takes (Y, Cb, Cr) to RGB,
        ``levels`` = (luma offset, luma range, chroma centre, chroma range) in code values."""
        y, u, v = planes
        h, w = y.shape
        if (h % 2 or w % 2 or u.shape != (h // 2, w // 2) or v.shape != u.shape or u.strides != v.strides
                or any(p.dtype != np.uint8 or p.strides[1] != 1 for p in planes)):
            raise ValueError(f"native colour conversion needs even 8-bit 4:2:0 planes: {y.shape = }, {u.shape = }")
        m = np.ascontiguousarray(matrix, np.float32)
        out = np.empty((h, w, 3), np.uint8)
        rc = self.lib.microast_yuv420_to_rgb8(y.ctypes.data, y.strides[0], u.ctypes.data, v.ctypes.data, u.strides[0],
                                              h, w, m.ctypes.data, *levels, out.ctypes.data, 0, h)
        if rc != 0:
            raise ValueError(f"native colour conversion cannot take this frame: {y.shape = }")
        return out

    def rgb8_to_yuv420(self, rgb: np.ndarray, matrix: np.ndarray, levels: tuple[float, float, float, float]
                       ) -> np.ndarray:
        """(H * 3/2, W) uint8 4:2:0 planes (Y, then U, then V, as PyAV packs ``yuv420p``) from
        (H, W, 3) uint8 RGB with even H, W and packed rows (rows may be padded); ``matrix``
        (3, 3) float32 takes RGB in [0, 1] to (Y, Cb, Cr), ``levels`` as for :meth:`yuv420_to_rgb8`."""
        h, w = rgb.shape[:2]
        if (rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or h % 2 or w % 2
                or rgb.strides[1:] != (3, 1)):
            raise ValueError(f"native colour conversion needs even packed 8-bit RGB: {rgb.shape = }, {rgb.strides = }")
        m = np.ascontiguousarray(matrix, np.float32)
        out = np.empty((h * 3 // 2, w), np.uint8)
        flat = out.reshape(-1)
        y, u, v = flat[: h * w], flat[h * w: h * w * 5 // 4], flat[h * w * 5 // 4:]
        rc = self.lib.microast_rgb8_to_yuv420(rgb.ctypes.data, rgb.strides[0], h, w, m.ctypes.data, *levels,
                                              y.ctypes.data, u.ctypes.data, v.ctypes.data)
        if rc != 0:
            raise ValueError(f"native colour conversion cannot take this frame: {rgb.shape = }")
        return out


def colour_kernels(cache: Path) -> ColourKernels | None:
    """The decoder's and the encoder's colour conversions (built and loaded once per process), or None."""
    lib, _ = library(cache)
    return None if lib is None else ColourKernels(lib)
