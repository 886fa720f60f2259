"""`microast-video image` and `signals` through Typer's CliRunner, and the command routing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers import one_line_error
from helpers import run_cli as run
from typer.testing import CliRunner

from microast_video.cli import route

runner = CliRunner()


def _png(path, h, w, seed, grey=False):
    rng = np.random.default_rng(seed)
    img = (rng.random((h // 4 + 1, w // 4 + 1, 1 if grey else 3)) * 255).astype(np.uint8)
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    if grey:
        img = np.repeat(img[..., None] if img.ndim == 2 else img, 3, axis=2)
    cv2.imwrite(str(path), img)
    return path


@pytest.fixture()
def files(tmp_path):
    return {
        "content": _png(tmp_path / "content.png", 48, 64, 1),
        "style": _png(tmp_path / "style.png", 40, 40, 2),
        "style2": _png(tmp_path / "style2.jpg", 36, 52, 3),
        "grey": _png(tmp_path / "grey.png", 40, 40, 4, grey=True),
    }






def test_route_keeps_video_as_the_default_command():
    assert route(["in.mp4", "--style", "a.jpg"]) == ["video", "in.mp4", "--style", "a.jpg"]
    assert route(["--style", "a.jpg", "in.mp4"])[0] == "video"
    assert route(["image", "a.png"]) == ["image", "a.png"]
    assert route(["--help"]) == ["--help"]
    assert route([]) == []


def test_image_command_writes_a_stylized_png(env, files, tmp_path):
    out = tmp_path / "out.png"
    result = run("image", files["content"], "--style", files["style"], "-o", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    img = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    src = cv2.imread(str(files["content"]))
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8
    assert np.abs(img.astype(int) - src).mean() > 5  # it was restyled


def test_default_output_name_and_16_bit(env, files):
    result = run("image", files["content"], "-s", files["style"], "--bit-depth", "16", "--device", "cpu")
    assert result.exit_code == 0, result.output
    out = files["content"].with_name("content_stylized.png")
    assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).dtype == np.uint16


def test_style_weights_one_zero_equal_the_single_style(env, files, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert run("image", files["content"], "-s", files["style"], "-o", a, "--device", "cpu").exit_code == 0
    r = run("image", files["content"], "-s", files["style"], "-s", files["style2"],
            "--style-weights", "1,0", "-o", b, "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert np.array_equal(cv2.imread(str(a)), cv2.imread(str(b)))
    bad = run("image", files["content"], "-s", files["style"], "-s", files["style2"],
              "--style-weights", "0.5", "-o", tmp_path / "c.png", "--device", "cpu")
    one_line_error(bad, "--style-weights")
    assert not (tmp_path / "c.png").exists()


def test_signals_file_gives_the_same_image(env, files, tmp_path):
    sig = tmp_path / "s.npz"
    assert run("signals", "-s", files["style"], "-o", sig).exit_code == 0
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert run("image", files["content"], "-s", files["style"], "-o", a, "--device", "cpu").exit_code == 0
    assert run("image", files["content"], "--signals", sig, "-o", b, "--device", "cpu").exit_code == 0
    assert np.array_equal(cv2.imread(str(a)), cv2.imread(str(b)))


def test_preserve_color_keeps_grey_grey(env, files, tmp_path):
    out = tmp_path / "g.png"
    r = run("image", files["grey"], "-s", files["style"], "--preserve-color", "-o", out, "--device", "cpu")
    assert r.exit_code == 0, r.output
    img = cv2.imread(str(out)).astype(int)
    assert np.abs(img[..., 0] - img[..., 2]).max() <= 1


@pytest.mark.parametrize("kind", ["missing", "text", "truncated", "empty"])
def test_bad_style_files(env, files, tmp_path, kind):
    bad = tmp_path / f"bad_{kind}.jpg"
    if kind == "text":
        bad.write_text("not an image at all")
    elif kind == "truncated":
        ok, buf = cv2.imencode(".jpg", np.full((64, 64, 3), 127, np.uint8))
        bad.write_bytes(buf.tobytes()[: len(buf) // 2])
    elif kind == "empty":
        bad.write_bytes(b"")
    out = tmp_path / "out.png"
    result = run("image", files["content"], "-s", bad, "-o", out, "--device", "cpu")
    one_line_error(result, bad.name)
    assert result.exit_code == 1
    assert not out.exists() and not list(tmp_path.glob("*.part"))


def test_existing_output_and_input_are_protected(env, files, tmp_path):
    before = files["content"].read_bytes()
    r = run("image", files["content"], "-s", files["style"], "-o", files["content"], "--overwrite", "--device", "cpu")
    one_line_error(r, "is an input file")
    assert files["content"].read_bytes() == before
    out = tmp_path / "exists.png"
    out.write_bytes(b"keep me")
    one_line_error(run("image", files["content"], "-s", files["style"], "-o", out, "--device", "cpu"), "--overwrite")
    assert out.read_bytes() == b"keep me"
    assert run("image", files["content"], "-s", files["style"], "-o", out, "--overwrite", "--device", "cpu").exit_code == 0
    one_line_error(run("image", files["content"], "-s", files["style"], "-o", tmp_path / "no" / "x.png"), "does not exist")


def test_tiny_content_and_missing_style_and_bad_device(env, files, tmp_path):
    tiny = _png(tmp_path / "tiny.png", 4, 30, 5)
    one_line_error(run("image", tiny, "-s", files["style"], "-o", tmp_path / "t.png", "--device", "cpu"), "too small")
    one_line_error(run("image", files["content"], "-o", tmp_path / "n.png", "--device", "cpu"), "--style")
    one_line_error(run("image", files["content"], "-s", files["style"], "--device", "tpu"), "tpu")
    one_line_error(run("image", files["content"], "-s", files["style"], "--precision", "fp16", "--device", "cpu"), "fp16")


def test_missing_weights_is_one_line_with_advice(files, tmp_path, monkeypatch):
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", str(tmp_path / "nowhere"))
    r = run("image", files["content"], "-s", files["style"], "-o", tmp_path / "o.png", "--device", "cpu")
    one_line_error(r, "MICROAST_VIDEO_WEIGHTS")
    assert not (tmp_path / "o.png").exists()
