"""The project's structure keeps its promises: one colour vocabulary (FCC and SMPTE-240M
sources decoded with their own matrix), one atomic writer (concurrent writers end cleanly),
pure modules (no torch in decoding, no file I/O in models/), a CLI whose errors are one line
and whose bugs say they are bugs, and a video path that paints a frame as the image path does.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from av.video.reformatter import ColorRange, Colorspace
from conftest import weights_dir
from helpers import FFMPEG, make_clip, make_style, temp_files
from typer.testing import CliRunner

from microast_video import EncodeSettings, OutputError, decode_frames, probe
from microast_video.cli import app
from microast_video.colour import spaces as cs
from microast_video.core.output import AtomicFile, temp_name
from microast_video.media.encode import FFmpegWriter
from microast_video.media.encode_plan import plan_encode

runner = CliRunner()

# (y, cb, cr) patches whose RGB differs between neighbouring matrices without clipping much.
PATCHES = [(0.5, -0.45, 0.0), (0.45, 0.4, -0.1), (0.5, 0.25, 0.25), (0.4, -0.2, 0.35), (0.6, 0.1, -0.3)]


def tagged_clip(path: Path, matrix: str) -> np.ndarray:
    """A lossless 10-bit 4:4:4 clip whose samples are exactly the patches, tagged ``matrix``.

    The raw input is tagged too, so ffmpeg passes the samples through unconverted.
    Returns the 10-bit code values, (3, H, W).
    """
    w, h = 16 * len(PATCHES), 16
    planes = np.zeros((3, h, w))
    for i, patch in enumerate(PATCHES):
        planes[:, :, i * 16:(i + 1) * 16] = np.array(patch)[:, None, None]
    codes = np.rint(np.stack([64 + 876 * planes[0], 512 + 896 * planes[1], 512 + 896 * planes[2]]))
    raw = path.with_suffix(".yuv")
    raw.write_bytes(codes.astype("<u2").tobytes() * 3)
    tags = ["-colorspace", matrix, "-color_range", "tv", "-color_primaries", "bt709", "-color_trc", "bt709"]
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "yuv444p10le",
                    "-s", f"{w}x{h}", "-r", "25", *tags, "-i", str(raw), "-c:v", "ffv1", *tags, str(path)], check=True)
    return codes


def analytic_rgb(codes: np.ndarray, kr: float, kb: float) -> np.ndarray:
    y, cb, cr = (codes[0] - 64) / 876, (codes[1] - 512) / 896, (codes[2] - 512) / 896
    r, b = y + 2 * (1 - kr) * cr, y + 2 * (1 - kb) * cb
    g = (y - kr * r - kb * b) / (1 - kr - kb)
    return np.stack([r, g, b], -1) * 255


@pytest.mark.parametrize(("matrix", "kr", "kb", "old"), [
    ("fcc", 0.30, 0.11, Colorspace.ITU601),  # the old code folded FCC into BT.601
    ("smpte240m", 0.212, 0.087, Colorspace.ITU709),  # and SMPTE-240M into BT.709
])
def test_fcc_and_smpte240m_sources_decode_with_their_own_matrix(tmp_path, matrix, kr, kb, old):
    codes = tagged_clip(tmp_path / f"{matrix}.mkv", matrix)
    info = probe(tmp_path / f"{matrix}.mkv")
    assert info.matrix == matrix and info.colorspace == matrix
    ours = next(decode_frames(info, deep=True)).data.astype(float)
    with av.open(str(tmp_path / f"{matrix}.mkv")) as container:
        frame = next(container.decode(video=0))
        own, wrong = (frame.to_ndarray(format="rgb48le", src_colorspace=c, src_color_range=ColorRange.MPEG,
                                       dst_color_range=ColorRange.JPEG).astype(float) for c in (cs.matrix(matrix).sws, old))
    assert np.array_equal(ours, own)  # swscale's own conversion for this matrix
    expected = analytic_rgb(codes, kr, kb)
    inside = (expected > 0.5) & (expected < 254.5)
    assert np.abs(ours / 257 - expected)[inside].max() < 1.0
    assert np.abs(wrong / 257 - expected)[inside].max() > 1.4  # the old matrix is measurably off


@pytest.mark.parametrize("matrix", ["fcc", "smpte240m"])
def test_encode_keeps_fcc_and_smpte240m_tags_and_colours(tmp_path, matrix):
    src = tmp_path / f"{matrix}.mkv"
    tagged_clip(src, matrix)
    info = probe(src)
    out = tmp_path / "out.mkv"
    plan = plan_encode(info, out, EncodeSettings(preset="ultrafast", crf=0, pix_fmt="yuv444p10le"), exe=FFMPEG)
    assert plan.matrix == matrix
    with FFmpegWriter(info, plan, out, exe=FFMPEG) as writer:
        assert f"out_color_matrix={cs.matrix(matrix).scale}" in " ".join(writer.command(0.0))
        for frame in decode_frames(info, size=plan.size, deep=plan.deep):
            writer.write(frame)
        writer.finish()
    back = probe(out)
    assert back.colorspace == matrix
    a = next(decode_frames(info, deep=True)).data.astype(float)
    b = next(decode_frames(back, deep=True)).data.astype(float)
    assert np.abs(a - b).max() / 257 < 1.5


def test_colour_vocabulary_is_consistent():
    for m in cs.MATRICES.values():
        assert cs.from_code(m.code) is m and cs.COLORSPACE_NAMES[m.code] == m.name
    assert cs.matrix("bt601") is cs.MATRICES["smpte170m"] and cs.matrix("bt2020") is cs.MATRICES["bt2020nc"]
    assert cs.from_code(0) is None and cs.from_code(2) is None  # RGB, unspecified
    with pytest.raises(ValueError, match="unknown colour matrix"):
        cs.matrix("gbr")


# --- one atomic writer ------------------------------------------------------------------

def test_two_writers_of_one_target_one_wins_the_other_reports_it(tmp_path):
    target = tmp_path / "o.bin"
    barrier, results = threading.Barrier(2), {}

    def write(name: str, payload: bytes) -> None:
        with AtomicFile(target, overwrite=False) as out:
            out.write(payload)
            barrier.wait()  # both temporary files exist before either is published
            try:
                out.publish()
                results[name] = "won"
            except OutputError as err:
                results[name] = str(err)

    threads = [threading.Thread(target=write, args=(n, n.encode() * 100_000)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    winners = [n for n, r in results.items() if r == "won"]
    assert len(winners) == 1, results
    loser = "b" if winners == ["a"] else "a"
    assert "was created by another program during the run" in results[loser] and "\n" not in results[loser]
    assert target.read_bytes() == winners[0].encode() * 100_000  # complete, never mixed
    assert temp_files(tmp_path) == []


def test_temporary_names_are_unique_short_and_hidden(tmp_path):
    long_target = tmp_path / ("é" * 120 + ".mp4")  # 240 bytes: legal, but no room for a suffix
    names = {temp_name(long_target) for _ in range(50)}
    assert len(names) == 50
    assert all(n.startswith(".") and len(n.encode()) <= 100 for n in names)
    with AtomicFile(long_target, overwrite=False) as out:
        out.write(b"x")
        out.publish()
    assert long_target.read_bytes() == b"x" and temp_files(tmp_path) == []


def test_two_video_runs_at_once_both_end_cleanly(tmp_path, weights_env):
    clip, style = make_clip(tmp_path / "c.mp4", seconds=1), make_style(tmp_path / "s.png")
    target = tmp_path / "o.mp4"
    env = {**__import__("os").environ, **weights_env}
    cmd = [sys.executable, "-c", "from microast_video.cli import main; main()", str(clip), "-s", str(style),
           "-o", str(target), "--device", "cpu", "--preset", "ultrafast", "-q"]
    procs = [subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [(p.wait(120), p.stderr.read()) for p in procs]
    assert sorted(code for code, _ in outs) == [0, 1], outs
    loser = next(err for code, err in outs if code == 1)
    errors = [line for line in loser.splitlines() if "error:" in line]
    assert len(errors) == 1 and "o.mp4" in errors[0] and ("exists" in errors[0] or "another program" in errors[0])
    with av.open(str(target)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 25
    assert temp_files(tmp_path) == []


# --- pure modules -----------------------------------------------------------------------

def test_decoding_does_not_import_torch_and_models_do_no_io():
    code = ("import sys; import microast_video.media.decode, microast_video.media.probe; assert 'torch' not in sys.modules;"
            "before = set(sys.modules); import microast_video.models;"
            "bad = [m for m in set(sys.modules) - before if m.startswith('microast_video.') and "
            "not m.startswith('microast_video.models')]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- the CLI ----------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "needle"), [
    (["video", "x.mp4", "--codec", "divx"], "--codec"),
    (["video", "x.mp4", "--transport", "fast"], "--transport"),
    (["video", "x.mp4", "--batch-size", "0"], "--batch-size"),
    (["video", "x.mp4", "--alpha", "2"], "--alpha"),
    (["image", "x.png", "--bit-depth", "12"], "--bit-depth"),
    (["video", "x.mp4", "--no-such-option"], "--no-such-option"),
])
def test_bad_command_lines_are_one_line(args, needle):
    proc = subprocess.run([sys.executable, "-c", "from microast_video.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("microast-video: error:") and needle in lines[0], proc.stderr


def test_a_bug_is_shown_as_a_bug(monkeypatch, tmp_path):
    from microast_video.jobs import video as _pipeline

    def broken(job, **kw):
        raise ZeroDivisionError("division by zero deep inside")

    monkeypatch.setattr(_pipeline, "run_video", broken)
    result = runner.invoke(app, ["video", str(tmp_path / "x.mp4"), "-s", "y.png"])
    assert result.exit_code == 70
    assert "internal error (a bug in microast-video): ZeroDivisionError" in result.stderr
    assert "--debug" in result.stderr and "Traceback" not in result.stderr
    result = runner.invoke(app, ["video", str(tmp_path / "x.mp4"), "-s", "y.png", "--debug"])
    assert result.exit_code == 70 and "Traceback" in result.stderr


def test_help_tells_the_truth_about_auto_precision():
    result = runner.invoke(app, ["video", "--help"])
    text = " ".join(result.output.replace("│", " ").split())  # rich draws boxes around the help
    assert "bf16 on CPUs that run it natively" in text


# --- the video path paints a frame as the image path does ------------------------------

def test_video_frame_equals_image_of_that_frame(tmp_path, weights_env, monkeypatch):
    for k, v in weights_env.items():
        monkeypatch.setenv(k, v)
    clip, style = make_clip(tmp_path / "c.mp4", size="96x64", seconds=0.4), make_style(tmp_path / "s.png")
    frames = list(decode_frames(probe(clip)))
    k = 5
    cv2.imwrite(str(tmp_path / "frame.png"), cv2.cvtColor(frames[k].data, cv2.COLOR_RGB2BGR))
    common = ["-s", str(style), "--device", "cpu", "--precision", "fp32", "-q"]
    r = runner.invoke(app, ["video", str(clip), "-o", str(tmp_path / "v.mkv"), "--codec", "ffv1", "--temporal", "off",
                            *common])
    assert r.exit_code == 0, r.stderr
    r = runner.invoke(app, ["image", str(tmp_path / "frame.png"), "-o", str(tmp_path / "i.png"), *common])
    assert r.exit_code == 0, r.stderr
    video = list(decode_frames(probe(tmp_path / "v.mkv")))[k].data.astype(int)
    image = cv2.cvtColor(cv2.imread(str(tmp_path / "i.png")), cv2.COLOR_BGR2RGB).astype(int)
    assert video.shape == image.shape
    assert np.abs(video - image).max() <= 1  # rounding only


def test_report_json_lists_stages_in_flow_order(tmp_path, weights_env, monkeypatch):
    for k, v in weights_env.items():
        monkeypatch.setenv(k, v)
    clip, style = make_clip(tmp_path / "c.mp4", seconds=0.4), make_style(tmp_path / "s.png")
    r = runner.invoke(app, ["video", str(clip), "-s", str(style), "-o", str(tmp_path / "o.mp4"), "--device", "cpu",
                            "--report", str(tmp_path / "r.json"), "-q"])
    assert r.exit_code == 0, r.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert list(report["stages"]) == ["decode", "upload", "network", "download", "temporal", "encode"]
    assert all(v >= 0 for v in report["stages"].values()) and report["stages"]["network"] > 0
    assert report["engine"]["dtype"] in ("bfloat16", "float32")
    assert weights_dir() is None or report["frames"] == 10


def test_the_engine_and_the_style_signals_import_no_pyav_or_ffmpeg():
    """The GPU machine the device check runs on has no PyAV, ffmpeg-python or imageio-ffmpeg: the
    network, the engine and the style signals must load without them (mattes, which read clips,
    live apart in style.mattes)."""
    code = ("import sys; import microast_video.engine.stylizer, microast_video.engine.device, "
            "microast_video.style.pretrained, microast_video.style.signals, microast_video.media.image; "
            "bad = [m for m in ('av', 'ffmpeg', 'imageio_ffmpeg') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
