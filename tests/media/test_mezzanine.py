"""Mezzanine outputs a post house asks for: ProRes profiles with the input's alpha in 4444,
DNxHR in .mov and .mxf, and a video "encoder" tag that names what encoded it."""

from __future__ import annotations

import av
import numpy as np
import pytest
from helpers import ffmpeg, lavfi_clip, make_style, one_line_error, run_cli

from microast_video import probe


@pytest.fixture(scope="module")
def alpha_clip(tmp_path_factory):
    """ProRes 4444 with an alpha ramp left to right (0 to 1023 over 96 columns)."""
    clip = tmp_path_factory.mktemp("alpha") / "alpha.mov"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=0.4,format=yuva444p10le,"
           "geq=lum='lum(X,Y)':cb='cb(X,Y)':cr='cr(X,Y)':a='X*1023/95'", "-c:v", "prores_ks", "-profile:v", "4444",
           "-pix_fmt", "yuva444p10le", clip)
    assert probe(clip).alpha
    return clip


def alpha_plane(path) -> np.ndarray:
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
    assert "a" in frame.format.name.replace("yuv", "")  # yuva..., it keeps an alpha plane
    bits = max(comp.bits for comp in frame.format.components)
    plane = frame.planes[3]
    return np.frombuffer(plane, np.uint16).reshape(frame.height, -1)[:, :frame.width] / (2 ** bits - 1)


@pytest.mark.parametrize("profile", ["4444", "4444xq"])
def test_prores_4444_carries_the_inputs_alpha_with_the_stylized_rgb(alpha_clip, tmp_path, weights_env, monkeypatch,
                                                                      profile):
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    out = tmp_path / "out.mov"
    result = run_cli("video", alpha_clip, "--style", make_style(tmp_path / "s.png"), "--codec", "prores",
                     "--prores-profile", profile, "-o", out, expect=0)
    assert "alpha dropped" not in result.stderr
    assert np.abs(alpha_plane(out) - alpha_plane(alpha_clip)).max() < 0.01
    with av.open(str(out)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.profile == ("4444" if profile == "4444" else "XQ")
        assert stream.metadata.get("encoder") == "microast-video prores_ks"  # not the source's libx264 or prores


@pytest.mark.parametrize(("profile", "name"), [("proxy", "Proxy"), ("lt", "LT"), ("standard", "Standard"),
                                               ("hq", "HQ")])
def test_each_prores_profile_is_written(tmp_path, weights_env, monkeypatch, profile, name):
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    src = lavfi_clip(tmp_path / "c.mp4", "testsrc2=size=96x64:rate=25:duration=0.2")
    run_cli("video", src, "--style", make_style(tmp_path / "s.png"), "--codec", "prores", "--prores-profile", profile,
            "-o", tmp_path / "o.mov", "-q", expect=0)
    with av.open(str(tmp_path / "o.mov")) as c:
        assert c.streams.video[0].codec_context.profile == name


@pytest.mark.parametrize(("profile", "ext", "pix_fmt"), [("lb", ".mxf", "yuv422p"), ("hqx", ".mov", "yuv422p10le"),
                                                         ("444", ".mxf", "yuv444p10le")])
def test_dnxhr_profiles_in_mov_and_mxf(tmp_path, weights_env, monkeypatch, profile, ext, pix_fmt):
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    src = lavfi_clip(tmp_path / "c.mp4", "testsrc2=size=256x144:rate=25:duration=0.2",
                     audio="sine=frequency=440:duration=0.2")
    out = tmp_path / f"o{ext}"
    run_cli("video", src, "--style", make_style(tmp_path / "s.png"), "--codec", "dnxhr", "--dnxhr-profile", profile,
            "-o", out, "-q", expect=0)
    info = probe(out)
    assert info.codec == "dnxhd" and info.pix_fmt == pix_fmt and len(info.audio) == 1
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.profile.lower().startswith(f"dnxhr {profile}"[:7])


def test_dnxhr_below_its_smallest_frame_is_one_line(tmp_path, weights_env, monkeypatch):
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    src = lavfi_clip(tmp_path / "c.mp4", "testsrc2=size=96x64:rate=25:duration=0.2")
    result = run_cli("video", src, "--style", make_style(tmp_path / "s.png"), "--codec", "dnxhr", "-o",
                     tmp_path / "o.mxf")
    one_line_error(result, "256x120")
    assert not (tmp_path / "o.mxf").exists()
