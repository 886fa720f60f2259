"""The morning report after the most common events of a night: a trimmed render, a Ctrl-C and a
resume. Every job shows the figures of the run that made it, contact sheets pair the same
source moments (four rows), failures and pending jobs come first, totals are in minutes of
compute per minute of footage, and the Ctrl-C message says what finished and what is pending."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import cv2
import pytest
from helpers import make_clip, run_cli
from test_batch import BROWSER_FLAGS, CHROMIUM

from microast_video.batch import jobs
from microast_video.jobs.contact import sheet_times
from microast_video.media.procedural import painting


def test_sheet_times_stay_inside_the_rendered_part():
    assert sheet_times(10.0, 4) == [1.25, 3.75, 6.25, 8.75]
    assert sheet_times(10.0, 4, start=1.0, window=2.0) == [0.25, 0.75, 1.25, 1.75]  # output clock: 0 = 1 s in
    assert sheet_times(3.0, 2, start=1.0, window=5.0) == [0.5, 1.5]  # the clip ends first


@pytest.fixture()
def night(tmp_path):
    (tmp_path / "shots").mkdir()
    make_clip(tmp_path / "shots" / "a.mp4", size="96x64", seconds=3.2)
    make_clip(tmp_path / "shots" / "b.mp4", size="96x64", seconds=3.2, source="testsrc")
    cv2.imwrite(str(tmp_path / "paint.png"), painting(96, seed=5))
    (tmp_path / "jobs.toml").write_text(f"""output = "{{stem}}_{{look}}.mkv"
output_dir = "out"
segment_seconds = 0.8
[defaults]
codec = "ffv1"
start = 1.0
duration = 2
[[inputs]]
path = "{tmp_path / 'shots'}"
[looks.paint]
style = "paint.png"
""")
    return tmp_path


def interrupt_after_the_first_job(monkeypatch):
    real = jobs.after_job

    def once(run, *args, **kwargs):
        real(run, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(jobs, "after_job", once)


def test_a_trimmed_interrupted_and_resumed_batch_reports_every_job(night, monkeypatch, weights_env):
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    interrupt_after_the_first_job(monkeypatch)
    stopped = run_cli("batch", night / "jobs.toml", "-q")
    assert stopped.exit_code == 130
    assert "interrupted: 1 of 2 job(s) finished" in stopped.stderr and "1 pending" in stopped.stderr
    assert "report.html" in stopped.stderr and "nothing was written" not in stopped.stderr
    report = json.loads((night / "jobs-report" / "report.json").read_text())
    assert report["interrupted"] and [j["status"] for j in report["jobs"]] == ["pending", "done"]  # pending first
    monkeypatch.undo()
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    run_cli("batch", night / "jobs.toml", "-q", expect=0)
    report = json.loads((night / "jobs-report" / "report.json").read_text())
    assert sorted(j["status"] for j in report["jobs"]) == ["done", "skipped"] and not report["interrupted"]
    for job in report["jobs"]:  # the job finished before the Ctrl-C keeps the figures of the run that made it
        assert job["frames"] == 50 and job["fps"] > 0 and job["stages"]["network"] > 0 and job["segments"] == 3
        assert job["footage_seconds"] == pytest.approx(2.0) and job["styles"]
        sheet = cv2.imread(job["contact_sheet"])
        assert sheet.shape[0] == 4 + 26 + 4 * (135 + 4)  # a header and four rows
    (skipped,) = [j for j in report["jobs"] if j["status"] == "skipped"]
    assert skipped["figures_from"]
    totals = report["summary"]
    assert totals["footage_seconds"] == pytest.approx(4.0) and totals["compute_minutes_per_footage_minute"] > 0
    page = (night / "jobs-report" / "report.html").read_text()
    assert page.count("<svg") == 2 and "min of compute per min of footage" in page and "up to date: the figures" in page


def test_the_sheet_pairs_the_source_moment_with_the_output_made_from_it(night, monkeypatch, weights_env):
    """start = 1.0: the sheet paired the source at 1.24 s with the output frame made from 2.24 s."""
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    text = (night / "jobs.toml").read_text().replace("shots\"", "shots/a.mp4\"")
    (night / "jobs.toml").write_text(text.replace('codec = "ffv1"', 'codec = "ffv1"\ntemporal = "off"'))
    captured = {}
    real = jobs.contact_sheet

    def spy(source, outputs, headers, **kwargs):
        captured.update(kwargs)
        return real(source, outputs, headers, **kwargs)

    monkeypatch.setattr(jobs, "contact_sheet", spy)
    run_cli("batch", night / "jobs.toml", "-q", expect=0)
    assert captured == {"start": 1.0, "duration": 2.0}
    from microast_video.jobs.contact import frames_at

    source = dict(frames_at(night / "shots" / "a.mp4", [1.0 + t for t in sheet_times(3.2, 4, 1.0, 2.0)], 64))
    output = dict(frames_at(night / "out" / "a_paint.mkv", sheet_times(3.2, 4, 1.0, 2.0), 64))
    assert [round(t - 1.0, 2) for t in source] == [round(t, 2) for t in output]


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (.ci/run installs Debian's chromium)")
def test_the_resumed_report_renders_in_a_real_browser(night, monkeypatch, weights_env, tmp_path):
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    interrupt_after_the_first_job(monkeypatch)
    assert run_cli("batch", night / "jobs.toml", "-q", "--flicker").exit_code == 130
    monkeypatch.undo()
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    run_cli("batch", night / "jobs.toml", "-q", "--flicker", expect=0)
    page = night / "jobs-report" / "report.html"
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run([CHROMIUM, *BROWSER_FLAGS, *profile, "--virtual-time-budget=5000", "--dump-dom",
                          page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert 'data-images="4"' in dom and 'data-loaded="4"' in dom, dom[-400:]
    assert dom.count("warping error") == 2 and dom.count("fps</text>") == 2
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *BROWSER_FLAGS, *profile, "--hide-scrollbars", "--window-size=1000,1400",
                    f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (1400, 1000) and image.std() > 10  # not a blank page
    if os.environ.get("MICROAST_VIDEO_REPORT_SCREENSHOT"):  # the README's picture is made here
        shutil.copyfile(shot, os.environ["MICROAST_VIDEO_REPORT_SCREENSHOT"])
