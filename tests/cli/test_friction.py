"""A command line without friction: flags shown and parsed one way, each notice once per run,
third-party warnings out of the terminal (in the report; shown with --debug)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import cv2
import pytest
from helpers import make_clip, run_cli

from microast_video.core import quiet
from microast_video.media.procedural import painting

COMMANDS = ["video", "image", "preview", "signals", "flicker", "batch", "bench", "export"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_flags_as_flags_and_each_value_in_one_word(command):
    text = run_cli(command, "--help", expect=0).output
    assert "<bool>" not in text and "list[" not in text and "int range" not in text, text
    if command in ("video", "image", "preview", "export"):
        assert "  --overwrite  " in text or "  --overwrite\n" in text or "--overwrite " in text


def test_a_flag_given_a_value_is_refused_as_the_help_shows_it(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "microast_video", "video", str(tmp_path / "in.mp4"), "--overwrite",
                           "true"], capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "true" in lines[0], proc.stderr


def test_a_preview_of_several_looks_says_each_notice_once(tmp_path, weights_env, monkeypatch):
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    monkeypatch.setattr(quiet, "_said", set())
    make_clip(tmp_path / "c.mp4", size="96x64", seconds=0.4)
    for name, seed in (("a.png", 1), ("b.png", 2)):
        cv2.imwrite(str(tmp_path / name), painting(64, seed=seed))
    result = run_cli("preview", tmp_path / "c.mp4", "-s", tmp_path / "a.png", "-s", tmp_path / "b.png", "--strength",
                     "0.5", "--strength", "1", "--frames", "2", "-o", tmp_path / "p.png", expect=0)
    assert result.stderr.count("no CUDA GPU found") <= 1 and "4 look(s)" in result.stderr


def test_third_party_messages_stay_out_of_the_terminal_and_go_to_the_report(monkeypatch):
    import logging

    monkeypatch.setattr(quiet, "_captured", [])
    with quiet.third_party_quiet():
        logging.getLogger("torch.onnx._internal.exporter._registration").warning("torchvision is not installed")
        warnings.warn("a deprecation nobody asked about", DeprecationWarning, stacklevel=1)
        logging.getLogger("microast_video.something").warning("ours")  # not third-party: not caught here
    assert quiet.captured() == ["torch.onnx._internal.exporter._registration: torchvision is not installed",
                                "DeprecationWarning: a deprecation nobody asked about"]


def test_export_prints_no_torch_chatter_unless_debug(tmp_path, weights_env):
    pytest.importorskip("onnxscript", reason="the onnx extra (CI installs it)")
    style = tmp_path / "s.png"
    cv2.imwrite(str(style), painting(64, seed=3))
    env = {**os.environ, **weights_env}
    args = [sys.executable, "-m", "microast_video", "export", "--onnx", str(tmp_path / "m.onnx"), "--style", str(style),
            "--size", "64x64"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0 and proc.stderr.strip().splitlines() == [f"wrote {tmp_path / 'm.onnx'}"], proc.stderr
    debug = subprocess.run([*args, "--overwrite", "--debug"], capture_output=True, text=True, timeout=300, env=env)
    assert debug.returncode == 0 and len(debug.stderr.strip().splitlines()) >= 1


def test_the_video_report_lists_what_was_kept_out(tmp_path, weights_env, monkeypatch):
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    make_clip(tmp_path / "c.mp4", size="96x64", seconds=0.2)
    cv2.imwrite(str(tmp_path / "a.png"), painting(64, seed=1))
    run_cli("video", tmp_path / "c.mp4", "-s", tmp_path / "a.png", "-o", tmp_path / "o.mp4", "--report",
            tmp_path / "r.json", "-q", expect=0)
    assert isinstance(json.loads((tmp_path / "r.json").read_text())["third_party_messages"], list)
