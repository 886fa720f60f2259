"""Batch jobs: the manifest's checks, segments assembled losslessly, resume after a kill, isolated
failures, local workers, and the report in a real browser."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from helpers import alive, children_of, make_clip, wait_for
from typer.testing import CliRunner

from microast_video import load_manifest
from microast_video.batch.manifest import ManifestError
from microast_video.cli import app
from microast_video.media.procedural import painting

runner = CliRunner()


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("batch_media")
    (d / "shots").mkdir()
    make_clip(d / "shots" / "a.mp4", size="96x64", seconds=2.4, audio=True)
    make_clip(d / "shots" / "b.mp4", size="96x64", seconds=1.5, rate="30000/1001")
    cv2.imwrite(str(d / "paint.png"), painting(96, seed=5))
    return d


def manifest(folder: Path, media: Path, *, inputs: str = "shots", extra: str = "", defaults: str = "",
             style: Path | None = None) -> Path:
    text = f"""output = "{{stem}}_{{look}}.mkv"
output_dir = "out"
segment_seconds = 0.8
[defaults]
codec = "ffv1"
{defaults}
[[inputs]]
path = "{media / inputs}"
[looks.paint]
style = "{style or media / 'paint.png'}"
{extra}"""
    path = folder / "jobs.toml"
    path.write_text(text)
    return path


def batch(path: Path, *args: str) -> object:
    return runner.invoke(app, ["batch", str(path), "-q", *args])


def frames_and_times(path: Path) -> tuple[list[np.ndarray], list[float]]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames = [(float(f.pts * stream.time_base), f.to_ndarray(format="rgb24")) for f in c.decode(stream)]
    return [f for _, f in frames], [t for t, _ in frames]


def audio_start(path: Path) -> float | None:
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return None
        for packet in c.demux(c.streams.audio[0]):
            if packet.pts is not None:
                return float(packet.pts * packet.time_base)
    return None


# --- the manifest ----------------------------------------------------------------------------

def test_every_manifest_problem_is_one_line_naming_its_entry(tmp_path, media):
    path = tmp_path / "bad.toml"
    path.write_text(f"""flavour = "strong"
output = "same.mkv"
[defaults]
crf = 99
[[inputs]]
path = "{media / 'shots'}"
[[inputs]]
path = "{tmp_path / 'nothing*.mp4'}"
[looks.a]
style = "{tmp_path / 'missing.jpg'}"
alpha = 3
colour = "blue"
""")
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    problems = err.value.problems
    for needle in ("flavour: unknown setting", "defaults.crf: must be between 0 and 51", "inputs[1]",
                   "looks.a.alpha", "looks.a.colour: unknown option", "missing.jpg: file not found"):
        assert any(needle in p for p in problems), (needle, problems)
    assert all("\n" not in p and p.startswith(str(path)) for p in problems)
    proc = subprocess.run([sys.executable, "-c", "from microast_video.cli import main; main()", "batch", str(path)],
                          capture_output=True, text=True, timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == len(problems) and all("error:" in line for line in lines)


def test_outputs_that_would_collide_are_refused(tmp_path, media):
    path = manifest(tmp_path, media)
    path.write_text(path.read_text().replace('output = "{stem}_{look}.mkv"', 'output = "{look}.mkv"'))
    with pytest.raises(ManifestError, match="make the output template unique"):
        load_manifest(path)


def test_the_check_refuses_a_bad_input_and_a_foreign_output_before_any_work(env, tmp_path, media):
    shots = tmp_path / "shots"
    shutil.copytree(media / "shots", shots)
    (shots / "c.mp4").write_text("not a video")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a_paint.mkv").write_bytes(b"someone else's file")
    r = batch(manifest(tmp_path, tmp_path, style=media / "paint.png"))
    assert r.exit_code == 2
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert any("c.mp4" in e and "not a media file" in e for e in errors), errors
    assert any("a_paint.mkv exists" in e and "--overwrite" in e for e in errors), errors
    assert (tmp_path / "out" / "a_paint.mkv").read_bytes() == b"someone else's file"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_paint.mkv"]  # no work folder, nothing


# --- segments -----------------------------------------------------------------------------------

def test_segments_assemble_into_exactly_what_one_run_makes(env, tmp_path, media):
    r = batch(manifest(tmp_path, media, defaults='temporal = "off"'))
    assert r.exit_code == 0, r.stderr
    report = json.loads((tmp_path / "jobs-report" / "report.json").read_text())
    assert report["summary"]["done"] == 2 and {j["segments"] for j in report["jobs"]} == {3, 2}
    for clip in ("a", "b"):
        direct = tmp_path / f"direct_{clip}.mkv"
        r = runner.invoke(app, ["video", str(media / "shots" / f"{clip}.mp4"), "-s", str(media / "paint.png"),
                                "-o", str(direct), "--codec", "ffv1", "--temporal", "off", "-q"])
        assert r.exit_code == 0, r.stderr
        seg_frames, seg_times = frames_and_times(tmp_path / "out" / f"{clip}_paint.mkv")
        one_frames, one_times = frames_and_times(direct)
        assert seg_times == one_times and len(seg_frames) == {"a": 60, "b": 45}[clip]
        assert all(np.array_equal(x, y) for x, y in zip(seg_frames, one_frames))
        assert audio_start(tmp_path / "out" / f"{clip}_paint.mkv") == audio_start(direct)
    leftovers = [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".") and "work" in p.name]
    assert leftovers == []


def test_a_look_with_keyframes_and_an_input_with_a_matte_equal_one_video_run(env, tmp_path, media):
    """Creative controls in a manifest, temporal on, in segments: exactly what the video command makes."""
    cv2.imwrite(str(media / "paint2.png"), painting(96, seed=11)[:, :, ::-1])
    matte = np.zeros((64, 96), np.uint8)
    matte[:, :40] = 255
    cv2.imwrite(str(tmp_path / "m.png"), matte)
    path = tmp_path / "jobs.toml"
    path.write_text(f"""output = "{{stem}}_{{look}}.mkv"
output_dir = "out"
segment_seconds = 0.8
[defaults]
codec = "ffv1"
[[inputs]]
path = "{media / 'shots' / 'b.mp4'}"
matte = "m.png"
[looks.keys]
keyframes = [[0, "{media / 'paint.png'}"], [1.2, "{media / 'paint2.png'}"]]
alpha_keyframes = [[0, 1.0], [1.4, 0.99]]
""")
    r = batch(path)
    assert r.exit_code == 0, r.stderr
    direct = tmp_path / "direct.mkv"
    r = runner.invoke(app, ["video", str(media / "shots" / "b.mp4"), "-o", str(direct), "--codec", "ffv1", "-q",
                            "--style-at", f"0:{media / 'paint.png'}", "--style-at", f"1.2:{media / 'paint2.png'}",
                            "--alpha-at", "0:1", "--alpha-at", "1.4:0.99", "--matte", str(tmp_path / "m.png")])
    assert r.exit_code == 0, r.stderr
    seg_frames, seg_times = frames_and_times(tmp_path / "out" / "b_keys.mkv")
    one_frames, one_times = frames_and_times(direct)
    assert seg_times == one_times and len(seg_frames) == 45
    assert all(np.array_equal(x, y) for x, y in zip(seg_frames, one_frames))


def test_a_second_run_skips_what_is_up_to_date_and_changed_settings_need_overwrite(env, tmp_path, media):
    path = manifest(tmp_path, media, inputs="shots/b.mp4")
    assert batch(path).exit_code == 0
    out = tmp_path / "out" / "b_paint.mkv"
    stamp = out.stat().st_mtime_ns
    r = batch(path)
    assert r.exit_code == 0 and out.stat().st_mtime_ns == stamp
    assert json.loads((tmp_path / "jobs-report" / "report.json").read_text())["summary"]["skipped"] == 1
    path.write_text(path.read_text().replace('codec = "ffv1"', 'codec = "ffv1"\nheight = 48'))
    r = batch(path)
    assert r.exit_code == 2 and "b_paint.mkv exists" in r.stderr
    assert batch(path, "--overwrite").exit_code == 0 and out.stat().st_mtime_ns != stamp


def test_killed_twice_and_rerun_equals_an_uninterrupted_batch(env, tmp_path, media):
    """Temporal on: the state passes from segment to segment and is saved, so a resumed run is exact."""
    clean = tmp_path / "clean"
    clean.mkdir()
    assert batch(manifest(clean, media, inputs="shots/a.mp4")).exit_code == 0
    killed = tmp_path / "killed"
    killed.mkdir()
    path = manifest(killed, media, inputs="shots/a.mp4")
    cmd = [sys.executable, "-c", "from microast_video.cli import main; main()", "batch", str(path), "-q"]
    for markers in (1, 2):  # kill once after the first segment, once after the second
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(list((killed / "out").glob(".*work/seg-*.json"))) < markers:
            time.sleep(0.02)
            assert proc.poll() is None, "the batch finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert not (killed / "out" / "a_paint.mkv").exists()
    r = batch(path)
    assert r.exit_code == 0, r.stderr
    a_frames, a_times = frames_and_times(clean / "out" / "a_paint.mkv")
    b_frames, b_times = frames_and_times(killed / "out" / "a_paint.mkv")
    assert a_times == b_times and len(a_frames) == 60
    assert all(np.array_equal(x, y) for x, y in zip(a_frames, b_frames))
    assert audio_start(killed / "out" / "a_paint.mkv") == audio_start(clean / "out" / "a_paint.mkv")


def test_a_bad_clip_fails_alone_and_retry_failed_reruns_only_it(env, tmp_path, media):
    shots = tmp_path / "shots"
    shutil.copytree(media / "shots", shots)
    whole = (shots / "b.mp4").read_bytes()
    cut = make_clip(tmp_path / "long.mp4", size="96x64", seconds=3, extra=("-movflags", "+faststart"))
    (shots / "b.mp4").write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])  # probes, then ends early
    path = manifest(tmp_path, tmp_path, style=media / "paint.png")
    r = batch(path)
    assert r.exit_code == 1, r.stderr
    report = json.loads((tmp_path / "jobs-report" / "report.json").read_text())
    status = {j["id"].split("-")[1]: j for j in report["jobs"]}
    assert status["a"]["status"] == "done" and status["b"]["status"] == "failed"
    assert "b.mp4" in status["b"]["error"] and "\n" not in status["b"]["error"]
    assert (tmp_path / "out" / "a_paint.mkv").exists() and not (tmp_path / "out" / "b_paint.mkv").exists()
    stamp = (tmp_path / "out" / "a_paint.mkv").stat().st_mtime_ns
    (shots / "b.mp4").write_bytes(whole)  # fixed
    r = batch(path, "--retry-failed")
    assert r.exit_code == 0, r.stderr
    again = json.loads((tmp_path / "jobs-report" / "report.json").read_text())
    assert [j["id"].split("-")[1] for j in again["jobs"]] == ["b"] and again["jobs"][0]["status"] == "done"
    assert (tmp_path / "out" / "a_paint.mkv").stat().st_mtime_ns == stamp


def test_two_local_workers_make_the_same_outputs(env, tmp_path, media):
    r = batch(manifest(tmp_path, media, defaults='temporal = "off"'), "--workers", "2")
    assert r.exit_code == 0, r.stderr
    direct = tmp_path / "direct.mkv"
    runner.invoke(app, ["video", str(media / "shots" / "a.mp4"), "-s", str(media / "paint.png"), "-o", str(direct),
                        "--codec", "ffv1", "--temporal", "off", "-q"])
    (x, tx), (y, ty) = frames_and_times(tmp_path / "out" / "a_paint.mkv"), frames_and_times(direct)
    assert tx == ty and all(np.array_equal(p, q) for p, q in zip(x, y))


# --- the report -----------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (.ci/run installs Debian's chromium)")
def test_the_report_renders_in_a_real_browser_with_its_images(env, tmp_path, media):
    shutil.copytree(media, tmp_path / "media")  # everything beside the manifest, as a user's batch folder is
    assert batch(manifest(tmp_path, tmp_path / "media"), "--flicker").exit_code == 0
    page = tmp_path / "jobs-report" / "report.html"
    report = json.loads((tmp_path / "jobs-report" / "report.json").read_text())
    assert report["summary"] == {**report["summary"], "jobs": 2, "done": 2, "failed": 0}
    job = report["jobs"][0]
    assert job["flicker"]["seams"] >= 1 and job["flicker"]["warping_error"] > 0 and job["stages"]["network"] > 0
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run([CHROMIUM, *BROWSER_FLAGS, *profile, "--virtual-time-budget=5000", "--dump-dom",
                          page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert 'data-images="4"' in dom and 'data-loaded="4"' in dom, dom[-400:]  # 2 contact sheets, 2 style thumbnails
    assert "Batch report" in dom and "out/a_paint.mkv" in dom and str(tmp_path) not in dom
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *BROWSER_FLAGS, *profile, "--hide-scrollbars", "--window-size=1000,1250",
                    f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (1250, 1000) and image.std() > 10  # not a blank page


def test_a_clip_of_one_long_gop_loses_no_frame_in_segments(env, tmp_path, media):
    """Seeking into a clip with a single keyframe lands past the window: decoding starts over instead."""
    from microast_video import decode_frames, probe

    (tmp_path / "shots").mkdir()
    make_clip(tmp_path / "shots" / "gop.mp4", size="96x64", seconds=2.4,
              extra=("-g", "1000", "-keyint_min", "1000", "-sc_threshold", "0"))
    info = probe(tmp_path / "shots" / "gop.mp4")
    assert len(list(decode_frames(info, start=1.0, duration=0.8))) == 20
    r = batch(manifest(tmp_path, tmp_path, inputs="shots", style=media / "paint.png"))
    assert r.exit_code == 0, r.stderr
    frames, times = frames_and_times(tmp_path / "out" / "gop_paint.mkv")
    assert len(frames) == 60 and times[-1] == pytest.approx(59 / 25)


def test_a_full_disk_while_assembling_fails_that_job_in_one_line(env, tmp_path, media, monkeypatch):
    """ENOSPC while a batch concatenated segments ended in "internal error (a bug ...)"."""
    import errno

    from microast_video.batch import segments

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(segments, "concat_video", full)
    r = batch(manifest(tmp_path, media, inputs="shots/b.mp4", defaults='temporal = "off"'))
    assert r.exit_code == 1 and "internal error" not in r.stderr, r.stderr
    report = json.loads((tmp_path / "jobs-report" / "report.json").read_text())
    (job,) = report["jobs"]
    assert job["status"] == "failed" and "no space left on the disk" in job["error"] and "\n" not in job["error"]
    assert not (tmp_path / "out" / "b_paint.mkv").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_workers_die_with_a_killed_batch(env, tmp_path, media):
    """SIGKILL of a `batch --workers 2` parent left both workers rendering on, then hanging for ever."""
    path = manifest(tmp_path, media, defaults='temporal = "off"')
    cmd = [sys.executable, "-c", "from microast_video.cli import main; main()", "batch", str(path), "-q",
           "--workers", "2"]
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: len(children_of(proc.pid, "spawn_main")) == 2 or proc.poll() is not None, 120)
    workers = children_of(proc.pid, "spawn_main")
    assert len(workers) == 2, "the batch never started its two workers"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert wait_for(lambda: not any(alive(w) for w in workers), 20), "a worker outlived its killed batch"
