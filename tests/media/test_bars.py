"""Letterbox and pillarbox bars stay black, unpainted (--keep-bars auto), or are painted
(--keep-bars off); --crop sets the picture area by hand."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import lavfi_clip, make_style, one_line_error, run_cli

from microast_video import decode_frames, probe
from microast_video.core.errors import OptionError
from microast_video.media.bars import Picture, find_bars, parse_crop


def framed(h: int, w: int, top: int, left: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = np.zeros((h, w, 3), np.uint8)
    f[top:h - top, left:w - left] = rng.integers(30, 255, (h - 2 * top, w - 2 * left, 3))
    return f


def test_bars_black_in_every_frame_are_found_and_a_dark_edge_is_not_a_bar():
    frames = [framed(100, 160, 12, 0, s) for s in range(3)]
    assert find_bars(frames) == Picture(0, 12, 160, 88, (160, 100))
    assert find_bars([framed(100, 160, 0, 20)]) == Picture(20, 0, 140, 100, (160, 100))
    thin = framed(100, 160, 1, 0)  # 1 row of 100: a dark edge, not a letterbox
    assert find_bars([thin]).whole
    lit = framed(100, 160, 12, 0)
    lit[3, 50] = 200  # one bright sample in the bar: not a constant black bar there
    assert find_bars([framed(100, 160, 12, 0), lit]).y0 < 12
    assert find_bars([np.zeros((100, 160, 3), np.uint8)]).whole  # a black frame: no picture to tell
    ramp = framed(100, 160, 0, 0)
    ramp[:, :20] = np.linspace(0, 24, 20, dtype=np.uint8)[None, :, None]  # a dark gradient at the edge
    assert find_bars([ramp]).whole


def test_crop_is_ffmpeg_syntax_in_source_pixels_scaled_to_the_output():
    assert parse_crop("1920:800:0:140", (1920, 1080), (960, 540)) == Picture(0, 70, 960, 470, (960, 540))
    for bad in ("1920:800", "a:b:c:d", "2000:800:0:140", "100:100:-1:0"):
        with pytest.raises(OptionError, match="--crop"):
            parse_crop(bad, (1920, 1080), (960, 540))


@pytest.fixture(scope="module")
def letterboxed(tmp_path_factory):
    """160x96 with black bars of 16 rows top and bottom (the picture 160x64)."""
    return lavfi_clip(tmp_path_factory.mktemp("bars") / "lb.mp4",
                      "testsrc2=size=160x64:rate=25:duration=0.4,pad=160:96:0:16:black")


def render(src, out, style, *args):
    run_cli("video", src, "--style", style, "--codec", "ffv1", "-o", out, "-q", *args, expect=0)
    return [f.data.astype(int) for f in decode_frames(probe(out))]


def test_bars_stay_black_and_the_picture_is_painted(letterboxed, tmp_path, weights_env, monkeypatch):
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    style = make_style(tmp_path / "s.png")
    kept = render(letterboxed, tmp_path / "kept.mkv", style)
    source = [f.data.astype(int) for f in decode_frames(probe(letterboxed))]
    for out, src in zip(kept, source):  # the bars, untouched (the rows next to the picture carry its chroma bleed)
        assert np.array_equal(out[:12], src[:12]) and np.array_equal(out[84:], src[84:])
        assert np.abs(out[16:80] - src[16:80]).mean() > 10  # the picture, painted
    painted = render(letterboxed, tmp_path / "painted.mkv", style, "--keep-bars", "off")
    assert np.abs(painted[0][:16] - source[0][:16]).mean() > 10
    cropped = render(letterboxed, tmp_path / "crop.mkv", style, "--keep-bars", "off", "--crop", "80:96:40:0")
    assert np.array_equal(cropped[0][:, :40], source[0][:, :40]) and np.abs(cropped[0][20:70, 40:120] -
                                                                          source[0][20:70, 40:120]).mean() > 10


def test_a_bad_crop_is_one_line(letterboxed, tmp_path, weights_env, monkeypatch):
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    result = run_cli("video", letterboxed, "--style", make_style(tmp_path / "s.png"), "--crop", "500:96:0:0", "-o",
                     tmp_path / "o.mp4")
    one_line_error(result, "--crop 500:96:0:0")
