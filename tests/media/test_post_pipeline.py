"""A post pipeline end to end: a 16-bit RGBA DPX plate, a half-float scene-linear RGBA EXR plate
and an ACEScg-tagged EXR (written with OpenImageIO, the formats' own headers: timecode 01:00:10:00
on, chromaticities) go through the video command and a batch; they come back as sequences
(their numbers, each frame's timecode, their colour: a grey ramp within 1 % in linear, their
alpha) and as ProRes 4444 carrying their alpha; a killed EXR render resumes; a gap is held on
request."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from helpers import make_style, one_line_error, run_cli

from microast_video import decode_frames, probe

oiio = pytest.importorskip("OpenImageIO", reason="the post extra (CI installs it)")
pytest.importorskip("PyOpenColorIO", reason="the post extra (CI installs it)")

from microast_video.colour.ocio import PRIMARIES  # noqa: E402
from microast_video.core import output  # noqa: E402
from microast_video.core.output import temp_name  # noqa: E402
from microast_video.media.timecode import packed  # noqa: E402

W, H, FRAMES, FIRST = 96, 64, 6, 1001


def ramp() -> np.ndarray:
    """(H, W, 4): a grey ramp 0..1 across, alpha 1 at the top to 0.25 at the bottom."""
    grey = np.tile(np.linspace(0.0, 1.0, W, dtype=np.float32), (H, 1))
    alpha = np.tile(np.linspace(1.0, 0.25, H, dtype=np.float32)[:, None], (1, W))
    return np.stack([grey, grey, grey, alpha], -1)


def write_plate(pattern: str, pixels: np.ndarray, kind: str, **attributes) -> None:
    """``FRAMES`` frames of ``pixels`` (float in [0, 1]) as ``kind`` ("half", "uint16"), with
    timecode 01:00:10:00 on and ``attributes`` in each header."""
    for k in range(FRAMES):
        path = pattern % (FIRST + k)
        spec = oiio.ImageSpec(W, H, pixels.shape[2], kind)
        spec.attribute("smpte:TimeCode", oiio.TypeTimeCode, packed(f"01:00:10:{k:02d}"))
        for name, value in attributes.items():
            spec.attribute(name, *value) if isinstance(value, tuple) and len(value) == 2 else spec.attribute(name, value)
        out = oiio.ImageOutput.create(path)
        shade = np.clip(pixels * (1 - 0.02 * k), 0, 1)  # frames differ a little
        assert out.open(path, spec) and out.write_image(shade if kind == "half" else (shade * 65535).astype(np.uint16))
        out.close()


def header(path) -> tuple[oiio.ImageSpec, np.ndarray]:
    found = oiio.ImageInput.open(str(path))
    spec, pixels = found.spec(), found.read_image("float")
    found.close()
    return spec, pixels


@pytest.fixture(scope="module")
def plates(tmp_path_factory):
    d = tmp_path_factory.mktemp("plates")
    for name in ("dpx", "exr", "acg"):
        (d / name).mkdir()
    write_plate(str(d / "dpx" / "plate.%04d.dpx"), ramp(), "uint16")
    write_plate(str(d / "exr" / "lin.%04d.exr"), ramp(), "half")
    write_plate(str(d / "acg" / "acg.%04d.exr"), ramp()[..., :3], "half",
                chromaticities=(oiio.TypeDesc("float[8]"), PRIMARIES["ACEScg"]))
    return d


def render(src, out, style, *args):
    return run_cli("video", src, "--style", style, "-o", out, "-q", *args)


def close_in_linear(out: np.ndarray, src: np.ndarray) -> bool:
    lit = src > 0.01
    return bool(np.abs(out[lit] - src[lit]).max() / src[lit].max() < 0.01)


def test_sequences_come_back_as_sequences_with_their_numbers_timecode_and_colour(plates, tmp_path, weights_env,
                                                                                monkeypatch):
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    style = make_style(tmp_path / "s.png")
    (tmp_path / "d").mkdir()
    result = render(plates / "dpx", tmp_path / "d" / "sh.####.dpx", style, "--start", "0.125")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "d").glob("sh.*.dpx")) == [f"sh.{n}.dpx" for n in range(1004, 1007)]
    spec, pixels = header(tmp_path / "d" / "sh.1005.dpx")  # 0.125 s at 24 fps: three frames on
    assert spec.format == "uint16" and spec.get_string_attribute("smpte:TimeCode") == "01:00:10:04"
    source_alpha = header(plates / "dpx" / "plate.1005.dpx")[1][..., 3]
    assert spec.nchannels == 4 and np.abs(pixels[..., 3] - source_alpha).max() < 1e-4  # the plate's own frame's alpha
    for name, args in (("exr", ()), ("acg", ())):
        pattern = tmp_path / name / f"{name}.%04d.exr"
        pattern.parent.mkdir()
        done = render(next((plates / name).iterdir()), pattern, style, "--strength", "0", *args)
        assert done.exit_code == 0, done.stderr
        for k in (0, FRAMES - 1):
            spec, out = header(str(pattern) % (FIRST + k))
            _, src = header(next(p for p in (plates / name).iterdir() if p.name.endswith(f"{FIRST + k}.exr")))
            assert spec.format == "half" and spec.get_string_attribute("smpte:TimeCode") == f"01:00:10:{k:02d}"
            assert close_in_linear(out[..., :3], src[..., :3])  # the grey ramp round trip, in linear
            assert spec.nchannels == src.shape[2] and np.array_equal(out[..., 3:], src[..., 3:])  # alpha as it was
        chroma = tuple(spec.getattribute("chromaticities"))
        assert np.allclose(chroma, PRIMARIES["ACEScg" if name == "acg" else "Linear Rec.709 (sRGB)"], atol=1e-4)
    assert "declares ACEScg" in done.stderr


@pytest.mark.parametrize("plate", ["dpx", "exr"])
def test_a_plate_comes_back_as_prores_4444_with_its_alpha_and_timecode(plates, tmp_path, weights_env, monkeypatch,
                                                                       plate):
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    out = tmp_path / "o.mov"
    done = render(plates / plate, out, make_style(tmp_path / "s.png"), "--codec", "prores", "--prores-profile", "4444")
    assert done.exit_code == 0, done.stderr
    info = probe(out)
    assert info.pix_fmt.startswith("yuva444p") and info.timecode == "01:00:10:00" and info.frames == FRAMES
    import av

    with av.open(str(out)) as movie:
        frame = next(movie.decode(video=0)).reformat(format="yuva444p16le")
        alpha = frame.to_ndarray()[..., 3].astype(np.float64) / 65535
    assert np.abs(alpha - ramp()[..., 3]).max() < 2 / 255  # the source's alpha, not opaque


def test_a_batch_renders_plates_to_sequences_and_to_prores_4444(plates, tmp_path, weights_env, monkeypatch):
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    style = make_style(tmp_path / "s.png")
    inputs = "".join(f'[[inputs]]\npath = "{plates / name}"\n' for name in ("dpx", "exr", "acg"))
    (tmp_path / "frames.toml").write_text(f'output = "{{stem}}_{{look}}/{{stem}}.####.exr"\noutput_dir = "out"\n'
                                          f'{inputs}[looks.a]\nstyle = "{style}"\n')
    (tmp_path / "movies.toml").write_text(f'output = "{{stem}}_{{look}}.mov"\noutput_dir = "out"\n[defaults]\n'
                                          f'codec = "prores"\nprores_profile = "4444"\n{inputs}[looks.a]\n'
                                          f'style = "{style}"\n')
    for manifest in ("frames.toml", "movies.toml"):
        done = run_cli("batch", tmp_path / manifest, "-q")
        assert done.exit_code == 0, done.stderr
    for stem in ("dpx", "exr", "acg"):  # a folder of frames is named by the folder
        frames = sorted(p.name for p in (tmp_path / "out" / f"{stem}_a").glob("*.exr"))
        assert frames == [f"{stem}.{FIRST + k}.exr" for k in range(FRAMES)]
        spec, _ = header(tmp_path / "out" / f"{stem}_a" / f"{stem}.{FIRST + 2}.exr")
        assert spec.get_string_attribute("smpte:TimeCode") == "01:00:10:02"
        movie = probe(tmp_path / "out" / f"{stem}_a.mov")
        assert movie.frames == FRAMES and movie.timecode == "01:00:10:00"
        assert movie.alpha == (stem != "acg")  # ProRes 4444 with the plate's alpha where it has one
    spec, _ = header(tmp_path / "out" / "acg_a" / "acg.1001.exr")
    assert np.allclose(tuple(spec.getattribute("chromaticities")), PRIMARIES["ACEScg"], atol=1e-4)
    again = run_cli("batch", tmp_path / "frames.toml")
    assert again.exit_code == 0 and "3 up to date" in again.stderr
    report = json.loads((tmp_path / "frames-report" / "report.json").read_text())
    assert [job["status"] for job in report["jobs"]] == ["skipped"] * 3 and report["jobs"][0]["frames"] == FRAMES


def test_a_killed_exr_render_resumes_with_the_right_timecode(plates, tmp_path, weights_env, monkeypatch):
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    style = make_style(tmp_path / "s.png")
    pattern = str(tmp_path / "r.%04d.exr")
    assert render(plates / "exr", pattern, style).exit_code == 0
    whole = {n: header(pattern % n)[1] for n in range(FIRST, FIRST + FRAMES)}
    for n in range(FIRST + 3, FIRST + FRAMES):  # killed after three frames, one half-written
        (tmp_path / f"r.{n}.exr").unlink()
    half = tmp_path / temp_name(tmp_path / f"r.{FIRST + 3}.exr")  # what a killed frame write leaves
    half.write_bytes(b"half a frame")
    monkeypatch.setattr(output, "_SWEPT", set())  # the next run is a new process: its folders not yet swept
    again = run_cli("video", plates / "exr", "--style", style, "-o", pattern)
    assert again.exit_code == 0 and f"continuing at frame {FIRST + 3}" in again.stderr
    assert not half.exists() and sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".r")) == [
        ".r..exr.microast-frames.json"]  # swept; only the record beside the frames
    for n in range(FIRST + 3, FIRST + FRAMES):
        spec, pixels = header(pattern % n)
        assert spec.get_string_attribute("smpte:TimeCode") == f"01:00:10:{n - FIRST:02d}"
        assert np.abs(pixels - whole[n]).mean() < 0.01  # the warm-up makes the seam steady


def test_a_gap_is_refused_or_held(tmp_path, weights_env, monkeypatch):
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    for n in (1, 2, 5, 6):  # 3 and 4 missing
        cv2.imwrite(str(tmp_path / f"g.{n:03d}.png"), np.full((48, 64, 3), n * 30, np.uint8))
    refused = render(tmp_path / "g.###.png", tmp_path / "o.mkv", make_style(tmp_path / "s.png"))
    one_line_error(refused, "frame 3", "is missing", "--missing hold")
    frames = list(decode_frames(probe(tmp_path / "g.###.png", missing="hold")))
    assert [f.data[0, 0, 0] for f in frames] == [30, 60, 60, 60, 150, 180]  # 2 held for 3 and 4
    assert [f.pts for f in frames] == list(range(6))
    late = list(decode_frames(probe(tmp_path / "g.###.png", missing="hold"), start=3 / 24))
    assert [f.data[0, 0, 0] for f in late] == [60, 150, 180]  # a window opening in the gap holds frame 2
    held = render(tmp_path / "g.###.png", tmp_path / "h.%03d.png", make_style(tmp_path / "s.png"), "--missing", "hold")
    assert held.exit_code == 0 and "2 missing frame(s)" in held.stderr
    assert sorted(p.name for p in tmp_path.glob("h.*.png")) == [f"h.{n:03d}.png" for n in range(1, 7)]


def test_the_image_command_takes_one_exr_or_dpx_frame(plates, tmp_path, weights_env, monkeypatch):
    """One frame in and out keeps its colour space (an ACEScg EXR comes back ACEScg, within 1 % in
    linear at --strength 0) and its timecode; a DPX frame becomes a display-referred PNG."""
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    style = make_style(tmp_path / "s.png")
    frame = plates / "acg" / f"acg.{FIRST + 1}.exr"
    done = run_cli("image", frame, "--style", style, "-o", tmp_path / "one.exr", "--strength", "0", "-q")
    assert done.exit_code == 0, done.stderr
    spec, out = header(tmp_path / "one.exr")
    assert spec.get_string_attribute("smpte:TimeCode") == "01:00:10:01" and close_in_linear(out, header(frame)[1])
    assert np.allclose(tuple(spec.getattribute("chromaticities")), PRIMARIES["ACEScg"], atol=1e-4)
    png = run_cli("image", plates / "dpx" / f"plate.{FIRST}.dpx", "--style", style, "-o", tmp_path / "p.png", "-q")
    assert png.exit_code == 0 and cv2.imread(str(tmp_path / "p.png")).shape == (H, W, 3)
    big = run_cli("image", frame, "--style", style, "-o", tmp_path / "no.exr", "--max-pixels", "1000")
    one_line_error(big, "over the limit")
    assert not (tmp_path / "no.exr").exists()


def test_a_worker_renders_a_sequence_job_whole(plates, tmp_path, weights_env, monkeypatch):
    """What a local worker process or a Ray task runs for a batch job whose output is a sequence:
    the job whole, its frames resumable, its report back to the batch."""
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    from microast_video.batch.workers import FramesTask, run_task
    from microast_video.jobs.plan import VideoJob

    job = VideoJob(input=plates / "exr", styles=(make_style(tmp_path / "s.png"),), output=tmp_path / "w.####.exr",
                   progress=False)
    report = run_task(FramesTask(job))
    assert report["frames"] == FRAMES and len(list(tmp_path.glob("w.*.exr"))) == FRAMES
    assert run_task(FramesTask(job))["up_to_date"] is True  # a retried task finds the frames done


def test_a_log_dpx_is_taken_by_its_transfer_field_and_comes_back_log(tmp_path, weights_env, monkeypatch):
    """A DPX whose header says "Logarithmic" is Cineon log: converted to display for the network
    and back to the same code values (between Cineon's black, 95, and white, 685) at
    --strength 0, in a DPX that says it is log."""
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    codes = np.tile(np.linspace(100 / 1023, 680 / 1023, W, dtype=np.float32), (H, 1))
    (tmp_path / "log").mkdir()
    write_plate(str(tmp_path / "log" / "log.%04d.dpx"), np.stack([codes] * 3, -1), "uint16",
                **{"dpx:Transfer": "Logarithmic", "oiio:BitsPerSample": 10})
    (tmp_path / "out").mkdir()
    done = render(tmp_path / "log", tmp_path / "out" / "l.####.dpx", make_style(tmp_path / "s.png"), "--strength", "0")
    assert done.exit_code == 0 and "Cineon Log" in done.stderr, done.stderr
    spec, out = header(tmp_path / "out" / f"l.{FIRST}.dpx")
    _, src = header(tmp_path / "log" / f"log.{FIRST}.dpx")
    assert spec.get_string_attribute("dpx:Transfer") == "Logarithmic" and spec.get_int_attribute("oiio:BitsPerSample") == 10
    assert np.abs(out - src).max() < 2 / 1023  # the same code values, to a 10-bit step
