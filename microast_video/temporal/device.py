"""The temporal stage's blend in torch on the job's device: on a GPU job every full-resolution
pass (the warp of the state, the texture/base split, the energy restoration and the blend)
and the smooth maps between them run on the GPU; only the flow (on small grey *source*
frames, computed ahead on CPU threads) and the frame itself cross the bus.

The arithmetic is the CPU path's (:mod:`microast_video.temporal.stabilizer`, the native
kernels): ``cv2.resize`` INTER_AREA as exact area-overlap matrices, INTER_LINEAR as bilinear
interpolation with half-pixel centres, ``cv2.GaussianBlur`` as a separable convolution with
OpenCV's own kernel and reflect-101 borders, ``cv2.remap`` as bilinear sampling with
replicated borders; the state is kept as float32 holding the CPU path's uint16 samples.
The test holds both paths to one 8-bit level of each other.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .passes import STATE_TOP


@functools.lru_cache(maxsize=64)
def _area_matrix(n_in: int, n_out: int, shrinking: bool, device: torch.device) -> torch.Tensor:
    """(n_out, n_in) float32: ``cv2.resize`` INTER_AREA along one axis. Where the picture
    shrinks (or keeps its size) on both axes, the exact share of each source pixel in each
    output pixel; otherwise OpenCV's own two-tap weights for an enlarging "area" resize."""
    m = np.zeros((n_out, n_in), np.float64)
    scale, inv = n_in / n_out, n_out / n_in
    for i in range(n_out):
        if shrinking:
            lo, hi = i * scale, (i + 1) * scale
            for j in range(int(np.floor(lo)), min(n_in, int(np.ceil(hi)))):
                m[i, j] = (min(hi, j + 1) - max(lo, j)) / scale
            continue
        sx = int(np.floor(i * scale))
        fx = float(np.float32((i + 1) - (sx + 1) * inv))
        fx = 0.0 if fx <= 0 else fx - np.floor(fx)
        if sx >= n_in - 1:
            sx, fx = n_in - 1, 0.0
        m[i, sx] += 1 - fx
        m[i, min(sx + 1, n_in - 1)] += fx
    return torch.from_numpy(m.astype(np.float32)).to(device)


def area(x: torch.Tensor, w: int, h: int) -> torch.Tensor:
    """(C, H, W) -> (C, h, w) as ``cv2.resize(..., INTER_AREA)``."""
    shrinking = h <= x.shape[1] and w <= x.shape[2]
    my, mx = (_area_matrix(x.shape[1], h, shrinking, x.device), _area_matrix(x.shape[2], w, shrinking, x.device))
    return torch.matmul(torch.matmul(my, x), mx.T)


def linear(x: torch.Tensor, w: int, h: int) -> torch.Tensor:
    """(C, H, W) -> (C, h, w) as ``cv2.resize(..., INTER_LINEAR)`` enlarges (half-pixel centres)."""
    if x.shape[1:] == (h, w):
        return x
    return F.interpolate(x[None], size=(h, w), mode="bilinear", align_corners=False)[0]


@functools.lru_cache(maxsize=16)
def _gaussian(sigma: float, device: torch.device) -> torch.Tensor:
    """OpenCV's own Gaussian kernel for a float32 picture (4 sigma each side)."""
    size = int(round(sigma * 4 * 2 + 1)) | 1
    return torch.from_numpy(cv2.getGaussianKernel(size, sigma, cv2.CV_32F).ravel().copy()).to(device)


@functools.lru_cache(maxsize=32)
def _reflect101(n: int, pad: int, device: torch.device) -> torch.Tensor:
    """Indices of ``n`` samples padded by ``pad`` each side with OpenCV's BORDER_REFLECT_101."""
    idx = np.arange(-pad, n + pad)
    if n == 1:
        return torch.zeros(len(idx), dtype=torch.long, device=device)
    period = 2 * (n - 1)
    idx = np.abs(idx) % period
    return torch.from_numpy(np.where(idx >= n, period - idx, idx)).to(device)


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """(C, H, W) float32 as ``cv2.GaussianBlur(x, (0, 0), sigma)``."""
    k = _gaussian(float(sigma), x.device)
    pad = k.numel() // 2
    c, h, w = x.shape
    rows = x.index_select(1, _reflect101(h, pad, x.device))
    x = F.conv2d(rows.reshape(c, 1, h + 2 * pad, w), k.view(1, 1, -1, 1)).reshape(c, h, w)
    cols = x.index_select(2, _reflect101(w, pad, x.device))
    return F.conv2d(cols.reshape(c, 1, h, w + 2 * pad), k.view(1, 1, 1, -1)).reshape(c, h, w)


def warp(prev: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """The state (C, H, W) float32 sampled where each pixel of the current frame comes from:
    ``flow`` (fh, fw, 2) in small pixels, upsampled as the CPU path does; bilinear, borders
    replicated; rounded to whole samples as the CPU path's uint16 warp."""
    _, h, w = prev.shape
    fh, fw = flow.shape[:2]
    centres, scale = _centres(fh, fw, h, w, flow.device)
    small = centres + flow * scale
    coords = linear(small.permute(2, 0, 1), w, h)  # (2, h, w) full-size pixel coordinates
    coords[0].clamp_(-1, w).mul_(2 / max(w - 1, 1)).sub_(1)
    coords[1].clamp_(-1, h).mul_(2 / max(h - 1, 1)).sub_(1)
    out = F.grid_sample(prev[None], coords.permute(1, 2, 0)[None], mode="bilinear", padding_mode="border",
                        align_corners=True)[0]
    return out.add_(0.5).floor_()


@functools.lru_cache(maxsize=16)
def _centres(fh: int, fw: int, h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The small grid's pixel centres in full-size pixels, and the scale, made once per size and device."""
    scale = torch.tensor([w / fw, h / fh], device=device)
    ys, xs = torch.meshgrid(torch.arange(fh, device=device), torch.arange(fw, device=device), indexing="ij")
    return (torch.stack([xs, ys], -1) + 0.5) * scale - 0.5, scale


def quantize(v: torch.Tensor, top: float) -> torch.Tensor:
    """float in [0, 1] -> whole samples in [0, top] as float32 (NaN -> 0), rounded as the native kernel."""
    return torch.nan_to_num(v, nan=0.0).mul(top).add_(0.5).clamp_(0, top).floor_()


class DeviceBlend:
    """:meth:`~microast_video.temporal.stabilizer.Stabilizer` 's blend on ``device``: planes are
    (C, H, W) float32 tensors of samples in [0, top]; the state's hold [0, 65535]."""

    def __init__(self, settings, device: torch.device) -> None:  # TemporalSettings (a cycle otherwise)
        self.s = settings
        self.device = device

    def upload(self, plane: np.ndarray) -> torch.Tensor:
        """(H, W[, C]) samples -> (C, H, W) float32 on the device."""
        t = torch.from_numpy(plane.view(np.int16) if plane.dtype == np.uint16 else plane)
        if self.device.type == "cuda":
            t = t.pin_memory().to(self.device, non_blocking=True)  # ordered before the work on the stream
        t = t.to(self.device).float()
        if plane.dtype == np.uint16:
            t = torch.remainder(t, 65536.0)  # the int16 bits back to 0..65535
        return t.permute(2, 0, 1) if t.ndim == 3 else t[None]

    def download(self, plane: torch.Tensor, dtype: np.dtype) -> np.ndarray:
        """(C, H, W) whole samples -> (H, W[, C]) of ``dtype`` (uint8 or uint16) on the host."""
        x = plane.permute(1, 2, 0) if plane.shape[0] > 1 else plane[0]
        if dtype == np.uint8:
            return x.to(torch.uint8).cpu().numpy()
        bits = torch.where(x >= 32768, x - 65536, x).to(torch.int16)  # uint16 samples as int16 bits
        return bits.cpu().numpy().view(np.uint16)

    def state(self, plane: torch.Tensor, top: float) -> torch.Tensor:
        """Samples in [0, top] -> the state's samples (exactly x257 for 8-bit)."""
        return plane * 257.0 if top == 255.0 else quantize(plane / top, STATE_TOP)

    def __call__(self, planes: list[torch.Tensor], prev: list[torch.Tensor], top: float, flow: np.ndarray,
                 reliable: np.ndarray) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per plane (the next state, the output samples in [0, top]), as the CPU path's ``_blend``."""
        s, (fh, fw) = self.s, reliable.shape
        a = torch.from_numpy(reliable).to(self.device)[None] * s.strength
        f = torch.from_numpy(flow).to(self.device)
        warped = [warp(p, f) for p in prev]
        if s.method == "plain":
            return [self._compose(c, w, 1 - a, a, torch.zeros_like(a).expand(c.shape[0], -1, -1), top)
                    for c, w in zip(planes, warped)]
        sigma = max(0.5, s.texture_sigma * fh)
        mid = [(_halve(c, fh) / top, _halve(w, fh) / STATE_TOP) for c, w in zip(planes, warped)]  # <= 2x flow size
        bases = [(blur(area(c, fw, fh), sigma), blur(area(w, fw, fh), sigma)) for c, w in mid]
        gain = self._gain(*mid[0], bases[0], a, sigma) if s.max_gain > 1 else torch.ones_like(a)
        ac, aw = gain * (1 - a), gain * a
        out = []
        for c, w, (bc, bw) in zip(planes, warped, bases):
            k = bc * (1 - s.lowpass * a - ac) + bw * (s.lowpass * a - aw)
            out.append(self._compose(c, w, ac, aw, k, top))
        return out

    def _gain(self, c: torch.Tensor, w: torch.Tensor, bases: tuple[torch.Tensor, torch.Tensor], a: torch.Tensor,
              sigma: float) -> torch.Tensor:
        """Texture energy of the current frame over the blended texture's, in [1, max_gain]."""
        fh, fw = a.shape[1:]
        sh, sw = c.shape[1:]
        tc, tw = c - linear(bases[0], sw, sh), w - linear(bases[1], sw, sh)
        blended = tc + linear(a, sw, sh) * (tw - tc)
        want, have = (blur(area((t * t).sum(0, keepdim=True), fw, fh), 3 * sigma) for t in (tc, blended))
        return torch.sqrt(want / have.clamp_min(1e-10)).clamp_(1.0, self.s.max_gain)

    def _compose(self, c: torch.Tensor, w: torch.Tensor, ac: torch.Tensor, aw: torch.Tensor, k: torch.Tensor,
                 top: float) -> tuple[torch.Tensor, torch.Tensor]:
        _, h, width = c.shape
        v = linear(ac, width, h) * (c / top) + linear(aw, width, h) * (w / STATE_TOP) + linear(k, width, h)
        return quantize(v, STATE_TOP), quantize(v, top)


def _halve(x: torch.Tensor, flow_height: int) -> torch.Tensor:
    """Whole samples ``x`` averaged down to at most twice ``flow_height`` rows and rounded to
    whole samples, as the CPU path's ``_halve`` (OpenCV keeps an integer picture's type)."""
    _, h, w = x.shape
    rows = min(h, 2 * flow_height)
    return x if rows == h else area(x, max(8, round(w * rows / h)), rows).add_(0.5).floor_()
