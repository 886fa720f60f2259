"""Temporal stability: the flicker metric on cases whose answer is known, and the temporal stage
(steadier texture, exact reset at cuts, bounded state, every layout), end to end on the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import FFMPEG, make_style
from typer.testing import CliRunner

from microast_video import (
    EngineSettings,
    FrameEngine,
    Stylizer,
    decode_frames,
    engine_settings,
    prepare_runtime,
    probe,
)
from microast_video.cli import app
from microast_video.core.frame import Frame
from microast_video.native import build
from microast_video.native import temporal as _native
from microast_video.temporal.flicker import measure_flicker as measure
from microast_video.temporal.stabilizer import (
    Stabilizer,
    TemporalSettings,
    _compose_up,
    _warp,
)

runner = CliRunner()


def write_clip(path: Path, frames: list[np.ndarray], rate: int = 25) -> Path:
    """Frames (h, w, 3) uint8 RGB -> a lossless clip (ffv1 in MKV), exactly these pixels."""
    h, w = frames[0].shape[:2]
    proc = subprocess.Popen([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                             "-s", f"{w}x{h}", "-r", str(rate), "-i", "pipe:", "-c:v", "ffv1", "-pix_fmt", "bgr0",
                             str(path)], stdin=subprocess.PIPE)
    proc.communicate(b"".join(np.ascontiguousarray(f).tobytes() for f in frames))
    assert proc.returncode == 0
    return path


def scene(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A textured picture that optical flow can track (smooth blobs plus fine detail)."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.random((6, 8, 3)).astype(np.float32), (w + 64, h + 64), interpolation=cv2.INTER_CUBIC)
    detail = cv2.GaussianBlur(rng.random((h + 64, w + 64, 3)).astype(np.float32), (0, 0), 1.2)
    return np.clip((0.6 * base + 0.8 * (detail - 0.5) + 0.2) * 255, 0, 255).astype(np.uint8)


def noisy(frames: list[np.ndarray], sigma: float, seed: int = 1, grain: float = 0.0) -> list[np.ndarray]:
    """Each frame plus fresh noise of ``sigma`` levels; ``grain`` > 0 makes it stroke-sized
    (spatially correlated, as a network's repainted texture is), still ``sigma`` levels."""
    rng = np.random.default_rng(seed)
    out = []
    for f in frames:
        n = rng.normal(0, 1, f.shape).astype(np.float32)
        if grain:
            n = cv2.GaussianBlur(n, (0, 0), grain)
            n /= n.std()
        out.append(np.clip(f.astype(np.float32) + sigma * n, 0, 255).astype(np.uint8))
    return out


# --- the metric ----------------------------------------------------------------------------

def test_still_scene_with_per_frame_noise_has_the_known_warping_error(tmp_path):
    still = [scene()[:96, :128]] * 8
    src = write_clip(tmp_path / "src.mkv", still)
    steady = write_clip(tmp_path / "steady.mkv", still)
    boiling = write_clip(tmp_path / "boiling.mkv", noisy(still, 8.0))
    r = measure(src, [steady, boiling], reference=boiling, height=96)
    steady_row, boiling_row = r["clips"][0], r["clips"][1]
    assert r["source_warping_error"] < 1e-6 and steady_row["warping_error"] < 1e-6
    expected = 2 * (8.0 / 255) ** 2  # two independent noises of sigma 8 levels
    assert abs(boiling_row["warping_error"] - expected) / expected < 0.15
    assert steady_row["vs_reference"] < 0.01 and steady_row["texture_ratio"] < 1.0


def test_a_pan_is_tracked_not_counted_as_flicker(tmp_path):
    big = scene(160, 220)
    pan = [big[20:116, 10 + 3 * t:138 + 3 * t] for t in range(10)]  # 3 px per frame to the left
    src = write_clip(tmp_path / "src.mkv", pan)
    same = write_clip(tmp_path / "same.mkv", pan)
    shaky = write_clip(tmp_path / "shaky.mkv", noisy(pan, 8.0))
    r = measure(src, [same, shaky], reference=shaky, height=96)
    assert r["clips"][0]["warping_error"] < 0.1 * r["clips"][1]["warping_error"]
    assert r["clips"][0]["lowpass_psnr_db"] > 30  # the blur hides the noise: the same picture underneath


def test_a_hard_cut_is_not_warped_across(tmp_path):
    a, b = scene(seed=3)[:96, :128], scene(seed=4)[:96, :128]
    clip = write_clip(tmp_path / "cut.mkv", [a] * 4 + [b] * 4)
    r = measure(clip, [clip], height=96)
    unwarped = float((((a.astype(np.float32) - b) / 255) ** 2).mean())
    # 7 pairs, 6 of them identical frames (no error): only the cut pair counts, and only where
    # the forward-backward check passes, so never more than the whole unwarped difference / 7
    assert 0 < r["clips"][0]["warping_error"] < unwarped / 7
    within = measure(clip, [clip], height=96, frames=4)
    assert within["clips"][0]["warping_error"] == 0


def test_flicker_command_prints_and_writes_json(tmp_path):
    still = [scene()[:96, :128]] * 6
    src = write_clip(tmp_path / "src.mkv", still)
    out = write_clip(tmp_path / "out.mkv", noisy(still, 4.0))
    r = runner.invoke(app, ["flicker", str(src), str(out), "--reference", str(out), "--height", "96",
                            "--json", str(tmp_path / "f.json")])
    assert r.exit_code == 0, r.output
    assert "warp err" in r.output and "out.mkv" in r.output
    data = json.loads((tmp_path / "f.json").read_text())
    assert data["frames"] == 6 and len(data["clips"]) == 2


def test_flicker_refuses_clips_of_different_lengths(tmp_path):
    still = [scene()[:96, :128]]
    src = write_clip(tmp_path / "src.mkv", still * 6)
    short = write_clip(tmp_path / "short.mkv", still * 4)
    r = runner.invoke(app, ["flicker", str(src), str(short)])
    assert r.exit_code == 1 and "short.mkv" in r.stderr and "fewer" in r.stderr and "Traceback" not in r.stderr


def test_flicker_measures_a_trimmed_render_against_its_part_of_the_source(tmp_path):
    """A render with --start/--duration failed: "clip ... has 4 frames, fewer than the others"."""
    frames = [np.roll(scene()[:96, :128], 3 * t, axis=1) for t in range(10)]
    src = write_clip(tmp_path / "src.mkv", frames)
    part = write_clip(tmp_path / "part.mkv", noisy(frames[4:8], 4.0))
    whole = runner.invoke(app, ["flicker", str(src), str(part)])
    assert whole.exit_code == 1 and "fewer" in whole.stderr
    r = runner.invoke(app, ["flicker", str(src), str(part), "--start", "0.16", "--duration", "0.16",
                            "--json", str(tmp_path / "f.json")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "f.json").read_text())["frames"] == 4
    bad = runner.invoke(app, ["flicker", str(src), str(part), "--start", "-1"])
    assert bad.exit_code != 0 and "--start" in bad.output


# --- the stabilizer --------------------------------------------------------------------------

def boiling_scene(n: int = 12, h: int = 96, w: int = 128) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A slow pan (source) and its 'stylized' version whose texture changes every frame."""
    big = scene(h + 64, w + 112, seed=5)
    source = [big[20:20 + h, 10 + t:10 + w + t] for t in range(n)]
    painted = [cv2.GaussianBlur(s, (0, 0), 1.5) for s in source]
    return source, noisy(painted, 10.0, seed=7, grain=1.5)


@pytest.mark.parametrize("native", [False, True])
def test_the_stabilizer_steadies_boiling_texture_without_washing_it_out(tmp_path, native, request):
    source, stylized = boiling_scene(12, 270, 360)  # at the height the figures are defined at
    stab = Stabilizer(kernels=request.getfixturevalue("kernels") if native else None)
    out = [stab(s, c) for s, c in zip(stylized, source)]
    src, per_frame, steady = (write_clip(tmp_path / f"{n}.mkv", f) for n, f in
                              (("src", source), ("per_frame", stylized), ("steady", out)))
    row = measure(src, [steady], reference=per_frame, height=270)["clips"][0]
    assert row["vs_reference"] < 0.35, row
    assert 0.9 <= row["texture_ratio"] <= 1.15, row
    assert row["lowpass_psnr_db"] > 30, row


def test_the_first_frame_after_a_cut_is_the_per_frame_frame():
    a, b = scene(seed=3)[:96, :128], scene(seed=4)[:96, :128]
    source = [a] * 5 + [b] * 5
    stylized = noisy(source, 10.0)
    stab = Stabilizer()
    out = [stab(s, c) for s, c in zip(stylized, source)]
    assert stab.cuts == [5]
    assert np.array_equal(out[0], stylized[0]) and np.array_equal(out[5], stylized[5])
    assert not np.array_equal(out[6], stylized[6])  # stabilizing again within the new shot


def test_strength_zero_is_the_per_frame_output():
    source, stylized = boiling_scene(6)
    stab = Stabilizer(TemporalSettings(strength=0.0))
    assert all(np.array_equal(stab(s, c), s) for s, c in zip(stylized, source))


def test_state_stays_bounded_over_a_long_clip():
    source, stylized = boiling_scene(4)
    stab = Stabilizer()
    tracemalloc.start()
    for i in range(60):
        stab(stylized[i % 4], source[i % 4])
        if i == 10:
            early = tracemalloc.get_traced_memory()[0]
    late = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert late < early * 1.2 + 200_000, (early, late)
    assert len(stab._prev) == 1  # one previous output, whatever the clip's length


def test_the_state_warped_with_coordinates_made_in_strips_equals_one_whole_warp():
    rng = np.random.default_rng(3)
    prev = (cv2.GaussianBlur(rng.random((300, 200, 3), np.float32), (0, 0), 2) * 65535).astype(np.uint16)  # the state
    flow = cv2.GaussianBlur((rng.random((40, 27, 2), np.float32) - 0.5) * 8, (0, 0), 2)
    stab = Stabilizer(TemporalSettings(flow_height=40))
    warped = _warp(prev, stab._coords(prev.shape[:2], flow))
    # the reference: full-size coordinates in one resize, one remap of the whole frame
    scale = np.array([200 / 27, 300 / 40], np.float32)
    grid = np.dstack(np.mgrid[0:40, 0:27][::-1]).astype(np.float32)
    full = cv2.resize(flow * scale + (grid + 0.5) * scale - 0.5, (200, 300), interpolation=cv2.INTER_LINEAR)
    whole = cv2.remap(prev, full, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    assert warped.shape == whole.shape and warped.dtype == np.uint16
    assert np.abs(warped.astype(int) - whole).max() / 65535 < 1e-3


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    """The native temporal kernels (built in a temp cache)."""
    found, why = _native.temporal_kernels(tmp_path_factory.getbasetemp() / "native-cache")
    if found is None and build.cxx_compiler() is None:
        pytest.skip(f"no C++ compiler on this machine: {why}")
    assert found is not None, why
    return found


@pytest.mark.parametrize("shape", [(300, 200, 3), (150, 100)])
def test_the_native_warp_equals_one_whole_opencv_remap(kernels, shape):
    rng = np.random.default_rng(4)
    prev = (cv2.GaussianBlur(rng.random(shape, np.float32), (0, 0), 2) * 65535).astype(np.uint16)
    flow = cv2.GaussianBlur((rng.random((40, 27, 2), np.float32) - 0.5) * 60, (0, 0), 2)  # some outside
    flow[3, 4] = np.nan  # a broken vector takes the border, it does not crash
    h, w = shape[:2]
    coords = Stabilizer(TemporalSettings(flow_height=40))._coords((h, w), flow)
    native = kernels.warp(prev, coords, np.empty_like(prev))
    whole = _warp(prev, coords)  # OpenCV, strip by strip (equal to one whole remap: test above)
    finite = ~np.isnan(cv2.resize(coords, (w, h), interpolation=cv2.INTER_LINEAR)).any(axis=2)
    assert 0 < finite.mean() < 1 and ((coords < -1) | (coords[..., :1] > w) | (coords[..., 1:] > h)).any()
    diff = np.abs(native.astype(int) - whole)
    assert native.dtype == np.uint16 and diff[finite].max() <= 2 and diff[finite].mean() < 0.05


@pytest.mark.parametrize("dtype,top,shape", [(np.uint8, 255.0, (70, 90, 3)), (np.uint16, 65535.0, (70, 90, 3)),
                                             (np.uint8, 255.0, (35, 45))])
def test_the_native_blend_equals_the_numpy_one(kernels, dtype, top, shape):
    rng = np.random.default_rng(5)
    c = (rng.random(shape) * top).astype(dtype)
    warped = (rng.random(shape) * 65535).astype(np.uint16)
    ac = rng.random((9, 12), np.float32) * 1.5
    aw = (1.2 - ac) * 0.9
    k = (rng.random((9, 12, *shape[2:]), np.float32) - 0.5) * 0.4  # pushes some values past 0 and 1
    want = _compose_up(c, warped, ac, aw, k, top, np.dtype(dtype))
    got = _compose_up(c, warped, ac, aw, k, top, np.dtype(dtype), kernels=kernels)
    for a, b in zip(want, got):
        assert a.dtype == b.dtype and a.shape == b.shape and np.abs(a.astype(int) - b).max() <= 1
    assert got[1].min() == 0 and got[1].max() == top  # clamped, both ways


def test_the_stabilizer_with_native_kernels_matches_the_numpy_one(kernels):
    source, stylized = boiling_scene(6)
    numpy_way, native_way = Stabilizer(), Stabilizer(kernels=kernels)
    for s, c in zip(stylized, source):
        a, b = numpy_way(s, c), native_way(s, c)
        assert np.abs(a.astype(int) - b).max() <= 1
    assert np.array_equal(numpy_way._prev_gray, native_way._prev_gray)
    assert np.abs(numpy_way._prev[0].astype(int) - native_way._prev[0]).max() <= 300  # 16-bit state: a few 1/257 steps


def test_native_kernels_refuse_arrays_they_cannot_read(kernels):
    prev = np.zeros((20, 30, 3), np.uint16)
    with pytest.raises(ValueError, match="coords"):
        kernels.warp(prev, np.zeros((5, 31, 2), np.float32), np.empty_like(prev))
    with pytest.raises(ValueError, match="out"):
        kernels.warp(prev, np.zeros((5, 30, 2), np.float32), np.empty((20, 30, 3), np.uint8))
    with pytest.raises(ValueError, match="c:"):
        kernels.compose(prev[:, ::2], prev, *(np.zeros((5, 30), np.float32),) * 2, np.zeros((5, 30, 3), np.float32),
                        1.0, 1.0, 65535.0, prev.copy(), prev.copy())


def test_the_state_is_16_bit_and_a_float_state_of_an_older_work_folder_is_taken():
    source, stylized = boiling_scene(3)
    stab = Stabilizer()
    stab(stylized[0], source[0])
    assert stab._prev[0].dtype == np.uint16 and np.array_equal(stab._prev[0], stylized[0].astype(np.uint16) * 257)
    state = stab.snapshot()
    older = dict(state, prev=[p.astype(np.float32) / 65535 for p in state["prev"]])  # as saved before
    a, b = Stabilizer(), Stabilizer()
    a.restore(state)
    b.restore(older)
    assert np.array_equal(a(stylized[1], source[1]), b(stylized[1], source[1]))


def test_planes_and_deep_frames_are_stabilized_like_rgb():
    source, stylized = boiling_scene(6)
    rgb, yuv, deep = Stabilizer(), Stabilizer(), Stabilizer()
    planes = lambda x: cv2.cvtColor(np.ascontiguousarray(x), cv2.COLOR_RGB2YUV_I420)  # noqa: E731
    for s, c in zip(stylized, source):
        o_rgb = rgb(s, c)
        o_yuv = yuv(planes(s), planes(c), "yuv420p")
        o_deep = deep(s.astype(np.uint16) * 257, c.astype(np.uint16) * 257)
    assert o_yuv.shape == planes(stylized[0]).shape and o_yuv.dtype == np.uint8
    assert o_deep.dtype == np.uint16 and np.abs(o_deep / 257 - o_rgb).mean() < 0.5
    luma_rgb = cv2.cvtColor(o_rgb, cv2.COLOR_RGB2YUV_I420)[:96]
    assert np.abs(o_yuv[:96].astype(int) - luma_rgb).mean() < 3  # the same steadiness, in luma


def test_bad_settings_are_value_errors():
    for bad in (dict(strength=1.5), dict(strength=-0.1), dict(method="magic"), dict(flow_preset="slow")):
        with pytest.raises(ValueError):
            TemporalSettings(**bad)


# --- the video job -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cut_clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("cut")
    a, b = scene(seed=3)[:64, :96], scene(seed=4)[:64, :96]
    pan = [np.roll(a, t, axis=1) for t in range(6)] + [np.roll(b, t, axis=1) for t in range(6)]
    clip = write_clip(d / "cut.mkv", pan)
    yuv = d / "cut_yuv.mp4"  # the same frames as 4:2:0 YCbCr, which the yuv420 transport needs
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-i", str(clip), "-c:v", "libx264", "-qp", "0",
                    "-pix_fmt", "yuv420p", str(yuv)], check=True)
    return clip, make_style(d / "style.png"), yuv


def run_job(clip: Path, style: Path, out: Path, *extra: str) -> dict:
    report = out.with_suffix(".json")
    r = runner.invoke(app, ["video", str(clip), "-s", str(style), "-o", str(out), "--codec", "ffv1", "--device", "cpu",
                            "-q", "--report", str(report), *extra])
    assert r.exit_code == 0, r.stderr
    return json.loads(report.read_text())


def frames_of(path: Path) -> list[np.ndarray]:
    return [f.data for f in decode_frames(probe(path))]


def test_temporal_off_is_the_per_frame_engine_bit_for_bit(env, cut_clip, tmp_path, model):
    clip, style, yuv = cut_clip
    run_job(clip, style, tmp_path / "off.mkv", "--temporal", "off", "--precision", "fp32")
    from microast_video.media.image import load_style_image

    model.to(memory_format=torch.contiguous_format)  # as the job does: signals first, then the runtime layout
    signals = model.encode_style(load_style_image(style))
    settings = engine_settings(torch.device("cpu"), torch.float32, 64, 96, frames=12)
    prepare_runtime(model, settings)
    try:
        engine = FrameEngine(Stylizer(model, signals, settings), 8)
        direct = [f.data for f in engine.run(decode_frames(probe(clip)))]
    finally:
        model.to(memory_format=torch.contiguous_format)
    assert all(np.array_equal(a, b) for a, b in zip(frames_of(tmp_path / "off.mkv"), direct))


def test_on_by_default_reset_at_the_cut_and_reported(env, cut_clip, tmp_path):
    clip, style, yuv = cut_clip
    on = run_job(clip, style, tmp_path / "on.mkv")
    run_job(clip, style, tmp_path / "off.mkv", "--temporal", "off")
    assert on["temporal"]["on"] and on["temporal"]["scene_cuts"] == [6]
    assert on["temporal"]["kernels"] == "native" or build.cxx_compiler() is None, on["temporal"]
    assert on["stages"]["temporal"] > 0
    steady, per_frame = frames_of(tmp_path / "on.mkv"), frames_of(tmp_path / "off.mkv")
    assert len(steady) == len(per_frame) == 12
    assert np.array_equal(steady[0], per_frame[0]) and np.array_equal(steady[6], per_frame[6])  # shot starts
    assert not np.array_equal(steady[3], per_frame[3])


@pytest.mark.parametrize("extra", [["--transport", "yuv420", "--codec", "h264"], ["--transport", "rgb", "--precision", "fp32"],
                                   ["--precision", "bf16", "--height", "48"]])
def test_temporal_works_with_every_transport_and_precision(env, cut_clip, tmp_path, extra):
    clip, style, yuv = cut_clip
    out = tmp_path / ("o.mp4" if "h264" in extra else "o.mkv")
    report = run_job(yuv if "yuv420" in extra else clip, style, out, *extra)
    assert report["frames"] == 12 and report["temporal"]["scene_cuts"] == [6]
    if "yuv420" in extra:
        assert report["engine"]["transport"] == "yuv420"


@pytest.mark.parametrize(("args", "needle"), [(["--temporal-strength", "1.5"], "--temporal-strength"),
                                              (["--temporal-strength", "nan"], "--temporal-strength"),
                                              (["--temporal", "maybe"], "--temporal")])
def test_bad_temporal_options_are_one_line(args, needle, tmp_path):
    proc = subprocess.run([sys.executable, "-c", "from microast_video.cli import main; main()", "x.mp4", "-s", "y.png",
                           *args], capture_output=True, text=True, timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0], proc.stderr


def test_frame_carries_source_only_when_asked(model):
    signals = model.encode_style(torch.rand(1, 3, 32, 32))
    frames = [Frame(i, i, 1, Fraction(1, 25), np.full((16, 16, 3), 9 * i, np.uint8)) for i in range(3)]
    kept = list(FrameEngine(Stylizer(model, signals), 2, keep_source=True).run(frames))
    plain = list(FrameEngine(Stylizer(model, signals), 2).run(frames))
    assert all(k.source is f.data for k, f in zip(kept, frames)) and all(p.source is None for p in plain)
    assert EngineSettings().dtype == torch.float32
