"""The batch on a real local Ray cluster (2 CPUs, no GPU), with a worker killed in the middle of a task."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import make_clip
from typer.testing import CliRunner

from microast_video import BatchOptions, run_batch
from microast_video.cli import app
from microast_video.media.procedural import painting

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'microast-video[ray]' (CI installs it)")

import av  # noqa: E402
import cv2  # noqa: E402


def ray_workers() -> list[int]:
    """Pids of Ray worker processes running a segment task."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"ray::_ray_task" in cmdline:
                found.append(int(entry.name))
    return found


def frames(path: Path) -> tuple[list[np.ndarray], list[float]]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        got = [(float(f.pts * s.time_base), f.to_ndarray(format="rgb24")) for f in c.decode(s)]
    return [f for _, f in got], [t for t, _ in got]


@pytest.fixture()
def cluster(weights_env, monkeypatch):
    for k, v in weights_env.items():
        monkeypatch.setenv(k, v)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {k: v for k, v in weights_env.items()}})
    yield
    ray.shutdown()


def test_a_ray_batch_survives_a_killed_worker(cluster, tmp_path):
    (tmp_path / "shots").mkdir()
    make_clip(tmp_path / "shots" / "a.mp4", size="160x96", seconds=3, audio=True)
    make_clip(tmp_path / "shots" / "b.mp4", size="96x64", seconds=1)
    cv2.imwrite(str(tmp_path / "paint.png"), painting(96, seed=5))
    manifest = tmp_path / "jobs.toml"
    manifest.write_text("""output = "{stem}.mkv"
output_dir = "out"
segment_seconds = 1.0
[defaults]
codec = "ffv1"
temporal = "off"
[[inputs]]
path = "shots"
[looks.paint]
style = "paint.png"
""")
    killed: list[int] = []

    def kill_one_mid_task() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            busy = list((tmp_path / "out").glob(".*work/.seg-*microast-tmp"))  # a segment being written
            workers = ray_workers()
            if busy and workers:
                os.kill(workers[0], signal.SIGKILL)
                killed.append(workers[0])
            time.sleep(0.01)

    killer = threading.Thread(target=kill_one_mid_task, daemon=True)
    killer.start()
    report = run_batch(manifest, BatchOptions(ray="local", progress=False), log=lambda m: None)
    killer.join(5)
    assert killed, "no Ray worker was caught in the middle of a task"
    assert report["summary"]["done"] == 2 and report["summary"]["failed"] == 0, report["jobs"]
    direct = tmp_path / "direct.mkv"
    r = CliRunner().invoke(app, ["video", str(tmp_path / "shots" / "a.mp4"), "-s", str(tmp_path / "paint.png"),
                                 "-o", str(direct), "--codec", "ffv1", "--temporal", "off", "-q"])
    assert r.exit_code == 0, r.stderr
    (x, tx), (y, ty) = frames(tmp_path / "out" / "a.mkv"), frames(direct)
    assert tx == ty and len(x) == 75 and all(np.array_equal(p, q) for p, q in zip(x, y))


def test_a_cluster_address_where_nothing_answers_is_one_line(tmp_path):
    """`ray_batch.py --address 127.0.0.1:1` printed Ray's warnings for over a minute."""
    from microast_video.batch.jobs import check_ray_address
    from microast_video.core.errors import OptionError

    started = time.monotonic()
    with pytest.raises(OptionError, match="no Ray cluster answers there"):
        check_ray_address("127.0.0.1:1")
    assert time.monotonic() - started < 10
    check_ray_address("auto")  # Ray finds the cluster itself
