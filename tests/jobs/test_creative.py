"""Creative controls on video: regions from a matte, style and alpha keyframes, previews, charts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import ffmpeg, make_clip, process_error
from typer.testing import CliRunner

from microast_video import Stylizer, decode_frames, mix_signals, probe
from microast_video.cli import app
from microast_video.core.options import Ease
from microast_video.media.procedural import painting
from microast_video.style.controls import Schedule

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("creative")
    make_clip(d / "clip.mp4", size="96x64", seconds=0.84, source="testsrc2")  # 21 frames at 25 fps
    cv2.imwrite(str(d / "a.png"), painting(96, seed=5))
    cv2.imwrite(str(d / "b.png"), painting(96, seed=11)[:, :, ::-1])  # other colours
    return d


def frames_of(path: Path) -> list[np.ndarray]:
    return [f.data.astype(int) for f in decode_frames(probe(path))]


def video(files: Path, out: Path, *args: str) -> object:
    r = runner.invoke(app, ["video", str(files / "clip.mp4"), "-o", str(out), "--codec", "ffv1", "--temporal", "off",
                            "--precision", "fp32", "--device", "cpu", "-q", *map(str, args)])
    assert r.exit_code == 0, r.stderr
    return r




# --- regions from a matte ------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_styles(model):
    def tensor(img: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(img[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 255

    return model.encode_style(tensor(painting(64, seed=5))), model.encode_style(tensor(painting(80, seed=11)[:, :, ::-1]))


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_a_white_or_black_matte_gives_exactly_one_style(model, two_styles):
    a, b = two_styles
    x = torch.rand(2, 3, 40, 56, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        only_a, only_b = model(x, a), model(x, b)
        white = model(x, a, matte=torch.ones(2, 1, 40, 56), background=b)
        black = model(x, a, matte=torch.zeros(2, 1, 40, 56), background=b, strip_rows=8)
    assert rel(white, only_a) < 1e-5 and rel(black, only_b) < 1e-5


def test_soft_edges_blend_between_the_two_styles(model, two_styles):
    a, b = two_styles
    x = torch.rand(1, 3, 48, 288, generator=torch.Generator().manual_seed(2))
    matte = torch.zeros(1, 1, 48, 288)  # background | soft edge | foreground
    matte[..., 192:] = 1.0
    matte[..., 96:192] = torch.linspace(0, 1, 96)
    with torch.inference_mode():
        out, only_a, only_b = model(x, a, matte=matte, background=b), model(x, a), model(x, b)
    near_a = (out - only_a).abs().mean(dim=(0, 1, 2))  # per column
    near_b = (out - only_b).abs().mean(dim=(0, 1, 2))
    thirds = [slice(0, 96), slice(96, 192), slice(192, 288)]
    da, db = [float(near_a[s].mean()) for s in thirds], [float(near_b[s].mean()) for s in thirds]
    assert da[0] > da[1] > da[2] and db[0] < db[1] < db[2]  # from the background's style to the foreground's
    assert da[2] < db[2] / 2 and db[0] < da[0] / 2  # each hard region is clearly its own style


def test_one_style_keeps_the_original_outside_the_matte_and_blends_the_edge(model, two_styles):
    a, _ = two_styles
    x = torch.rand(1, 3, 32, 64, generator=torch.Generator().manual_seed(4))
    m = torch.zeros(1, 1, 32, 64)
    m[..., 40:] = 1.0
    m[..., 24:40] = torch.linspace(0, 1, 16)
    stylizer = Stylizer(model, a)
    with torch.inference_mode():
        out = stylizer(x, matte=m)
        painted = model(x, a, matte=m).clamp(0, 1)
    assert torch.equal(out[..., :24], x[..., :24])  # outside: the original, exactly
    assert torch.allclose(out, x + m * (painted - x), atol=1e-6)  # the edge: a soft blend


def test_matte_clip_scaled_and_mapped_onto_the_frames_end_to_end(env, files, tmp_path):
    matte = tmp_path / "matte.mp4"  # half the size, white on the right half
    ffmpeg("-f", "lavfi", "-i", "color=c=black:s=48x32:d=0.84:r=25", "-vf", "drawbox=x=24:y=0:w=24:h=32:c=white:t=fill",
           "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p", matte)
    video(files, tmp_path / "m.mkv", "-s", files / "a.png", "--matte", matte, "--report", tmp_path / "r.json")
    notes = json.loads((tmp_path / "r.json").read_text())["notes"]
    assert any("scaled to the frames" in n for n in notes), notes
    source, out = frames_of(files / "clip.mp4"), frames_of(tmp_path / "m.mkv")
    assert len(out) == 21
    assert np.abs(out[5][:, :44] - source[5][:, :44]).max() <= 1  # left: the original
    assert np.abs(out[5][:, 52:] - source[5][:, 52:]).mean() > 20  # right: painted


def test_a_vp9_alpha_matte_uses_its_alpha(env, files, tmp_path):
    matte = tmp_path / "alpha.webm"  # opaque on the left half only; its colour is white everywhere
    ffmpeg("-f", "lavfi", "-i", "color=c=white:s=96x64:d=0.84:r=25", "-vf",
           "format=yuva420p,geq=lum='lum(X,Y)':cb='cb(X,Y)':cr='cr(X,Y)':a='if(lt(X,48),255,0)'",
           "-c:v", "libvpx-vp9", "-auto-alt-ref", "0", matte)
    video(files, tmp_path / "m.mkv", "-s", files / "a.png", "--matte", matte)
    source, out = frames_of(files / "clip.mp4"), frames_of(tmp_path / "m.mkv")
    assert np.abs(out[3][:, 56:] - source[3][:, 56:]).max() <= 1 and np.abs(out[3][:, :40] - source[3][:, :40]).mean() > 20


def test_a_matte_works_with_the_temporal_stage(env, files, tmp_path):
    """Temporal on: one style keeps the original outside the matte exactly; two styles keep regions."""
    matte = np.zeros((64, 96), np.uint8)
    matte[:, 48:] = 255
    cv2.imwrite(str(tmp_path / "m.png"), matte)
    video(files, tmp_path / "one.mkv", "-s", files / "a.png", "--matte", tmp_path / "m.png", "--temporal", "on")
    video(files, tmp_path / "off.mkv", "-s", files / "a.png", "--matte", tmp_path / "m.png")
    source, one, off = frames_of(files / "clip.mp4"), frames_of(tmp_path / "one.mkv"), frames_of(tmp_path / "off.mkv")
    assert len(one) == 21
    assert all(np.array_equal(o[:, :48], s[:, :48]) for o, s in zip(one, source))  # outside: exactly the original
    assert np.abs(one[10][:, 56:] - source[10][:, 56:]).mean() > 20  # inside: painted...
    assert any(not np.array_equal(o[:, 56:], f[:, 56:]) for o, f in zip(one, off))  # ...and stabilized
    video(files, tmp_path / "two.mkv", "-s", files / "a.png", "-s", files / "b.png", "--matte", tmp_path / "m.png",
          "--temporal", "on")
    assert len(frames_of(tmp_path / "two.mkv")) == 21


@pytest.mark.parametrize(("make", "needle"), [
    ("short", "lasts"), ("missing", "file not found"), ("three styles", "one style"), ("junk", "matte "),
])
def test_bad_mattes_are_one_line(env, files, tmp_path, make, needle):
    args = ["video", str(files / "clip.mp4"), "-s", str(files / "a.png"), "-o", str(tmp_path / "o.mkv")]
    if make == "short":
        make_clip(tmp_path / "short.mp4", size="96x64", seconds=0.2)
        args += ["--matte", str(tmp_path / "short.mp4")]
    elif make == "missing":
        args += ["--matte", str(tmp_path / "none.png")]
    elif make == "junk":  # not media: the error names it as the matte, not the input
        (tmp_path / "junk.mov").write_text("junk")
        args += ["--matte", str(tmp_path / "junk.mov")]
    else:
        cv2.imwrite(str(tmp_path / "m.png"), np.zeros((8, 8), np.uint8))
        args += ["--matte", str(tmp_path / "m.png"), "-s", str(files / "b.png"), "-s", str(files / "a.png")]
    assert needle in process_error(*args)


# --- keyframes --------------------------------------------------------------------------------

def test_keyframe_maths(two_styles):
    a, b = two_styles
    s = Schedule((0.0, 2.0), (a, b), (1.0, 3.0), (1.0, 0.5), Ease.linear)
    assert torch.equal(s.signals_at(0.0, a).mean1, a.mean1) and torch.equal(s.signals_at(5.0, a).mean1, b.mean1)
    half = mix_signals([a, b], [0.5, 0.5])
    assert all(torch.equal(x, y) for x, y in zip(s.signals_at(1.0, a).tensors(), half.tensors()))
    assert s.alpha_at(0.5, 0.9) == 1.0 and s.alpha_at(2.0, 0.9) == 0.75 and s.alpha_at(9.0, 0.9) == 0.5
    smooth = Schedule((0.0, 2.0), (a, b), (), (), Ease.smooth)
    w = 0.25 * 0.25 * (3 - 2 * 0.25)  # smoothstep at a quarter of the way
    assert torch.allclose(smooth.signals_at(0.5, a).w1, (1 - w) * a.w1 + w * b.w1)


def test_a_frame_at_a_keyframe_is_the_single_style_and_halfway_the_even_mix(env, files, tmp_path):
    keys = ["--style-at", f"0:{files / 'a.png'}", "--style-at", f"20f:{files / 'b.png'}"]
    video(files, tmp_path / "k.mkv", *keys)
    video(files, tmp_path / "a.mkv", "-s", files / "a.png")
    video(files, tmp_path / "b.mkv", "-s", files / "b.png")
    video(files, tmp_path / "mix.mkv", "-s", files / "a.png", "-s", files / "b.png", "--style-weights", "0.5,0.5")
    k, a, b, mix = (frames_of(tmp_path / f"{n}.mkv") for n in ("k", "a", "b", "mix"))
    assert np.array_equal(k[0], a[0]) and np.array_equal(k[20], b[20])
    assert np.array_equal(k[10], mix[10])  # frame 10 of 20: halfway
    assert not np.array_equal(k[5], a[5]) and not np.array_equal(k[5], mix[5])


def test_alpha_keyframes_and_a_keyframe_file(env, files, tmp_path):
    (tmp_path / "keys.toml").write_text(f'style = [[0, "{files / "a.png"}"]]\nalpha = [[0, 1.0], ["20f", 0.9]]\n')
    video(files, tmp_path / "ramp.mkv", "--keyframes", tmp_path / "keys.toml")
    video(files, tmp_path / "a9.mkv", "-s", files / "a.png", "--alpha", "0.9")
    video(files, tmp_path / "a10.mkv", "-s", files / "a.png")
    ramp, a9, a10 = (frames_of(tmp_path / f"{n}.mkv") for n in ("ramp", "a9", "a10"))
    assert np.array_equal(ramp[0], a10[0]) and np.array_equal(ramp[20], a9[20])


@pytest.mark.parametrize(("args", "needle"), [
    (["--style-at", "1:A", "--style-at", "1:B"], "must increase"),  # given in any order, sorted; never twice
    (["--style-at", "soon:A"], "must be seconds"),
    (["--style-at", "0"], "TIME:VALUE"),
    (["--style-at", "0:missing.png"], "file not found"),
    (["--alpha-at", "0:2"], "between 0 and 1"),
    (["--style-at", "0:A", "-s", "A"], "not both"),
])
def test_bad_keyframes_are_one_line(files, tmp_path, args, needle):
    args = [a.replace("A", str(files / "a.png")).replace("B", str(files / "b.png")) for a in args]
    if "--alpha-at" in args:
        args += ["-s", str(files / "a.png")]
    assert needle in process_error("video", files / "clip.mp4", "-o", tmp_path / "o.mkv", *args)


# --- previews and charts -----------------------------------------------------------------------

def test_preview_grid_has_a_row_per_frame_and_a_column_per_look(env, files, tmp_path):
    out = tmp_path / "p.png"
    r = runner.invoke(app, ["preview", str(files / "clip.mp4"), "-s", str(files / "a.png"), "-s", str(files / "b.png"),
                            "--alpha", "1", "--alpha", "0.95", "--frames", "3", "--height", "48", "-o", str(out)])
    assert r.exit_code == 0, r.stderr
    sheet = cv2.imread(str(out))
    tile_w = round(96 * 48 / 64)
    assert sheet.shape[:2] == (4 + 26 + 3 * (48 + 4), 4 + 5 * (tile_w + 4))  # header + 3 rows; input + 2x2 looks
    first_tile = sheet[30:30 + 12, 4:30]  # the timestamp label: a dark band with white text
    assert first_tile.min() < 40 and first_tile.max() > 200


def test_preview_with_a_matte_shows_it_beside_the_look(env, files, tmp_path):
    matte = np.zeros((64, 96), np.uint8)
    matte[:, 48:] = 255  # right half: the first style
    cv2.imwrite(str(tmp_path / "m.png"), matte)
    out = tmp_path / "p.png"
    r = runner.invoke(app, ["preview", str(files / "clip.mp4"), "-s", str(files / "a.png"), "-s", str(files / "b.png"),
                            "--matte", str(tmp_path / "m.png"), "--frames", "2", "-o", str(out)])
    assert r.exit_code == 0, r.stderr
    sheet = cv2.imread(str(out))
    assert sheet.shape[:2] == (4 + 26 + 2 * (64 + 4), 4 + 3 * (96 + 4))  # input, matte, one look
    shown = sheet[30:30 + 64, 4 + 100:4 + 100 + 96, 1]
    assert shown[:, :40].max() < 10 and shown[:, 56:].min() > 245


def test_preview_refuses_to_overwrite_without_overwrite(env, files, tmp_path):
    (tmp_path / "p.png").write_text("mine")
    r = runner.invoke(app, ["preview", str(files / "clip.mp4"), "-s", str(files / "a.png"), "-o", str(tmp_path / "p.png")])
    assert r.exit_code == 1 and "exists" in r.stderr and (tmp_path / "p.png").read_text() == "mine"


def test_chart_of_a_run(env, files, tmp_path):
    pytest.importorskip("matplotlib", reason="the chart extra: pip install 'microast-video[chart]' (CI installs it)")
    r = runner.invoke(app, ["video", str(files / "clip.mp4"), "-s", str(files / "a.png"), "-o", str(tmp_path / "o.mkv"),
                            "--codec", "ffv1", "-q", "--chart", str(tmp_path / "chart.png")])
    assert r.exit_code == 0, r.stderr
    chart = cv2.imread(str(tmp_path / "chart.png"))
    assert chart is not None and chart.shape[:2] == (600, 800) and chart.std() > 5


def test_preview_never_shows_one_frame_twice(env, files, tmp_path):
    """--frames 48 on a 6-frame clip repeated the same frames in 40 rows."""
    short = make_clip(tmp_path / "short.mp4", size="96x64", seconds=0.24)  # 6 frames at 25 fps
    r = runner.invoke(app, ["preview", str(short), "-s", str(files / "a.png"), "--frames", "48", "--height", "32",
                            "-o", str(tmp_path / "p.png")])
    assert r.exit_code == 0, r.stderr
    rows = int(re.search(r"\((\d+) frames x 1 look", r.stderr).group(1))
    assert 1 <= rows <= 6, r.stderr  # at most the clip's frames, each once
    assert cv2.imread(str(tmp_path / "p.png")).shape[0] == 4 + 26 + rows * (32 + 4)
