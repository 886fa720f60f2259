"""Image sequences in and out: a folder, %04d and #### patterns and one frame name a sequence;
16-bit PNG and DPX go through with their depth; frames keep their numbers (moved by --start);
a gap names the first missing frame; output frames are whole, and a killed render resumes."""

from __future__ import annotations

import subprocess
from importlib.util import find_spec

import cv2
import numpy as np
import pytest
from helpers import ffmpeg, make_style, one_line_error, run_cli

from microast_video import decode_frames, probe
from microast_video.core.errors import InputError
from microast_video.media.sequence import find_sequence


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    d = tmp_path_factory.mktemp("seq")
    (d / "png").mkdir()
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=24:duration=0.5", "-start_number", "1001", "-pix_fmt",
           "rgb48be", d / "png" / "shot.%04d.png")
    (d / "dpx").mkdir()
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=24:duration=0.25", "-start_number", "86400", "-pix_fmt",
           "gbrp10le", d / "dpx" / "plate_%07d.dpx")
    return d


@pytest.mark.parametrize("name", ["png", "png/shot.%04d.png", "png/shot.####.png", "png/shot.1005.png"])
def test_every_way_of_naming_a_sequence_finds_it(frames, name):
    s = find_sequence(frames / name)
    assert (s.prefix, s.suffix, s.padding, s.first, s.last) == ("shot.", ".png", 4, 1001, 1012)
    info = probe(frames / name, fps=25)
    assert info.sequence == s and info.frames == 12 and info.frame_rate == 25 and info.bit_depth == 16


def test_a_gap_names_the_first_missing_frame(frames, tmp_path):
    for n in (1, 2, 4, 5):
        cv2.imwrite(str(tmp_path / f"g.{n:03d}.png"), np.full((16, 16, 3), n * 20, np.uint8))
    with pytest.raises(InputError, match=r"frame 3 .*g\.003\.png.* is missing"):
        probe(tmp_path / "g.###.png")


def linear_exr(folder, values: np.ndarray, frames: int = 3, first: int = 1001) -> None:
    """Half-float OpenEXR frames holding ``values`` ((H, W, 3) float32, scene-linear)."""
    from helpers import FFMPEG

    h, w = values.shape[:2]
    planes = np.concatenate([values[..., 1].ravel(), values[..., 2].ravel(), values[..., 0].ravel()]).astype("<f4")
    subprocess.run([FFMPEG, "-v", "error", "-f", "rawvideo", "-pix_fmt", "gbrpf32le", "-s", f"{w}x{h}", "-r", "24",
                    "-i", "pipe:", "-c:v", "exr", "-format", "half", "-compression", "zip1", "-start_number",
                    str(first), str(folder / "lin.%04d.exr")], input=planes.tobytes() * frames, check=True)


def exr_frame(pattern) -> np.ndarray:
    import av

    with av.open(str(pattern), format="image2", options={"framerate": "24", "start_number": "1001"}) as c:
        return next(c.decode(video=0)).to_ndarray(format="gbrpf32le")


def grey_ramp(h: int = 64, w: int = 128) -> np.ndarray:
    ramp = np.tile(np.linspace(0.0, 1.0, w, dtype=np.float32), (h, 1))
    return np.stack([ramp] * 3, -1)


@pytest.mark.parametrize("space", [None, "ACEScg"])
def test_a_linear_exr_round_trip_stays_within_one_percent(tmp_path, weights_env, monkeypatch, space):
    """Scene-linear frames -> display-referred for the network (OpenColorIO) -> back: at
    --strength 0 the output frames are the input's to within 1 % in linear."""
    pytest.importorskip("PyOpenColorIO", reason="the post extra (CI installs it)")
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    linear_exr(tmp_path, grey_ramp())
    args = ["--input-colorspace", space] if space else []
    assert render(tmp_path / "lin.%04d.exr", tmp_path / "out.%04d.exr", make_style(tmp_path / "s.png"),
                  "--strength", "0", *args).exit_code == 0
    src, out = exr_frame(tmp_path / "lin.%04d.exr"), exr_frame(tmp_path / "out.%04d.exr")
    lit = src > 0.01
    assert out.shape == src.shape and np.abs(out[lit] - src[lit]).max() / src[lit].max() < 0.01
    assert sorted(p.name for p in tmp_path.glob("out.*.exr")) == ["out.1001.exr", "out.1002.exr", "out.1003.exr"]


def test_colour_management_refuses_an_unknown_space_and_paints_exr_into_a_movie(tmp_path, weights_env, monkeypatch):
    pytest.importorskip("PyOpenColorIO", reason="the post extra (CI installs it)")
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    linear_exr(tmp_path, grey_ramp() * 0.18 / 0.5)
    style = make_style(tmp_path / "s.png")
    bad = render(tmp_path / "lin.%04d.exr", tmp_path / "o.mp4", style, "--input-colorspace", "Not A Space")
    one_line_error(bad, "--input-colorspace", "Not A Space")
    assert render(tmp_path / "lin.%04d.exr", tmp_path / "o.mkv", style, "--codec", "ffv1", "--strength", "0"
                  ).exit_code == 0
    movie = next(iter(decode_frames(probe(tmp_path / "o.mkv")))).data.astype(float)
    mid = movie[:, 64].mean() / (65535 if movie.max() > 255 else 255)
    assert 0.45 < mid < 0.5  # linear 0.18 at the middle: about 0.46 in sRGB (display-referred)


def render(src, out, style, *args):
    return run_cli("video", src, "--style", style, "-o", out, "-q", *args)


def test_a_16_bit_sequence_comes_back_as_16_bit_frames_numbered_like_the_input(frames, tmp_path, weights_env,
                                                                                monkeypatch):
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    style = make_style(tmp_path / "s.png")
    assert render(frames / "png", tmp_path / "out.####.png", style, "--start", "0.25").exit_code == 0
    written = sorted(p.name for p in tmp_path.glob("out.*.png"))
    assert written == [f"out.{n}.png" for n in range(1007, 1013)]  # 0.25 s at 24 fps: six frames skipped
    frame = cv2.imread(str(tmp_path / "out.1007.png"), cv2.IMREAD_UNCHANGED)
    assert frame.dtype == np.uint16 and frame.shape == (64, 96, 3)
    assert render(frames / "dpx" / "plate_0086400.dpx", tmp_path / "dpx" / "p.%05d.dpx", style).exit_code != 0
    (tmp_path / "dpx").mkdir()
    assert render(frames / "dpx" / "plate_0086400.dpx", tmp_path / "dpx" / "p.%05d.dpx", style).exit_code == 0
    out = probe(tmp_path / "dpx" / "p.%05d.dpx")
    depth = 10 if find_spec("OpenImageIO") else 16  # a 10-bit DPX stays 10-bit (ffmpeg alone writes 16)
    assert out.sequence.first == 86400 and out.frames == 6 and out.bit_depth == depth
    assert render(frames / "png", tmp_path / "m.mp4", style, "--start-number", "5").exit_code == 0  # a movie
    assert probe(tmp_path / "m.mp4").frames == 12


def test_an_output_sequence_never_writes_over_the_input(frames, tmp_path, weights_env, monkeypatch):
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    before = (frames / "png" / "shot.1001.png").read_bytes()
    result = render(frames / "png", frames / "png" / "shot.####.png", make_style(tmp_path / "s.png"), "--overwrite")
    one_line_error(result, "the input's own frames")
    assert (frames / "png" / "shot.1001.png").read_bytes() == before


def test_a_killed_sequence_render_resumes_and_a_finished_one_is_up_to_date(frames, tmp_path, weights_env,
                                                                            monkeypatch):
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    style = make_style(tmp_path / "s.png")
    assert render(frames / "png", tmp_path / "r.%04d.png", style).exit_code == 0
    whole = {n: cv2.imread(str(tmp_path / f"r.{n}.png"), cv2.IMREAD_UNCHANGED) for n in range(1001, 1013)}
    for n in range(1006, 1013):  # a kill after frame 1005: its frames are whole, the rest missing
        (tmp_path / f"r.{n}.png").unlink()
    (tmp_path / "r.1006.png.tmp").write_bytes(b"half a frame")
    again = run_cli("video", frames / "png", "--style", style, "-o", tmp_path / "r.%04d.png")
    assert again.exit_code == 0 and "5 frame(s)" in again.stderr and "continuing at frame 1006" in again.stderr
    assert not (tmp_path / "r.1006.png.tmp").exists()
    for n in range(1006, 1013):
        resumed = cv2.imread(str(tmp_path / f"r.{n}.png"), cv2.IMREAD_UNCHANGED).astype(int)
        assert np.abs(resumed - whole[n]).mean() < 0.01 * 65535  # the warm-up makes the seam steady
    done = run_cli("video", frames / "png", "--style", style, "-o", tmp_path / "r.%04d.png", "--report",
                   tmp_path / "r.json")
    assert done.exit_code == 0 and "up to date" in done.stderr
    assert '"up_to_date": true' in (tmp_path / "r.json").read_text()  # the report asked for is written
    other = run_cli("video", frames / "png", "--style", make_style(tmp_path / "t.png", seed=7), "-o",
                    tmp_path / "r.%04d.png")
    one_line_error(other, "was not made by this job", "--overwrite")


def test_a_batch_takes_sequences_as_inputs(frames, tmp_path, weights_env, monkeypatch):
    """A folder of numbered frames and a #### pattern are one input each; a replaced frame makes
    the output stale."""
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    import shutil

    shutil.copytree(frames / "png", tmp_path / "sh010")
    (tmp_path / "jobs.toml").write_text(f"""output = "{{stem}}_{{look}}.mkv"
output_dir = "out"
[defaults]
codec = "ffv1"
fps = 25
[[inputs]]
path = "sh010"
[[inputs]]
path = "{frames / 'dpx' / 'plate_#######.dpx'}"
[looks.a]
style = "{make_style(tmp_path / 's.png')}"
""")
    first = run_cli("batch", tmp_path / "jobs.toml", "-q")
    assert first.exit_code == 0, first.stderr
    assert probe(tmp_path / "out" / "sh010_a.mkv").frames == 12 and probe(tmp_path / "out" / "plate_a.mkv").frames == 6
    assert probe(tmp_path / "out" / "sh010_a.mkv").frame_rate == 25
    again = run_cli("batch", tmp_path / "jobs.toml")
    assert "0 done" in again.stderr and "2 up to date" in again.stderr
    frame = tmp_path / "sh010" / "shot.1004.png"
    cv2.imwrite(str(frame), np.zeros((64, 96, 3), np.uint16))
    stale = run_cli("batch", tmp_path / "jobs.toml")
    assert stale.exit_code == 2 and "not made from these inputs" in stale.stderr  # never silently "up to date"
    changed = run_cli("batch", tmp_path / "jobs.toml", "--overwrite")
    assert "1 done" in changed.stderr and "1 up to date" in changed.stderr
