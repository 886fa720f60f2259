"""The temporal stage's full-resolution passes in OpenCV, numpy and torch, where the native
kernels (:mod:`microast_video.native.temporal`) are not available: the state warped along the
flow, and the blend of the warped state with the current frame (the same arithmetic)."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ..colour.convert import uint16_bits_to_float
from ..native.temporal import TemporalKernels

# Full-resolution arithmetic runs in torch: fused, vectorized, with broadcasting over the
# channels (numpy's broadcasting over a last axis of 3 is several times slower).

#: The state (the previous output) is kept as uint16 samples in [0, STATE_TOP]: steps of
#: 1/65535, 1/257 of an 8-bit step, in half the memory of float32 (400 MB less at 8K).
STATE_TOP = 65535.0


def _warp(prev: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """A plane of the state warped onto the current frame (uint16 samples, like the state).

    ``coords`` come from :meth:`Stabilizer._coords`; the full-size coordinates are made a
    strip of rows at a time (:func:`_rows_up`), so that float32 map (265 MB at 8K) never
    exists whole; each strip equals those rows of one whole-frame ``cv2.remap`` with
    ``cv2.resize``-d coordinates (to 1e-7 in the coordinates)."""
    h = prev.shape[0]
    out = np.empty_like(prev)
    for r0 in range(0, h, COMPOSE_ROWS):
        r1 = min(h, r0 + COMPOSE_ROWS)
        out[r0:r1] = cv2.remap(prev, _rows_up(coords, h, r0, r1), None, cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
    return out


def _to_state(plane: np.ndarray, top: float) -> np.ndarray:
    """Samples in [0, top] (or float in [0, 1] with ``top=1``) -> the state's uint16 samples."""
    if plane.dtype == np.uint8 and top == 255.0:
        return np.multiply(plane, 257, dtype=np.uint16)  # exact: 65535 / 255
    if plane.dtype == np.uint16 and top == STATE_TOP:
        return plane.copy()
    return _quantize(_float(plane).mul_(1.0 / top).numpy(), STATE_TOP, np.dtype(np.uint16))


def _float(x: np.ndarray) -> torch.Tensor:
    """Samples of any dtype as a float32 tensor (uint16, which torch barely handles, as int16 bits)."""
    if x.dtype == np.uint16:
        return uint16_bits_to_float(torch.from_numpy(x.view(np.int16)))
    return torch.from_numpy(x).float()


def _compose(c: np.ndarray, w: np.ndarray, ac: np.ndarray, aw: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``ac * c + aw * w + k`` at full resolution (weights broadcast over the channels).

    ``c`` and ``w`` hold samples (any dtype; ``ac`` and ``aw`` carry their 1 / top scales)."""
    tac, taw = torch.from_numpy(ac), torch.from_numpy(aw)
    if c.ndim == 3:
        tac, taw = tac[..., None], taw[..., None]
    out = torch.addcmul(torch.from_numpy(k), _float(c), tac)
    out.addcmul_(_float(w), taw)
    return out.numpy()


#: Rows per strip of the full-resolution work: the upsampled weights and coordinates, and the
#: float output, exist a strip at a time.
COMPOSE_ROWS = 128


def _compose_up(c: np.ndarray, warped: np.ndarray, ac: np.ndarray, aw: np.ndarray, k: np.ndarray, top: float,
                dtype: np.dtype, into: np.ndarray | None = None, kernels: TemporalKernels | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """``out = up(ac) * c / top + up(aw) * warped + up(k)`` at ``c``'s size:
    (``out`` as the next state's uint16 samples, ``out`` as output samples of ``dtype``), both
    rounded from the same float value.

    ``ac, aw`` (h, w) and ``k`` (h, w[, 3]) are small maps; ``up`` is bilinear upsampling as
    ``cv2.resize`` does it (horizontally once, vertically a row at a time natively, else per
    strip of rows), so neither the full-size weights nor a float32 output ever exist whole: at
    8K that is over 1.5 GB of float32 less.
    ``into``: a buffer for the state (the previous state's, free once warped: no state-sized
    allocation per frame, and one state in memory, not two)."""
    h, width = c.shape[:2]
    state = into if into is not None and into.shape == c.shape else np.empty(c.shape, np.uint16)
    samples = np.empty(c.shape, dtype)
    wide = [cv2.resize(x, (width, x.shape[0]), interpolation=cv2.INTER_LINEAR) for x in (ac, aw, k)]
    if kernels is not None:
        kernels.compose(np.ascontiguousarray(c), warped, *wide, 1.0 / top, 1.0 / STATE_TOP, top, state, samples)
        return state, samples
    for r0 in range(0, h, COMPOSE_ROWS):
        r1 = min(h, r0 + COMPOSE_ROWS)
        sac, saw, sk = (_rows_up(x, h, r0, r1) for x in wide)
        out = _compose(c[r0:r1], warped[r0:r1], sac * (1.0 / top), saw * (1.0 / STATE_TOP), sk)
        state[r0:r1] = _quantize(out, STATE_TOP, np.dtype(np.uint16))
        samples[r0:r1] = _quantize(out, top, dtype)
    return state, samples


def _rows_up(x: np.ndarray, height: int, r0: int, r1: int) -> np.ndarray:
    """Rows [r0, r1) of ``x`` (its rows) linearly upsampled to ``height`` rows, as cv2.resize does."""
    rows = x.shape[0]
    src = np.maximum((np.arange(r0, r1) + 0.5) * (rows / height) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), rows - 1)
    i1 = np.minimum(i0 + 1, rows - 1)
    t = (src - i0).astype(np.float32).reshape(-1, *([1] * (x.ndim - 1)))
    return x[i0] * (1 - t) + x[i1] * t


def _quantize(plane: np.ndarray, top: float, dtype: np.dtype) -> np.ndarray:
    """float32 in [0, 1] -> samples in [0, top] (rounded, clamped); ``plane`` is kept."""
    if dtype == np.uint8:
        return cv2.convertScaleAbs(cv2.max(plane, 0.0), alpha=255.0)  # saturating, rounded to nearest
    out = torch.from_numpy(plane).mul(top).add_(0.5).clamp_(0, top)
    return out.to(torch.int32).numpy().astype(dtype)
