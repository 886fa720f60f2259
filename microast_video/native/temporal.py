"""The temporal stage's two full-resolution passes (``temporal.cpp``) on numpy arrays: the
state warped along the flow, then blended with the current frame; each one pass over the
frame on the calling thread, with the small maps upsampled a row at a time (numpy, torch
and OpenCV took 3-4x the CPU time, in passes over full-size temporaries)."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from .build import library

_U16, _F32 = (np.dtype(np.uint16),), (np.dtype(np.float32),)


class TemporalKernels:
    """The temporal stage's full-resolution passes (``native/temporal.cpp``), on numpy arrays.

    Small maps come upsampled horizontally only, (fh, w[, ch]) float32, and are upsampled
    vertically a row at a time as ``cv2.resize`` does; frames are (h, w[, ch]) C-contiguous."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib

    def warp(self, prev: np.ndarray, coords: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``out`` = uint16 ``prev`` sampled bilinearly at ``coords`` (fh, w, 2) (x, y), borders replicated."""
        h, w = prev.shape[:2]
        _check(prev=(prev, prev.shape, _U16), out=(out, prev.shape, _U16),
               coords=(coords, (coords.shape[0], w, 2), _F32))
        rc = self.lib.microast_warp(prev.ctypes.data, h, w, _channels(prev), coords.ctypes.data, coords.shape[0],
                                    out.ctypes.data, 0, h)
        if rc != 0:
            raise ValueError(f"native warp cannot take this frame: {prev.shape = }")
        return out

    def compose(self, c: np.ndarray, warped: np.ndarray, ac: np.ndarray, aw: np.ndarray, k: np.ndarray,
                c_scale: float, w_scale: float, top: float, state: np.ndarray, samples: np.ndarray) -> None:
        """``v = ac * c * c_scale + aw * warped * w_scale + k`` per sample (``ac, aw`` broadcast over
        the channels); ``state`` = round(v * 65535) as uint16, ``samples`` = round(v * top) as
        ``c``'s dtype (uint8 or uint16), both clamped."""
        (h, w), fh, kinds = c.shape[:2], ac.shape[0], (np.dtype(np.uint8), np.dtype(np.uint16))
        _check(c=(c, c.shape, kinds), samples=(samples, c.shape, (c.dtype,)), warped=(warped, c.shape, _U16),
               state=(state, c.shape, _U16), ac=(ac, (fh, w), _F32), aw=(aw, (fh, w), _F32),
               k=(k, (fh, *c.shape[1:]), _F32))
        rc = self.lib.microast_compose(c.ctypes.data, int(c.dtype == np.uint16), warped.ctypes.data, h, w, _channels(c),
                                       ac.ctypes.data, aw.ctypes.data, k.ctypes.data, fh, c_scale, w_scale,
                                       state.ctypes.data, samples.ctypes.data, int(samples.dtype == np.uint16), top, 0, h)
        if rc != 0:
            raise ValueError(f"native compose cannot take these frames: {c.shape = }, {c.dtype = }")


def _channels(x: np.ndarray) -> int:
    return x.shape[2] if x.ndim == 3 else 1


def _check(**arrays: tuple[np.ndarray, tuple[int, ...], tuple[np.dtype, ...]]) -> None:
    """The kernels read raw memory: every array C-contiguous, of its shape and one of its dtypes."""
    for name, (array, shape, dtypes) in arrays.items():
        if not array.flags.c_contiguous or array.shape != tuple(shape) or array.dtype not in dtypes:
            raise ValueError(f"native temporal kernel: bad {name}: {array.shape = }, {array.dtype = }, "
                             f"want {tuple(shape)} of {[str(d) for d in dtypes]}, C-contiguous")


def temporal_kernels(cache: Path) -> tuple[TemporalKernels | None, str | None]:
    """The temporal stage's kernels (built and loaded once per process), or (None, why not)."""
    lib, why = library(cache)
    return (TemporalKernels(lib), None) if lib is not None else (None, why)
