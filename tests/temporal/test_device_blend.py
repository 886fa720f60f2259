"""The temporal stage in torch on the job's device (a GPU job's): each operation equals
OpenCV's, the whole stage gives the native path's output within one 8-bit level, and the
flow computed ahead on CPU threads changes nothing."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import cv2
import numpy as np
import pytest
import torch
from test_stabilizer import boiling_scene, scene

from microast_video.core.frame import Frame, pack_planes
from microast_video.temporal.device import area, blur, linear, warp
from microast_video.temporal.passes import _warp
from microast_video.temporal.stabilizer import Stabilizer, TemporalSettings, new_stabilizer, stabilized

CPU = torch.device("cpu")
RNG = np.random.default_rng(0)
PICTURE = RNG.random((37, 53)).astype(np.float32)


@pytest.mark.parametrize("size", [(20, 11), (53, 37), (26, 18), (8, 5), (106, 74), (96, 80), (40, 60)])
def test_area_is_opencv_inter_area(size):
    """Shrinking (exact overlaps), enlarging and both at once (OpenCV's two-tap weights)."""
    want = cv2.resize(PICTURE, size, interpolation=cv2.INTER_AREA)
    assert np.abs(area(torch.from_numpy(PICTURE)[None], *size)[0].numpy() - want).max() < 1e-6


def test_linear_is_opencv_inter_linear_enlarging():
    small = PICTURE[:11, :17].copy()
    want = cv2.resize(small, (53, 37), interpolation=cv2.INTER_LINEAR)
    assert np.abs(linear(torch.from_numpy(small)[None], 53, 37)[0].numpy() - want).max() < 1e-5


@pytest.mark.parametrize("sigma", [0.5, 1.62, 4.86, 9.0])
def test_blur_is_opencv_gaussian_blur(sigma):
    """Reflect-101 borders even where the kernel is wider than the picture (sigma 9: 73 taps)."""
    want = cv2.GaussianBlur(PICTURE, (0, 0), sigma)
    assert np.abs(blur(torch.from_numpy(PICTURE)[None], sigma)[0].numpy() - want).max() < 1e-5


def test_the_warp_is_the_native_one():
    prev = (cv2.GaussianBlur(RNG.random((60, 80, 3), np.float32), (0, 0), 2) * 65535).astype(np.uint16)
    flow = cv2.GaussianBlur((RNG.random((15, 20, 2), np.float32) - 0.5) * 12, (0, 0), 2)  # some outside
    want = _warp(prev, Stabilizer(TemporalSettings(flow_height=15))._coords((60, 80), flow))
    got = warp(torch.from_numpy(prev.astype(np.float32)).permute(2, 0, 1), torch.from_numpy(flow))
    assert np.abs(got.permute(1, 2, 0).numpy() - want).max() <= 2  # OpenCV's remap: 1/32-pixel steps


def moving(n: int, h: int, w: int, dtype=np.uint8) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A pan over a textured scene (sources) and a noisy 'stylized' copy, with a cut at frame n // 2."""
    source, stylized = boiling_scene(n, h, w)
    cut = scene(h + 64, w + 112, seed=11)[:h, :w]
    source[n // 2:] = [np.roll(cut, 2 * t, axis=1) for t in range(n - n // 2)]
    stylized[n // 2:] = [cv2.GaussianBlur(s, (0, 0), 1.5) for s in source[n // 2:]]
    if dtype == np.uint16:
        return [s.astype(np.uint16) * 257 for s in source], [s.astype(np.uint16) * 257 + 100 for s in stylized]
    return source, stylized


@pytest.mark.parametrize("method", ["texture", "plain"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_the_torch_stage_gives_the_native_output_within_one_level(method, dtype):
    source, stylized = moving(8, 72, 112, dtype)
    settings = TemporalSettings(method=method, flow_height=48)
    native, torch_way = new_stabilizer(settings), Stabilizer(settings, device=CPU)
    level = 257 if dtype == np.uint16 else 1
    for s, c in zip(stylized, source):
        a, b = native(s, c), torch_way(s, c)
        assert a.dtype == b.dtype == dtype and np.abs(a.astype(int) - b).max() <= level
    assert native.cuts == torch_way.cuts == [4]


def test_the_torch_stage_takes_420_planes():
    source, stylized = moving(6, 64, 96)
    yuv = [pack_planes([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), f[::2, ::2, 1].copy(), f[::2, ::2, 2].copy()])
           for f in (*source, *stylized)]
    src, sty = yuv[:6], yuv[6:]
    native, torch_way = new_stabilizer(TemporalSettings()), Stabilizer(TemporalSettings(), device=CPU)
    for s, c in zip(sty, src):
        a, b = native(s, c, "yuv420p"), torch_way(s, c, "yuv420p")
        assert a.shape == b.shape and np.abs(a.astype(int) - b).max() <= 1


def frames_of(stylized: list[np.ndarray], source: list[np.ndarray]) -> list[Frame]:
    return [Frame(i, i, 1, Fraction(1, 25), s, source=c) for i, (s, c) in enumerate(zip(stylized, source))]


def test_the_flow_computed_ahead_on_threads_changes_nothing():
    source, stylized = moving(10, 64, 96)
    inline, pooled = Stabilizer(device=CPU), Stabilizer(device=CPU)
    pooled.flow_threads = 3
    a = [f.data for f in stabilized(iter(frames_of(stylized, source)), inline)]
    b = [f.data for f in stabilized(iter(frames_of(stylized, source)), pooled)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and len(a) == len(b) == 10
    assert inline.cuts == pooled.cuts == [5]


def test_a_segment_resumed_from_the_torch_state_continues_exactly():
    source, stylized = moving(8, 64, 96)
    whole = Stabilizer(device=CPU)
    want = [whole(s, c) for s, c in zip(stylized, source)]
    first = Stabilizer(device=CPU)
    for s, c in zip(stylized[:3], source[:3]):
        first(s, c)
    state = first.snapshot()
    assert state["prev"][0].dtype == np.uint16  # saved as the CPU path saves it
    second = Stabilizer(device=CPU)
    second.restore(state)
    got = [second(s, c) for s, c in zip(stylized[3:], source[3:])]
    assert all(np.array_equal(x, y) for x, y in zip(want[3:], got))


def test_a_gpu_job_runs_the_stage_on_its_device_with_the_flow_ahead(monkeypatch):
    """new_stabilizer on a non-CPU device: torch there, flows on CPU threads; the report says so."""
    stab = new_stabilizer(TemporalSettings(), torch.device("meta"))
    assert stab.blend is not None and stab.blend.device.type == "meta" and stab.flow_threads >= 1
    assert "torch on meta" in stab.where()
    cpu_job = new_stabilizer(TemporalSettings(), CPU)
    assert cpu_job.blend is None and cpu_job.flow_threads == 0
    assert new_stabilizer(dataclasses.replace(TemporalSettings(), strength=0.0), torch.device("meta")).flow_threads == 0


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_stage_on_cuda_matches_the_native_one():
    source, stylized = moving(8, 72, 112)
    native, gpu = new_stabilizer(TemporalSettings()), new_stabilizer(TemporalSettings(), torch.device("cuda"))
    assert gpu.blend is not None
    out = [f.data for f in stabilized(iter(frames_of(stylized, source)), gpu)]
    for s, c, b in zip(stylized, source, out):
        assert np.abs(native(s, c).astype(int) - b).max() <= 1
