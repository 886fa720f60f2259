"""Never touch what is not ours: side files, huge inputs, protocol paths, killed runs, honest notes.

Each test is one case of issue 8 (sizes scaled down where the behaviour allows): every bad
input is one line and a non-zero exit, nothing is left at an output after a failure or a
signal, and a change the user did not ask for is said in a note.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import (
    alive,
    children_of,
    command,
    ffmpeg,
    make_clip,
    make_style,
    png_declaring,
    temp_files,
    wait_for,
)
from helpers import one_line_error as one_line
from helpers import run_cli as run
from typer.testing import CliRunner

from microast_video import decode_frames, load_style_image, probe
from microast_video.core.output import STALE_AFTER_S, sweep_stale_folders
from microast_video.jobs import video as _pipeline

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("safety")
    return {"clip": make_clip(d / "clip.mp4", seconds=0.4), "style": make_style(d / "style.png")}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()






@pytest.fixture()
def no_work(monkeypatch):
    """Fail the test if the job gets as far as loading the network."""
    def loaded(*a, **k):
        raise AssertionError("the network was loaded: the check came too late")
    monkeypatch.setattr(_pipeline, "load_network", loaded)


def video(files, out: Path, *args) -> list[str]:
    return ["video", str(files["clip"]), "-s", str(files["style"]), "-o", str(out), "--device", "cpu",
            "--preset", "ultrafast", "-q", *map(str, args)]


# --- 1, 2, 4. the output contract --------------------------------------------------------

@pytest.mark.parametrize("victim", ["clip", "style"])
def test_report_never_overwrites_an_input(env, files, tmp_path, no_work, victim):
    before = sha(files[victim])
    r = run(*video(files, tmp_path / "o.mp4", "--report", files[victim]), expect=1)
    one_line(r, "report", "is an input file")
    assert sha(files[victim]) == before and not (tmp_path / "o.mp4").exists()


def test_report_never_overwrites_an_existing_file_without_overwrite(env, files, tmp_path, no_work):
    (tmp_path / "r.json").write_text("mine")
    r = run(*video(files, tmp_path / "o.mp4", "--report", tmp_path / "r.json"), expect=1)
    one_line(r, "r.json", "exists", "--overwrite")
    assert (tmp_path / "r.json").read_text() == "mine"


@pytest.mark.parametrize("where", ["missing folder", "a folder", "too long"])
def test_report_path_is_checked_before_any_work(env, files, tmp_path, no_work, where):
    report = {"missing folder": tmp_path / "nope" / "r.json", "a folder": tmp_path,
              "too long": tmp_path / ("r" * 300 + ".json")}[where]
    r = run(*video(files, tmp_path / "o.mp4", "--report", report), expect=1)
    one_line(r, "report")
    assert not (tmp_path / "o.mp4").exists() and temp_files(tmp_path) == []


def test_long_names_work_for_video_and_report(env, files, tmp_path):
    out, report = tmp_path / ("v" * 246 + ".mp4"), tmp_path / ("r" * 245 + ".json")  # 250 bytes each
    run(*video(files, out, "--report", report), expect=0)
    assert out.stat().st_size > 0 and json.loads(report.read_text())["frames"] == 10
    assert temp_files(tmp_path) == []


def test_bench_json_never_overwrites_an_input(env, files, tmp_path):
    before = sha(files["clip"])
    r = run("bench", "--input", files["clip"], "--json", files["clip"], expect=1)
    one_line(r, "--json", "is an input file")
    assert sha(files["clip"]) == before


# --- 3. killed runs ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("long") / "long.mp4", size="320x180", seconds=40, audio=True)


def start_long_run(long_clip: Path, style: Path, out_dir: Path, env: dict) -> tuple[subprocess.Popen, int]:
    """A real run, caught while ffmpeg is writing its temporary file."""
    proc = subprocess.Popen(command(long_clip, "-s", style, "-o", out_dir / "o.mp4", "--height", "120", "--device", "cpu",
                                "--preset", "ultrafast", "-q"), env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    # the writer's ffmpeg (it reads the NUT pipe), not a short-lived check of the encoder
    assert wait_for(lambda: temp_files(out_dir) and children_of(proc.pid, "pipe:") or proc.poll() is not None, 90)
    assert proc.poll() is None, proc.stderr.read().decode()
    ffmpeg_pids = children_of(proc.pid, "pipe:")
    assert ffmpeg_pids
    return proc, ffmpeg_pids[0]


def test_sigkill_takes_ffmpeg_along_and_the_next_run_removes_the_leftover(weights_env, files, long_clip, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc, encoder = start_long_run(long_clip, files["style"], out_dir, weights_env)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert wait_for(lambda: not alive(encoder), 10), "ffmpeg outlived its parent"
    leftover = temp_files(out_dir)
    assert len(leftover) == 1 and not (out_dir / "o.mp4").exists()
    old = time.time() - STALE_AFTER_S - 1
    os.utime(leftover[0], (old, old))
    again = subprocess.run(command(files["clip"], "-s", files["style"], "-o", out_dir / "o.mp4", "--device", "cpu",
                               "--preset", "ultrafast", "-q"), env={**os.environ, **weights_env},
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "left by an interrupted run" in again.stderr
    assert temp_files(out_dir) == [] and (out_dir / "o.mp4").exists()


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGQUIT])
def test_hangup_and_quit_clean_up_like_sigterm(weights_env, files, long_clip, tmp_path, signum):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc, encoder = start_long_run(long_clip, files["style"], out_dir, weights_env)
    os.kill(proc.pid, signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signum, err.decode()
    assert "terminated; nothing was written" in err.decode() and b"Traceback" not in err
    assert list(out_dir.iterdir()) == [] and wait_for(lambda: not alive(encoder), 5)


def test_a_live_runs_temporary_file_is_never_swept(tmp_path):
    from microast_video.core.output import AtomicFile, sweep_stale

    with AtomicFile(tmp_path / "o.bin", overwrite=False) as live:
        old = time.time() - STALE_AFTER_S - 1
        os.utime(live.path, (old, old))
        assert sweep_stale(tmp_path) == [] and live.path.exists()  # locked: a live run's file
    assert temp_files(tmp_path) == []


def test_killed_bench_leaves_no_child_and_its_folder_is_swept(weights_env, tmp_path):
    env = {**os.environ, **weights_env, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen(command("bench", "--resolution", "64x48", "--frames", "2", "--compile", "off"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    assert wait_for(lambda: children_of(proc.pid, "child_main") or proc.poll() is not None, 60)
    kids = children_of(proc.pid, "child_main")
    assert proc.poll() is None and kids
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert wait_for(lambda: not any(alive(k) for k in kids), 10), "a bench child outlived the bench"
    folders = list(tmp_path.glob("microast-bench-*"))
    assert len(folders) == 1
    assert sweep_stale_folders(tmp_path, "microast-bench-", now=time.time() + STALE_AFTER_S + 1) == folders
    assert not folders[0].exists()


# --- 5. resource limits -----------------------------------------------------------------



def test_a_30000_square_png_style_is_refused_before_decoding(env, files, tmp_path, no_work):
    bomb = png_declaring(tmp_path / "bomb.png", 30000, 30000)
    t = time.monotonic()
    r = run("video", files["clip"], "-s", bomb, "-o", tmp_path / "o.mp4", "--device", "cpu", "-q")
    assert r.exit_code == 1 and time.monotonic() - t < 20
    one_line(r, "bomb.png", "30000x30000", "--max-pixels")


def test_style_images_over_max_pixels_are_refused_and_the_limit_can_be_raised(tmp_path):
    from microast_video import InputError

    path = tmp_path / "s.png"
    make_style(path)  # 48 x 40
    with pytest.raises(InputError, match="over the limit"):
        load_style_image(path, max_pixels=1000)
    assert load_style_image(path, max_pixels=2000).shape == (1, 3, 40, 48)


def test_large_jpeg_styles_are_decoded_at_reduced_size(tmp_path, monkeypatch):
    import cv2

    path = tmp_path / "big.jpg"
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (3000, 4400, 3), np.uint8))
    seen = []
    real = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda buf, flags: seen.append(flags) or real(buf, flags))
    image = load_style_image(path, 512)
    assert image.shape[-1] == 512 and seen and seen[0] & cv2.IMREAD_REDUCED_COLOR_8 == cv2.IMREAD_REDUCED_COLOR_8


def test_input_frames_over_max_pixels_are_refused_before_decoding(env, files, tmp_path, no_work):
    r = run(*video(files, tmp_path / "o.mp4", "--max-pixels", 96 * 64 - 1), expect=1)
    one_line(r, "clip.mp4", "96x64", "--max-pixels")


@pytest.mark.parametrize(("args", "needle"), [
    (["--style-size", "100000"], "--style-size"),
    (["--height", "100000"], "--height 100000"),
    (["--duration", "inf"], "--duration"),
    (["--duration", "nan"], "--duration"),
    (["--start", "nan"], "--start"),
])
def test_bad_values_are_one_line_and_blame_the_option(env, files, tmp_path, no_work, capsys, args, needle):
    from microast_video.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(video(files, tmp_path / "o.mp4", *args))
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and needle in lines[0] and "Traceback" not in err, err


# --- 6. local paths are files, never protocols -------------------------------------------

def test_a_file_named_like_a_protocol_is_read_as_that_file(env, files, tmp_path):
    (tmp_path / "a.mp4").write_bytes(make_clip(tmp_path / "ten.mp4", seconds=0.4).read_bytes())  # 10 frames
    tricky = tmp_path / "concat:a.mp4|a.mp4"
    shutil.copyfile(make_clip(tmp_path / "seven.mp4", seconds=0.28), tricky)  # 7 frames
    os.chdir(tmp_path)  # so that "concat:a.mp4|a.mp4" would find a.mp4 as a protocol
    r = run("video", "concat:a.mp4|a.mp4", "-s", files["style"], "-o", tmp_path / "o.mp4", "--device", "cpu",
            "--preset", "ultrafast", "-q", expect=0)
    assert r.exit_code == 0
    assert sum(1 for _ in decode_frames(probe(tmp_path / "o.mp4"))) == 7


def test_a_url_is_not_a_file(env, files, tmp_path, no_work):
    r = run("video", "http://example.com/clip.mp4", "-s", files["style"], "-o", tmp_path / "o.mp4", expect=1)
    one_line(r, "example.com/clip.mp4", "not a local file")


# --- 7. inputs read wrongly ----------------------------------------------------------------

def test_an_edit_list_that_hides_packets_is_not_truncation(env, files, tmp_path):
    src = make_clip(tmp_path / "g10.mp4", seconds=2, extra=("-g", "10", "-bf", "0"))
    cut = tmp_path / "cut.mp4"
    ffmpeg("-ss", "0.2", "-i", src, "-c", "copy", cut)  # starts between keyframes: an edit list hides 5 packets
    info = probe(cut)
    assert info.frames_listed and info.frames == 50
    r = run(*video({**files, "clip": cut}, tmp_path / "o.mp4"), expect=0)
    assert sum(1 for _ in decode_frames(probe(tmp_path / "o.mp4"))) == 45, r.stderr


@pytest.mark.parametrize("window", [[], ["--duration", "1.8"]])
def test_a_truncated_mkv_is_said_not_silent(env, files, tmp_path, window):
    whole = make_clip(tmp_path / "whole.mkv", seconds=2)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    r = run(*video({**files, "clip": cut}, tmp_path / "o.mp4", "--report", tmp_path / "r.json", *window), expect=0)
    assert "ends early" in r.stderr
    assert any("ends early" in n for n in json.loads((tmp_path / "r.json").read_text())["notes"])


# --- 8. silent changes are said --------------------------------------------------------

def notes_of(report: Path) -> list[str]:
    return json.loads(report.read_text())["notes"]


def test_vp9_alpha_is_said_to_be_dropped(env, files, tmp_path):
    clip = tmp_path / "alpha.webm"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=0.2", "-vf", "format=yuva420p",
           "-c:v", "libvpx-vp9", "-auto-alt-ref", "0", clip)
    run(*video({**files, "clip": clip}, tmp_path / "o.mp4", "--report", tmp_path / "r.json"), expect=0)
    assert any("alpha channel" in n and "dropped" in n for n in notes_of(tmp_path / "r.json"))


def comb(path: Path) -> float:
    """Mean line-to-line zig-zag: what interlaced fields smeared into one frame look like."""
    values = [np.abs(f.data[1:-1].astype(float) - (f.data[:-2].astype(float) + f.data[2:]) / 2).mean()
              for f in decode_frames(probe(path))]
    return float(np.mean(values))


def test_interlaced_input_is_deinterlaced_and_said(env, files, tmp_path):
    clip = tmp_path / "i.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=50:duration=0.5", "-vf",
           "tinterlace=mode=interleave_top,setfield=tff", "-c:v", "libx264", "-preset", "ultrafast",
           "-flags", "+ildct+ilme", clip)
    assert probe(clip).interlaced
    # decoded as the job decodes it: bwdif removes most of the combing, and keeps every frame
    with_bwdif = [np.abs(f.data[1:-1].astype(float) - (f.data[:-2].astype(float) + f.data[2:]) / 2).mean()
                  for f in decode_frames(probe(clip), deinterlace=True)]
    assert np.mean(with_bwdif) < 0.6 * comb(clip)
    r = run(*video({**files, "clip": clip}, tmp_path / "o.mp4", "--report", tmp_path / "r.json"), expect=0)
    assert any("interlaced" in n and "bwdif" in n for n in notes_of(tmp_path / "r.json")), r.stderr
    assert sum(1 for _ in decode_frames(probe(tmp_path / "o.mp4"))) == sum(1 for _ in decode_frames(probe(clip)))


@pytest.fixture(scope="module")
def hlg_clip(tmp_path_factory):
    clip = tmp_path_factory.mktemp("hdr") / "hlg.mp4"
    tags = "color_primaries=bt2020:color_trc=arib-std-b67:colorspace=bt2020nc"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=0.2", "-vf", f"format=yuv420p10le,setparams={tags}",
           "-c:v", "libx265", "-x265-params", "log-level=error", clip)
    assert probe(clip).hdr == "HLG"
    return clip


def test_hdr_input_stays_10_bit_hdr_by_default(env, files, tmp_path, hlg_clip):
    """By default an HDR source becomes HEVC Main 10 (.mp4) or ProRes (.mov): H.264 High 10,
    which many players and editors refuse, was the default."""
    run(*video({**files, "clip": hlg_clip}, tmp_path / "o.mp4", "--report", tmp_path / "r.json"), expect=0)
    out = probe(tmp_path / "o.mp4")
    assert out.bit_depth == 10 and out.color_trc == "arib-std-b67" and out.color_primaries == "bt2020"
    assert out.codec == "hevc" and json.loads((tmp_path / "r.json").read_text())["codec"] == "hevc"
    run(*video({**files, "clip": hlg_clip}, tmp_path / "o.mov"), expect=0)
    assert probe(tmp_path / "o.mov").codec == "prores" and probe(tmp_path / "o.mov").color_trc == "arib-std-b67"
    assert any("HDR (HLG)" in n for n in notes_of(tmp_path / "r.json"))


def test_hdr_into_8_bit_is_refused_not_mislabelled(env, files, tmp_path, hlg_clip, no_work):
    r = run(*video({**files, "clip": hlg_clip}, tmp_path / "o.mp4", "--pix-fmt", "yuv420p"), expect=2)
    one_line(r, "HDR (HLG)", "--hdr tonemap")


def test_hdr_tonemap_makes_tagged_sdr(env, files, tmp_path, hlg_clip):
    run(*video({**files, "clip": hlg_clip}, tmp_path / "o.mp4", "--hdr", "tonemap"), expect=0)
    out = probe(tmp_path / "o.mp4")
    assert out.bit_depth == 8 and (out.color_trc, out.color_primaries, out.colorspace) == ("bt709",) * 3
    from microast_video.colour.tonemap import tonemap

    ramp = (np.linspace(0, 1, 11)[None, :, None].repeat(3, 2) * 65535).astype(np.uint16)
    for transfer in ("HLG", "PQ"):
        levels = tonemap(ramp, transfer, deep_out=False)[0, :, 1].astype(int)
        assert levels[0] == 0 and np.all(np.diff(levels) >= 0) and levels[-1] >= 250  # black, monotonic, white


def test_a_second_video_stream_is_said(env, files, tmp_path):
    two = tmp_path / "two.mkv"
    ffmpeg("-i", files["clip"], "-map", "0:v", "-map", "0:v", "-c", "copy", two)
    run(*video({**files, "clip": two}, tmp_path / "o.mp4", "--report", tmp_path / "r.json"), expect=0)
    assert any("2 video streams" in n for n in notes_of(tmp_path / "r.json"))


def test_crf_with_prores_is_said_and_not_passed(env, files, tmp_path):
    r = run(*video(files, tmp_path / "o.mov", "--codec", "prores", "--crf", "18", "--report", tmp_path / "r.json"))
    assert r.exit_code == 0, r.stderr
    assert any("--crf does not apply to prores" in n for n in notes_of(tmp_path / "r.json"))


# --- 9. no tracebacks --------------------------------------------------------------------

def test_bench_with_missing_weights_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", str(tmp_path / "nowhere"))
    r = run("bench", "--resolution", "64x48", "--frames", "1", expect=1)
    one_line(r, "weights folder", "nowhere")


def test_bench_with_a_bad_input_is_one_line(env, tmp_path):
    (tmp_path / "x.mp4").write_text("not a video")
    r = run("bench", "--input", tmp_path / "x.mp4", "--frames", "1", expect=1)
    one_line(r, "x.mp4", "not a media file")


def test_a_bad_preset_is_one_line_before_the_model_loads(env, files, tmp_path, no_work):
    r = run(*video(files, tmp_path / "o.mp4")[:-3], "--preset", "fastest", "-q", expect=2)
    one_line(r, "--preset fastest", "invalid preset")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: NVENC may work here")
def test_nvenc_without_a_gpu_is_one_line_before_the_model_loads(env, files, tmp_path, no_work):
    r = run(*video(files, tmp_path / "o.mp4")[:-3], "--codec", "h264_nvenc", "-q", expect=2)
    one_line(r, "--codec h264_nvenc", "cannot encode here")


def test_a_1x1_clip_is_one_line_naming_the_file(env, files, tmp_path, no_work):
    tiny = tmp_path / "tiny.mkv"
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=1x1:d=0.2", "-c:v", "ffv1", tiny)
    r = run(*video({**files, "clip": tiny}, tmp_path / "o.mkv", "--codec", "ffv1"), expect=1)
    one_line(r, "tiny.mkv", "too small")


def test_a_newline_in_a_file_name_stays_on_one_line(env, files, tmp_path, no_work):
    odd = tmp_path / "two\nlines.mp4"
    r = run(*video({**files, "clip": odd}, tmp_path / "o.mp4"), expect=1)
    assert one_line(r, "two\\nlines.mp4", "not found")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the note is about a missing GPU")
def test_quiet_means_quiet(env, files, tmp_path):
    r = run("video", files["clip"], "-s", files["style"], "-o", tmp_path / "o.mp4", "--preset", "ultrafast", "-q",
            expect=0)
    assert r.stderr.strip() == ""
