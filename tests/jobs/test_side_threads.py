"""A CPU job's network keeps every core busy: the work beside it is kept small. The default
H.264 preset (libx264 "fast": medium's quality for 2/3 of its CPU time, see
benchmarks/side_costs.py), one thread each for FFmpeg's decoder and OpenCV, and OpenMP
threads that stop spinning soon when they wait (the cores go to that work)."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import pytest
import torch
from helpers import FFMPEG, make_clip, make_style
from typer.testing import CliRunner

from microast_video import EncodeSettings, probe
from microast_video.cli import app
from microast_video.core.options import Codec
from microast_video.core.process import (
    OPENMP_SPINCOUNT,
    openmp_wait_setting,
    openmp_waits,
)
from microast_video.engine.device import opencv_threads, side_threads
from microast_video.jobs import video as _pipeline
from microast_video.media.encode_plan import plan_encode


def test_h264_defaults_to_the_fast_preset_and_an_explicit_one_wins(tmp_path):
    info = probe(make_clip(tmp_path / "c.mp4", seconds=0.2))
    preset = {name: dict(plan_encode(info, tmp_path / "o.mp4", settings, exe=FFMPEG).codec_args).get("preset")
              for name, settings in [("h264", EncodeSettings()), ("slow", EncodeSettings(preset="slow")),
                                     ("hevc", EncodeSettings(codec=Codec.hevc))]}
    assert preset == {"h264": "fast", "slow": "slow", "hevc": "medium"}


def test_side_threads_are_one_on_the_cpu_and_the_librarys_choice_elsewhere():
    assert side_threads(torch.device("cpu")) == 1
    assert side_threads(torch.device("cuda", 0)) == 0


def test_openmp_waits_shortly_unless_the_user_said_how():
    assert openmp_waits({"PATH": "/bin"}) == {"PATH": "/bin", "GOMP_SPINCOUNT": OPENMP_SPINCOUNT}
    assert openmp_waits({"GOMP_SPINCOUNT": "infinite"}) == {"GOMP_SPINCOUNT": "infinite"}
    assert openmp_waits({"OMP_WAIT_POLICY": "active"}) == {"OMP_WAIT_POLICY": "active"}
    assert openmp_wait_setting({}) == "libgomp default"
    assert openmp_wait_setting(openmp_waits({})) == f"GOMP_SPINCOUNT={OPENMP_SPINCOUNT}"


def test_the_command_line_sets_openmp_waits_before_torch_loads():
    """libgomp reads the setting once, when torch loads it: ``main`` must come first."""
    code = ("import os, sys\nfrom microast_video.cli import main\nloaded = 'torch' in sys.modules\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print(loaded, 'torch' in sys.modules, os.environ.get('GOMP_SPINCOUNT'))")
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == f"False False {OPENMP_SPINCOUNT}"


@pytest.fixture
def cv2_threads():
    before = cv2.getNumThreads()
    cv2.setNumThreads(3)
    yield 3
    cv2.setNumThreads(before)


def test_opencv_threads_is_set_within_and_restored_after(cv2_threads):
    with opencv_threads(1):
        assert cv2.getNumThreads() == 1
    assert cv2.getNumThreads() == cv2_threads
    with opencv_threads(0):  # 0: left as it is
        assert cv2.getNumThreads() == cv2_threads
    with pytest.raises(RuntimeError), opencv_threads(1):
        raise RuntimeError("a failed job")
    assert cv2.getNumThreads() == cv2_threads


def test_a_cpu_job_decodes_and_stabilizes_on_one_thread_each(tmp_path, weights_env, monkeypatch, cv2_threads):
    for k, v in weights_env.items():
        monkeypatch.setenv(k, v)
    seen: dict[str, list[int]] = {"decode": [], "temporal": []}
    decode, stabilized = _pipeline.decode_frames, _pipeline.stabilized

    def decode_frames(*args, **kwargs):
        seen["decode"].append(kwargs.get("threads", 0))
        return decode(*args, **kwargs)

    def recorded(*args, **kwargs):
        for frame in stabilized(*args, **kwargs):
            seen["temporal"].append(cv2.getNumThreads())
            yield frame

    monkeypatch.setattr(_pipeline, "decode_frames", decode_frames)
    monkeypatch.setattr(_pipeline, "stabilized", recorded)
    clip, style = make_clip(tmp_path / "c.mp4", seconds=0.2), make_style(tmp_path / "s.png")
    r = CliRunner().invoke(app, ["video", str(clip), "-s", str(style), "-o", str(tmp_path / "o.mp4"),
                                 "--device", "cpu", "--precision", "fp32", "-q"])
    assert r.exit_code == 0, r.stderr
    assert seen["decode"] == [1]
    assert seen["temporal"] and set(seen["temporal"]) == {1}
    assert cv2.getNumThreads() == cv2_threads  # restored when the job ends
