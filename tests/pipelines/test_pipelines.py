"""Each post-production pipeline in pipelines/ answers --help and does its job on small material."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import ROOT
from helpers import alive, children_of, cmdline, make_clip, wait_for

from microast_video.media.procedural import painting

PIPELINES = sorted((ROOT / "pipelines").glob("*.py"))


def run(script: str, *args: str | Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "pipelines" / script), *map(str, args)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("script", [p.name for p in PIPELINES])
def test_every_pipeline_answers_help(script):
    proc = run(script, "--help")
    assert proc.returncode == 0 and proc.stdout.startswith("usage:"), proc.stderr


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    d = tmp_path_factory.mktemp("pipelines")
    (d / "shots").mkdir()
    make_clip(d / "shots" / "one.mp4", size="96x64", seconds=0.6)
    make_clip(d / "shots" / "two.mp4", size="80x48", seconds=0.4, source="testsrc")
    cv2.imwrite(str(d / "a.png"), painting(96, seed=5))
    cv2.imwrite(str(d / "b.png"), painting(96, seed=9))
    return d


def test_restyle_folder(shots, weights_env, tmp_path):
    proc = run("restyle_folder.py", shots / "shots", "--style", shots / "a.png", "--out", tmp_path / "out",
               "--codec", "ffv1", env=weights_env)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("*.mkv")) == ["one_restyled.mkv", "two_restyled.mkv"]
    report = json.loads((tmp_path / "out" / "report" / "report.json").read_text())
    assert report["summary"]["done"] == 2 and "2 restyled" in proc.stdout
    again = run("restyle_folder.py", shots / "shots", "--style", shots / "a.png", "--out", tmp_path / "out",
                "--codec", "ffv1", env=weights_env)
    assert again.returncode == 0 and "2 up to date" in again.stdout


def test_look_dev_grid(shots, weights_env, tmp_path):
    out = tmp_path / "looks.png"
    proc = run("look_dev.py", shots / "shots" / "one.mp4", "--style", shots / "a.png", "--style", shots / "b.png",
               "--strength", "0", "--strength", "1", "--height", "64", "-o", out, env=weights_env)
    assert proc.returncode == 0, proc.stderr
    grid = cv2.imread(str(out))
    # rows: a header and 2 styles (64 px tiles + gaps); columns: the source and 2 strengths (96 px tiles + gaps)
    assert grid.shape[0] == 4 + 26 + 2 * (64 + 4) and grid.shape[1] == 4 + 3 * (96 + 4)
    top = 4 + 26 + 18  # below the header and each tile's label
    source, zero, full = (grid[top:4 + 26 + 64, 4 + i * 100 + 2:4 + i * 100 + 94].astype(int) for i in range(3))
    assert np.abs(zero - source).mean() < 1 < np.abs(full - source).mean()  # strength 0 is the shot itself


def test_look_dev_refuses_a_missing_shot_in_one_line(weights_env, tmp_path):
    proc = run("look_dev.py", tmp_path / "none.mp4", "--style", tmp_path / "a.png", env=weights_env)
    assert proc.returncode == 1 and proc.stderr.strip().count("\n") == 0 and "none.mp4" in proc.stderr


def one_look_manifest(tmp_path: Path, clip: Path, style: Path) -> Path:
    """A manifest of ``clip`` x one look, lossless outputs in ``tmp_path/out``."""
    manifest = tmp_path / "jobs.toml"
    manifest.write_text(f"""output = "{{stem}}.mkv"
output_dir = "{tmp_path / 'out'}"
[defaults]
codec = "ffv1"
[[inputs]]
path = "{clip}"
[looks.a]
style = "{style}"
""")
    return manifest


def test_ray_batch(shots, weights_env, tmp_path):
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'microast-video[ray]' (CI installs it)")
    manifest = one_look_manifest(tmp_path, shots / "shots" / "one.mp4", shots / "a.png")
    proc = run("ray_batch.py", manifest, "--address", "local", "--cpus", "2", env=weights_env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "one.mkv").stat().st_size > 0 and "1 done" in proc.stdout


def test_a_killed_local_ray_run_takes_its_cluster_with_it(shots, weights_env, tmp_path):
    """A SIGKILL of a local Ray run left `ray::` agents and servers running for over 55 s."""
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'microast-video[ray]' (CI installs it)")
    manifest = one_look_manifest(tmp_path, make_clip(tmp_path / "long.mp4", size="96x64", seconds=8), shots / "a.png")
    proc = subprocess.Popen([sys.executable, str(ROOT / "pipelines" / "ray_batch.py"), str(manifest), "--address",
                             "local", "--cpus", "1"], env={**os.environ, **weights_env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: any("raylet" in cmd for cmd in map(cmdline, children_of(proc.pid))), 120)
        assert wait_for(lambda: any(children_of(c, "ray::") for c in children_of(proc.pid)), 120)
        cluster = [p for c in children_of(proc.pid) for p in [c, *children_of(c)]]
    finally:
        proc.kill()
        proc.wait()
    assert wait_for(lambda: not any(map(alive, cluster)), 20), [cmdline(p) for p in cluster if alive(p)]


@pytest.mark.parametrize("target", ["shot", "style", "unrelated"])
def test_look_dev_never_replaces_a_file_it_was_not_told_to(shots, weights_env, tmp_path, target):
    """`-o shot.mp4`, `-o a.png` (a style), `-o notes.txt`: each was silently replaced, exit 0."""
    notes = tmp_path / "notes.png"
    notes.write_bytes(b"an unrelated file")
    output = {"shot": shots / "shots" / "one.mp4", "style": shots / "a.png", "unrelated": notes}[target]
    before = output.read_bytes()
    proc = run("look_dev.py", shots / "shots" / "one.mp4", "--style", shots / "a.png", "--height", "64", "-o", output,
               *(["--overwrite"] if target != "unrelated" else []), env=weights_env)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1 and "error:" in lines[0], proc.stderr
    assert output.read_bytes() == before


@pytest.mark.parametrize(("args", "needle"), [
    (["--height", "0"], "--height"), (["-o", "/nonexist/x.png"], "does not exist"), (["--alpha", "1.5"], "--alpha"),
    (["--strength", "2"], "--strength"), (["-o", "grid.jpg"], "PNG")])
def test_look_dev_bad_values_are_one_line_before_any_work(shots, weights_env, args, needle):
    proc = run("look_dev.py", shots / "shots" / "one.mp4", "--style", shots / "a.png", *args, env=weights_env)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1 and needle in lines[0], proc.stderr


def test_restyle_folder_isolates_an_unreadable_clip_and_never_takes_its_outputs(shots, weights_env, tmp_path):
    """One zero-byte clip refused the whole folder; --out = the folder took its outputs as inputs on a rerun."""
    folder = tmp_path / "shots"
    folder.mkdir()
    make_clip(folder / "one.mp4", size="96x64", seconds=0.3)
    (folder / "empty.mp4").write_bytes(b"")
    for _ in range(2):
        proc = run("restyle_folder.py", folder, "--style", shots / "a.png", "--out", folder, "--codec", "ffv1",
                   env=weights_env)
        assert proc.returncode == 1 and "skipped" in proc.stderr and "empty.mp4" in proc.stderr, proc.stderr
    assert sorted(p.name for p in folder.glob("*.mkv")) == ["one_restyled.mkv"]  # no one_restyled_restyled
